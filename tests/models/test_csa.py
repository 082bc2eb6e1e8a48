"""CSA: networks, CSA layer, losses and gradient flow, inpainter contract."""

from __future__ import annotations

import pytest
import torch

from restore.models.config import config_from_dict
from restore.models.csa.config import CSAConfig
from restore.models.csa.inpainter import CSAInpainter
from restore.models.csa.networks import CSAGenerator
from restore.models.csa.trainer import CSATrainer
from restore.nn.csa_layer import CoherentSemanticAttention, feature_hole_mask
from restore.nn.discriminators import FeaturePatchDiscriminator, PatchDiscriminator

SMALL = dict(width=4, max_channels=16, depth=5)


def _batch(batch: int = 2, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=generator)
    mask = torch.zeros(batch, 1, size, size)
    mask[0, :, size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    mask[-1, :, size // 2 :, : size // 3] = 1
    return image, mask


def test_config_defaults_are_the_papers() -> None:
    config = CSAConfig()
    assert (config.width, config.max_channels, config.depth) == (64, 512, 8)
    assert (config.l1_weight, config.consistency_weight, config.adversarial_weight) == (1.0, 0.01, 0.002)
    assert (config.lr, config.beta1) == (2e-4, 0.5)
    with pytest.raises(ValueError, match="unknown CSAConfig keys: colour"):
        config_from_dict(CSAConfig, {"colour": 1})
    with pytest.raises(ValueError, match="depth"):
        CSAConfig(depth=3)
    assert config.l2_weight == 0.0  # the squared error is our addition
    with pytest.raises(ValueError, match="l2_weight must be >= 0"):
        CSAConfig(l2_weight=-1.0)


def test_feature_hole_mask_centre_hole_is_16_by_16_at_32() -> None:
    mask = torch.zeros(2, 1, 256, 256)
    mask[0, :, 64:192, 64:192] = 1
    mask[1, :, :32, :32] = 1
    hole = feature_hole_mask(mask)
    assert hole.shape == (2, 1, 32, 32)
    expected = torch.zeros(32, 32)
    expected[8:24, 8:24] = 1
    assert torch.equal(hole[0, 0], expected)
    # per sample: the second mask gives its own geometry, not the first sample's
    assert hole[1, 0, :4, :4].all() and hole[1].sum() == 16


def test_csa_layer_keeps_known_positions_and_fills_holes() -> None:
    features = torch.randn(2, 8, 6, 7)
    hole = torch.zeros(2, 1, 6, 7)
    hole[0, :, 2:4, 1:5] = 1
    hole[1, :, 0, 0] = 1
    out = CoherentSemanticAttention()(features, hole)
    known = hole.expand_as(features) == 0
    assert torch.equal(out[known], features[known])
    assert not torch.allclose(out[~known], features[~known])


def test_csa_layer_passes_a_sample_without_known_positions_through() -> None:
    features = torch.randn(2, 4, 5, 5)
    hole = torch.ones(2, 1, 5, 5)
    hole[1, :, 0, 0] = 0
    out = CoherentSemanticAttention()(features, hole)
    assert torch.equal(out[0], features[0])
    # the second sample's holes all copy (a blend of) the single known feature
    assert torch.allclose(out[1, :, 4, 4], features[1, :, 0, 0], atol=1e-5)


@pytest.mark.parametrize("prefill", [True, False])
def test_generator_outputs_shapes_and_ranges(prefill: bool) -> None:
    config = CSAConfig(**SMALL, prefill=prefill)
    image, mask = _batch(size=64)
    out = CSAGenerator(config)(image, mask)
    for key in ("coarse", "coarse_inpainted", "predicted", "inpainted"):
        assert out[key].shape == image.shape
        assert float(out[key].detach().min()) >= 0.0 and float(out[key].detach().max()) <= 1.0
    assert out["csa"].shape == (2, 16, 8, 8) and out["csa_decoder"].shape == (2, 16, 8, 8)
    assert out["feature_hole"].shape == (2, 1, 8, 8)


def test_generator_rejects_sizes_it_cannot_take() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        CSAGenerator(CSAConfig(**SMALL))(torch.rand(1, 3, 48, 64), torch.zeros(1, 1, 48, 64))


@pytest.mark.parametrize("size", [(1, 1), (37, 100), (64, 64), (70, 33)])
def test_inpainter_any_size_keeps_known_pixels_exact(size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    inpainter = CSAInpainter(CSAGenerator(CSAConfig(**SMALL)))
    image = torch.rand(2, 3, *size)
    mask = (torch.rand(2, 1, *size) > 0.6).float()
    out = inpainter.inpaint(image, mask)
    assert out.shape == image.shape
    known = (mask == 0).expand_as(image)
    assert torch.equal(out[known], image[known])
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("size", [(37, 100), (70, 33), (3, 250)])
def test_inpainter_never_sees_hole_content_through_its_padding(size: tuple[int, int]) -> None:
    """Holes at the bottom/right edges are mirrored into the padding: as holes, not as known pixels."""
    torch.manual_seed(2)
    generator = CSAGenerator(CSAConfig(**SMALL))
    for head in (generator.rough.head[-1], generator.refine.head[-1]):
        torch.nn.init.normal_(head.weight, std=0.2)  # untrained heads would hide the refinement
    inpainter = CSAInpainter(generator)
    image = torch.rand(2, 3, *size)
    mask = torch.zeros(2, 1, *size)
    mask[..., -5:, :] = 1
    mask[..., :, -4:] = 1
    other = torch.where(mask > 0, torch.rand_like(image), image)
    assert torch.equal(inpainter.inpaint(image, mask), inpainter.inpaint(other, mask))


def test_untrained_prefill_generator_starts_from_a_smooth_fill() -> None:
    """Zero-initialised residual heads: before training the output is the push-pull fill."""
    from restore.nn.prefill import pyramid_fill

    image, mask = _batch(size=64)
    out = CSAGenerator(CSAConfig(**SMALL))(image, mask)
    expected = (pyramid_fill(image * 2 - 1, mask) + 1) / 2
    assert torch.allclose(out["inpainted"], expected, atol=1e-5)


def test_discriminator_output_shapes() -> None:
    assert PatchDiscriminator(3, 8)(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert FeaturePatchDiscriminator(16)(torch.rand(2, 512, 32, 32)).shape == (2, 1, 14, 14)


def _grad_norm(module: torch.nn.Module) -> float:
    return float(sum(p.grad.abs().sum() for p in module.parameters() if p.grad is not None))


def test_every_loss_reaches_the_generator() -> None:
    """L1, consistency (with gradient, unlike the authors' code) and both adversarial losses.

    ``prefill=False``: with the prefill the output heads start at zero, so only the heads
    themselves receive gradient from output losses on the very first step.
    """
    config = CSAConfig(**SMALL, prefill=False, discriminator_width=4, feature_discriminator_width=8)
    trainer = CSATrainer(config, vgg_weights="random")
    image, mask = _batch(size=64)
    out = trainer.generator(image, mask)
    encoder_before_csa = trainer.generator.refine.down[0]

    def grads_of(loss: torch.Tensor) -> dict[str, float]:
        trainer.generator.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        return {
            "rough": _grad_norm(trainer.generator.rough),
            "refine_encoder": _grad_norm(encoder_before_csa),
            "refine_stem": _grad_norm(trainer.generator.refine.stem),
        }

    consistency = trainer._consistency(out, trainer.vgg(image)[0])
    assert consistency.item() > 0
    flow = grads_of(consistency)
    assert flow["refine_encoder"] > 0 and flow["refine_stem"] > 0 and flow["rough"] > 0

    adversarial = trainer._adversarial(image, mask, out["inpainted"], trainer.vgg(image)[0])
    flow = grads_of(adversarial)
    assert flow["refine_encoder"] > 0 and flow["rough"] > 0

    from restore.losses.reconstruction import l1_loss

    flow = grads_of(l1_loss(out["coarse"], image) + l1_loss(out["predicted"], image))
    assert flow["refine_encoder"] > 0 and flow["rough"] > 0

    from restore.losses.reconstruction import l2_loss

    flow = grads_of(l2_loss(out["coarse"], image, mask, 6.0) + l2_loss(out["predicted"], image, mask, 6.0))
    assert flow["refine_encoder"] > 0 and flow["rough"] > 0


def test_reconstruction_losses_weight_hole_pixels() -> None:
    """Both are weighted means: hole pixels count ``hole_weight`` times, the weights sum to one."""
    from restore.losses.reconstruction import l1_loss, l2_loss

    target = torch.zeros(1, 3, 2, 2)
    predicted = torch.tensor([0.5, 0.1, 0.1, 0.1]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2)
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    assert l1_loss(predicted, target, mask, 5.0).item() == pytest.approx((5 * 0.5 + 3 * 0.1) / 8)
    assert l2_loss(predicted, target, mask, 5.0).item() == pytest.approx((5 * 0.25 + 3 * 0.01) / 8)
    assert l2_loss(predicted, target, mask).item() == pytest.approx((0.25 + 3 * 0.01) / 4)
    assert l2_loss(predicted, target).item() == pytest.approx((0.25 + 3 * 0.01) / 4)


def test_a_squared_error_step_trains_on_it_alone() -> None:
    """``l1_weight=0, l2_weight=w``: the objective is w × the squared error of both stages; L1 is still logged."""
    config = CSAConfig(**SMALL, consistency_weight=0, adversarial_weight=0, l1_weight=0.0, l2_weight=10.0, hole_l1_weight=6.0)
    trainer = CSATrainer(config)
    image, mask = _batch(size=64)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    losses = trainer.train_step(0, [(image, mask)])
    assert set(losses) == {"l1", "l2", "total"}
    assert losses["total"] == pytest.approx(10.0 * losses["l2"], rel=1e-6) and losses["l1"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.generator.parameters(), strict=True))


def test_discriminator_step_updates_both_discriminators() -> None:
    config = CSAConfig(**SMALL, discriminator_width=4, feature_discriminator_width=8)
    trainer = CSATrainer(config, vgg_weights="random")
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in (("patch", trainer.discriminator), ("feature", trainer.feature_discriminator))}
    image, mask = _batch(size=64)
    losses = trainer.train_step(0, [(image, mask)])
    assert set(losses) >= {"l1", "consistency", "adversarial", "discriminator", "total"}
    for name, module in (("patch", trainer.discriminator), ("feature", trainer.feature_discriminator)):
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters(), strict=True)), name


