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
