"""CSA losses and one training step (generator and discriminators).

Losses (paper §3.3–3.4, weights in :class:`CSAConfig`): L1 on the rough and the
refined output (and, our addition, optionally the squared error); the consistency
loss pulling the CSA output and its decoder twin towards VGG-16 relu4_3 of the
ground truth at hole positions — *with* gradient, unlike the authors' code, which
detached it; relativistic-average LSGAN from the patch discriminator and the VGG
feature-patch discriminator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from restore.losses.adversarial import ralsgan_discriminator_loss, ralsgan_generator_loss
from restore.losses.reconstruction import l1_loss, l2_loss, masked_feature_l2
from restore.models.csa.config import CSAConfig
from restore.models.csa.inpainter import CSAInpainter
from restore.models.csa.networks import (
    CSA_LEVEL,
    CSAGenerator,
    FeaturePatchDiscriminator,
    PatchDiscriminator,
    _channels,
)
from restore.nn.ema import ExponentialMovingAverage
from restore.nn.vgg import VGG16Features

VGG_CHANNELS = 512


class CSATrainer:
    """Everything one CSA training run holds: networks, optimisers, the step.

    Args:
        config: the method's hyper-parameters.
        device: where to train.
        vgg_weights: VGG-16 weights (path, ``"random"`` or None for the hub cache/URL);
            only loaded when a VGG loss is enabled.
        bf16: run forward passes under bfloat16 autocast (AMX CPUs, recent GPUs).
    """

    name = "csa"

    def __init__(self, config: CSAConfig, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None, bf16: bool = False) -> None:
        self.config = config
        self.device = torch.device(device)
        self.bf16 = bf16
        self.generator = CSAGenerator(config).to(self.device)
        self.generator_ema = ExponentialMovingAverage(self.generator, config.ema_decay) if config.ema_decay > 0 else None
        csa_channels = _channels(config, CSA_LEVEL + 1)[CSA_LEVEL]
        self.vgg = VGG16Features(vgg_weights).to(self.device) if config.needs_vgg else None
        self.vgg_source = self.vgg.source if self.vgg is not None else None
        uses_adversarial = config.adversarial_weight > 0
        self.discriminator = PatchDiscriminator(config.discriminator_width).to(self.device) if uses_adversarial else None
        self.feature_discriminator = (
            FeaturePatchDiscriminator(config.feature_discriminator_width).to(self.device)
            if uses_adversarial and config.feature_discriminator
            else None
        )
        # The consistency loss compares C-channel CSA features with 512-channel VGG features;
        # at the paper's width C = 512 and no projection is needed.
        self.consistency_heads = (
            nn.ModuleDict({"csa": nn.Conv2d(csa_channels, VGG_CHANNELS, 1), "decoder": nn.Conv2d(csa_channels, VGG_CHANNELS, 1)}).to(self.device)
            if config.consistency_weight > 0 and csa_channels != VGG_CHANNELS
            else None
        )
        betas = (config.beta1, config.beta2)
        g_params = list(self.generator.parameters())
        if self.consistency_heads is not None:
            g_params += list(self.consistency_heads.parameters())
        self.g_optimizer = torch.optim.Adam(g_params, lr=config.lr, betas=betas)
        d_params = [p for m in (self.discriminator, self.feature_discriminator) if m is not None for p in m.parameters()]
        self.d_optimizer = torch.optim.Adam(d_params, lr=config.lr, betas=betas) if d_params else None
        #: Called with an optimiser's parameters after each backward pass, before its step
        #: (data-parallel training averages the gradients over the ranks there).
        self.gradient_sync: Callable[[Iterable[Tensor]], None] | None = None

    # -- what the loop checkpoints --------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        named = {
            "generator": self.generator,
            "generator_ema": self.generator_ema,
            "discriminator": self.discriminator,
            "feature_discriminator": self.feature_discriminator,
            "consistency_heads": self.consistency_heads,
        }
        return {name: module for name, module in named.items() if module is not None}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        named = {"generator": self.g_optimizer, "discriminator": self.d_optimizer}
        return {name: opt for name, opt in named.items() if opt is not None}

    def metadata(self) -> dict[str, object]:
        return {"vgg_weights": self.vgg_source, "bf16": self.bf16}

    def set_lr(self, lr: float) -> None:
        for optimizer in self.optimizers().values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    def start_from(self, generator_state: dict[str, Tensor]) -> None:
        """Take a checkpoint's generator weights (any float precision) as the starting point."""
        self.generator.load_state_dict({key: value.float() for key, value in generator_state.items()})
        if self.generator_ema is not None:
            self.generator_ema.reset(self.generator)

    def init_missing(self, name: str) -> None:
        """Start a module a resumed checkpoint lacks (an EMA added to an older run: the current weights)."""
        if name == "generator_ema" and self.generator_ema is not None:
            self.generator_ema.reset(self.generator)
            return
        raise ValueError(f"the checkpoint has no {name!r} weights")

    def inpainter(self) -> CSAInpainter:
        """The generator (its moving average when kept) as an :class:`Inpainter`, for samples and curves."""
        generator = self.generator_ema.module if self.generator_ema is not None else self.generator
        return CSAInpainter(generator, device=self.device, bf16=self.bf16)

    # -- one step -------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, images: Tensor, masks: Tensor) -> dict[str, float]:
        """One discriminator update, then one generator update.

        Shape:
            images: (B, 3, H, W) in [0, 1]; masks: (B, 1, H, W), 1 = hole.

        Returns:
            The step's losses as floats (``total`` is the generator objective).
        """
        config = self.config
        images = images.to(self.device, non_blocking=True)
        masks = masks.to(self.device, non_blocking=True)
        self.generator.train()
        with self._autocast():
            out = self.generator(images, masks)
        losses: dict[str, float] = {}

        vgg_real = None
        if self.vgg is not None:
            with torch.no_grad(), self._autocast():
                vgg_real = self.vgg(images).float()

        if self.d_optimizer is not None:
            losses.update(self._discriminator_step(images, out["inpainted"].detach(), vgg_real))

        hole_weight = config.hole_l1_weight
        l1 = l1_loss(out["coarse"].float(), images, masks, hole_weight) + l1_loss(out["predicted"].float(), images, masks, hole_weight)
        total = config.l1_weight * l1
        losses["l1"] = float(l1.detach())
        if config.l2_weight > 0:
            l2 = l2_loss(out["coarse"].float(), images, masks, hole_weight) + l2_loss(out["predicted"].float(), images, masks, hole_weight)
            total = total + config.l2_weight * l2
            losses["l2"] = float(l2.detach())
        if config.consistency_weight > 0 and vgg_real is not None:
            consistency = self._consistency(out, vgg_real)
            total = total + config.consistency_weight * consistency
            losses["consistency"] = float(consistency.detach())
        if self.discriminator is not None:
            adversarial = self._generator_adversarial(images, out["inpainted"], vgg_real)
            total = total + config.adversarial_weight * adversarial
            losses["adversarial"] = float(adversarial.detach())
        self.g_optimizer.zero_grad(set_to_none=True)
        total.backward()
        self._step(self.g_optimizer)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        losses["total"] = float(total.detach())
        return losses

    def _step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.gradient_sync is not None:
            self.gradient_sync(p for group in optimizer.param_groups for p in group["params"])
        optimizer.step()

    def _consistency(self, out: dict[str, Tensor], vgg_real: Tensor) -> Tensor:
        csa, twin = out["csa"].float(), out["csa_decoder"].float()
        if self.consistency_heads is not None:
            csa = self.consistency_heads["csa"](csa)
            twin = self.consistency_heads["decoder"](twin)
        hole = out["feature_hole"]
        return masked_feature_l2(csa, vgg_real, hole) + masked_feature_l2(twin, vgg_real, hole)

    def _discriminator_step(self, images: Tensor, fake: Tensor, vgg_real: Tensor | None) -> dict[str, float]:
        assert self.discriminator is not None and self.d_optimizer is not None
        with self._autocast():
            loss = ralsgan_discriminator_loss(self.discriminator(images).float(), self.discriminator(fake).float())
            if self.feature_discriminator is not None and self.vgg is not None and vgg_real is not None:
                with torch.no_grad():
                    vgg_fake = self.vgg(fake)
                loss = loss + ralsgan_discriminator_loss(
                    self.feature_discriminator(vgg_real).float(), self.feature_discriminator(vgg_fake).float()
                )
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._step(self.d_optimizer)
        return {"discriminator": float(loss.detach())}

    def _generator_adversarial(self, images: Tensor, inpainted: Tensor, vgg_real: Tensor | None) -> Tensor:
        assert self.discriminator is not None
        with self._autocast():
            with torch.no_grad():
                real_logits = self.discriminator(images).float()
            loss = ralsgan_generator_loss(real_logits, self.discriminator(inpainted).float())
            if self.feature_discriminator is not None and self.vgg is not None and vgg_real is not None:
                with torch.no_grad():
                    real_features = self.feature_discriminator(vgg_real).float()
                fake_features = self.feature_discriminator(self.vgg(inpainted)).float()
                loss = loss + ralsgan_generator_loss(real_features, fake_features)
        return loss
