"""Reconstruction losses: L1 and squared error with hole pixels weighted, DeepFill's spatial discount."""

from __future__ import annotations

import numpy as np
import torch
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


def spatial_discount(mask: Tensor, gamma: float) -> Tensor:
    """DeepFill v1's spatial discount: γ^l on hole pixels, l the distance to the nearest known pixel.

    Hole pixels next to the background are predictable and weigh most; the centre of a large
    hole, which may rightly hold many things, weighs least (γ = 1: every hole pixel alike). The
    distance is Euclidean, in pixels (the paper's definition; the authors' code measured to the
    border of the hole's bounding box). A sample without known pixels weighs every pixel 1.
    Known pixels weigh 0.

    Shape:
        mask: (B, 1, H, W), 1 = hole; returns (B, 1, H, W) float32 on the mask's device.
    """
    from scipy.ndimage import distance_transform_edt

    holes = (mask.detach() > 0.5).cpu().numpy()
    weights = np.zeros(holes.shape, dtype=np.float32)
    for index, hole in enumerate(holes[:, 0]):
        if hole.all():
            weights[index, 0] = 1.0
        elif hole.any():
            weights[index, 0] = np.where(hole, np.float32(gamma) ** distance_transform_edt(hole).astype(np.float32), 0.0)
    return torch.from_numpy(weights).to(mask.device)


def weighted_l1_loss(predicted: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Mean absolute error weighted per pixel, normalised by the weights' sum (0 when they sum to 0).

    Shape:
        predicted, target: (B, C, H, W); weights: (B, 1, H, W).
    """
    weights = weights.to(predicted.dtype)
    total = weights.sum() * predicted.shape[1]
    return ((predicted - target).abs() * weights).sum() / total.clamp_min(torch.finfo(predicted.dtype).tiny)


def hole_squared_error(predicted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Squared error summed over channels, averaged over the hole pixels of the whole batch.

    GLCIC's reconstruction term ``‖M ⊙ (C(x, M) − x)‖²`` normalised per hole pixel, as the
    CIFAR-scale seed reports it (its 0.0155): on [0, 1] pixels, summed over RGB. A batch
    without a hole gives 0.

    Shape:
        predicted, target: (B, C, H, W); mask: (B, 1, H, W), 1 = hole.
    """
    holes = mask.to(predicted.dtype)
    return (((predicted - target) ** 2) * holes).sum() / holes.sum().clamp_min(1.0)
