"""OpenCV baselines behind the Inpainter contract."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from restore.models.classical import OpenCVInpainter
from restore.models.registry import METHODS, load_inpainter


def _photo_and_hole(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 48)
    image = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, ramp[::-1]) / 2, np.full((48, 48), 90.0)], -1)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    hole = np.zeros((48, 48), bool)
    hole[10:30, 14:26] = True
    return image, hole


@pytest.mark.parametrize("name, flag", [("telea", cv2.INPAINT_TELEA), ("ns", cv2.INPAINT_NS)])
def test_equals_opencv_on_8_bit_images(name: str, flag: int) -> None:
    image, hole = _photo_and_hole()
    expected = cv2.inpaint(image[..., ::-1].copy(), hole.astype(np.uint8) * 255, 3, flag)[..., ::-1]
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(hole)[None, None].float()
    out = load_inpainter(name).inpaint(tensor, mask)
    as_u8 = (out[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert np.array_equal(as_u8, expected)


def test_known_pixels_exact_for_values_off_the_8_bit_grid() -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 3, 20, 30)
    mask = torch.zeros(2, 1, 20, 30)
    mask[0, :, 5:9, 5:20] = 1
    mask[1, :, :3, :] = 1
    out = OpenCVInpainter("ns").inpaint(image, mask)
    known = (mask == 0).expand_as(image)
    assert torch.equal(out[known], image[known])
    assert not torch.equal(out[~known], image[~known])


def test_unknown_method_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="unknown OpenCV method"):
        OpenCVInpainter("patchmatch")
    with pytest.raises(ValueError, match=r"mask must be \(B, 1, H, W\)"):
        OpenCVInpainter("telea").inpaint(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 4))


def test_registry_lists_baselines_without_weights() -> None:
    assert not METHODS["telea"].needs_weights and not METHODS["ns"].needs_weights
    assert METHODS["csa"].needs_weights
