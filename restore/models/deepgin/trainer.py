"""DeepGIN's losses and schedule on the shared GAN trainer (:class:`~restore.models.trainer.GANTrainer`).

Generator (paper eq. 1–7, weights in :class:`~restore.models.deepgin.config.DeepGINConfig`):

* L1 on I_coarse, I_out and I_lr (against the ground truth brought down 4×, by the same area
  average as back projection), hole pixels ×``hole_weight`` (5). The code's form: the mean over
  every pixel of ``|error|·(5·m + (1 − m))`` — not normalised by the weights, so the term grows
  with the hole's area, which is the scale the other weights were tuned against;
* hinge adversarial ×0.001: ``−Σ_scales mean D(I_in, I_compltd)``;
* perceptual ×0.05 and style ×80 on VGG-19 conv1_1, conv2_1, conv3_1, conv4_1 and conv5_1
  (before their ReLU), images resized to 224² (bilinear) and ImageNet-normalised, layers weighted
  1/32, 1/16, 1/8, 1/4, 1, for I_out and I_compltd against the ground truth;
* total variation ×0.1 of I_compltd.

With ``prefill`` (the default, our residual form) the three pixel terms count the hole alone by
default (``known_weight`` 0): with the known pixels the residual stayed at the fill
(runs/deepgin-d). ``known_weight=1`` gives the code's terms; ``pixel_loss=l2`` squared errors.

Where the paper and the code differ, this follows the code, because the code produced the
published results and its loss weights are tuned to its forms: style is the layer-weighted
mean squared difference of Gram matrices normalised by C·H·W (paper eq. 5: the L1 distance
divided by C², unweighted layers); total variation is the code's ``TVLoss``,
``2·(mean dh² + mean dw²)`` (paper eq. 6: absolute differences); perceptual layers weighted
1/32 … 1 (paper eq. 4: unweighted). The discriminators: ``½ Σ_scales [E relu(1 − D(real)) +
E relu(1 + D(fake))]``, means over their patch maps (paper eq. 3 without the code's ½, which
only scales their learning rate). Losses see the network's raw (unclamped) outputs, as the code's.

Schedule: the first ``warmup_steps`` train the generator alone on the L1 terms (paper §5.1's
warm-up; the code has no warm-up script), then the generator and the discriminators alternate
on each batch (discriminators first). Adam β = (0.5, 0.999), generator 1e-4 with the code's
gradient-norm clipping at 3 (over the generator's gradients; the code measured the norm over the
discriminators' stale gradients too), discriminators 4e-4.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.losses.adversarial import hinge_discriminator_loss, hinge_generator_loss
from restore.losses.perceptual import perceptual_loss, style_loss
from restore.losses.regularisers import total_variation
from restore.models.deepgin.config import DeepGINConfig
from restore.models.deepgin.networks import (
    DeepGINDiscriminator,
    DeepGINGenerator,
    downsample,
    masked_input,
)
from restore.models.trainer import GENERATOR, JOINT, GANTrainer, Term
from restore.nn.vgg import VGGFeatures

#: VGG-19 layers of the perceptual and style losses (the code's slices end at these, before their ReLU).
VGG_TAPS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
#: Their weights (the code's ``VGGLoss.weights``).
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def hole_weighted_l1(predicted: Tensor, target: Tensor, holes: Tensor, hole_weight: float, known_weight: float = 1.0,
                     power: int = 1) -> Tensor:
    """The code's L1: ``mean(|predicted − target|^power · (hole_weight·m + known_weight·(1 − m)))``
    over every element (the code: ``known_weight`` 1, ``power`` 1; ``power`` 2 is the weighted
    squared error of ``pixel_loss = "l2"``).

    With the code's values equal to ``hole_weight · L1(p·m, t·m) + L1(p·(1−m), t·(1−m))`` with
    ``nn.L1Loss`` means, for a binary or soft (down-sampled) ``m``.

    Shape:
        predicted, target: (B, C, H, W); holes: (B, 1, H, W) float in [0, 1]; returns ().
    """
    weights = known_weight + (hole_weight - known_weight) * holes
    return ((predicted - target).abs().pow(power) * weights).mean()


@contextlib.contextmanager
def frozen(module: nn.Module | None) -> Iterator[None]:
    """Build graphs through ``module`` without gradients for its parameters (restored on exit)."""
    if module is None:
        yield
        return
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


class DeepGINTrainer(GANTrainer):
    """One DeepGIN run: the two-stage generator, the two-scale discriminator, VGG-19 for its losses.

    Args:
        config: the method's hyper-parameters.
        device: where to train.
        vgg_weights: VGG-19 weights (a torchvision file, ``"random"``, or None for the hub cache);
            loaded only when the perceptual or style weight is positive.
        bf16: bfloat16 autocast for the forward passes.
    """

    name = "deepgin"
    channels_last = True
    #: Without VGG-19 the adversarial term must carry the realism: at the paper's 0.001 it is
    #: 0.15 % of the update (benchmarks/loss_balance.py), at 0.1 about 8 %.
    without_vgg = ("perceptual_weight=0", "style_weight=0", "adversarial_weight=0.1")

    def __init__(self, config: DeepGINConfig, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None,
                 bf16: bool = False) -> None:
        super().__init__(config, device=device, vgg_weights=vgg_weights, bf16=bf16)
        self.generator = self.add_module("generator", DeepGINGenerator(config), average=config.ema_decay)
        self.discriminator = self.add_module("discriminator", DeepGINDiscriminator(config)) if config.adversarial_weight > 0 else None
        self.vgg = VGGFeatures(vgg_weights, "vgg19", VGG_TAPS).to(self.device) if config.needs_vgg else None
        self.vgg_source = self.vgg.source if self.vgg is not None else None
        betas = (config.beta1, config.beta2)
        self.add_optimizer("generator", self.generator.parameters(), config.lr, betas, clip_norm=config.clip_norm or None)
        if self.discriminator is not None:
            self.add_optimizer("discriminator", self.discriminator.parameters(), config.discriminator_lr, betas)

    @classmethod
    def describe_losses(cls, config: Mapping[str, Any]) -> str:
        """DeepGIN's generator losses, weights and warm-up in words (model cards)."""
        from restore.models.config import saved_config

        config = saved_config(DeepGINConfig, config)
        pixel = "squared error" if config["pixel_loss"] == "l2" else "L1"
        known, hole = config["known_weight"], config["hole_weight"]
        pixels = f"hole pixels only, ×{hole}" if known == 0 else f"hole pixels ×{hole}" + ("" if known == 1 else f", known ×{known}")
        losses = [f"{pixel} on the coarse, refined and 1/4-resolution outputs ({pixels})"]
        if config["perceptual_weight"] > 0:
            losses.append(f"VGG-19 perceptual {config['perceptual_weight']}")
        if config["style_weight"] > 0:
            losses.append(f"style {config['style_weight']}")
        if config["tv_weight"] > 0:
            losses.append(f"total variation {config['tv_weight']}")
        if config["adversarial_weight"] > 0:
            losses.append(f"hinge GAN {config['adversarial_weight']} (two spectral-norm patch discriminators, full and half scale)")
        warmup = config["warmup_steps"]
        return ", ".join(losses) + (f"; the {pixel} terms alone for the first {warmup} steps" if warmup > 0 else "; all from the first step")

    def phase(self, step: int) -> str:
        """The generator alone on the L1 terms during the warm-up, then generator and discriminators."""
        return GENERATOR if step < self.config.warmup_steps else JOINT

    # -- losses ---------------------------------------------------------------------------
    def _scores(self, images: Tensor, holes: Tensor, candidate: Tensor) -> list[Tensor]:
        """Both discriminators' patch maps of ``candidate`` beside the masked input (float32)."""
        assert self.discriminator is not None
        with self.autocast():
            return [score.float() for score in self.discriminator(masked_input(images, holes > 0.5), candidate)]

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """½ Σ_scales hinge(D(real), D(completed)), the completed image composited with the binary mask."""
        if self.discriminator is None:
            return {}
        holes = (masks > 0.5).to(images.dtype)
        completed = torch.where(holes > 0.5, out["refined"].float(), images)
        real, fake = self._scores(images, holes, images), self._scores(images, holes, completed)
        hinge = sum(hinge_discriminator_loss(r, f) for r, f in zip(real, fake, strict=True))
        return {"hinge": (0.5, hinge)}

    def _vgg(self, images: Tensor) -> list[Tensor]:
        assert self.vgg is not None
        size = self.config.vgg_size
        if size and tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True)
        with self.autocast():
            return [feature.float() for feature in self.vgg(images)]

    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """The three L1 terms; after the warm-up also total variation, perceptual, style and hinge."""
        config = self.config
        holes = (masks > 0.5).to(images.dtype)
        coarse, refined, low = out["coarse"].float(), out["refined"].float(), out["low_resolution"].float()
        weights = config.hole_weight, config.known_weight, 2 if config.pixel_loss == "l2" else 1
        terms: dict[str, Term] = {
            "l1_coarse": (1.0, hole_weighted_l1(coarse, images, holes, *weights)),
            "l1_refined": (1.0, hole_weighted_l1(refined, images, holes, *weights)),
            "l1_low_resolution": (1.0, hole_weighted_l1(low, downsample(images), downsample(holes), *weights)),
        }
        if phase == GENERATOR:
            return terms
        completed = torch.where(holes > 0.5, refined, images)
        if config.tv_weight > 0:
            terms["tv"] = (config.tv_weight, 2.0 * total_variation(completed, squared=True))
        if self.vgg is not None:
            with torch.no_grad():
                real = self._vgg(images)
            both = self._vgg(torch.cat([refined, completed]))
            count = images.shape[0]
            fakes = [[feature[:count] for feature in both], [feature[count:] for feature in both]]
            if config.perceptual_weight > 0:
                terms["perceptual"] = (config.perceptual_weight, sum(perceptual_loss(f, real, VGG_LAYER_WEIGHTS, "l1") for f in fakes))
            if config.style_weight > 0:
                terms["style"] = (config.style_weight, sum(style_loss(f, real, VGG_LAYER_WEIGHTS, "mse") for f in fakes))
        if self.discriminator is not None:
            with frozen(self.discriminator):
                scores = self._scores(images, holes, completed)
            terms["adversarial"] = (config.adversarial_weight, sum(hinge_generator_loss(score) for score in scores))
        return terms
