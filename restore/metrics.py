"""Image quality metrics with the evaluation protocol's pinned settings (DESIGN §10).

All functions take images in [0, 1] as (H, W, C) arrays. SSIM uses scikit-image
with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=-1, data_range=1``; numbers from other SSIM implementations are
not comparable.
"""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("l1", "l2", "psnr", "ssim")
#: hole-ratio buckets of the CSA paper's Table 2 (and the NVIDIA mask set), as (low, high).
BUCKETS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5))


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


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM with the pinned scikit-image settings (Gaussian σ = 1.5, no sample covariance)."""
    from skimage.metrics import structural_similarity

    a, b = _as_float(pred), _as_float(target)
    return float(
        structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=1.0
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
