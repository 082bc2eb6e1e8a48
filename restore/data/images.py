"""Image files: bit-exact reading and writing, cheap header probing, and folder listing.

Every reader returns an (H, W, C) array with C in {1, 3, 4} (grey, RGB, RGBA)
and dtype uint8 or uint16 as stored in the file. The decoder is picked from the
file's first bytes, not its name:

- **PNG**: OpenCV (``cv2.imdecode(..., IMREAD_UNCHANGED)``, BGR(A) turned into
  RGB(A)), which keeps 16-bit colour (imageio's default Pillow plugin drops it
  to 8 bits). The chunk structure and every CRC are checked first, so a
  truncated or damaged file is an error, never a half-decoded image.
- **TIFF**: tifffile for grey/RGB(A) uint8/uint16 pages (strip and tile
  offsets are checked against the file size); other 8-bit TIFFs (palette,
  CMYK, YCbCr, compressions tifffile cannot decode without imagecodecs such
  as LZW or JPEG) go through Pillow, other 16-bit grey/RGB ones through
  OpenCV (libtiff). Only the first page of a multi-page TIFF is read.
- **JPEG, BMP, WebP**: Pillow, which fails on truncated data (OpenCV does not).

Conversions (documented contract): palette → RGB, or RGBA when the palette has
transparency; grey + alpha (PNG "LA", TIFF grey + extra sample) → RGBA, since
two channels are outside the archive contract; a PNG RGB colour key (tRNS) →
RGBA (OpenCV's behaviour; a grey colour key is ignored); 1/2/4-bit grey →
8-bit (0..255); CMYK / YCbCr JPEG → RGB. EXIF orientation is *not* applied:
pixels are kept as stored, so an export reproduces the source pixels. Colour
profiles and gamma chunks are ignored for the same reason.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: File name suffixes treated as images when listing a folder (case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: Suffixes :func:`write_image` can write (lossless formats only).
WRITE_EXTENSIONS: tuple[str, ...] = (".png", ".tif", ".tiff")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SUPPORTED = "PNG, JPEG, TIFF, BMP or WebP"


class ImageReadError(ValueError):
    """A file that cannot be read as an image; ``str()`` is one line that names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path}: {self.reason}")


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image` will return for a file, known without decoding its pixels.

    Attributes:
        shape: (H, W, C) of the decoded image.
        dtype: ``numpy.uint8`` or ``numpy.uint16``.
    """

    shape: tuple[int, int, int]
    dtype: np.dtype


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _load(path: Path) -> tuple[bytes, str]:
    """Read the file's bytes and identify its format (raises ImageReadError)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not an image file") from None
    except OSError as error:
        raise ImageReadError(path, f"cannot be read: {error.strerror or error}") from None
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    kind = _sniff(data)
    if kind is None:
        raise ImageReadError(path, f"not a supported image (expected {_SUPPORTED} data)")
    return data, kind


def check_png(path: Path, data: bytes) -> None:
    """Check the chunk lengths and CRCs of a PNG (``data`` starts with :data:`PNG_MAGIC`) up to its IEND.

    Raises:
        ImageReadError: a truncated or corrupt PNG.
    """
    _png_header(path, data)


def _png_header(path: Path, data: bytes) -> tuple[int, int, int, int, bool]:
    """Walk the PNG chunks, checking lengths, CRCs and the final IEND.

    Returns:
        (width, height, bit depth, colour type, whether a tRNS chunk is present).
    """
    pos, end = len(PNG_MAGIC), len(data)
    header = None
    has_trns = has_idat = False
    while True:
        if pos + 8 > end:
            raise ImageReadError(path, f"truncated PNG (ends at byte {end} before the IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if pos + 12 + length > end:
            raise ImageReadError(path, f"truncated PNG (chunk {ctype!r} at byte {pos} runs past the end, {end} bytes)")
        body = data[pos + 4 : pos + 8 + length]  # type + data, what the CRC covers
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(body) != crc:
            raise ImageReadError(path, f"corrupt PNG (CRC error in chunk {ctype.decode('latin-1')!r} at byte {pos})")
        if header is None:
            if ctype != b"IHDR" or length != 13:
                raise ImageReadError(path, "corrupt PNG (first chunk is not IHDR)")
            header = struct.unpack(">IIBB", data[pos + 8 : pos + 18])
        elif ctype == b"tRNS":
            has_trns = True
        elif ctype == b"IDAT":
            has_idat = True
        elif ctype == b"IEND":
            break
        pos += 12 + length
    if not has_idat:
        raise ImageReadError(path, "corrupt PNG (no image data)")
    width, height, depth, colour = header
    if width == 0 or height == 0:
        raise ImageReadError(path, f"PNG of size {width}×{height} has no pixels")
    return width, height, depth, colour, has_trns


def _png_info(path: Path, data: bytes) -> ImageInfo:
    width, height, depth, colour, has_trns = _png_header(path, data)
    # OpenCV's IMREAD_UNCHANGED: palette and RGB + colour key become RGBA when tRNS is
    # present, grey + alpha becomes RGBA, a grey colour key is ignored.
    channels = {0: 1, 2: 4 if has_trns else 3, 3: 4 if has_trns else 3, 4: 4, 6: 4}.get(colour)
    if channels is None:
        raise ImageReadError(path, f"corrupt PNG (colour type {colour})")
    return ImageInfo((height, width, channels), np.dtype(np.uint16 if depth == 16 else np.uint8))


def _from_cv2(path: Path, decoded: np.ndarray | None, what: str) -> np.ndarray:
    import cv2

    if decoded is None:
        raise ImageReadError(path, f"{what} could not be decoded")
    if decoded.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(path, f"{what} of sample type {decoded.dtype} is not supported (uint8 or uint16 only)")
    if decoded.ndim == 2:
        return decoded[:, :, None]
    channels = decoded.shape[2]
    if channels == 3:
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    if channels == 1:
        return decoded
    raise ImageReadError(path, f"{what} with {channels} channels is not supported")


def _cv2_decode(path: Path, data: bytes, what: str) -> np.ndarray:
    import cv2

    return _from_cv2(path, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), what)


# Pillow modes -> (mode to convert to or None, channels, dtype)
_PIL_MODES: dict[str, tuple[str | None, int, type]] = {
    "1": ("L", 1, np.uint8),
    "L": (None, 1, np.uint8),
    "LA": ("RGBA", 4, np.uint8),
    "La": ("RGBA", 4, np.uint8),
    "PA": ("RGBA", 4, np.uint8),
    "RGB": (None, 3, np.uint8),
    "RGBA": (None, 4, np.uint8),
    "RGBa": ("RGBA", 4, np.uint8),
    "RGBX": ("RGB", 3, np.uint8),
    "CMYK": ("RGB", 3, np.uint8),
    "YCbCr": ("RGB", 3, np.uint8),
    "LAB": ("RGB", 3, np.uint8),
    "HSV": ("RGB", 3, np.uint8),
    "I;16": (None, 1, np.uint16),
    "I;16L": (None, 1, np.uint16),
    "I;16B": (None, 1, np.uint16),
    "I;16N": (None, 1, np.uint16),
}


def _pil_plan(path: Path, image) -> tuple[str | None, int, type]:
    mode = image.mode
    if mode == "P":
        return ("RGBA", 4, np.uint8) if "transparency" in image.info else ("RGB", 3, np.uint8)
    if mode not in _PIL_MODES:
        raise ImageReadError(path, f"{image.format} image of mode {mode!r} is not supported (8/16-bit grey, RGB or RGBA only)")
    return _PIL_MODES[mode]


def _pil_open(path: Path, data: bytes):
    from PIL import Image

    try:
        return Image.open(io.BytesIO(data))
    except Exception as error:  # Pillow raises several types for bad headers
        raise ImageReadError(path, f"cannot be decoded: {error}") from None


def _pil_info(path: Path, data: bytes) -> ImageInfo:
    with _pil_open(path, data) as image:
        _, channels, dtype = _pil_plan(path, image)
        width, height = image.size
    return ImageInfo((height, width, channels), np.dtype(dtype))


def _pil_read(path: Path, data: bytes, kind: str) -> np.ndarray:
    with _pil_open(path, data) as image:
        convert, channels, dtype = _pil_plan(path, image)
        try:
            image.load()
            if convert is not None:
                image = image.convert(convert)
            array = np.asarray(image)
        except Exception as error:
            raise ImageReadError(path, f"{kind.upper()} cannot be decoded ({error})") from None
    array = array.astype(dtype, copy=False)  # big-endian 16-bit -> native
    return np.ascontiguousarray(array.reshape(array.shape[0], array.shape[1], channels))


def _tiff_open(path: Path, data: bytes):
    """Open a TIFF held in memory (a tifffile.TiffFile; close it, or use it as a context manager)."""
    import tifffile

    try:
        return tifffile.TiffFile(io.BytesIO(data))
    except Exception as error:
        raise ImageReadError(path, f"corrupt TIFF ({error})") from None


def _tiff_first_page(path: Path, tif, size: int):
    """The first page, with its strip/tile offsets checked against the file size."""
    if len(tif.pages) == 0:
        raise ImageReadError(path, "truncated or corrupt TIFF (no readable image directory)")
    page = tif.pages.first
    ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)]
    if not ends or max(ends) > size or 0 in page.shape:
        raise ImageReadError(path, f"truncated TIFF (image data end beyond the file's {size} bytes)")
    return page


def _tiff_direct(page) -> int | None:
    """Channels tifffile returns for a page it decodes as is, or None to decode it with OpenCV."""
    import tifffile

    if page.dtype not in (np.uint8, np.uint16) or page.imagedepth > 1:
        return None
    if page.compression not in tifffile.TIFF.DECOMPRESSORS:  # e.g. LZW or JPEG without imagecodecs
        return None
    samples = page.samplesperpixel
    if page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and samples in (1, 2):
        return 1 if samples == 1 else 4  # grey + alpha -> RGBA
    if page.photometric == tifffile.PHOTOMETRIC.RGB and samples in (3, 4):
        return samples
    return None


def _tiff_fallback(path: Path, data: bytes, photometric: int, bits: int) -> np.ndarray:
    """TIFFs tifffile does not decode as is: 8-bit ones through Pillow (palette, CMYK, YCbCr,
    LZW, JPEG), 16-bit ones through OpenCV/libtiff (which keeps 16 bits)."""
    import tifffile

    if bits <= 8:
        return _pil_read(path, data, "tiff")
    if photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
        name = getattr(photometric, "name", photometric)
        raise ImageReadError(path, f"{bits}-bit TIFF with photometric {name} is not supported (grey or RGB only)")
    return _cv2_decode(path, data, "TIFF")


def _tiff_info(path: Path, data: bytes) -> ImageInfo:
    with _tiff_open(path, data) as tif:
        page = _tiff_first_page(path, tif, len(data))
        channels = _tiff_direct(page)
        if channels is not None:
            return ImageInfo((page.imagelength, page.imagewidth, channels), np.dtype(page.dtype))
    array = _tiff_read(path, data)  # decoded by OpenCV: decode to know what comes out
    return ImageInfo(array.shape, array.dtype)


def _tiff_read(path: Path, data: bytes) -> np.ndarray:
    with _tiff_open(path, data) as tif:
        page = _tiff_first_page(path, tif, len(data))
        channels = _tiff_direct(page)
        if channels is not None:
            try:
                array = page.asarray()
            except Exception as error:
                raise ImageReadError(path, f"TIFF cannot be decoded ({error})") from None
        height, width, samples = page.imagelength, page.imagewidth, page.samplesperpixel
        photometric, bits = page.photometric, page.bitspersample
    if channels is None:
        return _tiff_fallback(path, data, photometric, bits)
    if samples > 1 and array.shape[:1] == (samples,) and array.shape[-2:] == (height, width):
        array = np.moveaxis(array, 0, -1)  # planar (separate) storage
    array = np.ascontiguousarray(array.reshape(height, width, samples))
    if samples == 2:  # grey + alpha -> RGBA
        array = np.concatenate([array[..., :1]] * 3 + [array[..., 1:]], axis=-1)
    return array


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """The shape and dtype :func:`read_image` will return, mostly without decoding pixels.

    PNG files are fully checked here (chunk lengths, CRCs, IEND), so truncated
    PNGs fail already; other formats may still fail in :func:`read_image`.

    Args:
        path: The image file.

    Returns:
        The (H, W, C) shape and dtype.

    Raises:
        ImageReadError: The file is empty, not an image, unsupported or damaged.
    """
    path = Path(path)
    data, kind = _load(path)
    if kind == "png":
        return _png_info(path, data)
    if kind == "tiff":
        return _tiff_info(path, data)
    return _pil_info(path, data)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file bit-exactly (see the module docstring for the conversions).

    Args:
        path: A PNG, JPEG, TIFF, BMP or WebP file (any file name, unicode included).

    Returns:
        The pixels, dtype uint8 or uint16 as stored.

    Shape:
        (H, W, C) with C in {1, 3, 4}.

    Raises:
        ImageReadError: The file is empty, not an image, unsupported, truncated or corrupt.
    """
    path = Path(path)
    data, kind = _load(path)
    if kind == "png":
        _png_header(path, data)
        return _cv2_decode(path, data, "PNG")
    if kind == "tiff":
        return _tiff_read(path, data)
    return _pil_read(path, data, kind)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def check_image_array(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an image array and return it as (H, W, C).

    Args:
        image: (H, W) or (H, W, C) with C in {1, 3, 4}, uint8 or uint16.
        what: Name used in the error message.

    Returns:
        A C-contiguous (H, W, C) view or copy of ``image``.

    Raises:
        ValueError: Wrong rank, channel count, dtype or an empty image.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{what}: expected an (H, W, C) array with C in 1, 3, 4; got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{what}: expected dtype uint8 or uint16; got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{what}: empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def encode_image(image: np.ndarray, fmt: str) -> bytes:
    """Encode an image losslessly as ``"png"`` or ``"tiff"`` (deflate-compressed).

    Args:
        image: uint8 or uint16 pixels.
        fmt: ``"png"`` or ``"tiff"``.

    Returns:
        The file's bytes; :func:`read_image` on them gives ``image`` back exactly.

    Shape:
        image: (H, W, C) with C in {1, 3, 4}, or (H, W).
    """
    image = check_image_array(image)
    channels = image.shape[2]
    if fmt == "png":
        import cv2

        if channels == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        elif channels == 4:
            image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise ValueError(f"OpenCV could not encode a {image.shape} {image.dtype} PNG")
        return encoded.tobytes()
    if fmt == "tiff":
        import tifffile

        buffer = io.BytesIO()
        if channels == 1:
            tifffile.imwrite(buffer, image[:, :, 0], photometric="minisblack", compression="zlib")
        else:
            extra = ["unassalpha"] if channels == 4 else None
            tifffile.imwrite(buffer, image, photometric="rgb", extrasamples=extra, compression="zlib")
        return buffer.getvalue()
    raise ValueError(f"cannot write format {fmt!r} (png or tiff)")


def write_image(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = False) -> None:
    """Write an image losslessly (the inverse of :func:`read_image`), atomically.

    The format follows the suffix (``.png``, ``.tif``, ``.tiff``). The file is
    written under a temporary name and renamed into place, so a crash never
    leaves a half-written image under the final name.

    Args:
        path: Destination file; missing parent folders are created.
        image: uint8 or uint16 pixels.
        overwrite: Replace an existing file (otherwise ``FileExistsError``).

    Shape:
        image: (H, W, C) with C in {1, 3, 4}, or (H, W).
    """
    from restore.data._zarr_store import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_EXTENSIONS:
        raise ValueError(f"{path}: cannot write {suffix or 'files without a suffix'} (use .png or .tiff)")
    data = encode_image(image, "png" if suffix == ".png" else "tiff")
    atomic_write_bytes(path, data, fsync=False, exclusive=not overwrite)


# --------------------------------------------------------------------------------------------
# Listing folders
# --------------------------------------------------------------------------------------------


class KeyClashError(ValueError):
    """Two files in the same folder map to one key (e.g. ``a.png`` and ``a.jpg``)."""


def image_key(relative: str | os.PathLike) -> str:
    """The archive key of a file: its path relative to the source folder, POSIX-style, without suffix.

    Args:
        relative: e.g. ``sub/photo1.png``.

    Returns:
        e.g. ``sub/photo1``.
    """
    relative = Path(relative)
    return relative.with_suffix("").as_posix()


@dataclass
class ImageListing:
    """The images found in a source (see :func:`find_images`).

    Attributes:
        root: The source folder (the parent folder when a single file was given).
        entries: (key, path) pairs sorted by key.
        ignored: Files skipped because of their suffix (not hidden files).
        subfolders: Folders not entered (non-recursive listing).
    """

    root: Path
    entries: list[tuple[str, Path]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    subfolders: list[Path] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        """``path`` relative to :attr:`root`, POSIX-style."""
        return path.relative_to(self.root).as_posix()


def _is_zarr_store(path: Path) -> bool:
    return any((path / name).is_file() for name in ("zarr.json", ".zgroup", ".zarray"))


def _walk(root: Path, recursive: bool) -> Iterator[tuple[Path, bool]]:
    """(path, is_dir) for the visible entries below ``root``, sorted; symlinked folders and zarr stores not entered."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if is_dir and _is_zarr_store(Path(entry.path)):
            continue  # e.g. the archive itself, written inside SRC
        yield Path(entry.path), is_dir
        if is_dir and recursive:
            yield from _walk(Path(entry.path), recursive)


def find_images(src: str | os.PathLike, *, recursive: bool = False) -> ImageListing:
    """List the image files of a folder (or a single file) with their keys.

    Hidden files and folders (names starting with ``.``) and zarr stores are not visited.

    Args:
        src: A folder, or one image file (its key is its stem).
        recursive: Descend into sub-folders (keys then contain ``/``).

    Returns:
        The listing; ``entries`` may be empty.

    Raises:
        KeyClashError: Two files map to one key (e.g. ``a.png`` and ``a.jpg``).
        FileNotFoundError: ``src`` does not exist.
    """
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist")
    if src.is_file():
        return ImageListing(root=src.parent, entries=[(image_key(src.name), src)])
    listing = ImageListing(root=src)
    seen: dict[str, Path] = {}
    for path, is_dir in _walk(src, recursive):
        if is_dir:
            if not recursive:
                listing.subfolders.append(path)
            continue
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            listing.ignored.append(path)
            continue
        key = image_key(path.relative_to(src))
        if key in seen:
            raise KeyClashError(
                f"{seen[key].relative_to(src)} and {path.relative_to(src)} both map to key {key!r}; rename one of them"
            )
        seen[key] = path
    listing.entries = sorted(seen.items())
    return listing


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any (H, W, C) uint8/uint16 image as (H, W, 3) uint8 RGB (alpha dropped, grey repeated).

    Shape:
        image: (H, W, C) with C in {1, 3, 4}, or (H, W); returns (H, W, 3).
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.dtype == np.uint16:
        array = ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValueError(f"expected uint8 or uint16 image, got {array.dtype}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])
