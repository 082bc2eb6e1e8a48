"""The report script's sorting, run in Node (no browser needed): every order the page offers."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from importlib import resources

import pytest

NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js (node) to run the report's script; none is installed")

SCRIPT = resources.files("restore.report") / "static" / "report.js"

#: Two runs over six images; None where a metric is undefined, inf for a perfect PSNR.
DATA = {
    "keys": ["a", "b", "c", "d", "e", "f"],
    "hole": [0.12, 0.45, 0.3, 0.3, 0.22, 0.18],
    "labels": ["telea", "csa"],
    "has_target": True,
    "metrics": [
        {"name": "psnr", "title": "PSNR dB", "better": "higher", "digits": 2},
        {"name": "swd", "title": "SWD", "better": "lower", "digits": 1},
        {"name": "detail", "title": "detail", "better": "one", "digits": 3},
    ],
    "values": [
        {"psnr": [20.0, 25.5, None, 18.25, math.inf, 25.5], "swd": [100, 80, 120, None, 0, 90], "detail": [0.5, 1.2, 0.9, 1.0, 1.0, 2.5]},
        {"psnr": [22.0, 24.0, 30.0, 19.0, math.inf, 26.5], "swd": [90, 85, 100, 70, 0, 95], "detail": [0.7, 1.1, 0.8, 0.6, 1.0, 0.5]},
    ],
    "pictures": {"pattern": "images/{folder}/{index}-{column}.jpg", "holes": "images/{folder}/{index}-holes.png", "folder_size": 4},
}

DRIVER = """
const api = require(process.argv[1]);
const data = JSON.parse(require("fs").readFileSync(0, "utf8").replace(/"inf"/g, "1e999"));
const out = {};
for (const o of api.sortOptions(data)) {
  out[o.id] = {text: o.text, orders: o.orders.map(p => p[0]),
               first: api.sortOrder(data, o.spec, o.orders[0][1]), second: api.sortOrder(data, o.spec, o.orders[1][1])};
}
out.extremes = api.extremes(data, 0, "psnr", 2);
out.pictures = [api.picture(data, 5, "m1"), api.holes(data, 3)];
out.format = [api.format(data, "psnr", 1e999), api.format(data, "swd", null), api.format(data, "detail", 0.12345)];
process.stdout.write(JSON.stringify(out));
"""


def _run(data: dict) -> dict:
    text = json.dumps(data).replace("Infinity", '"inf"')
    done = subprocess.run([NODE, "-e", DRIVER, str(SCRIPT)], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _quality(data: dict, label: int, metric: str, i: int) -> float | None:
    value = data["values"][label][metric][i]
    if value is None:
        return None
    better = next(m["better"] for m in data["metrics"] if m["name"] == metric)
    return value if better == "higher" else -value if better == "lower" else -abs(math.log(value))


def _expected(values: list[float | None], ascending: bool) -> list[int]:
    defined = [i for i, v in enumerate(values) if v is not None]
    ordered = sorted(defined, key=lambda i: (values[i] if ascending else -values[i], i))
    return ordered + [i for i, v in enumerate(values) if v is None]


def test_every_order_the_page_offers() -> None:
    out = _run(DATA)
    n = len(DATA["keys"])
    assert out["order"]["first"] == list(range(n)) and out["order"]["second"] == list(range(n))[::-1]
    assert out["hole"]["orders"] == ["largest holes first", "smallest holes first"]
    assert out["hole"]["first"] == _expected(DATA["hole"], ascending=False)
    for metric in ("psnr", "swd", "detail"):
        for label in range(2):
            option = out[f"metric:{label}:{metric}"]
            assert option["orders"] == ["worst first", "best first"]
            values = [_quality(DATA, label, metric, i) for i in range(n)]
            assert option["first"] == _expected(values, ascending=True), (metric, label)
            assert option["second"] == _expected(values, ascending=False), (metric, label)
        gap = out[f"gap:0:1:{metric}"]
        assert gap["text"].endswith("gap: telea vs csa") and gap["orders"][0] == "telea furthest behind first"
        a = [_quality(DATA, 0, metric, i) for i in range(n)]
        b = [_quality(DATA, 1, metric, i) for i in range(n)]
        diffs = [None if x is None or y is None else (0.0 if x == y else x - y) for x, y in zip(a, b, strict=True)]
        assert gap["first"] == _expected(diffs, ascending=True), metric  # ∞ − ∞ (two perfect images) is a tie
        assert gap["second"] == _expected(diffs, ascending=False), metric


def test_spot_checks_a_person_would_make() -> None:
    out = _run(DATA)
    assert out["metric:0:psnr"]["first"][:2] == [3, 0]  # telea's lowest PSNR first: d (18.25), a (20.0)
    assert out["metric:0:psnr"]["first"][-1] == 2  # c has no PSNR: last either way
    assert out["metric:0:psnr"]["second"][0] == 4  # the perfect image (inf) is the best
    assert out["metric:0:swd"]["first"][0] == 2  # the highest SWD is the worst
    assert out["metric:0:detail"]["first"][0] == 5  # detail 2.5 is further from 1 than 0.5 (ratios: 2.5x against 2x)
    assert out["gap:0:1:psnr"]["first"][0] == 0  # telea furthest behind csa: a (-2.0 dB); c (no PSNR) last
    assert out["extremes"] == {"worst": [3, 0], "best": [4, 5]}  # ties (b, f at 25.5) by position
    assert out["pictures"] == ["images/1/5-m1.jpg", "images/0/3-holes.png"]
    assert out["format"] == ["∞", "–", "0.123"]


def test_without_a_target_only_archive_order_and_hole_size() -> None:
    out = _run({**DATA, "has_target": False})
    assert [key for key in out if key not in ("extremes", "pictures", "format")] == ["order", "hole"]
