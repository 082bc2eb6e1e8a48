"""Reconstruction losses: L1 and squared error with hole pixels weighted."""

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
