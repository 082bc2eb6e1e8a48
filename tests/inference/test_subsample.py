"""Sub-sampling, tiling and the in-process engine: index maps, exactness, batch invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pipelines.batch_fakes import tiny_csa_checkpoint

from restore.inference import subsample, tiles
from restore.inference.pixels import from_model, to_model
from restore.inference.restoration import restore_images
from restore.models.classical import OpenCVInpainter
from restore.models.csa import load_csa_inpainter

ODD_SIZES = [(257, 513), (1, 300), (300, 1), (256, 256), (512, 768), (3, 3), (600, 1000), (513, 257)]


def _random(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=np.uint64).astype(dtype)


def _holes(height: int, width: int, seed: int = 1, ratio: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width)) < ratio


class ConstantInpainter:
    """Returns a per-channel constant everywhere: a model that breaks the known-pixel
    contract, so only the pipeline's own paste can keep known pixels exact."""

    name = "constant"

    def __init__(self, value=(0.2, 0.4, 0.8)) -> None:
        self.value = torch.tensor(value).view(1, 3, 1, 1)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.value.expand_as(image).clone()


class NegativeInpainter:
    """Pointwise: a hole pixel becomes 1 - its own value (the same answer from every tile)."""

    name = "negative"

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask > 0.5, 1 - image, image)


@pytest.mark.parametrize(("height", "width", "expected"), [(256, 256, (1, 1)), (257, 513, (2, 3)), (1, 300, (1, 2)), (8192, 8192, (32, 32)), (255, 1, (1, 1))])
def test_factors_are_ceil_of_side_over_256(height: int, width: int, expected: tuple[int, int]) -> None:
    assert subsample.factors(height, width) == expected
    h, w = subsample.sub_shape(height, width, expected)
    assert h <= 256 and w <= 256


