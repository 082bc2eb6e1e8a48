"""DeepFill v1's generator: a coarse network, then a refinement network with contextual attention.

Layer by layer as the reference code (``generative_inpainting`` v1.0.0, ``build_inpaint_net``):
zero "same" padding, ELU after every convolution but the last of each stage (and a ReLU before
the attention, which makes the matched features non-negative), up-sampling by nearest resize and
a 3×3 convolution, both stages' outputs clipped to [−1, 1]. Input: the image in [−1, 1] with its
holes zeroed, a channel of ones and the mask (5 channels).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.models.deepfill.config import DeepFillConfig
from restore.nn.blocks import ConvBlock, ResizeConv
from restore.nn.contextual_attention import ContextualAttention

DILATIONS = (2, 4, 8, 16)
#: How far (in cells of the attention's grid, 8 pixels) the refinement's decoder carries an attention
#: output: 4 convolutions at 1/4 resolution, 2 at 1/2 and 3 at full resolution reach 5.75 positions
#: at 1/4 resolution, and each position takes the pastes of the queries up to one cell away; one more
#: cell for safety. Outside it the attention output cannot reach a hole pixel.
ATTENTION_REACH = 5
#: Rows beyond a strip that its layers read: the encoders reach 7 full-resolution rows, the decoders
#: (with the attention branch's two convolutions) 6 rows at 1/4 resolution (24 full ones); 32 (a
#: multiple of 8, so strips stay aligned) covers both.
STRIP_HALO = 32


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


def _rows_of(x: Tensor) -> Callable[[int, int], Tensor]:
    """``rows(top, bottom)`` -> those rows of ``x`` (B, C, bottom - top, W)."""
    return lambda top, bottom: x[..., top:bottom, :]


class DeepFillGenerator(nn.Module):
    """Coarse network + refinement network with a dilated branch and a contextual-attention branch.

    Args:
        config: the method's hyper-parameters (``width`` = the paper's cnum).

    Shape:
        image: (B, 3, H, W) in [0, 1] (holes ignored); mask: (B, 1, H, W), 1 = hole; H and W
        multiples of ``config.multiple`` (8). Returns ``coarse``, ``predicted`` and
        ``inpainted`` (training mode only) (B, 3, H, W) in [0, 1], and ``offsets`` (B, 2, H/8, W/8): for each
        position of the attention's grid, (dy, dx) to the background patch it drew most from.
        In eval mode ``predicted`` is computed faithfully only where it can reach a hole (within
        ``ATTENTION_REACH`` cells), and inference composites it with the known pixels itself.
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
        #: In eval mode, attend only from queries this close to a hole (None: every query).
        self.attention_margin: int | None = ATTENTION_REACH
        #: In eval mode, images of more pixels run their full- and 1/2-resolution layers in strips
        #: of ``strip_rows`` rows (a multiple of 8): those layers' memory is then a strip's, not the image's.
        self.strip_pixels = 1024 * 1024
        self.strip_rows = 256
        for module in self.modules():
            if isinstance(module, nn.ELU):
                module.inplace = True  # the same values, without a second copy of every activation

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        multiple = self.config.multiple
        if image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise ValueError(f"DeepFill needs sides that are multiples of {multiple}, got {tuple(image.shape[-2:])}")
        height = image.shape[-2]
        striped = not self.training and image.shape[-2] * image.shape[-1] > self.strip_pixels and height > self.strip_rows
        mask = mask.to(image.dtype)

        def signed(top: int, bottom: int) -> Tensor:
            """Rows of the image in [-1, 1] with the holes zeroed (made per strip: no whole-image copy)."""
            return (image[..., top:bottom, :] * 2.0 - 1.0) * (1.0 - mask[..., top:bottom, :])

        def stage1_input(top: int, bottom: int) -> Tensor:
            hole = mask[..., top:bottom, :]
            return torch.cat([signed(top, bottom), torch.ones_like(hole), hole], dim=1)

        coarse_features = _rows_of(self.coarse[4:-1](self._encode(self.coarse[:4], stage1_input, height, striped)))
        coarse = self._decode(self.coarse[-1], coarse_features, height // 4, striped).clamp(-1.0, 1.0)
        del coarse_features  # 1/4-resolution features: freed before the second stage

        def stage2_input(top: int, bottom: int) -> Tensor:
            hole = mask[..., top:bottom, :]
            filled = coarse[..., top:bottom, :] * hole + signed(top, bottom)
            return torch.cat([filled, torch.ones_like(hole), hole], dim=1)

        features = self.refine_attention_encoder[4:](self._encode(self.refine_attention_encoder[:4], stage2_input, height, striped))
        hole = F.max_pool2d(mask, 4)  # a 1/4-resolution position is a hole when any of its pixels is
        # In eval mode only what reaches the hole matters: queries far from it are skipped
        # (training needs every query: the known-pixel L1 reads the whole output).
        margin = None if self.training else self.attention_margin
        attended, offsets = self.attention(features, hole, return_offsets=True, query_margin=margin)
        del features
        # The dilated branch after the attention (it does not depend on it): its 1/4-resolution map
        # is then not held while the attention works.
        dilated = self.refine_dilated[4:](self._encode(self.refine_dilated[:4], stage2_input, height, striped))

        def merged(top: int, bottom: int) -> Tensor:
            decoded = self.refine_attention_decoder(attended[..., top:bottom, :])
            return torch.cat([dilated[..., top:bottom, :], decoded.to(dilated.dtype)], dim=1)

        refined = self._decode(self.refine_decoder, merged, height // 4, striped).clamp(-1.0, 1.0)
        if torch.is_grad_enabled():
            out = {"coarse": (coarse + 1.0) / 2.0, "predicted": (refined + 1.0) / 2.0, "offsets": offsets}
        else:  # in place: at 4096² each of these is 100 MB
            out = {"coarse": coarse.add_(1.0).div_(2.0), "predicted": refined.add_(1.0).div_(2.0), "offsets": offsets}
        if self.training:  # the critics' input; inference composites by itself (exactly, with torch.where)
            out["inpainted"] = out["predicted"] * mask + image * (1.0 - mask)
        return out

    def _encode(self, layers: nn.Module, make_input: Callable[[int, int], Tensor], height: int, striped: bool) -> Tensor:
        """Full-resolution input -> 1/4-resolution features, whole or in strips of rows (with a halo that
        covers the layers' reach, so the strips' rows equal the whole computation's).

        Shape:
            make_input(top, bottom): (B, 5, bottom - top, W); returns (B, C, H/4, W/4).
        """
        if not striped:
            return layers(make_input(0, height))
        out = None
        for start in range(0, height, self.strip_rows):
            stop = min(start + self.strip_rows, height)
            top, bottom = max(start - STRIP_HALO, 0), min(stop + STRIP_HALO, height)
            piece = layers(make_input(top, bottom))[..., (start - top) // 4 : (stop - top) // 4, :]
            if out is None:
                out = piece.new_empty((*piece.shape[:2], height // 4, piece.shape[-1]))
            out[..., start // 4 : stop // 4, :] = piece
        assert out is not None
        return out

    def _decode(self, layers: nn.Module, make_input: Callable[[int, int], Tensor], height: int, striped: bool) -> Tensor:
        """1/4-resolution features -> full-resolution output, whole or in strips of rows (as :meth:`_encode`).

        Shape:
            make_input(top, bottom): (B, C, bottom - top, W/4), rows of the 1/4-resolution input
            (``height`` of them); returns (B, 3, 4·height, W).
        """
        if not striped:
            return layers(make_input(0, height))
        rows, halo = self.strip_rows // 4, STRIP_HALO // 4
        out = None
        for start in range(0, height, rows):
            stop = min(start + rows, height)
            top, bottom = max(start - halo, 0), min(stop + halo, height)
            piece = layers(make_input(top, bottom))[..., (start - top) * 4 : (stop - top) * 4, :]
            if out is None:
                out = piece.new_empty((*piece.shape[:2], height * 4, piece.shape[-1]))
            out[..., start * 4 : stop * 4, :] = piece
        assert out is not None
        return out
