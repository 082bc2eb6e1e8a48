"""``restore export``: a Zarr archive → one lossless image file per key."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from tqdm import tqdm

    from restore.data.archive import Archive

SUFFIXES = {"png": ".png", "tiff": ".tiff"}

#: Name of the hidden folder inside DST_DIR where files are written before they are moved into place.
STAGING_PREFIX = ".restore-export.tmp-"


def key_path(dst: Path, key: str, suffix: str) -> Path:
    """``DST/KEY.suffix`` for a key (nested keys → sub-folders), refusing keys that leave ``dst``.

    Args:
        dst: The export folder.
        key: An archive key such as ``sub/photo1``.
        suffix: ``.png`` or ``.tiff``.

    Returns:
        The file path.

    Raises:
        ValueError: An absolute key, or one with empty, ``.`` or ``..`` parts.
    """
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValueError(f"key {key!r} is not a safe relative file name")
    return dst.joinpath(*parts[:-1], parts[-1] + suffix)


def check_not_archive(archive: Path, dst_dir: Path, relatives: Sequence[Path]) -> None:
    """Refuse an export that would write into its own archive (symlinks and relative paths resolved).

    Args:
        archive: The archive being exported.
        dst_dir: The export folder.
        relatives: The files to write, relative to ``dst_dir``.

    Raises:
        click.BadParameter: ``dst_dir`` is the archive or inside it, or a file would land inside it.
    """
    source, dst = archive.resolve(), dst_dir.resolve()
    if dst == source or dst.is_relative_to(source):
        raise click.BadParameter(
            f"{dst_dir} is the archive {archive} or a folder inside it; choose another DST_DIR", param_hint="'DST_DIR'"
        )
    if source.is_relative_to(dst):
        for relative in relatives:
            if (dst / relative).is_relative_to(source):
                raise click.BadParameter(
                    f"{dst_dir / relative} would be written inside the archive {archive}; choose another DST_DIR",
                    param_hint="'DST_DIR'",
                )


def check_targets(dst: Path, dst_dir: Path, relatives: Sequence[Path], overwrite: bool) -> None:
    """Refuse an export whose files or sub-folders clash with what DST_DIR already holds.

    Args:
        dst: The resolved export folder.
        dst_dir: The export folder as the user named it (for messages).
        relatives: The files to write, relative to ``dst``.
        overwrite: Whether existing files may be replaced.

    Raises:
        click.BadParameter: A file exists (without ``overwrite``), a target is a folder, or a
            needed sub-folder exists as a file.
    """
    folders = sorted({parent for relative in relatives for parent in relative.parents if parent != Path()})
    blocked = [folder for folder in folders if (dst / folder).exists() and not (dst / folder).is_dir()]
    if blocked:
        raise click.BadParameter(f"{dst_dir / blocked[0]} exists and is not a folder", param_hint="'DST_DIR'")
    existing = [relative for relative in relatives if (dst / relative).exists()]
    folder = next((relative for relative in existing if (dst / relative).is_dir()), None)
    if folder is not None:
        raise click.BadParameter(f"{dst_dir / folder} is a folder; it cannot be replaced by an image file", param_hint="'DST_DIR'")
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise click.BadParameter(
            f"{dst_dir / existing[0]}{more} already exist(s); pass --overwrite to replace them", param_hint="'DST_DIR'"
        )


@contextlib.contextmanager
def staging(dst: Path) -> Iterator[Path]:
    """A fresh hidden folder inside ``dst`` (created with its parents when missing), removed on exit.

    On an exception (KeyboardInterrupt included) the folders this created are removed too,
    so ``dst`` is left as it was.

    Args:
        dst: The resolved export folder.

    Yields:
        The staging folder.

    Raises:
        click.ClickException: The folders cannot be created.
    """
    created: list[Path] = []
    stage = dst / f"{STAGING_PREFIX}{os.getpid()}"
    try:
        try:
            _make_folders(dst, created)
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir()
        except OSError as error:
            raise click.ClickException(f"cannot create {error.filename or stage}: {error.strerror or error}") from None
        yield stage
    except BaseException:
        shutil.rmtree(created[0] if created else stage, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, appending each one made to ``created`` (top-most first)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        created.append(path)


def _undo(placed: list[tuple[Path, Path | None]], created: list[Path]) -> None:
    """Take back placed files (restoring the ones they replaced) and remove created folders."""
    for target, old in reversed(placed):
        with contextlib.suppress(OSError):
            if old is None:
                target.unlink()
            else:
                os.replace(old, target)
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def move_into_place(stage: Path, dst: Path, relatives: Sequence[Path], overwrite: bool) -> None:
    """Move every staged file to ``dst``; on any failure undo the moves, leaving ``dst`` as it was.

    Without ``overwrite`` a file is placed with a hard link, which never replaces one
    that appeared meanwhile; with it, a replaced file is set aside in ``stage/replaced``
    until every file is in place.

    Args:
        stage: The staging folder, holding every file at ``stage/files/RELATIVE``.
        dst: The resolved export folder.
        relatives: The files, relative to ``dst``.
        overwrite: Replace existing files.

    Raises:
        FileExistsError: A file appeared in ``dst`` during the export (without ``overwrite``);
            its ``filename`` is relative to ``dst``, or absolute for a folder.
        OSError: A move failed.
    """
    backups = stage / "replaced"
    backups.mkdir()
    placed: list[tuple[Path, Path | None]] = []
    created: list[Path] = []
    try:
        for index, relative in enumerate(relatives):
            staged, target = stage / "files" / relative, dst / relative
            _make_folders(target.parent, created)
            if not overwrite:
                try:
                    os.link(staged, target)
                except FileExistsError:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(relative)) from None
                placed.append((target, None))
            elif os.path.lexists(target):
                old = backups / str(index)
                os.replace(target, old)
                placed.append((target, old))
                os.replace(staged, target)
            else:
                os.replace(staged, target)
                placed.append((target, None))
    except BaseException:
        _undo(placed, created)
        raise


def stage_images(source: Archive, stage: Path, relatives: Sequence[Path], dst_dir: Path, bar: tqdm) -> None:
    """Read and encode every image into ``stage``, one at a time.

    Args:
        source: The opened archive.
        stage: The folder that receives the files.
        relatives: Each key's file (in the archive's key order), relative to the export folder.
        dst_dir: The export folder as the user named it (for messages).
        bar: Progress bar.

    Raises:
        click.ClickException: An image that cannot be read or written.
    """
    from restore.data.archive import ArchiveError
    from restore.data.images import write_image

    for key, relative in zip(source.keys, relatives, strict=True):
        try:
            image = source.read(key)
        except ArchiveError as error:
            raise click.ClickException(f"{error}; nothing exported") from None
        try:
            write_image(stage / relative, image)
        except OSError as error:
            raise click.ClickException(f"cannot write {dst_dir / relative}: {error.strerror or error}; nothing exported") from None
        bar.update()


@click.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.argument("dst_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["png", "tiff"]), default="png", show_default=True, help="Lossless file format.")
@click.option("--overwrite", is_flag=True, help="Replace image files that already exist in DST_DIR.")
def export(archive: Path, dst_dir: Path, fmt: str, overwrite: bool) -> None:
    """Write every image of ARCHIVE.zarr to DST_DIR/KEY.png (or .tiff), bit for bit.

    Nested keys become sub-folders; 8/16-bit grey, RGB and RGBA are written as
    stored. Existing files are never replaced without --overwrite (checked for
    every file before anything is written). Files are written to a hidden folder
    inside DST_DIR and moved into place only once every image is written: a
    failed export leaves DST_DIR as it was.
    """
    from tqdm import tqdm

    from restore.cli import verbosity
    from restore.data.archive import ArchiveError, open_archive

    quiet = verbosity() < 0
    try:
        source = open_archive(archive)
    except ArchiveError as error:
        raise click.BadParameter(str(error), param_hint="'ARCHIVE'") from None
    if not source.complete:
        missing = len(source) - len(source.done_keys())
        raise click.ClickException(
            f"{archive}: {missing} of {len(source)} images are not written yet (finish the run that writes it first)"
        )
    try:
        relatives = [key_path(Path(), key, SUFFIXES[fmt]) for key in source.keys]
    except ValueError as error:
        raise click.ClickException(f"{archive}: {error}") from None
    check_not_archive(archive, dst_dir, relatives)
    dst = dst_dir.resolve()
    if dst.exists() and not dst.is_dir():
        raise click.BadParameter(f"{dst_dir} exists and is not a folder", param_hint="'DST_DIR'")
    check_targets(dst, dst_dir, relatives, overwrite)

    start = time.perf_counter()
    with staging(dst) as stage:
        with tqdm(total=len(relatives), unit="img", file=sys.stderr, disable=True if quiet else None, delay=0.5, leave=False) as bar:
            stage_images(source, stage / "files", relatives, dst_dir, bar)
        try:
            move_into_place(stage, dst, relatives, overwrite)
        except FileExistsError as error:
            raise click.ClickException(
                f"{dst_dir / error.filename} appeared during the export; "
                "nothing exported (use --overwrite to replace it)"
            ) from None
        except OSError as error:
            raise click.ClickException(f"cannot move the exported files into {dst_dir}: {error.strerror or error}; nothing exported") from None
    if not quiet:
        click.echo(f"exported {len(relatives)} image(s) to {dst_dir} in {time.perf_counter() - start:.1f} s", err=True)
