"""Which classical baseline each margin is taken over (restore/baselines.py)."""

from __future__ import annotations

import pytest

from restore.baselines import BASELINES, best_baseline, margins


def _results() -> dict[str, dict[str, float]]:
    """One mask set as the quality benchmark scores it: FSR the best fidelity, shift-map the best realism."""
    return {
        "telea": {"psnr": 27.0, "ssim": 0.90, "swd": 140.0, "detail": 0.55},
        "ns": {"psnr": 27.3, "ssim": 0.91, "swd": 135.0, "detail": 0.54},
        "fsr": {"psnr": 28.4, "ssim": 0.92, "swd": 150.0, "detail": 0.61},
        "shiftmap": {"psnr": 23.3, "ssim": 0.85, "swd": 44.0, "detail": 0.98},
    }


def test_fidelity_over_telea_ns_and_fsr_realism_over_telea_and_ns() -> None:
    assert BASELINES == ("telea", "ns", "fsr", "shiftmap")
    assert best_baseline(_results()) == {"psnr": 28.4, "ssim": 0.92, "swd": 135.0, "detail": 0.55}


def test_margins_and_the_shift_map_anchor() -> None:
    ours = {"psnr": 29.0, "ssim": 0.93, "swd": 88.0, "detail": 0.60}
    m = margins(ours, _results())
    assert m["psnr"] == pytest.approx(0.6) and m["ssim"] == pytest.approx(0.01)
    assert m["swd"] == pytest.approx(88 / 135) and m["detail"] == pytest.approx(0.05) and m["swd_anchor"] == pytest.approx(2.0)


def test_quick_runs_with_fewer_baselines_and_missing_realism() -> None:
    """``benchmarks/quality.py --baselines telea`` and older JSON without SWD still give margins."""
    only_telea = {"telea": _results()["telea"]}
    assert best_baseline(only_telea) == _results()["telea"]
    assert best_baseline({"fsr": _results()["fsr"], "shiftmap": _results()["shiftmap"]}) == {"psnr": 28.4, "ssim": 0.92}
    m = margins({"psnr": 28.0, "ssim": 0.9, "swd": None, "detail": None}, {"telea": {"psnr": 27.0, "ssim": 0.9, "swd": None}})
    assert m == {"psnr": 1.0, "ssim": 0.0}
