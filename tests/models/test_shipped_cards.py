"""Every shipped weights file has a model card that names its exact bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.checkpoint import load_checkpoint
from restore.paths import WEIGHTS_DIR, file_digest

SHIPPED = sorted(WEIGHTS_DIR.glob("*.pt"))


def test_weights_ship() -> None:
    assert SHIPPED, f"no weights in {WEIGHTS_DIR}"


@pytest.mark.parametrize("weights", SHIPPED, ids=lambda path: path.name)
def test_each_shipped_file_has_a_card_with_its_digest_size_and_steps(weights: Path) -> None:
    card = weights.with_suffix(".md")
    assert card.is_file(), f"{weights.name} ships without {card.name}"
    text = card.read_text()
    assert file_digest(weights) in text, f"{card.name} describes other bytes than {weights.name} (regenerate it after shipping)"
    assert weights.stat().st_size <= 16e6, f"{weights.name} is over the 16 MB a shipped file may take"
    steps = int(load_checkpoint(weights)["metadata"].get("total_steps", 0))
    assert f"{steps} steps in all" in text, f"{card.name} does not give the {steps} steps {weights.name} holds"
