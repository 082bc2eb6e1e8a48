"""OpenCV contrib's FSR and shift-map behind the Inpainter contract (restore/models/xphoto.py).

Kept small: FSR's best profile takes most of a minute on a 256² image, shift-map seconds.
Grey and RGBA images, odd sizes and ``restore batch`` are covered for every registered method
by tests/models/test_contract.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from restore.models.registry import METHODS, load_inpainter
from restore.models.xphoto import ALGORITHMS, XPhotoInpainter


def _photo(name: str, height: int, width: int) -> np.ndarray:
    """A real photo (scikit-image's) resized to (height, width), uint8 RGB."""
    image = np.asarray(getattr(skimage.data, name)())[..., :3]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _hole(height: int, width: int, seed: int) -> np.ndarray:
    """A few boxes and a one-pixel scratch, (0, 0) known."""
    rng = np.random.default_rng(seed)
    hole = np.zeros((height, width), bool)
    for _ in range(3):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        hole[y : y + rng.integers(3, height // 3), x : x + rng.integers(3, width // 3)] = True
    hole[rng.integers(0, height), :] = True
    hole[0, 0] = False
    return hole


def _opencv(name: str, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``cv2.xphoto.inpaint`` on the BGR image as ``cv2.imread`` gives it, known pixels pasted back (RGB)."""
    bgr = np.ascontiguousarray(image[..., ::-1])
    dst = np.zeros_like(bgr)
    cv2.xphoto.inpaint(bgr, np.where(hole, 0, 255).astype(np.uint8), dst, getattr(cv2.xphoto, ALGORITHMS[name]))
    expected = dst[..., ::-1].copy()
    expected[~hole] = image[~hole]
    return expected


@pytest.mark.parametrize("name, photo, height, width", [
    ("fsr", "astronaut", 97, 131), ("fsr", "coffee", 120, 77),
    ("shiftmap", "chelsea", 101, 143), ("shiftmap", "astronaut", 64, 95),
    ("fsr-best", "coffee", 25, 37),
])  # fmt: skip
def test_equals_xphoto_on_real_photos(name: str, photo: str, height: int, width: int) -> None:
    image, hole = _photo(photo, height, width), _hole(height, width, seed=height)
    expected = _opencv(name, image, hole)
    assert not np.array_equal(expected[hole], image[hole])
    inpainter = load_inpainter(name)
    assert np.array_equal(inpainter.inpaint_array(image, hole), expected)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    out = inpainter.inpaint(tensor, torch.from_numpy(hole)[None, None].float())
    assert torch.equal(out[0][:, ~torch.from_numpy(hole)], tensor[0][:, ~torch.from_numpy(hole)])  # known pixels exact
    assert np.array_equal((out[0].permute(1, 2, 0) * 255).round().byte().numpy(), expected)


@pytest.mark.parametrize("name", ["fsr", "shiftmap"])
def test_16_bit_images_on_the_8_bit_grid_give_the_8_bit_fill(name: str) -> None:
    image, hole = _photo("chelsea", 45, 61), _hole(45, 61, seed=2)
    inpainter = XPhotoInpainter(name)
    as_16 = inpainter.inpaint_array(image.astype(np.uint16) * 257, hole)
    assert as_16.dtype == np.uint16 and np.array_equal(as_16, inpainter.inpaint_array(image, hole).astype(np.uint16) * 257)


def _real_16_bit(height: int, width: int) -> np.ndarray:
    """A photo downscaled in float and rounded to 16 bits: values off the 8-bit grid."""
    image = np.asarray(skimage.data.coffee(), np.float32) * np.float32(257.0)
    return np.rint(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)).astype(np.uint16)


def _hole_mae(inpainter: XPhotoInpainter, image: np.ndarray, hole: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean absolute error in the hole (16-bit units) of one model call on ``image``, and the fill."""
    top = np.iinfo(image.dtype).max
    tensor = torch.from_numpy(image.astype(np.float32) / top).permute(2, 0, 1)[None]
    out = inpainter.inpaint(tensor, torch.from_numpy(hole)[None, None].float())[0].permute(1, 2, 0).numpy()
    assert np.array_equal(out[~hole], (image.astype(np.float32) / top)[~hole])  # known pixels exact
    filled = np.rint(out * top)
    return float(np.abs(filled - image)[hole].mean()) * 65535 / top, filled


@pytest.mark.parametrize("name", ["fsr", "shiftmap"])
def test_16_bit_images_are_filled_as_well_as_their_8_bit_version(name: str) -> None:
    """FSR fills in 8-bit levels (OpenCV's FSR works on 8 bits); shift-map copies 16-bit pixels."""
    image, hole = _real_16_bit(64, 96), _hole(64, 96, seed=4)
    assert np.mean(image % 257 != 0) > 0.9
    inpainter = XPhotoInpainter(name)
    error_8, _ = _hole_mae(inpainter, np.rint(image / 257.0).astype(np.uint8), hole)
    error_16, filled = _hole_mae(inpainter, image, hole)
    assert 0 < error_16 <= 1.25 * error_8, (error_16, error_8)
    on_8_bit_grid = np.mean(filled[hole] % 257 == 0)
    assert on_8_bit_grid == 1.0 if name == "fsr" else on_8_bit_grid < 0.1
    direct = inpainter.inpaint_array(image, hole)
    assert direct.dtype == np.uint16 and np.array_equal(direct[~hole], image[~hole])


@pytest.mark.parametrize("name", ["fsr", "shiftmap", "fsr-best"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiny_images_are_filled_the_same_every_time(name: str, dtype: type) -> None:
    rng = np.random.default_rng(3)
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    inpainter = XPhotoInpainter(name)
    for height, width in [(1, 1), (1, 9), (9, 1), (2, 2), (3, 5)]:
        image = (rng.random((height, width, 3)) * top).astype(dtype)
        hole = np.zeros((height, width), bool)
        hole[height // 2 :, width // 2 :] = height * width > 1
        first = inpainter.inpaint_array(image, hole)
        for _ in range(10):
            _scratch = [rng.random(int(n)).astype(np.float32) * 1e30 for n in rng.integers(1, 3000, 3)]
            np.testing.assert_array_equal(inpainter.inpaint_array(image, hole), first)
        assert first.dtype == image.dtype and np.isfinite(first.astype(np.float64)).all()
        assert np.array_equal(first[~hole], image[~hole])


@pytest.mark.parametrize("name", ["fsr", "shiftmap"])
def test_no_hole_and_no_known_pixel(name: str) -> None:
    """OpenCV's shift-map crashes the process on a mask without a hole: such images are not passed to it."""
    image = _photo("astronaut", 20, 30)
    inpainter = XPhotoInpainter(name)
    assert np.array_equal(inpainter.inpaint_array(image, np.zeros((20, 30), bool)), image)
    with pytest.raises(ValueError, match=f"^{name}: no known pixel to fill the hole from .*20x30 input"):
        inpainter.inpaint_array(image, np.ones((20, 30), bool))
    with pytest.raises(ValueError, match="uint8, uint16 or float32"):
        inpainter.inpaint_array(image.astype(np.int32), np.zeros((20, 30), bool))
    with pytest.raises(ValueError, match="unknown xphoto method"):
        XPhotoInpainter("patchmatch")


def test_records() -> None:
    for name in ("fsr", "fsr-best", "shiftmap"):
        record = METHODS[name]
        assert not record.needs_weights and not record.trainable and record.native_size is None and record.default_strategy == "whole"
    assert METHODS["fsr-best"].slow and not METHODS["fsr"].slow and METHODS["fsr-best"].max_pixels < METHODS["fsr"].max_pixels
    assert METHODS["shiftmap"].max_pixels is None  # it works at most 800x600 inside: about a minute at any size
