"""Durable file writes for zarr archives: atomic replace, fsync, staging folders, a writer lock.

Zarr 3.1.6's ``LocalStore`` already writes each key to a temporary file and
renames it into place, but it never calls ``fsync`` and older 3.x releases
wrote in place. Archives rely on one property for crash safety, so it is
implemented here rather than borrowed: **every store write is a new file that
replaces the old one in a single rename**. A shard (many images in one file) is
rewritten whole when one image in it changes; with atomic replace, a process
killed at any moment leaves either the old shard or the new one, never a mix,
so images written earlier into the shard cannot be damaged.

Crash safety against a killed process needs nothing more: the kernel keeps
what was written. Against a power loss, ``fsync=True`` flushes each file's data
before its rename, and journaling file systems (ext4, XFS) commit renames in
order, so the output archive's completion record never reaches the disk before
the image it records. ``fsync_dirs=True`` also flushes the folder after every
rename (strict POSIX durability, about 7 ms more per write on the test
machine); staged folders are flushed once, with :func:`fsync_tree`, before
they are renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

#: Suffix of the temporary files this module writes (found and removed by :func:`remove_stale_temp_files`).
TEMP_SUFFIX = ".restore-tmp"


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename or a new file in it) to disk; a no-op where unsupported."""
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: Path, data: bytes | memoryview, *, fsync: bool = True, fsync_dir_after: bool = False, exclusive: bool = False
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and one rename.

    Args:
        path: Destination file; its folder is created when missing.
        data: The bytes to write.
        fsync: Flush the file's data before the rename.
        fsync_dir_after: Also flush the folder after the rename.
        exclusive: Fail with ``FileExistsError`` instead of replacing an existing file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # raises FileExistsError; never replaces
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
        if fsync_dir_after:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_stale_temp_files(root: Path) -> int:
    """Delete temporary files left under ``root`` by a killed writer; returns how many.

    Only call this while holding the archive's writer lock (no write in flight).
    """
    removed = 0
    for tmp in root.rglob(f"*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


class DurableLocalStore(LocalStore):
    """A ``LocalStore`` whose every write is atomic (temporary file + rename) and optionally fsync'ed.

    Args:
        root: Folder of the store.
        read_only: Refuse writes.
        fsync: Flush each file's data to disk before its rename.
        fsync_dirs: Also flush the folder after each rename.
    """

    def __init__(self, root: Path | str, *, read_only: bool = False, fsync: bool = True, fsync_dirs: bool = False) -> None:
        super().__init__(root, read_only=read_only)
        self.fsync = fsync
        self.fsync_dirs = fsync_dirs

    def with_read_only(self, read_only: bool = False) -> DurableLocalStore:
        return type(self)(self.root, read_only=read_only, fsync=self.fsync, fsync_dirs=self.fsync_dirs)

    def _write(self, key: str, value: Buffer, exclusive: bool = False) -> None:
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(f"store values must be zarr Buffers, not {type(value).__name__}")
        atomic_write_bytes(
            self.root / key, value.as_buffer_like(), fsync=self.fsync, fsync_dir_after=self.fsync_dirs, exclusive=exclusive
        )

    def set_sync(self, key: str, value: Buffer) -> None:
        self._ensure_open_sync()
        self._write(key, value)

    async def _set(self, key: str, value: Buffer, exclusive: bool = False) -> None:
        import asyncio

        if not self._is_open:
            await self._open()
        await asyncio.to_thread(self._write, key, value, exclusive)


def temp_dir_for(dest: Path, pid: int | None = None) -> Path:
    """``.NAME.tmp-<pid>`` beside ``dest``: where a folder is built before it is renamed into place."""
    return dest.with_name(f".{dest.name}.tmp-{os.getpid() if pid is None else pid}")


def temp_dir_owner(dest: Path, candidate: Path) -> int | None:
    """The pid in ``candidate``'s name when it is a :func:`temp_dir_for` folder of ``dest``, else None."""
    prefix = temp_dir_for(dest, 0).name.removesuffix("0")
    digits = candidate.name.removeprefix(prefix)
    return int(digits) if candidate.name.startswith(prefix) and digits.isascii() and digits.isdigit() else None


@contextlib.contextmanager
def staged_dir(dest: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a new folder under a temporary name beside ``dest`` and rename it into place on success.

    The temporary folder is ``.NAME.tmp-<pid>`` beside ``dest``; on any error (or
    ``KeyboardInterrupt``) it is removed and ``dest`` is left as it was. With
    ``overwrite``, an existing ``dest`` is moved aside, the new folder renamed
    into place and only then the old one deleted.

    Args:
        dest: The final path.
        overwrite: Allow replacing an existing ``dest``.

    Yields:
        The temporary folder to fill.

    Raises:
        FileExistsError: ``dest`` exists and ``overwrite`` is false (checked before and after building).
    """
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_for(dest)
    if tmp.exists():  # left by a killed process that had our pid
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, dest, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(src: Path, dest: Path, *, overwrite: bool) -> None:
    """Rename folder ``src`` to ``dest``; with ``overwrite`` an existing ``dest`` is replaced.

    A replacement takes two renames (POSIX cannot atomically replace a non-empty
    folder): ``dest`` → ``.NAME.old-<pid>``, ``src`` → ``dest``, then the old copy
    is deleted. A crash between the two renames leaves the old archive at
    ``.NAME.old-<pid>``.
    """
    old = None
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{dest} already exists")
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    try:
        os.replace(src, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    fsync_dir(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class WriterLock:
    """An exclusive advisory lock (``flock``) on a folder: one writer process per archive.

    The lock belongs to the folder itself (its inode), so it follows the folder
    through a rename. The kernel releases it when the process dies, SIGKILL
    included, so a stale lock never blocks a rerun. Without ``fcntl`` (Windows)
    it is a no-op.

    Args:
        path: The folder to lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; returns False when another process holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return True
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk (before renaming a staged folder into place).

    On Linux one ``syncfs`` call flushes the whole file system (measured: 0.04 s
    instead of 1.3 s for ~360 separate fsyncs of a 58-image group archive);
    elsewhere each file and folder is fsync'ed.
    """
    if sys.platform == "win32":
        return
    if sys.platform.startswith("linux") and _syncfs(root):
        return
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def _syncfs(path: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``path``; False where it is unavailable or fails."""
    import ctypes

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)