@pytest.mark.parametrize(("height", "width"), ODD_SIZES)
def test_split_follows_the_polyphase_index_map_and_merge_inverts_it(height: int, width: int) -> None:
    image = _random((height, width, 3))
    k = subsample.factors(height, width)
    subs = subsample.split(image, k)
    kh, kw = k
    h, w = subsample.sub_shape(height, width, k)
    assert subs.shape == (kh, kw, h, w, 3)
    # pixel (i, j) of sub-image (a, b) is pixel (a + kh*i, b + kw*j); beyond the border, its reflection
    padded = np.pad(image, [(0, kh * h - height), (0, kw * w - width), (0, 0)], mode="reflect")
    for a in range(kh):
        for b in range(kw):
            for i in (0, h // 2, h - 1):
                for j in (0, w // 2, w - 1):
                    assert np.array_equal(subs[a, b, i, j], padded[a + kh * i, b + kw * j])
    assert np.array_equal(subsample.merge(subs, (height, width)), image)
    holes = _holes(height, width)
    mask_subs = subsample.split(holes, k)
    assert np.array_equal(subsample.merge(mask_subs, (height, width)), holes)
    padded_holes = np.pad(holes, [(0, kh * h - height), (0, kw * w - width)], mode="reflect")
    interleaved = np.moveaxis(mask_subs, (0, 1), (1, 3)).reshape(kh * h, kw * w)
    assert np.array_equal(interleaved, padded_holes)  # a mirrored hole stays a hole


@pytest.mark.parametrize(("height", "width"), [(257, 513), (1, 300), (600, 1000)])
def test_restorer_streams_the_same_sub_images_as_split_and_skips_hole_free_ones(height: int, width: int) -> None:
    image = _random((height, width, 3), seed=2)
    holes = np.zeros((height, width), dtype=bool)
    holes[: height // 2 + 1, : width // 3 + 1] = _holes(height // 2 + 1, width // 3 + 1, ratio=0.05)
    restorer = subsample.SubsampleRestorer(image, holes)
    k = restorer.k
    subs, mask_subs = subsample.split(image, k), subsample.split(holes, k)
    pieces = list(restorer.pieces())
    assert pieces == [(a, b) for a in range(k[0]) for b in range(k[1]) if mask_subs[a, b].any()]
    for a, b in pieces:
        pixels, mask = restorer.extract((a, b))
        assert np.array_equal(pixels, subs[a, b].transpose(2, 0, 1).astype(np.float32) / 255)
        assert np.array_equal(mask[0], mask_subs[a, b].astype(np.float32))


@pytest.mark.parametrize(("height", "width"), [(257, 513), (301, 5), (513, 257)])
def test_sub_images_carry_no_hole_content_into_their_padding(height: int, width: int) -> None:
    image = _random((height, width, 3), seed=5)
    holes = np.zeros((height, width), dtype=bool)
    holes[-3:, :] = holes[:, -3:] = True  # the pixels the padding mirrors
    other = np.where(holes[..., None], _random((height, width, 3), seed=6), image)
    first, second = subsample.SubsampleRestorer(image, holes), subsample.SubsampleRestorer(other, holes)
    for piece in first.pieces():
        (pixels, mask), (other_pixels, other_mask) = first.extract(piece), second.extract(piece)
        assert np.array_equal(mask, other_mask)
        known = np.broadcast_to(mask == 0, pixels.shape)
        assert np.array_equal(pixels[known], other_pixels[known])


@pytest.mark.parametrize("strategy", ["subsample", "tile"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_known_pixels_and_alpha_are_exact_and_holes_take_the_model_value(strategy: str, channels: int, dtype) -> None:
    height, width = 300, 530
    image = _random((height, width, channels), dtype=dtype, seed=3)
    holes = _holes(height, width, seed=4)
    (out,) = restore_images(ConstantInpainter(), [image], [holes], strategy=strategy, batch_size=5)
    assert out.dtype == image.dtype and out.shape == image.shape
    assert np.array_equal(out[~holes], image[~holes])
    if channels == 4:
        assert np.array_equal(out[..., 3], image[..., 3])
    top = np.iinfo(dtype).max
    value = np.array([0.2, 0.4, 0.8], dtype=np.float32)  # * 255 and * 65535 are whole: no rounding ties
    expected = np.rint(np.float32(value.mean(dtype=np.float32)) * top) if channels == 1 else np.rint(value * top)
    assert np.array_equal(out[holes][:, : min(channels, 3)], np.broadcast_to(expected.astype(dtype), (int(holes.sum()), min(channels, 3))))


def test_pixel_conversion_round_trips_every_value() -> None:
    for dtype in (np.uint8, np.uint16):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 1, 1)
        rgb = np.repeat(values, 3, axis=-1)
        assert np.array_equal(from_model(to_model(rgb).transpose(1, 2, 0), dtype, 3), rgb)
        assert np.array_equal(from_model(to_model(values).transpose(1, 2, 0), dtype, 1), values)


def _reference_subsample(inpainter, image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Split, inpaint every sub-image on its own, merge, paste known pixels: no engine code."""
    k = subsample.factors(*holes.shape)
    subs = subsample.split(image, k)
    mask_subs = subsample.split(holes, k)
    restored = np.empty(subs.shape[:4] + (3,), dtype=np.float32)
    for a in range(k[0]):
        for b in range(k[1]):
            x = torch.from_numpy(subs[a, b]).permute(2, 0, 1)[None].float() / 255
            m = torch.from_numpy(mask_subs[a, b])[None, None].float()
            restored[a, b] = inpainter.inpaint(x, m)[0].permute(1, 2, 0).numpy()
    merged = np.rint(subsample.merge(restored, holes.shape) * 255).astype(np.uint8)
    return np.where(holes[..., None], merged, image)


def test_subsampled_restoration_equals_direct_model_calls_on_each_sub_image() -> None:
    image = _random((300, 520, 3), seed=5)
    holes = _holes(300, 520, seed=6, ratio=0.2)
    inpainter = OpenCVInpainter("telea")
    (out,) = restore_images(inpainter, [image], [holes], strategy="subsample", batch_size=4)
    assert np.array_equal(out, _reference_subsample(inpainter, image, holes))


def test_batch_size_does_not_change_results(tmp_path) -> None:
    csa = load_csa_inpainter(tiny_csa_checkpoint(tmp_path / "csa.pt"))
    images = [_random((100, 90, 3), seed=s) for s in range(3)] + [_random((100, 90, 3), seed=9)]
    holes = [_holes(100, 90, seed=s) for s in range(4)]
    big, big_holes = _random((270, 600, 3), seed=7), _holes(270, 600, seed=8)
    for inpainter in (csa, OpenCVInpainter("telea")):
        for strategy in ("subsample", "tile"):
            small = [restore_images(inpainter, images, holes, strategy=strategy, batch_size=b) for b in (1, 3, 16)]
            large = [restore_images(inpainter, [big], [big_holes], strategy=strategy, batch_size=b)[0] for b in (1, 4, 64)]
            for result in small[1:]:
                assert all(np.array_equal(x, y) for x, y in zip(small[0], result, strict=True))
            for result in large[1:]:
                assert np.array_equal(large[0], result)
    # and a small image restored alone equals one direct call of the model
    x = torch.from_numpy(images[0]).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(holes[0])[None, None].float()
    direct = np.rint(csa.inpaint(x, m)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(restore_images(csa, images[:1], holes[:1], batch_size=8)[0], direct)


@pytest.mark.parametrize("length", [1, 200, 256, 257, 511, 1000, 8192])
def test_tiles_cover_the_axis_with_the_minimum_overlap(length: int) -> None:
    starts = tiles.tile_starts(length)
    extent = min(length, tiles.SIZE)
    assert starts[0] == 0 and starts[-1] + extent == length
    for left, right in zip(starts, starts[1:], strict=False):
        assert right - left <= tiles.SIZE - tiles.OVERLAP  # overlap of at least OVERLAP
    weights = np.zeros(length, dtype=np.float32)
    coverage = np.zeros(length, dtype=int)
    for s in starts:
        weights[s : s + extent] += tiles.ramp(s, extent, length)
        coverage[s : s + extent] += 1
    assert weights.min() > 0
    # feathering stays inside the overlaps: a pixel only one tile covers takes that tile's value unblended
    assert np.all(weights[coverage == 1] == 1)
    for s in starts[1:]:  # and each inner edge fades in across the overlap
        assert tiles.ramp(s, extent, length)[0] < 1 / 32 and np.all(np.diff(tiles.ramp(s, extent, length)[: tiles.OVERLAP]) > 0)


def test_tile_blending_of_agreeing_tiles_reproduces_their_common_answer() -> None:
    image = _random((700, 450, 3), seed=10)
    holes = _holes(700, 450, seed=11, ratio=0.4)
    (out,) = restore_images(NegativeInpainter(), [image], [holes], strategy="tile", batch_size=7)
    expected = np.where(holes[..., None], 255 - image, image)
    assert np.abs(out.astype(int) - expected).max() <= 1  # float blending of equal values, rounded
    assert np.mean(out == expected) > 0.999


def test_tiles_and_subsample_agree_with_a_whole_image_call_within_256() -> None:
    image = _random((200, 256, 3), seed=12)
    holes = _holes(200, 256, seed=13)
    inpainter = OpenCVInpainter("telea")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(holes)[None, None].float()
    direct = np.rint(inpainter.inpaint(x, m)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for strategy in ("subsample", "tile"):
        assert np.array_equal(restore_images(inpainter, [image], [holes], strategy=strategy)[0], direct)
