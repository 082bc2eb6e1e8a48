"""Sequential CSA propagation (coherent semantic attention, Liu et al. 2019, eq. 3).

For each image, let ``p_1 < p_2 < … < p_n`` be its hole positions in raster order
(flat ``p = y * W + x``), ``f_i`` the input feature vector (C values) at ``p_i``,
``m̄_i`` the input feature vector at ``index[p_i]`` (the best-matching known patch
from :func:`restore.ops.patch_best_match`) and ``D_max,i = max(score[p_i], 0)``.
Then::

    m_1 = m̄_1
    D_ad,i = max(cos(f_i, m_{i-1}), 0)                      (i > 1)
    w_i    = D_ad,i / (D_ad,i + D_max,i), or 0 when the sum is 0
    m_i    = w_i · m_{i-1} + (1 - w_i) · m̄_i

with ``cos(a, b) = a·b / (max(‖a‖, 1e-4) · max(‖b‖, 1e-4))``. The output holds
``m_i`` at ``p_i`` and the input features unchanged at known positions. Index
and score are read at hole positions only; ``index = -1`` means "no match"
(``m̄ = 0``, ``D_max = 0``). Other indices must lie in ``[0, H·W)``: on CPU an
out-of-range index raises; the CUDA kernel (which cannot check without a device
sync) treats it as −1.

Backward treats the weights ``w_i`` and the indices as constants (as the paper's
code does): the gradient flows to the features through the linear combination
only — to known positions directly and to the matched positions ``index[p_i]``
through a reverse scan (``g_i = grad[p_i] + w_{i+1}·g_{i+1}``, ``∂m̄_i = (1 − w_i)·g_i``).
No gradient reaches ``score``. This is not the exact derivative of the forward
(which also depends on the features through ``D_ad``), so ``gradcheck`` holds only
where the weights are locally constant.
"""

from __future__ import annotations

import torch

from ._checks import as_position_mask, check_features
from ._ext import NORM_FLOOR, has_ops, use_kernel

__all__ = ["csa_propagate", "csa_propagate_reference"]


def _check_inputs(
    features: torch.Tensor, hole: torch.Tensor, index: torch.Tensor, score: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    check_features("features", features)
    hole_b = as_position_mask("hole", hole, features)
    b, _, h, w = features.shape
    for name, t in (("index", index), ("score", score)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if tuple(t.shape) != (b, h, w):
            raise ValueError(
                f"{name} must have shape (B, H, W) = ({b}, {h}, {w}), got {tuple(t.shape)}"
            )
        if t.device != features.device:
            raise ValueError(
                f"{name} must be on the device of features ({features.device}), got {t.device}"
            )
    if index.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"index must be an integer tensor, got {index.dtype}")
    if not score.is_floating_point():
        raise TypeError(f"score must be a floating tensor, got {score.dtype}")
    return hole_b, index.to(torch.int64), score.to(features.dtype)


def csa_propagate_reference(
    features: torch.Tensor, hole: torch.Tensor, index: torch.Tensor, score: torch.Tensor
) -> torch.Tensor:
    """Plain PyTorch :func:`csa_propagate`: a Python loop over the hole positions.

    The weights are computed without autograd, so its gradient is the op's
    (weights and indices constant).

    Args:
        features: feature map.
        hole: hole positions, (B, 1, H, W) or (B, H, W), bool or numeric (> 0.5 = hole).
        index: flat position of each hole position's match (−1: none).
        score: the match's similarity (``D_max`` before clamping at 0).

    Returns:
        The propagated feature map.

    Shape:
        features: (B, C, H, W); index, score: (B, H, W); output: (B, C, H, W).
    """
    hole_b, index, score = _check_inputs(features, hole, index, score)
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    outputs = []
    for i in range(b):
        f = flat[i]  # (C, HW)
        pos = hole_b[i].reshape(-1).nonzero().squeeze(1)  # raster order
        n = pos.numel()
        if n == 0:
            outputs.append(f)
            continue
        idx = index[i].reshape(-1)[pos]
        if bool(((idx < -1) | (idx >= h * w)).any()):
            raise ValueError(f"index must lie in [-1, H*W) = [-1, {h * w}) at hole positions")
        matched = idx >= 0
        m_bar = f[:, idx.clamp_min(0)] * matched.to(f.dtype)  # (C, n)
        d_max = torch.where(matched, score[i].reshape(-1)[pos].clamp_min(0), 0)
        f_hole = f[:, pos].detach()
        m_prev = m_bar[:, 0]
        columns = [m_prev]
        for j in range(1, n):
            with torch.no_grad():
                a, m = f_hole[:, j], m_prev.detach()
                cos = (a @ m) / (
                    torch.linalg.vector_norm(a).clamp_min(NORM_FLOOR)
                    * torch.linalg.vector_norm(m).clamp_min(NORM_FLOOR)
                )
                d_ad = cos.clamp_min(0)
                total = d_ad + d_max[j]
                weight = torch.where(total > 0, d_ad / torch.where(total > 0, total, 1), 0)
            m_prev = weight * m_prev + (1 - weight) * m_bar[:, j]
            columns.append(m_prev)
        outputs.append(f.index_copy(1, pos, torch.stack(columns, dim=1)))
    return torch.stack(outputs).view(b, c, h, w)


def csa_propagate(
    features: torch.Tensor, hole: torch.Tensor, index: torch.Tensor, score: torch.Tensor
) -> torch.Tensor:
    """Coherent semantic attention: propagate matched patches through the hole in raster order.

    Runs ``torch.ops.restore.csa_propagate`` (a sequential scan per image, images in
    parallel) when compiled, else :func:`csa_propagate_reference`. Semantics, index
    convention and backward: see the module docstring.

    Args:
        features: feature map (the CSA layer's input).
        hole: hole positions, (B, 1, H, W) or (B, H, W), bool or numeric (> 0.5 = hole);
            each batch sample has its own.
        index: flat position ``y_k * W + x_k`` of each hole position's best known
            patch, −1 for none (``patch_best_match``'s index); int64 (other integer
            types are converted).
        score: its similarity ``D_max`` (``patch_best_match``'s score); converted to
            the features' dtype.

    Returns:
        Features with every hole position replaced by its propagated patch ``m_i``.

    Shape:
        features: (B, C, H, W); index, score: (B, H, W); output: (B, C, H, W).
    """
    hole_b, index, score = _check_inputs(features, hole, index, score)
    if use_kernel("csa_propagate", features):
        return torch.ops.restore.csa_propagate(features, hole_b, index, score)
    return csa_propagate_reference(features, hole_b, index, score)


if has_ops():

    @torch.library.register_fake("restore::csa_propagate")
    def _(features, hole, index, score):
        return torch.empty_like(features)

    @torch.library.register_fake("restore::_csa_propagate_backward")
    def _(grad, features, hole, index, score, output):
        return torch.empty_like(features)

    def _setup_context(ctx, inputs, output):
        features, hole, index, score = inputs
        ctx.save_for_backward(features, hole, index, score, output)

    def _backward(ctx, grad):
        features, hole, index, score, output = ctx.saved_tensors
        grad_features = torch.ops.restore._csa_propagate_backward(
            grad, features, hole, index, score, output
        )
        return grad_features, None, None, None

    torch.library.register_autograd(
        "restore::csa_propagate", _backward, setup_context=_setup_context
    )
