"""Patch similarity: cosine similarity of every query patch with every usable key patch.

Conventions (shared with :func:`restore.ops.patch_best_match`):

* **Positions** are flat, ``p = y * W + x`` (raster order).
* **Patches** are the k×k windows centred on a position (``ksize`` odd), taken
  with zero padding outside the image ("same" output: one patch per position).
  A patch is the vector of its ``C·k·k`` values.
* **Normalisation**: query and key patches are both divided by
  ``max(‖patch‖₂, 1e-4)``, so a score is the cosine similarity of the two
  patches (bounded by 1) except for near-zero patches, whose score shrinks
  towards 0 instead of being undefined.
* **Usable keys**: ``key_valid`` marks valid positions (1 / True = valid, e.g.
  known pixels). A key patch is usable when every position of its k×k window
  *that lies inside the image* is valid; positions outside the image are zero
  padding and do not disqualify a patch (DeepFill's SAME-padded mask). For
  ``ksize=1`` usable = valid. Unusable keys score ``-inf``.
* ``key_valid`` may be (B, 1, H, W) or (B, H, W), bool or numeric (a value
  > 0.5 is valid); each batch sample has its own mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_patch_inputs
from ._ext import NORM_FLOOR, has_ops, use_kernel

__all__ = ["patch_similarity", "patch_similarity_reference"]


def unit_patches(x: torch.Tensor, ksize: int) -> torch.Tensor:
    """Zero-padded k×k patches of ``x`` divided by ``max(‖patch‖, 1e-4)``.

    Shape:
        x: (B, C, H, W) -> (B, H·W, C·k·k); the feature axis is ordered (c, dy, dx).
    """
    if ksize == 1:
        patches = x.flatten(2).transpose(1, 2)
    else:
        patches = F.unfold(x, ksize, padding=ksize // 2).transpose(1, 2)
    norm = torch.linalg.vector_norm(patches, dim=-1, keepdim=True)
    return patches / norm.clamp_min(NORM_FLOOR)


def usable_keys(key_valid: torch.Tensor, ksize: int) -> torch.Tensor:
    """Which key patches are usable: every in-image position of the window valid.

    Shape:
        key_valid: (B, H, W) bool -> (B, H·W) bool.
    """
    if ksize == 1:
        return key_valid.flatten(1)
    invalid = (~key_valid).unsqueeze(1).to(torch.float32)
    # max_pool2d pads with -inf, so positions outside the image never disqualify.
    any_invalid = F.max_pool2d(invalid, ksize, stride=1, padding=ksize // 2)
    return (any_invalid[:, 0] == 0).flatten(1)


def patch_similarity_reference(
    query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, ksize: int = 1
) -> torch.Tensor:
    """Plain PyTorch :func:`patch_similarity` (differentiable; builds the whole volume).

    Args:
        query: query features.
        keys: key features (the same map for self-attention).
        key_valid: valid key positions, (B, 1, H, W) or (B, H, W), bool or numeric (> 0.5).
        ksize: odd patch size.

    Returns:
        Scores ``out[b, p_key, y, x]`` = cosine(query patch at (y, x), key patch at
        ``p_key = y_k * W + x_k``), ``-inf`` for unusable keys.

    Shape:
        query, keys: (B, C, H, W); output: (B, H·W, H, W).
    """
    valid = check_patch_inputs(query, keys, key_valid, ksize)
    b, _, h, w = query.shape
    q = unit_patches(query, ksize)
    k = unit_patches(keys, ksize)
    scores = torch.bmm(k, q.transpose(1, 2))  # (B, Nkeys, Nqueries)
    usable = usable_keys(valid, ksize)
    scores = scores.masked_fill(~usable.unsqueeze(2), float("-inf"))
    return scores.view(b, h * w, h, w)


def patch_similarity(
    query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, ksize: int = 1
) -> torch.Tensor:
    """Cosine similarity of every k×k query patch with every usable k×k key patch.

    Runs ``torch.ops.restore.patch_similarity`` (CPU or CUDA kernel; the GEMM is a
    batched matrix product) when compiled, else :func:`patch_similarity_reference`.
    Differentiable with respect to ``query`` and ``keys``. Conventions: see the
    module docstring.

    Args:
        query: query features.
        keys: key features (the same map for self-attention).
        key_valid: valid key positions, (B, 1, H, W) or (B, H, W), bool or numeric (> 0.5).
        ksize: odd patch size (1 for CSA, 3 for contextual attention).

    Returns:
        Scores ``out[b, p_key, y, x]`` with ``p_key = y_k * W + x_k``; ``-inf`` for
        unusable keys.

    Shape:
        query, keys: (B, C, H, W); output: (B, H·W, H, W).
    """
    valid = check_patch_inputs(query, keys, key_valid, ksize)
    if use_kernel("patch_similarity", query):
        return torch.ops.restore.patch_similarity(query, keys, valid, ksize)
    return patch_similarity_reference(query, keys, valid, ksize)


if has_ops():

    @torch.library.register_fake("restore::patch_similarity")
    def _(query, keys, key_valid, ksize):
        b, _, h, w = query.shape
        return query.new_empty((b, h * w, h, w))

    @torch.library.register_fake("restore::_patch_similarity_backward")
    def _(grad, query, keys, key_valid, ksize):
        return torch.empty_like(query), torch.empty_like(keys)

    def _setup_context(ctx, inputs, output):
        query, keys, key_valid, ksize = inputs
        ctx.save_for_backward(query, keys, key_valid)
        ctx.ksize = ksize

    def _backward(ctx, grad):
        query, keys, key_valid = ctx.saved_tensors
        grad_query, grad_keys = torch.ops.restore._patch_similarity_backward(
            grad, query, keys, key_valid, ctx.ksize
        )
        return grad_query, grad_keys, None, None

    torch.library.register_autograd(
        "restore::patch_similarity", _backward, setup_context=_setup_context
    )
