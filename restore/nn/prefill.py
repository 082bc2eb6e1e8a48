"""Push-pull (pyramid) hole filling: a fast, parameter-free first guess for holes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def pyramid_fill(image: Tensor, mask: Tensor) -> Tensor:
    """Fill holes by push-pull interpolation over an image pyramid.

    Pull: halve the resolution repeatedly with known-weighted 2×2 averages until
    no hole is left (or 1×1). Push: from the coarsest level back up, blend each
    level's value with the up-sampled coarser fill by its known weight. Known
    pixels are returned unchanged; holes receive a smooth interpolation of their
    surroundings (close to a harmonic fill, at a tiny fraction of its cost).

    Args:
        image: values to fill, any range.
        mask: 1 = hole, 0 = known.

    Returns:
        The filled image; where a sample has no known pixel at all, its holes are 0.

    Shape:
        image: (B, C, H, W); mask: (B, 1, H, W); returns (B, C, H, W).
    """
    weight = 1.0 - mask.to(image.dtype)
    levels: list[tuple[Tensor, Tensor]] = []
    value = image * weight
    while True:
        levels.append((value, weight))
        height, width = value.shape[-2:]
        if (height == 1 and width == 1) or bool((weight > 0).all()):
            break
        summed_value = F.avg_pool2d(value, 2, ceil_mode=True) * 4
        summed_weight = F.avg_pool2d(weight, 2, ceil_mode=True) * 4
        value = summed_value / summed_weight.clamp_min(1e-8) * (summed_weight > 0)
        weight = summed_weight.clamp(max=1.0)
        value = value * weight

    filled = levels[-1][0] / levels[-1][1].clamp_min(1e-8) * (levels[-1][1] > 0)
    for value, weight in reversed(levels[:-1]):
        coarse = F.interpolate(filled, size=value.shape[-2:], mode="bilinear", align_corners=False)
        # ``value`` is premultiplied by ``weight``: blend = w * v_norm + (1 - w) * coarse.
        filled = value + (1.0 - weight) * coarse
    return torch.where(mask > 0.5, filled, image)
