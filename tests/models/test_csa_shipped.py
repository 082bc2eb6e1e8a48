"""The checkpoints that ship: `restore batch --method csa` with no --checkpoint uses csa.pt
(trained with its adversarial losses, for photographs); `--checkpoint csa-psnr` the one
trained for PSNR alone (for measurement)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from restore.checkpoint import load_checkpoint
from restore.metrics import psnr, realism_metrics
from restore.models.registry import METHODS, load_inpainter, resolve_checkpoint

SHIPPED = METHODS["csa"].shipped_checkpoint
VARIANTS = ["csa", "csa-psnr"]


def test_the_default_and_the_fidelity_checkpoint_ship_and_are_small() -> None:
    assert SHIPPED is not None, "restore/weights/csa.pt is missing"
    assert resolve_checkpoint("csa", None) == SHIPPED
    assert [path.stem for path in METHODS["csa"].shipped_variants] == ["csa-psnr"]
    for name in VARIANTS:
        path = resolve_checkpoint("csa", name)
        assert path.stat().st_size <= 16e6
        checkpoint = load_checkpoint(path)
        assert checkpoint["method"] == "csa" and checkpoint["step"] > 0
        assert checkpoint["metadata"]["inference_only"] and set(checkpoint["models"]) == {"generator"}


def test_the_default_was_trained_adversarially_and_continues_the_fidelity_one() -> None:
    default = load_checkpoint(SHIPPED)
    fidelity = load_checkpoint(resolve_checkpoint("csa", "csa-psnr"))
    assert default["config"]["adversarial_weight"] > 0
    assert fidelity["config"]["adversarial_weight"] == 0
    assert default["metadata"]["total_steps"] > fidelity["metadata"]["total_steps"]


@functools.cache
def _photo(name: str) -> tuple[np.ndarray, np.ndarray]:
    import cv2
    import skimage.data

    image = cv2.resize(np.asarray(getattr(skimage.data, name)())[..., :3], (256, 256), interpolation=cv2.INTER_AREA)
    hole = np.zeros((256, 256), bool)
    hole[96:160, 40:120] = True
    hole[30:50, 150:250] = True
    return image / 255.0, hole


@functools.cache
def _restore(variant: str, name: str) -> np.ndarray:
    reference, hole = _photo(name)
    tensor = torch.from_numpy(reference).permute(2, 0, 1)[None].float()
    mask = torch.from_numpy(hole)[None, None].float()
    return load_inpainter("csa", resolve_checkpoint("csa", variant)).inpaint(tensor, mask)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("photo", ["astronaut", "coffee"])
def test_shipped_model_restores_a_real_photo(variant: str, photo: str) -> None:
    """Known pixels exact, and the hole far better than filling it with the known pixels' mean."""
    reference, hole = _photo(photo)
    out = _restore(variant, photo)
    assert np.array_equal(out[~hole], reference[~hole].astype(np.float32))
    mean_fill = reference.copy()
    mean_fill[hole] = reference[~hole].mean(axis=0)
    assert psnr(out, reference) > psnr(mean_fill, reference) + 3.0


@pytest.mark.parametrize("photo", ["astronaut", "coffee"])
def test_the_default_fills_with_more_detail_than_the_fidelity_checkpoint(photo: str) -> None:
    reference, hole = _photo(photo)
    default = realism_metrics(_restore("csa", photo), reference, hole)
    fidelity = realism_metrics(_restore("csa-psnr", photo), reference, hole)
    assert default["detail"] > fidelity["detail"] + 0.05