def test_vgg_is_needed_only_by_vgg_losses() -> None:
    from restore.nn.vgg import VGGWeightsError

    assert not CSAConfig(consistency_weight=0, feature_discriminator=False).needs_vgg
    assert CSAConfig().needs_vgg
    with pytest.raises(VGGWeightsError, match="no such file"):
        CSATrainer(CSAConfig(**SMALL), vgg_weights="/nonexistent/vgg16.pth")
    trainer = CSATrainer(CSAConfig(**SMALL, consistency_weight=0, adversarial_weight=0))
    assert trainer.vgg is None and trainer.metadata()["vgg_weights"] is None


def test_training_steps_on_real_photos_lower_the_loss() -> None:
    """A few steps at 64² on real photos, batch 4 (the authors' code diverged at batch > 1)."""
    from helpers import shared_data

    from restore.data.datasets import TrainingBatches, load_images

    _, photos = load_images(shared_data("train", "bsds500-train"))
    batches = TrainingBatches(photos[:8], size=64, batch_size=4, mask_kinds=("box", "freeform"), seed=3)
    image, mask = batches.batch(0)
    torch.manual_seed(0)
    config = CSAConfig(width=8, max_channels=32, depth=6, consistency_weight=0, adversarial_weight=0, lr=5e-4)
    trainer = CSATrainer(config)
    losses = [trainer.train_step(0, [(image, mask)])["l1"] for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < 0.9 * losses[0]


def test_vgg_weights_from_the_hub_cache_are_recorded_as_the_url(tmp_path, monkeypatch) -> None:
    """Another machine (a resume, a Dask worker) has its own cache: the checkpoint names the URL, not our path."""
    from restore.nn.vgg import VGG16_URL, VGGFeatures

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    own = VGGFeatures("random").features.state_dict()
    torch.save({f"features.{key}": value for key, value in own.items()}, tmp_path / "checkpoints" / VGG16_URL.rsplit("/", 1)[1])
    for weights in (None, VGG16_URL):
        vgg = VGGFeatures(weights)
        assert vgg.source == VGG16_URL
        assert all(torch.equal(vgg.features.state_dict()[key], value) for key, value in own.items())


def test_adversarial_terms_in_the_hole_only_train_and_differ_from_every_patch() -> None:
    image, mask = _batch(size=64)
    losses = {}
    for in_hole in (False, True):
        torch.manual_seed(0)
        config = CSAConfig(**SMALL, consistency_weight=0, feature_discriminator=False, discriminator_width=4, adversarial_in_hole=in_hole)
        trainer = CSATrainer(config)
        losses[in_hole] = trainer.train_step(0, [(image, mask)])
        assert all(torch.isfinite(torch.tensor(v)) for v in losses[in_hole].values())
    assert losses[True]["discriminator"] != losses[False]["discriminator"] and losses[True]["l1"] == losses[False]["l1"]
    assert "patches that see the hole" in CSATrainer.describe_losses({**CSAConfig(adversarial_in_hole=True).__dict__})
