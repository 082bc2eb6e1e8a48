"""Masked gradient penalty (WGAN-GP restricted to the hole, DeepFill v1 eq. 3).

Given the critic's input gradient ``g = ∂D(x̂)/∂x̂`` and the hole mask ``m``::

    slope_b = sqrt(Σ_{c,y,x} g[b,c,y,x]² · m[b,0,y,x] + eps)
    penalty = mean_b (slope_b − 1)²

The mask weights every channel of a position (it broadcasts over C) and is used
as given (a soft mask weights, a binary mask selects). The penalty is
differentiable with respect to ``g`` to any order (its backward is an op whose
own backward is plain differentiable PyTorch), so it can be minimised through
``create_graph=True``; the mask gets no gradient. The weight λ is applied outside.
"""

from __future__ import annotations

import torch

from ._checks import check_features
from ._ext import has_ops, use_kernel

__all__ = ["masked_gradient_penalty", "masked_gradient_penalty_reference"]


def _check_inputs(grad: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    check_features("grad", grad)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    b, _, h, w = grad.shape
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(
            f"mask must have shape (B, 1, H, W) or (B, H, W) = ({b}, 1, {h}, {w}) or ({b}, {h}, {w}), "
            f"got {tuple(mask.shape)}"
        )
    if mask.device != grad.device:
        raise ValueError(f"mask must be on the device of grad ({grad.device}), got {mask.device}")
    if mask.is_complex():
        raise TypeError(f"mask must be bool or real, got {mask.dtype}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    return mask.to(grad.dtype)


def masked_gradient_penalty_reference(
    grad: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """The unfused PyTorch expression of :func:`masked_gradient_penalty`.

    Args:
        grad: the critic's gradient with respect to its input.
        mask: hole mask (1 = hole), (B, 1, H, W) or (B, H, W); bool or floating.
        eps: added under the square root.

    Returns:
        The penalty, a 0-d tensor.

    Shape:
        grad: (B, C, H, W); output: ().
    """
    mask = _check_inputs(grad, mask, eps)
    squares = (grad.pow(2) * mask).sum(dim=(1, 2, 3))
    return (squares + eps).sqrt().sub(1).pow(2).mean()


def masked_gradient_penalty(
    grad: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """Fused masked gradient penalty ``mean_b (sqrt(Σ g²·m + eps) − 1)²``.

    Runs ``torch.ops.restore.masked_gradient_penalty`` (one pass forward, one
    reduction and one element-wise pass backward) when compiled, else
    :func:`masked_gradient_penalty_reference`. Twice differentiable with respect to
    ``grad``.

    Args:
        grad: the critic's gradient with respect to its input (``create_graph=True``).
        mask: hole mask (1 = hole), (B, 1, H, W) or (B, H, W); bool or floating,
            converted to ``grad``'s dtype and broadcast over channels.
        eps: added under the square root (keeps the slope's gradient finite at 0).

    Returns:
        The penalty, a 0-d tensor of ``grad``'s dtype (λ is applied by the caller).

    Shape:
        grad: (B, C, H, W); mask: (B, 1, H, W); output: ().
    """
    mask = _check_inputs(grad, mask, eps)
    if use_kernel("masked_gradient_penalty", grad):
        return torch.ops.restore.masked_gradient_penalty(grad, mask, float(eps))
    return masked_gradient_penalty_reference(grad, mask, eps)


def _double_backward(
    grad_out: torch.Tensor,
    grad: torch.Tensor,
    mask: torch.Tensor,
    eps: float,
    upstream: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Derivatives of ``h = grad_out · (2/B)(1 − 1/slope_b) · g · m`` contracted with ``upstream``.

    Plain differentiable PyTorch, so any further order works too.
    """
    b = grad.shape[0]
    gm = grad * mask
    slope = ((grad * gm).sum(dim=(1, 2, 3)) + eps).sqrt().view(b, 1, 1, 1)
    factor = (2.0 / b) * (1 - 1 / slope)
    d_grad_out = (upstream * factor * gm).sum()
    inner = (upstream * gm).sum(dim=(1, 2, 3)).view(b, 1, 1, 1)
    d_grad = grad_out * (factor * mask * upstream + (2.0 / b) * gm * inner / slope**3)
    return d_grad_out, d_grad


if has_ops():

    @torch.library.register_fake("restore::masked_gradient_penalty")
    def _(grad, mask, eps):
        return grad.new_empty(())

    @torch.library.register_fake("restore::_masked_gradient_penalty_backward")
    def _(grad_out, grad, mask, eps):
        return torch.empty_like(grad)

    def _setup_context(ctx, inputs, output):
        grad, mask, eps = inputs
        ctx.save_for_backward(grad, mask)
        ctx.eps = eps

    def _backward(ctx, grad_out):
        grad, mask = ctx.saved_tensors
        return (
            torch.ops.restore._masked_gradient_penalty_backward(grad_out, grad, mask, ctx.eps),
            None,
            None,
        )

    torch.library.register_autograd(
        "restore::masked_gradient_penalty", _backward, setup_context=_setup_context
    )

    def _setup_context_bw(ctx, inputs, output):
        grad_out, grad, mask, eps = inputs
        ctx.save_for_backward(grad_out, grad, mask)
        ctx.eps = eps

    def _backward_bw(ctx, upstream):
        grad_out, grad, mask = ctx.saved_tensors
        d_grad_out, d_grad = _double_backward(grad_out, grad, mask, ctx.eps, upstream)
        return d_grad_out, d_grad, None, None

    torch.library.register_autograd(
        "restore::_masked_gradient_penalty_backward", _backward_bw, setup_context=_setup_context_bw
    )
