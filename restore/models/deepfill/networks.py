"""DeepFill v1's generator: a coarse network, then a refinement network with contextual attention.

Layer by layer as the reference code (``generative_inpainting`` v1.0.0, ``build_inpaint_net``):
zero "same" padding, ELU after every convolution but the last of each stage (and a ReLU before
the attention, which makes the matched features non-negative), up-sampling by nearest resize and
a 3×3 convolution, both stages' outputs clipped to [−1, 1]. Input: the image in [−1, 1] with its
holes zeroed, a channel of ones and the mask (5 channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.models.deepfill.config import DeepFillConfig
from restore.nn.blocks import ConvBlock, ResizeConv
from restore.nn.contextual_attention import ContextualAttention

DILATIONS = (2, 4, 8, 16)


def _conv(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1, activation: str = "elu") -> ConvBlock:
    return ConvBlock(in_channels, out_channels, kernel, stride=stride, dilation=dilation, activation=activation)


def _up(in_channels: int, out_channels: int) -> ResizeConv:
    return ResizeConv(in_channels, out_channels, activation="elu")


def _dilated(channels: int) -> list[nn.Module]:
    return [_conv(channels, channels, dilation=rate) for rate in DILATIONS]


def _decoder(in_channels: int, c: int) -> nn.Sequential:
    """4c at 1/4 resolution -> 3 channels at full resolution (both stages end like this)."""
    return nn.Sequential(
        _conv(in_channels, 4 * c), _conv(4 * c, 4 * c),
        _up(4 * c, 2 * c), _conv(2 * c, 2 * c),
        _up(2 * c, c), _conv(c, max(c // 2, 1)),
        _conv(max(c // 2, 1), 3, activation="none"),
    )  # fmt: skip


class DeepFillGenerator(nn.Module):
    """Coarse network + refinement network with a dilated branch and a contextual-attention branch.

    Args:
        config: the method's hyper-parameters (``width`` = the paper's cnum).

    Shape:
        image: (B, 3, H, W) in [0, 1] (holes ignored); mask: (B, 1, H, W), 1 = hole; H and W
        multiples of ``config.multiple`` (8). Returns ``coarse``, ``predicted`` and
        ``inpainted`` (B, 3, H, W) in [0, 1], and ``offsets`` (B, 2, H/8, W/8): for each
        position of the attention's grid, (dy, dx) to the background patch it drew most from.
    """

    def __init__(self, config: DeepFillConfig) -> None:
        super().__init__()
        self.config = config
        c = config.width
        self.coarse = nn.Sequential(
            _conv(5, c, 5), _conv(c, 2 * c, stride=2), _conv(2 * c, 2 * c),
            _conv(2 * c, 4 * c, stride=2), _conv(4 * c, 4 * c), _conv(4 * c, 4 * c),
            *_dilated(4 * c), _decoder(4 * c, c),
        )  # fmt: skip
        self.refine_dilated = nn.Sequential(
            _conv(5, c, 5), _conv(c, c, stride=2), _conv(c, 2 * c),
            _conv(2 * c, 2 * c, stride=2), _conv(2 * c, 4 * c), _conv(4 * c, 4 * c), *_dilated(4 * c),
        )  # fmt: skip
        self.refine_attention_encoder = nn.Sequential(
            _conv(5, c, 5), _conv(c, c, stride=2), _conv(c, 2 * c),
            _conv(2 * c, 4 * c, stride=2), _conv(4 * c, 4 * c), _conv(4 * c, 4 * c, activation="relu"),
        )  # fmt: skip
        self.attention = ContextualAttention(rate=config.attention_rate, softmax_scale=config.softmax_scale, fuse=config.fuse)
        self.refine_attention_decoder = nn.Sequential(_conv(4 * c, 4 * c), _conv(4 * c, 4 * c))
        self.refine_decoder = _decoder(8 * c, c)

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        multiple = self.config.multiple
        if image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise ValueError(f"DeepFill needs sides that are multiples of {multiple}, got {tuple(image.shape[-2:])}")
        mask = mask.to(image.dtype)
        known = 1.0 - mask
        signed = (image * 2.0 - 1.0) * known
        ones = torch.ones_like(mask)
        coarse = self.coarse(torch.cat([signed, ones, mask], dim=1)).clamp(-1.0, 1.0)
        stage2 = torch.cat([coarse * mask + signed * known, ones, mask], dim=1)
        dilated = self.refine_dilated(stage2)
        features = self.refine_attention_encoder(stage2)
        hole = F.max_pool2d(mask, 4)  # a 1/4-resolution position is a hole when any of its pixels is
        attended, offsets = self.attention(features, hole, return_offsets=True)
        attended = self.refine_attention_decoder(attended)
        refined = self.refine_decoder(torch.cat([dilated, attended.to(dilated.dtype)], dim=1)).clamp(-1.0, 1.0)
        coarse01, predicted = (coarse + 1.0) / 2.0, (refined + 1.0) / 2.0
        return {
            "coarse": coarse01,
            "predicted": predicted,
            "inpainted": predicted * mask + image * known,
            "offsets": offsets,
        }
