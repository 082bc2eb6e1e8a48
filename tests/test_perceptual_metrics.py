"""LPIPS and FID with user-supplied weights.

No real weights exist here, so the weight files are random but written in the exact
formats of the real ones (the lpips package's ``v0.1/vgg.pth``, torchvision's
``vgg16-397923af.pth``, pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``) and go
through the same loaders. What is checked: the key names and shapes against lists
written here from the reference sources, LPIPS against a functional re-derivation
from the raw files, the TF pooling quirks of the FID network, the metric properties,
and the Fréchet distance against closed forms.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from restore.perceptual_metrics import (
    LPIPS,
    FIDInception,
    PerceptualWeightsError,
    fid,
    frechet_distance,
    lpips_distance,
    statistics,
)

# --------------------------------------------------------------------------- helpers


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """He-normal convolutions and mildly random batch norms, so activations neither vanish nor explode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if tensor.ndim == 4:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * math.sqrt(2.0 / fan_in))
            elif name.endswith("running_var") or name.endswith("bn.weight"):
                tensor.copy_(0.8 + 0.4 * torch.rand(tensor.shape, generator=generator))
            else:  # conv biases, bn biases, running means
                tensor.copy_(0.05 * torch.randn(tensor.shape, generator=generator))


def _smooth_image(size: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y + rng.uniform()))
                for _ in range(3)]
    return np.stack(channels, axis=-1)


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(lpips v0.1 vgg.pth, torchvision vgg16 .pth), random weights in the real formats."""
    folder = tmp_path_factory.mktemp("lpips")
    model = LPIPS()
    _randomise(model.net, seed=1)
    generator = torch.Generator().manual_seed(2)
    channels = (64, 128, 256, 512, 512)
    # the trained lin weights are non-negative (the lpips package clamps them while training)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator) for i, c in enumerate(channels)}
    vgg = {f"features.{key}": value.clone() for key, value in model.net.features.state_dict().items()}
    vgg["classifier.6.weight"] = torch.randn(10, 4096, generator=generator)  # torchvision's head: ignored
    vgg["classifier.6.bias"] = torch.randn(10, generator=generator)
    torch.save(lin, folder / "vgg.pth")
    torch.save(vgg, folder / "vgg16-397923af.pth")
    return folder / "vgg.pth", folder / "vgg16-397923af.pth"


@pytest.fixture(scope="module")
def lpips_model(lpips_files: tuple[Path, Path]) -> LPIPS:
    return LPIPS.from_files(*lpips_files)


def _fid_state(seed: int = 3, batches_tracked: bool = True) -> dict[str, Tensor]:
    model = FIDInception()
    _randomise(model, seed=seed)
    state = {key: value.clone() for key, value in model.state_dict().items()
             if batches_tracked or not key.endswith("num_batches_tracked")}
    # pytorch-fid's file is the whole patched torchvision Inception3: it carries the 1008-class fc
    generator = torch.Generator().manual_seed(seed)
    state["fc.weight"] = 0.01 * torch.randn(1008, 2048, generator=generator)
    state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture(scope="module")
def fid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(_fid_state(), path)
    return path


@pytest.fixture(scope="module")
def fid_model(fid_file: Path) -> FIDInception:
    return FIDInception.from_file(fid_file)


def _assert_one_line_naming(error: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message


# --------------------------------------------------------------------------- LPIPS


def _reference_lpips(image0: Tensor, image1: Tensor, lin_file: Path, vgg_file: Path) -> Tensor:
    """LPIPS v0.1 re-derived from the raw files with functional ops, independently of the module.

    VGG-16 configuration "D"; the taps are the ReLU outputs that end each of the five
    stages (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3); torchvision numbers every
    layer (conv, ReLU, pool) in ``features``.
    """
    lin = torch.load(lin_file, weights_only=True)
    vgg = torch.load(vgg_file, weights_only=True)
    stages = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(image: Tensor) -> list[Tensor]:
        x, index, out = ((2 * image - 1) - shift) / scale, 0, []
        for stage_number, stage in enumerate(stages):
            if stage_number > 0:
                x, index = F.max_pool2d(x, 2, 2), index + 1
            for _ in stage:
                x = F.relu(F.conv2d(x, vgg[f"features.{index}.weight"], vgg[f"features.{index}.bias"], padding=1))
                index += 2
            out.append(x)
        return out

    total = torch.zeros(image0.shape[0])
    for k, (a, b) in enumerate(zip(taps(image0), taps(image1), strict=True)):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        total += F.conv2d((a - b) ** 2, lin[f"lin{k}.model.1.weight"]).mean(dim=(1, 2, 3))
    return total


def test_lpips_matches_a_functional_rederivation_from_the_files(
    lpips_model: LPIPS, lpips_files: tuple[Path, Path]
) -> None:
    generator = torch.Generator().manual_seed(0)
    image0 = torch.rand(2, 3, 40, 48, generator=generator)
    image1 = (image0 + 0.2 * torch.randn(2, 3, 40, 48, generator=generator)).clamp(0, 1)
    expected = _reference_lpips(image0, image1, *lpips_files)
    with torch.no_grad():
        got = lpips_model(image0, image1)
    assert expected.min() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
    # the numpy entry point gives the same number for one image
    one = lpips_model.distance(image0[0].permute(1, 2, 0).numpy(), image1[0].permute(1, 2, 0).numpy())
    assert one == pytest.approx(float(expected[0]), rel=1e-4)


def test_lpips_properties(lpips_model: LPIPS) -> None:
    rng = np.random.default_rng(0)
    x = _smooth_image((48, 64), seed=0)
    y = _smooth_image((48, 64), seed=1)
    assert lpips_model.distance(x, x) == 0.0
    assert lpips_distance(x, y, lpips_model) > 0
    assert lpips_model.distance(x, y) == pytest.approx(lpips_model.distance(y, x), rel=1e-5)
    noise = rng.normal(size=x.shape)
    distances = [lpips_model.distance(np.clip(x + sigma * noise, 0, 1), x) for sigma in (0.01, 0.05, 0.1, 0.3)]
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances
    # uint8 input is read as /255
    x8 = (x * 255).round().astype(np.uint8)
    assert lpips_model.distance(x8, y) == pytest.approx(lpips_model.distance(x8 / 255.0, y), rel=1e-5)


def test_lpips_rejects_bad_inputs(lpips_model: LPIPS) -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        lpips_model.distance(np.zeros((32, 32, 3)), np.zeros((32, 40, 3)))
    with pytest.raises(ValueError, match="at least 16"):
        lpips_model.distance(np.zeros((8, 32, 3)), np.zeros((8, 32, 3)))


def test_lpips_file_errors(tmp_path: Path, lpips_files: tuple[Path, Path]) -> None:
    lin_file, vgg_file = lpips_files
    missing = tmp_path / "nowhere" / "vgg.pth"
    with pytest.raises(PerceptualWeightsError, match="no such file") as error:
        LPIPS.from_files(missing, vgg_file)
    _assert_one_line_naming(error, missing)
    with pytest.raises(PerceptualWeightsError, match="no such file") as error:
        LPIPS.from_files(lin_file, missing)
    _assert_one_line_naming(error, missing)

    lin = torch.load(lin_file, weights_only=True)
    renamed = tmp_path / "renamed.pth"
    torch.save({key.replace(".model.1", ""): value for key, value in lin.items()}, renamed)
    with pytest.raises(PerceptualWeightsError, match="lacks lin0.model.1.weight") as error:
        LPIPS.from_files(renamed, vgg_file)
    _assert_one_line_naming(error, renamed)

    alex_like = tmp_path / "alex.pth"  # the AlexNet file's lin1 has 192 channels
    torch.save({**lin, "lin1.model.1.weight": torch.rand(1, 192, 1, 1)}, alex_like)
    with pytest.raises(PerceptualWeightsError, match=r"lin1.model.1.weight has shape \(1, 192, 1, 1\)") as error:
        LPIPS.from_files(alex_like, vgg_file)
    _assert_one_line_naming(error, alex_like)

    # the lpips file where the VGG file belongs: no features.* keys
    with pytest.raises(PerceptualWeightsError, match="torchvision vgg16") as error:
        LPIPS.from_files(lin_file, lin_file)
    _assert_one_line_naming(error, lin_file)

    vgg = torch.load(vgg_file, weights_only=True)
    wrong_shape = tmp_path / "vgg19ish.pth"
    torch.save({**vgg, "features.28.weight": torch.zeros(256, 512, 3, 3)}, wrong_shape)
    with pytest.raises(PerceptualWeightsError, match="features.28.weight has shape") as error:
        LPIPS.from_files(lin_file, wrong_shape)
    _assert_one_line_naming(error, wrong_shape)

    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("not a checkpoint")
    with pytest.raises(PerceptualWeightsError, match="cannot read") as error:
        LPIPS.from_files(not_torch, vgg_file)
    _assert_one_line_naming(error, not_torch)


# --------------------------------------------------------------------------- FID network


def _pytorch_fid_layer_names() -> list[str]:
    """Every conv+bn layer of pytorch-fid's Inception (torchvision's Inception3 with the FID blocks)."""
    a = ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", "branch_pool"]
    b = ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]
    c = ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3"] + [f"branch7x7dbl_{i}" for i in range(1, 6)] + ["branch_pool"]
    d = ["branch3x3_1", "branch3x3_2"] + [f"branch7x7x3_{i}" for i in range(1, 5)]
    e = ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b",
         "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"]
    blocks = {"Mixed_5b": a, "Mixed_5c": a, "Mixed_5d": a, "Mixed_6a": b, "Mixed_6b": c, "Mixed_6c": c,
              "Mixed_6d": c, "Mixed_6e": c, "Mixed_7a": d, "Mixed_7b": e, "Mixed_7c": e}
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    return names + [f"{block}.{branch}" for block, branches in blocks.items() for branch in branches]


def test_fid_inception_state_dict_keys_are_pytorch_fids() -> None:
    layers = _pytorch_fid_layer_names()
    assert len(layers) == 94
    expected = {f"{layer}.{suffix}" for layer in layers for suffix in
                ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked")}
    state = FIDInception().state_dict()
    assert set(state) == expected
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_mean", "Mixed_5b.branch1x1.conv.weight",
                "Mixed_7c.branch3x3dbl_3b.bn.bias"):
        assert key in state
    assert not any(key.startswith(("fc.", "AuxLogits.")) for key in state)
    shapes = {  # torchvision's channel numbers
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_2.conv.weight": (192, 192, 7, 1),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
        "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
        "Mixed_7c.branch3x3dbl_3b.bn.bias": (384,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert FIDInception().Mixed_5b.branch1x1.bn.eps == pytest.approx(1e-3)


def _pool_probe(block: torch.nn.Module, channels: int) -> None:
    """Make ``branch_pool`` pass input channel 0 through unchanged (1×1 conv picking it, identity BN)."""
    with torch.no_grad():
        weight = torch.zeros_like(block.branch_pool.conv.weight)
        weight[0, 0] = 1
        block.branch_pool.conv.weight.copy_(weight)
        bn = block.branch_pool.bn
        bn.weight.fill_(1), bn.bias.zero_(), bn.running_mean.zero_(), bn.running_var.fill_(1 - bn.eps)


@pytest.mark.parametrize(("name", "in_channels", "first_pool_channel", "kind"), [
    ("Mixed_5b", 192, 64 + 64 + 96, "avg"),           # FIDInceptionA
    ("Mixed_6b", 768, 192 * 3, "avg"),                # FIDInceptionC
    ("Mixed_7b", 1280, 320 + 768 + 768, "avg"),       # FIDInceptionE_1
    ("Mixed_7c", 2048, 320 + 768 + 768, "max"),       # FIDInceptionE_2 uses a max pool
])
def test_fid_blocks_pool_as_the_tf_graph(name: str, in_channels: int, first_pool_channel: int, kind: str) -> None:
    block = getattr(FIDInception(), name)
    _pool_probe(block, in_channels)
    x = torch.rand(1, in_channels, 6, 6, generator=torch.Generator().manual_seed(0)) + 0.1
    with torch.no_grad():
        out = block(x)[0, first_pool_channel]
    corner, inner = x[0, 0, :2, :2], x[0, 0, 1:4, 1:4]
    if kind == "avg":  # TensorFlow's average ignores the padding: 4 values at a corner, not 9
        assert float(out[0, 0]) == pytest.approx(float(corner.mean()), rel=1e-5)
        assert float(out[2, 2]) == pytest.approx(float(inner.mean()), rel=1e-5)
    else:
        assert float(out[0, 0]) == pytest.approx(float(corner.max()), rel=1e-5)
        assert float(out[2, 2]) == pytest.approx(float(inner.max()), rel=1e-5)


def test_fid_file_loads_with_and_without_batch_counters(tmp_path: Path, fid_file: Path) -> None:
    saved = torch.load(fid_file, weights_only=True)
    model = FIDInception.from_file(fid_file)
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_6c.branch7x7dbl_4.bn.running_var", "Mixed_7c.branch_pool.bn.bias"):
        assert torch.equal(model.state_dict()[key], saved[key])
    older = tmp_path / "old.pth"
    torch.save(_fid_state(seed=4, batches_tracked=False), older)
    assert not any("num_batches_tracked" in key for key in torch.load(older, weights_only=True))
    FIDInception.from_file(older)


def test_fid_file_errors(tmp_path: Path, fid_file: Path, lpips_files: tuple[Path, Path]) -> None:
    missing = tmp_path / "pt_inception.pth"
    with pytest.raises(PerceptualWeightsError, match="no such file") as error:
        FIDInception.from_file(missing)
    _assert_one_line_naming(error, missing)
    with pytest.raises(PerceptualWeightsError, match="lacks") as error:
        FIDInception.from_file(lpips_files[1])  # a VGG file
    _assert_one_line_naming(error, lpips_files[1])

    state = torch.load(fid_file, weights_only=True)
    torchvision_like = tmp_path / "inception_v3_google.pth"
    torch.save({**state, "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, torchvision_like)
    with pytest.raises(PerceptualWeightsError, match=r"fc.weight has shape \(1000, 2048\)") as error:
        FIDInception.from_file(torchvision_like)
    _assert_one_line_naming(error, torchvision_like)

    extra = tmp_path / "extra.pth"
    torch.save({**state, "Mixed_8a.branch1x1.conv.weight": torch.zeros(1)}, extra)
    with pytest.raises(PerceptualWeightsError, match="unexpected keys") as error:
        FIDInception.from_file(extra)
    _assert_one_line_naming(error, extra)

    wrong = tmp_path / "wrong.pth"
    torch.save({**state, "Mixed_5b.branch_pool.conv.weight": torch.zeros(64, 192, 1, 1)}, wrong)
    with pytest.raises(PerceptualWeightsError, match="Mixed_5b.branch_pool.conv.weight has shape") as error:
        FIDInception.from_file(wrong)
    _assert_one_line_naming(error, wrong)


def test_fid_activations(fid_model: FIDInception) -> None:
    a, b = _smooth_image((64, 80), seed=5), _smooth_image((64, 80), seed=6)
    images = (np.stack([a, b, a]) * 255).round().astype(np.uint8)
    acts = fid_model.activations(images, batch_size=2)
    assert acts.shape == (3, 2048) and acts.dtype == np.float64 and np.isfinite(acts).all()
    assert np.array_equal(acts[0], acts[2]) and not np.allclose(acts[0], acts[1])
    assert acts.std() > 1e-3  # the random weights keep the signal alive to pool3
    # floats in [0, 1] are the same images as uint8 / 255; sizes may differ inside a sequence
    mixed = [images[1] / 255.0, _smooth_image((50, 70), seed=7)]
    acts2 = fid_model.activations(mixed, dims=2048)
    np.testing.assert_allclose(acts2[0], acts[1], rtol=1e-4, atol=1e-6)


def test_fid_input_is_resized_bilinearly_and_scaled_to_minus_one_one(fid_model: FIDInception) -> None:
    """pytorch-fid's input path: bilinear (align_corners=False) to 299², then 2x - 1."""
    x = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    scaled = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    m = fid_model
    expected = F.max_pool2d(m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(scaled))), 3, stride=2).mean(dim=(2, 3))
    with torch.no_grad():
        torch.testing.assert_close(m(x, dims=64), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dims must be one of"):
        m(x, dims=1000)


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_one_dimensional_closed_form() -> None:
    for m1, s1, m2, s2 in [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.5), (3.0, 0.1, 3.0, 4.0)]:
        expected = (m1 - m2) ** 2 + s1 + s2 - 2 * math.sqrt(s1 * s2)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, abs=1e-10)


