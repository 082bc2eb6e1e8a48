"""Per-term gradient norms of the generator (:mod:`restore.training.loss_balance`)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import smoke_photos, smoke_size

from restore.data.datasets import TrainingBatches
from restore.models.registry import build, get_method
from restore.training.loss_balance import shares, term_gradients


def _trainer(name: str, **overrides):
    method = get_method(name)
    torch.manual_seed(0)
    config = build(name, **{**method.smoke_config, **overrides})
    return method.trainer_class()(config, device="cpu", vgg_weights="random", bf16=False)


def _batch(name: str):
    return TrainingBatches(smoke_photos(), size=smoke_size(name), batch_size=2, mask_kinds=("box", "freeform"), seed=3).batch(0)


#: Per method, settings that keep the test quick (DeepGIN's VGG terms on random weights cost most).
QUICK = {"glcic": {}, "deepgin": {"perceptual_weight": 0.0, "style_weight": 0.0}}


@pytest.mark.parametrize("name", sorted(QUICK))
def test_a_terms_gradient_norm_is_linear_in_its_weight_and_nothing_is_updated(name: str) -> None:
    images, masks = _batch(name)
    trainer = _trainer(name, adversarial_weight=0.01, **QUICK[name])
    before = {key: value.clone() for key, value in trainer.modules()["generator"].state_dict().items()}
    first = term_gradients(trainer, images, masks)
    assert "adversarial" in first and all(term.gradient_norm > 0 for term in first.values()), first
    after = trainer.modules()["generator"].state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before if after[key].is_floating_point() and "running" not in key)

    tenfold = _trainer(name, adversarial_weight=0.1, **QUICK[name])
    second = term_gradients(tenfold, images, masks)
    assert second["adversarial"].weight == pytest.approx(10 * first["adversarial"].weight)
    assert second["adversarial"].gradient_norm == pytest.approx(10 * first["adversarial"].gradient_norm, rel=1e-3)
    assert second["adversarial"].value == pytest.approx(first["adversarial"].value, rel=1e-4)
    others = [key for key in first if key != "adversarial"]
    assert others and all(second[key].gradient_norm == pytest.approx(first[key].gradient_norm, rel=1e-4) for key in others)


def test_shares_sum_to_one_in_proportion_to_the_norms() -> None:
    from restore.training.loss_balance import TermGradient

    terms = {"pixel": TermGradient(1.0, 0.2, 3.0), "adversarial": TermGradient(0.1, -0.5, 1.0)}
    assert shares(terms) == {"pixel": pytest.approx(0.75), "adversarial": pytest.approx(0.25)}
    assert shares({"pixel": dataclasses.replace(terms["pixel"], gradient_norm=0.0)}) == {"pixel": 0.0}
