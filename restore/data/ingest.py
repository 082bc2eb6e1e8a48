"""Ingest: image files → a new archive (what ``restore ingest`` runs).

Two passes over the files, never more than a few images in memory:

1. **Check** — :func:`~restore.data.images.probe_image` reads each header
   (PNGs are fully checked: chunk lengths, CRCs, IEND) and the layout is chosen
   from the shapes and dtypes.
2. **Write** — each image is decoded (two decodes run ahead in threads; OpenCV
   and Pillow release the GIL) and handed to an
   :class:`~restore.data.archive.ArchiveBuilder` in key order.

A bad file raises :class:`~restore.data.images.ImageReadError` and nothing is
left behind (the builder deletes its temporary folder), or with ``skip_bad`` it
is left out and reported in the result and in the archive's ``skipped``
attribute. A killed ingest cannot delete its ``.NAME.tmp-<pid>`` folder; the
next ingest to the same destination does (:func:`remove_stale_temp_dirs`).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restore.data.archive import (
    ArchiveBuilder,
    ArchiveError,
    Layout,
    check_destination,
    describe_shape,
)
from restore.data.images import ImageInfo, ImageListing, ImageReadError, probe_image, read_image

#: Images decoded ahead of the writer (bounds memory to this many images + one shard).
READ_AHEAD = 2


class LayoutError(ArchiveError):
    """The requested layout does not fit the images."""


@dataclass
class IngestResult:
    """What :func:`ingest` wrote.

    Attributes:
        path: The archive.
        layout: The layout used.
        count: Images written.
        sizes: (H, W, C, dtype name) → number of images.
        skipped: Files left out (``skip_bad``), each with its one-line error.
    """

    path: Path
    layout: Layout
    count: int
    sizes: Counter = field(default_factory=Counter)
    skipped: list[ImageReadError] = field(default_factory=list)


def choose_layout(infos: Iterable[ImageInfo], layout: str) -> Layout:
    """Resolve ``auto`` and check ``stack``.

    Args:
        infos: The images' shapes and dtypes.
        layout: ``"auto"``, ``"stack"`` or ``"group"``.

    Returns:
        ``"stack"`` when every image has one shape and dtype (and ``group`` was not asked), else ``"group"``.

    Raises:
        LayoutError: ``stack`` asked for images of several sizes or dtypes.
    """
    if layout not in ("auto", "stack", "group"):
        raise ValueError(f"layout must be auto, stack or group, not {layout!r}")
    kinds = Counter((info.shape, info.dtype.name) for info in infos)
    if layout == "group":
        return "group"
    if len(kinds) <= 1:
        return "stack"
    if layout == "auto":
        return "group"
    common = ", ".join(f"{describe_shape(s, d)} ({n})" for (s, d), n in kinds.most_common(3))
    more = f" and {len(kinds) - 3} more" if len(kinds) > 3 else ""
    raise LayoutError(
        f"stack layout needs images of one size and dtype; found {len(kinds)}: {common}{more} "
        "(use --layout group or auto)"
    )


def check_not_source(src: Path, dest: Path) -> None:
    """Refuse a destination that is the source folder or contains it (it would be replaced).

    Raises:
        ArchiveError: ``dest`` is ``src`` or one of its parents.
    """
    src_r, dest_r = src.resolve(), dest.resolve()
    if src_r == dest_r or dest_r in src_r.parents:
        raise ArchiveError(f"the archive {dest} would replace the source {src}; choose another destination")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` may exist (``os.kill(pid, 0)``).

    Another user's process, and an id that no process can have, count as alive (never removed).
    """
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temp_dirs(dest: Path) -> list[Path]:
    """Delete the temporary folders that killed ingests left beside ``dest``.

    A folder ``.NAME.tmp-<pid>`` (see :class:`~restore.data.archive.ArchiveBuilder`) is
    removed only when process ``pid`` is gone; one whose process runs (a concurrent
    ingest) is kept, and so is everything else (``.NAME.old-<pid>`` holds an old archive).

    Args:
        dest: The archive about to be written.

    Returns:
        The folders removed.
    """
    from restore.data._zarr_store import temp_dir_owner

    try:
        entries = list(dest.parent.iterdir())
    except OSError:
        return []
    removed = []
    for entry in sorted(entries):
        pid = temp_dir_owner(dest, entry)
        if pid is None or entry.is_symlink() or not entry.is_dir() or _process_alive(pid):
            continue
        try:
            shutil.rmtree(entry)
        except OSError:
            continue
        removed.append(entry)
    return removed


