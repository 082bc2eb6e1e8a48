"""Mask generators: determinism, binary output and each kind's geometry (DESIGN §6)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import shared_data
from scipy import ndimage

from restore.data import mask_generators as mg
from restore.data.mask_generators import (
    MASK_KINDS,
    TRAINING_KINDS,
    MaskRatioError,
    generate_mask,
    hole_ratio,
    random_training_mask,
)

RANDOM_KINDS = [kind for kind in TRAINING_KINDS if kind != "center"]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def assert_single_rectangle(mask: np.ndarray) -> tuple[int, int, int, int]:
    top, bottom, left, right = bounding_box(mask)
    assert mask[top:bottom, left:right].all()
    assert mask.sum() == (bottom - top) * (right - left)
    return top, bottom, left, right


def write_png(path: Path, array: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", array)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())


@pytest.fixture
def fake_nvidia(tmp_path: Path) -> Path:
    """A small NVIDIA-style set: 64² masks whose hole ratios are k/8, k = 1..6, with a tsv."""
    root = tmp_path / "nvidia"
    lines = ["file\thole_ratio\tindex_bucket\tbucket_label\ttouches_border"]
    for k in range(1, 7):
        mask = np.zeros((64, 64), np.uint8)
        mask[:, : 8 * k] = 255  # k/8 of the columns
        name = f"{k:05d}.png"
        write_png(root / "testing_mask_dataset" / name, mask)
        lines.append(f"{name}\t{k / 8:.5f}\t{k}\tx\t1")
    (root / "hole_ratios.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def _clear_nvidia_cache():
    mg.nvidia_index.cache_clear()
    yield
    mg.nvidia_index.cache_clear()


# --------------------------------------------------------------------------- all kinds


@pytest.mark.parametrize("kind", TRAINING_KINDS)
@pytest.mark.parametrize("size", [(256, 256), (37, 53), (32, 32)])
def test_binary_and_deterministic(kind: str, size: tuple[int, int]) -> None:
    first = generate_mask(kind, *size, rng(7))
    again = generate_mask(kind, *size, rng(7))
    assert first.dtype == bool and first.shape == size
    assert first.any(), "every kind draws at least one hole pixel"
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_different_seeds_differ(kind: str) -> None:
    masks = [generate_mask(kind, 128, 128, rng(seed)) for seed in range(4)]
    assert all(not np.array_equal(masks[0], other) for other in masks[1:])


def test_rng_state_advances() -> None:
    generator = rng(3)
    assert not np.array_equal(
        generate_mask("freeform", 64, 64, generator), generate_mask("freeform", 64, 64, generator)
    )


def test_kinds_listed() -> None:
    assert set(MASK_KINDS) == {
        "center",
        "rect",
        "box",
        "freeform",
        "cellular",
        "thin",
        "medium",
        "thick",
        "nvidia",
    }
    assert "nvidia" not in TRAINING_KINDS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("circle", 8, 8), "unknown mask kind 'circle'"),
        (("box", 0, 8), "at least 1x1"),
        (("box", 8, -2), "at least 1x1"),
        (("box", 8.5, 8), "whole numbers"),
    ],
)
def test_bad_arguments(args, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_mask(*args, rng(0))


@pytest.mark.parametrize("ratio", [(0.5, 0.2), (-0.1, 0.2), (0.2, 1.5), ("a", "b"), (0.2,)])
def test_bad_ratio(ratio) -> None:
    with pytest.raises(ValueError, match="ratio"):
        generate_mask("box", 32, 32, rng(0), ratio=ratio)


def test_hole_ratio() -> None:
    mask = np.zeros((4, 5), bool)
    mask[:2, :2] = True
    assert hole_ratio(mask) == pytest.approx(4 / 20)
    assert hole_ratio(np.zeros((0, 3), bool)) == 0.0


# --------------------------------------------------------------------------- boxes


def test_center_is_half_the_side() -> None:
    mask = generate_mask("center", 256, 256, rng(0))
    expected = np.zeros((256, 256), bool)
    expected[64:192, 64:192] = True
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == 128 * 128
    np.testing.assert_array_equal(generate_mask("center", 256, 256, rng(99)), expected)


def test_center_non_square() -> None:
    mask = generate_mask("center", 100, 60, rng(0))
    assert assert_single_rectangle(mask) == (25, 75, 15, 45)


def test_center_ratio_is_a_side_fraction() -> None:
    for seed in range(20):
        mask = generate_mask("center", 200, 200, rng(seed), ratio=(0.2, 0.3))
        top, bottom, left, right = assert_single_rectangle(mask)
        assert 40 <= bottom - top <= 60 and bottom - top == right - left
        assert abs((top + bottom) - 200) <= 1 and abs((left + right) - 200) <= 1


def test_rect_is_a_shrunk_half_box() -> None:
    tops = set()
    for seed in range(100):
        mask = generate_mask("rect", 256, 256, rng(seed))
        top, bottom, left, right = assert_single_rectangle(mask)
        assert 128 - 2 * 16 <= bottom - top <= 128
        assert 128 - 2 * 16 <= right - left <= 128
        tops.add(top)
    assert len(tops) > 20, "the box position is random"


def test_rect_ratio_sets_the_box_before_shrinking() -> None:
    for seed in range(50):
        top, bottom, left, right = assert_single_rectangle(
            generate_mask("rect", 64, 64, rng(seed), ratio=(0.25, 0.3))
        )
        assert 16 - 2 * 4 <= bottom - top <= 19
        assert 16 - 2 * 4 <= right - left <= 19


def test_box_is_30_to_70_percent_of_each_side() -> None:
    heights, widths = [], []
    for seed in range(200):
        top, bottom, left, right = assert_single_rectangle(
            generate_mask("box", 256, 200, rng(seed))
        )
        heights.append(bottom - top)
        widths.append(right - left)
    assert min(heights) >= math.ceil(0.3 * 256) and max(heights) <= math.floor(0.7 * 256)
    assert min(widths) >= 0.3 * 200 and max(widths) <= 0.7 * 200
    assert max(heights) - min(heights) > 60, "sides spread over the range"


def test_box_ratio_gives_glcic_holes() -> None:
    sides = set()
    for seed in range(300):
        top, bottom, left, right = assert_single_rectangle(
            generate_mask("box", 32, 32, rng(seed), ratio=(5 / 32, 12 / 32))
        )
        sides.update({bottom - top, right - left})
    assert sides == set(range(5, 13))


def test_box_ratio_without_a_whole_pixel() -> None:
    with pytest.raises(MaskRatioError, match="no whole-pixel box side"):
        generate_mask("box", 10, 10, rng(0), ratio=(0.33, 0.34))


@pytest.mark.parametrize("kind", ["center", "rect", "box"])
def test_box_kinds_on_one_pixel(kind: str) -> None:
    assert generate_mask(kind, 1, 1, rng(0)).tolist() == [[True]]


# --------------------------------------------------------------------------- free-form strokes


def test_freeform_is_at_most_three_connected_strokes() -> None:
    for seed in range(30):
        mask = generate_mask("freeform", 256, 256, rng(seed))
        _, count = ndimage.label(mask, structure=np.ones((3, 3)))
        assert 1 <= count <= 3
        assert 0 < hole_ratio(mask) < 0.7


def test_freeform_brush_scales_with_size() -> None:
    def mean_ratio(size: int) -> float:
        return float(
            np.mean([hole_ratio(generate_mask("freeform", size, size, rng(s))) for s in range(60)])
        )

    assert mean_ratio(128) == pytest.approx(mean_ratio(512), abs=0.04)


# --------------------------------------------------------------------------- cellular


def reference_cellular(height: int, width: int, generator: np.random.Generator) -> np.ndarray:
    """DESIGN §6 written with SciPy, drawing from the generator in the same order."""
    scale = (1, 2, 4, 8)[int(generator.integers(4))]
    passes = int(generator.integers(2, 6, endpoint=True))
    grid = generator.integers(0, 2, size=(-(-height // scale), -(-width // scale)), dtype=np.uint8)
    for _ in range(passes):
        grid = ndimage.median_filter(grid, size=3, mode="constant", cval=0)
    mask = np.kron(grid, np.ones((scale, scale), np.uint8))[:height, :width].astype(bool)
    if scale > 1:
        mask = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(2, 1))
    return mask


@pytest.mark.parametrize("size", [(256, 256), (37, 53)])
def test_cellular_matches_the_aim_recipe(size: tuple[int, int]) -> None:
    for seed in range(24):
        np.testing.assert_array_equal(
            mg._cellular(*size, rng(seed)), reference_cellular(*size, rng(seed))
        )


def test_cellular_too_small_for_a_hole() -> None:
    # a 3x3 majority with a zero border never keeps a pixel of a 2x2 grid
    with pytest.raises(MaskRatioError, match="cellular mask of 2x2 with any hole"):
        generate_mask("cellular", 2, 2, rng(0))


def test_cellular_covers_about_half() -> None:
    ratios = [hole_ratio(generate_mask("cellular", 128, 128, rng(seed))) for seed in range(40)]
    assert 0.3 < float(np.mean(ratios)) < 0.7


# --------------------------------------------------------------------------- LaMa thin / medium / thick


@pytest.mark.parametrize("kind", ["thin", "medium", "thick"])
def test_lama_caps_hole_area_at_half(kind: str) -> None:
    ratios = [hole_ratio(generate_mask(kind, 128, 128, rng(seed))) for seed in range(150)]
    assert 0 < min(ratios) and max(ratios) <= 0.5
    assert max(ratios) > 0.35, "the cap rejects large masks, it does not shrink all of them"


@pytest.mark.parametrize("size", [256, 512])
def test_thin_masks_are_strokes(size: int) -> None:
    # thin brushes are at most 20 px wide at 512²: eroding by more than half of that leaves almost nothing
    radius = math.ceil(10 * size / 512) + 2
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    left = []
    for seed in range(20):
        mask = generate_mask("thin", size, size, rng(seed)).astype(np.uint8)
        left.append(cv2.erode(mask, disk).sum() / mask.sum())
    assert float(np.mean(left)) < 0.1


@pytest.mark.parametrize("kind", ["thin", "medium", "thick"])
def test_lama_scales_with_the_image_side(kind: str) -> None:
    def mean_ratio(size: int) -> float:
        return float(
            np.mean([hole_ratio(generate_mask(kind, size, size, rng(s))) for s in range(80)])
        )

    assert mean_ratio(128) == pytest.approx(mean_ratio(512), abs=0.05)


@pytest.mark.parametrize(
    ("kind", "expected"), [("thin", 0.0), ("medium", 0.3 / 1.3), ("thick", 0.3 / 1.3)]
)
def test_lama_box_share(kind: str, expected: float, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"boxes": 0, "strokes": 0}
    boxes, strokes = mg._lama_boxes, mg._lama_strokes

    def count(name, fn):
        def wrapped(*args):
            calls[name] += 1
            return fn(*args)

        return wrapped

    monkeypatch.setattr(mg, "_lama_boxes", count("boxes", boxes))
    monkeypatch.setattr(mg, "_lama_strokes", count("strokes", strokes))
    for seed in range(600):
        mg._lama_once(mg._LAMA[kind], 32, 32, rng(seed))
    assert calls["boxes"] / 600 == pytest.approx(expected, abs=0.05)


# --------------------------------------------------------------------------- hole-area ratios


@pytest.mark.parametrize(
    ("kind", "ratio"),
    [
        ("freeform", (0.1, 0.2)),
        ("cellular", (0.4, 0.45)),
        ("thin", (0.2, 0.3)),
        ("medium", (0.3, 0.4)),
        ("thick", (0.4, 0.5)),
    ],
)
def test_area_ratio_is_met(kind: str, ratio: tuple[float, float]) -> None:
    for seed in range(10):
        assert (
            ratio[0] <= hole_ratio(generate_mask(kind, 96, 96, rng(seed), ratio=ratio)) <= ratio[1]
        )


def test_unreachable_area_ratio() -> None:
    with pytest.raises(MaskRatioError, match="at most 0.5"):
        generate_mask("thick", 64, 64, rng(0), ratio=(0.6, 0.7))
    with pytest.raises(MaskRatioError, match="1000 attempts"):
        generate_mask("freeform", 64, 64, rng(0), ratio=(0.99, 1.0))


# --------------------------------------------------------------------------- NVIDIA


def test_nvidia_ratio_from_the_table(fake_nvidia: Path) -> None:
    for seed in range(10):
        mask = generate_mask("nvidia", 32, 48, rng(seed), ratio=(0.3, 0.4), nvidia_dir=fake_nvidia)
        assert mask.shape == (32, 48)
        assert hole_ratio(mask) == pytest.approx(3 / 8)  # the only mask with a ratio in range


def test_nvidia_resize_is_nearest(fake_nvidia: Path) -> None:
    mask = generate_mask("nvidia", 16, 16, rng(0), ratio=(0.7, 0.8), nvidia_dir=fake_nvidia)
    expected = np.zeros((16, 16), bool)
    expected[:, :12] = True  # 48 of 64 columns
    np.testing.assert_array_equal(mask, expected)


def test_nvidia_ratio_is_checked_after_resizing(fake_nvidia: Path) -> None:
    # the only candidate (4/8 of the columns) keeps 1 of 3 columns at 3 px wide
    with pytest.raises(MaskRatioError, match="after resizing to 3x3"):
        generate_mask("nvidia", 3, 3, rng(0), ratio=(0.4, 0.6), nvidia_dir=fake_nvidia)


def test_nvidia_without_ratio_draws_any(fake_nvidia: Path) -> None:
    ratios = {
        round(hole_ratio(generate_mask("nvidia", 64, 64, rng(s), nvidia_dir=fake_nvidia)), 3)
        for s in range(60)
    }
    assert ratios == {round(k / 8, 3) for k in range(1, 7)}


def test_nvidia_no_mask_in_range(fake_nvidia: Path) -> None:
    with pytest.raises(MaskRatioError, match=r"spans 0.125-0.750"):
        generate_mask("nvidia", 64, 64, rng(0), ratio=(0.8, 0.9), nvidia_dir=fake_nvidia)


def test_nvidia_measures_ratios_without_a_table(fake_nvidia: Path) -> None:
    (fake_nvidia / "hole_ratios.tsv").unlink()
    files, ratios = mg.nvidia_index(fake_nvidia)
    assert [f.name for f in files] == [f"{k:05d}.png" for k in range(1, 7)]
    np.testing.assert_allclose(ratios, [k / 8 for k in range(1, 7)])


def test_nvidia_table_is_cached(fake_nvidia: Path) -> None:
    first = mg.nvidia_index(fake_nvidia)
    (fake_nvidia / "hole_ratios.tsv").unlink()
    assert mg.nvidia_index(fake_nvidia) is first


def test_nvidia_missing_folder_names_it(tmp_path: Path) -> None:
    absent = tmp_path / "no-such-masks"
    with pytest.raises(FileNotFoundError, match="no-such-masks"):
        generate_mask("nvidia", 8, 8, rng(0), nvidia_dir=absent)


def test_nvidia_folder_from_environment(fake_nvidia: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTORE_NVIDIA_MASKS", str(fake_nvidia))
    assert hole_ratio(generate_mask("nvidia", 64, 64, rng(0), ratio=(0.5, 0.5))) == 0.5


def test_nvidia_bad_table(fake_nvidia: Path) -> None:
    (fake_nvidia / "hole_ratios.tsv").write_text("file\thole_ratio\n00001.png\tabc\n")
    with pytest.raises(ValueError, match="line 2: bad hole_ratio"):
        mg.nvidia_index(fake_nvidia)


def test_nvidia_real_set_ratio_bucket() -> None:
    root = shared_data("masks", "nvidia-irregular")
    ratios = []
    for seed in range(12):
        mask = generate_mask("nvidia", 256, 256, rng(seed), ratio=(0.3, 0.4), nvidia_dir=root)
        assert mask.shape == (256, 256) and mask.dtype == bool
        ratios.append(hole_ratio(mask))
    assert all(0.3 <= r <= 0.4 for r in ratios)
    assert len(set(ratios)) > 6, "different masks are drawn"
    files, table = mg.nvidia_index(root)
    assert len(files) == 12000 and table.min() >= 0.01 and table.max() <= 0.6


# --------------------------------------------------------------------------- training masks


def test_training_mask_picks_kinds_uniformly(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = mg.generate_mask

    def spy(kind, *args, **kwargs):
        seen.append(kind)
        return real(kind, *args, **kwargs)

    monkeypatch.setattr(mg, "generate_mask", spy)
    generator = rng(5)
    for _ in range(900):
        mask = random_training_mask(["box", "cellular", "thin"], 32, 32, generator)
        assert mask.shape == (32, 32) and mask.dtype == bool
    for kind in ("box", "cellular", "thin"):
        assert seen.count(kind) == pytest.approx(300, abs=60)


def test_training_mask_is_deterministic() -> None:
    first = [random_training_mask(TRAINING_KINDS, 64, 64, rng(1)) for _ in range(3)]
    again = [random_training_mask(TRAINING_KINDS, 64, 64, rng(1)) for _ in range(3)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kinds", "message"),
    [([], "no mask kinds"), (["nvidia"], "evaluation only"), (["box", "blob"], "'blob'")],
)
def test_training_mask_refuses(kinds, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        random_training_mask(kinds, 32, 32, rng(0))


def test_training_masks_are_fast() -> None:
    generator = rng(0)
    random_training_mask(TRAINING_KINDS, 256, 256, generator)
    start = time.perf_counter()
    for _ in range(200):
        random_training_mask(TRAINING_KINDS, 256, 256, generator)
    per_mask = (time.perf_counter() - start) / 200
    assert per_mask < 0.005, f"{per_mask * 1e3:.2f} ms per 256² training mask"
