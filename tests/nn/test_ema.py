"""Moving average of weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from restore.nn.ema import ExponentialMovingAverage


def test_average_follows_the_formula_with_warm_up() -> None:
    model = nn.Linear(3, 2)
    ema = ExponentialMovingAverage(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # n = 0: decay = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.module.weight, 0.1 * start + 0.9 * (start + 1.0))
    for _ in range(200):
        ema.update(model)
    assert torch.allclose(ema.module.weight, model.weight, atol=1e-6)
    assert int(ema.num_updates) == 201 and not ema.module.weight.requires_grad


def test_state_dict_round_trip_and_reset() -> None:
    model = nn.Linear(3, 2)
    ema = ExponentialMovingAverage(model, decay=0.99)
    ema.update(model)
    other = ExponentialMovingAverage(nn.Linear(3, 2), decay=0.99)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight) and int(other.num_updates) == 1
    with torch.no_grad():
        model.weight.mul_(3)
    other.reset(model)
    assert torch.equal(other.module.weight, model.weight)
    with pytest.raises(ValueError, match="decay"):
        ExponentialMovingAverage(model, decay=1.0)
