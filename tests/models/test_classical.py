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


def _smooth_16_bit(height: int = 64, width: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 16-bit RGB gradient (values off the 8-bit grid) and a centred box hole."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.round(np.stack([x / width, y / height, (x + y) / (width + height)], -1) * 60000 + 1234.5).astype(np.uint16)
    hole = np.zeros((height, width), bool)
    hole[height // 2 - 8 : height // 2 + 8, width // 2 - 10 : width // 2 + 10] = True
    return image, hole


def _hole_mae(inpainter: OpenCVInpainter, image: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute error in the hole, in 16-bit units, of one model call on ``image``."""
    top = np.iinfo(image.dtype).max
    tensor = torch.from_numpy(image.astype(np.float32) / top).permute(2, 0, 1)[None]
    out = inpainter.inpaint(tensor, torch.from_numpy(hole)[None, None].float())[0].permute(1, 2, 0).numpy()
    assert np.array_equal(out[~hole], (image.astype(np.float32) / top)[~hole])  # known pixels exact
    return float(np.abs(np.rint(out * top) - image)[hole].mean()) * 65535 / top


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_16_bit_images_are_filled_as_well_as_their_8_bit_version(name: str) -> None:
    """A 16-bit image carries at least the information of its 8-bit rounding, so its fill may
    be no worse than the 8-bit fill beyond a 25 % margin for the methods' own variation
    (OpenCV's Telea on float32 in [0, 1] was off by about half the range here)."""
    image, hole = _smooth_16_bit()
    as_8_bit = np.rint(image / 257.0).astype(np.uint8)
    inpainter = OpenCVInpainter(name)
    error_8, error_16 = _hole_mae(inpainter, as_8_bit, hole), _hole_mae(inpainter, image, hole)
    assert 0 < error_16 <= 1.25 * error_8, (error_16, error_8)
    direct = inpainter.inpaint_array(image, hole)
    assert direct.dtype == np.uint16 and np.abs(direct.astype(float) - image)[hole].mean() <= 1.25 * error_8


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_an_image_without_known_pixels_is_an_error(name: str) -> None:
    image = torch.rand(2, 3, 12, 16)
    mask = torch.zeros(2, 1, 12, 16)
    mask[0, :, 2:5, 3:9] = 1
    mask[1] = 1
    with pytest.raises(ValueError, match=f"^{name}: no known pixel to fill the hole from .*12x16 input"):
        OpenCVInpainter(name).inpaint(image, mask)
    with pytest.raises(ValueError, match="no known pixel"):
        OpenCVInpainter(name).inpaint_array(np.zeros((12, 16, 3), np.uint8), np.ones((12, 16), bool))
    mask[1, 0, 0, 0] = 0  # one known pixel is enough to fill from
    out = OpenCVInpainter(name).inpaint(image, mask)
    assert torch.equal(out[1, :, 0, 0], image[1, :, 0, 0]) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["telea", "ns"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_images_one_row_high_are_filled_the_same_every_time(name: str, dtype: type) -> None:
    """OpenCV alone is not deterministic on them (it reads memory it never wrote)."""
    rng = np.random.default_rng(3)
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    image = (rng.random((1, 9, 3)) * top).astype(dtype)
    hole = np.zeros((1, 9), bool)
    hole[0, 2:6] = True
    inpainter = OpenCVInpainter(name)
    first = inpainter.inpaint_array(image, hole)
    for _ in range(50):
        _scratch = [rng.random(int(n)).astype(np.float32) * 1e30 for n in rng.integers(1, 3000, 3)]
        again = inpainter.inpaint_array(image, hole)
        np.testing.assert_array_equal(again, first)
    assert np.isfinite(first.astype(np.float64)).all()
