"""VGG-16 feature extractor for the consistency loss and the feature-patch discriminator.

The network is defined here; ImageNet weights in torchvision's format are loaded
from a file or from the torch hub cache (the standard URL). Without either, the
caller must ask for random weights explicitly (``weights="random"``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from restore.messages import unreadable_torch_file

log = logging.getLogger(__name__)

#: torchvision's URL for VGG-16 ImageNet weights (file name is what the hub cache uses).
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

# (out_channels per conv, "M" for max-pool), torchvision's configuration "D".
_VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
#: indices of the relu1_2 … relu5_3 outputs inside torchvision's ``vgg16().features``.
RELU1_2, RELU2_2, RELU3_3, RELU4_3, RELU5_3 = 3, 8, 15, 22, 29

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """No VGG weights could be found and random ones were not asked for."""


def vgg16_features(last_index: int) -> nn.Sequential:
    """torchvision's ``vgg16().features`` layout, cut after layer ``last_index`` (e.g. :data:`RELU5_3`).

    Args:
        last_index: index of the last layer kept; the layer indices (and so the
            ``N`` in state-dict keys ``N.weight``) are torchvision's.

    Returns:
        An uninitialised ``nn.Sequential`` of convolutions, ReLUs and max-pools.
    """
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
        if len(layers) > last_index:
            break
    return nn.Sequential(*layers[: last_index + 1])


def load_torchvision_features(features: nn.Sequential, state: dict[str, Tensor], name: str = "VGG weights") -> None:
    """Copy the ``features.N.*`` tensors of a torchvision ``vgg16`` state dict into ``features``.

    Args:
        features: a network from :func:`vgg16_features`.
        state: a torchvision ``vgg16`` state dict (``classifier.*`` keys are ignored).
        name: how errors name the source, e.g. ``"VGG weights file vgg16.pth"``.

    Raises:
        VGGWeightsError: a tensor ``features`` needs is missing or has the wrong shape.
    """
    own = {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    wanted = features.state_dict()
    missing = set(wanted) - set(own)
    if missing:
        lacking = [f"features.{key}" for key in sorted(missing)[:3]]
        raise VGGWeightsError(f"{name} lack {lacking}: is this a torchvision vgg16 file?")
    for key, value in wanted.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise VGGWeightsError(
                f"{name}: features.{key} has shape {tuple(own[key].shape)}, expected {tuple(value.shape)}: "
                "is this a torchvision vgg16 file?"
            )
    features.load_state_dict({key: own[key] for key in wanted})


def _hub_cached_weights() -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_URL).name
    return path if path.is_file() else None


def resolve_vgg_weights(weights: str | Path | None) -> str | Path:
    """Decide where VGG weights come from.

    Args:
        weights: a file path, ``"random"``, or None (the torch hub cache, then a download).

    Returns:
        A path to a weights file, ``"random"``, or ``"url"`` (download through the hub cache).

    Raises:
        VGGWeightsError: ``weights`` names a missing file.
    """
    if weights is None or str(weights) == VGG16_URL:  # a resumed run records the URL it used
        cached = _hub_cached_weights()
        return cached if cached is not None else "url"
    if str(weights) == "random":
        return "random"
    path = Path(weights)
    if not path.is_file():
        raise VGGWeightsError(f"--vgg-weights: no such file {path}")
    return path


class VGG16Features(nn.Module):
    """VGG-16 up to ``relu4_3`` (frozen), taking images in [0, 1].

    Args:
        weights: a torchvision-format ``vgg16`` state dict file, ``"random"``, or None
            (the torch hub cache, else a download of :data:`VGG16_URL`).

    Attributes:
        source: where the weights came from (``"random"``, a path or the URL), for provenance.

    Shape:
        image: (B, 3, H, W) in [0, 1]; returns relu4_3 features (B, 512, H/8, W/8).
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        self.features = vgg16_features(RELU4_3)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        source = resolve_vgg_weights(weights)
        if source == "random":
            self.source = "random"
        else:
            if source == "url":
                try:
                    log.warning("downloading VGG-16 weights (528 MB) from %s into the torch hub cache", VGG16_URL)
                    state = torch.hub.load_state_dict_from_url(VGG16_URL, map_location="cpu", progress=True)
                except Exception as error:  # no network, blocked URL, bad download
                    raise VGGWeightsError(
                        f"could not download VGG-16 weights from {VGG16_URL} ({error}); pass "
                        "--vgg-weights PATH to a torchvision vgg16 .pth file, or --vgg-weights random"
                    ) from error
                self.source = VGG16_URL
            else:
                try:
                    state = torch.load(source, map_location="cpu", weights_only=True)
                except Exception as error:
                    raise VGGWeightsError(f"cannot read VGG-16 weights {source}: {unreadable_torch_file(error)}") from error
                if not isinstance(state, dict):
                    raise VGGWeightsError(f"VGG-16 weights {source} hold a {type(state).__name__}, not a state dict: is this a torchvision vgg16 file?")
                # the hub cache's copy is recorded as the URL: another machine has its own cache
                from_hub = weights is None or str(weights) == VGG16_URL
                self.source = VGG16_URL if from_hub else str(source)
            self._load_torchvision_state(state)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def _load_torchvision_state(self, state: dict[str, Tensor]) -> None:
        load_torchvision_features(self.features, state)

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)

    def forward(self, image: Tensor) -> Tensor:
        return self.features((image - self.mean) / self.std)
