"""Poisson blending: against a direct sparse solve, its invariants, the bounding-box crop, the wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch
from helpers import cpu_and_cuda
from torch import Tensor

from restore.inference.poisson import PoissonBlended, poisson_blend
from restore.models.base import composite
from restore.models.classical import OpenCVInpainter
from restore.models.ensemble import SelfEnsemble


def direct_solve(guide: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The equation as written, for one channel: a sparse matrix over the hole pixels, spsolve.

    For hole pixel p with in-image 4-neighbours N(p):
    |N(p)| f_p − Σ_{q∈N(p)∩hole} f_q = Σ_{q∈N(p)} (g_p − g_q) + Σ_{q∈N(p)∖hole} image_q.
    """
    height, width = hole.shape
    pixels = np.argwhere(hole)
    index = {tuple(p): k for k, p in enumerate(pixels)}
    rows, cols, values = [], [], []
    rhs = np.zeros(len(pixels))
    for k, (i, j) in enumerate(pixels):
        neighbours = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
                      if 0 <= i + di < height and 0 <= j + dj < width]
        rows.append(k), cols.append(k), values.append(float(len(neighbours)))
        for q in neighbours:
            rhs[k] += guide[i, j] - guide[q]
            if hole[q]:
                rows.append(k), cols.append(index[q]), values.append(-1.0)
            else:
                rhs[k] += image[q]
    matrix = scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(pixels), len(pixels)))
    out = image.astype(np.float64).copy()
    out[hole] = scipy.sparse.linalg.spsolve(matrix, rhs)
    return out


def _masks(batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """Irregular holes: specks, a block touching the border and a corner, several components."""
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, 1, height, width, generator=generator) < 0.3).float()
    mask[0, :, 0, 2:9] = 1  # along the top edge
    mask[0, :, 4:8, 5:11] = 1  # a block inside
    mask[-1, :, -4:, -5:] = 1  # the bottom-right corner
    mask[-1, :, 3:6, 0] = 1  # the left edge
    mask[:, :, 10, 13] = 0  # and a known pixel somewhere in each
    return mask


def _inputs(dtype: torch.dtype, seed: int = 0, shape: tuple[int, int] = (12, 15)) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, *shape, generator=generator, dtype=dtype)
    guide = torch.rand(2, 3, *shape, generator=generator, dtype=dtype)
    return guide, image, _masks(2, *shape, seed=seed).to(dtype)


def _direct(guide: Tensor, image: Tensor, mask: Tensor) -> np.ndarray:
    g, x, holes = guide.double().numpy(), image.double().numpy(), mask[:, 0].numpy() > 0.5
    return np.stack([np.stack([direct_solve(g[b, c], x[b, c], holes[b]) for c in range(x.shape[1])]) for b in range(x.shape[0])])


@pytest.mark.parametrize(("dtype", "tol", "atol"), [(torch.float32, 1e-6, 1e-5), (torch.float64, 1e-12, 1e-9)])
def test_equals_a_direct_sparse_solve(dtype: torch.dtype, tol: float, atol: float) -> None:
    for seed in range(3):
        guide, image, mask = _inputs(dtype, seed)
        info: dict = {}
        out = poisson_blend(guide, image, mask, tol=tol, info=info)
        assert out.dtype == dtype and out.shape == image.shape
        assert info["converged"] and 0 < info["iterations"] < 200
        np.testing.assert_allclose(out.double().numpy(), _direct(guide, image, mask), rtol=0, atol=atol)


def test_the_default_tolerance_is_close_to_the_direct_solve() -> None:
    guide, image, mask = _inputs(torch.float32, seed=4)
    np.testing.assert_allclose(poisson_blend(guide, image, mask).double().numpy(), _direct(guide, image, mask), rtol=0, atol=1e-4)


def test_known_pixels_are_bit_exact_and_no_hole_is_a_copy() -> None:
    guide, image, mask = _inputs(torch.float32, seed=1)
    out = poisson_blend(guide, image, mask)
    known = (mask <= 0.5).expand_as(image)
    assert torch.equal(out[known], image[known])
    empty = torch.zeros_like(mask)
    info: dict = {}
    unchanged = poisson_blend(guide, image, empty, info=info)
    assert torch.equal(unchanged, image) and unchanged.data_ptr() != image.data_ptr()
    assert info == {"iterations": 0, "converged": True, "residual": 0.0}


def test_an_image_without_a_known_pixel_keeps_the_guide() -> None:
    guide, image, mask = _inputs(torch.float32, seed=2)
    mask[1] = 1
    out = poisson_blend(guide, image, mask, tol=1e-6)
    assert torch.equal(out[1], guide[1])
    np.testing.assert_allclose(out[0].double().numpy(), _direct(guide[:1], image[:1], mask[:1])[0], rtol=0, atol=1e-5)
    assert torch.equal(poisson_blend(guide, image, torch.ones_like(mask)), guide)


def test_a_guide_off_by_a_constant_gives_the_image_back() -> None:
    """Gradients are what is kept: a guide equal to the image up to a constant level restores the image."""
    _, image, mask = _inputs(torch.float64, seed=3)
    for guide in (image.clone(), image + 0.3, image - torch.tensor([0.1, 0.2, -0.4], dtype=torch.float64)[:, None, None]):
        out = poisson_blend(guide, image, mask, tol=1e-12)
        torch.testing.assert_close(out, image, rtol=0, atol=1e-9)


