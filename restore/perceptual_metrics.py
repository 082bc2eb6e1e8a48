"""Optional deep metrics, LPIPS (VGG, v0.1) and FID, with weights the user supplies as files.

Nothing is downloaded: both networks are defined here and load their weights from
files the user passes. Without those files these metrics are simply not computed;
the pinned metrics of :mod:`restore.metrics` never need them.

LPIPS (Zhang et al. 2018, v0.1, VGG trunk), the ``lpips`` package's definition:
inputs in [0, 1] are mapped to [-1, 1] and through its scaling layer
(``(x - shift) / scale``); the VGG-16 taps relu1_2, relu2_2, relu3_3, relu4_3 and
relu5_3 are unit-normalised over channels; squared differences go through 1×1
linear layers ``lin0`` … ``lin4`` (no bias), are averaged over space and summed.

* ``lpips_weights``: the ``lpips`` package's ``weights/v0.1/vgg.pth``, a state
  dict with ``lin0.model.1.weight`` … ``lin4.model.1.weight`` of shapes
  (1, C, 1, 1), C = 64, 128, 256, 512, 512.
* ``vgg_weights``: torchvision's ``vgg16-397923af.pth`` (keys ``features.N.weight``
  and ``features.N.bias``; ``classifier.*`` is ignored).

FID: the Fréchet distance between Gaussians fitted to the Inception-v3 pool3
activations (2048-d) of two image sets, with the network pytorch-fid uses (the
TF "2015-12-05" graph: average pools that do not count padding, and a max pool in
the last block). Images are resized to 299² (bilinear) and scaled to [-1, 1].

* ``fid_weights``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
  (keys ``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, …;
  its ``fc.*`` classifier, 1008 classes, is ignored).

API::

    from restore.perceptual_metrics import LPIPS, FIDInception, fid, PerceptualWeightsError

    lpips = LPIPS.from_files("vgg.pth", "vgg16-397923af.pth")      # once
    d = lpips.distance(pred, target)            # (H, W, 3) arrays in [0, 1] -> float

    inception = FIDInception.from_file("pt_inception-2015-12-05-6726825d.pth")
    value = fid(pred_images, target_images, inception)   # (N, H, W, 3) uint8 or [0, 1] floats
    # or step by step: activations() -> statistics() -> frechet_distance()

Every problem with a weights file (missing, unreadable, wrong keys or shapes)
raises :class:`PerceptualWeightsError` with a one-line message naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.messages import one_line, unreadable_torch_file
from restore.nn.vgg import VGGFeatures, VGGWeightsError, load_torchvision_features

__all__ = [
    "FIDInception",
    "LPIPS",
    "PerceptualWeightsError",
    "fid",
    "frechet_distance",
    "lpips_distance",
    "statistics",
]

#: the ``lpips`` package's ScalingLayer constants (inputs in [-1, 1]).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
#: VGG-16 taps used by LPIPS and their channel counts.
LPIPS_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
#: Inception input side, and the activation sizes pytorch-fid offers (``--dims``).
INCEPTION_SIZE = 299
FID_DIMS = (64, 192, 768, 2048)
#: classes of the TF 2015-12-05 graph's classifier (``fc``) in pytorch-fid's file.
FID_CLASSES = 1008


class PerceptualWeightsError(RuntimeError):
    """A weights file for LPIPS or FID is missing, unreadable or of the wrong kind."""


def _load_state(path: str | Path, what: str) -> dict[str, Tensor]:
    path = Path(path)
    if not path.is_file():
        raise PerceptualWeightsError(f"{what}: no such file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, truncated, pickled objects
        raise PerceptualWeightsError(f"{what}: cannot read {path}: {unreadable_torch_file(error)}") from error
    if not isinstance(state, dict) or not all(isinstance(value, Tensor) for value in state.values()):
        raise PerceptualWeightsError(f"{what}: {path} is not a state dict of tensors")
    return state


# --------------------------------------------------------------------------- LPIPS


class _LinLayer(nn.Module):
    """LPIPS's ``NetLinLayer``: dropout (inactive in eval) then a 1×1 conv to one channel, no bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _unit_normalise(features: Tensor, eps: float = 1e-10) -> Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _image_tensor(image: np.ndarray | Tensor, name: str) -> Tensor:
    """(H, W), (H, W, 1|3) array in [0, 1] (or uint8) -> (1, 3, H, W) float32 tensor."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an (H, W, 3) image, got shape {array.shape}")
    array = array[..., :3] if array.shape[-1] == 4 else array  # drop alpha, as PIL's convert("RGB")
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None]
    return tensor.expand(1, 3, *tensor.shape[2:]) if tensor.shape[1] == 1 else tensor


class LPIPS(nn.Module):
    """LPIPS v0.1 with a VGG-16 trunk (frozen, eval mode); build with :meth:`from_files`.

    Constructed directly it holds uninitialised weights (for tests and for writing files).

    Shape:
        forward: two (B, 3, H, W) batches in [0, 1], H, W ≥ 16; returns (B,) distances.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.net = VGGFeatures("random", "vgg16", LPIPS_TAPS, input_norm="none")
        for index, channels in enumerate(LPIPS_CHANNELS):
            self.add_module(f"lin{index}", _LinLayer(channels))
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(cls, lpips_weights: str | Path, vgg_weights: str | Path, device: str | torch.device = "cpu") -> LPIPS:
        """Load the linear layers and the VGG-16 trunk from the user's files.

        Args:
            lpips_weights: the ``lpips`` package's ``weights/v0.1/vgg.pth``.
            vgg_weights: torchvision's ``vgg16-397923af.pth``.
            device: where the network runs.

        Returns:
            The loaded metric.

        Raises:
            PerceptualWeightsError: a file is missing, unreadable, or has wrong keys or shapes.
        """
        model = cls()
        model.load_lpips_state(_load_state(lpips_weights, "LPIPS weights"), str(lpips_weights))
        vgg_state = _load_state(vgg_weights, "VGG weights")
        try:
            load_torchvision_features(model.net.features, vgg_state, name=f"VGG weights file {vgg_weights}")
        except VGGWeightsError as error:
            raise PerceptualWeightsError(one_line(str(error))) from None
        return model.to(device)

    def load_lpips_state(self, state: dict[str, Tensor], source: str = "LPIPS weights") -> None:
        """Copy ``lin0.model.1.weight`` … ``lin4.model.1.weight`` from an ``lpips`` state dict.

        Args:
            state: the state dict (other keys, e.g. ``scaling_layer.*``, are ignored).
            source: the file name, for error messages.

        Raises:
            PerceptualWeightsError: a key is missing or a tensor has the wrong shape.
        """
        for index, channels in enumerate(LPIPS_CHANNELS):
            key = f"lin{index}.model.1.weight"
            if key not in state:
                raise PerceptualWeightsError(
                    f"LPIPS weights file {source} lacks {key}: is this the lpips package's weights/v0.1/vgg.pth?"
                )
            if tuple(state[key].shape) != (1, channels, 1, 1):
                raise PerceptualWeightsError(
                    f"LPIPS weights file {source}: {key} has shape {tuple(state[key].shape)}, expected "
                    f"{(1, channels, 1, 1)}: is this the VGG file (not alex or squeeze)?"
                )
            getattr(self, f"lin{index}").model[1].weight.copy_(state[key])

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def forward(self, image0: Tensor, image1: Tensor) -> Tensor:
        if image0.shape != image1.shape:
            raise ValueError(f"LPIPS inputs differ in shape: {tuple(image0.shape)} and {tuple(image1.shape)}")
        if min(image0.shape[-2:]) < 16:
            raise ValueError(f"LPIPS needs images of at least 16×16 pixels, got {tuple(image0.shape[-2:])}")
        taps0 = self.net(((2 * image0 - 1) - self.shift) / self.scale)
        taps1 = self.net(((2 * image1 - 1) - self.shift) / self.scale)
        total = image0.new_zeros(image0.shape[0])
        for index, (f0, f1) in enumerate(zip(taps0, taps1, strict=True)):
            difference = (_unit_normalise(f0) - _unit_normalise(f1)).pow(2)
            total = total + getattr(self, f"lin{index}")(difference).mean(dim=(1, 2, 3))
        return total

    @torch.no_grad()
    def distance(self, pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> float:
        """LPIPS between two images.

        Args:
            pred: image in [0, 1] (floats) or uint8.
            target: image of the same shape.

        Returns:
            The distance (0 for identical images; larger is more different).

        Shape:
            pred, target: (H, W, 3), (H, W, 1) or (H, W), H, W ≥ 16.
        """
        if np.shape(pred) != np.shape(target):
            raise ValueError(f"prediction {np.shape(pred)} and target {np.shape(target)} differ in shape")
        device = self.shift.device
        a, b = _image_tensor(pred, "prediction").to(device), _image_tensor(target, "target").to(device)
        return float(self(a, b)[0])


def lpips_distance(pred: np.ndarray | Tensor, target: np.ndarray | Tensor, model: LPIPS) -> float:
    """LPIPS between two (H, W, 3) images in [0, 1]; see :meth:`LPIPS.distance`."""
    return model.distance(pred, target)


# --------------------------------------------------------------------------- FID Inception


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU: the ``conv`` / ``bn`` pair of every layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: Tensor) -> Tensor:
    """3×3 stride-1 average that, like TensorFlow's, ignores the zero padding at the borders."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _MixedA(nn.Module):
    """35×35 block (Mixed_5b/c/d): 1×1, 5×5, double 3×3 and pooled branches."""

    def __init__(self, in_channels: int, pool_channels: int) -> None:
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(in_channels, pool_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        five = self.branch5x5_2(self.branch5x5_1(x))
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), five, double, self.branch_pool(_tf_avg_pool(x))], dim=1)


class _ReductionB(nn.Module):
    """35→17 reduction (Mixed_6a): strided 3×3, strided double 3×3, and a max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, 3, stride=2)], dim=1)


