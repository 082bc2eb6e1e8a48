"""restore.ops.patch_similarity: kernel vs reference, gradients, opcheck, errors."""

from __future__ import annotations

import pytest
import torch
from ops_cases import device_dtypes, layout, needs_ops, random_valid, tolerances

from restore.ops import patch_similarity, patch_similarity_reference

pytestmark = needs_ops
op = torch.ops.restore.patch_similarity


def _inputs(shape, dtype, device, p=0.75):
    b, c, h, w = shape
    query = torch.randn(shape, dtype=dtype, device=device)
    keys = torch.randn(shape, dtype=dtype, device=device)
    return query, keys, random_valid(b, h, w, p, device)


def _assert_scores_close(got, want, dtype):
    assert torch.equal(torch.isneginf(got), torch.isneginf(want))
    finite = torch.isfinite(want)
    assert finite.any()
    torch.testing.assert_close(got[finite], want[finite], **tolerances(dtype))


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("ksize", [1, 3])
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 3, 6, 5)])
def test_kernel_matches_reference(device, dtype, contiguous, ksize, shape):
    query, keys, valid = _inputs(shape, dtype, device)
    got = op(layout(query, contiguous), layout(keys, contiguous), valid, ksize)
    want = patch_similarity_reference(query.double(), keys.double(), valid, ksize).to(dtype)
    assert got.shape == (shape[0], shape[2] * shape[3], shape[2], shape[3])
    _assert_scores_close(got, want, dtype)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
def test_public_function_uses_kernel_and_accepts_mask_forms(device):
    query, keys, valid = _inputs((2, 4, 5, 6), torch.float32, device)
    want = op(query, keys, valid, 3)
    for mask in (valid, valid.unsqueeze(1), valid.float(), valid.unsqueeze(1).double()):
        torch.testing.assert_close(
            patch_similarity(query, keys, mask, ksize=3), want, rtol=0, atol=0
        )


def test_single_valid_key_and_large_patch():
    query, keys, _ = _inputs((2, 3, 5, 4), torch.float64, "cpu")
    valid = torch.zeros(2, 5, 4, dtype=torch.bool)
    valid[0, 4, 3] = True  # one valid position per sample, at different places
    valid[1, 0, 1] = True
    got = op(query, keys, valid, 1)
    assert torch.isfinite(got[0, 19]).all() and torch.isneginf(got[0, :19]).all()
    assert torch.isfinite(got[1, 1]).all() and torch.isneginf(got[1, 2:]).all()
    _assert_scores_close(got, patch_similarity_reference(query, keys, valid), torch.float64)
    # ksize 5 > the image's width: most windows reach outside the image
    valid = random_valid(2, 5, 4, 0.9, "cpu", block=5)
    _assert_scores_close(
        op(query, keys, valid, 5), patch_similarity_reference(query, keys, valid, 5), torch.float64
    )


def test_scores_are_cosines():
    query, keys, _ = _inputs((1, 6, 4, 4), torch.float64, "cpu")
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    got = op(query, query, valid, 1)
    diagonal = got[0].view(16, 16).diagonal()
    torch.testing.assert_close(diagonal, torch.ones_like(diagonal))
    assert (got.abs() <= 1 + 1e-12).all()


@pytest.mark.parametrize("ksize", [1, 3])
def test_gradcheck(ksize):
    query, keys, valid = _inputs((2, 2, 3, 4), torch.float64, "cpu", p=0.8)
    query.requires_grad_(True)
    keys.requires_grad_(True)

    def fn(q, k):
        out = patch_similarity(q, k, valid, ksize)
        return torch.where(torch.isinf(out), 0, out)  # -inf entries are constants

    assert torch.autograd.gradcheck(fn, (query, keys))


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
def test_backward_matches_reference(device, dtype):
    query, keys, valid = _inputs((2, 3, 5, 6), dtype, device)
    upstream = torch.randn(2, 30, 5, 6, dtype=dtype, device=device)
    grads = []
    for fn in (patch_similarity, patch_similarity_reference):
        q = query.clone().requires_grad_(True)
        k = keys.clone().requires_grad_(True)
        out = fn(q, k, valid, 3)
        grads.append(torch.autograd.grad(out, (q, k), upstream))
    for got, want in zip(grads[0], grads[1], strict=True):
        assert got.abs().max() > 0
        torch.testing.assert_close(got, want, **tolerances(dtype))


def test_backward_ignores_upstream_at_unusable_keys():
    query, keys, valid = _inputs((1, 3, 4, 4), torch.float64, "cpu")
    q = query.clone().requires_grad_(True)
    out = op(q, keys, valid, 1)
    upstream = torch.randn_like(out)
    (g1,) = torch.autograd.grad(out, q, upstream)
    upstream[torch.isinf(out)] = float("nan")
    (g2,) = torch.autograd.grad(op(q, keys, valid, 1), q, upstream)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("ksize", [1, 3])
def test_opcheck(ksize):
    query, keys, valid = _inputs((2, 3, 4, 5), torch.float32, "cpu")
    torch.library.opcheck(op, (query, keys, valid, ksize))
    torch.library.opcheck(op, (query.requires_grad_(True), keys.requires_grad_(True), valid, ksize))
    grad = torch.randn(2, 20, 4, 5)
    torch.library.opcheck(
        torch.ops.restore._patch_similarity_backward,
        (grad, query.detach(), keys.detach(), valid, ksize),
    )


def test_kernel_errors():
    query, keys, valid = _inputs((2, 3, 4, 5), torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"query must be 4-D"):
        op(query[0], keys[0], valid, 1)
    with pytest.raises(ValueError, match=r"keys must have the shape of query"):
        op(query, keys[:, :2], valid, 1)
    with pytest.raises(TypeError, match=r"keys must have the dtype of query"):
        op(query, keys.double(), valid, 1)
    with pytest.raises(TypeError, match=r"query must be a floating tensor"):
        op(query.long(), keys.long(), valid, 1)
    with pytest.raises(TypeError, match=r"key_valid must be Bool"):
        op(query, keys, valid.float(), 1)
    with pytest.raises(ValueError, match=r"key_valid must have shape \(B, H, W\)"):
        op(query, keys, valid[:, :3], 1)
    with pytest.raises(ValueError, match=r"ksize must be a positive odd integer"):
        op(query, keys, valid, 2)
    with pytest.raises(TypeError, match=r"CPU kernel supports float32 and float64"):
        op(query.half(), keys.half(), valid, 1)


def test_public_errors():
    query, keys, valid = _inputs((2, 3, 4, 5), torch.float32, "cpu")
    with pytest.raises(
        ValueError, match=r"key_valid must have shape \(B, 1, H, W\) or \(B, H, W\)"
    ):
        patch_similarity(query, keys, valid[:1])
    with pytest.raises(ValueError, match=r"keys must be on the device of query"):
        patch_similarity(query, keys.to("meta"), valid)
    with pytest.raises(ValueError, match=r"ksize must be a positive odd integer"):
        patch_similarity(query, keys, valid, ksize=0)
    with pytest.raises(TypeError, match=r"query must be a floating tensor"):
        patch_similarity(query.int(), keys.int(), valid)


@pytest.mark.needs_cuda
def test_cuda_kernel_rejects_mixed_devices():
    query, keys, valid = _inputs((1, 2, 3, 3), torch.float32, "cuda")
    with pytest.raises(ValueError, match=r"key_valid must be on the device"):
        op(query, keys, valid.cpu(), 1)
