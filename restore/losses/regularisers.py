"""Regularisers of the output image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def total_variation(image: Tensor, mask: Tensor | None = None, squared: bool = False, dilate: int = 0) -> Tensor:
    """Mean absolute (or squared) difference between horizontal and vertical neighbours.

    Args:
        image: the output.
        mask: 1 = hole; when given, only differences with at least one end in the hole
            (grown by ``dilate`` pixels, so the seam counts) are averaged.
        squared: square the differences (DeepGIN's code) instead of their absolute value (its paper).
        dilate: grow the hole by this many pixels first.

    Shape:
        image: (B, C, H, W); mask: (B, 1, H, W); returns ().
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx, dy = (dx**2, dy**2) if squared else (dx.abs(), dy.abs())
    if mask is None:
        return dx.mean() + dy.mean()
    region = mask.to(image.dtype)
    if dilate > 0:
        region = F.max_pool2d(region, 2 * dilate + 1, stride=1, padding=dilate)
    in_x = torch.maximum(region[..., :, 1:], region[..., :, :-1])
    in_y = torch.maximum(region[..., 1:, :], region[..., :-1, :])
    channels = image.shape[1]
    total_x = (dx * in_x).sum() / (in_x.sum() * channels).clamp_min(1.0)
    total_y = (dy * in_y).sum() / (in_y.sum() * channels).clamp_min(1.0)
    return total_x + total_y
