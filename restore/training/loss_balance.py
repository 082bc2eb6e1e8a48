"""How much of the generator's gradient each loss term contributes.

A loss weight means nothing on its own: the paper's λ_adv = 0.001 beside its pixel, perceptual
and style terms may leave the adversarial term a thousandth of the gradient once the VGG terms
are off. :func:`term_gradients` measures, for one batch, the norm of each weighted term's
gradient with respect to the generator's parameters, so weights can be chosen by the share of
the update they carry (``benchmarks/loss_balance.py`` runs it on a training checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from restore.models.trainer import JOINT, GANTrainer


@dataclass(frozen=True)
class TermGradient:
    """One loss term on one batch: its weight, its unweighted value, ‖∂(weight·value)/∂θ_G‖₂."""

    weight: float
    value: float
    gradient_norm: float


def term_gradients(trainer: GANTrainer, images: Tensor, masks: Tensor, phase: str = JOINT) -> dict[str, TermGradient]:
    """Each generator term's weighted gradient norm over the generator's parameters.

    The trainer's modules are put in training mode (as in a step) and nothing is updated.

    Shape:
        images: (B, 3, H, W) in [0, 1]; masks: (B, 1, H, W), 1 = hole.
    """
    generator: nn.Module = trainer.modules()["generator"]
    parameters = [parameter for parameter in generator.parameters() if parameter.requires_grad]
    for module in trainer.modules().values():
        module.train()
    with torch.enable_grad():
        with trainer.autocast():
            out = trainer.generate(images, masks)
        terms = trainer.generator_terms(images, masks, out, phase)
        result = {}
        for name, (weight, value) in terms.items():
            gradients = torch.autograd.grad(weight * value, parameters, retain_graph=True, allow_unused=True)
            norm = torch.sqrt(sum((gradient.float() ** 2).sum() for gradient in gradients if gradient is not None))
            result[name] = TermGradient(float(weight), float(value.detach()), float(norm))
    return result


def shares(gradients: dict[str, TermGradient]) -> dict[str, float]:
    """Each term's gradient norm as a fraction of the terms' summed norms."""
    total = sum(term.gradient_norm for term in gradients.values())
    return {name: term.gradient_norm / total if total > 0 else 0.0 for name, term in gradients.items()}
