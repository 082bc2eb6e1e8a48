"""Image quality metrics with the evaluation protocol's pinned settings (DESIGN §10).

All functions take images in [0, 1] as (H, W, C) arrays. SSIM uses scikit-image
with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=-1, data_range=1``; numbers from other SSIM implementations are
not comparable. Images with a side under 11 px get a smaller ``win_size`` (see :func:`ssim`).
"""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("l1", "l2", "psnr", "ssim")
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
