"""Restore same-size images with one model, in model batches: the engine of every worker.

Images within the method's native size (``size``: 256² for CSA, 32² or 64² for others) go
to the model whole; larger ones are cut into pieces of that side by a strategy
(:mod:`~restore.inference.subsample` by default, :mod:`~restore.inference.tiles`), or
sent whole at any size (``whole``: for methods that work at any resolution, such as
the classical baselines). Pieces
of all the given images are streamed to the model ``batch_size`` at a time, so memory is
one output copy per image plus one batch, however large the image. Pieces without a hole
are never sent to the model (a restoration keeps known pixels exactly, so it would return
them unchanged). The model runs on whatever device the inpainter lives on.

Batching does not change results: the models here treat batch items independently (eval
mode), which the tests check bit for bit. Models run under ``torch.no_grad()``, not
``inference_mode``: a method that searches at inference (latent optimisation) turns
gradients back on inside its ``inpaint`` with ``torch.enable_grad()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Protocol

import numpy as np

from restore.inference import subsample, tiles
from restore.models.registry import DEFAULT_PIECE_SIZE, STRATEGIES

if TYPE_CHECKING:
    from restore.models.base import Inpainter

__all__ = ["STRATEGIES", "Restorer", "make_restorer", "pieces_per_image", "restore_images"]


class Restorer(Protocol):
    """What a strategy provides per image (see :class:`~restore.inference.subsample.SubsampleRestorer`)."""

    piece_shape: tuple[int, int]

    def pieces(self) -> Iterator[tuple[int, int]]: ...
    def extract(self, piece: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]: ...
    def put(self, piece: tuple[int, int], restored: np.ndarray) -> None: ...
    def finish(self) -> np.ndarray: ...


def make_restorer(strategy: str, image: np.ndarray, holes: np.ndarray, size: int = DEFAULT_PIECE_SIZE) -> Restorer:
    """The per-image restorer of a strategy.

    Args:
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"`` (one piece: the image itself).
        image: archive pixels.
        holes: True = hole.
        size: the side of the pieces (the method's native size).

    Returns:
        The restorer.

    Shape:
        image: (H, W, C); holes: (H, W).
    """
    if holes.shape != image.shape[:2]:
        raise ValueError(f"mask {holes.shape} does not match image {image.shape[:2]}")
    if strategy == "subsample":
        return subsample.SubsampleRestorer(image, holes, size=size)
    if strategy == "tile":
        return tiles.TileRestorer(image, holes, size=size)
    if strategy == "whole":
        return subsample.SubsampleRestorer(image, holes, size=max(image.shape[:2]))
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def pieces_per_image(height: int, width: int, strategy: str, size: int = DEFAULT_PIECE_SIZE) -> int:
    """How many model inputs one image of this size needs at most (for grouping images into tasks)."""
    if strategy == "subsample":
        kh, kw = subsample.factors(height, width, size)
        return kh * kw
    if strategy == "tile":
        return len(tiles.tile_starts(height, size)) * len(tiles.tile_starts(width, size))
    if strategy == "whole":
        return 1
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def restore_images(
    inpainter: Inpainter,
    images: Sequence[np.ndarray],
    holes: Sequence[np.ndarray],
    *,
    strategy: str = "subsample",
    size: int = DEFAULT_PIECE_SIZE,
    batch_size: int = 8,
) -> list[np.ndarray]:
    """Restore images of one size with ``inpainter``, ``batch_size`` model inputs at a time.

    Args:
        inpainter: any :class:`~restore.models.base.Inpainter`.
        images: archive pixels (uint8/uint16; C in {1, 3, 4}), all of one (H, W).
        holes: one mask per image, True = hole.
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"`` (one call on the full image, for
            methods that work at any size).
        size: the side of the pieces (the method's native size).
        batch_size: model inputs per ``inpaint`` call.

    Returns:
        The restored images (dtype and channels as given; known pixels and alpha untouched).

    Shape:
        images[i]: (H, W, C); holes[i]: (H, W); returns (H, W, C) each.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len({image.shape[:2] for image in images}) > 1:
        raise ValueError("restore_images takes images of one size")
    restorers = [make_restorer(strategy, image, hole, size) for image, hole in zip(images, holes, strict=True)]
    stream = ((restorer, piece) for restorer in restorers for piece in restorer.pieces())
    with torch.no_grad():
        while batch := list(islice(stream, batch_size)):
            inputs = [restorer.extract(piece) for restorer, piece in batch]
            image = torch.from_numpy(_stacked([pixels for pixels, _ in inputs]))
            mask = torch.from_numpy(_stacked([hole for _, hole in inputs]))
            del inputs
            restored = inpainter.inpaint(image, mask).detach().to("cpu", torch.float32).numpy()
            for (restorer, piece), result in zip(batch, restored, strict=True):
                restorer.put(piece, result)
    return [restorer.finish() for restorer in restorers]


def _stacked(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)``, without a copy for a batch of one (a whole large photo)."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
