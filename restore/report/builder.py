"""Build a report folder one image at a time, while ``restore eval`` streams the archives.

Layout of a report folder::

    index.html              the page (metrics tables rendered in it; pictures by its script)
    data.js                 window.RESTORE_REPORT = {...}: keys, hole ratios, per-image metrics
    assets/report.js, report.css
    images/<i // 1000>/<i>-<column>.jpg    one thumbnail per image per restoration and of the original
    images/<i // 1000>/<i>-holes.png       the image's hole overlays (white holes over outline, transparent)

Columns are ``in`` (masked input: the ``orig`` thumbnail, or ``m0`` without an original,
under the white holes), ``m0`` … (each restoration, in ``--pred`` order) and ``orig`` (the
original, with a target). The data file names the picture paths by pattern, so it grows by
a few dozen bytes per image and metric only; the thumbnails are at most ``side`` px a
side, so the folder grows by roughly 10–20 KB per picture whatever the photos' size.
Memory: one image's pictures at a time plus the compact data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from restore.report.metrics_spec import METRICS, MetricSpec
from restore.report.thumbnails import JPEG_QUALITY, THUMBNAIL_SIDE, thumbnails

#: Images per sub-folder of ``images/`` (keeps folders small for 10⁶ images).
FOLDER_SIZE = 1000
#: Picture paths, relative to the report; the page's script expands the same patterns.
PICTURE_PATTERN = "images/{folder}/{index}-{column}.jpg"
HOLES_PATTERN = "images/{folder}/{index}-holes.png"
#: Rows per page of the image list, by default.
PAGE_SIZE = 50
#: Worst and best images shown per method at the top of the page.
EXTREMES = 3
#: Name of the data file.
DATA_FILE = "data.js"
#: The global the data file assigns.
DATA_GLOBAL = "RESTORE_REPORT"


def picture_path(index: int, column: str) -> str:
    """Path of image ``index``'s thumbnail in ``column`` (``in``, ``m0`` …, ``orig``), relative to the report."""
    return PICTURE_PATTERN.format(folder=index // FOLDER_SIZE, index=index, column=column)


def holes_path(index: int) -> str:
    """Path of image ``index``'s hole overlays, relative to the report."""
    return HOLES_PATTERN.format(folder=index // FOLDER_SIZE, index=index)


def _rounded(value: Any, digits: int) -> float | None:
    """A metric for the data file: rounded; NaN (undefined) as None; ±inf kept (PSNR of a perfect image)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return value if math.isinf(value) else round(value, digits)


class ReportBuilder:
    """Writes the pictures of a report as images arrive, then its data file.

    Args:
        root: The (empty, temporary) report folder.
        labels: One label per restoration, in column order.
        has_target: Whether an original (and so metrics) exists.
        side: Long side of the thumbnails, px.
        quality: JPEG quality of the thumbnails.
    """

    def __init__(self, root: Path, labels: Sequence[str], *, has_target: bool, side: int = THUMBNAIL_SIDE, quality: int = JPEG_QUALITY) -> None:
        self.root = Path(root)
        self.labels = list(labels)
        self.has_target = has_target
        self.side = side
        self.quality = quality
        self.columns = ["in", *(f"m{i}" for i in range(len(self.labels))), *(["orig"] if has_target else [])]
        self.keys: list[str] = []
        self.hole: list[float] = []
        self.bucket: list[str | None] = []
        self.height: list[int] = []
        self.width: list[int] = []
        self.metrics: tuple[MetricSpec, ...] = ()
        self.values: list[dict[str, list[float | None]]] = [{} for _ in self.labels]
        self._folders: set[int] = set()

    def add(self, index: int, key: str, hole: np.ndarray, reference: np.ndarray | None, restored: list[np.ndarray], rows: list[dict] | None) -> None:
        """Write one image's thumbnails and hole overlays and keep its metrics (an :data:`~restore.evaluation.ImageVisitor`).

        Args:
            index: The image's position (0, 1, … in order).
            key: Its archive key.
            hole: True = hole.
            reference: The original's pixels (None without a target).
            restored: Each restoration's pixels, in label order.
            rows: Each restoration's metric row (None without a target).

        Shape:
            hole: (H, W); reference and restored: (H, W, C).
        """
        if index != len(self.keys):
            raise ValueError(f"image {index} added after {len(self.keys)} images")
        shape, pictures, holes = thumbnails(hole, reference, restored, self.side, self.quality)
        folder = index // FOLDER_SIZE
        if folder not in self._folders:
            (self.root / "images" / str(folder)).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        for column, data in zip(self.columns[1:], pictures, strict=True):  # the masked input has no file of its own
            (self.root / picture_path(index, column)).write_bytes(data)
        (self.root / holes_path(index)).write_bytes(holes)
        self.keys.append(key)
        self.hole.append(round(float(hole.mean()), 4))
        self.height.append(shape[0])
        self.width.append(shape[1])
        if rows is not None:
            if not self.metrics:
                self.metrics = tuple(spec for spec in METRICS if spec.name in rows[0])
            self.bucket.append(rows[0].get("bucket"))
            for values, row in zip(self.values, rows, strict=True):
                for spec in self.metrics:
                    values.setdefault(spec.name, []).append(_rounded(row.get(spec.name), spec.digits))

    def data(self, meta: dict[str, Any]) -> dict[str, Any]:
        """What the page's script reads: ``meta`` plus the images, their metrics and the picture patterns."""
        titles = ["masked input", *self.labels, *(["original"] if self.has_target else [])]
        buckets = sorted({b for b in self.bucket if b is not None})
        return {
            **meta,
            "labels": self.labels,
            "has_target": self.has_target,
            "columns": [{"id": column, "title": title, **({"base": "orig" if self.has_target else "m0"} if column == "in" else {})}
                        for column, title in zip(self.columns, titles, strict=True)],
            "metrics": [{"name": s.name, "title": s.title, "better": s.better, "digits": s.digits} for s in self.metrics],
            "keys": self.keys,
            "hole": self.hole,
            "buckets": buckets,
            "bucket": [buckets.index(b) if b is not None else None for b in self.bucket],
            "height": self.height,
            "width": self.width,
            "values": self.values if self.has_target else [],
            "pictures": {"pattern": PICTURE_PATTERN, "holes": HOLES_PATTERN, "folder_size": FOLDER_SIZE, "side": self.side},
            "page_size": PAGE_SIZE,
            "extremes": EXTREMES,
        }

    def write_data(self, meta: dict[str, Any]) -> Path:
        """Write ``data.js`` (one line of JavaScript: ``window.RESTORE_REPORT = {...};``).

        The object is JSON, except that a perfect image's PSNR is ``Infinity`` (which
        JavaScript and Python's ``json`` read; NaN is never written).
        """
        text = json.dumps(self.data(meta), separators=(",", ":"), allow_nan=True)
        path = self.root / DATA_FILE
        path.write_text(f"window.{DATA_GLOBAL} = {text};\n", encoding="utf-8")
        return path
