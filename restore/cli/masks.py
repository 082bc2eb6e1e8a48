"""``restore masks``: generate hole masks as 0/255 PNG files (DESIGN §4, §6)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from pathlib import Path

import click

#: The mask kinds, listed here so that ``--help`` does not import OpenCV; a test keeps
#: it equal to :data:`restore.data.mask_generators.MASK_KINDS`.
KINDS: tuple[str, ...] = (
    "center",
    "rect",
    "box",
    "freeform",
    "cellular",
    "thin",
    "medium",
    "thick",
    "nvidia",
)

#: Largest side accepted by ``--size`` (a typo such as 25600 would otherwise run for hours).
MAX_SIDE = 32768

#: Counts from which a progress bar is shown.
PROGRESS_FROM = 100

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?$")
_RATIO_RE = re.compile(r"^\s*([0-9.eE+]+)\s*[-–:]\s*([0-9.eE+]+)\s*$")


class SizeType(click.ParamType):
    """``HxW`` (or ``N`` for a square) -> (height, width)."""

    name = "HxW"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = _SIZE_RE.match(str(value))
        if match is None:
            self.fail(f"expected HxW such as 256x256, got {value!r}", param, ctx)
        height = int(match.group(1))
        width = int(match.group(2) or match.group(1))
        if height < 1 or width < 1:
            self.fail(f"height and width must be at least 1, got {value!r}", param, ctx)
        if max(height, width) > MAX_SIDE:
            self.fail(f"height and width must be at most {MAX_SIDE}, got {value!r}", param, ctx)
        return height, width


class RatioType(click.ParamType):
    """``LO-HI`` with 0 <= LO <= HI <= 1 -> (lo, hi)."""

    name = "LO-HI"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        match = _RATIO_RE.match(str(value))
        try:
            lo, hi = (
                (float(match.group(1)), float(match.group(2))) if match else (math.nan, math.nan)
            )
        except ValueError:
            lo = hi = math.nan
        if not (math.isfinite(lo) and math.isfinite(hi)):
            self.fail(f"expected LO-HI such as 0.3-0.4, got {value!r}", param, ctx)
        if hi > 1:
            self.fail(
                f"LO and HI are fractions in [0, 1] (0.1-0.2 for 10-20 %), got {value!r}",
                param,
                ctx,
            )
        if lo > hi:
            self.fail(f"LO must not exceed HI, got {value!r}", param, ctx)
        return lo, hi


@click.group()
def masks() -> None:
    """Hole masks: generate them as 0/255 PNG files (255 = hole)."""


@masks.command()
@click.argument("dst_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--kind", required=True, type=click.Choice(KINDS), help="Mask kind (DESIGN §6).")
@click.option("--size", "size", type=SizeType(), metavar="HxW", help="Mask size, e.g. 256x256 (or 256).")
@click.option("--count", type=click.IntRange(min=1), help="Number of masks to write.")
@click.option(
    "--for-archive",
    "archive_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Instead of --size/--count: one mask per image of this archive, named KEY_mask.png and of that image's size.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Random seed; the same seed writes the same files.",
)
@click.option(
    "--ratio",
    type=RatioType(),
    default=None,
    metavar="LO-HI",
    help="center/rect/box: the hole's side as a fraction of the image side "
    "(box at 32x32 with 0.15625-0.375 gives GLCIC's 5-12 px holes); other kinds: "
    "the hole-area fraction (nvidia: after resizing, e.g. 0.3-0.4).",
)
@click.option(
    "--nvidia-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The NVIDIA irregular mask set (default: $RESTORE_NVIDIA_MASKS or ../shared/data/masks/nvidia-irregular).",
)
@click.option("--overwrite", is_flag=True, help="Replace files of the same names in DST_DIR.")
@click.pass_context
def generate(
    ctx: click.Context,
    dst_dir: Path,
    kind: str,
    size: tuple[int, int] | None,
    count: int | None,
    archive_path: Path | None,
    seed: int,
    ratio: tuple[float, float] | None,
    nvidia_dir: Path | None,
    overwrite: bool,
) -> None:
    """Write COUNT masks of one kind into DST_DIR as 00000.png, 00001.png, ...

    Mask i is drawn from a generator seeded with (SEED, i), so a larger COUNT
    extends a smaller one with the same first files. With --for-archive, mask i
    belongs to the archive's i-th image: KEY_mask.png, at that image's size, ready
    for ``restore batch --masks DST_DIR``.
    """
    import numpy as np
    from tqdm import tqdm

    from restore.cli import verbosity
    from restore.data.mask_generators import MaskRatioError, generate_mask, hole_ratio

    names, sizes = _targets(size, count, archive_path)
    count = len(names)
    if not overwrite:
        _refuse_existing(dst_dir, names)

    ratios = np.empty(count)
    quiet = verbosity(ctx) < 0
    with tqdm(
        total=count, unit="mask", file=sys.stderr, disable=True if quiet or count < PROGRESS_FROM else None
    ) as bar:
        for index, (name, (height, width)) in enumerate(zip(names, sizes, strict=True)):
            rng = np.random.default_rng([seed, index])
            try:
                mask = generate_mask(kind, height, width, rng, ratio=ratio, nvidia_dir=nvidia_dir)
            except MaskRatioError as error:
                raise click.BadParameter(str(error), param_hint="'--ratio'") from None
            except (FileNotFoundError, ValueError) as error:
                raise click.ClickException(str(error)) from None
            _write_png(dst_dir / name, mask)
            ratios[index] = hole_ratio(mask)
            bar.update()
    if not quiet:
        click.echo(
            f"wrote {count} {kind} masks of {_describe_sizes(sizes)} to {dst_dir} "
            f"(seed {seed}; hole ratio mean {ratios.mean():.3f}, min {ratios.min():.3f}, max {ratios.max():.3f})"
        )


def _targets(
    size: tuple[int, int] | None, count: int | None, archive_path: Path | None
) -> tuple[list[str], list[tuple[int, int]]]:
    """File names and (H, W) sizes of the masks to write: numbered, or one per archive key."""
    if archive_path is None:
        if size is None or count is None:
            missing = "--size" if size is None else "--count"
            raise click.UsageError(f"Missing option '{missing}' (or give --for-archive)")
        digits = max(5, len(str(count - 1)))
        return [f"{index:0{digits}d}.png" for index in range(count)], [size] * count
    if size is not None or count is not None:
        raise click.UsageError("--for-archive takes sizes and count from the archive; drop --size/--count")
    from restore.data.archive import ArchiveError, open_archive

    try:
        archive = open_archive(archive_path)
    except ArchiveError as error:
        raise click.BadParameter(str(error), param_hint="'--for-archive'") from None
    if not archive.keys:
        raise click.BadParameter(f"{archive_path} holds no images", param_hint="'--for-archive'")
    unsafe = [key for key in archive.keys if Path(key).is_absolute() or any(part in ("", ".", "..") or part.startswith(".") for part in key.split("/"))]
    if unsafe:
        raise click.BadParameter(f"{archive_path}: key {unsafe[0]!r} cannot name a mask file inside DST_DIR", param_hint="'--for-archive'")
    # KEY_mask.png, not KEY.png: the mask folder looks for KEY_mask first, so keys "a" and "a_mask" stay apart
    return [f"{key}_mask.png" for key in archive.keys], [tuple(archive.shape(key)[:2]) for key in archive.keys]


def _describe_sizes(sizes: list[tuple[int, int]]) -> str:
    distinct = sorted(set(sizes))
    return f"{distinct[0][0]}x{distinct[0][1]}" if len(distinct) == 1 else f"{len(distinct)} sizes"


def _refuse_existing(dst_dir: Path, names: list[str]) -> None:
    """Fail before writing anything when DST_DIR already holds one of ``names``."""
    if not dst_dir.is_dir():
        return
    taken = [name for name in names if (dst_dir / name).exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise click.BadParameter(f"{dst_dir} already holds {taken[0]}{more}; pass --overwrite to replace them", param_hint="'DST_DIR'")


def _write_png(path: Path, mask) -> None:
    """Write a 0/255 single-channel PNG through a temporary file, so no half-written PNG is left."""
    import cv2
    import numpy as np

    ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise click.ClickException(f"could not encode {path.name} as PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(encoded.tobytes())
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
