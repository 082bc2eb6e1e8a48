"""Loading of the compiled extension ``restore._C`` and the choice between kernel and reference.

Importing ``restore._C`` runs the static registrations of the C++ operators
(``torch.ops.restore.*``). When the extension is missing (no compiler at install
time, or a build for another torch) every public op falls back to its plain
PyTorch reference, so the package keeps working, only slower.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

try:
    from restore import _C  # noqa: F401  (import for its side effect: op registration)
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    _HAS_OPS = False
else:
    # A stale build (from before an op was added) counts as missing: rebuild it.
    _HAS_OPS = all(
        hasattr(torch.ops.restore, name)
        for name in (
            "patch_similarity",
            "patch_best_match",
            "csa_propagate",
            "masked_gradient_penalty",
        )
    )

#: Floor on the L2 norm of a patch (or feature vector) before it is normalised.
NORM_FLOOR = 1e-4

_FORCE_REFERENCE: contextvars.ContextVar[bool] = contextvars.ContextVar("restore_ops_force_reference", default=False)


@contextlib.contextmanager
def use_reference(enabled: bool = True) -> Iterator[None]:
    """Run every op as its plain PyTorch reference inside the block (benchmarks, comparisons).

    The choice is per thread and per async context (a ``contextvars.ContextVar``), and is
    undone on leaving the block.

    Example:
        >>> from restore.ops import use_reference
        >>> with use_reference():
        ...     pass  # ops called here skip the compiled kernels
    """
    token = _FORCE_REFERENCE.set(enabled)
    try:
        yield
    finally:
        _FORCE_REFERENCE.reset(token)


def has_ops() -> bool:
    """Whether the compiled operators (``torch.ops.restore.*``) are loaded.

    Returns:
        True when ``restore._C`` was imported and registered its operators.
    """
    return _HAS_OPS


_CPU_DTYPES = (torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def use_kernel(name: str, x: torch.Tensor) -> bool:
    """Whether ``torch.ops.restore.<name>`` has a kernel for the device and dtype of ``x``.

    CPU kernels (float32, float64) are always compiled into ``restore._C``; CUDA
    kernels (also float16 and bfloat16) only when the extension was built against a
    CUDA torch. Anything else, or any call inside :func:`use_reference`, runs the reference.
    """
    if not _HAS_OPS or _FORCE_REFERENCE.get():
        return False
    device_type = x.device.type
    if device_type in ("cpu", "meta"):
        return x.dtype in _CPU_DTYPES
    if device_type == "cuda":
        return x.dtype in _CUDA_DTYPES and _has_cuda_kernel(name)
    return False


_CUDA_KERNELS: dict[str, bool] = {}


def _has_cuda_kernel(name: str) -> bool:
    if name not in _CUDA_KERNELS:
        try:
            found = torch._C._dispatch_has_kernel_for_dispatch_key(f"restore::{name}", "CUDA")
        except (AttributeError, RuntimeError):  # private API moved: assume compiled
            found = True
        _CUDA_KERNELS[name] = bool(found)
    return _CUDA_KERNELS[name]
