"""The latent search of Vitoria et al. (eqs. 4–8): find the z whose image agrees with the known pixels.

For an image y with known pixels M (here ``known`` = 1 − hole), minimise per image

    α·L_c + β·L_g + η·L_p,   L_c = Σ W·|G(z) − y|,   L_g = Σ W·|∇G(z) − ∇y|,   L_p = −D(G(z)),

with the hole-proximity weights W (:func:`proximity_weights`: non-zero only on known pixels
within ``window // 2`` of the hole, largest at its edge; Yeh et al.'s code inverts them) and
gradients by central differences, one-sided where a neighbour is a hole or off the image
(:func:`known_gradients`; the same stencil on G(z), so like is compared with like). Losses
are per-image sums over pixels and channels, on [−1, 1] images. Adam on z (learning rate
0.03, moments 0.9 and 0.999), z clipped to [−1, 1] after every step, the generator's batch
norm in eval mode. Every image gets the same ``restarts`` starting points (drawn from
N(0, 1) by ``seed``), searched together as one batch; the one with the lowest final loss is
kept. Each image's losses depend on its own z only, so results do not depend on batch-mates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def proximity_weights(hole: Tensor, window: int = 7) -> Tensor:
    """W(i) = (number of hole pixels in the ``window``² square around i) / window² on known pixels, 0 in the hole.

    Pixels off the image count as known (they are not hole).

    Shape:
        hole: (B, 1, H, W), 1 = hole; returns (B, 1, H, W).
    """
    hole = (hole > 0.5).to(torch.float32)
    share = F.avg_pool2d(hole, window, stride=1, padding=window // 2, count_include_pad=True)
    return (1.0 - hole) * share


def _shifted(x: Tensor, dy: int, dx: int) -> Tensor:
    """x moved so that out[i, j] = x[i + dy, j + dx] (zeros off the image)."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]


@dataclass(frozen=True)
class GradientStencil:
    """Per pixel and axis: which finite difference the known pixels allow.

    ``forward`` and ``backward`` are 1 where the next / previous pixel along the axis is known;
    both give a central difference, one of them a one-sided one, neither no gradient.

    Shape:
        each field: (B, 1, H, W) float 0/1.
    """

    next_x: Tensor
    prev_x: Tensor
    next_y: Tensor
    prev_y: Tensor

    @classmethod
    def from_known(cls, known: Tensor) -> GradientStencil:
        """The stencil of a known-pixel map (1 = known; off the image counts as unknown)."""
        return cls(_shifted(known, 0, 1), _shifted(known, 0, -1), _shifted(known, 1, 0), _shifted(known, -1, 0))


def _difference(x: Tensor, after: Tensor, before: Tensor, nxt: Tensor, prv: Tensor) -> Tensor:
    both = nxt * prv
    return both * (after - before) * 0.5 + nxt * (1 - prv) * (after - x) + prv * (1 - nxt) * (x - before)


def known_gradients(image: Tensor, stencil: GradientStencil) -> tuple[Tensor, Tensor]:
    """The image's x and y derivatives by the stencil's differences (0 where it has none).

    Shape:
        image: (B, C, H, W); returns two (B, C, H, W).
    """
    gx = _difference(image, _shifted(image, 0, 1), _shifted(image, 0, -1), stencil.next_x, stencil.prev_x)
    gy = _difference(image, _shifted(image, 1, 0), _shifted(image, -1, 0), stencil.next_y, stencil.prev_y)
    return gx, gy


@dataclass(frozen=True)
class SearchLosses:
    """Weights of the three terms (α, β, η) and the proximity window."""

    alpha: float = 0.1
    beta: float = 0.9
    eta: float = 0.5
    window: int = 7


