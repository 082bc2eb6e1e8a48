"""Losses in the feature space of a frozen network (:class:`restore.nn.vgg.VGGFeatures`).

* :func:`perceptual_loss` — distance between the features of the output and of the ground
  truth at several taps (Johnson et al. 2016; DeepGIN weights it 0.05).
* :func:`style_loss` — distance between their Gram matrices (Gatys et al.; DeepGIN 80).
* :func:`masked_feature_l2` — CSA's consistency loss: squared feature distance at hole positions.

Each takes lists of feature maps, one per tap, as :class:`~restore.nn.vgg.VGGFeatures` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor


def _distance(a: Tensor, b: Tensor, distance: str) -> Tensor:
    if distance == "l1":
        return F.l1_loss(a, b)
    if distance == "mse":
        return F.mse_loss(a, b)
    raise ValueError(f"distance must be 'l1' or 'mse', got {distance!r}")


def _weights(count: int, weights: Sequence[float] | None) -> Sequence[float]:
    if weights is None:
        return [1.0] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} feature taps")
    return weights


def perceptual_loss(predicted: Sequence[Tensor], target: Sequence[Tensor], weights: Sequence[float] | None = None,
                    distance: str = "l1") -> Tensor:
    """Weighted sum over taps of the mean ``distance`` between feature maps.

    Args:
        predicted: features of the output, one map per tap.
        target: features of the ground truth (detach them: the network is frozen).
        weights: per tap (default 1 each).
        distance: ``"l1"`` or ``"mse"``.

    Shape:
        predicted[t], target[t]: (B, C_t, H_t, W_t); returns ().
    """
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} predicted and {len(target)} target feature taps")
    return sum(w * _distance(p, t, distance) for w, p, t in zip(_weights(len(predicted), weights), predicted, target, strict=True))


def gram_matrix(features: Tensor) -> Tensor:
    """Channel correlations normalised by the map's size: ``F Fᵀ / (C·H·W)``.

    Shape:
        features: (B, C, H, W); returns (B, C, C).
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_loss(predicted: Sequence[Tensor], target: Sequence[Tensor], weights: Sequence[float] | None = None,
               distance: str = "l1") -> Tensor:
    """Weighted sum over taps of the ``distance`` between Gram matrices (:func:`gram_matrix`).

    Computed in float32 (Gram sums overflow bfloat16's precision).

    Shape:
        predicted[t], target[t]: (B, C_t, H_t, W_t); returns ().
    """
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} predicted and {len(target)} target feature taps")
    return sum(
        w * _distance(gram_matrix(p.float()), gram_matrix(t.float()), distance)
        for w, p, t in zip(_weights(len(predicted), weights), predicted, target, strict=True)
    )


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
