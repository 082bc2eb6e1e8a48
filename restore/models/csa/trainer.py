"""CSA's losses on the shared GAN trainer (:class:`~restore.models.trainer.GANTrainer`).

Losses (paper §3.3–3.4, weights in :class:`CSAConfig`): L1 on the rough and the
refined output (and, our addition, optionally the squared error); the consistency
loss pulling the CSA output and its decoder twin towards VGG-16 relu4_3 of the
ground truth at hole positions — *with* gradient, unlike the authors' code, which
detached it; relativistic-average LSGAN from the patch discriminator and the VGG
feature-patch discriminator, both shown the composited output.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from restore.losses.adversarial import (
    masked_ralsgan_discriminator_loss,
    masked_ralsgan_generator_loss,
    patches_in,
    ralsgan_discriminator_loss,
    ralsgan_generator_loss,
)
from restore.losses.perceptual import masked_feature_l2
from restore.losses.reconstruction import l1_loss, l2_loss
from restore.models.csa.config import CSAConfig
from restore.models.csa.networks import CSA_LEVEL, CSAGenerator, level_channels
from restore.models.trainer import GANTrainer, Term
from restore.nn.discriminators import FeaturePatchDiscriminator, PatchDiscriminator
from restore.nn.vgg import VGGFeatures

VGG_CHANNELS = 512


def _signed(image: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1], the range the discriminators see."""
    return image * 2.0 - 1.0


