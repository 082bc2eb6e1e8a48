"""The trainer contract (:mod:`restore.models.trainer`), for every trainable method.

Parametrised over the trainable records of :data:`~restore.models.registry.METHODS` at
collection time, each with its record's ``smoke_config``, plus the test double of
``fake_method`` (WGAN-GP critic steps on fresh batches, phases, a shipped critic).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fake_method import FAKE
from helpers import smoke_fit, smoke_photos, smoke_size

from restore.checkpoint import inference_checkpoint, load_checkpoint, save_checkpoint
from restore.models.registry import METHODS, build, get_method, trainable_methods
from restore.training.job import start_modules
from restore.training.ship import main as ship

NAMES = [*trainable_methods(), "fake"]


@pytest.fixture(autouse=True)
def _fake_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METHODS, "fake", FAKE)


def _batches(name: str, count: int, step: int = 0):
    from restore.data.datasets import TrainingBatches

    batches = TrainingBatches(smoke_photos(), size=smoke_size(name), batch_size=2, mask_kinds=("box", "freeform"), seed=3)
    return batches.batches(step, count)


def _trainer(name: str):
    method = get_method(name)
    torch.manual_seed(0)
    return method.trainer_class()(build(name, **method.smoke_config), device="cpu", vgg_weights="random", bf16=False)


def _states_equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


@pytest.mark.parametrize("name", NAMES)
def test_every_step_of_every_phase_is_finite_and_trains(name: str) -> None:
    trainer = _trainer(name)
    assert trainer.name == name and "generator" in trainer.modules() and "generator" in trainer.optimizers()
    for step in range(3):  # the fake's phases: generator alone, critic alone, both
        before = {n: [p.detach().clone() for p in m.parameters()] for n, m in trainer.modules().items()}
        losses = trainer.train_step(step, _batches(name, trainer.batches_per_step, step))
        assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
        moved = {n for n, m in trainer.modules().items() if any(not torch.equal(a, b) for a, b in zip(before[n], m.parameters(), strict=True))}
        assert moved, f"step {step} changed no weights"
        for module in trainer.modules().values():
            assert all(bool(torch.isfinite(p).all()) for p in module.parameters())
    with pytest.raises(ValueError, match="batch"):
        trainer.train_step(3, _batches(name, trainer.batches_per_step + 1))


def test_phases_decide_what_a_step_trains() -> None:
    trainer = _trainer("fake")
    phases = {0: ("generator", "l1"), 1: ("critic", "wgan"), 2: ("both", "adversarial")}
    for step, (trained, key) in phases.items():
        generator = [p.detach().clone() for p in trainer.generator.parameters()]
        critic = [p.detach().clone() for p in trainer.critic.parameters()]
        losses = trainer.train_step(step, _batches("fake", 3, step))
        generator_moved = any(not torch.equal(a, b) for a, b in zip(generator, trainer.generator.parameters(), strict=True))
        critic_moved = any(not torch.equal(a, b) for a, b in zip(critic, trainer.critic.parameters(), strict=True))
        assert key in losses
        assert generator_moved == (trained in ("generator", "both")) and critic_moved == (trained in ("critic", "both")), step


def test_each_optimiser_keeps_its_base_rate_under_the_schedule() -> None:
    trainer = _trainer("fake")
    trainer.set_lr_scale(0.5)
    assert trainer.learning_rates() == pytest.approx({"generator": 0.5e-3, "discriminator": 2e-3})
    trainer.set_lr_scale(1.0)
    assert trainer.learning_rates() == pytest.approx({"generator": 1e-3, "discriminator": 4e-3})


@pytest.mark.parametrize("name", NAMES)
def test_resume_equals_an_uninterrupted_run(name: str, tmp_path: Path) -> None:
    straight = smoke_fit(name, tmp_path / "straight", iters=4, warmup=2)
    smoke_fit(name, tmp_path / "split", iters=2, warmup=2)
    first = load_checkpoint(tmp_path / "split" / "last.pt")
    resumed = smoke_fit(name, tmp_path / "split", iters=4, start=first, warmup=2)
    for module, state in straight.modules().items():
        assert _states_equal(state.state_dict(), resumed.modules()[module].state_dict()), f"{module} differs after resume"
    for optimizer, state in straight.optimizers().items():
        a, b = state.state_dict()["state"], resumed.optimizers()[optimizer].state_dict()["state"]
        assert all(_states_equal(a[k], b[k]) for k in a), f"optimiser {optimizer} differs after resume"


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_through_ship_and_the_record(name: str, tmp_path: Path) -> None:
    method = get_method(name)
    trainer = smoke_fit(name, tmp_path / "run", iters=2)
    for precision, tolerance in (("--full-precision", 0.0), (None, 2e-2)):
        shipped = tmp_path / f"{name}-{precision}.pt"
        result = CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(shipped), *([precision] if precision else [])])
        assert result.exit_code == 0, result.output
        slim = load_checkpoint(shipped)
        assert set(slim["models"]) == set(method.ship_modules) and "optimizers" not in slim
        loaded = method.loader(shipped, "cpu")
        image = torch.rand(2, 3, 37, 45, generator=torch.Generator().manual_seed(1))
        mask = torch.zeros(2, 1, 37, 45)
        mask[:, :, 5:20, 10:30] = 1
        reference = trainer.inpainter()
        reference.bf16 = False
        loaded.bf16 = False
        difference = float((loaded.inpaint(image, mask) - reference.inpaint(image, mask)).abs().max())
        assert difference <= tolerance, f"{precision or 'half'}: {difference}"
    # a training checkpoint loads as its moving average too
    from_training = method.loader(tmp_path / "run" / "last.pt", "cpu")
    from_training.bf16 = False
    assert torch.equal(from_training.inpaint(image, mask), reference.inpaint(image, mask))


@pytest.mark.parametrize("name", NAMES)
def test_init_starts_from_the_shipped_modules(name: str, tmp_path: Path) -> None:
    method = get_method(name)
    smoke_fit(name, tmp_path / "run", iters=1)
    slim = inference_checkpoint(load_checkpoint(tmp_path / "run" / "last.pt"), half=True, keep=method.ship_modules)
    save_checkpoint(slim, tmp_path / "shipped.pt")
    trainer = _trainer(name)
    trainer.start_from(start_modules(name, load_checkpoint(tmp_path / "shipped.pt")))
    for module in method.ship_modules:
        ours = trainer.modules()[module].state_dict()
        assert all(torch.equal(ours[k], v.float()) for k, v in slim["models"][module].items()), module
    average = trainer.modules().get("generator_ema")
    if average is not None:  # the average restarts at the weights it starts from
        assert all(torch.equal(average.module.state_dict()[k], v) for k, v in trainer.modules()["generator"].state_dict().items())
    with pytest.raises(ValueError, match="no module"):
        trainer.start_from({"nonexistent": {}})


@pytest.mark.parametrize("name", trainable_methods())
def test_training_and_inference_hold_the_weights_in_one_layout(name: str) -> None:
    """A shipped file must restore bit for bit as the run's inpainter did: both layouts agree."""
    method = get_method(name)
    if method.network is not None:
        assert method.channels_last == method.trainer_class().channels_last


