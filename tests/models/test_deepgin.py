"""DeepGIN: the layers against naive references, the network against the paper's Table 1, the
discriminators' spectral norm, the losses' forms, the warm-up and what a training step moves."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restore.data.mask_generators import parse_kind
from restore.models.deepgin import networks
from restore.models.deepgin.config import COARSE_DILATIONS, REFINE_DILATIONS, DeepGINConfig
from restore.models.deepgin.networks import (
    BackProjection,
    DeepGINDiscriminator,
    DeepGINGenerator,
    SelfAttention,
    SPDBlock,
)
from restore.models.deepgin.trainer import DeepGINTrainer, hole_weighted_l1
from restore.models.network import NetworkInpainter
from restore.models.registry import build, get_method
from restore.models.trainer import GENERATOR, JOINT
from restore.nn.prefill import pyramid_fill

SMOKE = dict(get_method("deepgin").smoke_config)


def _smoke(**overrides) -> DeepGINConfig:
    return build("deepgin", **{**SMOKE, **overrides})


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter drawn from N(0, 0.5²) (the network's own initialisation zeroes W and shrinks weights)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.5)
    return module


def _naive_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A stride-1 3×3 convolution with replicate padding, tap by tap: out[i, j] = b + Σ w[o, c, ky, kx]·x[c, clamp(i + (ky − 1)d), clamp(j + (kx − 1)d)]."""
    d = conv.dilation[0]
    _, _, height, width = x.shape
    out = conv.bias.view(1, -1, 1, 1).expand(x.shape[0], -1, height, width).clone()
    for ky in range(3):
        rows = (torch.arange(height) + (ky - 1) * d).clamp(0, height - 1)
        for kx in range(3):
            cols = (torch.arange(width) + (kx - 1) * d).clamp(0, width - 1)
            shifted = x[:, :, rows][:, :, :, cols]
            out = out + torch.einsum("oc,bchw->bohw", conv.weight[:, :, ky, kx], shifted)
    return out


