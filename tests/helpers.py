"""Shared test helpers (importable as ``helpers`` thanks to ``pythonpath`` in pyproject)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from restore.paths import shared_data_dir


def cpu_and_cuda() -> list:
    """Device parameters: ``"cpu"`` and a ``"cuda"`` entry marked ``needs_cuda``."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)]


def shared_data(*parts: str) -> Path:
    """A path inside ``../shared/data``; skips the test (with the reason) when it is absent."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} does not exist")
    return path


def random_image(height: int, width: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A random (H, W, C) image that uses the whole range of ``dtype``."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top + 1, size=(height, width, channels), dtype=np.uint64).astype(dtype)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)``, restoring the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
