"""Geometric self-ensemble: restore mirrored and transposed copies of a batch and average them.

A network that is not exactly equivariant to mirroring fills a hole a little differently in
each orientation; the mean of those fills has a lower error than any one of them (the
"self-ensemble" of super-resolution, Lim et al. 2017). The cost is one model call per copy.

The copies are elements of the dihedral group of the square, in an order that adds the
least unusual views first: ``2`` adds the left-right mirror (the flip training uses),
``4`` the upside-down views, ``8`` the transposes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # read by `restore batch --help`: importing this module must not import torch
    from torch import Tensor

    from restore.models.base import Inpainter

#: The ensemble sizes ``--ensemble`` accepts (the subgroups named in the module docstring).
ENSEMBLE_SIZES = (1, 2, 4, 8)


def dihedral(x: Tensor, index: int) -> Tensor:
    """View ``index`` (0-7) of ``x``: bit 2 transposes, then bit 0 mirrors left-right, bit 1 upside down.

    Shape:
        x: (..., H, W); returns (..., H, W), or (..., W, H) for ``index >= 4``.
    """
    if index >= 4:
        x = x.transpose(-1, -2)
    if index & 1:
        x = x.flip(-1)
    if index & 2:
        x = x.flip(-2)
    return x


def undo_dihedral(x: Tensor, index: int) -> Tensor:
    """The inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, i), i)`` equals ``x``.

    Shape:
        x: (..., H, W) of view ``index``; returns the original orientation.
    """
    if index & 2:
        x = x.flip(-2)
    if index & 1:
        x = x.flip(-1)
    if index >= 4:
        x = x.transpose(-1, -2)
    return x


class SelfEnsemble:
    """An :class:`~restore.models.base.Inpainter` that averages ``size`` oriented runs of another.

    Each view of the image and mask goes through ``inner.inpaint`` (one call per view, so
    memory stays that of one call), is turned back, and the mean is pasted into the holes;
    known pixels are copied from the input, exactly.

    Args:
        inner: the inpainter to run.
        size: views per image, one of :data:`ENSEMBLE_SIZES`.
    """

    def __init__(self, inner: Inpainter, size: int) -> None:
        if size not in ENSEMBLE_SIZES:
            raise ValueError(f"ensemble size must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {size}")
        self.inner = inner
        self.size = size
        self.name = inner.name

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the holes with the mean of the views' fills.

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W).
        """
        import torch

        from restore.models.base import check_inputs, composite

        check_inputs(image, mask)
        if self.size == 1:
            return self.inner.inpaint(image, mask)
        with torch.no_grad():
            total = torch.zeros_like(image, dtype=torch.float32)
            for index in range(self.size):
                restored = self.inner.inpaint(dihedral(image, index), dihedral(mask, index))
                total += undo_dihedral(restored, index).float()
            return composite((total / self.size).to(image.dtype), image, mask)

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """The mean of the views' raw network outputs (``inner.predict``), not composited.

        Raises:
            AttributeError: ``inner`` has no ``predict`` (no network output).

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W) float32.
        """
        import torch

        from restore.models.base import check_inputs

        predict = getattr(self.inner, "predict", None)
        if predict is None:
            raise AttributeError(f"{self.name} has no network output to predict")
        check_inputs(image, mask)
        with torch.no_grad():
            total = torch.zeros_like(image, dtype=torch.float32)
            for index in range(self.size):
                total += undo_dihedral(predict(dihedral(image, index), dihedral(mask, index)), index).float()
            return total / self.size
