"""``restore export``: a Zarr archive → one lossless image file per key."""

from __future__ import annotations

import sys
import time
from pathlib import Path, PurePosixPath

import click

SUFFIXES = {"png": ".png", "tiff": ".tiff"}


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


@click.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.argument("dst_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["png", "tiff"]), default="png", show_default=True, help="Lossless file format.")
@click.option("--overwrite", is_flag=True, help="Replace image files that already exist in DST_DIR.")
def export(archive: Path, dst_dir: Path, fmt: str, overwrite: bool) -> None:
    """Write every image of ARCHIVE.zarr to DST_DIR/KEY.png (or .tiff), bit for bit.

    Nested keys become sub-folders; 8/16-bit grey, RGB and RGBA are written as
    stored. Existing files are never replaced without --overwrite (checked for
    every file before anything is written); each file is written under a
    temporary name and renamed into place.
    """
    from tqdm import tqdm

    from restore.cli import verbosity
    from restore.data.archive import ArchiveError, open_archive
    from restore.data.images import write_image

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
    if dst_dir.exists() and not dst_dir.is_dir():
        raise click.BadParameter(f"{dst_dir} exists and is not a folder", param_hint="'DST_DIR'")
    suffix = SUFFIXES[fmt]
    try:
        targets = [(key, key_path(dst_dir, key, suffix)) for key in source.keys]
    except ValueError as error:
        raise click.ClickException(f"{archive}: {error}") from None
    existing = [path for _, path in targets if path.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise click.BadParameter(
            f"{existing[0]}{more} already exist(s); pass --overwrite to replace them", param_hint="'DST_DIR'"
        )

    start = time.perf_counter()
    with tqdm(total=len(targets), unit="img", file=sys.stderr, disable=True if quiet else None, delay=0.5, leave=False) as bar:
        for key, path in targets:
            try:
                image = source.read(key)
            except ArchiveError as error:
                raise click.ClickException(str(error)) from None
            try:
                write_image(path, image, overwrite=overwrite)
            except FileExistsError:
                raise click.ClickException(f"{path} appeared during the export; not replaced (use --overwrite)") from None
            except OSError as error:
                raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
            bar.update()
    if not quiet:
        click.echo(f"exported {len(targets)} image(s) to {dst_dir} in {time.perf_counter() - start:.1f} s", err=True)
