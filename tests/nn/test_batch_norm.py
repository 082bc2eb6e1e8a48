"""Batch-norm statistics of their own for moving averages, and measuring them afresh."""

from __future__ import annotations

import torch
from torch import nn

from restore.nn.batch_norm import batch_norm_buffers, recompute_batch_norm
from restore.nn.ema import ExponentialMovingAverage


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 1)
        self.norm = nn.BatchNorm2d(3)
        self.register_buffer("fill", torch.zeros(3))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(torch.cat([image, mask], 1)))


def test_recompute_gives_the_plain_mean_of_the_batches_statistics() -> None:
    torch.manual_seed(0)
    net = _Net()
    batches = [(torch.rand(4, 3, 5, 5) + k, torch.zeros(4, 1, 5, 5)) for k in range(3)]
    net.norm.running_mean.fill_(7.0)
    assert recompute_batch_norm(net.eval(), batches) == 3
    with torch.no_grad():
        means = torch.stack([net.conv(torch.cat(batch, 1)).mean(dim=(0, 2, 3)) for batch in batches])
        variances = torch.stack([net.conv(torch.cat(batch, 1)).var(dim=(0, 2, 3)) for batch in batches])
    assert torch.allclose(net.norm.running_mean, means.mean(0), atol=1e-6)
    assert torch.allclose(net.norm.running_var, variances.mean(0), atol=1e-5)
    assert net.norm.momentum == 0.1 and not net.training  # momentum and mode restored
    assert recompute_batch_norm(nn.Conv2d(1, 1, 1), []) == 0


def test_an_average_with_its_own_statistics_copies_every_other_buffer() -> None:
    net = _Net()
    assert batch_norm_buffers(net) == {"norm.running_mean", "norm.running_var", "norm.num_batches_tracked"}
    own, copied = ExponentialMovingAverage(net, 0.9, own_statistics=True), ExponentialMovingAverage(net, 0.9)
    net.norm.running_mean.fill_(3.0)
    net.fill.fill_(0.5)
    own.update(net)
    copied.update(net)
    assert torch.equal(own.module.norm.running_mean, torch.zeros(3)) and torch.equal(own.module.fill, net.fill)
    assert torch.equal(copied.module.norm.running_mean, net.norm.running_mean)
