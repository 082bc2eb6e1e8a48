"""Tiny archives for the report tests: photos, masks, and restorations by Telea and NS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from restore.cli import main
from restore.data.archive import open_archive
from restore.data.images import write_image
from restore.data.output_archive import OutputArchive
from restore.models.classical import OpenCVInpainter

#: Hole fractions cycled over the images (rows from the top): every bucket, and the 10 % edge.
FRACTIONS = (0.15, 0.25, 0.35, 0.45, 0.12, 0.22)


def _hole(index: int, height: int, width: int) -> np.ndarray:
    hole = np.zeros((height, width), bool)
    rows = int(round(FRACTIONS[index % len(FRACTIONS)] * height))
    top = (index * 3) % (height - rows + 1)
    hole[top : top + rows, :] = True
    return hole


def _photo(index: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([x * 4 + index * 10, y * 5, 255 - x * 3 - y * 2], -1)
    return np.clip(base + rng.normal(0, 4 + index % 5 * 6, (height, width, 3)), 0, 255).astype(np.uint8)


def restore_with(source_path: Path, out: Path, method: str, holes: dict[str, np.ndarray], attrs: dict | None = None) -> Path:
    """A restored archive of ``source_path`` by an OpenCV method (what restore batch --method writes)."""
    source = open_archive(source_path)
    inpainter = OpenCVInpainter(method)
    with OutputArchive.create(out, source, {"method": method, "checkpoint": None, **(attrs or {})}) as writer:
        for key in source.keys:
            writer.write(key, inpainter.inpaint_array(source.read(key), holes[key]))
    return out


@pytest.fixture()
def make_inputs(tmp_path: Path) -> Callable[..., dict]:
    """``make_inputs(count, height, width)``: photos, masks, in.zarr and telea.zarr / ns.zarr restorations."""

    def make(count: int = 8, height: int = 36, width: int = 48, name: str = "set") -> dict:
        root = tmp_path / name
        photos, masks = root / "photos", root / "masks"
        photos.mkdir(parents=True)
        masks.mkdir()
        holes = {}
        for i in range(count):
            key = f"img{i:03d}"
            holes[key] = _hole(i, height, width)
            write_image(photos / f"{key}.png", _photo(i, height, width))
            write_image(masks / f"{key}.png", holes[key].astype(np.uint8)[..., None] * 255)
        result = CliRunner().invoke(main, ["ingest", str(photos), str(root / "in.zarr")])
        assert result.exit_code == 0, result.output
        preds = {m: restore_with(root / "in.zarr", root / f"{m}.zarr", m, holes) for m in ("telea", "ns")}
        return {"root": root, "photos": photos, "masks": masks, "in": root / "in.zarr", "holes": holes, **preds}

    return make


def read_data(report: Path) -> dict:
    """The object ``report/data.js`` assigns (JSON, with Infinity for a perfect PSNR)."""
    text = (report / "data.js").read_text(encoding="utf-8")
    prefix = "window.RESTORE_REPORT = "
    assert text.startswith(prefix) and text.rstrip().endswith(";")
    import json

    return json.loads(text[len(prefix) :].rstrip().removesuffix(";"))


def run_eval(*args: str):
    """``restore eval ARGS`` in-process."""
    return CliRunner().invoke(main, ["eval", *[str(a) for a in args]])
