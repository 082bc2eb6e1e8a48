"""GLCIC's completion network and its global + local discriminator (paper Table 1 and §3.2).

Completion network, width c (paper: 64), every layer convolution → batch norm → ReLU but the
last (sigmoid): 5×5 c; 3×3/2 2c; 3×3 2c; 3×3/2 4c; 3×3 4c; 3×3 4c; four 3×3 4c dilated at
2, 4, 8, 16; 3×3 4c; 3×3 4c; 4×4/½ deconvolution 2c; 3×3 2c; 4×4/½ deconvolution c; 3×3 c/2;
3×3 3. Input: the image with its holes painted the training set's mean colour, and the mask
(4 channels). In eval mode batch norm uses its running statistics, so batch items are
independent.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from restore.models.base import composite
from restore.models.glcic.config import GLCICConfig
from restore.nn.blocks import ConvBlock
from restore.nn.discriminators import GlobalLocalCritic, StridedCritic


def _conv(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> ConvBlock:
    padding = dilation * (kernel - 1) // 2 if stride == 1 else kernel // 2
    return ConvBlock(in_channels, out_channels, kernel, stride=stride, dilation=dilation, padding=padding, norm="batch", activation="relu")


def _deconv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class CompletionNetwork(nn.Module):
    """The completion network: masked image and mask in, a full image out.

    Args:
        config: width and dilation rates.

    Buffers:
        fill: the colour holes are painted before the network sees them (RGB in [0, 1]), the
            training set's mean pixel (:meth:`set_fill`); mid-grey until measured.
        fill_measured: 1 once :meth:`set_fill` has run (so a run started from these weights keeps them).

    Shape:
        image: (B, 3, H, W) in [0, 1] (hole content ignored); mask: (B, 1, H, W), 1 = hole;
        H and W multiples of 4. Returns ``predicted`` (B, 3, H, W) in [0, 1] and ``inpainted``
        (the composite).
    """

    def __init__(self, config: GLCICConfig) -> None:
        super().__init__()
        self.config = config
        c = config.width
        self.register_buffer("fill", torch.full((3,), 0.5))
        self.register_buffer("fill_measured", torch.zeros((), dtype=torch.uint8))
        self.body = nn.Sequential(
            _conv(4, c, 5),
            _conv(c, 2 * c, stride=2), _conv(2 * c, 2 * c),
            _conv(2 * c, 4 * c, stride=2), _conv(4 * c, 4 * c), _conv(4 * c, 4 * c),
            *[_conv(4 * c, 4 * c, dilation=rate) for rate in config.dilations],
            _conv(4 * c, 4 * c), _conv(4 * c, 4 * c),
            _deconv(4 * c, 2 * c), _conv(2 * c, 2 * c),
            _deconv(2 * c, c), _conv(c, max(c // 2, 1)),
            nn.Conv2d(max(c // 2, 1), 3, 3, padding=1),
        )  # fmt: skip

    @torch.no_grad()
    def set_fill(self, photos: list[np.ndarray]) -> None:
        """Measure the hole colour: the mean pixel of ``photos`` (uint8 RGB, any sizes), weighted by pixel count.

        Shape:
            photos[i]: (H, W, 3).
        """
        total = np.zeros(3, dtype=np.float64)
        count = 0
        for photo in photos:
            total += photo.reshape(-1, 3).sum(axis=0, dtype=np.float64)
            count += photo.shape[0] * photo.shape[1]
        if count == 0:
            raise ValueError("no pixels to measure the hole colour on")
        self.fill.copy_(torch.from_numpy(total / (255.0 * count)).to(self.fill))
        self.fill_measured.fill_(1)

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        holes = mask.to(image.dtype)
        painted = image * (1.0 - holes) + self.fill.to(image.dtype).view(1, 3, 1, 1) * holes
        predicted = torch.sigmoid(self.body(torch.cat([painted, holes], dim=1)))
        return {"predicted": predicted, "inpainted": composite(predicted, image, holes)}


def _critic(config: GLCICConfig, layers: int, size: int) -> StridedCritic:
    c = config.critic_width
    widths = tuple(c * min(2**i, 8) for i in range(layers))
    return StridedCritic(3, widths, size, out_features=config.features, kernel=5, norm="batch", activation="relu")


class GLCICDiscriminator(GlobalLocalCritic):
    """The global and local discriminators joined into one real/fake decision.

    The global one sees the whole image (resized to ``global_size`` when the crop differs), the
    local one a ``local_size``² window centred on each sample's hole; the two ``features``-d
    outputs, each through a ReLU, are concatenated into one linear logit.

    Shape:
        image: (B, 3, H, W) in [−1, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 1).
    """

    def __init__(self, config: GLCICConfig) -> None:
        super().__init__(
            _critic(config, config.global_layers, config.global_size),
            _critic(config, config.local_layers, config.local_size),
            config.local_size,
            joint_features=2 * config.features,
            global_size=config.global_size,
            feature_activation=nn.ReLU(),
        )
