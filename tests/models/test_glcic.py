"""GLCIC: the networks against the paper's table, the discriminators' window, the phases, the losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from helpers import smoke_photos
from torch import nn

from restore.checkpoint import load_checkpoint
from restore.data.datasets import TrainingBatches
from restore.data.mask_generators import parse_kind, random_training_mask
from restore.losses.reconstruction import hole_squared_error
from restore.models.glcic.config import GLCICConfig
from restore.models.glcic.networks import CompletionNetwork, GLCICDiscriminator
from restore.models.glcic.trainer import GLCICTrainer
from restore.models.registry import build, get_method
from restore.models.trainer import DISCRIMINATOR, GENERATOR, JOINT
from restore.nn.discriminators import hole_boxes
from restore.training.loop import LoopOptions, fit

CIFAR32 = Path(__file__).parents[2] / "restore" / "models" / "glcic" / "cifar32.toml"
SMOKE = {**get_method("glcic").smoke_config}


def _cifar32(**overrides) -> GLCICConfig:
    return build("glcic", **{**tomllib.loads(CIFAR32.read_text()), **overrides})


def test_completion_network_follows_the_papers_table():
    """Table 1 at width 64: 17 convolutions (two of them deconvolutions), 6.07 M parameters (otenim's port: the same)."""
    network = CompletionNetwork(GLCICConfig())
    assert sum(p.numel() for p in network.parameters()) == 6_069_155
    layers = [m for m in network.body.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(layers) == 17
    assert [m.out_channels for m in layers] == [64, 128, 128, 256, 256, 256, 256, 256, 256, 256, 256, 256, 128, 128, 64, 32, 3]
    assert [m.kernel_size[0] for m in layers] == [5, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 4, 3, 3]
    assert [m.stride[0] for m in layers if isinstance(m, nn.Conv2d)] == [1, 2, 1, 2] + [1] * 11
    assert [m.dilation[0] for m in layers[6:10]] == [2, 4, 8, 16]
    assert isinstance(layers[12], nn.ConvTranspose2d) and isinstance(layers[14], nn.ConvTranspose2d)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in network.modules()) == 16  # all but the output layer


@pytest.mark.parametrize("side", [32, 36, 64])
def test_the_output_is_a_sigmoid_image_of_the_input_size_with_the_composite(side: int):
    network = CompletionNetwork(GLCICConfig(width=8)).eval()
    image = torch.rand(2, 3, side, side)
    mask = torch.zeros(2, 1, side, side)
    mask[:, :, 4:12, 6:20] = 1
    with torch.no_grad():
        out = network(image, mask)
    assert out["predicted"].shape == image.shape and 0 <= float(out["predicted"].min()) and float(out["predicted"].max()) <= 1
    assert torch.equal(out["inpainted"][mask.expand_as(image) == 0], image[mask.expand_as(image) == 0])


def test_holes_are_painted_the_training_photos_mean_colour_before_the_network():
    network = CompletionNetwork(GLCICConfig(width=8))
    photos = [np.full((4, 5, 3), (10, 20, 30), np.uint8), np.full((2, 10, 3), (110, 120, 130), np.uint8)]
    network.set_fill(photos)
    assert torch.allclose(network.fill, torch.tensor([60.0, 70.0, 80.0]) / 255)
    seen = {}
    network.body[0].register_forward_pre_hook(lambda module, inputs: seen.update(x=inputs[0]))
    image, mask = torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)
    mask[..., 2:5, 3:6] = 1
    network(image, mask)
    painted, channel = seen["x"][:, :3], seen["x"][:, 3:]
    assert torch.equal(channel, mask)
    assert torch.allclose(painted[..., 2:5, 3:6], network.fill.view(1, 3, 1, 1).expand(1, 3, 3, 3))
    assert torch.equal(painted * (1 - mask), image * (1 - mask))


def test_a_run_keeps_the_hole_colour_of_the_weights_it_starts_from():
    trainer = GLCICTrainer(build("glcic", **SMOKE))
    trainer.observe_photos([np.full((4, 4, 3), 200, np.uint8)])
    assert torch.allclose(trainer.generator.fill, torch.full((3,), 200 / 255))
    assert torch.equal(trainer.average().module.fill, trainer.generator.fill)
    trainer.observe_photos([np.full((4, 4, 3), 10, np.uint8)])  # measured already: kept
    assert torch.allclose(trainer.generator.fill, torch.full((3,), 200 / 255))


