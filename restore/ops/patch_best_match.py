"""Fused top-1 patch search: the best usable key of every query, without the score volume.

Same scores as :func:`restore.ops.patch_similarity` (see its module docstring for
positions, patches, padding, normalisation and usable keys), reduced to their
maximum over the keys as they are computed, block by block, so memory stays
O(H·W · block) instead of O((H·W)²).

* ``index[b, y, x]`` is the flat position ``y_k * W + x_k`` of the best usable key;
  ties go to the smallest flat position.
* ``score[b, y, x]`` is its cosine similarity.
* An image with **no usable key** gets ``index = -1`` and ``score = -inf`` at every
  position (no error: a model may meet an all-hole feature map).
  :func:`restore.ops.csa_propagate` reads index −1 as "no match".
"""

from __future__ import annotations

import torch

from ._checks import check_patch_inputs
from ._ext import has_ops, use_kernel
from .patch_similarity import patch_similarity_reference, usable_keys

__all__ = ["patch_best_match", "patch_best_match_reference"]


def patch_best_match_reference(
    query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, ksize: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain PyTorch :func:`patch_best_match`: the max over the full score volume.

    Args:
        query: query features.
        keys: key features.
        key_valid: valid key positions, (B, 1, H, W) or (B, H, W), bool or numeric (> 0.5).
        ksize: odd patch size.

    Returns:
        ``(index, score)``; ``score`` is differentiable with respect to ``query`` and ``keys``.

    Shape:
        query, keys: (B, C, H, W); index: (B, H, W) int64; score: (B, H, W).
    """
    valid = check_patch_inputs(query, keys, key_valid, ksize)
    scores = patch_similarity_reference(query, keys, valid, ksize)
    score, index = scores.max(dim=1)
    has_key = usable_keys(valid, ksize).any(dim=1).view(-1, 1, 1)
    index = torch.where(has_key, index, torch.full_like(index, -1))
    return index, score


def patch_best_match(
    query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, ksize: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best usable key patch of every query patch (fused top-1 of :func:`patch_similarity`).

    Runs ``torch.ops.restore.patch_best_match`` when compiled, else
    :func:`patch_best_match_reference`. ``score`` is differentiable with respect to
    ``query`` and ``keys`` (through the winning pair); ``index`` is not.

    Args:
        query: query features.
        keys: key features (the same map for CSA's search).
        key_valid: valid key positions, (B, 1, H, W) or (B, H, W), bool or numeric (> 0.5).
        ksize: odd patch size.

    Returns:
        ``(index, score)``: flat position ``y_k * W + x_k`` of the best usable key (ties:
        smallest position) and its cosine similarity; ``-1`` and ``-inf`` throughout an
        image that has no usable key.

    Shape:
        query, keys: (B, C, H, W); index: (B, H, W) int64; score: (B, H, W), query's dtype.
    """
    valid = check_patch_inputs(query, keys, key_valid, ksize)
    if use_kernel("patch_best_match", query):
        return tuple(torch.ops.restore.patch_best_match(query, keys, valid, ksize))
    return patch_best_match_reference(query, keys, valid, ksize)


if has_ops():

    @torch.library.register_fake("restore::patch_best_match")
    def _(query, keys, key_valid, ksize):
        b, _, h, w = query.shape
        return query.new_empty((b, h, w), dtype=torch.int64), query.new_empty((b, h, w))

    @torch.library.register_fake("restore::_patch_best_match_backward")
    def _(grad_score, query, keys, index, ksize):
        return torch.empty_like(query), torch.empty_like(keys)

    def _setup_context(ctx, inputs, output):
        query, keys, _key_valid, ksize = inputs
        index, _score = output
        ctx.mark_non_differentiable(index)
        ctx.save_for_backward(query, keys, index)
        ctx.ksize = ksize

    def _backward(ctx, grad_index, grad_score):
        query, keys, index = ctx.saved_tensors
        grad_query, grad_keys = torch.ops.restore._patch_best_match_backward(
            grad_score, query, keys, index, ctx.ksize
        )
        return grad_query, grad_keys, None, None

    torch.library.register_autograd(
        "restore::patch_best_match", _backward, setup_context=_setup_context
    )
