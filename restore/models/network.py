"""One network behind the :class:`~restore.models.base.Inpainter` contract, and loading it from a checkpoint.

Every method that restores with a single generator (CSA, DeepFill, DeepGIN, GLCIC) uses
:class:`NetworkInpainter`: pad the image and mask to the network's multiple (reflection),
run the generator (under bfloat16 autocast where that pays), crop back, and composite so
known pixels are bit-exact. :func:`load_network_inpainter` builds it from a checkpoint
by the method's record (config class, generator class, ``ship_modules``).

The generator contract: ``Generator(config)``, keeping it as ``.config`` (whose ``multiple``
gives the padding); ``forward(image, mask) -> dict`` with
``image`` (B, 3, H, W) in [0, 1] (hole content ignored), ``mask`` (B, 1, H, W) with 1 = hole,
H and W multiples of ``config.multiple``; the dict holds at least ``predicted`` (B, 3, H, W)
in [0, 1] (LaMa's keys: ``coarse``, ``predicted``, ``inpainted``, …). Batch items must be
independent in eval mode (batch norm in eval mode, no batch statistics).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.checkpoint import inference_weights, load_checkpoint
from restore.models.base import check_inputs, composite
from restore.models.config import config_from_dict, saved_config

if TYPE_CHECKING:
    from restore.models.registry import Method


def pad_to_multiple(image: Tensor, mask: Tensor, multiple: int) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """Pad bottom/right to a multiple of ``multiple`` by reflection, the mask with the image.

    A padded pixel is a hole exactly when the pixel it mirrors is one, so no hole content
    reaches the network through the padding. Reflection needs the pad to be smaller than
    the side; larger pads replicate.

    Shape:
        image: (B, C, H, W); mask: (B, 1, H, W); returns padded tensors and the original (H, W).
    """
    height, width = image.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return image, mask, (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    padded_image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    padded_mask = F.pad(mask, (0, pad_w, 0, pad_h), mode=mode)
    return padded_image, padded_mask, (height, width)


class NetworkInpainter:
    """A trained generator that restores images of any size.

    Args:
        name: the method's name.
        generator: the network (moved to ``device`` and set to eval mode).
        multiple: input sides are padded to multiples of this (the network's down-samplings).
        device: where to run.
        bf16: run the network under bfloat16 autocast (faster on CPUs with AMX or AVX-512 BF16 and on GPUs).
        channels_last: hold the network's weights channels-last (NHWC; the method record's
            :attr:`~restore.models.registry.Method.channels_last`). Inputs stay as they are: the
            first convolution converts its input, whose channels-last copy a large image would double.
    """

    def __init__(self, name: str, generator: nn.Module, multiple: int, device: str | torch.device = "cpu", bf16: bool = False,
                 channels_last: bool = False) -> None:
        self.name = name
        self.device = torch.device(device)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=layout).eval()
        self.multiple = int(multiple)
        self.bf16 = bf16

    @torch.no_grad()
    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """The generator's batch dict for an image of any size.

        Image-sized entries are cropped back to (H, W), in float32 on the input's device;
        entries of other sizes (feature maps) stay as the network made them (padded size,
        compute device and dtype).

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole.
        """
        return self._run(image, mask, keys=None)

    def _run(self, image: Tensor, mask: Tensor, keys: tuple[str, ...] | None) -> dict[str, Tensor]:
        """:meth:`forward`, converting only ``keys`` (None: every entry); the others are dropped
        as soon as the generator returns (at 4096² each image-sized float32 entry is 200 MB)."""
        check_inputs(image, mask)
        source_device = image.device
        image_d = image.to(self.device, torch.float32)
        mask_d = (mask.to(self.device) > 0.5).to(torch.float32)
        padded_image, padded_mask, (height, width) = pad_to_multiple(image_d, mask_d, self.multiple)
        del image_d, mask_d
        padded_shape = padded_image.shape[-2:]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.generator(padded_image, padded_mask)
        del padded_image, padded_mask
        wanted = out.keys() if keys is None else keys
        return {
            key: out[key][..., :height, :width].float().to(source_device) if out[key].shape[-2:] == padded_shape else out[key]
            for key in wanted
        }

    @torch.no_grad()
    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """The network's raw prediction, not composited (known pixels are the network's too):
        what :class:`~restore.inference.poisson.PoissonBlended` blends.

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W)
            float32 on the input's device.
        """
        return self._run(image, mask, keys=("predicted",))["predicted"]

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the holes.

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W).
        """
        predicted = self._run(image, mask, keys=("predicted",))["predicted"]
        return composite(predicted.to(image.dtype), image, mask)


def generator_from_checkpoint(method: Method, checkpoint: dict[str, Any], settings: Mapping[str, Any] | None = None) -> nn.Module:
    """Rebuild the generator stored in a checkpoint dict of ``method`` (full or inference-only).

    A training checkpoint gives its moving-average weights when it keeps them: the network
    its samples, learning curve and shipped file show. ``settings`` (the method's
    :attr:`~restore.models.registry.Method.inference_settings`, e.g. DeepGIN's
    ``output_lowpass``) replace the checkpoint's values of those config keys.

    Raises:
        ValueError: the checkpoint is another method's, its config does not fit the method, or a
            setting is not one of the method's inference settings.
    """
    if checkpoint.get("method") != method.name:
        raise ValueError(f"not a {method.name} checkpoint (method={checkpoint.get('method')!r})")
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(method.inference_settings))
    if unknown:
        allowed = ", ".join(method.inference_settings) or "none"
        raise ValueError(f"{method.name} has no inference setting {', '.join(unknown)} (it has: {allowed})")
    config = config_from_dict(method.config_class(), {**saved_config(method.config_class(), checkpoint["config"]), **settings})
    generator = method.network_class()(config)
    state = {key: value.float() if value.is_floating_point() else value for key, value in inference_weights(checkpoint).items()}
    generator.load_state_dict(state)
    return generator


def load_network_inpainter(method: Method, path: Path | str | None, device: str = "cpu", bf16: bool | None = None,
                           **settings: Any) -> NetworkInpainter:
    """Load a checkpoint file of ``method`` (a training checkpoint or a shipped, half-precision one).

    Args:
        method: the method's record (its config and network classes).
        path: the checkpoint.
        device: where to run.
        bf16: bfloat16 autocast; None picks it where the hardware runs it fast
            (:func:`restore.hardware.prefers_bf16`: CPUs with AMX or AVX-512 BF16, bf16 GPUs; ``RESTORE_BF16``
            overrides).
        settings: values of the method's inference settings (``restore batch --set``).
    """
    from restore.hardware import prefers_bf16

    if path is None:
        raise ValueError(f"{method.name} needs a checkpoint")
    generator = generator_from_checkpoint(method, load_checkpoint(Path(path)), settings)
    use_bf16 = prefers_bf16(str(device)) if bf16 is None else bf16
    return NetworkInpainter(method.name, generator, generator.config.multiple, device=device, bf16=use_bf16, channels_last=method.channels_last)
