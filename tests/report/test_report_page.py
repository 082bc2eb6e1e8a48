"""The report read as files, with no browser: the HTML, its data, every picture it names."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import read_data, run_eval

from restore.data.archive import open_archive
from restore.data.images import read_image


class _Page(HTMLParser):
    """Collects tags with their attributes, and the text of table cells by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id")
            self.rows[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
            self.rows[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture()
def report(make_inputs, tmp_path: Path) -> dict:
    inputs = make_inputs(count=7)
    out = tmp_path / "report"
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["ns"], "--target", inputs["in"], "--masks", inputs["masks"],
                      "--report", out, "--thumbnail-size", "32")
    assert result.exit_code == 0, result.output
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    return {"dir": out, "page": page, "data": read_data(out), "metrics": json.loads((out / "metrics.json").read_text()), **inputs}


def test_the_tables_hold_every_run_and_bucket(report: dict) -> None:
    rows = report["page"].rows
    header, *body = rows["metrics-table"]
    assert header[:5] == ["masks", "method", "images", "PSNR dB", "SSIM"] and "SWD" in header and "detail" in header
    runs = report["metrics"]["runs"]
    buckets = [*runs["telea"]["buckets"], "all"]
    assert len(body) == 2 * len(buckets)
    for bucket_index, bucket in enumerate(buckets):
        first, second = body[2 * bucket_index], body[2 * bucket_index + 1]
        assert first[0] == bucket and first[1] == "telea" and second[0] == "ns"  # the bucket cell spans both rows
        cell = runs["telea"]["overall"] if bucket == "all" else runs["telea"]["buckets"][bucket]
        assert first[2] == str(cell["count"]) and first[3] == f"{cell['psnr']:.2f}" and first[4] == f"{cell['ssim']:.4f}"
    assert [row[0] for row in rows["runs-table"][1:]] == ["telea", "ns"]


def test_the_page_needs_nothing_from_the_network(report: dict) -> None:
    root: Path = report["dir"]
    referenced = [a.get("src") or a.get("href") for tag, a in report["page"].tags if tag in ("script", "link", "img", "a")]
    assert sorted(r for r in referenced if r) == ["assets/report.css", "assets/report.js", "data.js"]
    for name in referenced:
        assert (root / name).is_file()
    for path in [root / "index.html", root / "assets" / "report.js", root / "assets" / "report.css"]:
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", path.read_text()), path  # no CDN, no URL at all


def test_the_data_are_complete_and_every_picture_exists(report: dict) -> None:
    data, root = report["data"], report["dir"]
    archive = open_archive(report["in"])
    n = len(archive.keys)
    assert data["keys"] == archive.keys and data["labels"] == ["telea", "ns"] and data["has_target"] is True
    assert data["columns"][0] == {"id": "in", "title": "masked input", "base": "orig"}
    assert [c["id"] for c in data["columns"]] == ["in", "m0", "m1", "orig"]
    assert [m["name"] for m in data["metrics"]] == ["psnr", "ssim", "swd", "detail", "l1"]
    runs = report["metrics"]["runs"]
    for label_index, label in enumerate(data["labels"]):
        for metric in data["metrics"]:
            values = data["values"][label_index][metric["name"]]
            assert len(values) == n
            expected = [row[metric["name"]] for row in runs[label]["images"]]
            assert values == pytest.approx([round(v, metric["digits"]) for v in expected], abs=10 ** -metric["digits"])
    for i, key in enumerate(data["keys"]):
        assert data["hole"][i] == pytest.approx(report["holes"][key].mean(), abs=1e-4)
        assert data["buckets"][data["bucket"][i]] == runs["telea"]["images"][i]["bucket"]
        for column in data["columns"]:  # the masked input is drawn from the original's picture
            name = column.get("base", column["id"])
            path = root / data["pictures"]["pattern"].format(folder=i // data["pictures"]["folder_size"], index=i, column=name)
            thumb = read_image(path)
            assert thumb.shape == (data["height"][i], data["width"][i], 3) and max(thumb.shape[:2]) == 32
        holes = read_image(root / data["pictures"]["holes"].format(folder=i // data["pictures"]["folder_size"], index=i))
        assert holes.shape[:2] == (2 * data["height"][i], data["width"][i])
    files = sorted(p.relative_to(root).as_posix() for p in (root / "images").rglob("*") if p.is_file())
    assert len(files) == n * len(data["columns"])  # a picture per restoration and of the original, the overlays; nothing else


def test_every_sort_key_exists_in_the_data(report: dict) -> None:
    """The script sorts by data["values"][label][metric] and by data["hole"]: all present and numeric."""
    data = report["data"]
    assert all(isinstance(h, float) for h in data["hole"])
    for label_values in data["values"]:
        assert set(label_values) == {m["name"] for m in data["metrics"]}
        assert all(v is None or isinstance(v, (int, float)) for values in label_values.values() for v in values)
    assert {m["better"] for m in data["metrics"]} <= {"higher", "lower", "one"}
