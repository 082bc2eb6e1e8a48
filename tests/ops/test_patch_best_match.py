"""restore.ops.patch_best_match: kernel vs reference, no-key images, gradients, opcheck, errors."""

from __future__ import annotations

import pytest
import torch
from ops_cases import device_dtypes, layout, needs_ops, random_valid, tolerances

from restore.ops import patch_best_match, patch_best_match_reference, patch_similarity_reference

pytestmark = needs_ops
op = torch.ops.restore.patch_best_match


def _inputs(shape, dtype, device, p=0.7):
    b, c, h, w = shape
    query = torch.randn(shape, dtype=dtype, device=device)
    keys = torch.randn(shape, dtype=dtype, device=device)
    return query, keys, random_valid(b, h, w, p, device)


def _assert_best(index, score, query, keys, valid, ksize, dtype):
    """The kernel's pick reaches the reference maximum (ties within rounding may differ)."""
    volume = patch_similarity_reference(query.double(), keys.double(), valid, ksize)
    ref_score, ref_index = volume.max(dim=1)
    tol = tolerances(dtype)
    torch.testing.assert_close(score.double(), ref_score, **tol)
    picked = volume.gather(1, index.clamp_min(0).unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(picked, ref_score, **tol)
    top2 = volume.topk(2, dim=1).values
    # Half scores are rounded before the maximum is taken: keys within a few half ulps may swap.
    margin = 8 * torch.finfo(dtype).eps if dtype == torch.float16 else 10 * tol["atol"] + 10 * tol["rtol"]
    clear = (top2[:, 0] - top2[:, 1]) > margin
    assert clear.float().mean() > 0.5
    assert torch.equal(index[clear], ref_index[clear])


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("ksize", [1, 3])
@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (1, 4, 13, 11)])
def test_kernel_matches_reference(device, dtype, contiguous, ksize, shape):
    query, keys, valid = _inputs(shape, dtype, device)
    index, score = op(layout(query, contiguous), layout(keys, contiguous), valid, ksize)
    assert index.dtype == torch.int64 and score.dtype == dtype
    assert index.shape == score.shape == (shape[0], shape[2], shape[3])
    _assert_best(index, score, query, keys, valid, ksize, dtype)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
@pytest.mark.parametrize(
    "shape",
    [
        (2, 8, 40, 40),  # 1,600 positions: several key blocks on the CPU
        (1, 4, 48, 48),  # 2,304 positions: several key blocks on CUDA too
        (5, 4, 36, 36),  # CUDA groups two whole images per GEMM: groups of 2, 2 and 1
    ],
)
def test_many_key_blocks_and_image_groups(device, shape):
    query, keys, valid = _inputs(shape, torch.float64, device, p=0.6)
    index, score = patch_best_match(query, keys, valid)
    _assert_best(index, score, query, keys, valid, 1, torch.float64)
    ref_index, ref_score = patch_best_match_reference(query, keys, valid)
    assert torch.equal(index, ref_index)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
@pytest.mark.parametrize("shape", [(3, 8, 9, 7), (2, 8, 48, 48), (5, 8, 36, 36)])
def test_ties_go_to_smallest_usable_key_across_blocks(device, shape):
    # Every key and query is one of four palette vectors, so each query ties with every
    # usable key that holds its vector: the smallest such position must win, whichever
    # key block, image group or key segment of the search it lies in.
    b, c, h, w = shape
    generator = torch.Generator().manual_seed(7)
    palette = torch.randn(4, c, dtype=torch.float64, generator=generator)
    key_ids = torch.randint(0, 4, (b, h * w), generator=generator)
    query_ids = torch.randint(0, 4, (b, h * w), generator=generator)
    valid = torch.rand(b, h * w, generator=generator) < 0.5
    valid[:, 0] = True
    first = torch.full((b, 4), -1, dtype=torch.long)
    for image in range(b):
        for position in reversed(range(h * w)):
            if valid[image, position]:
                first[image, key_ids[image, position]] = position
    expected = first.gather(1, query_ids)

    def image(ids: torch.Tensor) -> torch.Tensor:
        return palette[ids].transpose(1, 2).reshape(b, c, h, w).contiguous().to(device)

    index, score = patch_best_match(image(query_ids), image(key_ids), valid.reshape(b, h, w).to(device))
    best_is_own = (expected >= 0).reshape(b, h, w)  # a query whose own vector has a usable key
    assert best_is_own.float().mean() > 0.9
    assert torch.equal(index.cpu()[best_is_own], expected.reshape(b, h, w)[best_is_own])
    torch.testing.assert_close(score.cpu()[best_is_own], torch.ones_like(score.cpu()[best_is_own]))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
