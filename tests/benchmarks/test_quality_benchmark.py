"""``benchmarks/quality.py`` end to end on one real image: it runs, and its JSON holds what the cards read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import shared_data

REPO = Path(__file__).resolve().parents[2]


def test_quality_benchmark_scores_a_method_beside_a_baseline(tmp_path: Path) -> None:
    shared_data("eval", "kodak24")
    out = tmp_path / "quality.json"
    command = [sys.executable, str(REPO / "benchmarks" / "quality.py"), "--methods", "csa", "--baselines", "telea",
               "--sets", "kodak24", "--limit", "1", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    results = data["sets"]["kodak24"]["results"]
    assert set(results) == {"csa", "telea"} and data["sets"]["kodak24"]["images"] == 1
    assert data["methods"]["csa"]["checkpoint_digest"].startswith("sha256:")
    assert set(results["telea"]) == {"10-20%", "20-30%", "30-40%", "40-50%", "centre"}
    assert results["csa"]["centre"]["psnr"] > 10