def _read_checked(path: Path, info: ImageInfo) -> np.ndarray:
    image = read_image(path)
    if image.shape != info.shape or image.dtype != info.dtype:
        raise ImageReadError(
            path,
            f"decodes to {describe_shape(image.shape, image.dtype)} but its header says {describe_shape(info.shape, info.dtype)}",
        )
    return image


def ingest(
    listing: ImageListing,
    dest: str | os.PathLike,
    *,
    layout: str = "auto",
    skip_bad: bool = False,
    overwrite: bool = False,
    on_probe: Callable[[], object] | None = None,
    on_write: Callable[[], object] | None = None,
    on_cleanup: Callable[[list[Path]], object] | None = None,
) -> IngestResult:
    """Build an archive from listed image files.

    Args:
        listing: Files and keys from :func:`~restore.data.images.find_images`.
        dest: The archive to create.
        layout: ``"auto"``, ``"stack"`` or ``"group"``.
        skip_bad: Leave unreadable files out instead of failing.
        overwrite: Replace an existing archive at ``dest`` (only a zarr archive).
        on_probe: Called after each file's header is checked (progress).
        on_write: Called after each file is decoded and written, or skipped (progress).
        on_cleanup: Called with the temporary folders of killed ingests removed beside ``dest``
            (see :func:`remove_stale_temp_dirs`), when there were any.

    Returns:
        What was written.

    Raises:
        ImageReadError: A bad file (without ``skip_bad``); nothing is written.
        LayoutError: ``stack`` asked for mixed sizes.
        ArchiveError: No readable image, or a destination that may not be replaced.
        FileExistsError: ``dest`` exists and ``overwrite`` is false.
    """
    dest = Path(dest)
    check_not_source(listing.root, dest)
    check_destination(dest, overwrite)
    if not listing.entries:
        raise ArchiveError(f"{listing.root}: no images found")
    stale = remove_stale_temp_dirs(dest)
    if stale and on_cleanup is not None:
        on_cleanup(stale)
    skipped: list[ImageReadError] = []
    infos: dict[str, tuple[Path, ImageInfo]] = {}
    for key, path in listing.entries:
        try:
            infos[key] = (path, probe_image(path))
        except ImageReadError as error:
            if not skip_bad:
                raise
            skipped.append(error)
        if on_probe is not None:
            on_probe()
    if not infos:
        raise ArchiveError(f"{listing.root}: none of the {len(listing.entries)} image files could be read")
    chosen = choose_layout((info for _, info in infos.values()), layout)
    first = next(iter(infos.values()))[1]
    builder = ArchiveBuilder(
        dest, keys=list(infos), layout=chosen, overwrite=overwrite,
        attrs={"source_dir": str(listing.root.resolve())},
        image_shape=first.shape if chosen == "stack" else None,
        dtype=first.dtype if chosen == "stack" else None,
    )  # fmt: skip
    sizes: Counter = Counter()
    with builder, ThreadPoolExecutor(max_workers=READ_AHEAD, thread_name_prefix="ingest-read") as pool:
        pending: deque[tuple[str, Path, Future]] = deque()
        entries = iter(infos.items())
        while True:
            while len(pending) <= READ_AHEAD:
                entry = next(entries, None)
                if entry is None:
                    break
                key, (path, info) = entry
                pending.append((key, path, pool.submit(_read_checked, path, info)))
            if not pending:
                break
            key, path, future = pending.popleft()
            try:
                image = future.result()
            except ImageReadError as error:
                if not skip_bad:
                    for *_, other in pending:
                        other.cancel()
                    raise
                skipped.append(error)
            else:
                builder.add(key, image, source_file=listing.relative(path))
                sizes[(*image.shape, image.dtype.name)] += 1
            if on_write is not None:
                on_write()
        if skipped:
            builder.extra_attrs["skipped"] = [{"file": listing.relative(e.path), "error": e.reason} for e in skipped]
        if builder.count == 0:
            raise ArchiveError(f"{listing.root}: none of the {len(listing.entries)} image files could be read")
    return IngestResult(path=dest, layout=chosen, count=builder.count, sizes=sizes, skipped=skipped)
