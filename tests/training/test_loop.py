"""The training loop: checkpoints, resume equal to an uninterrupted run, samples, curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from restore.checkpoint import (
    CheckpointError,
    inference_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from restore.data.datasets import TrainingBatches
from restore.models.config import config_from_dict
from restore.models.csa import load_csa_inpainter
from restore.models.csa.config import CSAConfig
from restore.models.csa.trainer import CSATrainer
from restore.training.loop import HeldOut, LoopOptions, fit

CONFIG = CSAConfig(width=4, max_channels=8, depth=5, consistency_weight=0, feature_discriminator=False, discriminator_width=4)


def _photos(count: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 80, dtype=np.float64)
    base = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, ramp[::-1]) / 2, np.full((80, 80), 128.0)], -1)
    return [np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def _run(out: Path, iters: int, start: dict | None = None, held: HeldOut | None = None, **extra) -> CSATrainer:
    torch.manual_seed(0)
    trainer = CSATrainer(CONFIG)
    batches = TrainingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box", "freeform"), seed=1)
    options = LoopOptions(out=out, iters=iters, batch_size=2, size=32, checkpoint_every=2, keep_every=3,
                          sample_every=0, eval_every=0, progress=False, warmup=2, **extra)
    fit(trainer, batches, options, held=held, start=start)
    return trainer


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = _run(tmp_path / "straight", iters=5)
    _run(tmp_path / "split", iters=3)
    first = load_checkpoint(tmp_path / "split" / "last.pt")
    assert first["step"] == 3
    resumed = _run(tmp_path / "split", iters=5, start=first)
    final = load_checkpoint(tmp_path / "split" / "last.pt")
    assert final["step"] == 5
    for name in ("generator", "discriminator"):
        a = straight.modules()[name].state_dict()
        b = resumed.modules()[name].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after resume"
    assert (tmp_path / "split" / "step-000003.pt").is_file()
    assert final["metadata"]["train_seconds"] >= first["metadata"]["train_seconds"]


def test_checkpoint_holds_what_resume_needs(tmp_path: Path) -> None:
    _run(tmp_path, iters=2)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["method"] == "csa" and checkpoint["step"] == 2
    assert set(checkpoint["models"]) == {"generator", "generator_ema", "discriminator"}
    assert set(checkpoint["optimizers"]) == {"generator", "discriminator"}
    assert config_from_dict(CSAConfig, checkpoint["config"]) == CONFIG
    assert "torch" in checkpoint["rng"] and checkpoint["metadata"]["options"]["iters"] == 2
    lines = (tmp_path / "log.jsonl").read_text().splitlines() if (tmp_path / "log.jsonl").exists() else []
    assert all("l1" in json.loads(line) for line in lines)


def test_inference_checkpoint_is_half_and_loads(tmp_path: Path) -> None:
    from restore.models.csa.inpainter import load_csa_inpainter

    trainer = _run(tmp_path, iters=1)
    slim = inference_checkpoint(load_checkpoint(tmp_path / "last.pt"))
    assert set(slim["models"]) == {"generator"} and "optimizers" not in slim
    assert all(v.dtype == torch.float16 for v in slim["models"]["generator"].values() if v.is_floating_point())
    save_checkpoint(slim, tmp_path / "csa.pt")
    inpainter = load_csa_inpainter(tmp_path / "csa.pt")
    image = torch.rand(1, 3, 40, 40)
    mask = torch.zeros(1, 1, 40, 40)
    mask[..., 10:20, 5:30] = 1
    full = trainer.inpainter().inpaint(image, mask)
    half = inpainter.inpaint(image, mask)
    assert torch.allclose(full, half, atol=2e-2)


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a restore checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_save_is_atomic_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_samples_and_learning_curve_are_written(tmp_path: Path) -> None:
    images = [photo[:64, :64] for photo in _photos(2)]
    hole = np.zeros((64, 64), bool)
    hole[16:40, 16:48] = True
    held = HeldOut(images, {"box": [hole, hole]})
    torch.manual_seed(0)
    trainer = CSATrainer(CONFIG)
    batches = TrainingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box",), seed=1)
    options = LoopOptions(out=tmp_path, iters=2, batch_size=2, size=32, sample_every=2, eval_every=2, progress=False)
    fit(trainer, batches, options, held=held)
    assert (tmp_path / "samples" / "step-000002.png").is_file()
    curve = [json.loads(line) for line in (tmp_path / "curve.jsonl").read_text().splitlines()]
    assert curve[0]["step"] == 2 and curve[0]["metrics"]["box"]["count"] == 2
    baselines = json.loads((tmp_path / "curve-baselines.json").read_text())
    assert list(baselines) == ["telea", "ns", "fsr", "shiftmap"] and baselines["ns"]["box"]["psnr"] > 10
    assert baselines["fsr"]["box"]["psnr"] > 10 and baselines["shiftmap"]["box"]["count"] == 2
    # an older run's file (Telea and NS only) gets the baselines it lacks when the run resumes; the others are kept
    older = {"telea": {**baselines["telea"], "kept": True}, "ns": baselines["ns"]}
    (tmp_path / "curve-baselines.json").write_text(json.dumps(older))
    fit(trainer, batches, LoopOptions(out=tmp_path, iters=3, batch_size=2, size=32, sample_every=0, eval_every=3, progress=False),
        held=held, start=load_checkpoint(tmp_path / "last.pt"))
    completed = json.loads((tmp_path / "curve-baselines.json").read_text())
    assert completed["telea"]["kept"] and completed["fsr"] == baselines["fsr"] and list(completed) == list(baselines)


def test_a_new_run_on_the_same_held_out_set_reuses_the_cached_baselines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.evaluation

    images = [photo[:48, :48] for photo in _photos(2)]
    hole = np.zeros((48, 48), bool)
    hole[12:30, 10:36] = True
    held = HeldOut(images, {"box": [hole, hole]})
    options = {"batch_size": 2, "size": 32, "sample_every": 0, "eval_every": 0, "progress": False, "iters": 1}
    batches = TrainingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box",), seed=1)
    said: list[str] = []
    monkeypatch.setattr("restore.training.loop.log.info", said.append)
    fit(CSATrainer(CONFIG), batches, LoopOptions(out=tmp_path / "first", **options), held=held)
    first = json.loads((tmp_path / "first" / "curve-baselines.json").read_text())
    assert len(said) == 4 and all("held-out photos" in line for line in said)

    def no_scoring(*args, **kwargs):
        raise AssertionError("a cached baseline was scored again")

    monkeypatch.setattr(restore.evaluation, "evaluate", no_scoring)
    fit(CSATrainer(CONFIG), batches, LoopOptions(out=tmp_path / "second", **options), held=held)
    assert json.loads((tmp_path / "second" / "curve-baselines.json").read_text()) == first
    # another mask set is another key: scored afresh
    other = HeldOut(images, {"box": [hole, ~hole]})
    with pytest.raises(AssertionError, match="scored again"):
        fit(CSATrainer(CONFIG), batches, LoopOptions(out=tmp_path / "third", **options), held=other)


def test_learning_rate_schedule() -> None:
    options = LoopOptions(out=Path("."), iters=100, warmup=10, lr_decay_from=50)
    assert options.lr_scale_at(0) == pytest.approx(0.1) and options.lr_scale_at(9) == pytest.approx(1.0)
    assert options.lr_scale_at(30) == 1.0 and options.lr_scale_at(75) == pytest.approx(0.5) and options.lr_scale_at(100) == 0.0


def test_resuming_a_checkpoint_without_a_moving_average_starts_it_from_the_weights(tmp_path: Path) -> None:
    _run(tmp_path, iters=2)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    del checkpoint["models"]["generator_ema"]
    trainer = CSATrainer(CONFIG)
    from restore.training.loop import restore_state

    restore_state(trainer, checkpoint)
    generator = trainer.generator.state_dict()
    for key, value in trainer.generator_ema.module.state_dict().items():
        assert torch.equal(value, generator[key])


def test_shipped_weights_are_the_moving_average(tmp_path: Path) -> None:
    trainer = _run(tmp_path, iters=3)
    slim = inference_checkpoint(load_checkpoint(tmp_path / "last.pt"), half=False)
    average = trainer.generator_ema.module.state_dict()
    assert slim["metadata"]["moving_average"]
    assert all(torch.equal(slim["models"]["generator"][k], average[k]) for k in average)
    assert not all(torch.equal(average[k], trainer.generator.state_dict()[k]) for k in average)
    # restore batch/eval given a training checkpoint run the same network as the shipped one
    loaded = load_csa_inpainter(tmp_path / "last.pt", bf16=False).generator.state_dict()
    assert all(torch.equal(loaded[k], average[k]) for k in average)


def _fit_with_a_faulty_step(out: Path, fault) -> None:
    """Train 6 steps (checkpoint every 2) with ``fault(step_number, losses, trainer)`` called after each step."""
    torch.manual_seed(0)
    trainer = CSATrainer(CONFIG)
    step_once = trainer.train_step
    calls = {"n": 0}

    def faulty(step, batches):
        calls["n"] += 1
        losses = step_once(step, batches)
        fault(calls["n"], losses, trainer)
        return losses

    trainer.train_step = faulty
    batches = TrainingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box",), seed=1)
    options = LoopOptions(out=out, iters=6, batch_size=2, size=32, checkpoint_every=2, keep_every=0,
                          sample_every=0, eval_every=0, progress=False)
    fit(trainer, batches, options)


@pytest.mark.parametrize("failure", ["nan", "error"])
def test_a_failing_step_leaves_the_last_good_checkpoint(tmp_path: Path, failure: str) -> None:
    """Weights after a NaN or an exception mid-step may be broken: nothing is saved over the last checkpoint."""

    def fault(step: int, losses: dict, trainer: CSATrainer) -> None:
        if step == 3:
            if failure == "error":
                raise RuntimeError("worker lost")
            losses["l1"] = float("nan")

    with pytest.raises(FloatingPointError if failure == "nan" else RuntimeError, match="non-finite loss at step 3|worker lost"):
        _fit_with_a_faulty_step(tmp_path, fault)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


@pytest.mark.parametrize("when", ["checkpoint step", "stop signal"])
def test_weights_broken_by_a_step_with_a_finite_loss_are_never_saved(tmp_path: Path, when: str) -> None:
    import os
    import signal

    def fault(step: int, losses: dict, trainer: CSATrainer) -> None:
        if step == (4 if when == "checkpoint step" else 3):
            with torch.no_grad():
                next(trainer.generator.parameters()).fill_(float("nan"))
            if when == "stop signal":
                os.kill(os.getpid(), signal.SIGTERM)  # the loop stops after this step and saves what it has

    if when == "checkpoint step":
        with pytest.raises(FloatingPointError, match="non-finite weights after step 4"):
            _fit_with_a_faulty_step(tmp_path, fault)
    else:
        _fit_with_a_faulty_step(tmp_path, fault)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["step"] == 2
    assert all(bool(torch.isfinite(v).all()) for v in checkpoint["models"]["generator"].values())


def test_checkpoints_get_a_normal_files_mode(tmp_path: Path) -> None:
    import os

    previous = os.umask(0o022)
    try:
        save_checkpoint({"step": 1, "models": {}}, tmp_path / "last.pt")
    finally:
        os.umask(previous)
    assert (tmp_path / "last.pt").stat().st_mode & 0o777 == 0o644


class _RecordingBatches(TrainingBatches):
    """Training batches that record which steps were asked for, in which thread, and can fail at one step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.asked: list[int] = []
        self.threads: set[str] = set()
        self.fail_at: int | None = None

    def batch(self, step: int, draw: int = 0):
        import threading

        self.asked.append(step)
        self.threads.add(threading.current_thread().name)
        if step == self.fail_at:
            raise OSError(f"photo unreadable at step {step}")
        return super().batch(step, draw)


