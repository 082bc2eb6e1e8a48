"""OpenCV contrib's xphoto inpainting: frequency-selective reconstruction and shift-map (no weights).

- **FSR** (Genser et al. 2018; ``fsr`` is OpenCV's fast profile, ``fsr-best`` its best one)
  extrapolates each block of the hole from a sparse Fourier model of the pixels around it:
  the highest PSNR of the classical methods, best on thin damage (scratches, small holes).
- **Shift-map** (He & Sun 2012) finds the image's dominant patch offsets and stitches the
  hole from copies of the image shifted by them (a graph cut): real texture and the lowest
  SWD of the classical methods, at a lower PSNR.

Both take seconds per 256² image. FSR's time grows with the pixel count (minutes at 4096²):
its records carry a size limit that ``restore batch`` enforces (``--allow-large`` lifts it).
Shift-map works on the image shrunk to at most 800×600, then redoes the seams at full size:
about a minute from 1024² up (more memory, though: +0.7 GiB at 4096²).

How OpenCV treats pixels, and what we do about it:

- ``cv2.xphoto.inpaint(src, mask, dst, algorithm)`` takes the mask the other way round from
  ``cv2.inpaint`` (0 = hole, 255 = known) and writes into ``dst`` (it returns nothing).
- It crashes (segfault) with shift-map when the mask has no hole: such an image comes back
  as it is, without a call.
- FSR works on 8-bit pixels inside, 1 or 3 channels (it converts 16-bit and float input to
  8 bits itself and writes an 8-bit ``dst``) and on BGR colour (YCrCb); its fixed thresholds
  assume 0–255 values. We give it the image rounded to 8 bits: **the fill of a 16-bit image
  is quantised to 8-bit levels** (lossy, as in OpenCV itself; known pixels stay exact). Its YCrCb
  round trip also moves known pixels by a level or so: they are pasted back exactly.
- Shift-map takes any depth and channel count, but its costs assume 0–255 values (a 128² photo
  scored 14.0 dB as uint16, 18.8 dB as uint8) and depend on the channel order.
  We give it BGR on the 0–255 scale: uint8 as it is, anything else as float32 (identical to the
  uint8 result on 8-bit values). Shift-map copies pixels, so a 16-bit fill keeps full precision.
"""

from __future__ import annotations

import numpy as np

from restore.models.classical import TOP_16, ArrayInpainter

#: The method names and the ``cv2.xphoto`` algorithm each one runs.
ALGORITHMS: dict[str, str] = {"fsr": "INPAINT_FSR_FAST", "fsr-best": "INPAINT_FSR_BEST", "shiftmap": "INPAINT_SHIFTMAP"}


class XPhotoInpainter(ArrayInpainter):
    """``cv2.xphoto.inpaint`` behind the :class:`~restore.models.base.Inpainter` contract.

    8-bit images (values on the 1/255 grid) give exactly what ``cv2.xphoto.inpaint`` gives on
    the ``cv2.imread`` image, known pixels pasted back; 16-bit ones are converted as the module
    docstring says. An image without a known pixel is a ``ValueError`` (as for
    :class:`~restore.models.classical.OpenCVInpainter`).

    Args:
        name: ``"fsr"``, ``"fsr-best"`` or ``"shiftmap"``.
    """

    def __init__(self, name: str) -> None:
        import cv2

        if name not in ALGORITHMS:
            raise ValueError(f"unknown xphoto method {name!r}; expected one of {sorted(ALGORITHMS)}")
        self.name = name
        self._algorithm = getattr(cv2.xphoto, ALGORITHMS[name])

    @property
    def works_in_8_bits(self) -> bool:
        """Whether OpenCV fills in 8-bit precision whatever the input (FSR)."""
        return self.name.startswith("fsr")

    def inpaint_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Inpaint one image given as an array.

        Args:
            image: (H, W, 3) uint8 or uint16 RGB, or float32 in [0, 1].
            hole: (H, W) bool or uint8, nonzero = hole.

        Returns:
            The inpainted image, same dtype and shape as ``image``, known pixels exact.

        Raises:
            ValueError: the hole covers the whole image, or ``image`` has another dtype.
        """
        hole = self.check_hole(hole)
        if image.dtype not in (np.uint8, np.uint16, np.float32):
            raise ValueError(f"{self.name}: images must be uint8, uint16 or float32, not {image.dtype}")
        if not hole.any():
            return image.copy()
        bgr = np.ascontiguousarray(image[..., ::-1])
        if image.dtype == np.uint8:
            filled = self._call(bgr, hole)
        elif self.works_in_8_bits:
            filled = _from_8_bits(self._call(_to_8_bits(bgr), hole), image.dtype)
        else:
            top = TOP_16 if image.dtype == np.uint16 else 1.0
            on_255 = (bgr.astype(np.float64) * (255.0 / top)).astype(np.float32)
            filled = _from_255_scale(self._call(on_255, hole), image.dtype)
        out = np.ascontiguousarray(filled[..., ::-1])
        out[~hole] = image[~hole]
        return out

    def _call(self, bgr: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """``cv2.xphoto.inpaint`` on a BGR image.

        Shape:
            bgr: (H, W, 3) uint8, or float32 on the 0–255 scale; hole: (H, W) bool; returns like ``bgr``.
        """
        import cv2

        known = np.where(hole, 0, 255).astype(np.uint8)  # xphoto: 0 = hole
        dst = np.zeros_like(bgr)
        cv2.xphoto.inpaint(bgr, known, dst, self._algorithm)
        return dst


def _to_8_bits(image: np.ndarray) -> np.ndarray:
    """uint16 or float32-in-[0, 1] pixels rounded to uint8 (lossy)."""
    top = TOP_16 if image.dtype == np.uint16 else 1.0
    return np.clip(np.rint(image.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def _from_8_bits(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """uint8 pixels as ``dtype`` (uint16: times 257; float32: in [0, 1])."""
    if dtype == np.uint16:
        return image.astype(np.uint16) * np.uint16(257)
    return image.astype(np.float32) / np.float32(255.0)


def _from_255_scale(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 pixels on the 0–255 scale as ``dtype`` (exact for values that came from uint16)."""
    if dtype == np.uint16:
        return np.clip(np.rint(image.astype(np.float64) * (TOP_16 / 255.0)), 0, TOP_16).astype(np.uint16)
    return np.clip(image / np.float32(255.0), 0.0, 1.0).astype(np.float32)


def load_fsr(checkpoint: object = None, device: str = "cpu") -> XPhotoInpainter:
    """The ``fsr`` method's loader: OpenCV's fast FSR profile (no weights; CPU whatever ``device`` says)."""
    return XPhotoInpainter("fsr")


def load_fsr_best(checkpoint: object = None, device: str = "cpu") -> XPhotoInpainter:
    """The ``fsr-best`` method's loader: OpenCV's best FSR profile (no weights; CPU)."""
    return XPhotoInpainter("fsr-best")


def load_shiftmap(checkpoint: object = None, device: str = "cpu") -> XPhotoInpainter:
    """The ``shiftmap`` method's loader (no weights; CPU whatever ``device`` says)."""
    return XPhotoInpainter("shiftmap")
