"""Relativistic-average LSGAN against its definition."""

from __future__ import annotations

import torch

from restore.losses.adversarial import ralsgan_discriminator_loss, ralsgan_generator_loss


def test_ralsgan_matches_the_formula_on_patch_logits() -> None:
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 1, 6, 6, generator=generator), torch.randn(4, 1, 6, 6, generator=generator)
    d = torch.mean((real - fake.mean() - 1) ** 2) + torch.mean((fake - real.mean() + 1) ** 2)
    g = torch.mean((fake - real.mean() - 1) ** 2) + torch.mean((real - fake.mean() + 1) ** 2)
    assert torch.allclose(ralsgan_discriminator_loss(real, fake), d)
    assert torch.allclose(ralsgan_generator_loss(real, fake), g)


def test_each_side_is_zero_where_it_wins() -> None:
    real = torch.full((2, 1, 5, 5), 0.25)
    assert ralsgan_discriminator_loss(real, real - 1).item() == 0.0  # reals one above the average fake
    assert ralsgan_generator_loss(real, real + 1).item() == 0.0  # fakes one above the average real
    assert ralsgan_generator_loss(real, real - 1).item() == 8.0


def test_generator_loss_pushes_fakes_up() -> None:
    real = torch.zeros(1, 1, 4, 4)
    fake = torch.zeros(1, 1, 4, 4, requires_grad=True)
    ralsgan_generator_loss(real, fake).backward()
    assert fake.grad is not None and bool((fake.grad < 0).all())
