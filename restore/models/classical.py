"""Classical baselines: OpenCV's Telea and Navier-Stokes inpainting (no weights).

:class:`ArrayInpainter` is the batch side every OpenCV method shares (8-bit archives as uint8,
anything else as float32; known pixels pasted back exactly); :mod:`restore.models.xphoto`
builds the contrib methods on it.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch import Tensor

from restore.models.base import check_inputs

#: The largest 16-bit value: Telea works on 16-bit pixels for images off the 8-bit grid.
TOP_16 = 65535


class ArrayInpainter(abc.ABC):
    """An inpainter that fills one image at a time as an array, behind the
    :class:`~restore.models.base.Inpainter` contract.

    Subclasses set ``name`` and write :meth:`inpaint_array`. :meth:`inpaint` hands it each
    image of a batch as uint8 when every value is on the 8-bit grid (an 8-bit archive), else
    as float32 in [0, 1], and pastes the known pixels back exactly.
    """

    name: str

    @abc.abstractmethod
    def inpaint_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Inpaint one image: (H, W, 3) uint8, uint16 or float32, ``hole`` (H, W) nonzero = hole;
        returns the same dtype and shape."""

    def check_hole(self, hole: np.ndarray) -> np.ndarray:
        """``hole`` as bool.

        Raises:
            ValueError: the hole covers the whole image (nothing to fill it from).

        Shape:
            hole: (H, W), nonzero = hole; returns (H, W) bool.
        """
        hole = np.asarray(hole) > 0
        if hole.all():
            height, width = hole.shape
            raise ValueError(f"{self.name}: no known pixel to fill the hole from (the mask covers all of the {height}x{width} input)")
        return hole

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the holes of a batch.

        Raises:
            ValueError: an image of the batch has no known pixel.

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W).
        """
        check_inputs(image, mask)
        out = torch.empty_like(image)
        images = image.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().cpu()[:, 0] > 0.5).numpy()
        for b in range(image.shape[0]):
            as_8bit = _on_8bit_grid(images[b])
            if as_8bit is not None:
                filled = self.inpaint_array(as_8bit, holes[b])
                del as_8bit
                out[b].copy_(torch.from_numpy(filled).permute(2, 0, 1)).div_(255.0)  # converted in place: no float copy
            else:
                filled = self.inpaint_array(images[b], holes[b])
                out[b].copy_(torch.from_numpy(filled).permute(2, 0, 1))
            del filled
        # composite(), in place: no image-sized float copy on top of ``out`` (large photos)
        return torch.where(mask > 0.5, out.clamp_(0.0, 1.0), image, out=out)


class OpenCVInpainter(ArrayInpainter):
    """OpenCV ``cv2.inpaint`` behind the :class:`~restore.models.base.Inpainter` contract.

    Images whose values are exact multiples of 1/255 (everything that came from
    an 8-bit archive) are inpainted as 8-bit BGR, exactly as ``cv2.inpaint`` on
    a ``cv2.imread`` image would be. Anything else (16-bit archives) is inpainted
    per channel, as ``cv2.inpaint`` supports only one channel beyond 8 bits: NS in
    float32 in [0, 1]; Telea in uint16 after rounding to the 1/65535 grid (lossless
    for 16-bit pixels), because OpenCV's Telea adds a rounding offset and a unit
    gradient term meant for integer pixel values, so on floats in [0, 1] it
    returns garbage.

    An image without a known pixel cannot be inpainted (there is nothing to fill the
    hole from): it is a ``ValueError``, so that a batch run reports the image as
    failed instead of writing it back unrestored.

    Args:
        name: ``"telea"`` or ``"ns"``.
        radius: inpainting neighbourhood radius in pixels (3, as in the papers' baselines).
    """

    def __init__(self, name: str, radius: float = 3.0) -> None:
        import cv2

        flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
        if name not in flags:
            raise ValueError(f"unknown OpenCV method {name!r}; expected one of {sorted(flags)}")
        self.name = name
        self.radius = float(radius)
        self._flag = flags[name]

    def inpaint_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Inpaint one image given as an array.

        Args:
            image: (H, W, 3) uint8 or uint16 RGB, or float32 in [0, 1].
            hole: (H, W) bool or uint8, nonzero = hole.

        Returns:
            The inpainted image, same dtype and shape as ``image``.

        Raises:
            ValueError: the hole covers the whole image, or ``image`` has another dtype.
        """
        import cv2

        hole = self.check_hole(hole)
        if hole.shape[0] == 1:
            # OpenCV reads memory it never wrote on images one row high (its output
            # changes from call to call, NaN at times): fill two identical rows instead.
            return self.inpaint_array(np.repeat(image, 2, axis=0), np.repeat(hole, 2, axis=0))[:1]
        mask8 = hole.astype(np.uint8) * 255
        if image.dtype == np.uint8:
            bgr = np.ascontiguousarray(image[..., ::-1])
            return np.ascontiguousarray(cv2.inpaint(bgr, mask8, self.radius, self._flag)[..., ::-1])
        if image.dtype == np.float32 and self.name == "telea":
            as_16 = np.clip(np.round(image.astype(np.float64) * TOP_16), 0, TOP_16).astype(np.uint16)
            return self._per_channel(as_16, mask8).astype(np.float32) / np.float32(TOP_16)
        if image.dtype in (np.uint16, np.float32):
            return self._per_channel(image, mask8)
        raise ValueError(f"{self.name}: images must be uint8, uint16 or float32, not {image.dtype}")

    def _per_channel(self, image: np.ndarray, mask8: np.ndarray) -> np.ndarray:
        """``cv2.inpaint`` on each channel alone (uint16 or float32).

        Shape:
            image: (H, W, C); mask8: (H, W) uint8, 255 = hole; returns (H, W, C).
        """
        import cv2

        channels = [
            cv2.inpaint(np.ascontiguousarray(image[..., c]), mask8, self.radius, self._flag)
            for c in range(image.shape[-1])
        ]
        return np.stack(channels, axis=-1)


#: Rows converted at a time by :func:`_on_8bit_grid` (bounds its temporaries on large photos).
_BLOCK_ROWS = 512


def _on_8bit_grid(image: np.ndarray) -> np.ndarray | None:
    """``image`` as uint8 when every value is ``k / 255`` as float32 computes it (an 8-bit archive), else None.

    Works through blocks of rows, so a large photo costs its uint8 copy and a few float32 rows,
    not several float copies of the whole image (an 8192² photo went from 5.6 to under 3 GiB).

    Shape:
        image: (H, W, C) float32 in [0, 1]; returns (H, W, C) uint8.
    """
    levels = np.empty(image.shape, np.uint8)
    for top in range(0, image.shape[0], _BLOCK_ROWS):
        rows = image[top : top + _BLOCK_ROWS]
        rounded = np.rint(rows * np.float32(255.0))
        if not np.array_equal(rounded / np.float32(255.0), rows):
            return None
        levels[top : top + _BLOCK_ROWS] = rounded
    return levels


def load_telea(checkpoint: object = None, device: str = "cpu") -> OpenCVInpainter:
    """The ``telea`` method's loader (no weights; runs on the CPU whatever ``device`` says)."""
    return OpenCVInpainter("telea")


def load_ns(checkpoint: object = None, device: str = "cpu") -> OpenCVInpainter:
    """The ``ns`` method's loader (no weights; runs on the CPU whatever ``device`` says)."""
    return OpenCVInpainter("ns")
