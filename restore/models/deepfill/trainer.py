"""DeepFill v1's losses on the shared GAN trainer (:class:`~restore.models.trainer.GANTrainer`).

Generator (weights in :class:`DeepFillConfig`, the reference code's): the spatially discounted
L1 on the hole of both stages (the coarse one weighted ``coarse_weight``), an L1 on the known
pixels of both stages, and WGAN from the global critic (whole composited image) and the local
critic (a ``local_size``² window centred on each sample's hole). Critics: WGAN with the gradient
penalty masked to the hole (DeepFill v1 eq. 3, :func:`restore.ops.masked_gradient_penalty`),
λ = 10, five critic updates per generator update, each on a fresh batch and fresh masks. Every
sample has its own mask and its own window (the reference code used one per batch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from restore.losses.adversarial import (
    gradient_penalty,
    wgan_discriminator_loss,
    wgan_generator_loss,
)
from restore.losses.reconstruction import spatial_discount, weighted_l1_loss
from restore.models.deepfill.config import DeepFillConfig
from restore.models.deepfill.networks import DeepFillGenerator
from restore.models.trainer import GENERATOR, JOINT, GANTrainer, Term
from restore.nn.discriminators import StridedCritic, crop_boxes, hole_boxes


def _signed(image: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1], the range the critics see (and the reference code's)."""
    return image * 2.0 - 1.0


class DeepFillTrainer(GANTrainer):
    """One DeepFill v1 run: the generator, a global and a local WGAN critic.

    Args:
        config: the method's hyper-parameters.
        device: where to train.
        vgg_weights: unused (DeepFill has no VGG loss); part of the trainer contract.
        bf16: bfloat16 autocast for the forward passes (the attention runs in float32).
    """

    name = "deepfill"
    channels_last = True
    critic_steps = 5
    batches_per_step = 6

    def __init__(self, config: DeepFillConfig, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None, bf16: bool = False) -> None:
        super().__init__(config, device=device, vgg_weights=vgg_weights, bf16=bf16)
        self.generator = self.add_module("generator", DeepFillGenerator(config), average=config.ema_decay)
        width = config.critic_width
        self.local_critic = self.add_module("local_critic", StridedCritic(3, (width, 2 * width, 4 * width, 8 * width), config.local_size))
        self.global_critic = self.add_module("global_critic", StridedCritic(3, (width, 2 * width, 4 * width, 4 * width), config.global_size))
        betas = (config.beta1, config.beta2)
        self.add_optimizer("generator", self.generator.parameters(), config.lr, betas)
        self.add_optimizer("discriminator", [*self.local_critic.parameters(), *self.global_critic.parameters()], config.lr, betas)

    @classmethod
    def describe_losses(cls, config: Mapping[str, Any]) -> str:
        """DeepFill's generator losses and weights in words (model cards)."""
        return (
            f"spatially discounted hole L1 (γ {config['discount_gamma']}, weight {config['l1_weight']}) and known-pixel L1 "
            f"(weight {config['known_weight']}) on both stages (coarse ×{config['coarse_weight']}), "
            f"WGAN {config['adversarial_weight']} (global ×{config['global_weight']} + local {config['local_size']}² critics, "
            f"gradient penalty masked to the hole, λ {config['penalty_weight']}, 5 critic steps per generator step), "
            f"generator alone for the first {config['pretrain_steps']} steps"
        )

    def phase(self, step: int) -> str:
        """The generator alone on its L1 terms for ``pretrain_steps`` steps, then both."""
        return GENERATOR if step < self.config.pretrain_steps else JOINT

    def _global(self, signed: Tensor) -> Tensor:
        """The global critic's score of [-1, 1] images, resized to its side when the crop differs."""
        size = self.config.global_size
        if signed.shape[-2:] != (size, size):
            signed = F.interpolate(signed, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.global_critic(signed)

    def _scored(self, critic: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """``critic`` under the trainer's autocast, returning float32 scores."""

        def score(x: Tensor) -> Tensor:
            with self.autocast():
                return critic(x).float()

        return score

    def _windows(self, masks: Tensor, *images: Tensor) -> list[Tensor]:
        boxes = hole_boxes(masks, self.config.local_size).to(masks.device)
        return [crop_boxes(image, boxes, self.config.local_size) for image in images]

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """WGAN of both critics on real and composited images, with the hole-masked gradient penalty."""
        config = self.config
        real, fake = _signed(images), _signed(out["inpainted"].float())
        real_local, fake_local, mask_local = self._windows(masks, real, fake, masks)
        global_score, local_score = self._scored(self._global), self._scored(self.local_critic)
        return {
            "wgan_global": (config.global_weight, wgan_discriminator_loss(global_score(real), global_score(fake))),
            "wgan_local": (1.0, wgan_discriminator_loss(local_score(real_local), local_score(fake_local))),
            "penalty_global": (config.penalty_weight, gradient_penalty(global_score, real, fake, masks)),
            "penalty_local": (config.penalty_weight, gradient_penalty(local_score, real_local, fake_local, mask_local)),
        }

    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """Discounted hole L1 and known-pixel L1 on both stages; WGAN of both critics after the pre-training."""
        config = self.config
        coarse, predicted = out["coarse"].float(), out["predicted"].float()
        discount = spatial_discount(masks, config.discount_gamma)
        known = 1.0 - masks
        terms: dict[str, Term] = {
            "l1": (config.l1_weight, config.coarse_weight * weighted_l1_loss(coarse, images, discount) + weighted_l1_loss(predicted, images, discount)),
            "known": (config.known_weight, config.coarse_weight * weighted_l1_loss(coarse, images, known) + weighted_l1_loss(predicted, images, known)),
        }
        if phase == JOINT:
            fake = _signed(out["inpainted"].float())
            (fake_local,) = self._windows(masks, fake)
            global_score, local_score = self._scored(self._global), self._scored(self.local_critic)
            adversarial = config.global_weight * wgan_generator_loss(global_score(fake)) + wgan_generator_loss(local_score(fake_local))
            terms["adversarial"] = (config.adversarial_weight, adversarial)
        return terms
