"""Hole masks from disk for ``restore batch`` and ``restore eval`` (DESIGN §4, §6).

A mask source is one of:

- a folder of mask images matched to image keys: ``KEY_mask.EXT`` is preferred,
  then ``KEY.EXT``; keys with ``/`` match files in sub-folders by relative
  path; a key ending in an image extension (``photo.jpg``) also matches the
  mask of the key without it (``photo.png``). EXT is any of
  :data:`MASK_SUFFIXES` (case-insensitive); two files for one key
  (``a.png`` and ``a.jpg``) are an error rather than a guess;
- a single mask image, applied to every image;
- a zarr v3 archive with the same keys (DESIGN §5, read with
  :func:`restore.data.archive.open_archive`): an ``images`` array
  (N, H, W, C) with a ``keys`` attribute or array, or an ``images/`` group
  with one (H, W, C) array per key.

Pixel rules (the same for every source):

- a pixel above 127/255 of its range is a hole: > 127 for 8-bit, > 32639 for
  16-bit, > 127/255 for floats in [0, 1]; a bool array is taken as is;
- a mask with an alpha channel (grey+alpha or RGBA) uses the alpha channel
  alone: opaque (> 127) = hole;
- a colour mask is converted to grey with OpenCV's luma
  (0.299 R + 0.587 G + 0.114 B, rounded), then thresholded;
- ``resize=True`` resizes a mask of another size to the image's with
  nearest-neighbour sampling; otherwise a size mismatch is an error;
- ``dilate=N`` grows every hole by N pixels with a disk (Euclidean distance
  <= N), after any resize.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np

from restore.data.images import IMAGE_EXTENSIONS, PNG_MAGIC, ImageReadError, check_png
from restore.messages import preview

LOGGER = logging.getLogger(__name__)

#: Image extensions a mask file may have (compared case-insensitively).
MASK_SUFFIXES: tuple[str, ...] = IMAGE_EXTENSIONS

_TIFF_SUFFIXES = (".tif", ".tiff")


class MaskError(ValueError):
    """A mask is missing, unreadable, or does not fit its image."""


# --------------------------------------------------------------------------- pixel rules


def holes_from_pixels(
    pixels: np.ndarray, *, channel_order: str = "rgb", origin: str = "mask"
) -> np.ndarray:
    """Apply the hole rules to a decoded mask image.

    Args:
        pixels: the mask's pixels: bool, uint8, uint16 or float in [0, 1].
        channel_order: ``"rgb"`` or ``"bgr"`` (OpenCV's decoders), for colour masks.
        origin: the file or archive entry, named in errors.

    Returns:
        The hole mask, True = hole.

    Raises:
        MaskError: an unsupported shape or dtype.

    Shape:
        pixels: (H, W) or (H, W, C) with C in 1 (grey), 2 (grey+alpha), 3 (colour), 4 (colour+alpha).
        output: (H, W), dtype bool.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        values = pixels[..., -1]
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        values = _grey(pixels, channel_order, origin)
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        values = pixels[..., 0]
    elif pixels.ndim == 2:
        values = pixels
    else:
        raise MaskError(
            f"{origin}: a mask must be (H, W) or (H, W, 1..4), got shape {pixels.shape}"
        )
    return _threshold(values, origin)


def _grey(pixels: np.ndarray, channel_order: str, origin: str) -> np.ndarray:
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise MaskError(f"{origin}: unsupported mask dtype {pixels.dtype}")
    code = cv2.COLOR_BGR2GRAY if channel_order == "bgr" else cv2.COLOR_RGB2GRAY
    if pixels.dtype == np.float64:
        pixels = pixels.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def _threshold(values: np.ndarray, origin: str) -> np.ndarray:
    if values.dtype == bool:
        return values.copy()
    if values.dtype == np.uint8:
        return values > 127
    if values.dtype == np.uint16:
        return values > 32639  # 127/255 of 65535 = 127 * 257
    if np.issubdtype(values.dtype, np.floating):
        return values > 127 / 255
    raise MaskError(f"{origin}: unsupported mask dtype {values.dtype} (use 8- or 16-bit images)")


def resize_nearest(mask: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Resize a hole mask with nearest-neighbour sampling.

    Args:
        mask: the hole mask.
        shape_hw: the target (height, width).

    Returns:
        The resized mask.

    Shape:
        mask: (h, w) bool; output: shape_hw, bool.
    """
    height, width = shape_hw
    if mask.shape == (height, width):
        return mask
    resized = cv2.resize(
        np.ascontiguousarray(mask, dtype=np.uint8),
        (width, height),
        interpolation=cv2.INTER_NEAREST_EXACT,
    )
    return resized.astype(bool)


def dilate_holes(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow the holes by ``radius`` pixels with a disk (every pixel within that Euclidean distance of a hole).

    Args:
        mask: the hole mask.
        radius: the growth in pixels (>= 0).

    Returns:
        The dilated mask.

    Shape:
        mask: (H, W) bool; output: (H, W) bool.
    """
    if radius <= 0 or not mask.any() or mask.all():
        return mask
    known = np.ascontiguousarray(~mask, dtype=np.uint8)
    distance = cv2.distanceTransform(known, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= radius


# --------------------------------------------------------------------------- files


def read_mask_pixels(path: Path) -> tuple[np.ndarray, str]:
    """Decode a mask image file.

    Args:
        path: the file (PNG, JPEG, TIFF, BMP, WebP).

    Returns:
        (pixels, channel_order): the pixels as stored and ``"rgb"`` or ``"bgr"``.

    Raises:
        MaskError: the file cannot be read or decoded; the message names it.
    """
    if path.suffix.lower() in _TIFF_SUFFIXES:
        return _read_tiff(path), "rgb"
    try:
        data = np.fromfile(path, dtype=np.uint8)  # handles non-ASCII paths, unlike cv2.imread
    except OSError as error:
        raise MaskError(f"cannot read mask file {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise MaskError(f"mask file {path} is empty (0 bytes)")
    if data[: len(PNG_MAGIC)].tobytes() == PNG_MAGIC:
        try:
            check_png(path, data.tobytes())  # OpenCV would print its own warnings about a damaged PNG
        except ImageReadError as error:
            raise MaskError(f"cannot decode mask file {path}: {error.reason}") from None
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None:
        raise MaskError(f"cannot decode mask file {path}: truncated or not an image")
    return pixels, "bgr"


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        if path.stat().st_size == 0:
            raise MaskError(f"mask file {path} is empty (0 bytes)")
        return tifffile.imread(path, key=0)
    except MaskError:
        raise
    except Exception as error:  # tifffile raises many types for damaged files
        reason = " ".join(str(error).split()) or type(error).__name__
        raise MaskError(f"cannot decode mask file {path}: {reason}") from None


def read_mask_file(path: str | Path) -> np.ndarray:
    """Read a mask image file and apply the hole rules.

    Args:
        path: the file.

    Returns:
        The hole mask, True = hole.

    Shape:
        output: (H, W), dtype bool.
    """
    path = Path(path)
    pixels, order = read_mask_pixels(path)
    return holes_from_pixels(pixels, channel_order=order, origin=str(path))


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --------------------------------------------------------------------------- sources


class MaskSource(ABC):
    """Hole masks for archive keys, loaded one at a time.

    Args:
        resize: resize a mask of another size to its image (nearest) instead of failing.
        dilate: grow every hole by this many pixels (disk).
    """

    def __init__(self, *, resize: bool = False, dilate: int = 0) -> None:
        if dilate < 0:
            raise MaskError(f"dilate must be >= 0 pixels, got {dilate}")
        self.resize = bool(resize)
        self.dilate = int(dilate)
        self._warned_binary = False

    @abstractmethod
    def _describe_source(self) -> str:
        """Where the masks come from, for messages and provenance."""

    @abstractmethod
    def _has(self, key: str) -> bool:
        """Whether a mask exists for ``key``."""

    @abstractmethod
    def _pixels(self, key: str) -> tuple[np.ndarray, str, str]:
        """(pixels, channel order, origin) of the mask of an existing key."""

    @abstractmethod
    def _mask_file(self, key: str) -> Path | None:
        """The file or archive ``key``'s mask is read from (None: no mask)."""

    def stamp(self, key: str) -> int:
        """A non-zero 64-bit stamp of the name, size and modification time of ``key``'s mask; 0 without one.

        A resumed ``restore batch`` compares it with the stamp recorded when the image was
        restored, to notice masks generated again since.
        """
        from restore.paths import tree_fingerprint

        path = self._mask_file(key)
        if path is None:
            return 0
        return int(tree_fingerprint(path).removeprefix("sha256:")[:16], 16) or 1

    def describe(self) -> str:
        """A one-line description of the source and its options (recorded as provenance).

        Returns:
            E.g. ``"mask folder /data/masks (120 files); resize nearest; dilate 3 px (disk)"``.
        """
        parts = [self._describe_source()]
        if self.resize:
            parts.append("resize nearest")
        if self.dilate:
            parts.append(f"dilate {self.dilate} px (disk)")
        return "; ".join(parts)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys that have no mask, in the order given.

        Args:
            keys: archive keys.

        Returns:
            The keys without a mask.
        """
        return [key for key in keys if not self._has(key)]

    def load(self, key: str, shape_hw: tuple[int, int]) -> np.ndarray:
        """The hole mask for one image.

        Args:
            key: the image's archive key.
            shape_hw: the image's (height, width).

        Returns:
            The mask, True = hole, resized (if allowed) and dilated.

        Raises:
            MaskError: no mask for the key, an unreadable mask, or a size mismatch
                without ``resize``; the message names the key and the file.

        Shape:
            output: shape_hw, dtype bool.
        """
        height, width = (int(v) for v in shape_hw)
        if not self._has(key):
            raise MaskError(f"no mask for key {key!r} in {self._describe_source()}")
        pixels, order, origin = self._pixels(key)
        holes = holes_from_pixels(pixels, channel_order=order, origin=origin)
        self._warn_if_binary(pixels, origin)
        if holes.shape != (height, width):
            if not self.resize:
                raise MaskError(
                    f"mask for key {key!r} ({origin}) is {holes.shape[0]}x{holes.shape[1]} but the image "
                    f"is {height}x{width} (HxW); resize the masks (--resize-masks) or supply masks of the image size"
                )
            holes = resize_nearest(holes, (height, width))
        return dilate_holes(holes, self.dilate)

    def validate(self, keys: Iterable[str], shapes: Mapping[str, tuple[int, int]]) -> None:
        """Check every mask before a run: present, readable and of its image's size.

        Args:
            keys: the archive keys the run will process.
            shapes: (height, width) per key.

        Raises:
            MaskError: a one-line message listing the keys without a mask, or naming
                the first key/file that is unreadable or of the wrong size.
        """
        keys = list(keys)
        absent = self.missing(keys)
        if absent:
            raise MaskError(
                f"no mask for {len(absent)} of {len(keys)} key(s) in {self._describe_source()}: {preview(absent)}"
            )
        for key in keys:
            if key not in shapes:
                raise MaskError(f"no image size given for key {key!r}")
            self.load(key, shapes[key])

    def _warn_if_binary(self, pixels: np.ndarray, origin: str) -> None:
        if self._warned_binary or pixels.dtype != np.uint8 or pixels.size == 0:
            return
        if pixels.max() == 1:
            self._warned_binary = True
            LOGGER.warning(
                "%s holds only the values 0 and 1; holes are pixels > 127, so it has none "
                "(save masks as 0/255)",
                origin,
            )


class FolderMaskSource(MaskSource):
    """Mask images in a folder (and its sub-folders), matched to keys by relative path."""

    def __init__(self, root: Path, *, resize: bool = False, dilate: int = 0) -> None:
        super().__init__(resize=resize, dilate=dilate)
        self.root = root
        self._index: dict[str, list[Path]] | None = None

    def _files(self) -> dict[str, list[Path]]:
        """Relative path without extension (NFC, ``/``-separated) -> the mask files with that stem."""
        if self._index is None:
            index: dict[str, list[Path]] = {}
            for folder, dirs, names in os.walk(self.root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    path = Path(folder, name)
                    if name.startswith(".") or path.suffix.lower() not in MASK_SUFFIXES:
                        continue
                    stem = _nfc(path.relative_to(self.root).with_suffix("").as_posix())
                    index.setdefault(stem, []).append(path)
            self._index = index
        return self._index

    def _find(self, key: str) -> Path | None:
        key = _nfc(key.replace("\\", "/"))
        stems = [key]
        if Path(key).suffix.lower() in MASK_SUFFIXES:
            stems.append(key[: -len(Path(key).suffix)])
        index = self._files()
        for stem in stems:
            for candidate in (f"{stem}_mask", stem):
                files = index.get(candidate)
                if files and len(files) > 1:
                    names = ", ".join(str(f) for f in files)
                    raise MaskError(f"several masks for key {key!r}: {names}; keep one")
                if files:
                    return files[0]
        return None

    def _mask_file(self, key: str) -> Path | None:
        return self._find(key)

    def _describe_source(self) -> str:
        count = sum(len(files) for files in self._files().values())
        return f"mask folder {self.root} ({count} files, KEY_mask.EXT or KEY.EXT)"

    def _has(self, key: str) -> bool:
        return self._find(key) is not None

    def _pixels(self, key: str) -> tuple[np.ndarray, str, str]:
        path = self._find(key)
        assert path is not None
        pixels, order = read_mask_pixels(path)
        return pixels, order, str(path)


class FileMaskSource(MaskSource):
    """One mask image applied to every key."""

    def __init__(self, path: Path, *, resize: bool = False, dilate: int = 0) -> None:
        super().__init__(resize=resize, dilate=dilate)
        self.path = path
        self._cache: tuple[np.ndarray, str] | None = None

    def _mask_file(self, key: str) -> Path | None:
        return self.path

    def _describe_source(self) -> str:
        return f"mask file {self.path} (every image)"

    def _has(self, key: str) -> bool:
        return True

    def _pixels(self, key: str) -> tuple[np.ndarray, str, str]:
        if self._cache is None:
            self._cache = read_mask_pixels(self.path)
        pixels, order = self._cache
        return pixels, order, str(self.path)


class ZarrMaskSource(MaskSource):
    """Masks in a zarr archive with the same keys as the images.

    The archive is read with :func:`restore.data.archive.open_archive`, so any archive
    ``restore ingest`` writes (stack or group layout, (H, W, C) uint8/uint16 masks) works.
    """

    def __init__(self, path: Path, *, resize: bool = False, dilate: int = 0) -> None:
        from restore.data.archive import ArchiveError, open_archive

        super().__init__(resize=resize, dilate=dilate)
        self.path = path
        self._archive_stamp: int | None = None
        try:
            self._archive = open_archive(path)
        except ArchiveError as error:
            raise MaskError(f"mask archive {error}") from None
        self._keys = {_nfc(key): key for key in self._archive.keys}

    def _mask_file(self, key: str) -> Path | None:
        return self.path if self._has(key) else None

    def stamp(self, key: str) -> int:
        if not self._has(key):
            return 0
        if self._archive_stamp is None:  # one stamp for the whole archive: its files are not per key
            self._archive_stamp = super().stamp(key)
        return self._archive_stamp

    def _describe_source(self) -> str:
        return f"mask archive {self.path} ({len(self._keys)} keys, {self._archive.layout} layout)"

    def _has(self, key: str) -> bool:
        return _nfc(key) in self._keys

    def _pixels(self, key: str) -> tuple[np.ndarray, str, str]:
        from restore.data.archive import ArchiveError

        try:
            pixels = self._archive.read(self._keys[_nfc(key)])
        except ArchiveError as error:
            raise MaskError(f"mask archive {error}") from None
        return pixels, "rgb", f"{self.path}[{key!r}]"


def _is_zarr(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def open_mask_source(spec: str | Path, *, resize: bool = False, dilate: int = 0) -> MaskSource:
    """Open a mask folder, a single mask image, or a zarr mask archive.

    Args:
        spec: the ``--masks`` argument.
        resize: resize masks of another size to their image (nearest) instead of failing.
        dilate: grow every hole by this many pixels (disk).

    Returns:
        The source; nothing is read until :meth:`MaskSource.validate` or :meth:`MaskSource.load`
        (a zarr archive's metadata is read at once).

    Raises:
        MaskError: the path does not exist, or is a ``.zarr`` folder that is not an archive.
    """
    path = Path(spec).expanduser()
    if not path.exists():
        raise MaskError(f"mask source not found: {path}")
    if path.is_dir():
        if _is_zarr(path):
            return ZarrMaskSource(path, resize=resize, dilate=dilate)
        if path.suffix.lower() == ".zarr":
            raise MaskError(f"{path} is named like a zarr archive but holds no zarr.json")
        return FolderMaskSource(path, resize=resize, dilate=dilate)
    return FileMaskSource(path, resize=resize, dilate=dilate)
