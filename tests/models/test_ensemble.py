"""The geometric self-ensemble: views and their inverses, the average it takes, known pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pipelines.batch_fakes import tiny_csa_checkpoint
from torch import Tensor

from restore.models.base import composite
from restore.models.csa import load_csa_inpainter
from restore.models.ensemble import ENSEMBLE_SIZES, SelfEnsemble, dihedral, undo_dihedral


class RampFill:
    """Fills holes with (column / (W - 1))²: not equivariant, so every view fills differently."""

    name = "ramp"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        self.calls.append(tuple(image.shape[-2:]))
        width = image.shape[-1]
        ramp = (torch.arange(width, dtype=torch.float32) / (width - 1)) ** 2
        return composite(ramp.expand_as(image), image, mask)


class MeanFill:
    """Fills each image's holes with the mean of its known pixels: the same in every view."""

    name = "mean"

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        known = 1 - mask
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
        return composite(mean.expand_as(image), image, mask)


def _inputs(height: int = 9, width: int = 14) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, height, width, generator=generator)
    mask = torch.zeros(2, 1, height, width)
    mask[0, :, 1:5, 2:11] = 1  # not symmetric under any flip or transpose
    mask[1, :, 4:, :3] = 1
    return image, mask


def test_every_view_is_undone_and_the_eight_views_differ() -> None:
    x = torch.rand(2, 3, 5, 7)
    views = [dihedral(x, index) for index in range(8)]
    for index, view in enumerate(views):
        assert view.shape[-2:] == ((7, 5) if index >= 4 else (5, 7))
        assert torch.equal(undo_dihedral(view, index), x)
    square = torch.rand(1, 1, 6, 6)
    flat = [dihedral(square, index).flatten() for index in range(8)]
    assert all(not torch.equal(flat[i], flat[j]) for i in range(8) for j in range(i))


@pytest.mark.parametrize("size", [2, 4, 8])
def test_the_fill_is_the_mean_of_the_views_fills_turned_back(size: int) -> None:
    image, mask = _inputs()
    inner = RampFill()
    out = SelfEnsemble(inner, size).inpaint(image, mask)
    height, width = image.shape[-2:]
    columns = torch.arange(width, dtype=torch.float32) / (width - 1)
    rows = (torch.arange(height, dtype=torch.float32) / (height - 1))[:, None]
    across = (columns**2 + (1 - columns) ** 2).expand(height, width)  # the view and its left-right mirror
    down = (rows**2 + (1 - rows) ** 2).expand(height, width)  # a transposed view's ramp runs down the image
    expected_fill = across / 2 if size < 8 else (across + down) / 4
    expected = torch.where(mask > 0.5, expected_fill.expand_as(image), image)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert torch.equal(out[(mask < 0.5).expand_as(image)], image[(mask < 0.5).expand_as(image)])
    assert len(inner.calls) == size
    assert inner.calls.count((width, height)) == (4 if size == 8 else 0)


def test_an_equivariant_model_is_unchanged() -> None:
    image, mask = _inputs()
    plain = MeanFill().inpaint(image, mask)
    for size in ENSEMBLE_SIZES:
        ensemble = SelfEnsemble(MeanFill(), size)
        assert ensemble.name == "mean"
        torch.testing.assert_close(ensemble.inpaint(image, mask), plain, rtol=0, atol=1e-6)


def test_a_csa_network_keeps_known_pixels_exact_on_an_odd_size(tmp_path: Path) -> None:
    csa = load_csa_inpainter(tiny_csa_checkpoint(tmp_path / "csa.pt"), bf16=False)
    image, mask = _inputs(37, 50)
    single = csa.inpaint(image, mask)
    known = (mask < 0.5).expand_as(image)
    for size in (2, 8):
        out = SelfEnsemble(csa, size).inpaint(image, mask)
        assert out.shape == image.shape and out.dtype == image.dtype
        assert torch.equal(out[known], image[known])
        assert out.min() >= 0 and out.max() <= 1
        assert not torch.allclose(out[~known], single[~known])  # the views did fill differently


def test_an_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="ensemble size must be one of 1, 2, 4, 8, got 3"):
        SelfEnsemble(MeanFill(), 3)
