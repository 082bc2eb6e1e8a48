"""Image archives (Zarr v3, DESIGN §5): the format, reading, and building new archives.

An archive is a zarr group with one of two layouts:

- ``stack`` — images of one size and dtype: an array ``images`` of shape
  (N, H, W, C), one image per chunk (1, H, W, C), chunks grouped into shard
  files (:func:`shard_images`) so a million images are not a million files.
- ``group`` — mixed sizes: a group ``images/`` with one (H, W, C) array per
  key. The array path is the key itself (``sub/photo1`` → ``images/sub/photo1``)
  unless a path component is unsafe (empty, ``.``/``..``, starting with ``.``
  or ``__``, ``zarr.json``) or the path collides with another key's folder
  (keys ``a`` and ``a/b``); such names get a ``~<hash>`` suffix. The mapping is
  stored in the ``array_names`` attribute and is authoritative.

Root attributes: ``format`` ("restore-archive"), ``format_version``, ``kind``
("images" or "restored"), ``layout``, ``keys`` (list, the stack's order),
``source_dir``, ``source_files`` (key → file name relative to ``source_dir``),
``array_names`` (group layout), ``restore_version``, ``created``, ``skipped``
(files left out by ``--skip-bad``); restored archives add ``input_archive`` and
the caller's provenance (method, checkpoint digest, mask source, strategy, …)
and hold a ``done`` array (N,) uint8: 1 = that image is completely written.

Images are compressed with zstd (level 3) and carry a CRC-32C each, so damaged
data is an error on read, never wrong pixels. A new archive is built under
``.NAME.tmp-<pid>`` beside its destination and renamed into place
(:class:`ArchiveBuilder`); every store write is atomic
(:class:`restore.data._zarr_store.DurableLocalStore`).

Related modules: :mod:`restore.data.ingest` (image files → archive) and
:mod:`restore.data.output_archive` (:class:`OutputArchive`, the crash-safe,
resumable writer of restored archives; re-exported here).
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from restore import __version__
from restore.data.images import check_image_array
from restore.messages import one_line

FORMAT = "restore-archive"
FORMAT_VERSION = 1
Layout = Literal["stack", "group"]

#: Shard limits of a new (ingested) archive: written once, sequentially, a shard at a time.
INGEST_SHARD_IMAGES = 64
INGEST_SHARD_BYTES = 64 * 2**20
#: Shard limits of an output archive: each image write rewrites its whole shard, so keep them small.
OUTPUT_SHARD_IMAGES = 16
OUTPUT_SHARD_BYTES = 16 * 2**20
#: Entries per chunk of the ``done`` array (each completion rewrites one such small file).
DONE_CHUNK = 4096

#: Root attributes an archive's producer sets; callers' provenance may not use these names.
RESERVED_ATTRS = frozenset(
    {
        "format", "format_version", "kind", "layout", "keys", "source_dir", "source_files",
        "array_names", "restore_version", "created", "skipped", "input_archive",
    }
)  # fmt: skip


class ArchiveError(ValueError):
    """An archive that cannot be opened, read or written as asked; ``str()`` is one line."""


# --------------------------------------------------------------------------------------------
# Naming and sharding
# --------------------------------------------------------------------------------------------


def shard_images(image_bytes: int, count: int, *, max_images: int, max_bytes: int) -> int:
    """Images per shard: as many as fit in ``max_bytes`` (uncompressed), at most ``max_images`` and ``count``.

    Args:
        image_bytes: Bytes of one uncompressed image (H·W·C·itemsize).
        count: Number of images in the archive.
        max_images: Upper bound on images per shard.
        max_bytes: Upper bound on the uncompressed bytes of a shard (one image at least).

    Returns:
        The shard length along the image axis (≥ 1).
    """
    return max(1, min(count, max_images, max_bytes // max(1, image_bytes)))


def _safe_component(part: str) -> str:
    if part in ("", ".", "..", "zarr.json") or part.startswith((".", "__")):
        return "k" + hashlib.sha1(part.encode()).hexdigest()[:8] + part.lstrip("._")
    return part


def array_names(keys: Iterable[str]) -> dict[str, str]:
    """Map keys to array paths inside ``images/`` (group layout); see the module docstring.

    Args:
        keys: Distinct keys (``/`` separates folders).

    Returns:
        key → array path, distinct, none of which is a folder of another.
    """
    keys = list(keys)
    paths = {key: "/".join(_safe_component(p) for p in key.split("/")) for key in keys}
    folders = {path.rsplit("/", n)[0] for path in paths.values() for n in range(1, path.count("/") + 1)}
    names: dict[str, str] = {}
    used: set[str] = set()
    for key in keys:
        name = paths[key]
        salt = 0
        while name in folders or name in used:
            digest = hashlib.sha1(f"{key}\0{salt}".encode()).hexdigest()[:8]
            name, salt = f"{paths[key]}~{digest}", salt + 1
        names[key] = name
        used.add(name)
    return names


def image_codecs() -> list:
    """The codecs of every image array (inside shards for the stack layout)."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    # zstd level 3 (~0.68 of the raw size on photos, ~190 MB/s), then a checksum per image so
    # damaged data is an error on read, never silently wrong pixels.
    return [ZstdCodec(level=3), Crc32cCodec()]


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the ``created`` attribute)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class Archive:
    """Read access to an archive (see :func:`open_archive`).

    Attributes:
        path: The archive folder.
        layout: ``"stack"`` or ``"group"``.
        keys: Image keys in archive order (the stack's order).
        attrs: The root attributes (a plain dict copy).
    """

    def __init__(self, path: Path, group: Any, attrs: dict, layout: Layout, keys: list[str], names: dict[str, str]) -> None:
        self.path = path
        self.layout: Layout = layout
        self.keys = keys
        self.attrs = attrs
        self._group = group
        self._names = names
        self._index = {key: i for i, key in enumerate(keys)}
        self._arrays: dict[str, Any] = {}
        self._images = group["images"] if layout == "stack" else None
        self._done: np.ndarray | None = None
        if "done" in group:
            self._done = np.asarray(group["done"][...]).astype(bool)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __repr__(self) -> str:
        return f"Archive({str(self.path)!r}, layout={self.layout!r}, {len(self)} images)"

    def __reduce__(self) -> tuple:
        # Pickled (e.g. to a Dask worker) as its path: the worker reopens it read-only.
        return (open_archive, (self.path,))

    @property
    def kind(self) -> str:
        """``"images"`` (ingested) or ``"restored"`` (written by :class:`OutputArchive`)."""
        return str(self.attrs.get("kind", "images"))

    @property
    def images(self) -> Any:
        """The (N, H, W, C) zarr array of a stack archive (for Dask: ``da.from_zarr``)."""
        if self._images is None:
            raise ArchiveError(f"{self.path}: a {self.layout}-layout archive has no single images array")
        return self._images

    def index(self, key: str) -> int:
        """Position of ``key`` in :attr:`keys`."""
        try:
            return self._index[key]
        except KeyError:
            raise ArchiveError(f"{self.path}: no image with key {key!r}") from None

    def array_name(self, key: str) -> str:
        """Path of the key's array inside ``images/`` (group layout)."""
        self.index(key)
        return self._names[key]

    def _array(self, key: str) -> Any:
        array = self._arrays.get(key)
        if array is None:
            try:
                array = self._group["images"][self._names[key]]
            except Exception as error:
                raise ArchiveError(f"{self.path}: the array of image {key!r} cannot be opened ({one_line(error)})") from None
            _check_image_array_meta(self.path, f"images/{self._names[key]}", array.shape, array.dtype, 3)
            self._arrays[key] = array
        return array

    def shape(self, key: str) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        self.index(key)
        if self._images is not None:
            return tuple(self._images.shape[1:])
        return tuple(self._array(key).shape)

    def dtype(self, key: str) -> np.dtype:
        """``uint8`` or ``uint16``."""
        self.index(key)
        return np.dtype((self._images if self._images is not None else self._array(key)).dtype)

    def source_file(self, key: str) -> str | None:
        """The file the image came from, relative to ``attrs["source_dir"]`` (None when unknown)."""
        self.index(key)
        return (self.attrs.get("source_files") or {}).get(key)

    def is_done(self, key: str) -> bool:
        """Whether the image is completely written (always true for ingested archives)."""
        i = self.index(key)
        return True if self._done is None else bool(self._done[i])

    def done_keys(self) -> set[str]:
        """Keys of the completely written images."""
        if self._done is None:
            return set(self.keys)
        return {key for key, done in zip(self.keys, self._done, strict=True) if done}

    @property
    def complete(self) -> bool:
        """Whether every image is written (an interrupted ``restore batch`` leaves this false).

        The ``done`` record is read when the archive is opened: reopen to see later writes.
        """
        return self._done is None or bool(self._done.all())

    @property
    def records_completion(self) -> bool:
        """Whether the archive has a ``done`` record (an output archive of ``restore batch``)."""
        return self._done is not None

    def read(self, key: str) -> np.ndarray:
        """Read one image.

        Args:
            key: An archive key.

        Returns:
            The pixels (uint8 or uint16).

        Shape:
            (H, W, C).

        Raises:
            ArchiveError: Unknown key, an image not yet written, or damaged data.
        """
        i = self.index(key)
        if self._done is not None and not self._done[i]:
            raise ArchiveError(f"{self.path}: image {key!r} is not written yet (the run that writes this archive did not finish)")
        try:
            if self._images is not None:
                return np.asarray(self._images[i])
            return np.asarray(self._array(key)[...])
        except ArchiveError:
            raise
        except Exception as error:
            raise ArchiveError(f"{self.path}: image {key!r} cannot be read ({one_line(error)})") from None