class CSATrainer(GANTrainer):
    """One CSA training run: the two-stage generator, its discriminators and the VGG-16 they may need.

    Args:
        config: the method's hyper-parameters.
        device: where to train.
        vgg_weights: VGG-16 weights (path, ``"random"`` or None for the hub cache/URL);
            only loaded when a VGG loss is enabled.
        bf16: run forward passes under bfloat16 autocast (CPUs with AMX or AVX-512 BF16, recent GPUs).
    """

    name = "csa"
    without_vgg = ("consistency_weight=0", "feature_discriminator=false")

    def __init__(self, config: CSAConfig, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None, bf16: bool = False) -> None:
        super().__init__(config, device=device, vgg_weights=vgg_weights, bf16=bf16)
        self.generator = self.add_module("generator", CSAGenerator(config), average=config.ema_decay)
        self.vgg = VGGFeatures(vgg_weights, "vgg16", ("relu4_3",)).to(self.device) if config.needs_vgg else None
        self.vgg_source = self.vgg.source if self.vgg is not None else None
        self._real_features: tuple[Tensor, Tensor] | None = None
        uses_adversarial = config.adversarial_weight > 0
        self.discriminator = self.add_module("discriminator", PatchDiscriminator(3, config.discriminator_width)) if uses_adversarial else None
        self.feature_discriminator = (
            self.add_module("feature_discriminator", FeaturePatchDiscriminator(config.feature_discriminator_width))
            if uses_adversarial and config.feature_discriminator
            else None
        )
        # The consistency loss compares C-channel CSA features with 512-channel VGG features;
        # at the paper's width C = 512 and no projection is needed.
        csa_channels = level_channels(config, CSA_LEVEL + 1)[CSA_LEVEL]
        self.consistency_heads = (
            self.add_module("consistency_heads", nn.ModuleDict({"csa": nn.Conv2d(csa_channels, VGG_CHANNELS, 1),
                                                                "decoder": nn.Conv2d(csa_channels, VGG_CHANNELS, 1)}))
            if config.consistency_weight > 0 and csa_channels != VGG_CHANNELS
            else None
        )
        betas = (config.beta1, config.beta2)
        g_params = list(self.generator.parameters())
        if self.consistency_heads is not None:
            g_params += list(self.consistency_heads.parameters())
        self.add_optimizer("generator", g_params, config.lr, betas)
        d_params = [p for m in (self.discriminator, self.feature_discriminator) if m is not None for p in m.parameters()]
        if d_params:
            self.add_optimizer("discriminator", d_params, config.lr, betas)

    @classmethod
    def describe_losses(cls, config: Mapping[str, Any]) -> str:
        """CSA's generator losses and weights in words (model cards)."""
        hole = f"hole pixels ×{config['hole_l1_weight']}"
        losses = [f"L1 on both stages (weight {config['l1_weight']}, {hole})"] if config["l1_weight"] > 0 else []
        if config.get("l2_weight", 0) > 0:
            losses.append(f"squared error on both stages (weight {config['l2_weight']}, {hole})")
        if config["consistency_weight"] > 0:
            losses.append(f"consistency {config['consistency_weight']}")
        if config["adversarial_weight"] > 0:
            discriminators = "patch + feature-patch" if config["feature_discriminator"] else "patch"
            where = ", patches that see the hole" if config.get("adversarial_in_hole") else ""
            losses.append(f"RaLSGAN {config['adversarial_weight']} ({discriminators}, width {config['discriminator_width']}{where})")
        return ", ".join(losses)

    @property
    def generator_ema(self):
        """The generator's moving average (None when ``ema_decay`` is 0)."""
        return self.average("generator")

    def _vgg(self, images: Tensor) -> Tensor:
        assert self.vgg is not None
        return self.vgg(images)[0]

    def _vgg_real(self, images: Tensor) -> Tensor:
        """VGG-16 relu4_3 of the ground truth (no gradient), computed once per batch."""
        if self._real_features is None or self._real_features[0] is not images:
            with torch.no_grad(), self.autocast():
                self._real_features = (images, self._vgg(images).float())
        return self._real_features[1]

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """RaLSGAN of the patch discriminator (and of the feature-patch one on VGG-16 relu4_3)."""
        fake = out["inpainted"]
        terms: dict[str, Term] = {}
        with self.autocast():
            terms["patch"] = (1.0, self._relativistic(self.discriminator(_signed(images)).float(),
                                                      self.discriminator(_signed(fake)).float(), masks, generator=False))
            if self.feature_discriminator is not None:
                vgg_real = self._vgg_real(images)
                with torch.no_grad():
                    vgg_fake = self._vgg(fake)
                terms["feature"] = (1.0, self._relativistic(self.feature_discriminator(vgg_real).float(),
                                                            self.feature_discriminator(vgg_fake).float(), masks, generator=False))
        return terms

    def _relativistic(self, real: Tensor, fake: Tensor, masks: Tensor, generator: bool) -> Tensor:
        """RaLSGAN of one discriminator's scores, over the patches that see the hole when the config says so."""
        if self.config.adversarial_in_hole:
            where = patches_in(masks, real)
            return (masked_ralsgan_generator_loss if generator else masked_ralsgan_discriminator_loss)(real, fake, where)
        return (ralsgan_generator_loss if generator else ralsgan_discriminator_loss)(real, fake)

    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """L1 (and squared error) on both stages, consistency, RaLSGAN."""
        config = self.config
        hole_weight = config.hole_l1_weight
        coarse, predicted = out["coarse"].float(), out["predicted"].float()
        terms: dict[str, Term] = {"l1": (config.l1_weight, l1_loss(coarse, images, masks, hole_weight) + l1_loss(predicted, images, masks, hole_weight))}
        if config.l2_weight > 0:
            terms["l2"] = (config.l2_weight, l2_loss(coarse, images, masks, hole_weight) + l2_loss(predicted, images, masks, hole_weight))
        vgg_real = self._vgg_real(images) if self.vgg is not None else None
        if config.consistency_weight > 0 and vgg_real is not None:
            terms["consistency"] = (config.consistency_weight, self._consistency(out, vgg_real))
        if self.discriminator is not None:
            terms["adversarial"] = (config.adversarial_weight, self._adversarial(images, masks, out["inpainted"], vgg_real))
        return terms

    def _consistency(self, out: dict[str, Tensor], vgg_real: Tensor) -> Tensor:
        csa, twin = out["csa"].float(), out["csa_decoder"].float()
        if self.consistency_heads is not None:
            csa = self.consistency_heads["csa"](csa)
            twin = self.consistency_heads["decoder"](twin)
        hole = out["feature_hole"]
        return masked_feature_l2(csa, vgg_real, hole) + masked_feature_l2(twin, vgg_real, hole)

    def _adversarial(self, images: Tensor, masks: Tensor, inpainted: Tensor, vgg_real: Tensor | None) -> Tensor:
        assert self.discriminator is not None
        with self.autocast():
            with torch.no_grad():
                real_logits = self.discriminator(_signed(images)).float()
            loss = self._relativistic(real_logits, self.discriminator(_signed(inpainted)).float(), masks, generator=True)
            if self.feature_discriminator is not None and vgg_real is not None:
                with torch.no_grad():
                    real_features = self.feature_discriminator(vgg_real).float()
                fake_features = self.feature_discriminator(self._vgg(inpainted)).float()
                loss = loss + self._relativistic(real_features, fake_features, masks, generator=True)
        return loss
