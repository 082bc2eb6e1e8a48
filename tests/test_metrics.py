"""Metrics: exact values on constructed images, and agreement with scikit-image's pinned settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restore.metrics import (
    bucket_of,
    image_metrics,
    l1_percent,
    l2_percent,
    mean_metrics,
    psnr,
    ssim,
    ssim_window,
)


def test_constant_offset_gives_known_values() -> None:
    target = np.full((8, 8, 3), 0.5)
    pred = target + 0.1
    assert l1_percent(pred, target) == pytest.approx(10.0)
    assert l2_percent(pred, target) == pytest.approx(1.0)
    assert psnr(pred, target) == pytest.approx(20.0)


def test_identical_images() -> None:
    image = np.random.default_rng(0).random((16, 16, 3))
    m = image_metrics(image, image)
    assert m["l1"] == 0 and m["l2"] == 0 and math.isinf(m["psnr"]) and m["ssim"] == pytest.approx(1.0)


def test_against_scikit_image_on_real_photo_like_data() -> None:
    rng = np.random.default_rng(1)
    target = rng.random((64, 48, 3))
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    assert psnr(pred, target) == pytest.approx(peak_signal_noise_ratio(target, pred, data_range=1.0))
    pinned = structural_similarity(
        target, pred, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=1.0
    )
    assert ssim(pred, target) == pytest.approx(pinned, abs=1e-12)
    # the pinned settings matter: scikit-image's defaults give a different number
    default = structural_similarity(target, pred, channel_axis=-1, data_range=1.0)
    assert abs(default - pinned) > 1e-4


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        image_metrics(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_buckets_and_means() -> None:
    assert bucket_of(0.15) == "10-20%" and bucket_of(0.5) == "40-50%" and bucket_of(0.05) is None
    rows = [{"l1": 1.0, "l2": 2.0, "psnr": 30.0, "ssim": 0.9}, {"l1": 3.0, "l2": 4.0, "psnr": 20.0, "ssim": 0.7}]
    assert mean_metrics(rows) == {"l1": 2.0, "l2": 3.0, "psnr": 25.0, "ssim": pytest.approx(0.8)}


def _ssim_by_hand(pred: np.ndarray, target: np.ndarray, border: int) -> float:
    """SSIM from its definition (Wang et al. 2004) with SciPy's Gaussian filter: local
    Gaussian-weighted statistics (σ 1.5, 11 taps, mirrored borders), mean over the image
    less ``border`` pixels each side, averaged over channels."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = 0.01**2, 0.03**2
    per_channel = []
    for c in range(target.shape[-1]):
        x, y = pred[..., c], target[..., c]

        def blur(z: np.ndarray) -> np.ndarray:
            return gaussian_filter(z, sigma=1.5, truncate=3.5, mode="reflect")

        mx, my = blur(x), blur(y)
        vx, vy, vxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        per_channel.append(s[border : s.shape[0] - border, border : s.shape[1] - border].mean())
    return float(np.mean(per_channel))


def _noisy_pair(height: int, width: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.random((height, width, 3))
    return np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1), target


@pytest.mark.parametrize(
    "height, width, border",
    [(40, 30, 5), (10, 10, 4), (3, 700, 1), (6, 40, 2), (2, 50, 0), (1, 50, 0), (700, 1, 0)],
)
def test_ssim_of_small_images_uses_the_largest_odd_window_that_fits(height: int, width: int, border: int) -> None:
    pred, target = _noisy_pair(height, width)
    value = ssim(pred, target)
    assert value == pytest.approx(_ssim_by_hand(pred, target, border), abs=1e-9)
    assert 0.5 < value < 0.99 and ssim(target, target) == pytest.approx(1.0)


def test_ssim_of_a_single_pixel_is_the_luminance_term() -> None:
    pred, target = np.array([[[0.2, 0.5, 0.9]]]), np.array([[[0.3, 0.5, 0.6]]])
    c1 = 0.01**2
    luminance = (2 * pred * target + c1) / (pred**2 + target**2 + c1)
    assert ssim(pred, target) == pytest.approx(float(luminance.mean()), abs=1e-12)
    assert ssim(pred, target) < 1 and ssim(target, target) == pytest.approx(1.0)


def test_ssim_windows_and_an_empty_image() -> None:
    assert [ssim_window(h, 700) for h in (1, 2, 3, 4, 9, 10, 11, 256)] == [1, 1, 3, 3, 9, 9, None, None]
    with pytest.raises(ValueError, match="empty 0x5 image"):
        ssim(np.zeros((0, 5, 3)), np.zeros((0, 5, 3)))


# ----------------------------------------------------------------------------------- realism


