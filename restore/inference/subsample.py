"""Polyphase sub-sampling of large images (DESIGN §8, after DeepGIN): the default strategy.

An image with a side longer than ``size`` (the method's native size: 256 for CSA) is cut
into ``kh × kw`` sub-images, with ``kh = ⌈H / size⌉`` and ``kw = ⌈W / size⌉``: pixel (i, j) of sub-image (a, b) is pixel
(a + kh·i, b + kw·j) of the image. Where a side is not a multiple of its factor the image is
first extended to ``kh·⌈H/kh⌉ × kw·⌈W/kw⌉`` by reflection (``numpy.pad(mode="reflect")``:
the pad is at most k − 1 < the side); the hole mask is reflected with it, so a padded pixel
is a hole exactly when the pixel it mirrors is one (hole content never enters the model). Every
sub-image is therefore ``⌈H/kh⌉ × ⌈W/kw⌉ ≤ size × size`` and sees the whole picture at a
k-times coarser pitch: global context for large holes at the model's native size. Each
sub-image is restored, the results are re-interleaved, and the known pixels are the input's.

Unlike DeepGIN we do not resize the image to a multiple of 256 first: padding by at most
k − 1 pixels keeps every original pixel on the sampling grid, so no resampling blurs the
result and known pixels stay exact without a second paste.

:func:`split` / :func:`merge` materialise all sub-images (tests, small images);
:class:`SubsampleRestorer` streams them one at a time for bounded memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from restore.inference.pixels import colour_channels, from_model, to_model

#: The default native side (CSA's): sub-images are at most this large.
SIZE = 256
#: Rows of a restored piece converted back to archive pixels at a time.
BLOCK_ROWS = 512


def factors(height: int, width: int, size: int = SIZE) -> tuple[int, int]:
    """The sub-sampling factors ``(⌈H/size⌉, ⌈W/size⌉)`` ((1, 1) for images within ``size``).

    Args:
        height: image height.
        width: image width.
        size: largest sub-image side.

    Returns:
        (kh, kw).
    """
    if height < 1 or width < 1 or size < 1:
        raise ValueError(f"sizes must be positive, got {height}x{width} (size {size})")
    return math.ceil(height / size), math.ceil(width / size)


def sub_shape(height: int, width: int, k: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of every sub-image: ``(⌈H/kh⌉, ⌈W/kw⌉)``."""
    return math.ceil(height / k[0]), math.ceil(width / k[1])


def phase_indices(length: int, k: int, phase: int) -> np.ndarray:
    """Source indices of one phase along one axis of the reflection-padded image.

    Args:
        length: the image's side.
        k: the factor along this axis.
        phase: the phase (0 ≤ phase < k).

    Returns:
        Indices into the unpadded axis; positions past its end map to their reflection.

    Shape:
        (⌈length / k⌉,).
    """
    positions = phase + k * np.arange(math.ceil(length / k))
    # numpy's "reflect" (edge not repeated): length + j -> length - 2 - j; the pad is < length.
    return np.where(positions < length, positions, 2 * (length - 1) - positions)


def split(image: np.ndarray, k: tuple[int, int]) -> np.ndarray:
    """All sub-images of an image (or its hole mask: mirrored holes stay holes) at once.

    Args:
        image: any array whose first two axes are (H, W).
        k: (kh, kw).

    Returns:
        ``subs[a, b]`` is sub-image (a, b).

    Shape:
        image: (H, W, ...); returns (kh, kw, ⌈H/kh⌉, ⌈W/kw⌉, ...).
    """
    height, width = image.shape[:2]
    kh, kw = k
    padded_h, padded_w = kh * math.ceil(height / kh), kw * math.ceil(width / kw)
    pad = [(0, padded_h - height), (0, padded_w - width)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="reflect") if padded_h > height or padded_w > width else image
    h, w = padded_h // kh, padded_w // kw
    # padded[a + kh*i, b + kw*j] -> subs[a, b, i, j]
    blocks = padded.reshape(h, kh, w, kw, *image.shape[2:])
    return np.ascontiguousarray(np.moveaxis(blocks, (1, 3), (0, 1)))