def _check_image_array_meta(path: Path, name: str, shape: tuple, dtype: Any, ndim: int) -> None:
    native = np.dtype(dtype)
    if len(shape) != ndim or shape[-1] not in (1, 3, 4):
        want = "(N, H, W, C)" if ndim == 4 else "(H, W, C)"
        raise ArchiveError(f"{path}: array {name!r} has shape {tuple(shape)}, expected {want} with C in 1, 3, 4")
    if native not in (np.uint8, np.uint16):
        raise ArchiveError(f"{path}: array {name!r} has dtype {native}, expected uint8 or uint16")


def _group_keys_from_members(images: Any) -> dict[str, str]:
    import zarr

    return {name: name for name, node in images.members(max_depth=None) if isinstance(node, zarr.Array)}


def _holds_images(folder: Path) -> bool:
    from restore.data.images import IMAGE_EXTENSIONS

    return any(entry.suffix.lower() in IMAGE_EXTENSIONS for entry in itertools.islice(folder.iterdir(), 1000))


def open_archive(path: str | os.PathLike) -> Archive:
    """Open an archive for reading and check its structure (not its pixels).

    Archives written by other tools are accepted when they follow DESIGN §5:
    keys from a ``keys`` attribute (root or ``images``) or a ``keys`` array;
    group-layout keys default to the array paths inside ``images/``.

    Args:
        path: The archive folder (``*.zarr``).

    Returns:
        The archive.

    Raises:
        ArchiveError: A missing path, not a zarr group, no ``images``, wrong shapes or
            dtypes, keys that do not match the images, missing arrays, or no images at all.
    """
    import zarr
    from zarr.storage import LocalStore

    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"{path}: no such archive")
    if not path.is_dir():
        raise ArchiveError(f"{path}: not an archive (a file, not a zarr folder)")
    if not (path / "zarr.json").is_file():
        hint = " (a zarr v2 store; restore reads zarr v3)" if (path / ".zgroup").is_file() else ""
        if not hint and _holds_images(path):
            hint = f" (a folder of images: make an archive first with `restore ingest {path} {path.name}.zarr`)"
        raise ArchiveError(f"{path}: not a zarr v3 archive (no zarr.json){hint}")
    try:
        group = zarr.open_group(LocalStore(path, read_only=True), mode="r")
    except Exception as error:
        raise ArchiveError(f"{path}: not a zarr group ({one_line(error)})") from None
    attrs = dict(group.attrs)
    if "images" not in group:
        raise ArchiveError(f"{path}: not an image archive (no 'images' array or group)")
    images = group["images"]
    if isinstance(images, zarr.Array):
        layout: Layout = "stack"
        _check_image_array_meta(path, "images", images.shape, images.dtype, 4)
        keys = _stack_keys(path, group, images, attrs)
        names = {key: "" for key in keys}
    else:
        layout = "group"
        raw_names = attrs.get("array_names")
        if raw_names is None:
            raw_names = _group_keys_from_members(images)
        if not isinstance(raw_names, Mapping):
            raise ArchiveError(f"{path}: attribute 'array_names' must map keys to array names")
        names = {str(k): str(v) for k, v in raw_names.items()}
        keys = [str(k) for k in attrs["keys"]] if "keys" in attrs else sorted(names)
        missing = [key for key in keys if key not in names]
        if missing:
            raise ArchiveError(f"{path}: no array name for key {missing[0]!r} ({len(missing)} keys without one)")
        absent = [key for key in keys if not (path / "images" / names[key] / "zarr.json").is_file()]
        if absent:
            raise ArchiveError(
                f"{path}: the array of image {absent[0]!r} (images/{names[absent[0]]}) is missing"
                + (f" ({len(absent)} images missing)" if len(absent) > 1 else "")
            )
    if "done" in group and group["done"].shape != (len(keys),):
        raise ArchiveError(f"{path}: 'done' has shape {group['done'].shape} for {len(keys)} images")
    if len(set(keys)) != len(keys):
        dup = next(k for k, n in Counter(keys).items() if n > 1)
        raise ArchiveError(f"{path}: key {dup!r} appears more than once")
    if not keys:
        raise ArchiveError(f"{path}: the archive is empty (no images)")
    return Archive(path, group, attrs, layout, keys, names)


