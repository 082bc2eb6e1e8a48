"""``restore eval`` with several --pred archives and --report: metrics per run, the report folder, its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import read_data, restore_with, run_eval

from restore.cli import main
from restore.data.images import write_image


def _compare(inputs: dict, report: Path, *extra: str):
    return run_eval("--pred", inputs["telea"], "--pred", inputs["ns"], "--target", inputs["in"], "--masks", inputs["masks"],
                    "--report", report, *extra)


def test_two_methods_scored_in_one_run_match_single_runs(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs()
    report = tmp_path / "report"
    result = _compare(inputs, report, "--json", tmp_path / "all.json")
    assert result.exit_code == 0, result.output
    assert "## telea" in result.output and "## ns" in result.output
    both = json.loads((tmp_path / "all.json").read_text())
    assert both["labels"] == ["telea", "ns"] and set(both["runs"]) == {"telea", "ns"}
    assert json.loads((report / "metrics.json").read_text()) == both
    for method in ("telea", "ns"):
        single = run_eval("--pred", inputs[method], "--target", inputs["in"], "--masks", inputs["masks"], "--json", tmp_path / f"{method}.json")
        assert single.exit_code == 0, single.output
        alone = json.loads((tmp_path / f"{method}.json").read_text())
        assert both["runs"][method]["overall"] == alone["overall"] and both["runs"][method]["images"] == alone["images"]
        assert both["runs"][method]["buckets"] == alone["buckets"]
    markdown = (report / "metrics.md").read_text()
    assert markdown.index("## telea") < markdown.index("## ns") and markdown.count("| all | 8 |") == 2
    with open(report / "per_image.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == ["telea"] * 8 + ["ns"] * 8
    assert float(rows[9]["psnr"]) == pytest.approx(both["runs"]["ns"]["images"][1]["psnr"])


def test_labels_come_from_the_archives_or_from_label(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs()
    restore_with(inputs["in"], inputs["root"] / "csa.zarr", "telea", inputs["holes"],
                 {"method": "csa", "checkpoint": "/x/restore/weights/csa-psnr.pt", "checkpoint_digest": "sha256:" + "ab" * 32})
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["root"] / "csa.zarr", "--target", inputs["in"],
                      "--masks", inputs["masks"], "--report", tmp_path / "r1")
    assert result.exit_code == 0, result.output
    data = read_data(tmp_path / "r1")
    assert data["labels"] == ["telea", "csa (csa-psnr)"]
    assert "sha256:abababababab" in (tmp_path / "r1" / "index.html").read_text()
    result = _compare(inputs, tmp_path / "r2", "--label", "Telea <fast>", "--label", "Navier-Stokes")
    assert result.exit_code == 0, result.output
    assert read_data(tmp_path / "r2")["labels"] == ["Telea <fast>", "Navier-Stokes"]
    assert "Telea &lt;fast&gt;" in (tmp_path / "r2" / "index.html").read_text()


@pytest.mark.parametrize(("labels", "message"), [(["one"], "1 label(s) for 2 --pred"), (["a", "a"], "label 'a' is given twice")])
def test_bad_labels_are_usage_errors(make_inputs, tmp_path: Path, labels: list[str], message: str) -> None:
    inputs = make_inputs(count=2)
    result = _compare(inputs, tmp_path / "r", *[a for label in labels for a in ("--label", label)])
    assert result.exit_code == 2 and message in result.output and "'--label'" in result.output
    assert not (tmp_path / "r").exists()


def test_same_run_twice_gets_distinct_labels(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=2)
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["telea"], "--target", inputs["in"], "--masks", inputs["masks"],
                      "--report", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert read_data(tmp_path / "r")["labels"] == ["telea [telea.zarr] #1", "telea [telea.zarr] #2"]


def test_without_target_the_report_shows_restorations_without_metrics(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=3)
    report = tmp_path / "r"
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["ns"], "--masks", inputs["masks"], "--report", report)
    assert result.exit_code == 0, result.output
    assert {p.name for p in report.iterdir()} == {"index.html", "data.js", "assets", "images"}
    data = read_data(report)
    assert data["has_target"] is False and data["values"] == [] and data["metrics"] == []
    assert data["columns"] == [{"id": "in", "title": "masked input", "base": "m0"}, {"id": "m0", "title": "telea"}, {"id": "m1", "title": "ns"}]
    page = (report / "index.html").read_text()
    assert 'id="metrics-table"' not in page and "no original (no metrics)" in page


def test_target_is_needed_without_report(make_inputs) -> None:
    inputs = make_inputs(count=2)
    result = run_eval("--pred", inputs["telea"], "--masks", inputs["masks"])
    assert result.exit_code == 2 and "'--target'" in result.output and "unless --report" in result.output


@pytest.mark.parametrize("option", ["--json", "--fid-weights"])
def test_metric_outputs_need_a_target(make_inputs, tmp_path: Path, option: str) -> None:
    inputs = make_inputs(count=2)
    (tmp_path / "w.pth").write_bytes(b"x")
    value = tmp_path / ("m.json" if option == "--json" else "w.pth")
    result = run_eval("--pred", inputs["telea"], "--masks", inputs["masks"], "--report", tmp_path / "r", option, value)
    assert result.exit_code == 2 and f"'{option}'" in result.output and "needs --target" in result.output
    assert not (tmp_path / "r").exists()


def test_an_existing_report_is_kept_unless_overwrite(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=2)
    report = tmp_path / "r"
    report.mkdir()
    (report / "notes.txt").write_text("mine")
    assert _compare(inputs, report).exit_code == 0
    before = (report / "index.html").read_text()
    (report / "index.html").write_text("edited")
    result = _compare(inputs, report)
    assert result.exit_code == 2 and "exists (--overwrite replaces it)" in result.output and "'--report'" in result.output
    assert (report / "index.html").read_text() == "edited"
    result = run_eval("--pred", inputs["ns"], "--masks", inputs["masks"], "--report", report, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (report / "index.html").read_text() != "edited" and (report / "notes.txt").read_text() == "mine"
    # the new report (no target) leaves no metrics file of the old one behind
    assert {p.name for p in report.iterdir()} == {"index.html", "data.js", "assets", "images", "notes.txt"}
    assert before != (report / "index.html").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.tmp")]


def test_a_failure_while_building_leaves_no_report(make_inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.report.builder as builder

    inputs = make_inputs(count=4)
    real, calls = builder.thumbnails, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(builder, "thumbnails", failing)
    result = _compare(inputs, tmp_path / "r", "--json", tmp_path / "m.json")
    assert result.exit_code == 1 and "disk full" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no report, no JSON, no temporary folder


def test_a_report_path_that_is_a_file_is_refused(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=2)
    (tmp_path / "file").write_text("x")
    result = _compare(inputs, tmp_path / "file")
    assert result.exit_code == 2 and "is a file" in result.output and "'--report'" in result.output


def test_pred_of_other_size_is_refused(make_inputs, tmp_path: Path) -> None:
    inputs, other = make_inputs(count=2), make_inputs(count=2, height=30, name="small")
    result = run_eval("--pred", inputs["telea"], "--pred", other["ns"], "--target", inputs["in"], "--masks", inputs["masks"], "--report", tmp_path / "r")
    assert result.exit_code == 2 and "image 'img000'" in result.output and "'--pred'" in result.output
    assert "(30, 48, 3)" in result.output and "(36, 48, 3)" in result.output


def test_preds_of_other_keys_are_refused_without_target(make_inputs, tmp_path: Path) -> None:
    inputs, other = make_inputs(count=3), make_inputs(count=2, name="fewer")
    result = run_eval("--pred", inputs["telea"], "--pred", other["ns"], "--masks", inputs["masks"], "--report", tmp_path / "r")
    assert result.exit_code == 2 and "does not hold the images of" in result.output and "missing img002" in result.output


def test_an_ingested_archive_is_not_a_restoration(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=2)
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["in"], "--target", inputs["in"], "--masks", inputs["masks"])
    assert result.exit_code == 2 and "is not a restored archive (kind 'images')" in result.output and "'--pred'" in result.output


def test_a_restoration_of_other_photos_is_refused(make_inputs, tmp_path: Path) -> None:
    inputs, other = make_inputs(count=2), make_inputs(count=2, name="other")  # same keys and sizes, other photos
    result = run_eval("--pred", other["telea"], "--target", inputs["in"], "--masks", inputs["masks"])
    assert result.exit_code == 2 and "was restored from" in result.output and "not from --target" in result.output
    # a moved or copied target is still recognised by its photos
    import shutil

    shutil.copytree(inputs["in"], tmp_path / "copy.zarr")
    result = run_eval("--pred", inputs["telea"], "--target", tmp_path / "copy.zarr", "--masks", inputs["masks"])
    assert result.exit_code == 0, result.output


def test_progress_bar_on_more_than_20_images(make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=21, height=12, width=12)
    result = CliRunner().invoke(main, ["eval", "--pred", str(inputs["telea"]), "--masks", str(inputs["masks"]), "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "report: 100%" in result.output and "21/21" in result.output


def test_sixteen_bit_grey_photos_get_8_bit_rgb_thumbnails(tmp_path: Path) -> None:
    from restore.data.archive import open_archive
    from restore.data.images import read_image

    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    hole = np.zeros((20, 30), bool)
    hole[5:9, 4:20] = True
    write_image(photos / "g.png", (np.arange(600, dtype=np.uint16).reshape(20, 30, 1) * 100))
    write_image(masks / "g.png", hole.astype(np.uint8)[..., None] * 255)
    assert CliRunner().invoke(main, ["ingest", str(photos), str(tmp_path / "in.zarr")]).exit_code == 0
    restore_with(tmp_path / "in.zarr", tmp_path / "out.zarr", "telea", {"g": hole})
    assert open_archive(tmp_path / "out.zarr").dtype("g") == np.uint16
    result = run_eval("--pred", tmp_path / "out.zarr", "--target", tmp_path / "in.zarr", "--masks", masks, "--report", tmp_path / "r")
    assert result.exit_code == 0, result.output
    thumb = read_image(tmp_path / "r" / "images" / "0" / "0-orig.jpg")
    assert thumb.shape == (20, 30, 3) and thumb.dtype == np.uint8


def test_the_next_run_removes_what_a_killed_run_left(make_inputs, tmp_path: Path) -> None:
    import subprocess
    import sys

    inputs = make_inputs(count=2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = tmp_path / f".r.tmp-{dead.stdout.strip()}"
    (stale / "images").mkdir(parents=True)
    assert _compare(inputs, tmp_path / "r").exit_code == 0
    assert not stale.exists() and (tmp_path / "r" / "index.html").is_file()