class _MixedC(nn.Module):
    """17×17 block (Mixed_6b…e) with factorised 1×7 / 7×1 convolutions."""

    def __init__(self, in_channels: int, mid: int) -> None:
        super().__init__()
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
        self.branch1x1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = _ConvBN(in_channels, mid, 1)
        self.branch7x7_2 = _ConvBN(mid, mid, row[0], padding=row[1])
        self.branch7x7_3 = _ConvBN(mid, 192, col[0], padding=col[1])
        self.branch7x7dbl_1 = _ConvBN(in_channels, mid, 1)
        self.branch7x7dbl_2 = _ConvBN(mid, mid, col[0], padding=col[1])
        self.branch7x7dbl_3 = _ConvBN(mid, mid, row[0], padding=row[1])
        self.branch7x7dbl_4 = _ConvBN(mid, mid, col[0], padding=col[1])
        self.branch7x7dbl_5 = _ConvBN(mid, 192, row[0], padding=row[1])
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for index in range(1, 6):
            double = getattr(self, f"branch7x7dbl_{index}")(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_tf_avg_pool(x))], dim=1)


class _ReductionD(nn.Module):
    """17→8 reduction (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = x
        for index in range(1, 5):
            seven = getattr(self, f"branch7x7x3_{index}")(seven)
        return torch.cat([three, seven, F.max_pool2d(x, 3, stride=2)], dim=1)


class _MixedE(nn.Module):
    """8×8 block (Mixed_7b, Mixed_7c) with split 1×3 / 3×1 branches.

    Args:
        in_channels: input channels.
        max_pool: pool the last branch with a 3×3 max (Mixed_7c of the FID graph)
            instead of the padding-ignoring average (Mixed_7b).
    """

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(three),
                self.branch3x3_2b(three),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(pooled),
            ],
            dim=1,
        )


class FIDInception(nn.Module):
    """Inception-v3 as pytorch-fid uses it for FID (TF 2015-12-05 graph), without the classifier.

    Module names equal the keys of pytorch-fid's weights file. Constructed directly it
    holds uninitialised weights; build it with :meth:`from_file`. Frozen, eval mode.

    Shape:
        forward: (B, 3, H, W) in [0, 1] (resized to 299² inside); returns (B, dims).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _MixedA(192, 32)
        self.Mixed_5c = _MixedA(256, 64)
        self.Mixed_5d = _MixedA(288, 64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _MixedC(768, 128)
        self.Mixed_6c = _MixedC(768, 160)
        self.Mixed_6d = _MixedC(768, 160)
        self.Mixed_6e = _MixedC(768, 192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _MixedE(1280, max_pool=False)
        self.Mixed_7c = _MixedE(2048, max_pool=True)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> FIDInception:
        """Load pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.

        Args:
            path: the weights file.
            device: where the network runs.

        Returns:
            The loaded network.

        Raises:
            PerceptualWeightsError: the file is missing, unreadable, or has wrong keys or shapes.
        """
        model = cls()
        model.load_fid_state(_load_state(path, "FID Inception weights"), str(path))
        return model.to(device)

    def load_fid_state(self, state: dict[str, Tensor], source: str = "FID Inception weights") -> None:
        """Copy a pytorch-fid Inception state dict in, checking every key and shape.

        ``fc.*`` (the 1008-class classifier) is checked and dropped; ``num_batches_tracked``
        may be absent (it does not affect evaluation).

        Args:
            state: the state dict.
            source: the file name, for error messages.

        Raises:
            PerceptualWeightsError: keys missing or unexpected, or a tensor of the wrong shape.
        """
        hint = "is this pytorch-fid's pt_inception-2015-12-05-6726825d.pth?"
        name = f"FID Inception weights file {source}"
        if any(key.startswith("AuxLogits.") for key in state):
            raise PerceptualWeightsError(f"{name} has an aux classifier (torchvision's inception_v3?), not the FID network: {hint}")
        if "fc.weight" in state and tuple(state["fc.weight"].shape) != (FID_CLASSES, 2048):
            raise PerceptualWeightsError(
                f"{name}: fc.weight has shape {tuple(state['fc.weight'].shape)}, expected {(FID_CLASSES, 2048)} "
                f"(the TF graph's 1008 classes): {hint}"
            )
        given = {key: value for key, value in state.items() if not key.startswith("fc.")}
        wanted = self.state_dict()
        optional = {key for key in wanted if key.endswith("num_batches_tracked")}
        missing = sorted(set(wanted) - set(given) - optional)
        if missing:
            raise PerceptualWeightsError(f"{name} lacks {missing[:3]} ({len(missing)} keys): {hint}")
        unexpected = sorted(set(given) - set(wanted))
        if unexpected:
            raise PerceptualWeightsError(f"{name} has unexpected keys {unexpected[:3]} ({len(unexpected)} keys): {hint}")
        for key, value in given.items():
            if key in optional:
                continue
            if tuple(value.shape) != tuple(wanted[key].shape):
                raise PerceptualWeightsError(
                    f"{name}: {key} has shape {tuple(value.shape)}, expected {tuple(wanted[key].shape)}: {hint}"
                )
        self.load_state_dict({key: value for key, value in given.items() if key not in optional}, strict=False)

    def train(self, mode: bool = True) -> FIDInception:
        return super().train(False)

    def forward(self, images: Tensor, dims: int = 2048) -> Tensor:
        if dims not in FID_DIMS:
            raise ValueError(f"dims must be one of {FID_DIMS} (pytorch-fid's blocks), got {dims}")
        x = images
        if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        if dims > 64:
            x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        if dims > 192:
            for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e"):
                x = getattr(self, f"Mixed_{name}")(x)
        if dims > 768:
            x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    @torch.no_grad()
    def activations(self, images: np.ndarray | Sequence[np.ndarray], batch_size: int = 50, dims: int = 2048,
                    on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Pool3 activations (or an earlier block's, averaged over space) of a set of images.

        Args:
            images: an (N, H, W, C) array, or a sequence of (H, W, C) arrays (sizes may
                differ); uint8 (/255), uint16 (/65535) or floats in [0, 1]; C = 1, 3 or 4
                (grey is repeated, alpha dropped).
            batch_size: images per forward pass.
            dims: 2048 (pool3, the FID standard), or 768, 192, 64 as pytorch-fid's ``--dims``.
            on_batch: called with the number of images done after each batch (progress).

        Returns:
            float64 activations.

        Shape:
            returns (N, dims).
        """
        device = next(self.parameters()).device
        rows: list[np.ndarray] = []
        batch: list[Tensor] = []
        done = 0
        for index, image in enumerate(images):
            tensor = _image_tensor(image, f"image {index}").to(device)
            batch.append(F.interpolate(tensor, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear",
                                       align_corners=False))
            if len(batch) == batch_size:
                rows.append(self(torch.cat(batch), dims=dims).double().cpu().numpy())
                done += len(batch)
                batch = []
                if on_batch is not None:
                    on_batch(done)
        if batch:
            rows.append(self(torch.cat(batch), dims=dims).double().cpu().numpy())
            if on_batch is not None:
                on_batch(done + len(batch))
        return np.concatenate(rows) if rows else np.zeros((0, dims))


def statistics(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, ``np.cov``) of activations.

    Args:
        activations: one row per image, at least two rows.

    Returns:
        ``(mu, sigma)``.

    Shape:
        activations: (N, D); returns (D,) and (D, D).
    """
    if activations.ndim != 2 or activations.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 images per set, got activations of shape {activations.shape}")
    return activations.mean(axis=0), np.cov(activations, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), as pytorch-fid computes it.

    d² = ||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), with ``scipy.linalg.sqrtm``.
    If the square root of the product is not finite (nearly singular covariances),
    ``eps`` is added to both diagonals and it is taken again; a small imaginary part
    from rounding is dropped, a large one (|imag| > 1e-3 on the diagonal) is an error.

    Args:
        mu1: mean of the first set.
        sigma1: covariance of the first set.
        mu2: mean of the second set.
        sigma2: covariance of the second set.
        eps: diagonal offset for the singular case.

    Returns:
        The distance (may be a rounding error below 0 for identical statistics).

    Shape:
        mu1, mu2: (D,); sigma1, sigma2: (D, D) (scalars are taken as D = 1).
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"statistics differ in size: mu {mu1.shape} and {mu2.shape}, sigma {sigma1.shape} and {sigma2.shape}"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"Fréchet distance: sqrt(sigma1 sigma2) has an imaginary part up to {np.max(np.abs(covmean.imag)):.3g}; "
                "are both covariances positive semi-definite?"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(pred_images: np.ndarray | Sequence[np.ndarray], target_images: np.ndarray | Sequence[np.ndarray],
        weights: str | Path | FIDInception, batch_size: int = 50, dims: int = 2048,
        device: str | torch.device = "cpu") -> float:
    """FID between two image sets (pytorch-fid's definition; 2048-d pool3 by default).

    Args:
        pred_images: restored images, as for :meth:`FIDInception.activations`.
        target_images: reference images.
        weights: pytorch-fid's weights file, or a loaded :class:`FIDInception` (reuse it
            across calls: loading costs more than a small set).
        batch_size: images per forward pass.
        dims: activation size (2048 is the standard FID).
        device: where to run when ``weights`` is a path.

    Returns:
        The Fréchet distance of the activation statistics.

    Shape:
        pred_images, target_images: (N, H, W, C), N ≥ 2 each (FID is only meaningful for
        thousands of images; it is biased for small N).
    """
    model = weights if isinstance(weights, FIDInception) else FIDInception.from_file(weights, device=device)
    mu1, sigma1 = statistics(model.activations(pred_images, batch_size=batch_size, dims=dims))
    mu2, sigma2 = statistics(model.activations(target_images, batch_size=batch_size, dims=dims))
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6)
