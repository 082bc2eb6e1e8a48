"""Relativistic-average LSGAN against its definition."""

from __future__ import annotations

import pytest
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


def test_wgan_hinge_lsgan_and_cross_entropy_on_known_scores() -> None:
    import torch.nn.functional as F

    from restore.losses.adversarial import (
        bce_discriminator_loss,
        bce_generator_loss,
        hinge_discriminator_loss,
        hinge_generator_loss,
        lsgan_discriminator_loss,
        lsgan_generator_loss,
        wgan_discriminator_loss,
        wgan_generator_loss,
    )

    real, fake = torch.tensor([[2.0], [0.5]]), torch.tensor([[-0.5], [1.5]])
    assert wgan_discriminator_loss(real, fake).item() == pytest.approx(0.5 - 1.25)
    assert wgan_generator_loss(fake).item() == pytest.approx(-0.5)
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0.5 + 2.5) / 2)
    assert hinge_generator_loss(fake).item() == pytest.approx(-0.5)
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx((1 + 0.25) / 2 + (0.25 + 2.25) / 2)
    assert lsgan_generator_loss(fake).item() == pytest.approx((2.25 + 0.25) / 2)
    assert bce_discriminator_loss(real, fake).item() == pytest.approx(float(-F.logsigmoid(real).mean() - F.logsigmoid(-fake).mean()))
    assert bce_generator_loss(fake).item() == pytest.approx(float(-F.logsigmoid(fake).mean()))


class _LinearCritic(torch.nn.Module):
    """D(x) = Σ w·x per sample: its input gradient is w everywhere, whatever the interpolate."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(dim=1)


def test_gradient_penalty_unmasked_and_masked_against_its_formula() -> None:
    from restore.losses.adversarial import gradient_penalty

    critic = _LinearCritic((3, 8, 8))
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    w = critic.weight.detach()
    unmasked = gradient_penalty(critic, real, fake)
    assert unmasked.item() == pytest.approx(float((w.pow(2).sum().sqrt() - 1) ** 2), rel=1e-5)
    mask = torch.zeros(4, 1, 8, 8)
    mask[:, :, 2:5, 3:7] = 1
    masked = gradient_penalty(critic, real, fake, mask)
    assert masked.item() == pytest.approx(float(((w.pow(2) * mask[0]).sum().sqrt() - 1) ** 2), rel=1e-5)
    masked.backward()  # create_graph: the penalty trains the critic
    assert critic.weight.grad is not None and bool(critic.weight.grad[:, :2].eq(0).all()) and critic.weight.grad.abs().sum() > 0


def test_gradient_penalty_is_zero_for_a_one_lipschitz_critic_and_uses_the_compiled_op() -> None:
    from restore.losses.adversarial import gradient_penalty
    from restore.ops import has_ops

    critic = _LinearCritic((1, 4, 4))
    with torch.no_grad():
        critic.weight.fill_(0.25)  # ‖w‖ = 1
    real, fake = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    if has_ops():
        import restore.losses.adversarial as adversarial

        calls = []
        original = adversarial.masked_gradient_penalty
        adversarial.masked_gradient_penalty = lambda g, m: calls.append(1) or original(g, m)
        try:
            gradient_penalty(critic, real, fake)
        finally:
            adversarial.masked_gradient_penalty = original
        assert calls == [1]


def test_masked_ralsgan_scores_only_the_patches_that_see_the_hole() -> None:
    from restore.losses.adversarial import (
        masked_ralsgan_discriminator_loss,
        masked_ralsgan_generator_loss,
        patches_in,
    )

    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 0:4, 0:4] = 1  # the first cell of a 4×4 grid
    where = patches_in(mask, torch.zeros(2, 1, 4, 4))
    assert where.sum().item() == 1 and where[0, 0, 0, 0].item() == 1
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    r, f = real[0, 0, 0, 0], fake[0, 0, 0, 0]
    assert masked_ralsgan_discriminator_loss(real, fake, where).item() == pytest.approx(float((r - f - 1) ** 2 + (f - r + 1) ** 2))
    assert masked_ralsgan_generator_loss(real, fake, where).item() == pytest.approx(float((f - r - 1) ** 2 + (r - f + 1) ** 2))
    # no hole anywhere: every score, as the plain loss
    nowhere = torch.zeros_like(where)
    assert masked_ralsgan_discriminator_loss(real, fake, nowhere).item() == pytest.approx(ralsgan_discriminator_loss(real, fake).item())