@pytest.mark.parametrize("name", trainable_methods())
def test_the_weight_layout_changes_no_result(name: str) -> None:
    """A trainer's ``channels_last`` (NHWC weights, for speed) trains and restores as NCHW does,
    within float32 rounding, and its checkpoints load into either layout."""
    from restore.models.network import NetworkInpainter

    method = get_method(name)
    cls = method.trainer_class()
    runs = {}
    for layout in (False, True):
        torch.manual_seed(0)
        trainer = type(cls.__name__, (cls,), {"channels_last": layout})(build(name, **method.smoke_config), vgg_weights="random")
        convolutions = [p for m in trainer.modules().values() for p in m.parameters() if p.dim() == 4]
        assert all(p.is_contiguous(memory_format=torch.channels_last if layout else torch.contiguous_format) for p in convolutions)
        runs[layout] = [trainer.train_step(step, _batches(name, trainer.batches_per_step, step)) for step in range(2)]
    # (The weights themselves are not compared: Adam's first steps move each by about ±lr whatever
    # the gradient's size, so a rounding difference in a near-zero gradient flips a whole step.)
    nhwc_state = trainer.modules()["generator"].state_dict()
    for a, b in zip(runs[False], runs[True], strict=True):
        assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-4) for k in a), (a, b)
    if method.network is None:
        return
    ((image, mask),) = _batches(name, 1)
    outputs = []
    for layout in (False, True):
        generator = method.network_class()(build(name, **method.smoke_config))
        generator.load_state_dict(nhwc_state)
        outputs.append(NetworkInpainter(name, generator, generator.config.multiple, channels_last=layout).inpaint(image, mask))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-4)
    known = (mask < 0.5).expand_as(image)
    assert torch.equal(outputs[1][known], image[known])
