"""GLCIC's three training phases on the shared GAN trainer (:class:`~restore.models.trainer.GANTrainer`).

Phase 1 (``generator_steps``): the completion network alone on the hole's squared error
(:func:`~restore.losses.reconstruction.hole_squared_error`). Phase 2 (``discriminator_steps``):
the joint global + local discriminator alone, the completion network frozen. Phase 3: both, the
completion network on the squared error plus α times the GAN term. The discriminators see the
composite (the network's fill pasted into the real image), never the raw output (the public
PyTorch port's otenim/GLCIC-PyTorch#20), and the real image with the same mask, so the local
window of a real and a fake sample is the same place. Every sample has its own hole and window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from restore.losses.adversarial import (
    bce_discriminator_loss,
    bce_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from restore.losses.reconstruction import hole_squared_error
from restore.models.glcic.config import GLCICConfig
from restore.models.glcic.networks import CompletionNetwork, GLCICDiscriminator
from restore.models.trainer import DISCRIMINATOR, GENERATOR, JOINT, Batch, GANTrainer, Term

_DISCRIMINATOR_LOSSES = {"lsgan": lsgan_discriminator_loss, "bce": bce_discriminator_loss}
_GENERATOR_LOSSES = {"lsgan": lsgan_generator_loss, "bce": bce_generator_loss}


def _signed(image: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1], the range the discriminators see."""
    return image * 2.0 - 1.0


class GLCICTrainer(GANTrainer):
    """One GLCIC run: the completion network and the joint global + local discriminator.

    Args:
        config: the method's hyper-parameters.
        device: where to train.
        vgg_weights: unused (GLCIC has no VGG loss); part of the trainer contract.
        bf16: bfloat16 autocast for the forward passes.
    """

    name = "glcic"
    channels_last = True

    def __init__(self, config: GLCICConfig, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None, bf16: bool = False) -> None:
        super().__init__(config, device=device, vgg_weights=vgg_weights, bf16=bf16)
        self.generator = self.add_module("generator", CompletionNetwork(config), average=config.ema_decay, own_statistics=True)
        self.discriminator = self.add_module("discriminator", GLCICDiscriminator(config))
        betas = (config.beta1, config.beta2)
        self.add_optimizer("generator", self.generator.parameters(), config.lr, betas)
        self.add_optimizer("discriminator", self.discriminator.parameters(), config.lr, betas)

    @classmethod
    def describe_losses(cls, config: Mapping[str, Any]) -> str:
        """GLCIC's losses and phases in words (model cards)."""
        gan = {"lsgan": "least squares GAN", "bce": "cross-entropy GAN"}[config["gan_loss"]]
        first, second = config["generator_steps"], config["generator_steps"] + config["discriminator_steps"]
        return (
            f"hole squared error (summed over RGB, per hole pixel) and {gan} ×{config['adversarial_weight']} from one "
            f"global ({config['global_layers']} layers) + local ({config['local_size']}² window, {config['local_layers']} layers) "
            f"decision on the composite; phases: completion network alone to step {first}, discriminators alone to "
            f"step {second}, both after"
        )

    def observe_photos(self, photos: list[np.ndarray]) -> None:
        """Paint holes the training photos' mean colour, unless the weights the run starts from measured it already."""
        for name in ("generator", "generator_ema"):
            module = self._modules.get(name)
            network = getattr(module, "module", module)
            if network is not None and not int(network.fill_measured):
                network.set_fill(photos)

    def phase(self, step: int) -> str:
        """The completion network alone, then the discriminators alone, then both (by step)."""
        second, third = self.config.phase_bounds()
        if step < second:
            return GENERATOR
        return DISCRIMINATOR if step < third else JOINT

    def train_step(self, step: int, batches: Sequence[Batch]) -> dict[str, float]:
        """The shared step, then, after a generator update, the moving average's batch-norm
        statistics: the average runs on the step's batch in training mode (no gradients), so its
        running means and variances are those of its own weights (copied ones cost 0.06 against
        0.04 hole error at step 1,500 of the 32² run)."""
        losses = super().train_step(step, batches)
        average = self.average("generator")
        if average is not None and self.phase(step) != DISCRIMINATOR:
            images, masks = (tensor.to(self.device) for tensor in batches[-1])
            with torch.no_grad(), self.autocast():
                average.module.train()
                average.module(images, masks)
                average.module.eval()
        return losses

    def _decision(self, image: Tensor, masks: Tensor) -> Tensor:
        with self.autocast():
            return self.discriminator(_signed(image), masks).float()

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """The joint decision on real images and on composites, with the same masks."""
        loss = _DISCRIMINATOR_LOSSES[self.config.gan_loss]
        return {"gan_discriminator": (1.0, loss(self._decision(images, masks), self._decision(out["inpainted"].float(), masks)))}

    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """The hole's squared error; in phase 3 also α times the GAN term on the composite."""
        terms: dict[str, Term] = {"hole_mse": (1.0, hole_squared_error(out["predicted"].float(), images, masks))}
        if phase == JOINT:
            adversarial = _GENERATOR_LOSSES[self.config.gan_loss](self._decision(out["inpainted"].float(), masks))
            terms["adversarial"] = (self.config.adversarial_weight, adversarial)
        return terms
