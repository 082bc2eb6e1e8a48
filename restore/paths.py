"""Where the project finds data that does not ship inside the package."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"


def shared_data_dir() -> Path:
    """The real-data folder: ``$RESTORE_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("RESTORE_DATA")
    if env:
        return Path(env)
    return REPO_DIR.parent / "shared" / "data"


def nvidia_masks_dir() -> Path:
    """The NVIDIA irregular mask set: ``$RESTORE_NVIDIA_MASKS`` or inside :func:`shared_data_dir`."""
    env = os.environ.get("RESTORE_NVIDIA_MASKS")
    if env:
        return Path(env)
    return shared_data_dir() / "masks" / "nvidia-irregular"


def cache_dir() -> Path:
    """Where results worth keeping between runs go: ``$RESTORE_CACHE``, else ``$XDG_CACHE_HOME/restore``,
    else ``~/.cache/restore`` (created by whoever writes there)."""
    env = os.environ.get("RESTORE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "restore"


def tree_fingerprint(path: Path) -> str:
    """``sha256:<hex>`` of the names, sizes and modification times of a file, or of every file under a folder.

    Cheap (no file is read) and changed by anything that rewrites a file: what a resumed run
    compares to notice an input re-ingested or masks generated again since it started.
    """
    import hashlib

    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        name = file.relative_to(root) if root.is_dir() else file.name
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def file_digest(path: Path | None) -> str | None:
    """``sha256:<hex>`` of a checkpoint file (provenance), or None."""
    if path is None:
        return None
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
