"""One VGG feature extractor (VGG-16 or VGG-19, taps by layer name) for every VGG user.

It serves CSA's consistency loss and feature-patch discriminator (VGG-16 ``relu4_3``),
perceptual and style losses (:mod:`restore.losses.perceptual`; DeepGIN) and LPIPS
(:mod:`restore.perceptual_metrics`, five VGG-16 taps). The network is defined here;
ImageNet weights in torchvision's format are loaded from a file or from the torch hub
cache (the standard URL). Without either, the caller must ask for random weights
explicitly (``weights="random"``), which is recorded as the weights' ``source``.

Layer names follow the papers: ``conv3_1``, ``relu3_1``, ``pool3``, …; their indices are
those of torchvision's ``vgg16().features`` / ``vgg19().features``, so state-dict keys
(``features.N.weight``) match torchvision's files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from restore.messages import unreadable_torch_file

log = logging.getLogger(__name__)

#: torchvision's URLs for ImageNet weights (file names are what the hub cache uses).
VGG_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
VGG16_URL = VGG_URLS["vgg16"]
#: Download sizes, for the log line.
_SIZES_MB = {"vgg16": 528, "vgg19": 548}
#: Names in messages.
_DISPLAY = {"vgg16": "VGG-16", "vgg19": "VGG-19"}

# (out_channels per conv, "M" for max-pool): torchvision's configurations "D" and "E".
_LAYOUTS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """No VGG weights could be found and random ones were not asked for, or a file is not VGG's."""


def _check_arch(arch: str) -> None:
    if arch not in _LAYOUTS:
        raise ValueError(f"unknown VGG {arch!r}; expected one of {', '.join(_LAYOUTS)}")


def layer_indices(arch: str = "vgg16") -> dict[str, int]:
    """``{"conv1_1": 0, "relu1_1": 1, …, "pool5": N}``: layer names to indices in ``features``."""
    _check_arch(arch)
    names: dict[str, int] = {}
    block, conv, index = 1, 1, 0
    for item in _LAYOUTS[arch]:
        if item == "M":
            names[f"pool{block}"] = index
            index += 1
            block, conv = block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
            conv += 1
    return names


def vgg_features(last_index: int, arch: str = "vgg16") -> nn.Sequential:
    """torchvision's ``vggNN().features`` layout, cut after layer ``last_index``.

    Returns:
        An uninitialised ``nn.Sequential`` of convolutions, ReLUs and max-pools.
    """
    _check_arch(arch)
    layers: list[nn.Module] = []
    channels = 3
    for item in _LAYOUTS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
        if len(layers) > last_index:
            break
    return nn.Sequential(*layers[: last_index + 1])


def load_torchvision_features(features: nn.Sequential, state: dict[str, Tensor], name: str = "VGG weights", arch: str = "vgg16") -> None:
    """Copy the ``features.N.*`` tensors of a torchvision VGG state dict into ``features``.

    Args:
        features: a network from :func:`vgg_features`.
        state: a torchvision ``vgg16``/``vgg19`` state dict (``classifier.*`` keys are ignored).
        name: how errors name the source, e.g. ``"VGG weights file vgg16.pth"``.
        arch: the expected network, named in errors.

    Raises:
        VGGWeightsError: a tensor ``features`` needs is missing or has the wrong shape.
    """
    own = {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    wanted = features.state_dict()
    missing = set(wanted) - set(own)
    if missing:
        lacking = [f"features.{key}" for key in sorted(missing)[:3]]
        raise VGGWeightsError(f"{name} lack {lacking}: is this a torchvision {arch} file?")
    for key, value in wanted.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise VGGWeightsError(
                f"{name}: features.{key} has shape {tuple(own[key].shape)}, expected {tuple(value.shape)}: "
                f"is this a torchvision {arch} file?"
            )
    features.load_state_dict({key: own[key] for key in wanted})


def _hub_cached_weights(arch: str) -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG_URLS[arch]).name
    return path if path.is_file() else None


