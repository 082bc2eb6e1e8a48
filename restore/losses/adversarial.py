"""Adversarial losses: relativistic-average LSGAN (CSA).

Each ``*_discriminator_loss`` takes critic outputs on real and fake samples
(any shape, e.g. patch logits (B, 1, h, w)) and returns a scalar; each
``*_generator_loss`` the generator's counterpart. Fake logits given to the
discriminator loss should come from detached fakes.
"""

from __future__ import annotations

from torch import Tensor


def ralsgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic-average LSGAN (Jolicoeur-Martineau 2018), discriminator side.

    ``E[(C(r) - E C(f) - 1)²] + E[(C(f) - E C(r) + 1)²]``, means over batch and patches.
    """
    return ((real - fake.mean() - 1.0) ** 2).mean() + ((fake - real.mean() + 1.0) ** 2).mean()


def ralsgan_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic-average LSGAN, generator side: the labels of the two terms swap."""
    return ((fake - real.mean() - 1.0) ** 2).mean() + ((real - fake.mean() + 1.0) ** 2).mean()
