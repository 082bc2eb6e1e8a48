"""Where bf16 is used by default, and the environment override."""

from __future__ import annotations

import pytest

from restore.hardware import cpu_has_amx_bf16, prefers_bf16


def test_cpu_default_follows_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESTORE_BF16", raising=False)
    assert prefers_bf16("cpu") == cpu_has_amx_bf16()


@pytest.mark.parametrize("value, expected", [("0", False), ("off", False), ("1", True), ("on", True)])
def test_environment_forces_the_choice(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("RESTORE_BF16", value)
    assert prefers_bf16("cpu") is expected


def test_loaded_csa_follows_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from restore.models.csa.inpainter import load_csa_inpainter
    from restore.models.registry import METHODS

    monkeypatch.setenv("RESTORE_BF16", "0")
    assert load_csa_inpainter(METHODS["csa"].shipped_checkpoint).bf16 is False
    monkeypatch.setenv("RESTORE_BF16", "1")
    assert load_csa_inpainter(METHODS["csa"].shipped_checkpoint).bf16 is True
