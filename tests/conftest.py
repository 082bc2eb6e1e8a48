"""Test configuration: CUDA-only tests skip (with a reason) where no GPU is present."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device; none is available")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps what it caches (:func:`restore.paths.cache_dir`) to itself, out of the user's home."""
    monkeypatch.setenv("RESTORE_CACHE", str(tmp_path_factory.mktemp("cache")))
