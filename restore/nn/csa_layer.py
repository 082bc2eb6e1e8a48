"""The coherent semantic attention (CSA) layer and the hole mask at feature resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.nn.precision import float32_region
from restore.ops import csa_propagate, patch_best_match


def feature_hole_mask(mask: Tensor, downsamplings: int = 3, threshold: float = 5.0 / 16.0) -> Tensor:
    """Bring a pixel hole mask to feature resolution (CSA paper, appendix A).

    Applies ``downsamplings`` 4×4 / stride 2 / padding 1 convolutions whose weights
    are all 1/16 (a width-1 copy of the rough network's encoder), then marks as hole
    every position whose value exceeds ``threshold``. Computed per sample on every
    call: no hole geometry is cached across batches.

    Args:
        mask: 1 = hole, 0 = known.
        downsamplings: how many times the resolution is halved (3: 256² -> 32²).
        threshold: the hole threshold (paper: 5/16).

    Returns:
        Binary float mask, 1 = hole.

    Shape:
        mask: (B, 1, H, W); returns (B, 1, H / 2^d, W / 2^d).
    """
    value = mask.float()
    kernel = torch.full((1, 1, 4, 4), 1.0 / 16.0, dtype=value.dtype, device=value.device)
    for _ in range(downsamplings):
        value = F.conv2d(value, kernel, stride=2, padding=1)
    return (value > threshold).to(mask.dtype)


class CoherentSemanticAttention(nn.Module):
    """Search + generate over the hole positions of a feature map.

    Search: every hole position finds its most similar known position (cosine
    similarity of 1×1 patches, :func:`restore.ops.patch_best_match`). Generate: in
    raster order each hole feature becomes a blend of the previous generated
    feature and its best known match, weighted by their similarities
    (:func:`restore.ops.csa_propagate`). Known positions pass through. A sample
    with no known position at this resolution passes through unchanged.

    Shape:
        features: (B, C, H, W); hole: (B, 1, H, W), 1 = hole; returns (B, C, H, W).
    """

    def forward(self, features: Tensor, hole: Tensor) -> Tensor:
        hole = hole.to(features.dtype)
        known = 1.0 - hole
        has_known = known.flatten(1).amax(dim=1) > 0
        if not bool(has_known.any()):
            return features
        gate = has_known.to(features.dtype).view(-1, 1, 1, 1)
        key_valid = known * gate + (1.0 - gate)
        hole = hole * gate
        out = float32_region(_search_and_propagate, features, key_valid, hole)
        return out.to(features.dtype)


def _search_and_propagate(features: Tensor, key_valid: Tensor, hole: Tensor) -> Tensor:
    index, score = patch_best_match(features, features, key_valid, ksize=1)
    return csa_propagate(features, hole, index, score)
