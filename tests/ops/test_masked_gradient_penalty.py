"""restore.ops.masked_gradient_penalty: kernel vs reference, first and second derivatives, opcheck."""

from __future__ import annotations

import pytest
import torch
from ops_cases import device_dtypes, layout, needs_ops, tolerances

from restore.ops import masked_gradient_penalty, masked_gradient_penalty_reference

pytestmark = needs_ops
op = torch.ops.restore.masked_gradient_penalty


def _inputs(shape, dtype, device):
    b, c, h, w = shape
    grad = torch.randn(shape, dtype=dtype, device=device) * 0.1
    mask = (torch.rand(b, 1, h, w, device=device) < 0.4).to(dtype)
    return grad, mask


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 17, 13), (1, 1, 5, 3), (2, 8, 64, 65)])
def test_kernel_matches_reference(device, dtype, contiguous, shape):
    grad, mask = _inputs(shape, dtype, device)
    got = op(layout(grad, contiguous), mask, 1e-12)
    want = masked_gradient_penalty_reference(grad.double(), mask.double())
    assert got.shape == () and got.dtype == dtype
    torch.testing.assert_close(got.double(), want, **tolerances(dtype))


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
def test_soft_mask_and_mask_forms(device, dtype):
    grad, _ = _inputs((3, 2, 6, 7), dtype, device)
    soft = torch.rand(3, 1, 6, 7, dtype=dtype, device=device)
    torch.testing.assert_close(
        masked_gradient_penalty(grad, soft, eps=1e-3).double(),
        masked_gradient_penalty_reference(grad.double(), soft.double(), eps=1e-3),
        **tolerances(dtype),
    )
    binary = soft > 0.5
    want = masked_gradient_penalty(grad, binary.to(dtype))
    torch.testing.assert_close(masked_gradient_penalty(grad, binary), want, rtol=0, atol=0)
    torch.testing.assert_close(masked_gradient_penalty(grad, binary[:, 0]), want, rtol=0, atol=0)


@pytest.mark.parametrize(("device", "dtype"), device_dtypes())
def test_backward_and_double_backward_match_reference(device, dtype):
    # The WGAN-GP use: the penalty of an input gradient, minimised through create_graph=True.
    # Small enough that no order overflows float16 (at weight scale 1 the penalty alone is ~1e6).
    torch.manual_seed(1)
    weight = 0.05 * torch.randn(3, 3, 3, 3, dtype=dtype, device=device)
    x = 0.5 * torch.randn(2, 3, 8, 9, dtype=dtype, device=device)
    mask = (torch.rand(2, 1, 8, 9, device=device) < 0.5).to(dtype)
    results = []
    for fn in (masked_gradient_penalty, masked_gradient_penalty_reference):
        w = weight.clone().requires_grad_(True)
        xi = x.clone().requires_grad_(True)
        critic = torch.nn.functional.conv2d(xi, w, padding=1).pow(2).sum()
        (g,) = torch.autograd.grad(critic, xi, create_graph=True)
        penalty = fn(g, mask)
        (dw,) = torch.autograd.grad(penalty, w, create_graph=True)
        (ddw,) = torch.autograd.grad(dw.pow(2).sum(), w)  # a third order through the op
        results.append((penalty, dw, ddw))
    # In float16 the third order through the convolutions is rounding noise (the reference alone
    # is off by several per cent of its largest value against float64), so it is compared in float32/64.
    orders = 2 if dtype == torch.float16 else 3
    for got, want in zip(results[0][:orders], results[1][:orders], strict=True):
        torch.testing.assert_close(got, want, **tolerances(dtype))
    assert results[0][1].abs().max() > 0


def test_gradcheck_and_gradgradcheck():
    grad, mask = _inputs((3, 2, 4, 5), torch.float64, "cpu")
    grad.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g: masked_gradient_penalty(g, mask, 1e-6), (grad,))
    assert torch.autograd.gradgradcheck(lambda g: masked_gradient_penalty(g, mask, 1e-6), (grad,))
    grad_out = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    backward = torch.ops.restore._masked_gradient_penalty_backward
    assert torch.autograd.gradcheck(lambda go, g: backward(go, g, mask, 1e-6), (grad_out, grad))


def test_opcheck():
    grad, mask = _inputs((2, 3, 5, 4), torch.float32, "cpu")
    torch.library.opcheck(op, (grad, mask, 1e-12))
    torch.library.opcheck(op, (grad.clone().requires_grad_(True), mask, 1e-12))
    torch.library.opcheck(
        torch.ops.restore._masked_gradient_penalty_backward,
        (torch.tensor(1.5, requires_grad=True), grad.clone().requires_grad_(True), mask, 1e-12),
    )


def test_kernel_errors():
    grad, mask = _inputs((2, 3, 5, 4), torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"mask must have shape \(B, 1, H, W\)"):
        op(grad, mask[:, :, :4], 1e-12)
    with pytest.raises(TypeError, match=r"mask must have the dtype of grad"):
        op(grad, mask.double(), 1e-12)
    with pytest.raises(ValueError, match=r"eps must be >= 0"):
        op(grad, mask, -1.0)
    with pytest.raises(ValueError, match=r"grad must have a non-empty batch"):
        op(grad[:0], mask[:0], 1e-12)
    with pytest.raises(TypeError, match=r"grad must be a floating tensor"):
        op(grad.long(), mask.long(), 1e-12)


def test_public_errors():
    grad, mask = _inputs((2, 3, 5, 4), torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"mask must have shape \(B, 1, H, W\) or \(B, H, W\)"):
        masked_gradient_penalty(grad, mask.expand(2, 3, 5, 4))
    with pytest.raises(ValueError, match=r"mask must be on the device of grad"):
        masked_gradient_penalty(grad, mask.to("meta"))
    with pytest.raises(ValueError, match=r"grad must be 4-D"):
        masked_gradient_penalty(grad[0], mask[0])
