"""Training data: photos decoded once into memory, random crops, generated masks.

Batches are a pure function of ``(seed, step)``, so a resumed run sees exactly
the batches an uninterrupted run would have seen, with no iterator state to save.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from restore.data.images import to_rgb8

__all__ = ["to_rgb8"]  # re-exported: its home is restore.data.images

#: the default mix of training masks: irregular strokes and boxes, up to about half the image.
DEFAULT_TRAINING_MASKS: tuple[str, ...] = ("freeform", "medium", "thick", "cellular", "box", "center")


def list_image_files(root: Path) -> list[Path]:
    """Every image file below ``root`` (recursive, hidden files and folders left out), sorted by relative path."""
    from restore.data.images import IMAGE_EXTENSIONS

    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )  # fmt: skip


def load_images(source: Path) -> tuple[list[str], list[np.ndarray]]:
    """Decode every image of a folder (recursive) or a restore archive as RGB uint8.

    Returns:
        Names (relative paths or archive keys) and (H, W, 3) uint8 arrays.
    """
    source = Path(source)
    if (source / "zarr.json").is_file():
        from restore.data.archive import open_archive

        archive = open_archive(source)
        return list(archive.keys), [to_rgb8(archive.read(key)) for key in archive.keys]
    from restore.data.images import read_image

    files = list_image_files(source)
    if not files:
        raise FileNotFoundError(f"no images found in {source}")
    names = [str(path.relative_to(source)) if path != source else path.name for path in files]
    return names, [to_rgb8(read_image(path)) for path in files]


def split_holdout(names: Sequence[str], count: int) -> tuple[list[int], list[int]]:
    """Indices for training and a held-out set of ``count`` images spread evenly over ``names``."""
    total = len(names)
    if count <= 0:
        return list(range(total)), []
    if count >= total:
        raise ValueError(f"cannot hold out {count} of {total} images")
    held = sorted({int(i) for i in np.linspace(0, total - 1, count).round()})
    held_set = set(held)
    return [i for i in range(total) if i not in held_set], held


def centre_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre crop to a square and resize to ``size``² (area) — the evaluation protocol.

    Shape:
        image: (H, W, C); returns (size, size, C).
    """
    import cv2

    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(crop)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    resized = cv2.resize(crop, (size, size), interpolation=interpolation)
    return resized.reshape(size, size, image.shape[2])


def random_resized_crop(rng: np.random.Generator, image: np.ndarray, size: int, min_scale: float = 0.5) -> np.ndarray:
    """A random square crop (side between ``min_scale``·short side and the short side), resized to ``size``², randomly flipped.

    Shape:
        image: (H, W, 3); returns (size, size, 3).
    """
    import cv2

    height, width = image.shape[:2]
    short = min(height, width)
    low = max(1, min(short, int(round(min_scale * short)), max(size, 1)))
    side = int(rng.integers(low, short + 1))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = image[top : top + side, left : left + side]
    if side != size:
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (size, size), interpolation=interpolation)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


@dataclass
class TrainingBatches:
    """Random (image, mask) batches from photos in memory.

    Args:
        images: (H, W, 3) uint8 photos.
        size: crop side.
        batch_size: images per batch.
        mask_kinds: generator kinds to draw masks from (:func:`random_training_mask`).
        seed: with the step and the sample's index, determines every sample.
        rank, world_size: this process's shard of data-parallel training: a step's batch is
            ``batch_size * world_size`` samples and this rank takes samples
            ``rank * batch_size`` to ``(rank + 1) * batch_size - 1`` of it.
    """

    images: list[np.ndarray]
    size: int
    batch_size: int
    mask_kinds: Sequence[str] = DEFAULT_TRAINING_MASKS
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not self.images:
            raise ValueError("no training images")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world size {self.world_size}")
        from restore.data.mask_generators import random_training_mask

        for kind in self.mask_kinds:  # every kind can be drawn at this size: fail now, not mid-run
            random_training_mask([kind], self.size, self.size, np.random.default_rng(0))

    def batch(self, step: int, draw: int = 0) -> tuple[Tensor, Tensor]:
        """Batch ``draw`` of training step ``step`` (a step of a WGAN-GP method draws several).

        Shape:
            returns images (B, 3, S, S) float in [0, 1] and masks (B, 1, S, S) float, 1 = hole.
        """
        from restore.data.mask_generators import random_training_mask

        crops, holes = [], []
        first = self.rank * self.batch_size
        for index in range(first, first + self.batch_size):
            rng = np.random.default_rng([self.seed, step, index] if draw == 0 else [self.seed, step, index, draw])
            photo = self.images[int(rng.integers(len(self.images)))]
            crops.append(random_resized_crop(rng, photo, self.size))
            holes.append(random_training_mask(self.mask_kinds, self.size, self.size, rng))
        images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
        masks = torch.from_numpy(np.stack(holes)).unsqueeze(1).float()
        return images.contiguous(), masks

    def batches(self, step: int, count: int) -> list[tuple[Tensor, Tensor]]:
        """The ``count`` batches of training step ``step`` (draws 0 … count − 1; draw 0 is :meth:`batch`)."""
        return [self.batch(step, draw) for draw in range(count)]
