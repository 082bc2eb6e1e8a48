"""Shared discriminators: shapes, norms, CSA-compatible weights, and the hole-box crops."""

from __future__ import annotations

import pytest
import torch

from restore.nn.blocks import NORMS, ConvBlock, LayerNorm2d, ResizeConv
from restore.nn.discriminators import (
    FeaturePatchDiscriminator,
    GlobalLocalCritic,
    PatchDiscriminator,
    StridedCritic,
    crop_boxes,
    hole_boxes,
)


@pytest.mark.parametrize("norm", NORMS)
def test_patch_discriminator_shapes_for_every_norm(norm: str) -> None:
    d = PatchDiscriminator(6, 8, layers=3, norm=norm)
    assert d(torch.rand(2, 6, 64, 64)).shape == (2, 1, 6, 6)
    assert PatchDiscriminator(3, 8, layers=2, norm=norm)(torch.rand(1, 3, 64, 48)).shape == (1, 1, 14, 10)
    if norm == "spectral":
        assert any("parametrizations" in key for key in d.state_dict())


def test_patch_discriminator_keeps_the_keys_of_csa_checkpoints() -> None:
    """Checkpoints written before the move (CSA's Table-4 discriminator) load into the shared class."""
    keys = set(PatchDiscriminator(3, 64).state_dict())
    assert keys == {f"body.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias")}
    assert set(FeaturePatchDiscriminator(512).state_dict()) == {f"body.{i}.{p}" for i in (0, 2, 5) for p in ("weight", "bias")}
    caps = [m.out_channels for m in PatchDiscriminator(3, 64).modules() if isinstance(m, torch.nn.Conv2d)]
    assert caps == [64, 128, 256, 512, 1]


def test_strided_critics_of_deepfill_and_glcic_shapes() -> None:
    local = StridedCritic(3, (64, 128, 256, 512), input_size=128)  # DeepFill v1's local critic
    assert local(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    glcic = StridedCritic(3, (8, 16), input_size=16, out_features=32, norm="batch", activation="relu")
    assert glcic(torch.rand(2, 3, 16, 16)).shape == (2, 32)
    with pytest.raises(ValueError, match="128² inputs"):
        local(torch.rand(1, 3, 64, 64))


def test_hole_boxes_centre_on_the_hole_and_stay_inside() -> None:
    mask = torch.zeros(3, 1, 64, 64)
    mask[0, :, 20:30, 30:40] = 1  # centre (25, 35)
    mask[1, :, 0:4, 60:64] = 1  # at the corner: clamped
    boxes = hole_boxes(mask, 16)  # sample 2 has no hole: the centred box
    assert boxes.tolist() == [[17, 27], [0, 48], [24, 24]]
    crops = crop_boxes(torch.arange(64 * 64.0).view(1, 1, 64, 64).expand(3, 1, 64, 64), boxes, 16)
    assert crops.shape == (3, 1, 16, 16) and crops[0, 0, 0, 0].item() == 17 * 64 + 27
    with pytest.raises(ValueError, match="does not fit"):
        hole_boxes(mask, 65)


def test_global_local_critic_apart_and_joint() -> None:
    image, mask = torch.rand(2, 3, 32, 32, requires_grad=True), torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:16, 8:16] = 1
    apart = GlobalLocalCritic(StridedCritic(3, (4, 8), 32), StridedCritic(3, (4, 8), 16), 16)
    global_score, local_score = apart(image, mask)
    assert global_score.shape == local_score.shape == (2, 1)
    joint = GlobalLocalCritic(StridedCritic(3, (4,), 32, out_features=5), StridedCritic(3, (4,), 16, out_features=7), 16, joint_features=12)
    decision = joint(image, mask)
    assert decision.shape == (2, 1)
    decision.sum().backward()
    assert image.grad is not None and image.grad[:, :, 8:16, 8:16].abs().sum() > 0  # the local window is differentiable


def test_blocks() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert ConvBlock(3, 8, 3, stride=2, norm="instance", activation="lrelu")(x).shape == (2, 8, 8, 8)
    assert ConvBlock(3, 8, 3, dilation=4, padding_mode="replicate")(x).shape == (2, 8, 16, 16)
    assert ResizeConv(3, 4)(x).shape == (2, 4, 32, 32)
    normed = LayerNorm2d(3)(x * 5 + 2)
    assert normed.mean(dim=(1, 2, 3)).abs().max() < 1e-5 and (normed.std(dim=(1, 2, 3), unbiased=False) - 1).abs().max() < 1e-3
    with pytest.raises(ValueError, match="unknown norm"):
        ConvBlock(3, 8, norm="group")
    with pytest.raises(ValueError, match="unknown activation"):
        ConvBlock(3, 8, activation="swish")