class InpaintingObjective:
    """α·L_c + β·L_g + η·L_p for a batch of images, per image.

    Args:
        target: the images, in [−1, 1] (hole content ignored).
        hole: 1 = hole.
        losses: the weights.

    Shape:
        target: (B, 3, S, S); hole: (B, 1, S, S).
    """

    def __init__(self, target: Tensor, hole: Tensor, losses: SearchLosses) -> None:
        known = (hole <= 0.5).to(torch.float32)
        self.losses = losses
        self.weights = proximity_weights(hole, losses.window)
        self.target = target.float() * known
        self.stencil = GradientStencil.from_known(known)
        self.target_gx, self.target_gy = known_gradients(self.target, self.stencil)

    def terms(self, generated: Tensor, scores: Tensor) -> dict[str, Tensor]:
        """The three unweighted losses per image.

        Shape:
            generated: (B, 3, S, S) in [−1, 1]; scores: (B,); returns {name: (B,)}.
        """
        generated = generated.float()
        contextual = (self.weights * (generated - self.target).abs()).sum(dim=(1, 2, 3))
        gx, gy = known_gradients(generated, self.stencil)
        gradient = (self.weights * ((gx - self.target_gx).abs() + (gy - self.target_gy).abs())).sum(dim=(1, 2, 3))
        return {"contextual": contextual, "gradient": gradient, "prior": -scores.float()}

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        """α·L_c + β·L_g + η·L_p per image.

        Shape:
            returns (B,).
        """
        w = self.losses
        return w.alpha * terms["contextual"] + w.beta * terms["gradient"] + w.eta * terms["prior"]


@dataclass(frozen=True)
class SearchResult:
    """The best sample per image, its z and its final losses.

    Shape:
        images: (B, 3, S, S) in [−1, 1]; z: (B, latent); loss: (B,); history: (steps + 1, B),
        each image's loss averaged over its restarts, before every step and after the last.
    """

    images: Tensor
    z: Tensor
    loss: Tensor
    history: Tensor


def initial_latents(restarts: int, latent: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """The ``restarts`` starting points every image shares: N(0, 1) draws of ``seed``, one row at
    a time, so the first k rows are the same whatever the number of restarts.

    Shape:
        returns (restarts, latent).
    """
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.stack([torch.randn(latent, generator=generator) for _ in range(restarts)]).to(device)


def latent_search(
    generator: nn.Module,
    critic: nn.Module,
    target: Tensor,
    hole: Tensor,
    *,
    steps: int = 1000,
    restarts: int = 1,
    lr: float = 0.03,
    losses: SearchLosses = SearchLosses(),
    z_clip: float = 1.0,
    seed: int = 0,
    bf16: bool = False,
) -> SearchResult:
    """Search z for each image (all images and restarts in one batch).

    The networks' parameters get no gradients (only z is differentiated) and are not changed;
    the caller puts the generator in eval mode. Gradients are enabled inside, so this runs under
    the pipeline's ``no_grad``.

    Args:
        generator: z (N, latent) → images (N, 3, S, S) in [−1, 1].
        critic: images → scores (N,).
        target: the damaged images in [−1, 1].
        hole: 1 = hole.
        steps: Adam steps.
        restarts: starting points per image.
        lr: Adam's learning rate (moments 0.9, 0.999).
        losses: the weights of the objective.
        z_clip: clip z to [−z_clip, z_clip] after every step and at the start (0: never).
        seed: the starting points' seed.
        bf16: bfloat16 autocast for the networks (losses in float32).

    Shape:
        target: (B, 3, S, S); hole: (B, 1, S, S).
    """
    batch = target.shape[0]
    latent = generator.config.latent
    device = target.device
    objective = InpaintingObjective(target.repeat_interleave(restarts, 0), hole.repeat_interleave(restarts, 0), losses)
    z = initial_latents(restarts, latent, seed, device).repeat(batch, 1)
    if z_clip > 0:
        z = z.clamp(-z_clip, z_clip)
    z = z.detach().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr, betas=(0.9, 0.999))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def evaluate(latents: Tensor) -> tuple[Tensor, Tensor]:
        with autocast:
            images = generator(latents)
            scores = critic(images)
        return images.float(), objective.total(objective.terms(images, scores))

    history = []
    with torch.enable_grad():
        for _ in range(steps):
            _, loss = evaluate(z)
            history.append(loss.detach().view(batch, restarts).mean(1))
            (grad,) = torch.autograd.grad(loss.sum(), z)
            z.grad = grad
            optimizer.step()
            if z_clip > 0:
                with torch.no_grad():
                    z.clamp_(-z_clip, z_clip)
    with torch.no_grad():
        images, loss = evaluate(z.detach())
    history.append(loss.view(batch, restarts).mean(1))
    best = loss.view(batch, restarts).argmin(1) + torch.arange(batch, device=device) * restarts
    return SearchResult(images=images[best], z=z.detach()[best], loss=loss[best], history=torch.stack(history))
