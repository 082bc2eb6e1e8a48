"""The project's kernels as torch operators (``torch.ops.restore.*``), each with a reference.

* :func:`patch_similarity` — cosine similarity of every query patch with every usable
  key patch (the full score volume, for contextual attention's softmax).
* :func:`patch_best_match` — its fused top-1 (index and score per query), never
  materialising the volume (CSA's search).
* :func:`csa_propagate` — CSA's sequential propagation through the hole.
* :func:`masked_gradient_penalty` — WGAN-GP restricted to the hole, twice differentiable.

Each ``op`` runs the compiled CPU/CUDA kernel when :func:`has_ops` is true and falls
back to ``op_reference`` (plain, differentiable PyTorch with the same semantics)
otherwise, and inside ``with use_reference():``. Flat positions are ``y * W + x`` throughout.
"""

from __future__ import annotations

from ._ext import has_ops, use_reference
from .csa_propagate import csa_propagate, csa_propagate_reference
from .masked_gradient_penalty import masked_gradient_penalty, masked_gradient_penalty_reference
from .patch_best_match import patch_best_match, patch_best_match_reference
from .patch_similarity import patch_similarity, patch_similarity_reference

__all__ = [
    "csa_propagate",
    "csa_propagate_reference",
    "has_ops",
    "masked_gradient_penalty",
    "masked_gradient_penalty_reference",
    "patch_best_match",
    "patch_best_match_reference",
    "patch_similarity",
    "patch_similarity_reference",
    "use_reference",
]
