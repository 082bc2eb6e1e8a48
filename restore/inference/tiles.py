"""Overlapping tiles with feathered blending: ``restore batch --strategy tile``.

A large image is covered by ``size × size`` tiles (the method's native size, 256² for CSA)
at full resolution. Along each axis the tiles are spread evenly and overlap by at least
``overlap`` pixels (a quarter of the side: 64 for 256² tiles), so every tile carries a halo
of at least an eighth of its side of context on each inner side. Each tile with a
hole is restored; where tiles overlap, their predictions are averaged with weights that
ramp linearly across ``overlap`` pixels from a tile's inner edges (weight 1 at the image
border and inside the tile). Known pixels are the input's.

When to prefer it over sub-sampling (the default): tiles keep the full resolution around
small or thin holes (scratches, dust, specks), where sub-sampling fills each pixel from
neighbours k pixels away; sub-sampling gives the model the whole picture, which large
holes need. Memory is bounded: the blend accumulates one band of tile rows at a time
(``size × W`` floats), never the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from restore.inference.pixels import colour_channels, from_model, to_model

#: Default tile side (methods pass their native size).
SIZE = 256


def default_overlap(size: int) -> int:
    """The minimum overlap of neighbouring ``size``² tiles (= the feathering width): a quarter of the side."""
    return size // 4


#: Minimum overlap of neighbouring 256² tiles.
OVERLAP = default_overlap(SIZE)


def tile_starts(length: int, size: int = SIZE, overlap: int | None = None) -> list[int]:
    """Start offsets of the tiles along one axis, spread evenly, overlapping by ≥ ``overlap``.

    Args:
        length: the image's side.
        size: tile side.
        overlap: minimum overlap (< size; None: :func:`default_overlap`).

    Returns:
        Offsets in increasing order; ``[0]`` when the side fits in one tile.
    """
    overlap = default_overlap(size) if overlap is None else overlap
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, {size}), got {overlap}")
    if length <= size:
        return [0]
    count = math.ceil((length - overlap) / (size - overlap))
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def ramp(start: int, extent: int, length: int, overlap: int = OVERLAP) -> np.ndarray:
    """1-D blending weights of a tile: linear ramps across ``overlap`` at inner edges.

    Args:
        start: the tile's offset.
        extent: the tile's side.
        length: the image's side.
        overlap: ramp width.

    Returns:
        Weights in (0, 1], float32.

    Shape:
        (extent,).
    """
    x = np.arange(extent, dtype=np.float32)
    weights = np.ones(extent, dtype=np.float32)
    if start > 0:
        weights = np.minimum(weights, (x + 1) / (overlap + 1))
    if start + extent < length:
        weights = np.minimum(weights, (extent - x) / (overlap + 1))
    return weights


class TileRestorer:
    """Restore one image through overlapping tiles (same interface as
    :class:`~restore.inference.subsample.SubsampleRestorer`).

    Pieces must be :meth:`put` in the order :meth:`pieces` yields them: rows above the
    current tile row are final then and are written out, so the blend buffer stays one
    tile row high.

    Args:
        image: the archive pixels (uint8/uint16, C in {1, 3, 4}).
        holes: True = hole.
        size: tile side.
        overlap: minimum overlap / feathering width (None: :func:`default_overlap`).

    Shape:
        image: (H, W, C); holes: (H, W).
    """

    def __init__(self, image: np.ndarray, holes: np.ndarray, size: int = SIZE, overlap: int | None = None) -> None:
        overlap = default_overlap(size) if overlap is None else overlap
        self.image = image
        self.holes = holes
        self.out = image.copy()
        height, width = image.shape[:2]
        self.tile = (min(height, size), min(width, size))
        self.ys = tile_starts(height, size, overlap)
        self.xs = tile_starts(width, size, overlap)
        self._wy = {y: ramp(y, self.tile[0], height, overlap) for y in self.ys}
        self._wx = {x: ramp(x, self.tile[1], width, overlap) for x in self.xs}
        self._colours = colour_channels(image.shape[-1])
        self._top = 0  # image row of buffer row 0; rows above are final
        self._acc: np.ndarray | None = None
        self._weight: np.ndarray | None = None

    @property
    def piece_shape(self) -> tuple[int, int]:
        """(h, w) of every tile."""
        return self.tile

    def pieces(self) -> Iterator[tuple[int, int]]:
        """Offsets (y, x) of the tiles with at least one hole, row by row."""
        th, tw = self.tile
        for y in self.ys:
            for x in self.xs:
                if self.holes[y : y + th, x : x + tw].any():
                    yield y, x

    def extract(self, piece: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The model input of one tile.

        Returns:
            (image float32 in [0, 1], mask float32 with 1 = hole).

        Shape:
            image: (3, h, w); mask: (1, h, w).
        """
        y, x = piece
        th, tw = self.tile
        mask = self.holes[y : y + th, x : x + tw].astype(np.float32)[None]
        return to_model(self.image[y : y + th, x : x + tw]), mask

    def put(self, piece: tuple[int, int], restored: np.ndarray) -> None:
        """Blend a restored tile in (tiles arrive in :meth:`pieces` order).

        Shape:
            restored: (3, h, w).
        """
        y, x = piece
        th, tw = self.tile
        if self._acc is None:
            self._acc = np.zeros((th, self.image.shape[1], 3), dtype=np.float32)
            self._weight = np.zeros((th, self.image.shape[1]), dtype=np.float32)
            self._top = y
        if y < self._top:
            raise ValueError(f"tile at row {y} arrived after rows up to {self._top} were written")
        while y > self._top:
            self._flush(y - self._top)
        weights = self._wy[y][:, None] * self._wx[x][None, :]
        self._acc[:, x : x + tw] += restored.transpose(1, 2, 0) * weights[..., None]
        self._weight[:, x : x + tw] += weights

    def _flush(self, rows: int) -> None:
        """Write the first ``rows`` buffered rows out and shift the buffer up."""
        assert self._acc is not None and self._weight is not None
        rows = min(rows, self._acc.shape[0])
        top = self._top
        bottom = min(top + rows, self.image.shape[0])
        if bottom > top:
            holes = self.holes[top:bottom]
            weight = self._weight[: bottom - top]
            blended = self._acc[: bottom - top] / np.maximum(weight, np.float32(1e-12))[..., None]
            values = from_model(blended, self.out.dtype, self.out.shape[-1])
            np.copyto(self.out[top:bottom, :, : self._colours], values, where=holes[..., None])
        self._acc[:-rows] = self._acc[rows:].copy() if rows < self._acc.shape[0] else 0
        self._acc[-rows:] = 0
        self._weight[:-rows] = self._weight[rows:].copy() if rows < self._weight.shape[0] else 0
        self._weight[-rows:] = 0
        self._top += rows

    def finish(self) -> np.ndarray:
        """The restored image (known pixels are the input's).

        Shape:
            (H, W, C).
        """
        if self._acc is not None:
            while self._top < self.image.shape[0]:
                self._flush(self._acc.shape[0])
            self._acc = self._weight = None
        return self.out
