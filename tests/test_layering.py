"""No import cycles, and the layers import only downwards (read from the source with ``ast``).

Intended direction: ``ops → nn → losses → models → inference → evaluation → training →
pipelines → cli``, with ``data``,
``checkpoint``, ``metrics`` and the small top-level helpers beside them. Lazy imports inside
functions count (they run too); imports under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import pytest
from layering import area, cycles, graph

#: package -> packages it must never import.
FORBIDDEN = {
    "ops": {"nn", "losses", "models", "training", "pipelines", "cli", "data"},
    "nn": {"losses", "models", "training", "pipelines", "cli", "data"},
    "losses": {"models", "training", "pipelines", "cli", "data"},
    "data": {"models", "training", "pipelines", "cli", "nn", "losses"},
    "checkpoint": {"models", "training", "pipelines", "cli"},
    "models": {"training", "pipelines", "cli"},
    "inference": {"training", "pipelines", "cli"},
    "evaluation": {"training", "pipelines", "cli"},
    "training": {"pipelines", "cli"},
    "pipelines": {"cli"},
    "metrics": {"models", "training", "pipelines", "cli"},
}


def test_no_cycle_between_packages() -> None:
    assert cycles(graph(by_area=True)) == []


def test_no_cycle_between_modules() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_downwards_only(package: str) -> None:
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in graph().items()
        if area(source) == package
        for target in targets
        if area(target) in FORBIDDEN[package]
    )
    assert wrong == []
