"""Perceptual, style and total-variation losses on cases with known values."""

from __future__ import annotations

import pytest
import torch

from restore.losses.perceptual import gram_matrix, masked_feature_l2, perceptual_loss, style_loss
from restore.losses.regularisers import total_variation


def test_gram_matrix_of_a_known_map() -> None:
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 3.0], [3.0, 9.0]]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(features), expected)


def test_perceptual_and_style_losses_weigh_taps() -> None:
    a = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)]
    b = [torch.ones(1, 2, 4, 4), torch.full((1, 3, 2, 2), 2.0)]
    assert perceptual_loss(a, b).item() == pytest.approx(1.0 + 2.0)
    assert perceptual_loss(a, b, weights=[0.5, 0.25], distance="mse").item() == pytest.approx(0.5 * 1 + 0.25 * 4)
    # Gram of a constant map c over C channels, H·W positions: every entry c²·H·W / (C·H·W) = c²/C
    assert style_loss(a, b).item() == pytest.approx(1 / 2 + 4 / 3)
    assert style_loss(a, a).item() == 0.0
    with pytest.raises(ValueError, match="2 weights for 1"):
        perceptual_loss(a[:1], b[:1], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="distance"):
        perceptual_loss(a, b, distance="l3")


def test_style_loss_ignores_where_a_texture_is() -> None:
    texture = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    shifted = torch.roll(texture, shifts=(3, 5), dims=(2, 3))
    assert style_loss([shifted], [texture]).item() == pytest.approx(0.0, abs=1e-7)
    assert perceptual_loss([shifted], [texture]).item() > 0.1


def test_masked_feature_l2_counts_masked_positions_only() -> None:
    features, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert masked_feature_l2(features, target, mask).item() == 1.0
    assert masked_feature_l2(features, target, torch.zeros_like(mask)).item() == 0.0


def test_total_variation_whole_and_in_the_hole() -> None:
    image = torch.zeros(1, 1, 4, 4)
    image[..., :, 2:] = 1.0  # one vertical edge between columns 1 and 2
    assert total_variation(image).item() == pytest.approx(4 / 12)
    assert total_variation(2 * image, squared=True).item() == pytest.approx(4 * 4 / 12)
    far = torch.zeros(1, 1, 4, 4)
    far[..., 3, 0] = 1  # a hole away from the edge: no difference touches it
    assert total_variation(image, far).item() == 0.0
    assert total_variation(image, far, dilate=2).item() > 0
    near = torch.zeros(1, 1, 4, 4)
    near[..., 0, 2] = 1
    assert total_variation(image, near).item() == pytest.approx(1 / 2)  # one of the two horizontal pairs at the pixel
