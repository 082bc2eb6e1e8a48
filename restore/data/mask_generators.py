"""Hole-mask generators: the mask kinds of DESIGN §6.

Every generator returns an (H, W) bool array, True = hole, and draws all of its
randomness from the :class:`numpy.random.Generator` it is given: the same
generator state gives the same mask.

Kinds:

- ``center``: a centred rectangle of half of each side (a 128² square in 256²),
  as in the CSA paper's Table 1.
- ``rect``: DeepFill v1 boxes: a box of half of each side at a random position,
  then each of its four edges moved inwards by 0 to side/16 pixels.
- ``box``: DeepGIN's boxes: height and width each 30–70 % of the image side,
  random position.
- ``freeform``: DeepFill v2 brush strokes: 1–3 strokes of 4–11 connected
  segments (angle 2π/5 ± up to 2π/15, alternately mirrored; segment length
  ~ N(d/8, d/16) clipped to [0, d/4], d the image diagonal), brush 12–40 px at
  256² (scaled with the shorter side), round joints, random flips.
- ``cellular``: the AIM 2020 masks: a Bernoulli(0.5) grid at scale
  s ∈ {1, 2, 4, 8}, r ∈ [2, 6] passes of a 3×3 median filter with a zero
  border, nearest up-sampling by s, and for s > 1 a dilation with a
  4-connected cross. A draw without any hole (small grids can vanish under
  the median filter) is drawn again.
- ``thin``, ``medium``, ``thick``: LaMa's evaluation masks (lengths and widths
  given at 512² and scaled with the shorter side): strokes of 1–5 connected
  segments, each with a random angle, length and width; ``medium`` and
  ``thick`` draw boxes instead of strokes with LaMa's weight 0.3 against 1
  (p = 0.3/1.3), as LaMa's mixed generator does. A mask covering more than
  50 % of the image is rejected and drawn again, as in LaMa.
- ``nvidia``: a real mask of the NVIDIA irregular set, resized nearest to the
  requested size.

``ratio = (LO, HI)`` means, per kind:

- ``center``, ``rect``, ``box``: the hole's side as a fraction of the image
  side, for height and width alike (``rect``: the box before its edges shrink).
  ``center`` draws one fraction for both sides; ``box`` draws height and width
  independently (default 0.3–0.7). GLCIC's 5–12 px holes in 32² images are
  ``box`` with ``ratio=(5/32, 12/32)``.
- ``freeform``, ``cellular``, ``thin``, ``medium``, ``thick``: the hole-area
  fraction. Masks are drawn until one falls in the range (at most
  :data:`MAX_ATTEMPTS` draws, then :class:`MaskRatioError`), which keeps the
  kind's shapes and conditions them on the range.
- ``nvidia``: the hole-area fraction of the mask after resizing. Masks whose
  measured ratio (``hole_ratios.tsv``) is in the range are tried in a random
  order until one still is after resizing.
"""

from __future__ import annotations

import csv
import functools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.data.masks import resize_nearest

