"""The one model contract every pipeline uses."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Inpainter(Protocol):
    """Anything that fills holes.

    ``inpaint(image, mask)`` takes ``image`` (B, 3, H, W) float in [0, 1] and
    ``mask`` (B, 1, H, W) float with 1 = hole, and returns the completed image
    (B, 3, H, W) in [0, 1] whose known pixels are copied from ``image`` exactly.
    """

    name: str

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor: ...


def composite(predicted: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Paste known pixels back: ``mask * predicted + (1 - mask) * image``, exact outside the hole.

    Uses ``torch.where`` rather than arithmetic so known pixels are bit-identical.

    Shape:
        predicted, image: (B, C, H, W); mask: (B, 1, H, W), 1 = hole.
    """
    return torch.where(mask > 0.5, predicted.clamp(0.0, 1.0), image)


def check_inputs(image: Tensor, mask: Tensor) -> None:
    """Raise ``ValueError`` unless ``image``/``mask`` follow the :class:`Inpainter` contract."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W), got {tuple(mask.shape)}")
    if mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match image {tuple(image.shape)}")
