"""A method registered by a test trains, ships and restores through the CLI, touching no other file.

``fake_method.FAKE`` is a record whose code lives only in ``tests/fake_method.py``: every
command learns of it from the registry alone (DESIGN §12).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fake_method import FAKE
from helpers import smoke_photos
from pipelines.batch_fakes import make_images, make_masks, write_archive, write_masks

from restore.checkpoint import load_checkpoint
from restore.cli import main
from restore.data.archive import open_archive
from restore.data.images import write_image
from restore.models.registry import METHODS
from restore.training.ship import main as ship


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METHODS, "fake", FAKE)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for index, photo in enumerate(smoke_photos(5, size=56)):
        write_image(folder / f"p{index}.png", photo)
    return folder


def _train(*args: str):
    return CliRunner().invoke(main, ["-q", "train", "--method", "fake", *args], catch_exceptions=False)


COMMON = ["--batch-size", "2", "--holdout", "1", "--warmup", "0", "--checkpoint-every", "1", "--bf16", "off"]


def test_methods_lists_it_from_its_record() -> None:
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "fake" in line)
    assert "32²" in row and "tile" in row and "yes" in row and "WGAN critic" in row


def test_train_resume_ship_batch_and_eval(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _train("--data", str(photos), "--out", str(run), "--iters", "4", "--eval-every", "2", "--sample-every", "2", *COMMON)
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["method"] == "fake" and checkpoint["step"] == 4
    assert checkpoint["metadata"]["options"]["size"] == 32  # the record's native size
    assert checkpoint["metadata"]["options"]["mask_kinds"] == ["box", "freeform"]  # the record's training masks
    assert set(checkpoint["models"]) == {"generator", "generator_ema", "critic"}
    assert set(checkpoint["optimizers"]) == {"generator", "discriminator"}
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()] if (run / "log.jsonl").exists() else []
    curve = [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]
    assert [row["step"] for row in curve] == [2, 4] and all("swd" in m and "detail" in m for m in curve[-1]["metrics"].values())
    assert (run / "samples" / "step-000004.png").is_file()
    assert all("lr_discriminator" in row for row in log)

    # the phases (generator alone at step 0, critic alone at step 1, both after) survive a resume
    split = tmp_path / "split"
    assert _train("--data", str(photos), "--out", str(split), "--iters", "2", "--eval-every", "0", "--sample-every", "0", *COMMON).exit_code == 0
    resumed = _train("--data", str(photos), "--out", str(split), "--iters", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    ours, theirs = load_checkpoint(split / "last.pt"), checkpoint
    for module, state in theirs["models"].items():
        assert all(torch.equal(value, ours["models"][module][key]) for key, value in state.items()), module

    shipped = tmp_path / "fake.pt"
    result = CliRunner().invoke(ship, [str(run / "last.pt"), str(shipped)])
    assert result.exit_code == 0, result.output
    assert set(load_checkpoint(shipped)["models"]) == {"generator", "critic"}  # the record's ship_modules

    images = make_images(2, 50, 70)  # larger than the native 32²: the record's tile strategy
    holes = make_masks(images)
    archive = write_archive(tmp_path / "photos.zarr", images)
    masks = write_masks(tmp_path / "masks", holes)
    result = CliRunner().invoke(main, ["batch", "--input", str(archive), "--masks", str(masks), "--method", "fake", "--checkpoint", str(shipped),
                                       "--workers", "1", "--threads-per-worker", "1"])
    assert result.exit_code == 0, result.output
    out = open_archive(tmp_path / "photos.restored.zarr")
    assert out.attrs["strategy"] == "tile" and out.attrs["strategy_options"] == {"size": 32, "overlap": 8}
    for key, image in images.items():
        assert np.array_equal(out.read(key)[~holes[key]], image[~holes[key]])
        assert not np.array_equal(out.read(key)[holes[key]], image[holes[key]])
    evaluated = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "photos.restored.zarr"), "--target", str(archive), "--masks", str(masks)])
    assert evaluated.exit_code == 0 and "SWD" in evaluated.output and "detail" in evaluated.output, evaluated.output


def test_a_checkpoint_of_another_method_is_refused(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train("--data", str(photos), "--out", str(run), "--iters", "1", "--eval-every", "0", "--sample-every", "0", *COMMON).exit_code == 0
    images = make_images(1, 20, 20)
    archive = write_archive(tmp_path / "p.zarr", images)
    masks = write_masks(tmp_path / "masks", make_masks(images))
    result = CliRunner().invoke(main, ["batch", "--input", str(archive), "--masks", str(masks), "--method", "csa", "--checkpoint", str(run / "last.pt")])
    assert result.exit_code == 2 and "is a 'fake' checkpoint, not 'csa'" in result.output
    init = _train("--data", str(photos), "--out", str(tmp_path / "other"), "--iters", "1", "--init", str(run / "last.pt"), "--set", "width=6", *COMMON)
    assert init.exit_code == 2 and "does not fit this configuration" in init.output