@pytest.mark.parametrize("dilations", [COARSE_DILATIONS, REFINE_DILATIONS])
def test_spd_block_matches_a_naive_reference(dilations):
    channels = 2 * len(dilations)
    block = _randomise(SPDBlock(channels, dilations)).double()
    x = torch.randn(2, channels, 7, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    branches = [F.relu(_naive_conv(x, branch)) for branch in block.branches]
    reference = x + _naive_conv(torch.cat(branches, dim=1), block.fuse)
    assert [branch.dilation[0] for branch in block.branches] == list(dilations)
    assert all(branch.out_channels == 2 for branch in block.branches)
    with torch.no_grad():
        assert torch.allclose(block(x), reference, atol=1e-10)
    with pytest.raises(ValueError, match="equal branches"):
        SPDBlock(6, COARSE_DILATIONS)


def _naive_attention(x: torch.Tensor, block: SelfAttention) -> torch.Tensor:
    """z_i = x_i + W·Σ_j softmax_j(θ(x_i)·φ(x_j))·g(x_j) + b_W, position by position."""
    b, c, h, w = x.shape
    project = lambda layer, v: layer.weight[:, :, 0, 0] @ v + layer.bias  # noqa: E731  (a 1×1 convolution of one vector)
    out = torch.empty_like(x)
    for n in range(b):
        vectors = [x[n, :, i, j] for i in range(h) for j in range(w)]
        thetas = [project(block.theta, v) for v in vectors]
        phis = [project(block.phi, v) for v in vectors]
        gs = [project(block.g, v) for v in vectors]
        for index, vector in enumerate(vectors):
            scores = torch.stack([thetas[index] @ phi for phi in phis])
            weights = torch.exp(scores - scores.max())
            weights = weights / weights.sum()
            y = sum(weight * g for weight, g in zip(weights, gs, strict=True))
            out[n, :, index // w, index % w] = vector + project(block.out, y)
    return out


@pytest.mark.parametrize("chunk_scores", [2**24, 7])
def test_self_attention_matches_a_naive_reference(chunk_scores, monkeypatch):
    """The whole map at once, and in chunks of one query (7 scores < 12 positions)."""
    monkeypatch.setattr(networks, "ATTENTION_CHUNK_SCORES", chunk_scores)
    block = _randomise(SelfAttention(4), seed=2).double()
    x = torch.randn(2, 4, 3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(block(x), _naive_attention(x, block), atol=1e-10)


def test_a_new_self_attention_block_is_the_identity():
    block = SelfAttention(6)
    x = torch.randn(1, 6, 5, 5)
    assert torch.equal(block(x), x) and block.theta.out_channels == 3


def _naive_bilinear_up(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear up-sampling with pixel centres aligned: source coordinate (i + ½)/scale − ½, clamped at the border."""
    b, c, h, w = x.shape
    out = torch.empty(b, c, h * scale, w * scale, dtype=x.dtype)

    def taps(i: int, size: int) -> tuple[int, int, float]:
        source = max((i + 0.5) / scale - 0.5, 0.0)
        low = min(int(math.floor(source)), size - 1)
        return low, min(low + 1, size - 1), source - low

    for i in range(h * scale):
        y0, y1, fy = taps(i, h)
        for j in range(w * scale):
            x0, x1, fx = taps(j, w)
            out[:, :, i, j] = ((1 - fy) * ((1 - fx) * x[:, :, y0, x0] + fx * x[:, :, y0, x1])
                               + fy * ((1 - fx) * x[:, :, y1, x0] + fx * x[:, :, y1, x1]))  # fmt: skip
    return out


def test_back_projection_matches_the_explicit_formula():
    """I_out = o + up4(I_lr − down4(o))·α with o the output pasted into the known pixels,
    down4 the mean of each 4×4 cell, up4 bilinear, α = σ(conv(d4))."""
    projection = _randomise(BackProjection(4, 2), seed=4).double()
    g = torch.Generator().manual_seed(5)
    low_features = torch.randn(2, 4, 3, 2, generator=g, dtype=torch.float64)
    full_features = torch.randn(2, 2, 12, 8, generator=g, dtype=torch.float64)
    output, image = torch.randn(2, 3, 12, 8, generator=g, dtype=torch.float64), torch.rand(2, 3, 12, 8, generator=g, dtype=torch.float64)
    holes = torch.rand(2, 1, 12, 8, generator=g) < 0.4
    with torch.no_grad():
        refined, low, alpha = projection(low_features, full_features, output, image, holes)
        expected_low = projection.low(low_features)
        expected_alpha = torch.sigmoid(projection.alpha(full_features))
    pasted = torch.where(holes, output, image)
    cells = torch.empty(2, 3, 3, 2, dtype=torch.float64)
    for i in range(3):
        for j in range(2):
            cells[:, :, i, j] = pasted[:, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean(dim=(-2, -1))
    expected = pasted + _naive_bilinear_up(expected_low - cells, 4) * expected_alpha
    assert low.shape == (2, 3, 3, 2) and alpha.shape == (2, 1, 12, 8)
    assert torch.allclose(low, expected_low) and torch.allclose(alpha, expected_alpha)
    assert torch.allclose(refined, expected, atol=1e-10)


def test_the_full_width_network_has_the_papers_parameter_count():
    """Table 1: 42.930 M for the full model (SPDResBlk-MSSA-BP), 8.168 M for the coarse stage alone
    (our count is exact to the parameter: the network is the code's ``ImageTinker2``). Built on the
    meta device: no memory, no initialisation cost."""
    with torch.device("meta"):
        generator = DeepGINGenerator(DeepGINConfig())
        narrow = DeepGINGenerator(DeepGINConfig(width=26))
        discriminator = DeepGINDiscriminator(DeepGINConfig())
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(generator) == 42_930_186 and count(generator.coarse) == 8_167_843
    # width 26 is the widest whose float16 weights fit a 16 MB shipped checkpoint (28: 8.23 M, 16.5 MB)
    assert count(narrow) == 7_094_058 and 2 * count(narrow) < 16_000_000
    # the code's two NLayerDiscriminators (n_layers 2, 256 output maps): 2 × 1,710,784
    assert count(discriminator) == 3_421_568


def test_self_attention_runs_at_16_32_and_64_and_back_projection_at_64_for_a_256_input():
    generator = DeepGINGenerator(DeepGINConfig(width=2, coarse_blocks=1, refine_blocks=2)).eval()
    sides = []
    for module in generator.modules():
        if isinstance(module, SelfAttention):
            module.register_forward_hook(lambda module, inputs, output: sides.append(tuple(inputs[0].shape[-2:])))
    image, mask = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
    mask[..., 64:160, 80:200] = 1
    with torch.no_grad():
        out = generator(image, mask)
    assert sorted(sides) == [(16, 16), (32, 32), (64, 64)]
    assert out["low_resolution"].shape == (1, 3, 64, 64) and out["coarse"].shape == out["refined"].shape == (1, 3, 256, 256)
    assert out["alpha"].shape == (1, 1, 256, 256) and 0 <= float(out["predicted"].min()) and float(out["predicted"].max()) <= 1


def test_the_network_uses_replicate_padding_leaky_relu_and_no_normalisation():
    generator = DeepGINGenerator(DeepGINConfig(width=4))
    convolutions = [m for m in generator.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.padding_mode == "replicate" for m in convolutions if m.kernel_size != (1, 1))
    assert not any(isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d | nn.LayerNorm) for m in generator.modules())
    assert {m.negative_slope for m in generator.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}


@pytest.mark.parametrize("bf16", [False, True])
def test_known_pixels_are_exact_and_hole_content_is_ignored(bf16):
    torch.manual_seed(0)
    generator = _randomise(DeepGINGenerator(_smoke()), seed=6)
    inpainter = NetworkInpainter("deepgin", generator, 16, bf16=bf16)
    g = torch.Generator().manual_seed(7)
    image = torch.rand(2, 3, 37, 50, generator=g)
    mask = (torch.rand(2, 1, 37, 50, generator=g) < 0.3).float()
    mask[..., 10:25, 12:40] = 1
    out = inpainter.inpaint(image, mask)
    known = (mask < 0.5).expand_as(image)
    assert torch.equal(out[known], image[known]) and not torch.equal(out[~known], image[~known])
    other = torch.where(mask > 0.5, torch.rand(image.shape, generator=g), image)
    assert torch.equal(inpainter.inpaint(other, mask), out)
    with torch.no_grad():
        raw = generator(F.pad(image, (0, 14, 0, 11)), F.pad(mask, (0, 14, 0, 11)))
    inside = (F.pad(mask, (0, 14, 0, 11)) < 0.5).expand(2, 3, -1, -1)
    assert torch.equal(raw["inpainted"][inside], F.pad(image, (0, 14, 0, 11))[inside])
    with pytest.raises(ValueError, match="multiples of 16"):
        generator(image, mask)


def test_the_official_lowpass_is_an_inference_setting_only(tmp_path):
    from helpers import smoke_checkpoint

    from restore.models.network import load_network_inpainter

    path = smoke_checkpoint("deepgin", tmp_path)
    g = torch.Generator().manual_seed(1)
    image, mask = torch.rand(1, 3, 32, 48, generator=g), torch.zeros(1, 1, 32, 48)
    mask[..., 8:24, 10:30] = 1
    plain = load_network_inpainter(get_method("deepgin"), path, bf16=False)
    smoothed = load_network_inpainter(get_method("deepgin"), path, bf16=False, output_lowpass=True)
    raw = plain.predict(image, mask)
    expected = networks.half_scale_lowpass(raw)
    assert torch.allclose(smoothed.predict(image, mask), expected, atol=1e-6)
    assert (expected - raw).abs().max() > 1e-3
    out = smoothed.inpaint(image, mask)
    known = (mask < 0.5).expand_as(image)
    assert torch.equal(out[known], image[known])
    smoothed.generator.train()  # training sees the network's own output
    with torch.no_grad():
        assert torch.allclose(smoothed.generator(image, mask)["predicted"], raw, atol=1e-6)
    with pytest.raises(ValueError, match="no inference setting width"):
        load_network_inpainter(get_method("deepgin"), path, width=8)


def _trainer(**overrides) -> DeepGINTrainer:
    torch.manual_seed(0)
    return DeepGINTrainer(_smoke(**overrides), vgg_weights="random")


def _batch(seed: int = 0, side: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, side, side, generator=g)
    mask = torch.zeros(2, 1, side, side)
    mask[0, :, 4:20, 6:22] = 1
    mask[1, :, 10:30, 2:12] = 1
    return [(image, mask)]


def _snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _moved(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_spectral_norm_holds_after_a_few_steps():
    """Each discriminator convolution's effective weight has largest singular value ≈ 1 (one power
    iteration per forward pass keeps the estimate close), whatever the raw weight's."""
    trainer = _trainer(warmup_steps=0, discriminator_width=8, discriminator_features=8)
    for step in range(5):
        trainer.train_step(step, _batch(step))
    trainer.discriminator.eval()  # no further power iteration while reading the weights
    convolutions = [m for m in trainer.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert len(convolutions) == 8
    for conv in convolutions:
        assert nn.utils.parametrize.is_parametrized(conv, "weight")
        sigma = float(torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2))
        assert abs(sigma - 1.0) < 0.1, sigma


def test_a_training_step_moves_the_generator_and_both_discriminators_not_vgg():
    trainer = _trainer(warmup_steps=0)
    assert trainer.phase(0) == JOINT and trainer.learning_rates() == pytest.approx({"generator": 1e-4, "discriminator": 4e-4})
    modules = {"generator": trainer.generator, "d1": trainer.discriminator.scales[0], "d2": trainer.discriminator.scales[1],
               "vgg": trainer.vgg}
    before = {name: _snapshot(module) for name, module in modules.items()}
    losses = trainer.train_step(0, _batch())
    moved = {name for name, module in modules.items() if _moved(before[name], module)}
    assert moved == {"generator", "d1", "d2"}
    assert {"l1_coarse", "l1_refined", "l1_low_resolution", "tv", "perceptual", "style", "adversarial", "discriminator"} <= set(losses)
    assert all(math.isfinite(value) for value in losses.values())
    # the generator's adversarial term reaches the generator, not the (frozen, then restored) discriminators
    trainer.discriminator.zero_grad(set_to_none=True)
    image, mask = _batch(1)[0]
    terms = trainer.generator_terms(image, mask, trainer.generator(image, mask), JOINT)
    terms["adversarial"][1].backward()
    assert all(p.grad is None and p.requires_grad for p in trainer.discriminator.parameters())
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in trainer.generator.parameters())


def test_the_warm_up_trains_the_generator_alone_on_l1():
    trainer = _trainer(warmup_steps=2)
    assert [trainer.phase(step) for step in range(4)] == [GENERATOR, GENERATOR, JOINT, JOINT]
    generator, discriminator = _snapshot(trainer.generator), _snapshot(trainer.discriminator)
    losses = trainer.train_step(0, _batch())
    assert set(losses) == {"l1_coarse", "l1_refined", "l1_low_resolution", "total"}
    assert _moved(generator, trainer.generator) and not _moved(discriminator, trainer.discriminator)


def test_without_vgg_and_gan_weights_the_trainer_needs_neither():
    trainer = DeepGINTrainer(_smoke(perceptual_weight=0.0, style_weight=0.0, adversarial_weight=0.0, warmup_steps=0))
    assert trainer.vgg is None and trainer.discriminator is None and set(trainer.optimizers()) == {"generator"}
    losses = trainer.train_step(0, _batch())
    assert set(losses) == {"l1_coarse", "l1_refined", "l1_low_resolution", "tv", "total"}
    assert DeepGINTrainer.without_vgg == ("perceptual_weight=0", "style_weight=0", "adversarial_weight=0.1")


def test_the_l1_is_the_codes_sum_of_masked_means():
    """hole ×5 · L1(p·m, t·m) + L1(p·(1−m), t·(1−m)), ``nn.L1Loss`` means, for binary and soft masks."""
    g = torch.Generator().manual_seed(8)
    predicted, target = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    for holes in ((torch.rand(2, 1, 8, 8, generator=g) < 0.5).float(), torch.rand(2, 1, 8, 8, generator=g)):
        code = 5 * F.l1_loss(predicted * holes, target * holes) + F.l1_loss(predicted * (1 - holes), target * (1 - holes))
        assert torch.allclose(hole_weighted_l1(predicted, target, holes, 5.0), code)


def test_config_defaults_are_the_papers_and_its_masks_parse():
    config = DeepGINConfig()
    assert (config.width, config.hole_weight, config.perceptual_weight, config.style_weight, config.tv_weight,
            config.adversarial_weight, config.lr, config.discriminator_lr, config.beta1) == (64, 5.0, 0.05, 80.0, 0.1, 0.001, 1e-4, 4e-4, 0.5)
    assert config.multiple == 16 and config.min_training_size == 32
    assert [parse_kind(spec) for spec in config.training_masks] == [("box", (0.3, 0.7)), ("freeform", None), ("cellular", None)]
    for bad in ({"width": 7}, {"refine_blocks": 3}, {"vgg_size": 8}, {"ema_decay": 1.0}, {"style_weight": -1.0}, {"init_scale": 0.0}):
        with pytest.raises(ValueError):
            DeepGINConfig(**bad)
    assert "L1 terms alone for the first 25825 steps" in DeepGINTrainer.describe_losses(vars(config))
    assert "squared error on" in DeepGINTrainer.describe_losses({**vars(config), "pixel_loss": "l2"})
    code = DeepGINTrainer.describe_losses({**vars(config), "known_weight": 1.0, "pixel_loss": "l1"})
    assert code.startswith("L1 on the coarse, refined and 1/4-resolution outputs (hole pixels ×5.0)")
    joint = DeepGINTrainer.describe_losses({**vars(config), "warmup_steps": 0})
    assert joint.endswith("; all from the first step") and "alone" not in joint


def test_init_scale_scales_the_initial_convolution_weights():
    torch.manual_seed(0)
    small = DeepGINGenerator(DeepGINConfig(width=8, coarse_blocks=1, refine_blocks=2, init_scale=0.1))
    torch.manual_seed(0)
    plain = DeepGINGenerator(DeepGINConfig(width=8, coarse_blocks=1, refine_blocks=2))
    assert DeepGINConfig().init_scale == 1.0
    assert torch.allclose(small.coarse.body[0].weight * 10.0, plain.coarse.body[0].weight)
    fan_in = plain.coarse.body[0].weight[0].numel()
    assert abs(plain.coarse.body[0].weight.std().item() - (2.0 / fan_in) ** 0.5) < 0.2 * (2.0 / fan_in) ** 0.5


@pytest.mark.parametrize("prefill", [True, False])
def test_prefill_makes_every_image_output_a_residual_over_the_push_pull_fill(prefill):
    torch.manual_seed(0)
    generator = DeepGINGenerator(DeepGINConfig(width=8, coarse_blocks=1, refine_blocks=2, prefill=prefill)).eval()
    if not prefill:  # a prefill generator starts with them at zero
        for head in (generator.coarse.body[-1], generator.refine.output, generator.refine.back_projection.low[-1]):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
    image = torch.rand(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 10:30, 20:50] = 1.0
    mask[1, :, 40:60, 5:25] = 1.0
    with torch.no_grad():
        out = generator(image, mask)
    fill = pyramid_fill(image, mask)
    if prefill:  # a new generator's image outputs are their stages' inputs: the fill itself
        assert torch.allclose(out["coarse"], fill, atol=1e-6) and torch.allclose(out["refined"], fill, atol=1e-6)
        assert torch.allclose(out["low_resolution"], F.avg_pool2d(fill, 4), atol=1e-6)
    else:  # the paper's network paints the holes white and predicts each image outright: zero heads give 0
        assert torch.equal(out["coarse"], torch.zeros_like(out["coarse"]))
    assert torch.equal(out["inpainted"][mask.expand_as(image) < 0.5], image[mask.expand_as(image) < 0.5])


def test_a_new_prefill_generator_keeps_unit_scale_features_through_its_spd_blocks():
    """Its SPD blocks start as identities (zero fusion); the paper's network keeps the code's init."""
    torch.manual_seed(0)
    residual = DeepGINGenerator(DeepGINConfig(width=16, coarse_blocks=6, refine_blocks=2))
    paper = DeepGINGenerator(DeepGINConfig(width=16, coarse_blocks=6, refine_blocks=2, prefill=False, init_scale=1.0))
    x = torch.rand(1, 4 * 16, 8, 8)
    with torch.no_grad():
        blocks = [module for module in residual.coarse.body if isinstance(module, SPDBlock)]
        assert len(blocks) == 6 and all(torch.equal(block(x), x) for block in blocks)
        paper_blocks = nn.Sequential(*[module for module in paper.coarse.body if isinstance(module, SPDBlock)])
        assert paper_blocks(x).abs().mean() > 2 * x.abs().mean()  # what held runs/deepgin-d at its fill


def test_known_weight_scales_the_known_pixels_of_the_l1():
    g = torch.Generator().manual_seed(9)
    predicted, target = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    holes = (torch.rand(2, 1, 8, 8, generator=g) < 0.5).float()
    assert torch.allclose(hole_weighted_l1(predicted, target, holes, 5.0, known_weight=0.0), 5 * F.l1_loss(predicted * holes, target * holes))
    changed_outside = torch.where(holes > 0.5, predicted, predicted + 0.3)
    assert torch.equal(hole_weighted_l1(changed_outside, target, holes, 5.0, 0.0), hole_weighted_l1(predicted, target, holes, 5.0, 0.0))
    squared = hole_weighted_l1(predicted, target, holes, 5.0, 0.0, power=2)
    assert torch.allclose(squared, 5 * F.mse_loss(predicted * holes, target * holes))
    assert DeepGINConfig().known_weight == 0.0 and DeepGINConfig().pixel_loss == "l1"
    for bad in ({"known_weight": -1.0}, {"pixel_loss": "l3"}):
        with pytest.raises(ValueError):
            DeepGINConfig(**bad)


def test_the_l2_pixel_loss_trains_on_squared_errors():
    trainer = DeepGINTrainer(_smoke(perceptual_weight=0.0, style_weight=0.0, adversarial_weight=0.0, pixel_loss="l2", known_weight=0.0))
    images, masks = _batch()[0]
    with torch.no_grad():
        out = trainer.generator(images, masks)
    terms = trainer.generator_terms(images, masks, out, GENERATOR)
    holes = (masks > 0.5).float()
    assert torch.allclose(terms["l1_refined"][1], 5 * F.mse_loss(out["refined"] * holes, images * holes))


def test_a_checkpoint_from_before_known_weight_keeps_the_loss_it_trained_with():
    from restore.cli.train import _configuration
    from restore.models.config import config_from_dict, config_to_dict, saved_config

    values = config_to_dict(DeepGINConfig(width=8))
    del values["known_weight"], values["pixel_loss"]
    old = config_from_dict(DeepGINConfig, saved_config(DeepGINConfig, values))
    assert (old.known_weight, old.pixel_loss) == (1.0, "l1")
    resumed = _configuration(DeepGINConfig, {"config": values}, None, (), None)
    started = _configuration(DeepGINConfig, None, {"config": values}, ("width=10",), None)
    assert (resumed.known_weight, resumed.pixel_loss, started.known_weight, started.pixel_loss, started.width) == (1.0, "l1", 1.0, "l1", 10)
    assert config_from_dict(DeepGINConfig, {"width": 8}).known_weight == 0.0  # a partial file takes today's defaults
