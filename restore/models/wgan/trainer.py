"""The improved WGAN's training on the shared GAN trainer (:class:`~restore.models.trainer.GANTrainer`).

Per step: five critic updates, each on a fresh batch of real images and a fresh batch of
samples, on the Wasserstein loss plus λ times the gradient penalty at random interpolates over
the whole image (:func:`~restore.losses.adversarial.gradient_penalty` without a mask), then
one generator update on −D(G(z)). z ~ N(0, 1). The training loop's masks are ignored: the
model learns whole, undamaged images. The generator's moving average (our addition) keeps
batch-norm statistics of its own, refreshed on each generator step's samples.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from restore.losses.adversarial import (
    gradient_penalty,
    wgan_discriminator_loss,
    wgan_generator_loss,
)
from restore.models.base import Inpainter
from restore.models.trainer import DISCRIMINATOR, Batch, GANTrainer, Term
from restore.models.wgan.config import WGANConfig
from restore.models.wgan.networks import WGANCritic, WGANGenerator


class WGANTrainer(GANTrainer):
    """One improved-WGAN run: the generator and the critic.

    Args:
        config: the method's hyper-parameters.
        device: where to train.
        vgg_weights: unused (no VGG loss); part of the trainer contract.
        bf16: bfloat16 autocast for the forward passes.
    """

    name = "wgan"
    channels_last = True
    critic_steps = 5
    batches_per_step = 6

    def __init__(self, config: WGANConfig, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None, bf16: bool = False) -> None:
        super().__init__(config, device=device, vgg_weights=vgg_weights, bf16=bf16)
        self.generator = self.add_module("generator", WGANGenerator(config), average=config.ema_decay, own_statistics=True)
        self.critic = self.add_module("critic", WGANCritic(config))
        betas = (config.beta1, config.beta2)
        self.add_optimizer("generator", self.generator.parameters(), config.lr, betas)
        self.add_optimizer("discriminator", self.critic.parameters(), config.lr, betas)
        self._last_z: Tensor | None = None

    @classmethod
    def describe_losses(cls, config: Mapping[str, Any]) -> str:
        """The WGAN's losses in words (model cards)."""
        return (
            f"WGAN-GP on whole {config['size']}² images (unmasked gradient penalty, λ {config['penalty_weight']}, "
            f"5 critic updates per generator update, Adam {config['lr']} β ({config['beta1']}, {config['beta2']})); "
            f"inpainting by a {config['search_steps']}-step latent search (α {config['alpha']}, β {config['beta']}, "
            f"η {config['eta']}, {config['restarts']} restart(s))"
        )

    def train_step(self, step: int, batches: Sequence[Batch]) -> dict[str, float]:
        """The shared step (critic updates, then the generator's); then the moving average's
        batch-norm statistics on the generator step's z."""
        size = self.config.size
        for images, _ in batches:
            if images.shape[-2:] != (size, size):
                raise ValueError(f"the wgan trains on {size}² crops (its generator's size), got {tuple(images.shape[-2:])}: pass --size {size}")
        losses = super().train_step(step, batches)
        average = self.average("generator")
        if average is not None and self.phase(step) != DISCRIMINATOR and self._last_z is not None:
            with torch.no_grad(), self.autocast():
                average.module.train()
                average.module(self._last_z)
                average.module.eval()
        return losses

    def generate(self, images: Tensor, masks: Tensor) -> dict[str, Tensor]:
        """Samples from fresh z, as many as the batch has images (in [−1, 1])."""
        z = torch.randn(images.shape[0], self.config.latent, device=self.device)
        self._last_z = z
        return {"generated": self.generator(z)}

    def _score(self, image: Tensor) -> Tensor:
        with self.autocast():
            return self.critic(image).float()

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """Wasserstein loss on real images against samples, and the unmasked gradient penalty."""
        real, fake = images * 2.0 - 1.0, out["generated"].float()
        return {
            "wasserstein": (1.0, wgan_discriminator_loss(self._score(real), self._score(fake))),
            "penalty": (self.config.penalty_weight, gradient_penalty(self._score, real, fake)),
        }

    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """−D(G(z))."""
        return {"wgan": (1.0, wgan_generator_loss(self._score(out["generated"].float())))}

    def inpainter(self) -> Inpainter:
        """Copies of the generator (its moving average when kept) and the critic as a latent-search
        inpainter, channels-last as :func:`~restore.models.wgan.inpainter.load_wgan` makes them (so
        a shipped file restores exactly as the run does; the live networks keep their layout)."""
        from restore.models.wgan.inpainter import LatentSearchInpainter

        average = self.average("generator")
        generator = average.module if average is not None else self.generator
        copies = [copy.deepcopy(network).to(memory_format=torch.channels_last) for network in (generator, self.critic)]
        return LatentSearchInpainter(copies[0], copies[1], self.config, device=self.device, bf16=self.bf16)

    def sample(self, count: int, seed: int = 0) -> Tensor:
        """``count`` samples of the generator (its moving average when kept), eval mode, from z drawn by ``seed``.

        Shape:
            returns (count, 3, size, size) in [0, 1].
        """
        from restore.models.wgan.search import initial_latents

        average = self.average("generator")
        generator = average.module if average is not None else self.generator
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                return (generator(initial_latents(count, self.config.latent, seed, self.device)).float() + 1) * 0.5
        finally:
            generator.train(was_training)