def resolve_vgg_weights(weights: str | Path | None, arch: str = "vgg16") -> str | Path:
    """Decide where VGG weights come from.

    Args:
        weights: a file path, ``"random"``, or None (the torch hub cache, then a download).

    Returns:
        A path to a weights file, ``"random"``, or ``"url"`` (download through the hub cache).

    Raises:
        VGGWeightsError: ``weights`` names a missing file.
    """
    _check_arch(arch)
    if weights is None or str(weights) == VGG_URLS[arch]:  # a resumed run records the URL it used
        cached = _hub_cached_weights(arch)
        return cached if cached is not None else "url"
    if str(weights) == "random":
        return "random"
    path = Path(weights)
    if not path.is_file():
        raise VGGWeightsError(f"--vgg-weights: no such file {path}")
    return path


class VGGFeatures(nn.Module):
    """A frozen VGG trunk that returns the activations of chosen layers.

    Args:
        weights: a torchvision-format state dict file, ``"random"``, or None (the torch hub
            cache, else a download of :data:`VGG_URLS` ``[arch]``).
        arch: ``"vgg16"`` or ``"vgg19"``.
        taps: layer names (:func:`layer_indices`) whose outputs ``forward`` returns, in order;
            the trunk stops at the deepest.
        input_norm: ``"imagenet"`` (images in [0, 1], normalised with ImageNet's mean and
            std) or ``"none"`` (the caller prepares the input, e.g. LPIPS's scaling layer).

    Attributes:
        source: where the weights came from (``"random"``, a path or the URL), for provenance.

    Shape:
        image: (B, 3, H, W); returns one (B, C_t, H_t, W_t) tensor per tap.
    """

    def __init__(self, weights: str | Path | None = None, arch: str = "vgg16", taps: Sequence[str] = ("relu4_3",),
                 input_norm: str = "imagenet") -> None:
        super().__init__()
        indices = layer_indices(arch)
        unknown = [tap for tap in taps if tap not in indices]
        if not taps or unknown:
            raise ValueError(f"unknown {arch} layers {unknown or list(taps)}; known: {', '.join(indices)}")
        if input_norm not in ("imagenet", "none"):
            raise ValueError(f"input_norm must be 'imagenet' or 'none', got {input_norm!r}")
        self.arch = arch
        self.taps = tuple(taps)
        self._tap_indices = [indices[tap] for tap in self.taps]
        self.input_norm = input_norm
        self.features = vgg_features(max(self._tap_indices), arch)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.source = self._load(weights)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def _load(self, weights: str | Path | None) -> str:
        arch, url, name = self.arch, VGG_URLS[self.arch], _DISPLAY[self.arch]
        source = resolve_vgg_weights(weights, arch)
        if source == "random":
            return "random"
        if source == "url":
            try:
                log.warning("downloading %s weights (%d MB) from %s into the torch hub cache", name, _SIZES_MB[arch], url)
                state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True)
            except Exception as error:  # no network, blocked URL, bad download
                raise VGGWeightsError(
                    f"could not download {name} weights from {url} ({error}); pass "
                    f"--vgg-weights PATH to a torchvision {arch} .pth file, or --vgg-weights random"
                ) from error
            recorded = url
        else:
            try:
                state = torch.load(source, map_location="cpu", weights_only=True)
            except Exception as error:
                raise VGGWeightsError(f"cannot read {name} weights {source}: {unreadable_torch_file(error)}") from error
            if not isinstance(state, dict):
                raise VGGWeightsError(f"{name} weights {source} hold a {type(state).__name__}, not a state dict: is this a torchvision {arch} file?")
            # the hub cache's copy is recorded as the URL: another machine has its own cache
            recorded = url if weights is None or str(weights) == url else str(source)
        load_torchvision_features(self.features, state, name=f"{name} weights {source}", arch=arch)
        return recorded

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)

    def forward(self, image: Tensor) -> list[Tensor]:
        x = (image - self.mean) / self.std if self.input_norm == "imagenet" else image
        wanted = set(self._tap_indices)
        found = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                found[index] = x
        return [found[index] for index in self._tap_indices]
