"""Thumbnails and hole outlines of the report, and the report modules' imports."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from restore.report.thumbnails import (
    OUTLINE_RGB,
    encode_holes,
    hole_outline,
    thumbnail_shape,
    thumbnails,
)


@pytest.mark.parametrize(("size", "side", "expected"), [((600, 400), 256, (256, 171)), ((40, 30), 256, (40, 30)),
                                                         ((1, 5000), 256, (1, 256)), ((256, 256), 256, (256, 256))])
def test_thumbnail_shape_keeps_the_aspect_and_never_enlarges(size, side, expected) -> None:
    assert thumbnail_shape(*size, side) == expected


def test_the_outline_rings_the_hole_from_outside() -> None:
    hole = np.zeros((10, 10), bool)
    hole[3:6, 4:7] = True
    ring = hole_outline(hole, (10, 10))
    assert not (ring & hole).any()
    assert ring.sum() == 5 * 5 - 3 * 3 and ring[2, 3] and ring[6, 7]


def test_a_thin_scratch_survives_shrinking() -> None:
    hole = np.zeros((2048, 2048), bool)
    hole[1000, 100:1900] = True  # 1 px wide at 2048 px: 1/8 px at 256
    ring = hole_outline(hole, (256, 256))
    assert ring[124:127, 20:230].any(axis=0).all()


def test_the_overlay_png_holds_white_holes_over_the_outline() -> None:
    hole = np.zeros((4, 6), bool)
    hole[1:3, 2:4] = True
    overlay = np.asarray(Image.open(io.BytesIO(encode_holes(hole, (4, 6)))).convert("RGBA"))
    assert overlay.shape == (8, 6, 4)
    fill, ring = overlay[:4], overlay[4:]
    assert ((fill[..., 3] == 255) == hole).all() and (fill[hole][:, :3] == 255).all()
    assert ((ring[..., 3] == 255) == hole_outline(hole, (4, 6))).all() and tuple(ring[0, 1, :3]) == OUTLINE_RGB


def test_pictures_are_the_restorations_then_the_original() -> None:
    image = np.full((8, 12, 3), 40, np.uint8)
    hole = np.zeros((8, 12), bool)
    hole[:4] = True
    restored = [np.full_like(image, 90), np.full_like(image, 140)]
    shape, pictures, _ = thumbnails(hole, image, restored, side=256, quality=95)
    decoded = [np.asarray(Image.open(io.BytesIO(p))) for p in pictures]
    assert shape == (8, 12) and [int(d[7, 0, 0]) for d in decoded] == pytest.approx([90, 140, 40], abs=4)
    _, without_target, _ = thumbnails(hole, None, restored, side=256)
    assert len(without_target) == 2  # the masked input is drawn from the first restoration by the page


def test_the_report_modules_import_no_torch() -> None:
    code = ("import sys\nimport restore.report.builder, restore.report.page, restore.report.folder, restore.report.metrics_files\n"
            "import restore.comparison\nprint('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
