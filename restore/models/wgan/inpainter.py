"""The WGAN method behind the :class:`~restore.models.base.Inpainter` contract, and loading it.

An image of any size is padded to a square (mirrored, the hole with it: the generator
knows undistorted square views, so a long image is not squashed), resized to the generator's
side (area-weighted), its hole resized with it (a resized pixel is a hole when any of its
source pixels is, so no hole content counts as known), searched (:func:`~restore.models.wgan.search.latent_search`), and the best
sample resized back and cropped to the image: that is :meth:`LatentSearchInpainter.predict`, the
raw output ``restore batch --blend poisson`` (the method's default) blends into the hole.
``inpaint`` pastes it in. Images without a hole are not searched.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.checkpoint import inference_weights, load_checkpoint
from restore.models.base import check_inputs, composite
from restore.models.config import config_from_dict
from restore.models.wgan.config import SEARCH_SETTINGS, WGANConfig
from restore.models.wgan.networks import WGANCritic, WGANGenerator
from restore.models.wgan.search import SearchLosses, SearchResult, latent_search


def pad_to_square(image: Tensor) -> Tensor:
    """Pad bottom/right to a square by reflection (replication where the pad exceeds the side).

    Shape:
        image: (B, C, H, W); returns (B, C, S, S) with S = max(H, W).
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = max(height, width) - height, max(height, width) - width
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def resize(image: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize with antialiasing (area-like when shrinking).

    Shape:
        image: (B, C, h, w); returns (B, C, height, width).
    """
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


class LatentSearchInpainter:
    """Inpainting by searching a trained WGAN generator's latent space.

    Args:
        generator: the trained generator (put in eval mode: its batch norm uses running statistics).
        critic: the trained critic (the prior loss).
        config: the search's settings (``search_steps``, ``restarts``, ``search_lr``, ``alpha``,
            ``beta``, ``eta``, ``z_clip``, ``window``, ``seed``).
        device: where to search.
        bf16: bfloat16 autocast for the networks.
    """

    name = "wgan"

    def __init__(self, generator: nn.Module, critic: nn.Module, config: WGANConfig, device: str | torch.device = "cpu",
                 bf16: bool = False) -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.critic = critic.to(self.device).eval()
        self.config = config
        self.bf16 = bf16
        self.last_result: SearchResult | None = None

    def search(self, image: Tensor, hole: Tensor) -> SearchResult:
        """The latent search on images of the generator's size.

        Shape:
            image: (B, 3, S, S) in [0, 1]; hole: (B, 1, S, S), 1 = hole.
        """
        config = self.config
        was_training = self.generator.training, self.critic.training
        self.generator.eval()
        self.critic.eval()
        try:
            return latent_search(
                self.generator, self.critic, image.to(self.device, torch.float32) * 2 - 1, hole.to(self.device, torch.float32),
                steps=config.search_steps, restarts=config.restarts, lr=config.search_lr,
                losses=SearchLosses(config.alpha, config.beta, config.eta, config.window),
                z_clip=config.z_clip, seed=config.seed, bf16=self.bf16,
            )  # fmt: skip
        finally:
            self.generator.train(was_training[0])
            self.critic.train(was_training[1])

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """The best sample at the image's size, not composited (what Poisson blending blends);
        an image without a hole gets itself back.

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W)
            float32 on the input's device.
        """
        check_inputs(image, mask)
        height, width = image.shape[-2:]
        side = self.config.size
        out = image.detach().to(torch.float32).clone()
        holed = (mask > 0.5).flatten(1).any(1)
        if not bool(holed.any()):
            return out
        picked = holed.nonzero().squeeze(1)
        square = max(height, width)
        small = resize(pad_to_square(image[picked].to(torch.float32)), side, side).clamp(0.0, 1.0)
        small_hole = (resize(pad_to_square((mask[picked] > 0.5).to(torch.float32)), side, side) > 0).to(torch.float32)
        result = self.search(small, small_hole)
        self.last_result = result
        filled = resize((result.images.detach() + 1) * 0.5, square, square)[..., :height, :width].clamp(0.0, 1.0)
        out[picked] = filled.to(out.device)
        return out

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the holes with the best sample (known pixels exact).

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W).
        """
        return composite(self.predict(image, mask).to(image.dtype), image, mask)


def networks_from_checkpoint(checkpoint: dict[str, Any]) -> tuple[WGANConfig, WGANGenerator, WGANCritic]:
    """The config, generator (its moving average where kept) and critic of a WGAN checkpoint dict.

    Raises:
        ValueError: not a WGAN checkpoint, or it lacks the critic.
    """
    if checkpoint.get("method") != "wgan":
        raise ValueError(f"not a wgan checkpoint (method={checkpoint.get('method')!r})")
    if "critic" not in checkpoint.get("models", {}):
        raise ValueError("the checkpoint has no critic weights (the latent search's prior needs them)")
    config = config_from_dict(WGANConfig, checkpoint["config"])
    modules = []
    for name, network in (("generator", WGANGenerator(config)), ("critic", WGANCritic(config))):
        state = {key: value.float() if value.is_floating_point() else value for key, value in inference_weights(checkpoint, name).items()}
        network.load_state_dict(state)
        modules.append(network)
    return config, modules[0], modules[1]


def load_wgan(path: Path | str | None, device: str = "cpu", bf16: bool | None = None, **settings: Any) -> LatentSearchInpainter:
    """Load a WGAN checkpoint (training or shipped) as a latent-search inpainter.

    Args:
        path: the checkpoint.
        device: where to search.
        bf16: bfloat16 autocast; None picks it where the hardware runs it fast (``RESTORE_BF16`` overrides).
        settings: search settings replacing the checkpoint's (``restore batch --set``; keys of
            :data:`~restore.models.wgan.config.SEARCH_SETTINGS`).

    Raises:
        ValueError: a setting that is not a search setting, or a value the config rejects.
    """
    from restore.hardware import prefers_bf16

    if path is None:
        raise ValueError("wgan needs a checkpoint")
    unknown = sorted(set(settings) - set(SEARCH_SETTINGS))
    if unknown:
        raise ValueError(f"not a wgan search setting: {', '.join(unknown)} (known: {', '.join(SEARCH_SETTINGS)})")
    config, generator, critic = networks_from_checkpoint(load_checkpoint(Path(path)))
    config = dataclasses.replace(config, **settings)
    use_bf16 = prefers_bf16(str(device)) if bf16 is None else bf16
    # channels-last convolutions: a search step about 1.25x faster on this CPU (oneDNN's preferred
    # layout); only for loaded networks, never a training run's live ones
    generator, critic = (network.to(memory_format=torch.channels_last) for network in (generator, critic))
    return LatentSearchInpainter(generator, critic, config, device=device, bf16=use_bf16)
