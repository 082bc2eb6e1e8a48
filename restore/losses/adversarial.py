"""Adversarial losses: WGAN (with the gradient penalty), hinge, LSGAN, cross-entropy, RaLSGAN.

Each ``*_discriminator_loss`` takes critic outputs on real and fake samples (any shape,
e.g. patch logits (B, 1, h, w) or scores (B, 1)) and returns a scalar to minimise; each
``*_generator_loss`` is the generator's counterpart. Fake outputs given to a discriminator
loss should come from detached fakes. Which paper uses which:

* WGAN-GP (Gulrajani et al. 2017): DeepFill v1 (gradient penalty masked to the hole), the
  improved WGAN of the latent-optimisation method (unmasked) — :func:`gradient_penalty`.
* hinge: DeepGIN's spectral-norm discriminators.
* LSGAN (Mao et al. 2017): GLCIC's CIFAR-scale seed; cross-entropy: the GLCIC paper.
* relativistic-average LSGAN (Jolicoeur-Martineau 2018): CSA.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from restore.ops import masked_gradient_penalty


def wgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Wasserstein critic loss: ``E[D(fake)] − E[D(real)]`` (the gradient penalty is added apart)."""
    return fake.mean() - real.mean()


def wgan_generator_loss(fake: Tensor) -> Tensor:
    """Wasserstein generator loss: ``−E[D(fake)]``."""
    return -fake.mean()


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge loss: ``E[relu(1 − D(real))] + E[relu(1 + D(fake))]``."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_generator_loss(fake: Tensor) -> Tensor:
    """Hinge generator loss: ``−E[D(fake)]``."""
    return -fake.mean()


def lsgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Least-squares GAN: ``E[(D(real) − 1)²] + E[D(fake)²]`` (labels 1 and 0)."""
    return ((real - 1.0) ** 2).mean() + (fake**2).mean()


def lsgan_generator_loss(fake: Tensor) -> Tensor:
    """Least-squares GAN, generator side: ``E[(D(fake) − 1)²]``."""
    return ((fake - 1.0) ** 2).mean()


def bce_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """The original GAN's cross-entropy on logits: ``−E[log σ(D(real))] − E[log(1 − σ(D(fake)))]``."""
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def bce_generator_loss(fake: Tensor) -> Tensor:
    """Cross-entropy generator loss, the non-saturating form: ``−E[log σ(D(fake))]``."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def ralsgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic-average LSGAN (Jolicoeur-Martineau 2018), discriminator side.

    ``E[(C(r) - E C(f) - 1)²] + E[(C(f) - E C(r) + 1)²]``, means over batch and patches.
    """
    return ((real - fake.mean() - 1.0) ** 2).mean() + ((fake - real.mean() + 1.0) ** 2).mean()


def ralsgan_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic-average LSGAN, generator side: the labels of the two terms swap."""
    return ((fake - real.mean() - 1.0) ** 2).mean() + ((real - fake.mean() + 1.0) ** 2).mean()


def patches_in(mask: Tensor, scores: Tensor) -> Tensor:
    """Which of a patch discriminator's outputs see a hole: the hole mask max-pooled to the
    scores' grid (a score's cell holds at least one hole pixel).

    Shape:
        mask: (B, 1, H, W), 1 = hole; scores: (B, C, h, w); returns (B, 1, h, w) float, 1 = sees the hole.
    """
    return F.adaptive_max_pool2d(mask.to(scores.dtype), scores.shape[-2:])


def masked_ralsgan_discriminator_loss(real: Tensor, fake: Tensor, where: Tensor) -> Tensor:
    """:func:`ralsgan_discriminator_loss` over the scores where ``where`` is 1 only (every score when none is).

    Shape:
        real, fake: (B, C, h, w); where: (B, 1, h, w); returns ().
    """
    weights = where.expand_as(real) if bool(where.any()) else torch.ones_like(real)
    mean = lambda x: (x * weights).sum() / weights.sum()  # noqa: E731
    return mean((real - mean(fake) - 1.0) ** 2) + mean((fake - mean(real) + 1.0) ** 2)


def masked_ralsgan_generator_loss(real: Tensor, fake: Tensor, where: Tensor) -> Tensor:
    """:func:`ralsgan_generator_loss` over the scores where ``where`` is 1 only (every score when none is)."""
    return masked_ralsgan_discriminator_loss(fake, real, where)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP's penalty ``E[(‖∇D(x̂)‖ − 1)²]`` at random interpolates, optionally masked to the hole.

    ``x̂ = α·real + (1 − α)·fake`` with one α ~ U[0, 1) per sample; the gradient of the critic's
    summed output with respect to ``x̂`` is taken with ``create_graph=True`` (so the penalty
    trains the critic) and reduced by :func:`restore.ops.masked_gradient_penalty` (the
    compiled kernel where there is one): the norm over the hole's pixels only when ``mask``
    is given (DeepFill v1, eq. 3), over every pixel otherwise. The weight λ (10 in both
    papers) is applied by the caller.

    Args:
        critic: maps a batch like ``real`` to its scores (any shape, summed).
        real: real samples.
        fake: generated samples (detached here).
        mask: 1 = hole; None for the unmasked penalty.
        generator: RNG for α (None: torch's default).

    Shape:
        real, fake: (B, C, H, W); mask: (B, 1, H, W); returns ().
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    alpha = torch.rand((real.shape[0], 1, 1, 1), device=real.device, generator=generator, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    weights = torch.ones_like(grad[:, :1]) if mask is None else mask.to(grad.dtype)
    return masked_gradient_penalty(grad.float(), weights.float())