def test_no_usable_key_and_single_key(device):
    query, keys, _ = _inputs((3, 3, 5, 6), torch.float32, device)
    valid = torch.ones(3, 5, 6, dtype=torch.bool, device=device)
    valid[1] = False  # no valid key at all
    valid[2] = False
    valid[2, 3, 4] = True  # exactly one (all hole but one)
    index, score = patch_best_match(query, keys, valid)
    assert (index[1] == -1).all() and torch.isneginf(score[1]).all()
    assert (index[2] == 3 * 6 + 4).all() and torch.isfinite(score[2]).all()
    assert (index[0] >= 0).all()
    ref_index, ref_score = patch_best_match_reference(query, keys, valid)
    assert torch.equal(index[1:], ref_index[1:])
    torch.testing.assert_close(score[1:], ref_score[1:])
    # ksize 3 with a lone valid position: no usable patch
    lone = torch.zeros(1, 5, 6, dtype=torch.bool, device=device)
    lone[0, 2, 2] = True
    index3, score3 = patch_best_match(query[:1], keys[:1], lone, ksize=3)
    assert (index3 == -1).all() and torch.isneginf(score3).all()


def test_ties_go_to_smallest_position():
    keys = torch.randn(1, 3, 3, 3, dtype=torch.float64)
    keys[0, :, 2, 1] = keys[0, :, 0, 2]  # positions 2 and 7 hold the same vector
    query = keys[0, :, 0, 2].reshape(1, 3, 1, 1).expand(1, 3, 3, 3).contiguous()
    index, score = op(query, keys, torch.ones(1, 3, 3, dtype=torch.bool), 1)
    assert (index == 2).all()
    torch.testing.assert_close(score, torch.ones_like(score))


@pytest.mark.parametrize("ksize", [1, 3])
def test_gradcheck(ksize):
    query, keys, valid = _inputs((2, 3, 4, 3), torch.float64, "cpu", p=0.8)
    query.requires_grad_(True)
    keys.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q, k: patch_best_match(q, k, valid, ksize)[1], (query, keys)
    )


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
def test_backward_matches_reference(device, dtype):
    query, keys, valid = _inputs((2, 4, 6, 5), dtype, device)
    valid[1] = False  # an image without keys: no gradient from it
    upstream = torch.randn(2, 6, 5, dtype=dtype, device=device)
    upstream[1] = float("nan")  # its -inf scores are constants: the upstream is ignored
    grads = []
    for fn in (patch_best_match, patch_best_match_reference):
        q = query.clone().requires_grad_(True)
        k = keys.clone().requires_grad_(True)
        _, score = fn(q, k, valid, 3)
        grads.append(torch.autograd.grad(score, (q, k), upstream))
    for got, want in zip(grads[0], grads[1], strict=True):
        assert got[0].abs().max() > 0 and (got[1] == 0).all()
        torch.testing.assert_close(got, want, **tolerances(dtype))


def test_opcheck():
    query, keys, valid = _inputs((2, 3, 5, 4), torch.float32, "cpu")
    torch.library.opcheck(op, (query, keys, valid, 3))
    # With gradients, opcheck's AOT test sums the outputs into one tensor starting from the
    # int64 index, which cannot absorb the float score in place: run the other three tests.
    torch.library.opcheck(
        op,
        (query.requires_grad_(True), keys.requires_grad_(True), valid, 1),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )
    index, _ = op(query.detach(), keys.detach(), valid, 1)
    torch.library.opcheck(
        torch.ops.restore._patch_best_match_backward,
        (torch.randn(2, 5, 4), query.detach(), keys.detach(), index, 1),
    )


def test_kernel_errors():
    query, keys, valid = _inputs((2, 3, 4, 5), torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"keys must have the shape of query"):
        op(query, keys[:1], valid, 1)
    with pytest.raises(TypeError, match=r"key_valid must be Bool"):
        op(query, keys, valid.to(torch.uint8), 1)
    with pytest.raises(ValueError, match=r"ksize must be a positive odd integer"):
        op(query, keys, valid, -1)
    index = torch.full((2, 4, 5), 20)
    with pytest.raises(ValueError, match=r"index must lie in \[-1, H\*W\)"):
        torch.ops.restore._patch_best_match_backward(torch.randn(2, 4, 5), query, keys, index, 1)


def test_public_errors():
    query, keys, valid = _inputs((2, 3, 4, 5), torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"query must be 4-D"):
        patch_best_match(query[0], keys[0], valid)
    with pytest.raises(TypeError, match=r"keys must have the dtype of query"):
        patch_best_match(query, keys.double(), valid)
    with pytest.raises(ValueError, match=r"key_valid must be on the device"):
        patch_best_match(query, keys, valid.to("meta"))
