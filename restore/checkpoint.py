"""Checkpoints: one dict per file, written atomically.

A checkpoint is a dict with ``format``, ``method``, ``step``, ``config``,
``models`` (name -> state dict), ``optimizers`` (name -> state dict),
``metadata`` and, for training checkpoints, ``rng``. Inference checkpoints
(what ships) keep only the generator, possibly in half precision.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from restore.messages import unreadable_torch_file

FORMAT = "restore.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not one of ours."""


def _umask() -> int:
    try:  # Linux says it without changing it (setting it, even briefly, races other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename).

    A reader never sees a half-written file, and a process killed mid-save
    leaves the previous file in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"format": FORMAT, **checkpoint}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        with os.fdopen(fd, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, truncated or not a restore checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # TorchVersion (a str subclass) appears in the metadata of some checkpoints.
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {unreadable_torch_file(error)}") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a restore checkpoint")
    return checkpoint


def inference_weights(checkpoint: dict[str, Any], name: str = "generator") -> dict[str, Any]:
    """A module's weights for inference: its moving average (``NAME_ema``) when the checkpoint keeps one."""
    average = checkpoint["models"].get(f"{name}_ema")
    if average is None:
        return checkpoint["models"][name]
    # an ExponentialMovingAverage: the network's weights under "module."
    return {key.removeprefix("module."): value for key, value in average.items() if key.startswith("module.")}


def inference_checkpoint(checkpoint: dict[str, Any], half: bool = True, keep: tuple[str, ...] = ("generator",)) -> dict[str, Any]:
    """Strip a training checkpoint to what inference needs (optionally in float16).

    A kept module with a moving average (``NAME_ema``) is stored as its average.
    """
    models = {}
    for name in keep:
        models[name] = {
            key: (value.half() if half and value.is_floating_point() else value)
            for key, value in inference_weights(checkpoint, name).items()
        }
    slim = {key: value for key, value in checkpoint.items() if key not in ("models", "optimizers", "rng", "format")}
    slim["models"] = models
    slim["metadata"] = {**checkpoint.get("metadata", {}), "inference_only": True, "half": half,
                        "moving_average": any(f"{name}_ema" in checkpoint["models"] for name in keep)}
    return slim