def test_discriminators_of_the_paper_and_of_the_32_configuration():
    paper = GLCICDiscriminator(GLCICConfig())
    convs = lambda critic: [m for m in critic.features if isinstance(m, nn.Conv2d)]  # noqa: E731
    assert [m.out_channels for m in convs(paper.global_critic)] == [64, 128, 256, 512, 512, 512]
    assert [m.out_channels for m in convs(paper.local_critic)] == [64, 128, 256, 512, 512]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in convs(paper.global_critic) + convs(paper.local_critic))
    assert paper.global_critic.linear.in_features == 512 * 4 * 4 and paper.local_critic.linear.in_features == 512 * 4 * 4
    assert paper.global_critic.linear.out_features == paper.local_critic.linear.out_features == 1024
    assert paper.joint.in_features == 2048 and paper.joint.out_features == 1
    small = GLCICDiscriminator(_cifar32())
    assert small.global_critic.linear.in_features == 256 * 4 * 4 and small.local_critic.linear.in_features == 128 * 4 * 4
    image, mask = torch.rand(3, 3, 32, 32), torch.zeros(3, 1, 32, 32)
    mask[:, :, 3:9, 20:31] = 1
    assert small.eval()(image, mask).shape == (3, 1)


@pytest.mark.parametrize(("side", "config"), [(256, GLCICConfig()), (32, _cifar32())])
def test_the_local_window_always_contains_a_training_box(side: int, config: GLCICConfig):
    kind, ratio = parse_kind(config.training_masks[0])
    assert kind == "box"
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(np.stack([random_training_mask([config.training_masks[0]], side, side, rng) for _ in range(200)]))[:, None].float()
    sides = masks.sum(dim=2).amax(dim=(1, 2)), masks.sum(dim=3).amax(dim=(1, 2))
    lo, hi = round(ratio[0] * side), round(ratio[1] * side)
    assert all(lo <= int(s) <= hi for s in torch.cat(sides)), (lo, hi)
    assert {int(s) for s in sides[0]} >= {lo, hi}  # both ends of the range are drawn
    boxes = hole_boxes(masks, config.local_size)
    for mask, (top, left) in zip(masks, boxes, strict=True):
        window = torch.zeros_like(mask)
        window[:, top : top + config.local_size, left : left + config.local_size] = 1
        assert float((mask * (1 - window)).sum()) == 0


def test_the_32_configuration_names_its_masks_and_dead_dilations():
    config = _cifar32()
    assert config.training_masks == ("box:0.15625-0.375",)
    assert (config.local_size, config.global_size, config.dilations) == (16, 32, (2, 4, 8, 16))
    # At 32² the bottleneck is 8×8: rates 8 and 16 read only padding off-centre, so those layers are 1×1 convolutions.
    network = CompletionNetwork(config).eval()
    layer = network.body[9]  # the rate-16 layer
    x = torch.randn(1, layer[0].in_channels, 8, 8)
    centre_only = nn.functional.conv2d(x, layer[0].weight[:, :, 1:2, 1:2])
    assert torch.allclose(layer[0](x), centre_only, atol=1e-5)


def test_phases_switch_at_the_configured_steps():
    trainer = GLCICTrainer(build("glcic", **{**SMOKE, "generator_steps": 2, "discriminator_steps": 3}))
    assert [trainer.phase(s) for s in range(7)] == [GENERATOR] * 2 + [DISCRIMINATOR] * 3 + [JOINT] * 2
    batches = TrainingBatches(smoke_photos(), size=32, batch_size=2, mask_kinds=("box:0.2-0.4",), seed=0)
    for step, (generator_moves, discriminator_moves, keys) in {1: (True, False, {"hole_mse"}), 2: (False, True, {"discriminator"}),
                                                               5: (True, True, {"hole_mse", "adversarial", "discriminator"})}.items():
        before = [[p.detach().clone() for p in m.parameters()] for m in (trainer.generator, trainer.discriminator)]
        losses = trainer.train_step(step, batches.batches(step, 1))
        moved = [any(not torch.equal(a, b) for a, b in zip(old, m.parameters(), strict=True))
                 for old, m in zip(before, (trainer.generator, trainer.discriminator), strict=True)]
        assert moved == [generator_moves, discriminator_moves], step
        assert keys <= set(losses), losses


def _fit(out: Path, iters: int, start: dict | None = None) -> GLCICTrainer:
    torch.manual_seed(0)
    trainer = GLCICTrainer(build("glcic", **{**SMOKE, "generator_steps": 2, "discriminator_steps": 3}))
    batches = TrainingBatches(smoke_photos(), size=32, batch_size=2, mask_kinds=("box:0.2-0.4", "freeform"), seed=1)
    fit(trainer, batches, LoopOptions(out=out, iters=iters, batch_size=2, size=32, checkpoint_every=1, keep_every=0, sample_every=0,
                                      eval_every=0, warmup=0, progress=False), start=start)
    return trainer