def _textured(size: int = 128, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth colour ramps plus a multi-scale texture."""
    import cv2

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 0.8, size)
    base = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, ramp[::-1]) / 2, np.full((size, size), 0.5)], -1)
    texture = sum(cv2.resize(rng.normal(0, 0.06, (size // s, size // s)), (size, size), interpolation=cv2.INTER_CUBIC) for s in (1, 2, 4, 8))
    return np.clip(base + texture[..., None], 0, 1)


def _hole(size: int = 128) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    hole[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = True
    return hole


def _filled(image: np.ndarray, hole: np.ndarray, fill: np.ndarray) -> np.ndarray:
    return np.where(hole[..., None], fill, image)


def test_the_original_pasted_back_scores_zero_and_one() -> None:
    from restore.metrics import realism_metrics

    image, hole = _textured(), _hole()
    m = realism_metrics(image, image, hole)
    assert m["swd"] == 0.0 and m["detail"] == 1.0


def test_a_blurred_fill_scores_worse_and_noise_adds_detail() -> None:
    import cv2

    from restore.metrics import realism_metrics

    image, hole = _textured(), _hole()
    blurred = realism_metrics(_filled(image, hole, cv2.GaussianBlur(image, (0, 0), 3)), image, hole)
    slightly = realism_metrics(_filled(image, hole, cv2.GaussianBlur(image, (0, 0), 1)), image, hole)
    noisy = realism_metrics(_filled(image, hole, np.clip(image + np.random.default_rng(1).normal(0, 0.1, image.shape), 0, 1)), image, hole)
    assert blurred["detail"] < 0.7 and blurred["swd"] > slightly["swd"] > 0
    assert noisy["detail"] > 1.0 and noisy["swd"] > 0
    # a real texture from elsewhere in the photo is closer in texture statistics than a blur, though not in pixels
    shifted = realism_metrics(_filled(image, hole, np.roll(image, (17, 23), axis=(0, 1))), image, hole)
    assert shifted["swd"] < blurred["swd"] and abs(shifted["detail"] - 1) < abs(blurred["detail"] - 1)


def test_realism_on_real_photos_ranks_blur_below_opencv() -> None:
    """On real photos with a real irregular mask: a σ = 3 blur fill is less realistic than Telea's."""
    import cv2
    from helpers import shared_data

    from restore.data.datasets import centre_square, load_images
    from restore.data.mask_generators import generate_mask
    from restore.metrics import realism_metrics, summarise
    from restore.models.classical import OpenCVInpainter

    _, photos = load_images(shared_data("eval", "kodak24"))
    rows: dict[str, list] = {"blur": [], "telea": []}
    for index, photo in enumerate(photos[:4]):
        image = centre_square(photo, 256)
        hole = generate_mask("nvidia", 256, 256, np.random.default_rng(index), ratio=(0.2, 0.3))
        x = image / 255.0
        telea = OpenCVInpainter("telea").inpaint_array(image, hole) / 255.0
        for name, restored in (("blur", _filled(x, hole, cv2.GaussianBlur(x, (0, 0), 3))), ("telea", telea)):
            rows[name].append({"l1": 0.0, "l2": 0.0, "psnr": 0.0, "ssim": 0.0, **realism_metrics(restored, x, hole)})
    blur, telea = summarise(rows["blur"]), summarise(rows["telea"])
    assert blur["swd"] > telea["swd"] and blur["detail"] < telea["detail"] < 1.0


def test_realism_where_it_is_undefined_and_the_set_ratio() -> None:
    from restore.metrics import laplacian_bands, realism_metrics, summarise

    small = np.random.default_rng(0).random((20, 40, 3))
    hole = np.zeros((20, 40), bool)
    hole[5:10, 5:20] = True
    m = realism_metrics(small, small, hole)
    assert math.isnan(m["swd"]) and m["detail"] == 1.0  # under 32 px a side: no band
    assert [b.shape for b in laplacian_bands(np.zeros((64, 100, 1)))] == [(64, 100, 1), (32, 50, 1)]
    none = realism_metrics(small, small, np.zeros((20, 40), bool))
    assert math.isnan(none["swd"]) and math.isnan(none["detail"])
    flat = np.full((40, 40, 3), 0.5)
    assert math.isnan(realism_metrics(flat, flat, hole[:, :40].repeat(2, 0))["detail"])
    base = {"l1": 1.0, "l2": 1.0, "psnr": 30.0, "ssim": 0.9}
    rows = [{**base, "swd": 10.0, "detail": 2.0, "grad_pred": 0.2, "grad_target": 0.1},
            {**base, "swd": math.nan, "detail": 0.5, "grad_pred": 0.1, "grad_target": 0.2}]
    summary = summarise(rows)
    assert summary["swd"] == 10.0 and summary["detail"] == pytest.approx(0.3 / 0.3) and summary["psnr"] == 30.0
    with pytest.raises(ValueError, match="differ in size"):
        realism_metrics(small, small, hole[:10])
