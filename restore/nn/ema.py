"""Exponential moving average of a network's weights."""

from __future__ import annotations

import copy

import torch
from torch import nn

from restore.nn.batch_norm import batch_norm_buffers


class ExponentialMovingAverage(nn.Module):
    """A frozen copy of ``model`` whose weights follow ``model``'s as a moving average.

    ``update`` sets ``avg = d·avg + (1 − d)·w`` with ``d = min(decay, (1 + n) / (10 + n))``,
    ``n`` the number of updates so far (a warm-up, so early averages are not dominated by
    the initial weights). Buffers are copied, except, with ``own_statistics``, the running
    statistics of batch-norm layers: those belong to the averaged weights, and whoever keeps the
    average measures them (GLCIC's trainer runs the average on each training batch;
    :func:`restore.nn.batch_norm.recompute_batch_norm`). ``n`` is a buffer, so the state dict
    holds everything needed to resume.

    Args:
        model: the network to follow (copied, not referenced).
        decay: the long-run decay (e.g. 0.999).
        own_statistics: keep the average's own batch-norm statistics instead of copying the model's.

    Attributes:
        module: the averaged network (eval mode, no gradients).
    """

    def __init__(self, model: nn.Module, decay: float, own_statistics: bool = False) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self._kept = batch_norm_buffers(self.module) if own_statistics else set()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> ExponentialMovingAverage:
        return super().train(False)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Restart the average at ``model``'s current weights (with a full decay: no warm-up)."""
        self.module.load_state_dict(model.state_dict())
        self.num_updates.fill_(10**6)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        n = int(self.num_updates)
        decay = min(self.decay, (1.0 + n) / (10.0 + n))
        for average, current in zip(self.module.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - decay)
        for (name, average), current in zip(self.module.named_buffers(), model.buffers(), strict=True):
            if name not in self._kept:
                average.copy_(current)
        self.num_updates += 1