def test_frechet_distance_diagonal_and_full_covariances() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 2, 6), rng.uniform(0.1, 2, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0.0, abs=1e-9)
    # non-commuting covariances: Tr sqrt(S1 S2) = Tr sqrt(S1^½ S2 S1^½), via symmetric eigendecompositions
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    w, v = np.linalg.eigh(sigma1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sum(np.sqrt(inner))
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(frechet_distance(mu2, sigma2, mu1, sigma1), rel=1e-8)


def test_frechet_distance_singular_and_invalid() -> None:
    mu = np.zeros(3)
    # rank-deficient covariances (fewer images than dimensions) still give the closed form
    assert frechet_distance(mu, np.diag([1.0, 0, 0]), mu, np.diag([4.0, 0, 0])) == pytest.approx(1.0, abs=1e-6)
    # a product with no square root (sqrtm gives inf): pytorch-fid's fallback adds eps to both diagonals;
    # sqrt((1+e)[[e, 1], [0, e]]) has trace 2 sqrt(e (1+e)), so d = 0 + 2 - 4 sqrt(e (1+e))
    eps = 1e-2  # large enough to tell (S1 + e)(S2 + e) from S1 S2 + e
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    expected = 2 - 4 * math.sqrt(eps * (1 + eps))
    assert frechet_distance(np.zeros(2), nilpotent, np.zeros(2), np.eye(2), eps=eps) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(mu, np.eye(3), mu, -np.eye(3))  # not a covariance
    with pytest.raises(ValueError, match="differ in size"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="at least 2 images"):
        statistics(np.zeros((1, 4)))


def _image_sets() -> tuple[np.ndarray, np.ndarray]:
    smooth = np.stack([_smooth_image((48, 48), seed=s) for s in range(3)])
    noisy = np.random.default_rng(1).random((3, 48, 48, 3))
    return smooth, noisy


def test_fid_end_to_end_from_the_weights_file(fid_file: Path, fid_model: FIDInception) -> None:
    """Through the file loader and the whole pipeline; 768-d (after Mixed_6e) keeps sqrtm fast on CPU."""
    smooth, noisy = _image_sets()
    different = fid(smooth, noisy, fid_file, dims=768)
    same = fid(smooth, smooth, fid_model, dims=768)
    trace = float(np.trace(statistics(fid_model.activations(smooth, dims=768))[1]))
    assert math.isfinite(different) and different > 0
    assert abs(same) < 1e-4 * trace < different


@pytest.mark.slow
def test_fid_end_to_end_pool3(fid_model: FIDInception) -> None:
    """The standard 2048-d FID (scipy's sqrtm of a 2048² matrix: tens of seconds on one core)."""
    smooth, noisy = _image_sets()
    different = fid(smooth, noisy, fid_model)
    same = fid(smooth, smooth, fid_model)
    trace = float(np.trace(statistics(fid_model.activations(smooth))[1]))
    assert math.isfinite(different) and different > 0
    assert abs(same) < 1e-4 * trace < different
