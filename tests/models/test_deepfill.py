"""DeepFill v1: the networks against the reference code's shapes, the eval-mode shortcut, the losses, the trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from restore.losses.reconstruction import spatial_discount, weighted_l1_loss
from restore.models.deepfill.config import DeepFillConfig
from restore.models.deepfill.networks import ATTENTION_REACH, DeepFillGenerator
from restore.models.deepfill.trainer import DeepFillTrainer
from restore.models.trainer import GENERATOR, JOINT


def test_parameter_counts_equal_the_reference_code():
    """generative_inpainting v1.0.0 at cnum 32: 3.60 M (coarse 1.45 M); critics 4.34 M local, 2.73 M global."""
    trainer = DeepFillTrainer(DeepFillConfig())
    assert trainer.parameter_count("generator") == 3_601_542
    assert sum(p.numel() for p in trainer.generator.coarse.parameters()) == 1_448_227
    assert trainer.parameter_count("local_critic") == 4_339_329
    assert trainer.parameter_count("global_critic") == 2_733_441


def test_layers_follow_the_reference_code():
    generator = DeepFillGenerator(DeepFillConfig())
    convs = [m for m in generator.coarse.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 17  # stage 1 has 17 convolutions
    assert [c.dilation[0] for c in convs if c.dilation[0] > 1] == [2, 4, 8, 16]
    assert convs[0].in_channels == 5 and convs[0].kernel_size == (5, 5)  # masked image, ones, mask
    assert sum(1 for c in convs if c.stride[0] == 2) == 2
    activations = [type(m).__name__ for m in generator.refine_attention_encoder.modules() if isinstance(m, (nn.ELU, nn.ReLU))]
    assert activations[-1] == "ReLU" and set(activations[:-1]) == {"ELU"}  # the only ReLU feeds the attention
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in generator.modules())


def _irregular_masks(batch: int, size: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    masks = np.zeros((batch, 1, size, size), np.float32)
    for b in range(batch):
        for _ in range(3):
            top, left = rng.integers(0, size - 8, 2)
            height, width = rng.integers(4, size // 3, 2)
            masks[b, 0, top : top + height, left : left + width] = 1
    masks[-1, 0, :6, :] = 1  # a hole on the border
    return torch.from_numpy(masks)


def test_outputs_are_in_range_and_the_composite_keeps_known_pixels():
    torch.manual_seed(0)
    generator = DeepFillGenerator(DeepFillConfig(width=8)).eval()
    image, mask = torch.rand(2, 3, 64, 48), _irregular_masks(2, 64, 1)[..., :48]
    with torch.no_grad():
        out = generator(image, mask)
    for key in ("coarse", "predicted"):
        assert out[key].shape == image.shape and out[key].min() >= 0 and out[key].max() <= 1
    assert "inpainted" not in out  # inference composites by itself
    assert out["offsets"].shape == (2, 2, 8, 6)
    composited = generator.train()(image, mask)["inpainted"]  # the critics' input
    assert torch.equal(composited[mask.expand_as(image) < 0.5], image[mask.expand_as(image) < 0.5])


def _composited(generator: DeepFillGenerator, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    out = generator(image, mask)
    return {**out, "inpainted": torch.where(mask > 0.5, out["predicted"], image)}


def test_eval_mode_attends_only_near_holes_without_changing_the_fill():
    """Skipping queries beyond ATTENTION_REACH leaves every hole pixel as the full computation makes it."""
    torch.manual_seed(1)
    generator = DeepFillGenerator(DeepFillConfig(width=8)).eval()
    for module in generator.modules():  # larger weights than the default initialisation: differences would show
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=1.5 / math.sqrt(module.weight[0].numel()))
    image, mask = torch.rand(3, 3, 128, 128), _irregular_masks(3, 128, 2)
    mask[1] = 0
    mask[1, :, 100:110, 20:30] = 1  # a small hole: most queries are skipped
    with torch.no_grad():
        near = _composited(generator, image, mask)
        generator.attention_margin = None
        full = _composited(generator, image, mask)
        generator.attention_margin = 1  # too short a reach: the test must see it
        short = _composited(generator, image, mask)
    # Float rounding differs with the blocks' shapes (~1e-5 here); a missing query changes a fill by 1e-2 or more.
    torch.testing.assert_close(near["inpainted"], full["inpainted"], rtol=0, atol=1e-4)
    assert (short["inpainted"] - full["inpainted"]).abs().max() > 1e-2
    with torch.no_grad():  # the small hole alone: most queries are skipped (layer test), the fill is unchanged
        generator.attention_margin = ATTENTION_REACH
        alone = _composited(generator, image[1:2], mask[1:2])
    torch.testing.assert_close(alone["inpainted"], full["inpainted"][1:2], rtol=0, atol=1e-4)


def test_spatial_discount_is_gamma_to_the_distance_from_the_background():
    mask = torch.zeros(2, 1, 9, 9)
    mask[0, :, 2:7, 2:7] = 1
    mask[1] = 1
    weights = spatial_discount(mask, 0.5)
    assert weights[0, 0, 4, 4] == pytest.approx(0.5**3)  # three pixels from the nearest known one
    assert weights[0, 0, 2, 4] == pytest.approx(0.5)
    assert (weights[0][mask[0] < 0.5] == 0).all()
    assert (weights[1] == 1).all()  # no background: every pixel alike
    assert torch.equal(spatial_discount(mask, 1.0)[0], mask[0])


def test_weighted_l1_is_a_weighted_mean():
    predicted, target = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    weights = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    target[..., 0, 1] = 5
    assert weighted_l1_loss(predicted, target, weights) == pytest.approx(1.0)
    assert weighted_l1_loss(predicted, target, torch.zeros_like(weights)) == 0


def _batches(count: int, batch: int, size: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for k in range(count):
        images = torch.rand((batch, 3, size, size), generator=generator)
        out.append((images, _irregular_masks(batch, size, seed + k)))
    return out


def test_trainer_pretrains_the_generator_alone_then_trains_both():
    config = DeepFillConfig(width=4, critic_width=4, local_size=16, global_size=32, pretrain_steps=1)
    trainer = DeepFillTrainer(config)
    assert trainer.phase(0) == GENERATOR and trainer.phase(1) == JOINT
    critic_before = [p.detach().clone() for p in trainer.local_critic.parameters()]
    losses = trainer.train_step(0, _batches(6, 2, 32, 0))
    assert set(losses) == {"l1", "known", "total"}
    assert all(torch.equal(a, b) for a, b in zip(critic_before, trainer.local_critic.parameters(), strict=True))
    losses = trainer.train_step(1, _batches(6, 2, 32, 10))
    assert {"wgan_global", "wgan_local", "penalty_global", "penalty_local", "adversarial"} <= set(losses)
    assert all(math.isfinite(value) for value in losses.values())
    assert not all(torch.equal(a, b) for a, b in zip(critic_before, trainer.local_critic.parameters(), strict=True))


def test_the_penalty_only_sees_the_hole():
    """The critics' gradient penalty is masked: a critic whose input gradient lives outside the hole pays 1 per sample."""
    config = DeepFillConfig(width=4, critic_width=4, local_size=16, global_size=32)
    trainer = DeepFillTrainer(config)
    images, masks = _batches(1, 2, 32, 3)[0]
    masks[:] = 0
    masks[..., 8:24, 8:24] = 1

    def outside_only(x: torch.Tensor) -> torch.Tensor:
        return (x[..., :4, :4] * 100).flatten(1).sum(dim=1)  # depends on pixels outside the hole only

    trainer.global_critic.forward = outside_only  # type: ignore[method-assign]
    trainer.local_critic.forward = outside_only  # type: ignore[method-assign]
    terms = trainer.discriminator_terms(images, masks, {"inpainted": images.flip(0)}, JOINT)
    assert terms["penalty_global"][1].item() == pytest.approx(1.0, abs=1e-5)  # (0 - 1)²: no gradient in the hole