def test_resuming_in_the_middle_of_the_discriminator_phase_is_exact(tmp_path: Path):
    straight = _fit(tmp_path / "straight", 6)
    _fit(tmp_path / "split", 3)  # phase 2 runs over steps 2-4: stopped after step 2
    resumed = _fit(tmp_path / "split", 6, start=load_checkpoint(tmp_path / "split" / "last.pt"))
    for name, module in straight.modules().items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, resumed.modules()[name].state_dict()[key]), (name, key)


def test_the_discriminators_see_the_composite_not_the_raw_output():
    trainer = GLCICTrainer(build("glcic", **SMOKE))
    seen = []
    trainer.discriminator.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach()) and None)
    images = torch.rand(2, 3, 32, 32)
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 8:16, 8:20] = 1
    out = {key: value.detach() for key, value in trainer.generator(images, masks).items()}
    trainer.discriminator_terms(images, masks, out, DISCRIMINATOR)
    real, fake = seen
    known = masks.expand_as(images) == 0
    assert torch.equal(fake[known], real[known])  # the composite: real pixels outside the hole
    assert not torch.equal(fake[~known], real[~known])


def test_hole_squared_error_is_summed_over_rgb_per_hole_pixel():
    target = torch.zeros(2, 3, 4, 4)
    predicted = target.clone()
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2, :2] = 1  # 4 hole pixels in the batch
    predicted[0, :, 0, 0] = 0.5  # one hole pixel off by 0.5 in each channel: 3 · 0.25
    predicted[1] = 1.0  # no hole in the second image: ignored
    assert float(hole_squared_error(predicted, target, mask)) == pytest.approx(0.75 / 4)
    assert float(hole_squared_error(predicted, target, torch.zeros_like(mask))) == 0.0


@pytest.mark.parametrize("spec", ["box:0.5", "box:0.6-0.2", "box:a-b", "nvidia:0.1-0.2", "boxes:0.1-0.2"])
def test_bad_mask_specs_are_refused(spec: str):
    with pytest.raises(ValueError):
        parse_kind(spec)


def test_the_moving_average_measures_its_own_batch_norm_statistics():
    trainer = GLCICTrainer(build("glcic", **SMOKE))
    batches = TrainingBatches(smoke_photos(), size=32, batch_size=2, mask_kinds=("box:0.2-0.4",), seed=0)
    trainer.train_step(0, batches.batches(0, 1))
    live, average = trainer.generator.body[0][1], trainer.average().module.body[0][1]
    assert not torch.equal(live.running_mean, average.running_mean)  # measured on the average's own activations
    assert int(average.num_batches_tracked) == 1 and not trainer.average().module.training


def test_ship_measures_batch_norm_statistics_on_the_runs_own_data(tmp_path: Path):
    from click.testing import CliRunner

    from restore.cli import main
    from restore.data.images import write_image
    from restore.training.ship import main as ship

    photos = tmp_path / "photos"
    for i, photo in enumerate(smoke_photos(count=3)):
        write_image(photos / f"p{i}.png", photo)
    settings = [f"--set={key}={value}" for key, value in SMOKE.items()]
    result = CliRunner().invoke(main, ["-q", "train", "--method", "glcic", "--data", str(photos), "--out", str(tmp_path / "run"), "--size", "32",
                                       "--batch-size", "2", "--iters", "2", "--holdout", "1", "--eval-every", "0", "--sample-every", "0",
                                       "--warmup", "0", *settings])
    assert result.exit_code == 0, result.output
    plain, measured = tmp_path / "plain.pt", tmp_path / "measured.pt"
    assert CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(plain), "--full-precision"]).exit_code == 0
    result = CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(measured), "--full-precision", "--batch-norm-batches", "3"])
    assert result.exit_code == 0, result.output
    a, b = load_checkpoint(plain), load_checkpoint(measured)
    assert b["metadata"]["batch_norm_recomputed"] == {"batches": 3, "batch_size": 2, "from_step": 2}
    assert int(b["models"]["generator"]["body.0.1.num_batches_tracked"]) == 3
    assert not torch.equal(a["models"]["generator"]["body.0.1.running_mean"], b["models"]["generator"]["body.0.1.running_mean"])
    assert torch.equal(a["models"]["generator"]["body.0.0.weight"], b["models"]["generator"]["body.0.0.weight"])
