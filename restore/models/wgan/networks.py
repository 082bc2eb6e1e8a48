"""Gulrajani et al.'s 64² ResNet WGAN ("Good" generator and critic), as Vitoria et al. §3.1 describe it.

Generator: a linear map of z to a 4×4 map of 8·width channels, then one up-sampling residual
block per doubling (8w→8w, 8w→4w, 4w→2w, 2w→w at 64²), batch norm, ReLU, a 3×3 convolution
to RGB and tanh. Each block: BN → ReLU → nearest ×2 → conv 3×3 → BN → ReLU → conv 3×3, plus
a shortcut of nearest ×2 → conv 1×1. Critic: a 3×3 convolution to ``width`` channels, one
down-sampling residual block per halving to 4×4 (w→2w, 2w→4w, 4w→8w, 8w→8w), each
LN → ReLU → conv 3×3 → LN → ReLU → conv 3×3 → 2×2 mean-pool plus a shortcut of
conv 1×1 → mean-pool, layer norm over (C, H, W) with per-channel gain and bias
(:class:`~restore.nn.blocks.LayerNorm2d`; no batch norm, so the gradient penalty is per
sample), then a linear map of the 4×4 map to one score. At width 64: 8.54 M + 7.49 M parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.models.wgan.config import WGANConfig
from restore.nn.blocks import LayerNorm2d


def _channels(config: WGANConfig) -> list[int]:
    """Channels at 4×4, 8×8, … up to ``size``: 8w, then 8w, 4w, 2w, w for the last four levels."""
    levels = int(math.log2(config.size)) - 2  # up-samplings from 4×4
    ladder = [8, 4, 2, 1]
    return [8 * config.width] + [ladder[min(3, max(0, i - (levels - 4)))] * config.width for i in range(levels)]


class _UpBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        h = F.interpolate(F.relu(self.norm1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        return self.shortcut(up) + h


class _DownBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.norm2 = LayerNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        h = F.avg_pool2d(self.conv2(F.relu(self.norm2(h))), 2)
        return F.avg_pool2d(self.shortcut(x), 2) + h


class WGANGenerator(nn.Module):
    """z → an image.

    Shape:
        z: (B, latent); returns (B, 3, size, size) in [−1, 1].
    """

    def __init__(self, config: WGANConfig) -> None:
        super().__init__()
        self.config = config
        channels = _channels(config)
        self.project = nn.Linear(config.latent, 4 * 4 * channels[0])
        self.blocks = nn.Sequential(*[_UpBlock(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True)])
        self.norm = nn.BatchNorm2d(channels[-1])
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(z.shape[0], -1, 4, 4)
        x = self.blocks(x)
        return torch.tanh(self.to_rgb(F.relu(self.norm(x))))


class WGANCritic(nn.Module):
    """An image → one Wasserstein score (higher: more real).

    Shape:
        image: (B, 3, size, size) in [−1, 1]; returns (B,).
    """

    def __init__(self, config: WGANConfig) -> None:
        super().__init__()
        self.config = config
        channels = _channels(config)[::-1]  # w … 8w, 8w
        self.from_rgb = nn.Conv2d(3, channels[0], 3, padding=1)
        self.blocks = nn.Sequential(*[_DownBlock(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True)])
        self.score = nn.Linear(4 * 4 * channels[-1], 1)

    def forward(self, image: Tensor) -> Tensor:
        if image.shape[-2:] != (self.config.size, self.config.size):
            raise ValueError(f"the critic takes {self.config.size}² images, got {tuple(image.shape[-2:])}")
        x = self.blocks(self.from_rgb(image))
        return self.score(x.flatten(1)).squeeze(1)
