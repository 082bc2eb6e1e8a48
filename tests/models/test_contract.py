"""The inference contract, for every registered method (DESIGN §1, §12).

Parametrised over :data:`restore.models.registry.METHODS` at collection time: adding a
record adds the method here (a record marked ``slow`` runs under ``-m slow`` only). A method
with a shipped checkpoint is tested with it; a trainable one without, with a freshly trained
smoke checkpoint (:func:`helpers.smoke_checkpoint`).
Inpainters run in float32 here (``RESTORE_BF16=0``) so results can be compared bit for bit.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import smoke_checkpoint
from pipelines.batch_fakes import make_images, make_masks, write_archive, write_masks

from restore.cli import main
from restore.data.archive import open_archive
from restore.models.base import Inpainter
from restore.models.registry import METHODS, get_method

#: Every method; the slow ones (``fsr-best``: most of a minute per 256² image) run only under ``-m slow``.
NAMES = [pytest.param(name, marks=pytest.mark.slow) if method.slow else name for name, method in METHODS.items()]


@functools.cache
def _checkpoint(name: str, folder: str) -> Path | None:
    method = get_method(name)
    if not method.needs_weights:
        return None
    if method.shipped_checkpoint is not None:
        return method.shipped_checkpoint
    if not method.trainable:
        pytest.skip(f"{name} needs weights, ships none and cannot be trained here")
    return smoke_checkpoint(name, Path(folder))


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("contract-weights"))


def _inpainter(name: str, folder: str, monkeypatch: pytest.MonkeyPatch) -> Inpainter:
    """The method's inpainter, with its record's ``smoke_inference`` settings (a few search steps)."""
    monkeypatch.setenv("RESTORE_BF16", "0")
    method = get_method(name)
    return method.loader(_checkpoint(name, folder), "cpu", **method.smoke_inference)


def _case(height: int, width: int, seed: int, hole: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image and a mask with a block hole (and specks), at least one pixel known."""
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.random((1, 3, height, width), dtype=np.float32))
    mask = np.zeros((height, width), np.float32)
    if hole and height * width > 1:
        mask[height // 4 : max(height // 4 + 1, 3 * height // 4), width // 4 : max(width // 4 + 1, 3 * width // 4)] = 1
        mask[rng.random((height, width)) < 0.05] = 1
        mask[0, 0] = 0
    return image, torch.from_numpy(mask)[None, None]


SIZES = [(1, 1), (1, 9), (9, 1), (2, 2), (13, 29), (37, 64), (64, 37), (100, 3)]


@pytest.mark.parametrize("name", NAMES)
def test_any_size_gives_a_filled_image_with_known_pixels_bit_exact(name: str, weights_folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inpainter = _inpainter(name, weights_folder, monkeypatch)
    native = get_method(name).native_size or 64
    for index, (height, width) in enumerate([*SIZES, (native, native), (native + 1, native - 1)]):
        image, mask = _case(height, width, index)
        out = inpainter.inpaint(image, mask)
        assert out.shape == image.shape and out.dtype == image.dtype, (height, width)
        assert bool(torch.isfinite(out).all()) and float(out.min()) >= 0 and float(out.max()) <= 1, (height, width)
        known = (mask < 0.5).expand_as(image)
        assert torch.equal(out[known], image[known]), f"known pixels changed at {height}x{width}"
        if mask.any():
            assert not torch.equal(out[~known], image[~known]), f"holes left as they were at {height}x{width}"


@pytest.mark.parametrize("name", NAMES)
def test_an_image_without_a_hole_comes_back_unchanged(name: str, weights_folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inpainter = _inpainter(name, weights_folder, monkeypatch)
    image, mask = _case(33, 47, 5, hole=False)
    assert torch.equal(inpainter.inpaint(image, mask), image)


@pytest.mark.parametrize("name", NAMES)
def test_batch_items_are_restored_independently(name: str, weights_folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other items of a batch never change an item's result (bit for bit); a batch of one gives the
    same up to float32 rounding (GEMM blocking depends on the batch size; through a few dozen
    layers with activations of order 1, as DeepGIN's at plain Kaiming initialisation, that
    rounding reaches a few 1e-6 on [0, 1] pixels)."""
    inpainter = _inpainter(name, weights_folder, monkeypatch)
    cases = [_case(48, 40, seed) for seed in (11, 12, 13)]
    batch = inpainter.inpaint(torch.cat([c[0] for c in cases]), torch.cat([c[1] for c in cases]))
    others = [cases[0], _case(48, 40, 99), _case(48, 40, 98)]
    again = inpainter.inpaint(torch.cat([c[0] for c in others]), torch.cat([c[1] for c in others]))
    assert torch.equal(batch[0], again[0]), "an item depends on the other items of its batch"
    for index, (image, mask) in enumerate(cases):
        alone = inpainter.inpaint(image, mask)
        assert float((batch[index : index + 1] - alone).abs().max()) <= 1e-5, f"item {index}: batch of 3 and of 1 differ"


@pytest.mark.parametrize("name", NAMES)
def test_inpainting_needs_no_inference_mode_and_leaves_no_graph(name: str, weights_folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline runs models under ``no_grad`` (a latent search may turn gradients on inside)."""
    inpainter = _inpainter(name, weights_folder, monkeypatch)
    image, mask = _case(40, 40, 21)
    with torch.no_grad():
        out = inpainter.inpaint(image, mask)
    assert not out.requires_grad and out.grad_fn is None


@pytest.fixture(scope="module")
def scheduler():
    """One spawned Dask worker shared by this module's ``restore batch`` runs."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40)
    yield cluster.scheduler_address
    cluster.close()


@pytest.mark.parametrize("name", NAMES)
def test_grey_16_bit_and_rgba_images_through_restore_batch(name: str, weights_folder: str, scheduler: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    method = get_method(name)
    side = method.native_size or 64  # methods of any size take images whole: small ones do (FSR, shift-map: seconds on 256²)
    images = {
        "grey8": make_images(1, side // 2 + 3, side // 2 + 7, channels=1, seed=1)["img00"],
        "rgb16": make_images(1, side + 5, side + 9, dtype=np.uint16, seed=2)["img00"],  # larger than the native size
        "rgba8": make_images(1, side // 2, side // 2 + 1, channels=4, seed=3)["img00"],
    }
    holes = make_masks(images)
    archive = write_archive(tmp_path / "mixed.zarr", images, "group")
    masks = write_masks(tmp_path / "masks", holes)
    checkpoint = _checkpoint(name, weights_folder)
    monkeypatch.setenv("RESTORE_BF16", "0")
    args = ["batch", "--input", str(archive), "--masks", str(masks), "--method", name, "--scheduler", scheduler,
            *[item for key, value in method.smoke_inference.items() for item in ("--set", f"{key}={value}")]]
    result = CliRunner().invoke(main, [*args, *(["--checkpoint", str(checkpoint)] if checkpoint else [])])
    assert result.exit_code == 0, result.output
    out = open_archive(tmp_path / "mixed.restored.zarr")
    assert out.complete and out.attrs["strategy"] == method.default_strategy
    for key, image in images.items():
        restored = out.read(key)
        assert restored.dtype == image.dtype and restored.shape == image.shape, key
        assert np.array_equal(restored[~holes[key]], image[~holes[key]]), f"{key}: known pixels changed"
        assert not np.array_equal(restored[holes[key]], image[holes[key]]), f"{key}: holes not filled"
        if image.shape[-1] == 4:
            assert np.array_equal(restored[..., 3], image[..., 3]), "alpha changed"
