"""Archive pixels to the model's working space and back.

The :class:`~restore.models.base.Inpainter` contract works on float RGB in [0, 1]. Archives
hold uint8 or uint16 images with 1, 3 or 4 channels (DESIGN §5). The rules:

- values are divided by the dtype's maximum (255 or 65535) in float32, and written back as
  ``rint(clip(x, 0, 1) * max)`` (round half to even) in the archive's dtype;
- grey (C = 1) is replicated to RGB for the model, and the **mean of the model's three
  channels** is written back (R = G = B at the input, so the mean is the model's grey);
- RGBA (C = 4): the model sees RGB; the alpha channel is never touched;
- hole pixels only are ever written: known pixels of the output are the input's, bit for bit.
"""

from __future__ import annotations

import numpy as np

#: Working-space channels (what the model sees).
MODEL_CHANNELS = 3


def dtype_max(dtype: np.dtype) -> int:
    """The largest value of an archive dtype (255 for uint8, 65535 for uint16).

    Args:
        dtype: ``uint8`` or ``uint16``.

    Returns:
        The maximum.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f"archive images are uint8 or uint16, not {dtype}")
    return int(np.iinfo(dtype).max)


def colour_channels(channels: int) -> int:
    """How many channels of an archive image the model's output is written to (1 grey, else 3)."""
    if channels not in (1, 3, 4):
        raise ValueError(f"archive images have 1, 3 or 4 channels, not {channels}")
    return 1 if channels == 1 else 3


def to_model(pixels: np.ndarray) -> np.ndarray:
    """Archive pixels to the model's float RGB.

    Args:
        pixels: uint8 or uint16, C in {1, 3, 4}.

    Returns:
        float32 in [0, 1], channels first.

    Shape:
        pixels: (H, W, C); returns (3, H, W).
    """
    scale = np.float32(dtype_max(pixels.dtype))
    channels = pixels.shape[-1]
    if channels == 1:
        grey = pixels[..., 0].astype(np.float32) / scale
        return np.broadcast_to(grey, (MODEL_CHANNELS, *grey.shape)).copy()
    colour_channels(channels)
    return np.ascontiguousarray(pixels[..., :MODEL_CHANNELS].transpose(2, 0, 1), dtype=np.float32) / scale


def from_model(rgb: np.ndarray, dtype: np.dtype, channels: int) -> np.ndarray:
    """The model's float RGB back to archive pixels (grey: the mean of R, G, B).

    Args:
        rgb: float32, channels last, nominally in [0, 1] (clipped).
        dtype: the archive dtype.
        channels: the archive image's channel count (1, 3 or 4).

    Returns:
        The colour channels to write (1 for grey, 3 otherwise; alpha is never produced).

    Shape:
        rgb: (..., 3); returns (..., 1) or (..., 3).
    """
    top = np.float32(dtype_max(dtype))
    values = rgb.mean(axis=-1, keepdims=True, dtype=np.float32) if colour_channels(channels) == 1 else rgb
    values = np.clip(values, np.float32(0), np.float32(1)) * top
    return np.rint(values).astype(dtype)
