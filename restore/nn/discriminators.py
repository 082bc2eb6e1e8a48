"""Discriminators (critics) shared by the methods, and the hole-box crops of global + local critics.

* :class:`PatchDiscriminator` — pix2pix's N-layer patch discriminator (70×70 receptive field
  at 3 layers; CSA's Table 4, DeepGIN's two spectral-norm discriminators), any
  normalisation of :data:`restore.nn.blocks.NORMS`.
* :class:`FeaturePatchDiscriminator` — CSA's Table 5, a patch discriminator on VGG features.
* :class:`StridedCritic` — strided 5×5 convolutions, then a linear layer on the flattened
  map: DeepFill v1's global and local WGAN critics (one score) and GLCIC's global and local
  discriminators (1024 features each).
* :class:`GlobalLocalCritic` — a global critic on the whole image and a local one on a fixed
  window centred on each sample's hole (:func:`hole_boxes`, :func:`crop_boxes`), either
  scored apart (DeepFill v1) or joined into one decision (GLCIC).

Inputs are taken as given: a caller that wants [-1, 1] images scales them itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.nn.blocks import check_norm, conv2d, norm_layer


class PatchDiscriminator(nn.Module):
    """pix2pix's N-layer patch discriminator: one logit per overlapping patch.

    ``layers`` stride-2 4×4 convolutions (width doubling, capped at ``max_width``; no
    normalisation after the first), one stride-1 4×4 convolution, and a stride-1 4×4
    convolution to one channel; LeakyReLU 0.2 between. With 3 layers each logit sees a
    70×70 patch (CSA's Table 4).

    Args:
        in_channels: input channels (3 for images; DeepGIN feeds masked input and image, 6).
        width: channels of the first convolution (paper: 64).
        layers: stride-2 convolutions.
        norm: normalisation (:data:`restore.nn.blocks.NORMS`); ``spectral`` normalises every
            convolution's weight.
        max_width: cap on any layer's channels.
        out_channels: channels of the patch map (1: one logit per patch; DeepGIN's code: 256
            "feature maps", each scored by the hinge loss).

    Shape:
        x: (B, in_channels, H, W); returns (B, out_channels, H/2^layers - 2, W/2^layers - 2).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, norm: str = "instance", max_width: int = 512,
                 out_channels: int = 1) -> None:
        super().__init__()
        check_norm(norm)
        if layers < 1 or width < 1:
            raise ValueError(f"a patch discriminator needs layers >= 1 and width >= 1, got {layers} and {width}")
        spectral = "spectral" if norm == "spectral" else "none"
        body: list[nn.Module] = [conv2d(in_channels, width, 4, 2, 1, norm=spectral), nn.LeakyReLU(0.2)]
        channels = width
        for level in range(1, layers + 1):
            out = min(width * 2**level, max_width)
            stride = 2 if level < layers else 1
            body += [conv2d(channels, out, 4, stride, 1, norm=spectral), norm_layer(norm, out), nn.LeakyReLU(0.2)]
            channels = out
        body.append(conv2d(channels, out_channels, 4, 1, 1, norm=spectral))
        self.body = nn.Sequential(*body)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class FeaturePatchDiscriminator(nn.Module):
    """CSA's feature-patch discriminator (Table 5): a short patch discriminator on VGG features.

    Args:
        width: channels of its convolutions (paper: 512).
        in_channels: feature channels (VGG-16 relu4_3: 512).
        norm: normalisation of the middle layer.

    Shape:
        features: (B, in_channels, h, w); returns logits (B, 1, h/2 - 2, w/2 - 2).
    """

    def __init__(self, width: int = 512, in_channels: int = 512, norm: str = "instance") -> None:
        super().__init__()
        spectral = "spectral" if check_norm(norm) == "spectral" else "none"
        self.body = nn.Sequential(
            conv2d(in_channels, width, 4, 2, 1, norm=spectral), nn.LeakyReLU(0.2),
            conv2d(width, width, 4, 1, 1, norm=spectral), norm_layer(norm, width), nn.LeakyReLU(0.2),
            conv2d(width, 1, 4, 1, 1, norm=spectral),
        )  # fmt: skip

    def forward(self, features: Tensor) -> Tensor:
        return self.body(features)


