"""A whole method in one test module: config, generator, trainer — registered only by the tests.

It exercises everything a new method folder will use and nothing else: the record's
strings (config, network, trainer), the shared network inpainter and loader, the GAN
trainer base with a WGAN critic and the masked gradient penalty, several critic steps on
fresh batches, phases by step (generator alone, then critic alone, then both, as GLCIC),
its own learning rate per optimiser (as DeepGIN), and a critic that ships with the
generator (as the latent-optimisation WGAN's). Imported as ``fake_method`` (``tests/`` is
on ``sys.path``; Dask workers are spawned with the same path).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from restore.losses.adversarial import (
    gradient_penalty,
    wgan_discriminator_loss,
    wgan_generator_loss,
)
from restore.losses.reconstruction import l1_loss
from restore.models.registry import Method
from restore.models.trainer import DISCRIMINATOR, GENERATOR, JOINT, GANTrainer, Term
from restore.nn.blocks import ConvBlock
from restore.nn.discriminators import PatchDiscriminator


@dataclass(frozen=True)
class FakeConfig:
    """A tiny method: two convolutions and a critic.

    Attributes:
        width: generator channels.
        generator_steps: steps that train the generator alone (phase 1).
        critic_only_steps: then steps that train the critic alone (phase 2); both after.
        lr, critic_lr: Adam base rates.
        adversarial_weight: WGAN weight in the generator's loss.
        penalty_weight: λ of the masked gradient penalty.
        ema_decay: moving average of the generator (0: none).
    """

    width: int = 8
    generator_steps: int = 1
    critic_only_steps: int = 1
    lr: float = 1e-3
    critic_lr: float = 4e-3
    adversarial_weight: float = 0.01
    penalty_weight: float = 10.0
    ema_decay: float = 0.9

    @property
    def multiple(self) -> int:
        return 4


class FakeGenerator(nn.Module):
    """Masked image and mask in, a fill out (a residual over the masked image), any multiple of 4."""

    def __init__(self, config: FakeConfig) -> None:
        super().__init__()
        self.config = config
        self.body = nn.Sequential(ConvBlock(4, config.width, 3, stride=2), nn.Upsample(scale_factor=2), nn.Conv2d(config.width, 3, 3, padding=1))

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        if image.shape[-1] % self.config.multiple or image.shape[-2] % self.config.multiple:
            raise ValueError(f"sides must be multiples of {self.config.multiple}")
        masked = image * (1 - mask)
        predicted = torch.sigmoid(self.body(torch.cat([masked * 2 - 1, mask], dim=1)))
        return {"predicted": predicted, "inpainted": mask * predicted + (1 - mask) * image}


class FakeTrainer(GANTrainer):
    """WGAN-GP with a masked penalty, 2 critic steps on fresh batches, three phases."""

    name = "fake"
    critic_steps = 2
    batches_per_step = 3

    def __init__(self, config: FakeConfig, device: str | torch.device = "cpu", vgg_weights: object = None, bf16: bool = False) -> None:
        super().__init__(config, device=device, vgg_weights=vgg_weights, bf16=bf16)
        self.generator = self.add_module("generator", FakeGenerator(config), average=config.ema_decay)
        self.critic = self.add_module("critic", PatchDiscriminator(3, 4, layers=1, norm="layer"))
        self.add_optimizer("generator", self.generator.parameters(), config.lr, (0.5, 0.9))
        self.add_optimizer("discriminator", self.critic.parameters(), config.critic_lr, (0.5, 0.9))

    def phase(self, step: int) -> str:
        if step < self.config.generator_steps:
            return GENERATOR
        if step < self.config.generator_steps + self.config.critic_only_steps:
            return DISCRIMINATOR
        return JOINT

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        fake = out["inpainted"]
        return {
            "wgan": (1.0, wgan_discriminator_loss(self.critic(images), self.critic(fake))),
            "penalty": (self.config.penalty_weight, gradient_penalty(self.critic, images, fake, masks)),
        }

    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        terms: dict[str, Term] = {"l1": (1.0, l1_loss(out["predicted"].float(), images, masks, 6.0))}
        if phase == JOINT:
            terms["adversarial"] = (self.config.adversarial_weight, wgan_generator_loss(self.critic(out["inpainted"])))
        return terms


#: The record the tests register (``register(FAKE, replace=True)`` or ``monkeypatch.setitem``).
FAKE = Method(
    "fake",
    "Test double: two convolutions and a WGAN critic",
    config="fake_method:FakeConfig",
    network="fake_method:FakeGenerator",
    trainer="fake_method:FakeTrainer",
    native_size=32,
    default_strategy="tile",
    ship_modules=("generator", "critic"),
    needs_weights=True,
    training_masks=("box", "freeform"),
    smoke_config={"width": 4},
)
