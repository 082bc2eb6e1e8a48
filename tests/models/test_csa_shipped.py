"""The checkpoint that ships: `restore batch --method csa` with no --checkpoint uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.checkpoint import load_checkpoint
from restore.metrics import psnr
from restore.models.registry import METHODS, load_inpainter, resolve_checkpoint

SHIPPED = METHODS["csa"].shipped_checkpoint


def test_a_checkpoint_ships_and_is_small() -> None:
    assert SHIPPED is not None, "restore/weights/csa.pt is missing"
    assert SHIPPED.stat().st_size <= 16e6
    assert resolve_checkpoint("csa", None) == SHIPPED
    checkpoint = load_checkpoint(SHIPPED)
    assert checkpoint["method"] == "csa" and checkpoint["step"] > 0
    assert checkpoint["metadata"]["inference_only"] and set(checkpoint["models"]) == {"generator"}


@pytest.mark.parametrize("photo", ["astronaut", "coffee"])
def test_shipped_model_restores_a_real_photo(photo: str) -> None:
    """Known pixels exact, and the hole far better than filling it with the known pixels' mean."""
    import cv2
    import skimage.data

    image = cv2.resize(np.asarray(getattr(skimage.data, photo)())[..., :3], (256, 256), interpolation=cv2.INTER_AREA)
    hole = np.zeros((256, 256), bool)
    hole[96:160, 40:120] = True
    hole[30:50, 150:250] = True
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(hole)[None, None].float()
    out = load_inpainter("csa").inpaint(tensor, mask)[0].permute(1, 2, 0).numpy()
    reference = image / 255.0
    assert np.array_equal(out[~hole], reference[~hole].astype(np.float32))
    mean_fill = reference.copy()
    mean_fill[hole] = reference[~hole].mean(axis=0)
    assert psnr(out, reference) > psnr(mean_fill, reference) + 3.0
