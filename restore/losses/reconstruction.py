"""Reconstruction and feature-matching losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def l1_loss(predicted: Tensor, target: Tensor, mask: Tensor | None = None, hole_weight: float = 1.0) -> Tensor:
    """Mean absolute error, hole pixels weighted ``hole_weight`` times known ones.

    With ``hole_weight = 1`` (or no mask) this is the plain mean over every pixel and channel;
    otherwise it is normalised by the total weight, so it stays a weighted mean.

    Shape:
        predicted, target: (B, C, H, W); mask: (B, 1, H, W), 1 = hole.
    """
    if mask is None or hole_weight == 1.0:
        return F.l1_loss(predicted, target)
    return _hole_weighted_mean((predicted - target).abs(), mask, hole_weight)


def l2_loss(predicted: Tensor, target: Tensor, mask: Tensor | None = None, hole_weight: float = 1.0) -> Tensor:
    """Mean squared error, hole pixels weighted ``hole_weight`` times known ones (as :func:`l1_loss`).

    The objective PSNR measures: its minimiser is the mean of what the hole may hold, where
    L1's is the median.

    Shape:
        predicted, target: (B, C, H, W); mask: (B, 1, H, W), 1 = hole.
    """
    if mask is None or hole_weight == 1.0:
        return F.mse_loss(predicted, target)
    return _hole_weighted_mean((predicted - target) ** 2, mask, hole_weight)


def _hole_weighted_mean(errors: Tensor, mask: Tensor, hole_weight: float) -> Tensor:
    weight = 1.0 + (hole_weight - 1.0) * mask.to(errors.dtype)
    return (errors * weight).sum() / (weight.sum() * errors.shape[1])


def masked_feature_l2(features: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared distance between feature vectors at the masked positions.

    The CSA consistency loss (paper eq. 4) sums ``||f_y - t_y||²`` over hole
    positions ``y``; here it is averaged over positions and channels so the weight
    does not depend on the hole size or the channel count. Zero when no position is
    masked.

    Shape:
        features, target: (B, C, h, w); mask: (B, 1, h, w), 1 = position counts.
    """
    mask = mask.to(features.dtype)
    squared = ((features - target) ** 2 * mask).sum()
    count = mask.sum() * features.shape[1]
    return squared / count.clamp_min(1.0)
