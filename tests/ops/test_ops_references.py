"""The plain-PyTorch references against naive loop implementations on tiny inputs.

These pin the semantics (positions, padding, usable keys, normalisation, the CSA
recurrence, the penalty) independently of the compiled kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ops_naive import (
    naive_best_match,
    naive_csa_matrix,
    naive_csa_propagate,
    naive_masked_gradient_penalty,
    naive_patch_similarity,
)

from restore.ops import (
    csa_propagate_reference,
    masked_gradient_penalty_reference,
    patch_best_match_reference,
    patch_similarity_reference,
)


def _masks(b: int, h: int, w: int, p: float = 0.7) -> torch.Tensor:
    valid = torch.rand(b, h, w) < p
    valid[:, :3, :3] = True  # usable key patches exist up to ksize 5
    return valid


@pytest.mark.parametrize("ksize", [1, 3, 5])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 5, 3)])
def test_patch_similarity_reference_matches_naive(ksize, shape):
    b, c, h, w = shape
    query = torch.randn(shape, dtype=torch.float64)
    keys = torch.randn(shape, dtype=torch.float64)
    valid = _masks(b, h, w)
    got = patch_similarity_reference(query, keys, valid, ksize).numpy()
    want = naive_patch_similarity(query, keys, valid, ksize)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(
        got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-10, atol=1e-12
    )
    assert np.isfinite(want).any()


def test_patch_similarity_reference_mask_forms_agree():
    query = torch.randn(2, 3, 4, 5)
    valid = _masks(2, 4, 5)
    a = patch_similarity_reference(query, query, valid)
    b = patch_similarity_reference(query, query, valid.float().unsqueeze(1))
    torch.testing.assert_close(a, b)


def test_patch_similarity_reference_floor_on_small_patches():
    # A key patch whose norm is below the floor is divided by 1e-4, not by its norm.
    query = torch.randn(1, 2, 1, 2, dtype=torch.float64)
    keys = torch.tensor([[[[1e-6, 1.0]], [[0.0, 0.0]]]], dtype=torch.float64)
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    got = patch_similarity_reference(query, keys, valid)
    qn = query[0, :, 0, :] / query[0, :, 0, :].norm(dim=0)
    torch.testing.assert_close(got[0, 0, 0], qn[0] * 1e-6 / 1e-4)
    torch.testing.assert_close(got[0, 1, 0], qn[0])


@pytest.mark.parametrize("ksize", [1, 3])
def test_best_match_reference_matches_naive(ksize):
    query = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    keys = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    valid = _masks(2, 5, 4, p=0.8)
    index, score = patch_best_match_reference(query, keys, valid, ksize)
    n_index, n_score = naive_best_match(query, keys, valid, ksize)
    np.testing.assert_array_equal(index.numpy(), n_index)
    np.testing.assert_allclose(score.numpy(), n_score, rtol=1e-10)


def test_best_match_reference_ties_go_to_smallest_position():
    keys = torch.randn(1, 3, 3, 3)
    keys[0, :, 2, 1] = keys[0, :, 0, 2]  # positions 2 and 7 hold the same vector
    query = keys[0, :, 0, 2].view(1, 3, 1, 1).expand(1, 3, 3, 3).contiguous()
    index, score = patch_best_match_reference(query, keys, torch.ones(1, 3, 3, dtype=torch.bool))
    assert (index == 2).all()
    torch.testing.assert_close(score, torch.ones_like(score))


def test_best_match_reference_no_usable_key():
    query = torch.randn(2, 3, 4, 4)
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    valid[1] = False
    index, score = patch_best_match_reference(query, query, valid)
    assert (index[1] == -1).all() and torch.isneginf(score[1]).all()
    assert (index[0] >= 0).all() and torch.isfinite(score[0]).all()
    # ksize 3: a single valid position next to invalid ones makes no usable patch.
    valid3 = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid3[0, 1, 1] = True
    index3, score3 = patch_best_match_reference(query[:1], query[:1], valid3, 3)
    assert (index3 == -1).all() and torch.isneginf(score3).all()


def _csa_inputs(b=2, c=3, h=4, w=5, dtype=torch.float64):
    features = torch.randn(b, c, h, w, dtype=dtype)
    hole = torch.zeros(b, h, w, dtype=torch.bool)
    hole[0, 1:3, 1:4] = True
    if b > 1:
        hole[1, 0, 2] = hole[1, 2:, 0] = hole[1, 3, 4] = True  # a different mask
    index = torch.randint(0, h * w, (b, h, w))
    score = torch.rand(b, h, w, dtype=dtype) * 1.2 - 0.1  # some negative scores
    return features, hole, index, score


def test_csa_reference_matches_naive():
    features, hole, index, score = _csa_inputs()
    index[0, 1, 2] = -1  # a hole position with no match
    got = csa_propagate_reference(features, hole, index, score)
    np.testing.assert_allclose(
        got.numpy(), naive_csa_propagate(features, hole, index, score), rtol=1e-12, atol=1e-12
    )
    known = ~hole.unsqueeze(1).expand_as(features)
    assert torch.equal(got[known], features[known])


def test_csa_reference_single_hole_is_the_match():
    features, _, index, score = _csa_inputs(b=1)
    hole = torch.zeros(1, 4, 5, dtype=torch.bool)
    hole[0, 2, 3] = True
    got = csa_propagate_reference(features, hole, index, score)
    j = int(index[0, 2, 3])
    torch.testing.assert_close(got[0, :, 2, 3], features[0].flatten(1)[:, j])


def test_csa_reference_gradient_is_the_attention_matrix():
    features, hole, index, score = _csa_inputs()
    features.requires_grad_(True)
    out = csa_propagate_reference(features, hole, index, score)
    upstream = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, features, upstream)
    mats = naive_csa_matrix(features, hole, index, score)
    b, c, h, w = features.shape
    np.testing.assert_allclose(
        out.detach().numpy().reshape(b, c, h * w),
        np.einsum("bpq,bcq->bcp", mats, features.detach().numpy().reshape(b, c, h * w)),
        rtol=1e-12,
        atol=1e-12,
    )
    want = np.einsum("bpq,bcp->bcq", mats, upstream.numpy().reshape(b, c, h * w))
    np.testing.assert_allclose(grad.numpy().reshape(b, c, h * w), want, rtol=1e-12, atol=1e-12)


def test_csa_reference_rejects_out_of_range_index():
    features, hole, index, score = _csa_inputs()
    index[0, 1, 1] = 20
    with pytest.raises(ValueError, match="index must lie in"):
        csa_propagate_reference(features, hole, index, score)


def test_masked_gradient_penalty_reference_matches_naive():
    grad = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    mask = torch.rand(3, 1, 4, 5, dtype=torch.float64)
    got = masked_gradient_penalty_reference(grad, mask, 1e-3)
    assert math.isclose(float(got), naive_masked_gradient_penalty(grad, mask, 1e-3), rel_tol=1e-12)
    bool_mask = mask[:, 0] > 0.5
    got_bool = masked_gradient_penalty_reference(grad, bool_mask)
    want = naive_masked_gradient_penalty(grad, bool_mask.to(torch.float64), 1e-12)
    assert math.isclose(float(got_bool), want, rel_tol=1e-12)