def _stack_keys(path: Path, group: Any, images: Any, attrs: dict) -> list[str]:
    if "keys" in attrs:
        raw = attrs["keys"]
    elif "keys" in images.attrs:
        raw = images.attrs["keys"]
    elif "keys" in group:
        raw = group["keys"][...].tolist()
    else:
        raise ArchiveError(f"{path}: no 'keys' attribute or array names the {images.shape[0]} images")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ArchiveError(f"{path}: 'keys' must be a list of strings")
    keys = [str(k) for k in raw]
    if len(keys) != images.shape[0]:
        raise ArchiveError(f"{path}: {len(keys)} keys for {images.shape[0]} images in 'images'")
    return keys


# --------------------------------------------------------------------------------------------
# Building a new archive
# --------------------------------------------------------------------------------------------


class ArchiveBuilder:
    """Write a new archive under a temporary name; rename it into place when complete.

    Use as a context manager: leaving the block normally commits (renames into
    place), an exception aborts (the temporary folder is deleted and the
    destination is untouched). Images must be added in the order of ``keys``
    (any subset: a skipped key simply leaves no trace). Memory: a stack archive
    buffers at most one shard (≤ 64 MiB).

    Args:
        dest: The archive to create.
        keys: Every key that may be added, in archive order.
        layout: ``"stack"`` (needs ``image_shape`` and ``dtype``) or ``"group"``.
        image_shape: (H, W, C) of every image (stack layout).
        dtype: uint8 or uint16 (stack layout).
        attrs: Extra root attributes (``source_dir`` and the like).
        overwrite: Replace an existing archive at ``dest`` (atomically at commit).
    """

    def __init__(
        self,
        dest: str | os.PathLike,
        *,
        keys: Sequence[str],
        layout: Layout,
        image_shape: tuple[int, int, int] | None = None,
        dtype: Any = None,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if layout not in ("stack", "group"):
            raise ValueError(f"layout must be 'stack' or 'group', not {layout!r}")
        if layout == "stack" and (image_shape is None or dtype is None):
            raise ValueError("a stack archive needs image_shape and dtype")
        self.dest = Path(dest)
        self.layout: Layout = layout
        self.keys = list(keys)
        self.overwrite = overwrite
        self.extra_attrs = dict(attrs or {})
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self._position = {key: i for i, key in enumerate(self.keys)}
        self._written: list[str] = []
        self._sources: dict[str, str] = {}
        self._names = array_names(self.keys) if layout == "group" else {}
        self._last = -1
        self._tmp: Path | None = None
        self._group: Any = None
        self._buffer: np.ndarray | None = None
        self._buffered = 0
        self._flushed = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> ArchiveBuilder:
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def open(self) -> None:
        """Create the temporary archive (called by ``with``)."""
        import zarr

        from restore.data._zarr_store import DurableLocalStore, temp_dir_for

        if not self.keys:
            raise ArchiveError(f"{self.dest}: no images to write")
        check_destination(self.dest, self.overwrite)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_dir_for(self.dest)
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir()
        try:
            # fsync per file is off while building: the whole folder is flushed once before the rename.
            store = DurableLocalStore(self._tmp, fsync=False)
            self._group = zarr.open_group(store, mode="w-")
            if self.layout == "stack":
                height, width, channels = self.image_shape
                per_shard = shard_images(
                    height * width * channels * self.dtype.itemsize, len(self.keys),
                    max_images=INGEST_SHARD_IMAGES, max_bytes=INGEST_SHARD_BYTES,
                )  # fmt: skip
                self._group.create_array(
                    "images", shape=(len(self.keys), *self.image_shape), dtype=self.dtype,
                    chunks=(1, *self.image_shape), shards=(per_shard, *self.image_shape),
                    compressors=image_codecs(), fill_value=0,
                    dimension_names=("image", "y", "x", "channel"),
                )  # fmt: skip
                self._buffer = np.empty((per_shard, *self.image_shape), self.dtype)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Delete the temporary archive; the destination is left as it was."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- writing -----------------------------------------------------------------------------

    def add(self, key: str, image: np.ndarray, source_file: str | None = None) -> None:
        """Add one image (in ``keys`` order).

        Args:
            key: One of ``keys``, after the previously added one.
            image: uint8 or uint16 pixels.
            source_file: The file it came from, relative to the source folder.

        Shape:
            image: (H, W, C), equal to ``image_shape`` in a stack archive.
        """
        if self._group is None:
            raise RuntimeError("ArchiveBuilder.add() outside of its with-block")
        position = self._position.get(key)
        if position is None:
            raise KeyError(f"key {key!r} was not announced to the builder")
        if position <= self._last:
            raise ValueError(f"key {key!r} added out of order or twice")
        image = check_image_array(image, f"image {key!r}")
        if self.layout == "stack":
            if image.shape != self.image_shape or image.dtype != self.dtype:
                raise ArchiveError(
                    f"image {key!r} is {describe_shape(image.shape, image.dtype)}; this stack archive holds "
                    f"{describe_shape(self.image_shape, self.dtype)} images"
                )
            self._buffer[self._buffered] = image
            self._buffered += 1
            if self._buffered == len(self._buffer):
                self._flush()
        else:
            array = self._group.create_array(
                f"images/{self._names[key]}", shape=image.shape, dtype=image.dtype,
                chunks=image.shape, compressors=image_codecs(), fill_value=0,
                dimension_names=("y", "x", "channel"), attributes={"key": key},
            )  # fmt: skip
            array[...] = image
        self._last = position
        self._written.append(key)
        if source_file is not None:
            self._sources[key] = source_file

    def _flush(self) -> None:
        if self._buffered:
            start = self._flushed
            self._group["images"][start : start + self._buffered] = self._buffer[: self._buffered]
            self._flushed += self._buffered
            self._buffered = 0

    @property
    def count(self) -> int:
        """Images added so far."""
        return len(self._written)

    def commit(self) -> Path:
        """Finish the archive and rename it into place (called by ``with``).

        Returns:
            The destination path.

        Raises:
            ArchiveError: No image was added (nothing is created).
        """
        from restore.data._zarr_store import fsync_tree, replace_dir

        if self._tmp is None:
            raise RuntimeError("ArchiveBuilder.commit() without open()")
        try:
            if not self._written:
                raise ArchiveError(f"{self.dest}: no images to write")
            if self.layout == "stack":
                self._flush()
                if self._flushed < len(self.keys):
                    self._group["images"].resize((self._flushed, *self.image_shape))
            attrs = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "images",
                "layout": self.layout, "keys": self._written,
                "restore_version": __version__, "created": utc_now(),
            }  # fmt: skip
            if self.layout == "group":
                attrs["array_names"] = {key: self._names[key] for key in self._written}
            if self._sources:
                attrs["source_files"] = self._sources
            attrs.update(self.extra_attrs)
            self._group.attrs.update(attrs)
            fsync_tree(self._tmp)
            check_destination(self.dest, self.overwrite)
            replace_dir(self._tmp, self.dest, overwrite=self.overwrite)
            self._tmp = None
        except BaseException:
            self.abort()
            raise
        return self.dest


def describe_shape(shape: tuple | None, dtype: Any) -> str:
    """``"256×256×3 uint8"``, for messages."""
    return "×".join(str(s) for s in shape or ()) + f" {np.dtype(dtype).name}"


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr v3 folder (what ``--overwrite`` may replace)."""
    path = Path(path)
    return path.is_dir() and (path / "zarr.json").is_file()


def check_destination(dest: Path, overwrite: bool) -> None:
    """Whether a new archive may be written at ``dest``.

    Raises:
        FileExistsError: ``dest`` exists and ``overwrite`` is false.
        ArchiveError: ``dest`` exists and is not a zarr archive (never replaced, even with ``overwrite``).
    """
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{dest} already exists (pass overwrite=True / --overwrite to replace it)")
        if not is_archive(dest):
            raise ArchiveError(f"{dest} exists and is not a zarr archive; refusing to replace it")


__all__ = [
    "Archive", "ArchiveBuilder", "ArchiveError", "array_names", "is_archive", "open_archive", "shard_images",
]  # fmt: skip
