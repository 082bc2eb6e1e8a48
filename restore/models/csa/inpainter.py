"""CSA behind the :class:`~restore.models.base.Inpainter` contract: the shared network inpainter."""

from __future__ import annotations

from pathlib import Path

import torch

from restore.models.csa.networks import CSAGenerator
from restore.models.network import NetworkInpainter, load_network_inpainter


class CSAInpainter(NetworkInpainter):
    """A trained :class:`CSAGenerator` that restores images of any size (padded to a multiple of ``2**depth``)."""

    def __init__(self, generator: CSAGenerator, device: str | torch.device = "cpu", bf16: bool = False) -> None:
        super().__init__("csa", generator, generator.config.multiple, device=device, bf16=bf16)


def load_csa_inpainter(path: Path | str | None, device: str = "cpu", bf16: bool | None = None) -> NetworkInpainter:
    """Load a CSA checkpoint file (a training checkpoint or a shipped, half-precision one); see
    :func:`~restore.models.network.load_network_inpainter`."""
    from restore.models.registry import get_method

    return load_network_inpainter(get_method("csa"), path, device, bf16)