class StridedCritic(nn.Module):
    """Strided convolutions down to a small map, flattened into a linear layer.

    Args:
        in_channels: input channels.
        widths: output channels of each stride-2 convolution (DeepFill v1 local critic:
            64, 128, 256, 512; global: 64, 128, 256, 256; GLCIC local: 64 … 512 in 5 layers).
        input_size: the side of the (square) input; fixes the linear layer's size.
        out_features: 1 for a critic's score, 1024 for GLCIC's feature vectors.
        kernel: convolution size (5 in both papers).
        norm: normalisation after each convolution (GLCIC: batch; DeepFill: none).
        activation: ``"lrelu"`` (DeepFill) or ``"relu"`` (GLCIC).

    Shape:
        x: (B, in_channels, input_size, input_size); returns (B, out_features).
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], input_size: int, out_features: int = 1, kernel: int = 5,
                 norm: str = "none", activation: str = "lrelu") -> None:
        super().__init__()
        if not widths:
            raise ValueError("a strided critic needs at least one convolution")
        act = {"lrelu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}[activation]
        spectral = "spectral" if check_norm(norm) == "spectral" else "none"
        layers: list[nn.Module] = []
        channels, side = in_channels, input_size
        for width in widths:
            layers += [conv2d(channels, width, kernel, 2, kernel // 2, norm=spectral), norm_layer(norm, width), act()]
            channels, side = width, (side + 1) // 2
        self.input_size = input_size
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(channels * side * side, out_features)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"this critic takes {self.input_size}² inputs, got {tuple(x.shape[-2:])}")
        return self.linear(self.features(x).flatten(1))


def hole_boxes(mask: Tensor, size: int) -> Tensor:
    """Per sample, a ``size``² window centred on the bounding box of its hole, kept inside the image.

    A sample without a hole gets the centred window. Boxes are (top, left) corners.

    Args:
        mask: 1 = hole.
        size: the window's side (at most the image's smaller side).

    Returns:
        int64 (top, left) per sample.

    Shape:
        mask: (B, 1, H, W); returns (B, 2).
    """
    height, width = mask.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"a {size}² window does not fit a {height}x{width} image")
    holes = mask[:, 0] > 0.5
    rows, cols = holes.any(dim=2), holes.any(dim=1)
    corners = []
    for b in range(mask.shape[0]):
        if rows[b].any():
            ys, xs = torch.nonzero(rows[b]).flatten(), torch.nonzero(cols[b]).flatten()
            centre_y, centre_x = (int(ys[0]) + int(ys[-1]) + 1) // 2, (int(xs[0]) + int(xs[-1]) + 1) // 2
        else:
            centre_y, centre_x = height // 2, width // 2
        top = min(max(centre_y - size // 2, 0), height - size)
        left = min(max(centre_x - size // 2, 0), width - size)
        corners.append((top, left))
    return torch.tensor(corners, dtype=torch.int64).reshape(-1, 2)


def crop_boxes(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """The ``size``² windows of :func:`hole_boxes` (differentiable: slices of ``images``).

    Shape:
        images: (B, C, H, W); boxes: (B, 2); returns (B, C, size, size).
    """
    return torch.stack([images[b, :, int(top) : int(top) + size, int(left) : int(left) + size] for b, (top, left) in enumerate(boxes)])


class GlobalLocalCritic(nn.Module):
    """A global critic on the whole image and a local one on a window around the hole.

    Args:
        global_critic: takes the whole image.
        local_critic: takes the ``local_size``² window of :func:`hole_boxes`.
        local_size: the window's side (DeepFill v1: 128 in 256²; GLCIC: 128 in 256², 16 in 32²).
        joint_features: None to score the two apart (DeepFill v1: each critic ends in one
            score); else the two critics' outputs (``joint_features`` in all, e.g. 1024 + 1024)
            are concatenated into one linear decision (GLCIC).
        global_size: the side the global critic takes; images of another size are resized to
            it (bilinear, antialiased) for the global critic only (None: taken as given).
        feature_activation: applied to both critics' outputs before they are joined (GLCIC: ReLU).

    Shape:
        image: (B, C, H, W); mask: (B, 1, H, W), 1 = hole. Returns ``(global (B, 1), local (B, 1))``
        apart, or (B, 1) joint.
    """

    def __init__(self, global_critic: nn.Module, local_critic: nn.Module, local_size: int, joint_features: int | None = None,
                 global_size: int | None = None, feature_activation: nn.Module | None = None) -> None:
        super().__init__()
        self.global_critic = global_critic
        self.local_critic = local_critic
        self.local_size = local_size
        self.global_size = global_size
        self.activation = feature_activation if feature_activation is not None else nn.Identity()
        self.joint = nn.Linear(joint_features, 1) if joint_features is not None else None

    def forward(self, image: Tensor, mask: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        local = crop_boxes(image, hole_boxes(mask, self.local_size).to(image.device), self.local_size)
        whole = image
        if self.global_size is not None and tuple(image.shape[-2:]) != (self.global_size, self.global_size):
            whole = F.interpolate(image, size=(self.global_size, self.global_size), mode="bilinear", align_corners=False, antialias=True)
        global_out, local_out = self.activation(self.global_critic(whole)), self.activation(self.local_critic(local))
        if self.joint is None:
            return global_out, local_out
        return self.joint(torch.cat([global_out, local_out], dim=1))