def test_local_windows_follow_each_samples_hole():
    config = DeepFillConfig(width=4, critic_width=4, local_size=16, global_size=64)
    trainer = DeepFillTrainer(config)
    images = torch.arange(2 * 64 * 64, dtype=torch.float32).view(2, 1, 64, 64).expand(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, :, 2:10, 2:10] = 1
    masks[1, :, 50:60, 40:50] = 1
    (windows,) = trainer._windows(masks, images)
    assert windows.shape == (2, 3, 16, 16)
    assert windows[0, 0, 0, 0] == images[0, 0, 0, 0]  # kept inside the image at the top-left
    assert windows[1, 0, 0, 0] == images[1, 0, 47, 37]  # centred on (55, 45)


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="attention_rate"):
        DeepFillConfig(attention_rate=3)
    with pytest.raises(ValueError, match="discount_gamma"):
        DeepFillConfig(discount_gamma=0.0)
    with pytest.raises(ValueError, match="multiples of 8"):
        DeepFillGenerator(DeepFillConfig(width=4))(torch.rand(1, 3, 20, 24), torch.zeros(1, 1, 20, 24))


def test_strips_equal_the_whole_image():
    """Large images run their full- and 1/2-resolution layers in strips of rows; the output is the same."""
    torch.manual_seed(2)
    generator = DeepFillGenerator(DeepFillConfig(width=8)).eval()
    image, mask = torch.rand(2, 3, 200, 72), _irregular_masks(2, 200, 3)[..., :72]
    with torch.no_grad():
        whole = generator(image, mask)
        generator.strip_pixels, generator.strip_rows = 0, 48
        striped = generator(image, mask)
    for key in ("coarse", "predicted"):
        torch.testing.assert_close(striped[key], whole[key], rtol=0, atol=1e-5)
    assert torch.equal(striped["offsets"], whole["offsets"])


def test_training_mode_never_takes_the_inference_shortcuts(monkeypatch):
    generator = DeepFillGenerator(DeepFillConfig(width=4))
    generator.strip_pixels, generator.strip_rows = 0, 8
    seen: dict[str, list] = {"striped": [], "margin": []}
    encode, attend = generator._encode, generator.attention.forward

    def spy_encode(layers, make_input, height, striped):
        seen["striped"].append(striped)
        return encode(layers, make_input, height, striped)

    def spy_attend(features, hole, return_offsets=False, query_margin=None):
        seen["margin"].append(query_margin)
        return attend(features, hole, return_offsets=return_offsets, query_margin=query_margin)

    monkeypatch.setattr(generator, "_encode", spy_encode)
    monkeypatch.setattr(generator.attention, "forward", spy_attend)
    image, mask = torch.rand(1, 3, 32, 32), _irregular_masks(1, 32, 4)
    generator.train()(image, mask)
    assert seen == {"striped": [False] * 3, "margin": [None]}
    with torch.no_grad():
        generator.eval()(image, mask)
    assert seen["striped"][3:] == [True] * 3 and seen["margin"][1:] == [ATTENTION_REACH]
