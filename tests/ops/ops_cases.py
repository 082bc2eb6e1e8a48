"""Parameter lists and small helpers shared by the kernel tests."""

from __future__ import annotations

import pytest
import torch
from helpers import cpu_and_cuda

from restore.ops import has_ops

#: Skip marker for tests that need the compiled extension.
needs_ops = pytest.mark.skipif(
    not has_ops(), reason="restore._C is not built (python setup.py build_ext --inplace)"
)


def device_dtypes() -> list:
    """(device, dtype) pairs: float32/float64 everywhere, float16 on CUDA only."""
    params = []
    for device in cpu_and_cuda():
        dev = device if isinstance(device, str) else device.values[0]
        marks = () if isinstance(device, str) else device.marks
        for dtype in (torch.float32, torch.float64):
            params.append(pytest.param(dev, dtype, marks=marks, id=f"{dev}-{str(dtype)[6:]}"))
        if dev == "cuda":
            params.append(pytest.param(dev, torch.float16, marks=marks, id="cuda-float16"))
    return params


def tolerances(dtype: torch.dtype) -> dict:
    """assert_close tolerances for kernel-vs-reference comparisons."""
    return {
        torch.float16: {"rtol": 1e-2, "atol": 1e-2},
        torch.bfloat16: {"rtol": 4e-2, "atol": 4e-2},
        torch.float32: {"rtol": 1e-4, "atol": 1e-5},
        torch.float64: {"rtol": 1e-9, "atol": 1e-11},
    }[dtype]


def layout(x: torch.Tensor, contiguous: bool) -> torch.Tensor:
    """``x`` itself, or an equal non-contiguous tensor (a strided view into a larger buffer)."""
    if contiguous:
        return x
    wide = torch.empty(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=x.device)
    wide.normal_()  # the skipped entries hold noise, never read
    view = wide[..., ::2]
    view.copy_(x)
    assert not view.is_contiguous()
    return view


def random_valid(b: int, h: int, w: int, p: float, device: str, block: int = 3) -> torch.Tensor:
    """A random (B, H, W) bool mask, different per sample, with a fully valid top-left block."""
    valid = torch.rand(b, h, w, device=device) < p
    valid[:, :block, :block] = True
    return valid
