"""The methods ``restore`` knows: name -> how to build an :class:`Inpainter`.

``--method`` choices come from :data:`METHODS`. Pipelines never branch on the
method: they call :func:`load_inpainter` and use the ``Inpainter`` contract.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from restore.paths import WEIGHTS_DIR

if TYPE_CHECKING:  # the registry is read by --help: it must not import torch
    from restore.models.base import Inpainter


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: the ``--method`` value.
        summary: one line for ``restore methods``.
        load: ``load(checkpoint, device) -> Inpainter``; ``checkpoint`` is None for methods without weights.
        needs_weights: whether inference needs a checkpoint.
        trainable: whether ``restore train --method NAME`` exists.
        default_strategy: how ``restore batch`` treats images over 256 px by default:
            ``"subsample"`` for networks trained at 256², ``"whole"`` for methods that
            work at any resolution.
    """

    name: str
    summary: str
    load: Callable[[Path | None, str], Inpainter]
    needs_weights: bool
    trainable: bool
    default_strategy: str = "subsample"

    @property
    def shipped_checkpoint(self) -> Path | None:
        """The checkpoint that ships inside the package, if there is one."""
        path = WEIGHTS_DIR / f"{self.name}.pt"
        return path if path.is_file() else None


def _load_opencv(name: str) -> Callable[[Path | None, str], Inpainter]:
    def load(checkpoint: Path | None, device: str) -> Inpainter:
        from restore.models.classical import OpenCVInpainter

        return OpenCVInpainter(name)

    return load


def _load_csa(checkpoint: Path | None, device: str) -> Inpainter:
    from restore.models.csa import load_csa_inpainter

    return load_csa_inpainter(checkpoint, device)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("csa", "Coherent semantic attention (Liu et al. 2019), two-stage U-Net", _load_csa, True, True),
        Method("telea", "OpenCV Telea fast marching (radius 3), classical baseline", _load_opencv("telea"), False, False, "whole"),
        Method("ns", "OpenCV Navier-Stokes (radius 3), classical baseline", _load_opencv("ns"), False, False, "whole"),
    ]
}


class MissingWeightsError(RuntimeError):
    """A method needs weights and none were given or shipped."""


def resolve_checkpoint(name: str, checkpoint: Path | None) -> Path | None:
    """The checkpoint a run of ``name`` uses: the given one, else the shipped one."""
    method = METHODS[name]
    if not method.needs_weights:
        return None
    if checkpoint is not None:
        return Path(checkpoint)
    if method.shipped_checkpoint is None:
        raise MissingWeightsError(
            f"method {name!r} has no shipped checkpoint; train one with "
            f"`restore train --method {name}` and pass it with --checkpoint"
        )
    return method.shipped_checkpoint


def load_inpainter(name: str, checkpoint: Path | None = None, device: str = "cpu") -> Inpainter:
    """Build the named method, with its checkpoint (or the shipped one) on ``device``."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name].load(resolve_checkpoint(name, checkpoint), device)


def file_digest(path: Path | None) -> str | None:
    """``sha256:<hex>`` of a checkpoint file (provenance), or None."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
