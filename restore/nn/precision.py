"""Running the project's kernels in float32 inside bfloat16 autocast regions.

The compiled ops (:mod:`restore.ops`) have float32/float64 CPU kernels, and the attention
layers built on them (CSA's search and propagation, contextual attention's softmax over
similarities) lose too much in bfloat16. Layers call them through :func:`float32_region`
instead of turning autocast off by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def float32_region(function: Callable[..., Any], *tensors: Tensor, **kwargs: Any) -> Any:
    """``function(*tensors, **kwargs)`` with autocast off and floating-point tensors in float32.

    Args:
        function: what to run (e.g. a closure over ops).
        tensors: its tensor arguments (all on one device).
        kwargs: further arguments, passed as they are.

    Returns:
        What ``function`` returns (the caller casts back to its working dtype).
    """
    device_type = tensors[0].device.type if tensors else "cpu"
    with torch.autocast(device_type, enabled=False):
        exact = [t.float() if t.is_floating_point() else t for t in tensors]
        return function(*exact, **kwargs)
