"""Image quality metrics with the evaluation protocol's pinned settings (DESIGN §10).

All functions take images in [0, 1] as (H, W, C) arrays.

Fidelity (whole image): L1 %, L2 % (mean squared error × 100), PSNR (dB) and SSIM. SSIM
uses scikit-image with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=-1, data_range=1``; numbers from other SSIM implementations are not
comparable. Images with a side under 11 px get a smaller ``win_size`` (see :func:`ssim`).

Realism (inside the hole, no downloaded network), because PSNR and SSIM reward blur:

* **SWD** (:func:`sliced_wasserstein`): the sliced Wasserstein distance between 7×7 patches
  of the restored and the original image, taken from the band-pass levels of a Laplacian
  pyramid at the positions whose centre lies in the hole (Karras et al. 2018, restricted to
  the hole), × 10³; 0 for the original, larger for fills whose texture statistics differ
  (a blur loses the fine bands). Lower is better.
* **Detail ratio** (:func:`gradient_energy`): mean gradient magnitude inside the hole,
  restored / original; 1.0 is the real image's detail, a blurry fill is well below,
  noise above. A set's ratio is the ratio of its mean gradient magnitudes (so a flat
  original cannot blow it up).

:func:`realism_metrics` documents both exactly.
"""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("l1", "l2", "psnr", "ssim")
#: Realism figures per image (``grad_pred`` / ``grad_target`` are the detail ratio's terms).
REALISM_NAMES = ("swd", "detail")
#: Side of the SWD patches.
SWD_PATCH = 7
#: The coarsest Gaussian level of the SWD pyramid has at least this side (Karras et al.: 16).
SWD_MIN_SIDE = 16
#: Patches per pyramid level per image, at most (a random, seeded subset of the hole's).
SWD_PATCHES = 256
#: Random projection directions of the sliced Wasserstein distance.
SWD_DIRECTIONS = 128
#: Floor on a band's standard deviation before SWD divides by it (a flat original).
SWD_STD_FLOOR = 1e-3
#: SWD is reported × 10³.
SWD_SCALE = 1e3
#: hole-ratio buckets of the CSA paper's Table 2 (and the NVIDIA mask set), as (low, high).
BUCKETS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5))
#: scikit-image's SSIM window for the Gaussian of σ = 1.5 (truncated at 3.5 σ): 11 px a side.
SSIM_WINDOW = 11


