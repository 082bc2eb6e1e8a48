"""``restore ingest``: a folder of images (or one image) → a Zarr archive."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.command()
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders (keys become sub/name).")
@click.option("--skip-bad", is_flag=True, help="Leave out unreadable files (and list them) instead of failing.")
@click.option(
    "--layout",
    type=click.Choice(["auto", "stack", "group"]),
    default="auto",
    show_default=True,
    help="stack: one (N, H, W, C) array (one size only); group: one array per image; auto: stack when possible.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing archive (atomically, when the new one is complete).")
def ingest(src: Path, archive: Path, recursive: bool, skip_bad: bool, layout: str, overwrite: bool) -> None:
    """Store the images of SRC (a folder, or one image file) in a new archive ARCHIVE.zarr.

    Keys are file paths relative to SRC without their suffix (sub/photo1).
    PNG, JPEG, TIFF, BMP and WebP; 8/16-bit grey, RGB and RGBA are kept as they
    are. The archive is written under a temporary name and renamed into place:
    a failed ingest leaves nothing behind.
    """
    from tqdm import tqdm

    from restore.cli import verbosity
    from restore.data.archive import ArchiveError, is_archive
    from restore.data.images import ImageReadError, KeyClashError, find_images
    from restore.data.ingest import LayoutError, check_not_source
    from restore.data.ingest import ingest as ingest_images

    quiet = verbosity() < 0
    try:
        listing = find_images(src, recursive=recursive)
    except KeyClashError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.BadParameter(f"cannot list {src}: {error.strerror or error}", param_hint="'SRC'") from None
    if not listing.entries:
        hint = ""
        if listing.subfolders:
            hint = f"; {len(listing.subfolders)} sub-folder(s) not searched (use --recursive)"
        raise click.ClickException(f"no image files in {src} (looked for .png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp){hint}")
    try:
        check_not_source(listing.root, archive)
    except ArchiveError as error:
        raise click.BadParameter(str(error), param_hint="'ARCHIVE'") from None
    if archive.exists() and not overwrite:
        raise click.BadParameter(f"{archive} already exists; pass --overwrite to replace it", param_hint="'ARCHIVE'")
    if archive.exists() and not is_archive(archive):
        raise click.BadParameter(f"{archive} exists and is not a zarr archive; refusing to replace it", param_hint="'ARCHIVE'")
    if listing.ignored and not quiet:
        names = ", ".join(listing.relative(p) for p in listing.ignored[:5])
        more = f" and {len(listing.ignored) - 5} more" if len(listing.ignored) > 5 else ""
        click.echo(f"ignoring {len(listing.ignored)} file(s) that are not images by name: {names}{more}", err=True)
    if listing.subfolders and not quiet:
        click.echo(f"not searching {len(listing.subfolders)} sub-folder(s) (use --recursive)", err=True)

    def report_cleanup(removed: list[Path]) -> None:
        names = ", ".join(path.name for path in removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
        tqdm.write(f"removed {len(removed)} temporary folder(s) left by killed ingests of {archive}: {names}", file=sys.stderr)

    count = len(listing.entries)
    start = time.perf_counter()
    try:
        with tqdm(total=count, desc="checking", unit="img", file=sys.stderr, disable=True if quiet else None, delay=0.5, leave=False) as bar:

            writing = []

            def written() -> None:
                if not writing:  # the first image written: the checking pass is over
                    writing.append(True)
                    bar.set_description("writing")
                    bar.reset(total=count)
                bar.update()

            result = ingest_images(
                listing, archive, layout=layout, skip_bad=skip_bad, overwrite=overwrite,
                on_probe=bar.update, on_write=written, on_cleanup=report_cleanup,
            )  # fmt: skip
    except ImageReadError as error:
        raise click.ClickException(f"{error} (nothing written; --skip-bad leaves such files out)") from None
    except LayoutError as error:
        raise click.BadParameter(str(error), param_hint="'--layout'") from None
    except FileExistsError as error:
        raise click.BadParameter(str(error), param_hint="'ARCHIVE'") from None
    except ArchiveError as error:
        raise click.ClickException(str(error)) from None
    seconds = time.perf_counter() - start

    for error in result.skipped:
        click.echo(f"skipped {error}", err=True)
    if not quiet:
        sizes = ", ".join(
            f"{h}×{w}×{c} {dtype} ({n})" for (h, w, c, dtype), n in result.sizes.most_common(3)
        ) + (f" and {len(result.sizes) - 3} more sizes" if len(result.sizes) > 3 else "")
        skipped = f", skipped {len(result.skipped)} unreadable file(s)" if result.skipped else ""
        click.echo(
            f"ingested {result.count} image(s) into {archive} ({result.layout} layout: {sizes}) "
            f"in {seconds:.1f} s{skipped}",
            err=True,
        )
