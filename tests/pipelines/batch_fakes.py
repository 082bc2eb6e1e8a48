"""Test doubles and archive builders for the ``restore batch`` tests.

Imported as ``pipelines.batch_fakes`` (``tests/`` is on ``sys.path``). Dask workers are
spawned with the test process's ``sys.path``, so the loaders below, pickled by reference,
load on the workers too.

Image ``i`` of the archives built here carries its index in pixel (0, 0) (red channel,
8-bit value ``i``; masks never cover that pixel), which lets the fake models log which
images they were asked to restore.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from restore.data.archive import ArchiveBuilder
from restore.models.classical import OpenCVInpainter
from restore.models.registry import METHODS, Method

#: Pixel (0, 0) value marking an image the failing / crashing models refuse.
POISON = 250


def make_images(count: int, height: int, width: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> dict[str, np.ndarray]:
    """``count`` random images keyed ``img00``…, each with its index in pixel (0, 0)."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    images = {}
    for i in range(count):
        image = rng.integers(0, top + 1, size=(height, width, channels), dtype=np.uint64).astype(dtype)
        image[0, 0, 0] = i * (257 if dtype == np.uint16 else 1)
        images[f"img{i:02d}"] = image
    return images


def make_masks(images: dict[str, np.ndarray], seed: int = 1, ratio: float = 0.25) -> dict[str, np.ndarray]:
    """A random hole mask per image (a box plus specks), pixel (0, 0) always known."""
    rng = np.random.default_rng(seed)
    masks = {}
    for key, image in images.items():
        height, width = image.shape[:2]
        hole = rng.random((height, width)) < ratio / 3
        top, left = rng.integers(0, max(1, height // 2)), rng.integers(0, max(1, width // 2))
        hole[top : top + max(1, height // 3), left : left + max(1, width // 3)] = True
        hole[0, 0] = False
        masks[key] = hole
    return masks


def write_archive(path: Path, images: dict[str, np.ndarray], layout: str = "stack") -> Path:
    """Build an archive of ``images`` (stack needs one shape and dtype)."""
    first = next(iter(images.values()))
    kwargs = {"image_shape": first.shape, "dtype": first.dtype} if layout == "stack" else {}
    with ArchiveBuilder(path, keys=list(images), layout=layout, **kwargs) as builder:
        for key, image in images.items():
            builder.add(key, image)
    return path


def write_masks(folder: Path, masks: dict[str, np.ndarray]) -> Path:
    """Write masks as 0/255 PNGs named ``KEY.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, hole in masks.items():
        cv2.imwrite(str(folder / f"{key}.png"), hole.astype(np.uint8) * 255)
    return folder


def marker(image: Tensor) -> list[int]:
    """The pixel (0, 0) markers of a batch (8-bit red values)."""
    return [int(round(float(v) * 255)) for v in image[:, 0, 0, 0]]


def _log(path: str | None, line: str) -> None:
    if path:
        with open(path, "a") as handle:  # one short O_APPEND write per line: safe across processes
            handle.write(line + "\n")


class LoggingInpainter:
    """Telea that logs the marker of every image it restores (and sleeps, to slow runs down)."""

    name = "logging-telea"

    def __init__(self, log: str | None, delay: float = 0.0) -> None:
        self.inner = OpenCVInpainter("telea")
        self.log = log
        self.delay = delay
        _log(log, f"load {os.getpid()}")

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        if self.delay:
            time.sleep(self.delay)
        out = self.inner.inpaint(image, mask)
        for value in marker(image):
            _log(self.log, f"image {value}")
        return out


class FailingInpainter(LoggingInpainter):
    """Raises for any batch holding an image marked :data:`POISON`."""

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        if POISON in marker(image):
            raise ValueError("poisoned image")
        return super().inpaint(image, mask)


class CrashingInpainter(LoggingInpainter):
    """Kills its worker process (once, remembered in ``flag``) when it sees :data:`POISON`."""

    def __init__(self, log: str | None, flag: str) -> None:
        super().__init__(log)
        self.flag = flag

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        if POISON in marker(image) and not os.path.exists(self.flag):
            Path(self.flag).write_text("crashed")
            os._exit(13)
        return super().inpaint(image, mask)


def load_logging(log: str | None, checkpoint: Path | None, device: str) -> LoggingInpainter:
    return LoggingInpainter(log)


def load_failing(log: str | None, checkpoint: Path | None, device: str) -> FailingInpainter:
    return FailingInpainter(log)


def load_crashing(log: str, flag: str, checkpoint: Path | None, device: str) -> CrashingInpainter:
    return CrashingInpainter(log, flag)


def load_slow(checkpoint: Path | None, device: str) -> LoggingInpainter:
    """Reads its log path and delay from the environment (for the subprocess test)."""
    return LoggingInpainter(os.environ.get("RESTORE_TEST_LOG"), float(os.environ.get("RESTORE_TEST_DELAY", "0")))


def method(name: str, load) -> Method:
    """A registry entry for a fake method (no weights)."""
    return Method(name, f"test double {name}", load=load, default_strategy="subsample")


def logged_markers(log: Path) -> list[int]:
    """Markers of the images logged as restored, in order."""
    if not log.exists():
        return []
    return [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("image ")]


def logged_loads(log: Path) -> list[str]:
    """Process ids of the model loads logged."""
    if not log.exists():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("load ")]


def tiny_csa_checkpoint(path: Path) -> Path:
    """A randomly initialised tiny CSA generator saved as a training-style checkpoint."""
    from restore.checkpoint import save_checkpoint
    from restore.models.config import config_to_dict
    from restore.models.csa import CSAConfig
    from restore.models.csa.trainer import CSATrainer

    torch.manual_seed(0)
    config = CSAConfig(width=4, max_channels=16, depth=5, consistency_weight=0, adversarial_weight=0)
    trainer = CSATrainer(config)
    save_checkpoint(
        {
            "method": "csa",
            "step": 0,
            "config": config_to_dict(config),
            "models": {name: module.state_dict() for name, module in trainer.modules().items()},
            "optimizers": {},
            "metadata": {},
        },
        path,
    )
    return path


def cli_main() -> None:
    """``restore`` with the ``slow-telea`` test method registered (for the subprocess test)."""
    from restore.cli import main

    METHODS["slow-telea"] = method("slow-telea", load_slow)
    sys.exit(main())
