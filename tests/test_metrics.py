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