def _prefetch_run(out: Path, fail_at: int | None = None, threads: int | None = None) -> tuple[_RecordingBatches, CSATrainer]:
    torch.manual_seed(0)
    batches = _RecordingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box",), seed=1)
    batches.fail_at = fail_at
    options = LoopOptions(out=out, iters=4, batch_size=2, size=32, checkpoint_every=2, sample_every=0, eval_every=0,
                          progress=False, loader_threads=threads)
    trainer = CSATrainer(CONFIG)
    fit(trainer, batches, options)
    return batches, trainer


def test_batches_are_made_ahead_in_background_threads_and_train_alike(tmp_path: Path) -> None:
    one, one_trainer = _prefetch_run(tmp_path / "one")
    assert one.asked == [0, 1, 2, 3]  # on a CPU one thread, in step order, none past the end
    three, three_trainer = _prefetch_run(tmp_path / "three", threads=3)
    assert sorted(three.asked) == [0, 1, 2, 3]
    for batches in (one, three):
        assert batches.threads and all(name.startswith("training-batches") for name in batches.threads)
    a, b = one_trainer.generator.state_dict(), three_trainer.generator.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    options = LoopOptions(out=tmp_path, iters=1)
    assert options.batch_threads("cpu") == 1 and 1 <= options.batch_threads("cuda") <= 4


