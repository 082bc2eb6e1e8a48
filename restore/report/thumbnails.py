"""Thumbnails of the report: small JPEG pictures and transparent hole-outline overlays.

A thumbnail is at most ``side`` pixels on its long side (never enlarged), shrunk with
OpenCV's area interpolation from 8-bit RGB (16-bit pixels rounded to 8 bits, grey
repeated, alpha dropped), saved as JPEG. Each image also gets one small palette PNG of its
holes (:func:`encode_holes`): white holes that turn the original's thumbnail into the
masked input, and a ring just outside the holes (so the fill stays visible) that the
page lays over every picture and can hide.
"""

from __future__ import annotations

import io

import numpy as np

from restore.data.images import to_rgb8

#: Default long side of a thumbnail, pixels.
THUMBNAIL_SIDE = 256
#: JPEG quality of the thumbnails (OpenCV's scale, 0-100).
JPEG_QUALITY = 80
#: Colour of the hole outline (RGB): magenta, rare in photographs.
OUTLINE_RGB = (255, 0, 200)


def thumbnail_shape(height: int, width: int, side: int = THUMBNAIL_SIDE) -> tuple[int, int]:
    """(height, width) of the thumbnail of an image: the long side at most ``side``, the aspect kept.

    Images no larger than ``side`` keep their size; no side drops below 1 px.
    """
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``shape`` = (height, width) with area interpolation (unchanged at its own size).

    Shape:
        image: (H, W, 3) uint8; returns (*shape, 3) uint8.
    """
    import cv2

    if image.shape[:2] == tuple(shape):
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def hole_thumbnail(hole: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The holes at thumbnail size: a pixel is hole when any part of the image pixels it covers is.

    So a 1 px scratch of a large photo still shows.

    Shape:
        hole: (H, W) bool; returns ``shape`` = (h, w) bool.
    """
    import cv2

    if hole.shape == tuple(shape):
        return hole.astype(bool)
    return cv2.resize(hole.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0


def hole_outline(hole: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The 8-connected ring of thumbnail pixels just outside the holes (:func:`hole_thumbnail`).

    Shape:
        hole: (H, W) bool; returns ``shape`` = (h, w) bool.
    """
    import cv2

    small = hole_thumbnail(hole, shape)
    return (cv2.dilate(small.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~small


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB image.

    Shape:
        image: (H, W, 3) uint8.
    """
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} thumbnail as JPEG")
    return data.tobytes()


def encode_holes(hole: np.ndarray, shape: tuple[int, int]) -> bytes:
    """The image's hole overlays as one palette PNG twice the thumbnail's height, transparent elsewhere.

    Top half: the holes in white (laid over a picture it makes the masked input); bottom
    half: the outline (:func:`hole_outline`) in :data:`OUTLINE_RGB` (laid over any picture;
    the page can hide it). One small file per image instead of two.

    Shape:
        hole: (H, W) bool; the PNG is (2h, w) for ``shape`` = (h, w).
    """
    from PIL import Image

    small = hole_thumbnail(hole, shape)
    ring = hole_outline(hole, shape)
    indices = np.concatenate([small.astype(np.uint8), ring.astype(np.uint8) * 2])
    height, width = indices.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(indices).tobytes())
    picture.putpalette([0, 0, 0, 255, 255, 255, *OUTLINE_RGB])
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", transparency=0, bits=2)  # optimize=True: 2 % smaller, 9x slower
    return buffer.getvalue()


def thumbnails(
    hole: np.ndarray,
    reference: np.ndarray | None,
    restored: list[np.ndarray],
    side: int = THUMBNAIL_SIDE,
    quality: int = JPEG_QUALITY,
) -> tuple[tuple[int, int], list[bytes], bytes]:
    """Every picture of one image: each restoration, the original; and its hole overlays.

    The masked input needs no picture of its own: the page lays the white holes of the
    overlay over the original (without one, over the first restoration, which keeps the
    input's known pixels).

    Args:
        hole: True = hole.
        reference: the original's pixels, or None.
        restored: each restoration's pixels.
        side: long side of the thumbnails.
        quality: JPEG quality.

    Returns:
        ((height, width) of the thumbnails, JPEG bytes of each restoration then of the
        original when given, the overlay PNG bytes of :func:`encode_holes`).

    Shape:
        hole: (H, W); reference and each of restored: (H, W, C) uint8/uint16.
    """
    shape = thumbnail_shape(*hole.shape, side)
    columns = [*restored, *([reference] if reference is not None else [])]
    pictures = [encode_jpeg(shrink(to_rgb8(column), shape), quality) for column in columns]
    return shape, pictures, encode_holes(hole, shape)