#: Every mask kind, in the order the CLI lists them.
MASK_KINDS: tuple[str, ...] = (
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

#: The kinds that :func:`random_training_mask` accepts (the NVIDIA set is a test set).
TRAINING_KINDS: tuple[str, ...] = tuple(kind for kind in MASK_KINDS if kind != "nvidia")

#: Draws allowed to meet a hole-area range before giving up.
MAX_ATTEMPTS = 1000

#: LaMa's cap on the hole area of its evaluation masks.
LAMA_MAX_HOLE_RATIO = 0.5

Ratio = tuple[float, float]


class MaskRatioError(ValueError):
    """No mask of the requested kind and size has a hole ratio in the requested range."""


def hole_ratio(mask: np.ndarray) -> float:
    """The fraction of pixels that are holes.

    Args:
        mask: hole mask, True (or non-zero) = hole.

    Returns:
        The hole fraction in [0, 1]; 0 for an empty array.

    Shape:
        mask: (H, W) or any shape.
    """
    mask = np.asarray(mask)
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


def generate_mask(
    kind: str,
    height: int,
    width: int,
    rng: np.random.Generator,
    ratio: tuple[float, float] | None = None,
    nvidia_dir: Path | None = None,
) -> np.ndarray:
    """Draw one hole mask of the given kind.

    Args:
        kind: one of :data:`MASK_KINDS`.
        height: mask height in pixels (>= 1).
        width: mask width in pixels (>= 1).
        rng: the source of all randomness; the same state gives the same mask.
        ratio: (LO, HI) with 0 <= LO <= HI <= 1; its meaning per kind is in the
            module docstring (side fraction for boxes, hole-area fraction otherwise).
        nvidia_dir: the NVIDIA irregular mask set for ``kind="nvidia"``; default
            :func:`restore.paths.nvidia_masks_dir` (``$RESTORE_NVIDIA_MASKS``).

    Returns:
        The mask, True = hole.

    Raises:
        ValueError: an unknown kind, a bad size or a bad ratio.
        MaskRatioError: no mask of this kind and size meets ``ratio``.
        FileNotFoundError: ``kind="nvidia"`` and the mask set is absent.

    Shape:
        output: (height, width), dtype bool.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")
    height, width = _check_size(height, width)
    if ratio is not None:
        ratio = _check_ratio(ratio)
    if kind == "nvidia":
        return _nvidia(height, width, rng, ratio, nvidia_dir)
    if kind in _BOX_KINDS:
        return _BOX_KINDS[kind](height, width, rng, ratio)
    if kind in _LAMA:
        return _lama(kind, height, width, rng, ratio)
    draw = functools.partial(_SHAPE_KINDS[kind], height, width, rng)
    if ratio is None:
        return _draw_non_empty(kind, draw, (height, width))
    return _draw_in_range(kind, draw, ratio, (height, width))


def parse_kind(spec: str) -> tuple[str, Ratio | None]:
    """A training mask spec, ``KIND`` or ``KIND:LO-HI`` (``box:0.15625-0.375``: GLCIC's 5–12 px
    boxes in 32² crops), as its kind and ratio (the ratio's meaning per kind is in the module docstring).

    Raises:
        ValueError: an unknown kind, ``nvidia`` (kept for evaluation) or a malformed ratio.
    """
    kind, _, ratio_text = spec.partition(":")
    kind = kind.strip()
    if kind not in TRAINING_KINDS:
        raise ValueError(
            f"cannot train with mask kind {kind!r}; choose from {', '.join(TRAINING_KINDS)} "
            "(the NVIDIA set is for evaluation only)"
        )
    if not ratio_text:
        return kind, None
    lo, sep, hi = ratio_text.partition("-")
    try:
        return kind, _check_ratio((float(lo), float(hi)) if sep else ())
    except ValueError:
        raise ValueError(f"mask spec {spec!r}: expected KIND:LO-HI with 0 <= LO <= HI <= 1") from None


def random_training_mask(
    kinds: Sequence[str], height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw a training mask of a kind picked uniformly from ``kinds``.

    Args:
        kinds: mask specs to pick from, ``KIND`` or ``KIND:LO-HI`` (:func:`parse_kind`; any of
            :data:`TRAINING_KINDS`; ``nvidia`` is refused because the NVIDIA set is kept for
            evaluation).
        height: mask height in pixels.
        width: mask width in pixels.
        rng: the source of all randomness (the pick and the mask).

    Returns:
        The mask, True = hole.

    Shape:
        output: (height, width), dtype bool.
    """
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not kinds:
        raise ValueError("no mask kinds given for training masks")
    parsed = [parse_kind(spec) for spec in kinds]
    kind, ratio = parsed[int(rng.integers(len(parsed)))]
    return generate_mask(kind, height, width, rng, ratio=ratio)


# --------------------------------------------------------------------------- checks


def _check_size(height: int, width: int) -> tuple[int, int]:
    try:
        height, width = operator.index(height), operator.index(width)
    except TypeError:
        raise ValueError(f"mask size must be whole numbers, got {height!r}x{width!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be at least 1x1, got {height}x{width}")
    return height, width


def _check_ratio(ratio: Sequence[float]) -> Ratio:
    try:
        lo, hi = (float(value) for value in ratio)
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be two numbers (LO, HI), got {ratio!r}") from None
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"ratio must satisfy 0 <= LO <= HI <= 1, got ({lo:g}, {hi:g})")
    return lo, hi


def _draw_in_range(
    kind: str, draw: Callable[[], np.ndarray], ratio: Ratio, size: tuple[int, int]
) -> np.ndarray:
    """Call ``draw`` until its mask's hole ratio lies in ``ratio`` (inclusive)."""
    lo, hi = ratio
    for _ in range(MAX_ATTEMPTS):
        mask = draw()
        if lo <= hole_ratio(mask) <= hi:
            return mask
    raise MaskRatioError(
        f"could not draw a {kind} mask of {size[0]}x{size[1]} with hole ratio in "
        f"[{lo:g}, {hi:g}] in {MAX_ATTEMPTS} attempts"
    )


def _draw_non_empty(kind: str, draw: Callable[[], np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Call ``draw`` until its mask has a hole (small cellular grids can vanish under the median)."""
    for _ in range(MAX_ATTEMPTS):
        mask = draw()
        if mask.any():
            return mask
    raise MaskRatioError(
        f"could not draw a {kind} mask of {size[0]}x{size[1]} with any hole in {MAX_ATTEMPTS} attempts"
    )


# --------------------------------------------------------------------------- boxes


def _side_range(side: int, ratio: Ratio, kind: str, strict: bool = True) -> tuple[int, int]:
    """Whole-pixel lengths whose fraction of ``side`` lies in ``ratio``, at least 1 px.

    When no whole length fits, ``strict`` raises :class:`MaskRatioError`; otherwise the
    nearest length above the range is used (for default ranges on tiny images).
    """
    lo = min(side, max(1, math.ceil(ratio[0] * side - 1e-9)))
    hi = min(side, math.floor(ratio[1] * side + 1e-9))
    if lo > hi and not strict:
        return lo, lo
    if lo > hi:
        raise MaskRatioError(
            f"no whole-pixel {kind} side of a {side}-px image side is within "
            f"[{ratio[0]:g}, {ratio[1]:g}] of it"
        )
    return lo, hi


def _box_mask(height: int, width: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _center(height: int, width: int, rng: np.random.Generator, ratio: Ratio | None) -> np.ndarray:
    if ratio is None:
        box_h, box_w = max(1, height // 2), max(1, width // 2)
    else:
        fraction = rng.uniform(*ratio)
        box_h = int(np.clip(round(fraction * height), *_side_range(height, ratio, "center")))
        box_w = int(np.clip(round(fraction * width), *_side_range(width, ratio, "center")))
    top, left = (height - box_h) // 2, (width - box_w) // 2
    return _box_mask(height, width, top, left, top + box_h, left + box_w)


def _rect(height: int, width: int, rng: np.random.Generator, ratio: Ratio | None) -> np.ndarray:
    if ratio is None:
        box_h, box_w = max(1, height // 2), max(1, width // 2)
    else:
        box_h = int(rng.integers(*_side_range(height, ratio, "rect"), endpoint=True))
        box_w = int(rng.integers(*_side_range(width, ratio, "rect"), endpoint=True))
    top = int(rng.integers(0, height - box_h, endpoint=True))
    left = int(rng.integers(0, width - box_w, endpoint=True))
    # each edge moves inwards by up to side/16, always leaving at least one pixel
    shrink_h = min(height // 16, (box_h - 1) // 2)
    shrink_w = min(width // 16, (box_w - 1) // 2)
    d_top, d_bottom = (int(v) for v in rng.integers(0, shrink_h, size=2, endpoint=True))
    d_left, d_right = (int(v) for v in rng.integers(0, shrink_w, size=2, endpoint=True))
    return _box_mask(
        height, width, top + d_top, left + d_left, top + box_h - d_bottom, left + box_w - d_right
    )


def _box(height: int, width: int, rng: np.random.Generator, ratio: Ratio | None) -> np.ndarray:
    strict = ratio is not None
    ratio = (0.3, 0.7) if ratio is None else ratio
    box_h = int(rng.integers(*_side_range(height, ratio, "box", strict), endpoint=True))
    box_w = int(rng.integers(*_side_range(width, ratio, "box", strict), endpoint=True))
    top = int(rng.integers(0, height - box_h, endpoint=True))
    left = int(rng.integers(0, width - box_w, endpoint=True))
    return _box_mask(height, width, top, left, top + box_h, left + box_w)


_BOX_KINDS: dict[str, Callable[..., np.ndarray]] = {"center": _center, "rect": _rect, "box": _box}


# --------------------------------------------------------------------------- free-form (DeepFill v2)

_FREEFORM_MEAN_ANGLE = 2 * math.pi / 5
_FREEFORM_ANGLE_RANGE = 2 * math.pi / 15


def _freeform(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    scale = min(height, width) / 256
    mean_radius = math.hypot(height, width) / 8
    for _ in range(int(rng.integers(1, 4))):
        n_segments = int(rng.integers(4, 12))
        angle_lo = _FREEFORM_MEAN_ANGLE - rng.uniform(0, _FREEFORM_ANGLE_RANGE)
        angle_hi = _FREEFORM_MEAN_ANGLE + rng.uniform(0, _FREEFORM_ANGLE_RANGE)
        angles = rng.uniform(angle_lo, angle_hi, n_segments)
        angles[::2] = 2 * math.pi - angles[::2]
        radii = np.clip(rng.normal(mean_radius, mean_radius / 2, n_segments), 0, 2 * mean_radius)
        x, y = float(rng.integers(width)), float(rng.integers(height))
        points = [(int(x), int(y))]
        for angle, radius in zip(angles, radii, strict=True):
            x = min(max(x + radius * math.cos(angle), 0.0), width - 1.0)
            y = min(max(y + radius * math.sin(angle), 0.0), height - 1.0)
            points.append((int(x), int(y)))
        brush = max(1, int(rng.uniform(12, 40) * scale))
        cv2.polylines(mask, [np.array(points, dtype=np.int32)], False, 1, brush)
        for point in points:  # round joints
            cv2.circle(mask, point, brush // 2, 1, -1)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    return mask.astype(bool)


# --------------------------------------------------------------------------- cellular (AIM 2020)

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _median3(grid: np.ndarray) -> np.ndarray:
    """3×3 median of a 0/1 uint8 grid with a zero border: the majority of the 9 cells."""
    counts = cv2.boxFilter(grid, cv2.CV_8U, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return (counts >= 5).astype(np.uint8)


def _cellular(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    scale = (1, 2, 4, 8)[int(rng.integers(4))]
    passes = int(rng.integers(2, 6, endpoint=True))
    grid = rng.integers(0, 2, size=(-(-height // scale), -(-width // scale)), dtype=np.uint8)
    for _ in range(passes):
        grid = _median3(grid)
    mask = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)[:height, :width]
    if scale > 1:
        mask = cv2.dilate(np.ascontiguousarray(mask), _CROSS)
    return mask.astype(bool)


_SHAPE_KINDS: dict[str, Callable[..., np.ndarray]] = {"freeform": _freeform, "cellular": _cellular}


# --------------------------------------------------------------------------- LaMa thin / medium / thick


@dataclass(frozen=True)
class _LamaSpec:
    """One of LaMa's evaluation mask settings, in pixels at 512²."""

    min_strokes: int
    max_strokes: int
    max_width: int
    max_length: int
    box_weight: float = 0.0
    min_boxes: int = 0
    max_boxes: int = 0
    box_min: int = 0
    box_max: int = 0
    box_margin: int = 0
    min_width: int = 5
    min_length: int = 10
    max_angle: float = 4.0


_LAMA: dict[str, _LamaSpec] = {
    "thin": _LamaSpec(4, 70, max_width=20, max_length=100),
    "medium": _LamaSpec(
        4,
        10,
        max_width=100,
        max_length=200,
        box_weight=0.3,
        min_boxes=1,
        max_boxes=5,
        box_min=30,
        box_max=150,
    ),
    "thick": _LamaSpec(
        1,
        5,
        max_width=250,
        max_length=450,
        box_weight=0.3,
        min_boxes=1,
        max_boxes=4,
        box_min=30,
        box_max=300,
        box_margin=10,
    ),
}


def _scaled_range(lo: float, hi: float, scale: float) -> tuple[int, int]:
    top = max(1, round(hi * scale))
    return min(max(1, round(lo * scale)), top), top


def _lama_strokes(
    mask: np.ndarray, spec: _LamaSpec, scale: float, rng: np.random.Generator
) -> None:
    height, width = mask.shape
    widths = _scaled_range(spec.min_width, spec.max_width, scale)
    lengths = _scaled_range(spec.min_length, spec.max_length, scale)
    for stroke in range(int(rng.integers(spec.min_strokes, spec.max_strokes, endpoint=True))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        n_segments = int(rng.integers(1, 5, endpoint=True))
        angles = rng.uniform(0, spec.max_angle, n_segments)
        if stroke % 2 == 0:
            angles = 2 * math.pi - angles
        seg_lengths = rng.integers(*lengths, size=n_segments, endpoint=True)
        seg_widths = rng.integers(*widths, size=n_segments, endpoint=True)
        for angle, length, brush in zip(angles, seg_lengths, seg_widths, strict=True):
            end_x = min(max(int(x + length * math.sin(angle)), 0), width - 1)
            end_y = min(max(int(y + length * math.cos(angle)), 0), height - 1)
            cv2.line(mask, (x, y), (end_x, end_y), 1, int(brush))
            x, y = end_x, end_y


def _lama_boxes(mask: np.ndarray, spec: _LamaSpec, scale: float, rng: np.random.Generator) -> None:
    height, width = mask.shape
    margin = min(round(spec.box_margin * scale), (min(height, width) - 1) // 2)
    top_size = max(1, min(round(spec.box_max * scale), height - 2 * margin, width - 2 * margin))
    low_size = min(max(1, round(spec.box_min * scale)), top_size)
    for _ in range(int(rng.integers(spec.min_boxes, spec.max_boxes, endpoint=True))):
        box_w, box_h = (int(v) for v in rng.integers(low_size, top_size, size=2, endpoint=True))
        left = int(rng.integers(margin, width - margin - box_w, endpoint=True))
        top = int(rng.integers(margin, height - margin - box_h, endpoint=True))
        mask[top : top + box_h, left : left + box_w] = 1


def _lama_once(spec: _LamaSpec, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    scale = min(height, width) / 512
    use_boxes = spec.box_weight > 0 and rng.random() < spec.box_weight / (1 + spec.box_weight)
    (_lama_boxes if use_boxes else _lama_strokes)(mask, spec, scale, rng)
    return mask.astype(bool)


def _lama(
    kind: str, height: int, width: int, rng: np.random.Generator, ratio: Ratio | None
) -> np.ndarray:
    lo, hi = (0.0, 1.0) if ratio is None else ratio
    hi = min(hi, LAMA_MAX_HOLE_RATIO)
    if lo > hi:
        raise MaskRatioError(
            f"{kind} masks cover at most {LAMA_MAX_HOLE_RATIO:g} of the image; "
            f"a hole ratio of at least {lo:g} cannot be drawn"
        )
    draw = functools.partial(_lama_once, _LAMA[kind], height, width, rng)
    return _draw_in_range(kind, draw, (lo, hi), (height, width))


# --------------------------------------------------------------------------- NVIDIA irregular masks


def _nvidia_files_dir(root: Path) -> Path:
    inner = root / "testing_mask_dataset"
    return inner if inner.is_dir() else root


@functools.lru_cache(maxsize=8)
def nvidia_index(root: Path) -> tuple[tuple[Path, ...], np.ndarray]:
    """The mask files of an NVIDIA irregular mask set and their hole ratios (cached per folder).

    Reads ``ROOT/hole_ratios.tsv`` (columns ``file`` and ``hole_ratio``) when present;
    otherwise measures every PNG in ``ROOT/testing_mask_dataset`` (or ``ROOT``).

    Args:
        root: the mask set's folder.

    Returns:
        (files, ratios): the mask paths and a float64 array of their hole ratios.

    Raises:
        FileNotFoundError: the folder is absent or holds no PNG masks.
        ValueError: the tsv lacks a ``file``/``hole_ratio`` column or has a bad ratio.
    """
    if not root.is_dir():
        raise FileNotFoundError(
            f"NVIDIA irregular masks not found: {root} does not exist "
            "(set RESTORE_NVIDIA_MASKS or pass the folder, --nvidia-dir on the CLI)"
        )
    folder = _nvidia_files_dir(root)
    table = root / "hole_ratios.tsv"
    if table.is_file():
        files, ratios = _read_ratio_table(table, folder)
    else:
        files = sorted(folder.glob("*.png"))
        ratios = [hole_ratio(_read_nvidia_png(path)) for path in files]
    if not files:
        raise FileNotFoundError(f"no NVIDIA mask PNGs found in {folder}")
    return tuple(files), np.asarray(ratios, dtype=np.float64)


def _read_ratio_table(table: Path, folder: Path) -> tuple[list[Path], list[float]]:
    files: list[Path] = []
    ratios: list[float] = []
    with table.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not {"file", "hole_ratio"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{table} needs the columns 'file' and 'hole_ratio'")
        for line, row in enumerate(reader, start=2):
            try:
                ratios.append(float(row["hole_ratio"]))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{table}, line {line}: bad hole_ratio {row['hole_ratio']!r}"
                ) from None
            files.append(folder / row["file"])
    return files, ratios


def _read_nvidia_png(path: Path) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise FileNotFoundError(
            f"cannot read NVIDIA mask {path}: {error.strerror or error}"
        ) from None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise ValueError(f"cannot decode NVIDIA mask {path}")
    return image > 127


def _nvidia(
    height: int,
    width: int,
    rng: np.random.Generator,
    ratio: Ratio | None,
    nvidia_dir: Path | None,
) -> np.ndarray:
    if nvidia_dir is None:
        from restore.paths import nvidia_masks_dir

        nvidia_dir = nvidia_masks_dir()
    root = Path(nvidia_dir)
    files, ratios = nvidia_index(root)
    if ratio is None:
        return resize_nearest(_read_nvidia_png(files[int(rng.integers(len(files)))]), (height, width))
    lo, hi = ratio
    candidates = np.flatnonzero((ratios >= lo) & (ratios <= hi))
    if candidates.size == 0:
        raise MaskRatioError(
            f"no NVIDIA mask in {root} has a hole ratio in [{lo:g}, {hi:g}] "
            f"(the set spans {ratios.min():.3f}-{ratios.max():.3f})"
        )
    for index in rng.permutation(candidates)[:MAX_ATTEMPTS]:
        mask = resize_nearest(_read_nvidia_png(files[index]), (height, width))
        if lo <= hole_ratio(mask) <= hi:
            return mask
    raise MaskRatioError(
        f"no NVIDIA mask in {root} keeps a hole ratio in [{lo:g}, {hi:g}] "
        f"after resizing to {height}x{width}"
    )
