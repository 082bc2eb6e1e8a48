"""CSA networks: rough U-Net and refinement U-Net with the CSA layer (the discriminators are
:class:`~restore.nn.discriminators.PatchDiscriminator` and ``FeaturePatchDiscriminator``).

Layer tables follow the paper's appendix (Tables 3, 4, 5 and 12) with the base
width and a channel cap as parameters. Images inside the networks are in
[-1, 1]; the generator takes and returns [0, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from restore.models.csa.config import CSAConfig
from restore.nn.blocks import norm_layer
from restore.nn.csa_layer import CoherentSemanticAttention, feature_hole_mask
from restore.nn.prefill import pyramid_fill

#: the CSA layer sits after the third down-sampling (32² for a 256² input).
CSA_LEVEL = 3


def _norm(channels: int) -> nn.Module:
    return norm_layer("instance", channels)


def level_channels(config: CSAConfig, count: int) -> list[int]:
    """Per-level channels: width, 2·width, 4·width, 8·width, … capped at ``max_channels``."""
    return [min(config.width * 2 ** min(level, 3), config.max_channels) for level in range(count)]


class RoughNet(nn.Module):
    """The pix2pix U-Net of Table 3: eight 4×4 stride-2 convolutions down, eight up.

    Shape:
        x: (B, in_channels, H, W) with H, W multiples of 2**depth; returns (B, 3, H, W) pre-activation.
    """

    def __init__(self, config: CSAConfig, in_channels: int) -> None:
        super().__init__()
        depth = config.depth
        ch = level_channels(config, depth)
        self.down = nn.ModuleList()
        for level in range(depth):
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if level == 0 else ch[level - 1], ch[level], 4, 2, 1))
            if 0 < level < depth - 1:
                layers.append(_norm(ch[level]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for level in reversed(range(1, depth)):
            in_ch = ch[level] if level == depth - 1 else 2 * ch[level]
            self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(in_ch, ch[level - 1], 4, 2, 1), _norm(ch[level - 1])))
        self.head = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * ch[0], 3, 4, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.head(x)


class _RefineDown(nn.Module):
    """One encoder level of Table 12: 4×4 dilated stride-2 conv, then a 3×3 conv that widens."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(in_ch, in_ch, 4, 2, padding=3, dilation=2), _norm(in_ch))
        self.widen = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.norm = _norm(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.widen(self.reduce(x)))


class _RefineUp(nn.Module):
    """One decoder level of Table 12: 3×3 transposed conv that narrows, then 4×4 stride-2 up."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(in_ch, out_ch, 3, 1, 1), _norm(out_ch),
            nn.ReLU(), nn.ConvTranspose2d(out_ch, out_ch, 4, 2, 1), _norm(out_ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class RefineNet(nn.Module):
    """The refinement U-Net of Table 12 with the CSA layer at the third down-sampling.

    ``forward`` returns the pre-activation output and the two 32² features the
    consistency loss compares with VGG: the CSA output and its decoder twin.

    Shape:
        x: (B, in_channels, H, W), H, W multiples of 2**depth; hole32: (B, 1, H/8, W/8);
        returns (B, 3, H, W), (B, C, H/8, W/8), (B, C, H/8, W/8).
    """

    def __init__(self, config: CSAConfig, in_channels: int) -> None:
        super().__init__()
        depth = config.depth
        ch = level_channels(config, depth + 1)
        self.stem = nn.Conv2d(in_channels, ch[0], 3, 1, 1)
        self.down = nn.ModuleList(_RefineDown(ch[level - 1], ch[level]) for level in range(1, depth))
        self.bottom = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch[depth - 1], ch[depth], 4, 2, 1))
        self.csa = CoherentSemanticAttention()
        self.top = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(ch[depth], ch[depth - 1], 4, 2, 1), _norm(ch[depth - 1]))
        self.up = nn.ModuleList(_RefineUp(2 * ch[level], ch[level - 1]) for level in reversed(range(1, depth)))
        self.head = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * ch[0], 3, 3, 1, 1))

    def forward(self, x: Tensor, hole32: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.stem(x)
        skips = [x]
        csa_out = x
        for level, layer in enumerate(self.down, start=1):
            if level == CSA_LEVEL:
                x = layer.widen(layer.reduce(x))
                csa_out = self.csa(x, hole32)
                x = layer.norm(csa_out)
            else:
                x = layer(x)
            skips.append(x)
        x = torch.cat([self.top(self.bottom(x)), skips.pop()], dim=1)
        twin = x
        for level, layer in zip(reversed(range(1, len(self.up) + 1)), self.up, strict=True):
            up = layer(x)
            if level == CSA_LEVEL + 1:
                twin = up
            x = torch.cat([up, skips.pop()], dim=1)
        return self.head(x), csa_out, twin


class CSAGenerator(nn.Module):
    """Rough network, then refinement with CSA; returns LaMa-style batch dicts.

    Inputs are the image in [0, 1] with holes (their content is ignored) and the mask.
    With ``config.prefill`` each stage sees a push-pull fill of the holes and predicts a
    residual over it; otherwise holes are zeroed as in the paper.

    Shape:
        image: (B, 3, H, W), mask: (B, 1, H, W), H and W multiples of 2**depth (256 at the paper's depth).
        Returns a dict of (B, 3, H, W) tensors in [0, 1] — ``coarse``, ``coarse_inpainted``,
        ``predicted``, ``inpainted`` — and 32²-scale ``csa``, ``csa_decoder`` (B, C, H/8, W/8)
        and ``feature_hole`` (B, 1, H/8, W/8).
    """

    def __init__(self, config: CSAConfig) -> None:
        super().__init__()
        self.config = config
        self.rough = RoughNet(config, in_channels=4)
        self.refine = RefineNet(config, in_channels=7)
        if config.prefill:
            # Each stage starts as the identity on its input (zero residual) and learns corrections.
            for head in (self.rough.head[-1], self.refine.head[-1]):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        side = self.config.multiple
        if image.shape[-1] % side or image.shape[-2] % side:
            raise ValueError(f"CSA input sides must be multiples of {side}, got {tuple(image.shape[-2:])}")
        mask = mask.to(image.dtype)
        known = 1.0 - mask
        scaled = image * 2.0 - 1.0
        start = pyramid_fill(scaled, mask) if self.config.prefill else scaled * known
        coarse = self._residual(start, self.rough(torch.cat([start, mask], dim=1)))
        coarse_inpainted = mask * coarse + known * scaled
        hole32 = feature_hole_mask(mask, CSA_LEVEL)
        refine_in = torch.cat([coarse_inpainted, scaled * known, mask], dim=1)
        refined, csa, twin = self.refine(refine_in, hole32)
        predicted = self._residual(coarse_inpainted, refined)
        inpainted = mask * predicted + known * scaled
        to_unit = lambda t: (t + 1.0) * 0.5  # noqa: E731
        return {
            "coarse": to_unit(coarse),
            "coarse_inpainted": to_unit(coarse_inpainted),
            "predicted": to_unit(predicted),
            "inpainted": to_unit(inpainted),
            "csa": csa,
            "csa_decoder": twin,
            "feature_hole": hole32,
        }

    def _residual(self, start: Tensor, raw: Tensor) -> Tensor:
        if self.config.prefill:
            return (start + raw).clamp(-1.0, 1.0)
        return torch.tanh(raw)