def test_the_bounding_box_crop_equals_a_solve_on_a_larger_image() -> None:
    """Holes away from the border: padding the image with known pixels changes nothing; a hole
    that touches the border loses its outer neighbours, which the direct solve also checks."""
    guide, image, mask = _inputs(torch.float64, seed=5, shape=(20, 24))
    mask[:, :, :3] = 0
    mask[:, :, -3:] = 0
    mask[:, :, :, :3] = 0
    mask[:, :, :, -3:] = 0
    mask[0, :, 8:12, 9:14] = 1
    info: dict = {}
    out = poisson_blend(guide, image, mask, tol=1e-12, info=info)
    padded = [torch.nn.functional.pad(t, (7, 5, 3, 9), mode="replicate") for t in (guide, image)]
    wide = poisson_blend(*padded, torch.nn.functional.pad(mask, (7, 5, 3, 9)), tol=1e-12)
    torch.testing.assert_close(wide[..., 3:-9, 7:-5], out, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out.numpy(), _direct(guide, image, mask), rtol=0, atol=1e-9)
    assert info["iterations"] < 4 * (18 + 14) + 100


def test_several_batch_items_solve_independently() -> None:
    guide, image, mask = _inputs(torch.float64, seed=6)
    together = poisson_blend(guide, image, mask, tol=1e-12)
    for b in range(2):
        alone = poisson_blend(guide[b : b + 1], image[b : b + 1], mask[b : b + 1], tol=1e-12)
        torch.testing.assert_close(alone[0], together[b], rtol=0, atol=1e-10)


def test_max_iter_is_honoured_and_reported() -> None:
    guide, image, mask = _inputs(torch.float32, seed=7)
    info: dict = {}
    poisson_blend(guide, image, mask, max_iter=2, info=info)
    assert info["iterations"] == 2 and not info["converged"] and info["residual"] > 1e-5


def test_bad_shapes_are_refused() -> None:
    guide, image, mask = _inputs(torch.float32)
    with pytest.raises(ValueError, match="guide"):
        poisson_blend(guide[:, :2], image, mask)
    with pytest.raises(ValueError, match="mask"):
        poisson_blend(guide, image, mask[:, :, :-1])


@pytest.mark.parametrize("device", cpu_and_cuda())
def test_runs_on_the_tensors_device(device: str) -> None:
    guide, image, mask = _inputs(torch.float32, seed=8)
    out = poisson_blend(guide.to(device), image.to(device), mask.to(device), tol=1e-6)
    assert out.device.type == device
    np.testing.assert_allclose(out.cpu().double().numpy(), _direct(guide, image, mask), rtol=0, atol=1e-5)


class ShiftedFill:
    """A fake network: its raw output is the image's left neighbour plus 0.2 (known pixels included)."""

    name = "shifted"

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.calls = 0

    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        self.calls += 1
        return torch.roll(image, 1, dims=-1) + 0.2

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        return composite(self.predict(image, mask), image, mask)


def test_poisson_blended_blends_the_raw_output_and_keeps_the_contract() -> None:
    _, image, mask = _inputs(torch.float32, seed=9)
    inner = ShiftedFill()
    blended = PoissonBlended(inner)
    assert blended.name == "shifted"
    out = blended.inpaint(image, mask)
    guide = torch.roll(image, 1, dims=-1) + 0.2
    torch.testing.assert_close(out, poisson_blend(guide, image, mask).clamp(0, 1), rtol=0, atol=0)
    known = (mask <= 0.5).expand_as(image)
    assert torch.equal(out[known], image[known]) and out.min() >= 0 and out.max() <= 1
    hole = (mask > 0.5).expand_as(image)
    assert not torch.allclose(out[hole], inner.inpaint(image, mask)[hole])  # the +0.2 is gone at the seam
    with pytest.raises(ValueError, match="image must be"):
        blended.inpaint(image[:, :2], mask)


def test_poisson_blended_over_a_self_ensemble_blends_the_mean_raw_output() -> None:
    _, image, mask = _inputs(torch.float32, seed=10)
    ensemble = SelfEnsemble(ShiftedFill(), 4)
    out = PoissonBlended(ensemble).inpaint(image, mask)
    assert ensemble.inner.calls == 4
    torch.testing.assert_close(out, poisson_blend(ensemble.predict(image, mask), image, mask).clamp(0, 1), rtol=0, atol=0)


def test_a_method_without_a_network_output_is_refused() -> None:
    with pytest.raises(ValueError, match="--blend poisson needs a method with a network output; telea has none"):
        PoissonBlended(OpenCVInpainter("telea"))
    with pytest.raises(ValueError, match="ns has none"):
        PoissonBlended(SelfEnsemble(OpenCVInpainter("ns"), 2))
    with pytest.raises(AttributeError, match="no network output"):
        SelfEnsemble(OpenCVInpainter("ns"), 2).predict(*_inputs(torch.float32)[1:])


def test_a_network_inpainters_raw_prediction_composites_to_its_fill(tmp_path) -> None:
    from pipelines.batch_fakes import tiny_csa_checkpoint

    from restore.models.csa import load_csa_inpainter

    network = load_csa_inpainter(tiny_csa_checkpoint(tmp_path / "tiny.pt"), bf16=False)
    _, image, mask = _inputs(torch.float32, seed=11, shape=(20, 28))  # padded to the network's multiple
    predicted = network.predict(image, mask)
    assert predicted.shape == image.shape and predicted.dtype == torch.float32
    assert torch.equal(composite(predicted, image, mask), network.inpaint(image, mask))
    out = PoissonBlended(SelfEnsemble(network, 2)).inpaint(image, mask)
    known = (mask <= 0.5).expand_as(image)
    assert torch.equal(out[known], image[known])
