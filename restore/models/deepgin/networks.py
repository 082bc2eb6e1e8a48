"""DeepGIN's generator (the official code's ``ImageTinker2``) and its two spectral-norm patch discriminators.

Layer by layer as rlct1/gin (``models/networks.py``), which is the network the paper's Table 1
counted (42,930,186 parameters at width 64, 8,167,843 of them in the coarse stage): replicate
padding everywhere, LeakyReLU 0.2 between layers, no normalisation, no output activation
(outputs are unbounded; ``predicted`` is clamped to [0, 1]), bilinear ×2 up-sampling with
``align_corners=True`` (``nn.UpsamplingBilinear2d``), convolution weights Kaiming-normal × 0.1
with zero biases (the paper's "smaller initialisation" of ESRGAN; ``config.init_scale``). With
width ``c`` and a 256² input:

* coarse stage G1 on ``[image with holes painted white (``prefill``: filled push-pull), mask]``:
  7×7 c/2 → 4×4/2 c → 4×4/2 2c → 4×4/2 4c (32²) → SPD blocks at rates 2, 3, 4, 5, 6, 8, 10, 1 → three (×2 up, 3×3) to 2c,
  c, c/2 → 7×7 → 3;
* refinement stage G2 on ``[coarse pasted into the known pixels, mask]``: the same encoder one
  level deeper (8c at 16²); a bottleneck of SPD blocks at rates 2, 3, 4, 5 with a self-attention
  block in the middle (16²); skips from 32² (4c → 3×3 → 2c) and 64² (2c → 3×3 → c), each through
  its own self-attention block (multi-scale self-attention at 16², 32², 64²: 1/16, 1/8 and 1/4 of
  the input side at any size); decoder (×2 up, 3×3) to 4c, joined with the 32² skip, to 2c,
  joined with the 64² skip (``md2``), then up to c and c/2 at full resolution, 7×7 → 3;
* back projection: ``md2`` → 3×3 c/2 → 3×3 3 is the low-resolution image ``I_lr`` (64²); the
  full-resolution output, pasted into the known pixels, is brought down 4× and
  ``I_out = out + up4(I_lr − down4(out)) · α``, α a sigmoid 3×3 head on the last c/2 features.

Where this module differs from the code, and why:
* ``config.prefill`` (the default, our addition): the coarse stage sees a push-pull fill of the
  holes (:func:`~restore.nn.prefill.pyramid_fill`) instead of white, and the coarse output, the
  refinement's full-resolution output and ``I_lr`` are residuals over their stage's input image
  (the fill; the pasted coarse image; its 4×4 area down-sampling), at plain Kaiming
  initialisation (``init_scale`` 1) with every SPD block's fusion convolution and the three
  output heads at zero, so a new network is exactly the fill and its features keep unit scale.
  The code's network learns colour propagation from a white hole, which on the held-out photos
  had not reached the fill's PSNR after 1,693 steps at batch 4.

* back projection's ×0.25 down-sampling (and the low-resolution L1's targets, in the trainer) is
  a 4×4 average (area) and its ×4 up-sampling bilinear with ``align_corners=False``. The code's
  ``UpsamplingBilinear2d(scale_factor=0.25)`` (``align_corners=True``) point-samples the image
  on a grid that drifts off the 4×4 cells (pixel 4.05·i at 256², another grid at other sizes)
  and aliases; the paper only says "down-sampling by 4 times".
* every composite uses the binary mask. The code's test script composites with a soft alpha
  (the mask resized bilinearly), which changes known pixels near the hole: the
  :class:`~restore.models.base.Inpainter` contract forbids that. Inside the network the code
  composites with the binary training mask too, so the network is the code's.
* the self-attention's core (similarities, softmax, weighted sum) runs in float32 even under
  bfloat16 autocast (its logits are unscaled dot products of 256 channels at full width), and in
  chunks of queries when the map is large, so a whole 1024² image does not need a 17 GB matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.models.base import composite
from restore.models.deepgin.config import COARSE_DILATIONS, REFINE_DILATIONS, DeepGINConfig
from restore.nn.discriminators import PatchDiscriminator
from restore.nn.precision import float32_region
from restore.nn.prefill import pyramid_fill

#: Similarity scores a self-attention block holds at once per image (2^24 floats, 64 MB): the
#: 4096² matrix of a 256² input's 64² level fits whole; larger maps are done in query chunks.
ATTENTION_CHUNK_SCORES = 2**24
#: Back projection's scale: the low-resolution image is 1/4 of the input side (64² at 256²).
BP_SCALE = 4


def conv(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """A convolution with replicate padding: "same" at stride 1, halving at a 4×4 stride 2 (pad 1).

    Shape:
        x: (B, in_channels, H, W); returns (B, out_channels, H, W), or (B, out_channels, H/2, W/2) at stride 2.
    """
    padding = dilation * (kernel - 1) // 2 if stride == 1 else (kernel - stride) // 2
    return nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation=dilation, padding_mode="replicate")


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


class Upsample2x(nn.Module):
    """Bilinear ×2 up-sampling with ``align_corners=True`` (the code's ``nn.UpsamplingBilinear2d``).

    Shape:
        x: (B, C, H, W); returns (B, C, 2H, 2W).
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class SPDBlock(nn.Module):
    """Spatial pyramid dilation ResNet block (paper Fig. 3c/d; code ``MultiDilationResnetBlock[_v3]``).

    ``x + fuse(concat_r ReLU(conv3×3_r(x)))``: one 3×3 branch of C/len(rates) channels per
    dilation rate (replicate padding), ReLU on each, the branches concatenated back to C
    channels, a 3×3 fusion convolution without activation, and the residual.

    Args:
        channels: C (a multiple of the number of rates).
        dilations: the branches' rates (coarse stage: 2, 3, 4, 5, 6, 8, 10, 1; refinement: 2, 3, 4, 5).

    Shape:
        x: (B, C, H, W); returns (B, C, H, W).
    """

    def __init__(self, channels: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        if channels % len(dilations):
            raise ValueError(f"an SPD block splits its {channels} channels into {len(dilations)} equal branches")
        branch = channels // len(dilations)
        self.dilations = tuple(dilations)
        self.branches = nn.ModuleList(conv(channels, branch, 3, dilation=rate) for rate in dilations)
        self.fuse = conv(branch * len(dilations), channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fuse(torch.cat([F.relu(branch(x)) for branch in self.branches], dim=1))


def _attend(theta: Tensor, phi: Tensor, g: Tensor, chunk: int) -> Tensor:
    """``softmax(θᵀφ) gᵀ`` over positions, queries in chunks of ``chunk`` rows.

    Shape:
        theta, phi, g: (B, C', N); returns (B, C', N).
    """
    queries = theta.transpose(1, 2)  # (B, N, C')
    values = g.transpose(1, 2)  # (B, N, C')
    rows = [torch.softmax(queries[:, start : start + chunk] @ phi, dim=-1) @ values for start in range(0, queries.shape[1], chunk)]
    return torch.cat(rows, dim=1).transpose(1, 2)


class SelfAttention(nn.Module):
    """The non-local block of Wang et al. (embedded Gaussian), as the code's ``NonLocalBlock``.

    ``z = x + W·y``, ``y_i = Σ_j softmax_j(θ(x_i)·φ(x_j)) g(x_j)``: θ, φ, g and W are 1×1
    convolutions (C → C/2 → C), no 1/√d scaling, no normalisation; W starts at zero, so a new
    block is the identity. Every position attends to every other (N = H·W): the core runs in
    float32 and in query chunks of at most :data:`ATTENTION_CHUNK_SCORES` / N rows.

    Args:
        channels: C (even).

    Shape:
        x: (B, C, H, W); returns (B, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2 or channels % 2:
            raise ValueError(f"self-attention needs an even channel count >= 2, got {channels}")
        inner = channels // 2
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)
        self.reset_output()

    def reset_output(self) -> None:
        """Zero W (weight and bias): the block starts as the identity (the code's initialisation)."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        n = h * w
        chunk = max(1, ATTENTION_CHUNK_SCORES // n)
        theta, phi, g = (layer(x).flatten(2) for layer in (self.theta, self.phi, self.g))
        y = float32_region(_attend, theta, phi, g, chunk=chunk)
        y = y.to(theta.dtype).reshape(b, -1, h, w)
        return x + self.out(y)


def downsample(x: Tensor, scale: int = BP_SCALE) -> Tensor:
    """Area down-sampling by ``scale`` (the mean of each ``scale``² cell).

    Shape:
        x: (B, C, H, W), H and W multiples of ``scale``; returns (B, C, H/scale, W/scale).
    """
    return F.avg_pool2d(x, scale)


def upsample(x: Tensor, scale: int = BP_SCALE) -> Tensor:
    """Bilinear up-sampling by ``scale``, pixel centres aligned (``align_corners=False``).

    Shape:
        x: (B, C, h, w); returns (B, C, scale·h, scale·w).
    """
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


class BackProjection(nn.Module):
    """The paper's back projection (§4.1): a low-resolution image and a learnt weighting of its residual.

    ``I_lr = conv3×3(LReLU(conv3×3(md2)))`` at 1/4 resolution (plus ``low_start`` when given: the
    residual form of ``prefill``); the full-resolution output pasted
    into the known pixels, ``o``, is corrected by ``o + up4(I_lr − down4(o)) · α`` with
    ``α = σ(conv3×3(d4))`` (one channel, full resolution).

    Args:
        low_channels: channels of the 1/4-resolution decoder features (code: 2c).
        full_channels: channels of the last full-resolution features (code: c/2).

    Shape:
        low_features: (B, low_channels, H/4, W/4); full_features: (B, full_channels, H, W);
        output, image: (B, 3, H, W); holes: (B, 1, H, W) bool, True = hole; low_start: (B, 3, H/4,
        W/4) or None. Returns (refined (B, 3, H, W), low_resolution (B, 3, H/4, W/4), alpha (B, 1, H, W)).
    """

    def __init__(self, low_channels: int, full_channels: int) -> None:
        super().__init__()
        self.low = nn.Sequential(conv(low_channels, full_channels), _lrelu(), conv(full_channels, 3))
        self.alpha = conv(full_channels, 1)

    def forward(self, low_features: Tensor, full_features: Tensor, output: Tensor, image: Tensor, holes: Tensor,
                low_start: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        low_resolution = self.low(low_features)
        if low_start is not None:
            low_resolution = low_start + low_resolution
        pasted = torch.where(holes, output, image)  # promotes to the wider type: known pixels stay float32
        residual = low_resolution - downsample(pasted)
        alpha = torch.sigmoid(self.alpha(full_features))
        refined = pasted + upsample(residual) * alpha
        return refined, low_resolution, alpha


def masked_input(image: Tensor, holes: Tensor) -> Tensor:
    """The image with its holes painted white (1.0), as the code feeds both stages and the discriminators.

    Shape:
        image: (B, 3, H, W); holes: (B, 1, H, W) bool, True = hole; returns (B, 3, H, W).
    """
    return torch.where(holes, torch.ones((), dtype=image.dtype, device=image.device), image)


def _init_weights(network: nn.Module, scale: float = 0.1) -> None:
    """Kaiming-normal (fan-in) × ``scale`` convolution weights (code ``weights_init``: 0.1) and zero
    biases, then the self-attention blocks' W back to zero."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
            with torch.no_grad():
                module.weight.mul_(scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for module in network.modules():
        if isinstance(module, SelfAttention):
            module.reset_output()


def _zero_residual_branches(network: nn.Module, heads: tuple[nn.Conv2d, ...]) -> None:
    """Zero every SPD block's fusion convolution and the output ``heads`` (SkipInit / Fixup).

    At plain Kaiming scale each SPD block doubles its input (six in a row: ×57 at the coarse
    stage's output), so a residual network starts ~200 away from its fill, and its first hundreds
    of steps crush every weight until its features are ~1e-3: it then sits at the fill for good
    (runs/deepgin-d, 2,888 steps). Zeroed, every block starts as the identity, features keep
    unit scale, and the image outputs start exactly at their stage's input image.
    """
    fusions = tuple(module.fuse for module in network.modules() if isinstance(module, SPDBlock))
    for layer in fusions + heads:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


class CoarseStage(nn.Module):
    """G1: an encoder to 1/8 resolution, SPD blocks at 8 rates, a bilinear decoder (unbounded output).

    Shape:
        x: (B, 4, H, W) (white-painted image and mask), H and W multiples of 8; returns (B, 3, H, W).
    """

    def __init__(self, width: int, blocks: int) -> None:
        super().__init__()
        c, h = width, width // 2
        self.body = nn.Sequential(
            conv(4, h, 7), _lrelu(),
            conv(h, c, 4, 2), _lrelu(), conv(c, 2 * c, 4, 2), _lrelu(), conv(2 * c, 4 * c, 4, 2), _lrelu(),
            *[SPDBlock(4 * c, COARSE_DILATIONS) for _ in range(blocks)],
            Upsample2x(), conv(4 * c, 2 * c), _lrelu(),
            Upsample2x(), conv(2 * c, c), _lrelu(),
            Upsample2x(), conv(c, h), _lrelu(),
            conv(h, 3, 7),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class RefinementStage(nn.Module):
    """G2: an encoder to 1/16, SPD blocks at 4 rates around a self-attention block, attended skips
    at 1/8 and 1/4, a bilinear decoder, and back projection at 1/4.

    Shape:
        x: (B, 4, H, W) (coarse pasted into the known pixels, and the mask), H and W multiples of
        16; image: (B, 3, H, W); holes: (B, 1, H, W) bool. Returns (output before back projection
        (B, 3, H, W), refined (B, 3, H, W), low_resolution (B, 3, H/4, W/4), alpha (B, 1, H, W)).
    """

    def __init__(self, width: int, blocks: int, residual: bool = False) -> None:
        super().__init__()
        c, h = width, width // 2
        self.residual = residual
        self.encoder = nn.ModuleList([
            nn.Sequential(conv(4, h, 7), _lrelu()),
            nn.Sequential(conv(h, c, 4, 2), _lrelu()),
            nn.Sequential(conv(c, 2 * c, 4, 2), _lrelu()),
            nn.Sequential(conv(2 * c, 4 * c, 4, 2), _lrelu()),
            nn.Sequential(conv(4 * c, 8 * c, 4, 2), _lrelu()),
        ])  # fmt: skip
        self.skip_quarter = nn.Sequential(conv(2 * c, c), _lrelu(), SelfAttention(c))
        self.skip_eighth = nn.Sequential(conv(4 * c, 2 * c), _lrelu(), SelfAttention(2 * c))
        half = blocks // 2
        self.bottleneck = nn.Sequential(
            *[SPDBlock(8 * c, REFINE_DILATIONS) for _ in range(half)],
            SelfAttention(8 * c),
            *[SPDBlock(8 * c, REFINE_DILATIONS) for _ in range(blocks - half)],
        )
        self.up_eighth = nn.Sequential(Upsample2x(), conv(8 * c, 4 * c), _lrelu())
        self.mix_eighth = nn.Sequential(conv(4 * c + 2 * c, 4 * c), _lrelu())
        self.up_quarter = nn.Sequential(Upsample2x(), conv(4 * c, 2 * c), _lrelu())
        self.mix_quarter = nn.Sequential(conv(2 * c + c, 2 * c), _lrelu())
        self.up_full = nn.Sequential(Upsample2x(), conv(2 * c, c), _lrelu(), Upsample2x(), conv(c, h), _lrelu())
        self.output = conv(h, 3, 7)
        self.back_projection = BackProjection(2 * c, h)

    def forward(self, x: Tensor, image: Tensor, holes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        start = x[:, :3] if self.residual else None
        features = []
        for layer in self.encoder:
            x = layer(x)
            features.append(x)
        _, _, quarter, eighth, sixteenth = features
        del features
        skip_quarter, skip_eighth = self.skip_quarter(quarter), self.skip_eighth(eighth)
        x = self.mix_eighth(torch.cat([self.up_eighth(self.bottleneck(sixteenth)), skip_eighth], dim=1))
        md2 = self.mix_quarter(torch.cat([self.up_quarter(x), skip_quarter], dim=1))
        d4 = self.up_full(md2)
        output = self.output(d4)
        low_start = None
        if start is not None:
            output = start + output
            low_start = downsample(start)
        refined, low_resolution, alpha = self.back_projection(md2, d4, output, image, holes, low_start)
        return output, refined, low_resolution, alpha


class DeepGINGenerator(nn.Module):
    """DeepGIN's two-stage generator (code ``ImageTinker2``).

    Args:
        config: the method's hyper-parameters (``width`` = the code's ngf).

    Shape:
        image: (B, 3, H, W) in [0, 1] (hole content ignored); mask: (B, 1, H, W), 1 = hole
        (binarised at 0.5); H and W multiples of 16. Returns ``coarse`` (I_coarse), ``refined``
        (I_out, after back projection; the code's ``reconst_img``), ``low_resolution`` (I_lr,
        (B, 3, H/4, W/4)), all unbounded as the code's; ``alpha`` (B, 1, H, W), back projection's
        weight; ``predicted`` = ``refined`` clamped to [0, 1]; ``inpainted``, its composite with the
        known pixels (the binary mask).
    """

    def __init__(self, config: DeepGINConfig) -> None:
        super().__init__()
        self.config = config
        self.coarse = CoarseStage(config.width, config.coarse_blocks)
        self.refine = RefinementStage(config.width, config.refine_blocks, residual=config.prefill)
        _init_weights(self, config.init_scale)
        if config.prefill:
            _zero_residual_branches(self, (self.coarse.body[-1], self.refine.output, self.refine.back_projection.low[-1]))

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        multiple = self.config.multiple
        if image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise ValueError(f"DeepGIN needs sides that are multiples of {multiple}, got {tuple(image.shape[-2:])}")
        holes = mask > 0.5
        hole_channel = holes.to(image.dtype)
        if self.config.prefill:
            start = pyramid_fill(image, hole_channel)
            coarse = start + self.coarse(torch.cat([start, hole_channel], dim=1))
        else:
            coarse = self.coarse(torch.cat([masked_input(image, holes), hole_channel], dim=1))
        pasted = torch.where(holes, coarse, image)
        _, refined, low_resolution, alpha = self.refine(torch.cat([pasted, hole_channel.to(pasted.dtype)], dim=1), image, holes)
        predicted = refined.clamp(0.0, 1.0)
        if self.config.output_lowpass and not self.training:
            predicted = half_scale_lowpass(predicted)
        return {
            "coarse": coarse,
            "refined": refined,
            "low_resolution": low_resolution,
            "alpha": alpha,
            "predicted": predicted,
            "inpainted": composite(predicted, image, hole_channel),
        }


def half_scale_lowpass(image: Tensor) -> Tensor:
    """The official test script's last step: resize to half size and back, bicubic, clamped to [0, 1].

    Shape:
        image: (B, C, H, W), H and W even; returns (B, C, H, W).
    """
    half = F.interpolate(image, scale_factor=0.5, mode="bicubic", align_corners=False)
    return F.interpolate(half, size=image.shape[-2:], mode="bicubic", align_corners=False).clamp(0.0, 1.0)


class DeepGINDiscriminator(nn.Module):
    """The two conditional spectral-norm patch discriminators, D1 at the input's scale and D2 at half.

    Each is a :class:`~restore.nn.discriminators.PatchDiscriminator` (code ``NLayerDiscriminator``,
    ``n_layers_D`` = 2: SN 4×4/2 → SN 4×4/2 → SN 4×4/1 → SN 4×4/1 to a ``discriminator_features``-channel
    patch map, LeakyReLU 0.2, no normalisation layer, no sigmoid) on the masked input (holes white)
    concatenated with the image, 6 channels; D2 sees both averaged by a 3×3/2 pool
    (``count_include_pad=False``, pix2pixHD's ``MultiscaleDiscriminator``). The code pads its
    4×4 convolutions by 2 (67² and 35² maps at 256²); :class:`PatchDiscriminator` pads by 1 (62² and 30²).

    Args:
        config: ``discriminator_width``, ``discriminator_layers``, ``discriminator_features``.

    Shape:
        masked, image: (B, 3, H, W), H and W at least 32; returns a list of two patch maps,
        (B, F, h1, w1) and (B, F, h2, w2).
    """

    def __init__(self, config: DeepGINConfig) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(6, config.discriminator_width, config.discriminator_layers, norm="spectral",
                               out_channels=config.discriminator_features)
            for _ in range(2)
        )

    def forward(self, masked: Tensor, image: Tensor) -> list[Tensor]:
        x = torch.cat([masked, image], dim=1)
        outputs = []
        for index, scale in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs
