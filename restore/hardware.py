"""What the hardware does fast: where bfloat16 pays off."""

from __future__ import annotations

import functools
import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@functools.cache
def cpu_has_amx_bf16() -> bool:
    """Whether this CPU has AMX bfloat16 units (where bf16 autocast is several times faster)."""
    try:
        with open("/proc/cpuinfo") as handle:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in handle)
    except OSError:
        return False


def prefers_bf16(device: str) -> bool:
    """Whether models on ``device`` should run under bfloat16 autocast by default.

    True on CUDA devices with bf16 support and on CPUs with AMX; ``RESTORE_BF16=0`` or ``=1``
    in the environment forces the choice.
    """
    forced = os.environ.get("RESTORE_BF16", "").strip().lower()
    if forced in ("0", "false", "off", "no"):
        return False
    if forced in ("1", "true", "on", "yes"):
        return True
    if str(device).startswith("cuda"):
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return cpu_has_amx_bf16()


class DeviceError(ValueError):
    """The device asked for is not there (``--device cuda`` without a GPU)."""


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is a :class:`DeviceError`."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("no CUDA device is available")
    return device


def resolve_bf16(choice: str, device: str) -> bool:
    """``auto``: bf16 on GPUs that support it and on CPUs with AMX; ``on``/``off`` as given."""
    if choice != "auto":
        return choice == "on"
    return prefers_bf16(device)
