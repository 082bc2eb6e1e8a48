"""The output archive of ``restore batch``: resumable, crash-safe, one image at a time.

Protocol (what makes a SIGKILL at any moment harmless):

1. :meth:`OutputArchive.create` builds the whole skeleton — attributes, the
   ``images`` array(s) with the input's layout, shapes and dtypes, and a
   ``done`` array (N,) of zeros — under a temporary name and renames it into
   place. An output archive either exists complete in structure or not at all.
2. :meth:`OutputArchive.write` stores the image (its shard file, or its own
   array, is replaced by one atomic rename), **then** sets ``done[i] = 1``
   (another atomic rename). Both go through
   :class:`~restore.data._zarr_store.DurableLocalStore`; with ``durable``
   (the default) each file is fsync'ed before its rename, so on a journaling
   file system the order also holds across a power loss.
3. A rerun opens the archive with :meth:`OutputArchive.open`, which checks it
   matches the input, deletes temporary files a killed writer left, and reports
   :meth:`~OutputArchive.done_keys`. An image whose data were written but whose
   ``done`` flag was not is simply computed and written again; an image marked
   done is never recomputed, and no write can damage another image (the shard
   holding it is replaced whole or not at all).

**One writer process.** A shard is rewritten whole (read, modify, write), so two
processes writing images of one shard would lose each other's images. An
archive therefore has exactly one writer: the process holding the lock (an
``flock`` on the archive folder, released by the kernel when the process dies).
In the Dask pipeline the client process writes; workers only compute and
return arrays. A second writer gets a clear :class:`ArchiveError`. Within the
process, call the writer from one thread at a time (e.g. the thread consuming
``as_completed``). Writes cost about one shard rewrite each (shards of the
output are capped at 16 images / 16 MiB); :meth:`OutputArchive.write_many`
stores a run of consecutive images with one rewrite per shard.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from restore import __version__
from restore.data.archive import (
    DONE_CHUNK,
    FORMAT,
    FORMAT_VERSION,
    OUTPUT_SHARD_BYTES,
    OUTPUT_SHARD_IMAGES,
    RESERVED_ATTRS,
    Archive,
    ArchiveError,
    describe_shape,
    image_codecs,
    is_archive,
    open_archive,
    shard_images,
    utc_now,
)
from restore.data.images import check_image_array

#: The array of per-image mask stamps (:meth:`restore.data.masks.MaskSource.stamp`).
MASK_STAMPS = "mask_stamps"


class OutputArchive:
    """Writer of a restored archive with the layout, keys, shapes and dtypes of an input archive.

    Create with :meth:`create` or :meth:`open` (or :meth:`open_or_create`);
    use as a context manager or call :meth:`close` to release the writer lock.

    Attributes:
        path: The output archive folder.
        layout: ``"stack"`` or ``"group"`` (as the input).
        keys: Keys in archive order (as the input).
        attrs: Root attributes (provenance included).
    """

    def __init__(self, path: Path, lock: Any, durable: bool = True) -> None:
        import zarr

        from restore.data._zarr_store import DurableLocalStore

        self.path = path
        self._lock = lock
        self._group = zarr.open_group(DurableLocalStore(path, fsync=durable), mode="r+")
        self.attrs: dict = dict(self._group.attrs)
        self.layout = self.attrs["layout"]
        self.keys: list[str] = list(self.attrs["keys"])
        self._index = {key: i for i, key in enumerate(self.keys)}
        self._names: dict[str, str] = dict(self.attrs.get("array_names") or {})
        self._images = self._group["images"] if self.layout == "stack" else None
        self._arrays: dict[str, Any] = {}
        self._done_array = self._group["done"]
        self._done = np.asarray(self._done_array[...]).astype(bool)

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        like: Archive,
        attrs: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
        durable: bool = True,
    ) -> OutputArchive:
        """Create an empty output archive shaped like ``like`` (atomically: temp folder + rename).

        Args:
            path: The output archive.
            like: The input archive (layout, keys, shapes, dtypes, source names are copied).
            attrs: Provenance (method, checkpoint digest, mask source, strategy, …), JSON-able;
                names in :data:`~restore.data.archive.RESERVED_ATTRS` are refused.
            overwrite: Replace an existing archive at ``path`` (never the input itself).
            durable: fsync every write (see the module docstring); a killed process is
                harmless either way, this guards against power loss.

        Returns:
            The writer, holding the lock.

        Raises:
            ArchiveError: ``path`` is the input, is not an archive, or is being written by another process.
            FileExistsError: ``path`` exists and ``overwrite`` is false.
        """
        import zarr

        from restore.data._zarr_store import DurableLocalStore, fsync_tree, staged_dir

        path = Path(path)
        attrs = dict(attrs or {})
        clash = sorted(RESERVED_ATTRS & set(attrs))
        if clash:
            raise ValueError(f"provenance attribute names reserved by the archive format: {', '.join(clash)}")
        if path.resolve() == like.path.resolve():
            raise ArchiveError(f"{path}: the output would replace its input archive")
        old_lock = None
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise FileExistsError(f"{path} already exists (resume it with OutputArchive.open, or pass overwrite=True)")
            if not is_archive(path):
                raise ArchiveError(f"{path} exists and is not a zarr archive; refusing to replace it")
            old_lock = _take_lock(path)  # never replace an archive another process is writing
        lock = None
        try:
            with staged_dir(path, overwrite=overwrite) as tmp:
                lock = _take_lock(tmp)  # the lock follows the folder through the rename
                group = zarr.open_group(DurableLocalStore(tmp, fsync=False), mode="w-")
                root = {key: like.attrs[key] for key in ("source_dir", "source_files") if key in like.attrs}
                root.update(attrs)
                root.update(
                    format=FORMAT, format_version=FORMAT_VERSION, kind="restored", layout=like.layout,
                    keys=list(like.keys), input_archive=str(like.path.resolve()),
                    restore_version=__version__, created=utc_now(),
                )  # fmt: skip
                if like.layout == "group":
                    root["array_names"] = {key: like.array_name(key) for key in like.keys}
                _create_arrays(group, like)
                chunk = min(len(like), DONE_CHUNK)
                group.create_array("done", shape=(len(like),), dtype="uint8", chunks=(chunk,), fill_value=0)
                group.create_array(MASK_STAMPS, shape=(len(like),), dtype="uint64", chunks=(chunk,), fill_value=0)
                group.attrs.update(root)
                fsync_tree(tmp)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        finally:
            if old_lock is not None:
                old_lock.release()
        return cls(path, lock, durable)

    @classmethod
    def open(cls, path: str | os.PathLike, like: Archive | None = None, *, durable: bool = True) -> OutputArchive:
        """Open an existing output archive to resume writing it.

        Args:
            path: The output archive.
            like: The input archive; when given, keys, layout, shapes and dtypes must match it.
            durable: fsync every write (see :meth:`create`).

        Returns:
            The writer, holding the lock; stale temporary files of a killed writer are removed.

        Raises:
            ArchiveError: Not an output archive, a mismatch with ``like``, or another writer.
        """
        from restore.data._zarr_store import remove_stale_temp_files

        path = Path(path)
        lock = _take_lock(path) if path.is_dir() else None
        try:
            existing = open_archive(path)  # raises for a missing path or a non-archive
            if existing.kind != "restored" or not existing.records_completion:
                raise ArchiveError(f"{path}: not an output archive of restore batch (no 'done' record); refusing to write into it")
            if like is not None:
                _check_matches(existing, like)
            remove_stale_temp_files(path)
            return cls(path, lock, durable)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def open_or_create(
        cls,
        path: str | os.PathLike,
        like: Archive,
        attrs: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
        durable: bool = True,
    ) -> OutputArchive:
        """Resume ``path`` when it exists (and ``overwrite`` is false), else create it.

        Args:
            path: The output archive.
            like: The input archive.
            attrs: Provenance for a new archive (an existing one keeps its own).
            overwrite: Start again from an empty archive.
            durable: fsync every write (see :meth:`create`).

        Returns:
            The writer.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            return cls.open(path, like, durable=durable)
        return cls.create(path, like, attrs, overwrite=overwrite, durable=durable)

    def close(self) -> None:
        """Release the writer lock (idempotent)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> OutputArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"OutputArchive({str(self.path)!r}, {int(self._done.sum())}/{len(self)} done)"

    # -- state -------------------------------------------------------------------------------

    def done_keys(self) -> set[str]:
        """Keys whose image is completely written."""
        return {key for key, done in zip(self.keys, self._done, strict=True) if done}

    def missing_keys(self) -> list[str]:
        """Keys still to compute, in archive order."""
        return [key for key, done in zip(self.keys, self._done, strict=True) if not done]

    @property
    def complete(self) -> bool:
        """Whether every image is written."""
        return bool(self._done.all())

    def mask_stamps(self) -> dict[str, int] | None:
        """Per key, the stamp of the mask it was (or is being) restored with; 0: none recorded.

        None for an archive written before stamps were recorded.
        """
        if MASK_STAMPS not in self._group:
            return None
        return dict(zip(self.keys, (int(v) for v in np.asarray(self._group[MASK_STAMPS][...])), strict=True))

    def record_mask_stamps(self, stamps: Mapping[str, int]) -> None:
        """Record the stamps of the masks the images ``stamps`` names are about to be restored with."""
        if not stamps or MASK_STAMPS not in self._group:
            return
        array = self._group[MASK_STAMPS]
        values = np.asarray(array[...]).astype(np.uint64)
        for key, stamp in stamps.items():
            values[self._position(key)] = stamp
        array[...] = values

    def expected(self, key: str) -> tuple[tuple[int, int, int], np.dtype]:
        """The (H, W, C) shape and dtype :meth:`write` accepts for ``key``."""
        array = self._images if self._images is not None else self._array(key)
        shape = tuple(array.shape[1:]) if self._images is not None else tuple(array.shape)
        return shape, np.dtype(array.dtype)

    # -- writing -----------------------------------------------------------------------------

    def _array(self, key: str) -> Any:
        array = self._arrays.get(key)
        if array is None:
            array = self._arrays[key] = self._group["images"][self._names[key]]
        return array

    def _position(self, key: str) -> int:
        try:
            return self._index[key]
        except KeyError:
            raise ArchiveError(f"{self.path}: no image with key {key!r} in this archive") from None

    def _checked(self, key: str, image: np.ndarray) -> np.ndarray:
        image = check_image_array(image, f"image {key!r}")
        shape, dtype = self.expected(key)
        if image.shape != shape or image.dtype != dtype:
            raise ArchiveError(f"image {key!r} is {describe_shape(image.shape, image.dtype)}; the archive expects {describe_shape(shape, dtype)}")
        return image

    def write(self, key: str, image: np.ndarray) -> None:
        """Store one image, then record it as done (see the module docstring).

        Args:
            key: An archive key (writing a done key again replaces it).
            image: The pixels, with the key's shape and dtype.

        Shape:
            image: (H, W, C).
        """
        self.write_many({key: image})

    def write_many(self, items: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> None:
        """Store several images, then record them as done (cheaper than :meth:`write` per image when
        several fall into one shard: each run of consecutive stack positions is one shard rewrite).

        Args:
            items: key → image, or (key, image) pairs.
        """
        if self._lock is None:
            raise ArchiveError(f"{self.path}: this writer is closed")
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        checked = sorted((self._position(key), self._checked(key, image)) for key, image in pairs)
        if self._images is not None:
            for start, images in _runs(checked):
                self._images[start : start + len(images)] = np.stack(images)
        else:
            for position, image in checked:
                self._array(self.keys[position])[...] = image
        positions = [position for position, _ in checked]
        self._done[positions] = True
        for chunk in sorted({p // self._done_array.chunks[0] for p in positions}):
            lo = chunk * self._done_array.chunks[0]
            hi = min(lo + self._done_array.chunks[0], len(self._done))
            self._done_array[lo:hi] = self._done[lo:hi].astype(np.uint8)

    def as_archive(self) -> Archive:
        """A reader over this archive (images not yet done raise on read)."""
        return open_archive(self.path)


def _runs(checked: list[tuple[int, np.ndarray]]) -> Iterable[tuple[int, list[np.ndarray]]]:
    """Group (position, image) pairs, sorted by position, into runs of consecutive positions."""
    start, run, last = None, [], None
    for position, image in checked:
        if last is not None and position == last + 1:
            run.append(image)
        else:
            if run:
                yield start, run
            start, run = position, [image]
        last = position
    if run:
        yield start, run


def _take_lock(path: Path) -> Any:
    from restore.data._zarr_store import WriterLock

    lock = WriterLock(path)
    if not lock.acquire():
        raise ArchiveError(f"{path}: another process is writing this archive (only one writer at a time)")
    return lock


def _create_arrays(group: Any, like: Archive) -> None:
    """The output's image arrays: the input's layout, shapes and dtypes; small shards (see OUTPUT_SHARD_*)."""
    if like.layout == "stack":
        height, width, channels = like.shape(like.keys[0])
        dtype = like.dtype(like.keys[0])
        per_shard = shard_images(
            height * width * channels * dtype.itemsize, len(like),
            max_images=OUTPUT_SHARD_IMAGES, max_bytes=OUTPUT_SHARD_BYTES,
        )  # fmt: skip
        group.create_array(
            "images", shape=(len(like), height, width, channels), dtype=dtype,
            chunks=(1, height, width, channels), shards=(per_shard, height, width, channels),
            compressors=image_codecs(), fill_value=0, dimension_names=("image", "y", "x", "channel"),
        )  # fmt: skip
        return
    for key in like.keys:
        shape = like.shape(key)
        group.create_array(
            f"images/{like.array_name(key)}", shape=shape, dtype=like.dtype(key), chunks=shape,
            compressors=image_codecs(), fill_value=0, dimension_names=("y", "x", "channel"),
            attributes={"key": key},
        )  # fmt: skip


def _check_matches(output: Archive, like: Archive) -> None:
    where = f"{output.path} does not match the input {like.path}"
    if output.keys != like.keys:
        extra = sorted(set(output.keys) - set(like.keys))
        missing = sorted(set(like.keys) - set(output.keys))
        detail = (
            f"key {missing[0]!r} missing" if missing else f"extra key {extra[0]!r}" if extra else "keys in another order"
        )
        raise ArchiveError(f"{where}: {detail} (use --overwrite to start again)")
    if output.layout != like.layout:
        raise ArchiveError(f"{where}: layout {output.layout} vs {like.layout} (use --overwrite to start again)")
    keys = like.keys[:1] if like.layout == "stack" else like.keys
    for key in keys:
        if output.shape(key) != like.shape(key) or output.dtype(key) != like.dtype(key):
            raise ArchiveError(
                f"{where}: image {key!r} is {describe_shape(output.shape(key), output.dtype(key))} there and "
                f"{describe_shape(like.shape(key), like.dtype(key))} in the input (use --overwrite to start again)"
            )