def _as_float(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    return array


def l1_percent(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error × 100."""
    return float(np.mean(np.abs(_as_float(pred) - _as_float(target))) * 100.0)


def l2_percent(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error × 100."""
    return float(np.mean((_as_float(pred) - _as_float(target)) ** 2) * 100.0)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for data range 1 (``inf`` for identical images)."""
    mse = float(np.mean((_as_float(pred) - _as_float(target)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def ssim_window(height: int, width: int) -> int | None:
    """The ``win_size`` :func:`ssim` gives scikit-image for an image of this size.

    Returns:
        None (scikit-image's 11 px) when both sides have at least 11 px; otherwise the
        largest odd number not above the smaller side.

    Raises:
        ValueError: the image has no pixel.
    """
    side = min(height, width)
    if side < 1:
        raise ValueError(f"SSIM of an empty {height}x{width} image")
    if side >= SSIM_WINDOW:
        return None
    return side if side % 2 else side - 1


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM with the pinned scikit-image settings (Gaussian σ = 1.5, no sample covariance).

    Local means and variances are Gaussian-weighted (11 taps, borders mirrored) and the
    image mean leaves out a border strip of half the window (5 px). An image whose
    smaller side is under 11 px is scored with the largest odd window that fits (see
    :func:`ssim_window`). With Gaussian weights this narrows only the strip left out,
    not the Gaussian: a 3×N image leaves out 1 row each side; 1×N and 2×N leave out
    nothing, their statistics coming from the mirrored row(s) (for 1×N, the 1-D SSIM
    along the row). A 1×1 image has no local variance, so its SSIM is the luminance term
    (2xy + C1) / (x² + y² + C1), C1 = 0.01², averaged over channels. Images of 11 px and
    more a side are scored exactly as scikit-image's default does.

    Shape:
        pred, target: (H, W, C) or (H, W), values in [0, 1].
    """
    from skimage.metrics import structural_similarity

    a, b = _as_float(pred), _as_float(target)
    return float(
        structural_similarity(
            a, b, win_size=ssim_window(*a.shape[:2]), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, channel_axis=-1, data_range=1.0,
        )
    )


def image_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """L1 %, L2 %, PSNR (dB) and SSIM of one image.

    Shape:
        pred, target: (H, W, C) or (H, W), values in [0, 1].
    """
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"prediction {np.shape(pred)} and target {np.shape(target)} differ in shape")
    return {"l1": l1_percent(pred, target), "l2": l2_percent(pred, target), "psnr": psnr(pred, target), "ssim": ssim(pred, target)}


def bucket_name(low: float, high: float) -> str:
    """``"10-20%"`` for (0.1, 0.2)."""
    return f"{round(low * 100)}-{round(high * 100)}%"


def bucket_of(ratio: float) -> str | None:
    """The name of the :data:`BUCKETS` entry holding a hole ratio, or None."""
    for low, high in BUCKETS:
        if low <= ratio < high or (high == BUCKETS[-1][1] and ratio == high):
            return bucket_name(low, high)
    return None


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over rows (PSNR averaged in dB, as the papers do)."""
    if not rows:
        return {}
    return {name: float(np.mean([row[name] for row in rows])) for name in METRIC_NAMES}


# --------------------------------------------------------------------------------------------
# Realism inside the hole
# --------------------------------------------------------------------------------------------


def laplacian_bands(image: np.ndarray, min_side: int = SWD_MIN_SIDE) -> list[np.ndarray]:
    """The band-pass levels of a Laplacian pyramid, finest first.

    Gaussian levels ``G0 = image``, ``G(l+1) = pyrDown(Gl)`` (5-tap binomial filter, then
    every other pixel; OpenCV's ``pyrDown``) while ``G(l+1)``'s smaller side is at least
    ``min_side``; band ``l`` is ``Gl - pyrUp(G(l+1))``. The low-pass residual (the coarsest
    Gaussian level) is left out: it holds the colours, which PSNR already measures.

    Shape:
        image: (H, W, C) float in [0, 1]; returns (Hl, Wl, C) per level, Hl = ⌈H / 2^l⌉.
        An image whose smaller side is under ``2 * min_side`` has no band.
    """
    import cv2

    level = np.ascontiguousarray(image, dtype=np.float64)
    if level.ndim == 2:
        level = level[..., None]
    bands = []
    while min(level.shape[:2]) >= 2 * min_side:
        smaller = cv2.pyrDown(level)
        if smaller.ndim == 2:
            smaller = smaller[..., None]
        up = cv2.pyrUp(smaller, dstsize=(level.shape[1], level.shape[0]))
        bands.append(level - (up[..., None] if up.ndim == 2 else up))
        level = smaller
    return bands


def _hole_levels(hole: np.ndarray, count: int) -> list[np.ndarray]:
    """The hole at each pyramid level: the same ``pyrDown`` on the mask, thresholded at one half."""
    import cv2

    levels, current = [], hole.astype(np.float64)
    for _ in range(count):
        levels.append(current >= 0.5)
        current = cv2.pyrDown(current)
    return levels


def _directions(dims: int, count: int = SWD_DIRECTIONS, seed: int = 0) -> np.ndarray:
    """``count`` random unit vectors in ``dims`` dimensions (fixed by ``seed``). Shape: (dims, count)."""
    vectors = np.random.default_rng(seed).standard_normal((dims, count))
    return vectors / np.linalg.norm(vectors, axis=0, keepdims=True)


def sliced_wasserstein(pred: np.ndarray, target: np.ndarray, hole: np.ndarray, seed: int = 0) -> float:
    """SWD between the hole's Laplacian-pyramid patches of ``pred`` and ``target``, × 10³.

    At every band of :func:`laplacian_bands` (4 bands for 256²: 256, 128, 64 and 32 px), the
    positions whose pixel is in the hole at that level (:func:`_hole_levels`) are the patch
    centres; at most :data:`SWD_PATCHES` of them are drawn (seeded; the same for both
    images). Each patch is the 7×7×C neighbourhood (borders reflected), a vector of 147
    values for RGB, divided per channel by the standard deviation of the *original's* band
    over the whole image (floored at :data:`SWD_STD_FLOOR`): every level weighs alike, the
    figure does not depend on the photo's contrast, and a fill with less contrast than the
    original still scores worse (Karras et al. normalise each set by its own statistics,
    which would forgive a low-contrast fill). The two sets of vectors are projected
    onto :data:`SWD_DIRECTIONS` random unit directions; per direction the sorted projections
    are compared (mean absolute difference: the 1-D Wasserstein-1 distance), then averaged
    over directions and over the levels that have at least one hole position.

    Returns:
        The distance × 10³ (0 when ``pred`` equals ``target`` in the hole's neighbourhood), or
        NaN when no level has a hole position (an image under 32 px a side, or no hole).

    Shape:
        pred, target: (H, W, C) in [0, 1]; hole: (H, W) bool, True = hole.
    """
    if np.shape(pred) != np.shape(target) or np.shape(pred)[:2] != np.shape(hole):
        raise ValueError(f"SWD: prediction {np.shape(pred)}, target {np.shape(target)} and hole {np.shape(hole)} differ in size")
    bands_pred, bands_target = laplacian_bands(pred), laplacian_bands(target)
    if not bands_pred:
        return math.nan
    rng = np.random.default_rng(seed)
    radius = SWD_PATCH // 2
    distances = []
    for band_pred, band_target, holes in zip(bands_pred, bands_target, _hole_levels(hole, len(bands_pred)), strict=True):
        ys, xs = np.nonzero(holes)
        if ys.size == 0:
            continue
        if ys.size > SWD_PATCHES:
            chosen = rng.choice(ys.size, SWD_PATCHES, replace=False)
            ys, xs = ys[chosen], xs[chosen]
        scale = np.maximum(band_target.reshape(-1, band_target.shape[-1]).std(axis=0), SWD_STD_FLOOR)
        sets = []
        for band in (band_pred, band_target):
            padded = np.pad(band / scale, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
            windows = np.lib.stride_tricks.sliding_window_view(padded, (SWD_PATCH, SWD_PATCH), axis=(0, 1))
            sets.append(windows[ys, xs].reshape(ys.size, -1))
        directions = _directions(sets[0].shape[1], seed=seed)
        projected = [np.sort(vectors @ directions, axis=0) for vectors in sets]
        distances.append(float(np.abs(projected[0] - projected[1]).mean()))
    return float(np.mean(distances)) * SWD_SCALE if distances else math.nan


def gradient_energy(image: np.ndarray, hole: np.ndarray) -> float:
    """Mean gradient magnitude of the grey image (mean of the channels) at the hole's pixels.

    Gradients are central differences (``numpy.gradient``; one-sided at the borders), so the
    seam between fill and surroundings counts too.

    Returns:
        The mean magnitude (per pixel, values in [0, 1]); NaN when there is no hole.

    Shape:
        image: (H, W, C) or (H, W) in [0, 1]; hole: (H, W) bool.
    """
    grey = _as_float(image).mean(axis=-1)
    if not hole.any():
        return math.nan
    if min(grey.shape) < 2:
        gradients = [np.gradient(grey, axis=axis) for axis in range(2) if grey.shape[axis] > 1]
    else:
        gradients = list(np.gradient(grey))
    magnitude = np.sqrt(sum(g**2 for g in gradients)) if gradients else np.zeros_like(grey)
    return float(magnitude[hole].mean())


def realism_metrics(pred: np.ndarray, target: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """SWD (× 10³) and the detail ratio of one restoration, measured inside its hole.

    Returns:
        ``{"swd", "detail", "grad_pred", "grad_target"}``: ``detail`` is
        ``grad_pred / grad_target`` (NaN when the original is flat in the hole or there is no
        hole); the two terms are kept so that a set's ratio can be the ratio of their means
        (:func:`summarise`). Values are NaN where undefined.

    Shape:
        pred, target: (H, W, C) in [0, 1]; hole: (H, W) bool, True = hole.
    """
    hole = np.asarray(hole, dtype=bool)
    if np.shape(pred) != np.shape(target) or np.shape(pred)[:2] != hole.shape:
        raise ValueError(f"realism: prediction {np.shape(pred)}, target {np.shape(target)} and hole {hole.shape} differ in size")
    grad_pred, grad_target = gradient_energy(pred, hole), gradient_energy(target, hole)
    detail = grad_pred / grad_target if grad_target > 0 else math.nan
    return {"swd": sliced_wasserstein(pred, target, hole), "detail": detail, "grad_pred": grad_pred, "grad_target": grad_target}


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """A set's figures from per-image rows: :func:`mean_metrics` for fidelity, and realism.

    SWD is the mean over the images where it is defined; the detail ratio is the mean
    gradient magnitude of the restorations over that of the originals (images with a hole).
    Realism keys are left out when no row has them; NaN when no image defines them.
    """
    means = mean_metrics(rows)
    if rows and "swd" in rows[0]:
        swd = [row["swd"] for row in rows if math.isfinite(row["swd"])]
        means["swd"] = float(np.mean(swd)) if swd else math.nan
        pairs = [(row["grad_pred"], row["grad_target"]) for row in rows if math.isfinite(row["grad_target"])]
        target_energy = sum(t for _, t in pairs)
        means["detail"] = sum(p for p, _ in pairs) / target_energy if target_energy > 0 else math.nan
    return means