def test_an_error_making_a_batch_stops_the_run_with_that_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="step 2"):
        _prefetch_run(tmp_path, fail_at=2, threads=2)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


def test_the_loop_gives_a_trainer_its_step_and_a_fresh_batch_per_critic_update(tmp_path: Path) -> None:
    """With the WGAN-GP double of ``fake_method``: 3 batches a step, each (seed, step, draw), none repeated."""
    from fake_method import FakeConfig, FakeTrainer

    torch.manual_seed(0)
    trainer = FakeTrainer(FakeConfig(width=4))
    seen: list[tuple[int, list[Tensor]]] = []
    step_once = trainer.train_step

    def recording(step, batches):
        seen.append((step, [images.clone() for images, _ in batches]))
        return step_once(step, batches)

    trainer.train_step = recording
    batches = TrainingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box",), seed=1)
    fit(trainer, batches, LoopOptions(out=tmp_path, iters=3, batch_size=2, size=32, sample_every=0, eval_every=0, progress=False,
                                      warmup=2, log_every=1))
    assert [step for step, _ in seen] == [0, 1, 2]
    for step, drawn in seen:
        assert len(drawn) == 3 and all(torch.equal(d, batches.batch(step, k)[0]) for k, d in enumerate(drawn))
    flat = [d for _, drawn in seen for d in drawn]
    assert all(not torch.equal(a, b) for i, a in enumerate(flat) for b in flat[i + 1 :])
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    # warm-up over 2 steps: each optimiser at its own base rate times the schedule's factor
    assert [row["lr"] for row in log] == pytest.approx([0.5e-3, 1e-3, 1e-3])
    assert [row["lr_discriminator"] for row in log] == pytest.approx([2e-3, 4e-3, 4e-3])