def merge(subs: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Re-interleave sub-images and drop the padding (the inverse of :func:`split`).

    Args:
        subs: sub-images as :func:`split` returns them.
        shape_hw: the original (H, W).

    Returns:
        The image.

    Shape:
        subs: (kh, kw, h, w, ...); returns (H, W, ...).
    """
    kh, kw, h, w = subs.shape[:4]
    height, width = shape_hw
    interleaved = np.moveaxis(subs, (0, 1), (1, 3)).reshape(h * kh, w * kw, *subs.shape[4:])
    return np.ascontiguousarray(interleaved[:height, :width])


class SubsampleRestorer:
    """Restore one image through its polyphase sub-images, one sub-image at a time.

    Use :meth:`pieces` to list the sub-images that contain holes (the others need no
    model: a restoration never changes known pixels), :meth:`extract` to get a piece's model
    input, :meth:`put` to hand back the model's output, and :meth:`finish` for the result.
    Memory: the input, one output copy and one sub-image at a time.

    Args:
        image: the archive pixels (uint8/uint16, C in {1, 3, 4}).
        holes: True = hole.
        size: largest sub-image side (the method's native size).

    Shape:
        image: (H, W, C); holes: (H, W).
    """

    def __init__(self, image: np.ndarray, holes: np.ndarray, size: int = SIZE) -> None:
        self.image = image
        self.holes = holes
        height, width = image.shape[:2]
        self.k = factors(height, width, size)
        self.out = image.copy()
        self._rows = [phase_indices(height, self.k[0], a) for a in range(self.k[0])]
        self._cols = [phase_indices(width, self.k[1], b) for b in range(self.k[1])]
        self._colours = colour_channels(image.shape[-1])

    @property
    def piece_shape(self) -> tuple[int, int]:
        """(h, w) of every sub-image."""
        return sub_shape(*self.image.shape[:2], self.k)

    def pieces(self) -> Iterator[tuple[int, int]]:
        """Phases (a, b) of the sub-images with at least one hole, in raster order."""
        kh, kw = self.k
        for a in range(kh):
            for b in range(kw):
                if self.holes[a::kh, b::kw].any():
                    yield a, b

    def extract(self, piece: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The model input of one sub-image.

        Args:
            piece: the phase (a, b).

        Returns:
            (image float32 in [0, 1], mask float32 with 1 = hole; padding mirrors both).

        Shape:
            image: (3, h, w); mask: (1, h, w).
        """
        rows, cols = self._rows[piece[0]], self._cols[piece[1]]
        pixels = self.image[np.ix_(rows, cols)]
        mask = self.holes[np.ix_(rows, cols)][None].astype(np.float32)
        return to_model(pixels), mask

    def put(self, piece: tuple[int, int], restored: np.ndarray) -> None:
        """Write a restored sub-image's hole pixels into the output.

        Args:
            piece: the phase (a, b).
            restored: the model's output for :meth:`extract` of that piece.

        Shape:
            restored: (3, h, w).
        """
        a, b = piece
        kh, kw = self.k
        target = self.out[a::kh, b::kw]
        holes = self.holes[a::kh, b::kw]
        rows, cols = target.shape[:2]
        for top in range(0, rows, BLOCK_ROWS):  # in bands: a whole large photo's float temporaries would be several GiB
            bottom = min(rows, top + BLOCK_ROWS)
            values = from_model(restored[:, top:bottom, :cols].transpose(1, 2, 0), self.out.dtype, self.out.shape[-1])
            np.copyto(target[top:bottom, :, : self._colours], values, where=holes[top:bottom, :, None])

    def finish(self) -> np.ndarray:
        """The restored image (known pixels are the input's).

        Shape:
            (H, W, C).
        """
        return self.out
