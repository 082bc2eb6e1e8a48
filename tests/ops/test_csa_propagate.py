"""restore.ops.csa_propagate: kernel vs reference, edge cases, backward, opcheck, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ops_cases import device_dtypes, layout, needs_ops, tolerances
from ops_naive import naive_csa_matrix

from restore.ops import csa_propagate, csa_propagate_reference, patch_best_match

pytestmark = needs_ops
op = torch.ops.restore.csa_propagate


def _holes(b, h, w, device):
    """Different holes per sample: a box, scattered positions, and (b > 2) a single position."""
    hole = torch.zeros(b, h, w, dtype=torch.bool, device=device)
    hole[0, h // 4 : h // 4 + h // 2, w // 3 : w // 3 + w // 2] = True
    if b > 1:
        hole[1] = torch.rand(h, w, device=device) < 0.3
    if b > 2:
        hole[2, h - 1, 0] = True
    return hole


def _inputs(shape, dtype, device):
    b, c, h, w = shape
    features = torch.randn(shape, dtype=dtype, device=device)
    hole = _holes(b, h, w, device)
    index, score = patch_best_match(features.double(), features.double(), ~hole)
    return features, hole, index, score.to(dtype)


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("shape", [(3, 16, 9, 11), (2, 5, 8, 8)])
def test_kernel_matches_reference(device, dtype, contiguous, shape):
    features, hole, index, score = _inputs(shape, dtype, device)
    got = op(layout(features, contiguous), hole, index, layout(score, contiguous))
    want = csa_propagate_reference(features.double(), hole, index, score.double())
    torch.testing.assert_close(got.double(), want, **tolerances(dtype))
    known = ~hole.unsqueeze(1).expand_as(features)
    assert torch.equal(got[known], features[known])
    assert not torch.equal(got[~known], features[~known])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
def test_weights_cover_the_whole_range(device):
    # Random (not best-match) indices and scores, some negative, some -1 indices:
    # weights of 0, 1 and in between, and "no match" steps.
    b, c, h, w = 2, 6, 7, 5
    features = torch.randn(b, c, h, w, dtype=torch.float64, device=device)
    hole = _holes(b, h, w, device)
    index = torch.randint(0, h * w, (b, h, w), device=device)
    index[0, 2, 2] = -1
    score = torch.rand(b, h, w, dtype=torch.float64, device=device) * 1.4 - 0.4
    got = op(features, hole, index, score)
    torch.testing.assert_close(got, csa_propagate_reference(features, hole, index, score))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
def test_single_hole_and_all_hole_but_one(device):
    features = torch.randn(2, 4, 5, 6, dtype=torch.float64, device=device)
    hole = torch.zeros(2, 5, 6, dtype=torch.bool, device=device)
    hole[0, 3, 1] = True  # a single hole position
    hole[1] = True
    hole[1, 0, 5] = False  # one known position
    index, score = patch_best_match(features, features, ~hole)
    got = csa_propagate(features, hole, index, score)
    torch.testing.assert_close(got[0, :, 3, 1], features[0].flatten(1)[:, int(index[0, 3, 1])])
    assert (index[1][hole[1]] == 5).all()
    # every hole position mixes copies of the one known vector: all equal to it
    torch.testing.assert_close(got[1], features[1, :, 0, 5].view(4, 1, 1).expand(4, 5, 6))
    torch.testing.assert_close(got, csa_propagate_reference(features, hole, index, score))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
def test_no_hole_and_no_match(device):
    features = torch.randn(2, 3, 4, 4, device=device)
    hole = torch.zeros(2, 4, 4, dtype=torch.bool, device=device)
    hole[1] = True  # an all-hole image: patch_best_match finds no key (index -1)
    index, score = patch_best_match(features, features, ~hole)
    assert (index[1] == -1).all()
    got = csa_propagate(features, hole, index, score)
    assert torch.equal(got[0], features[0])
    assert torch.equal(got[1], torch.zeros_like(got[1]))


def test_gradcheck_where_weights_are_locally_constant():
    # With D_max = 0 every weight is 0 or 1 (the sign of D_ad), constant under small
    # perturbations, so the op's backward is the exact derivative there.
    features = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    hole = _holes(2, 4, 5, "cpu")
    index = torch.randint(0, 20, (2, 4, 5))
    score = torch.zeros(2, 4, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: csa_propagate(f, hole, index, score), (features,))


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
def test_backward_matches_reference_and_attention_matrix(device, dtype):
    b, c, h, w = 3, 5, 6, 7
    features = torch.randn(b, c, h, w, dtype=dtype, device=device)
    hole = _holes(b, h, w, device)
    index = torch.randint(0, h * w, (b, h, w), device=device)
    index[1, 0, 0] = -1
    score = torch.rand(b, h, w, dtype=dtype, device=device)
    upstream = torch.randn_like(features)
    grads = []
    for fn in (csa_propagate, csa_propagate_reference):
        f = features.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(f, hole, index, score), f, upstream)
        grads.append(g)
    torch.testing.assert_close(grads[0], grads[1], **tolerances(dtype))
    mats = naive_csa_matrix(features.cpu(), hole.cpu(), index.cpu(), score.cpu())
    want = np.einsum("bpq,bcp->bcq", mats, upstream.cpu().double().numpy().reshape(b, c, h * w))
    tol = tolerances(dtype)
    np.testing.assert_allclose(
        grads[0].cpu().double().numpy().reshape(b, c, h * w),
        want,
        rtol=tol["rtol"] * 10,
        atol=tol["atol"] * 10,
    )


def test_opcheck():
    features, hole, index, score = _inputs((2, 4, 5, 6), torch.float32, "cpu")
    torch.library.opcheck(op, (features, hole, index, score))
    torch.library.opcheck(op, (features.clone().requires_grad_(True), hole, index, score))
    out = op(features, hole, index, score)
    torch.library.opcheck(
        torch.ops.restore._csa_propagate_backward,
        (torch.randn_like(features), features, hole, index, score, out),
    )


def test_kernel_errors():
    features, hole, index, score = _inputs((2, 4, 5, 6), torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"features must be 4-D"):
        op(features[0], hole, index, score)
    with pytest.raises(TypeError, match=r"hole must be Bool"):
        op(features, hole.float(), index, score)
    with pytest.raises(TypeError, match=r"index must be Long"):
        op(features, hole, index.int(), score)
    with pytest.raises(TypeError, match=r"score must be Float"):
        op(features, hole, index, score.double())
    with pytest.raises(ValueError, match=r"score must have shape \(B, H, W\)"):
        op(features, hole, index, score[:, :4])
    bad = index.clone()
    bad[hole] = 30
    with pytest.raises(
        ValueError, match=r"index must lie in \[-1, H\*W\) = \[-1, 30\) at hole positions"
    ):
        op(features, hole, bad, score)


def test_public_errors_and_conversions():
    features, hole, index, score = _inputs((2, 4, 5, 6), torch.float32, "cpu")
    want = op(features, hole, index, score)
    got = csa_propagate(features, hole.unsqueeze(1).float(), index.int(), score.double())
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"hole must have shape \(B, 1, H, W\) or \(B, H, W\)"):
        csa_propagate(features, hole[:, :2], index, score)
    with pytest.raises(TypeError, match=r"index must be an integer tensor"):
        csa_propagate(features, hole, index.float(), score)
    with pytest.raises(ValueError, match=r"score must be on the device of features"):
        csa_propagate(features, hole, index, score.to("meta"))
