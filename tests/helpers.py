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


def smoke_photos(count: int = 4, size: int = 48, seed: int = 0) -> list[np.ndarray]:
    """Smooth random photos (gradients plus noise) for short training runs."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    base = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, ramp[::-1]) / 2, np.full((size, size), 128.0)], -1)
    return [np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def smoke_size(method_name: str) -> int:
    """The smallest training crop of at least 32 px that a method's smoke config accepts."""
    import math

    from restore.models.registry import build, get_method

    multiple = getattr(build(method_name, **get_method(method_name).smoke_config), "multiple", 1)
    return multiple * math.ceil(32 / multiple)


def smoke_fit(method_name: str, out: Path, iters: int, start: dict | None = None, **options):
    """Train a method's smoke config (its record's ``smoke_config``) for ``iters`` steps with the real loop.

    Returns:
        The trainer.
    """
    from restore.data.datasets import TrainingBatches
    from restore.models.registry import build, get_method
    from restore.training.loop import LoopOptions, fit

    method = get_method(method_name)
    torch.manual_seed(0)
    trainer = method.trainer_class()(build(method_name, **method.smoke_config), device="cpu", vgg_weights="random", bf16=False)
    size = smoke_size(method_name)
    batches = TrainingBatches(smoke_photos(), size=size, batch_size=2, mask_kinds=("box", "freeform"), seed=1)
    settings = dict(out=out, iters=iters, batch_size=2, size=size, checkpoint_every=1, keep_every=0, sample_every=0, eval_every=0,
                    progress=False)
    fit(trainer, batches, LoopOptions(**{**settings, **options}), start=start)
    return trainer


def smoke_checkpoint(method_name: str, folder: Path) -> Path:
    """A training checkpoint of a method's smoke config after one step (``folder/METHOD/last.pt``)."""
    out = Path(folder) / method_name
    if not (out / "last.pt").is_file():
        smoke_fit(method_name, out, iters=1)
    return out / "last.pt"
