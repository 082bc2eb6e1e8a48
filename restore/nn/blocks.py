"""Convolution blocks and normalisations shared by the methods' networks.

``norm`` names are one vocabulary across the package: ``"instance"`` (no affine, as pix2pix
and CSA), ``"batch"``, ``"layer"`` (over channels and space, as the improved WGAN's critic:
:class:`LayerNorm2d`), ``"spectral"`` (spectral normalisation of the convolution's weight,
no normalisation layer: DeepGIN's discriminators) and ``"none"``. Layers that take no
normalisation get an ``nn.Identity`` in its place, so module indices (and state-dict
keys) do not depend on the choice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORMS: tuple[str, ...] = ("instance", "batch", "layer", "spectral", "none")
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "lrelu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "none": nn.Identity,
}


def check_norm(norm: str) -> str:
    """``norm`` if it is one of :data:`NORMS`, else a ``ValueError`` naming them."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
    return norm


class LayerNorm2d(nn.Module):
    """Layer normalisation over (C, H, W) of each sample, with a per-channel scale and shift.

    Shape:
        x: (B, C, H, W); returns (B, C, H, W).
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x, x.shape[1:], eps=self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation layer after a convolution (``nn.Identity`` for ``spectral``/``none``)."""
    check_norm(norm)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return LayerNorm2d(channels)
    return nn.Identity()


def conv2d(in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int | None = None,
           dilation: int = 1, norm: str = "none", bias: bool = True, padding_mode: str = "zeros") -> nn.Module:
    """A convolution, spectrally normalised when ``norm == "spectral"``.

    Args:
        padding: None gives "same" padding for odd kernels at stride 1 (``dilation * (kernel - 1) // 2``).
    """
    if padding is None:
        padding = dilation * (kernel - 1) // 2
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation=dilation, bias=bias, padding_mode=padding_mode)
    return nn.utils.parametrizations.spectral_norm(conv) if check_norm(norm) == "spectral" else conv


class ConvBlock(nn.Sequential):
    """Convolution, normalisation, activation (the building block of most inpainting networks).

    Args:
        in_channels, out_channels, kernel, stride, dilation: the convolution's.
        padding: None for "same" padding (odd kernels, stride 1).
        norm: one of :data:`NORMS`.
        activation: a key of :data:`ACTIVATIONS`.
        padding_mode: the convolution's (``"zeros"``, ``"reflect"``, ``"replicate"``).

    Shape:
        x: (B, in_channels, H, W); returns (B, out_channels, H', W').
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 padding: int | None = None, norm: str = "none", activation: str = "relu", padding_mode: str = "zeros") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        super().__init__(
            conv2d(in_channels, out_channels, kernel, stride, padding, dilation, norm, bias=norm not in ("batch", "instance"),
                   padding_mode=padding_mode),
            norm_layer(norm, out_channels),
            ACTIVATIONS[activation](),
        )


class ResizeConv(nn.Module):
    """Up-sampling by nearest resize ×``scale`` then a :class:`ConvBlock` (DeepFill's "deconvolution").

    Shape:
        x: (B, in_channels, H, W); returns (B, out_channels, scale·H, scale·W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, scale: int = 2, norm: str = "none",
                 activation: str = "relu") -> None:
        super().__init__()
        self.scale = scale
        self.conv = ConvBlock(in_channels, out_channels, kernel, norm=norm, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode="nearest"))
