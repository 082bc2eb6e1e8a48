"""``restore train`` through click: a tiny run, resume, and the errors users meet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from restore.checkpoint import load_checkpoint
from restore.cli import main
from restore.data.images import write_image

TINY = ["--size", "32", "--batch-size", "2", "--set", "width=4", "--set", "max_channels=8", "--set", "depth=5",
        "--set", "consistency_weight=0", "--set", "adversarial_weight=0", "--holdout", "1", "--checkpoint-every", "1",
        "--sample-every", "2", "--eval-every", "0", "--warmup", "0"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(folder / f"p{i}.png", rng.integers(0, 256, (48 + 8 * i, 64, 3), dtype=np.uint8))
    return folder


def _train(args: list[str]):
    return CliRunner().invoke(main, ["-q", "train", "--method", "csa", *args], catch_exceptions=False)


def test_train_then_resume(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _train(["--data", str(photos), "--out", str(out), "--iters", "2", *TINY])
    assert result.exit_code == 0, result.output
    first = load_checkpoint(out / "last.pt")
    assert first["step"] == 2 and first["metadata"]["train_images"] == 3 and len(first["metadata"]["held_out"]) == 1
    assert (out / "samples" / "step-000002.png").is_file()

    again = _train(["--data", str(photos), "--out", str(out), "--iters", "3", *TINY])
    assert again.exit_code == 2 and "--resume" in again.output
    assert load_checkpoint(out / "last.pt")["step"] == 2  # untouched

    resumed = _train(["--data", str(photos), "--out", str(out), "--iters", "3", "--resume", "--size", "32", "--batch-size", "2", "--holdout", "1", "--eval-every", "0"])
    assert resumed.exit_code == 0, resumed.output
    final = load_checkpoint(out / "last.pt")
    assert final["step"] == 3 and final["config"] == first["config"]

    assert final["metadata"]["options"]["warmup"] == 0  # the run's own schedule, not --warmup's default

    changed = _train(["--data", str(photos), "--out", str(out), "--iters", "4", "--resume", "--set", "width=8"])
    assert changed.exit_code == 2 and "cannot change" in changed.output and "width=8" in changed.output
    for flag, value in (("--seed", "1"), ("--size", "64"), ("--masks", "box"), ("--holdout", "2")):
        other = _train(["--data", str(photos), "--out", str(out), "--iters", "4", "--resume", flag, value])
        assert other.exit_code == 2 and f"{flag} {value} differs from the resumed run's" in other.output, flag
    assert load_checkpoint(out / "last.pt")["step"] == 3

    elsewhere = tmp_path / "other-photos"
    elsewhere.mkdir()
    for i in range(4):
        write_image(elsewhere / f"q{i}.png", np.full((48, 64, 3), 9 * i, np.uint8))
    moved = _train(["--data", str(elsewhere), "--out", str(out), "--iters", "4", "--resume"])
    assert moved.exit_code == 2 and "does not hold the resumed run's photos" in moved.output
    assert load_checkpoint(out / "last.pt")["step"] == 3

    grown = tmp_path / "more-photos"
    grown.mkdir()
    for source in sorted(photos.iterdir()):
        (grown / source.name).write_bytes(source.read_bytes())
    write_image(grown / "p9.png", np.full((48, 64, 3), 7, np.uint8))
    more = _train(["--data", str(grown), "--out", str(out), "--iters", "4", "--resume"])
    assert more.exit_code == 2 and "does not hold the resumed run's photos (other photo names)" in more.output
    assert load_checkpoint(out / "last.pt")["step"] == 3

    unchanged = _train(["--data", str(photos), "--out", str(out), "--iters", "4", "--resume", "--set", "width=4", "--set", "max_channels=8"])
    assert unchanged.exit_code == 0, unchanged.output
    assert load_checkpoint(out / "last.pt")["step"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--masks", "nvidia"], "--masks"),
        (["--masks", "spiral"], "--masks"),
        (["--masks", "box:0.9-0.1"], "--masks"),
        (["--masks", "box:0.01-0.02"], "box:0.01-0.02: no whole-pixel box side of a 32-px image side"),
        (["--size", "40"], "multiple of 32"),
        (["--set", "colour=1"], "unknown key 'colour'"),
        (["--set", "width=wide"], "width expects int"),
        (["--set", "width"], "KEY=VALUE"),
    ],
)
def test_usage_errors_name_the_option(photos: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = _train(["--data", str(photos), "--out", str(tmp_path / "run"), "--iters", "1", *TINY, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "run" / "last.pt").exists()


def test_resume_without_a_run_is_an_error(photos: Path, tmp_path: Path) -> None:
    result = _train(["--data", str(photos), "--out", str(tmp_path / "none"), "--iters", "1", "--resume"])
    assert result.exit_code == 2 and "no checkpoint" in result.output


def test_missing_vgg_weights_file_is_one_line(photos: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--method", "csa", "--data", str(photos), "--out", str(tmp_path / "run"), "--iters", "1",
                                       "--size", "32", "--set", "depth=5", "--set", "width=4", "--vgg-weights", str(tmp_path / "vgg.pth")])
    assert result.exit_code == 1
    assert "no such file" in result.output and str(tmp_path / "vgg.pth") in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unreadable_vgg_and_init_files_are_one_line_errors(photos: Path, tmp_path: Path) -> None:
    import torch

    text = tmp_path / "notes.txt"
    text.write_text("not weights\n")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    vgg = ["--size", "32", "--set", "depth=5", "--set", "width=4"]
    for weights, message in [(text, f"cannot read VGG-16 weights {text}: not a PyTorch file"), (tensor, "hold a Tensor, not a state dict")]:
        result = CliRunner().invoke(main, ["train", "--method", "csa", "--data", str(photos), "--out", str(tmp_path / "run"), "--iters", "1",
                                           *vgg, "--vgg-weights", str(weights)])
        assert result.exit_code == 1 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "hi.txt").write_text("hi\n")  # a first byte the legacy loader takes for a magic-number key
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04" + bytes(60))  # a zip header and nothing after
    for init, message in [(text, "not a PyTorch file of tensors and plain data"), (tmp_path / "empty.pt", "empty or truncated file"),
                          (tmp_path / "hi.txt", "not a PyTorch file"), (tmp_path / "broken.pt", "not a PyTorch file, or a damaged one")]:
        result = _train(["--data", str(photos), "--out", str(tmp_path / "run"), "--iters", "1", *TINY, "--init", str(init)])
        assert result.exit_code == 2 and f"'--init': cannot read checkpoint {init}: {message}" in result.output
    assert not (tmp_path / "run").exists()


def test_bad_data_is_named_before_any_vgg_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def no_download(*args, **kwargs):
        raise AssertionError("VGG weights were fetched before --data was checked")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no cached copy either
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_text("not a photo")
    for data, message in [("empty", "no images found in"), ("bad", "x.jpg: not a supported image")]:
        result = _train(["--data", str(tmp_path / data), "--out", str(tmp_path / "run"), "--iters", "1", "--size", "32", "--set", "depth=5"])
        assert result.exit_code == 2 and "'--data'" in result.output and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_random_vgg_is_recorded_in_the_checkpoint(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _train(["--data", str(photos), "--out", str(out), "--iters", "1", "--size", "64", "--batch-size", "2",
                     "--set", "width=4", "--set", "max_channels=8", "--set", "depth=5", "--set", "feature_discriminator_width=8",
                     "--set", "discriminator_width=4", "--vgg-weights", "random", "--holdout", "0", "--eval-every", "0", "--sample-every", "0"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "last.pt")["metadata"]["vgg_weights"] == "random"


def test_init_from_a_shipped_checkpoint_continues_the_step_count(photos: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner as Runner

    from restore.training.ship import main as ship

    first = tmp_path / "first"
    assert _train(["--data", str(photos), "--out", str(first), "--iters", "2", *TINY]).exit_code == 0
    shipped = tmp_path / "shipped.pt"
    assert Runner().invoke(ship, [str(first / "last.pt"), str(shipped)]).exit_code == 0
    second = tmp_path / "second"
    result = _train(["--data", str(photos), "--out", str(second), "--iters", "1", "--init", str(shipped), *TINY[:4], "--holdout", "1", "--eval-every", "0"])
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(second / "last.pt")
    assert checkpoint["step"] == 1 and checkpoint["metadata"]["base_steps"] == 2
    assert checkpoint["metadata"]["init_from"]["step"] == 2
    assert checkpoint["config"] == load_checkpoint(first / "last.pt")["config"]
    assert Runner().invoke(ship, [str(second / "last.pt"), str(tmp_path / "again.pt")]).exit_code == 0
    assert load_checkpoint(tmp_path / "again.pt")["metadata"]["total_steps"] == 3

    clash = _train(["--data", str(photos), "--out", str(second), "--iters", "2", "--init", str(shipped)])
    assert clash.exit_code == 2 and "already holds a run" in clash.output
    both = _train(["--data", str(photos), "--out", str(second), "--iters", "2", "--init", str(shipped), "--resume"])
    assert both.exit_code == 2 and "give one of them" in both.output
    wrong = _train(["--data", str(photos), "--out", str(tmp_path / "third"), "--iters", "1", "--init", str(shipped), "--set", "width=8"])
    assert wrong.exit_code == 2 and "does not fit" in wrong.output


def test_a_run_stopped_by_a_signal_saves_and_exits_130(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from restore.models.csa.trainer import CSATrainer

    calls = []
    original = CSATrainer.train_step

    def step_then_interrupt(self, step, batches):
        losses = original(self, step, batches)
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the loop finishes this step, saves and stops
        return losses

    monkeypatch.setattr(CSATrainer, "train_step", step_then_interrupt)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--method", "csa", "--data", str(photos), "--out", str(out), "--iters", "50", *TINY])
    assert result.exit_code == 130, result.output
    assert "stopped at step 2 of 50 by a signal" in result.stderr and "--resume continues" in result.stderr
    assert load_checkpoint(out / "last.pt")["step"] == 2


def test_a_crop_smaller_than_deepfills_local_window_is_a_usage_error(photos: Path, tmp_path: Path) -> None:
    result = _train(["--method", "deepfill", "--data", str(photos), "--out", str(tmp_path / "run"), "--iters", "1",
                     "--size", "64", "--batch-size", "2", "--set", "width=4", "--set", "critic_width=4"])
    assert result.exit_code == 2
    assert "--size" in result.output and "at least 128" in result.output
    assert not (tmp_path / "run" / "last.pt").exists()
