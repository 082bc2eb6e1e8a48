"""The mask loader behind ``--masks``: folders, single files, zarr archives and bad input."""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage

from restore.data.masks import (
    FileMaskSource,
    FolderMaskSource,
    MaskError,
    ZarrMaskSource,
    dilate_holes,
    holes_from_pixels,
    open_mask_source,
    read_mask_file,
)


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """Write with OpenCV (pixels in OpenCV's BGR(A) order), unicode-safe."""
    ok, data = cv2.imencode(path.suffix, pixels)
    assert ok, path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    return path


def pattern(height: int = 8, width: int = 10, seed: int = 0) -> np.ndarray:
    """A random 0/255 mask and its hole map."""
    holes = np.random.default_rng(seed).random((height, width)) < 0.4
    return holes


def as_png(holes: np.ndarray) -> np.ndarray:
    return holes.astype(np.uint8) * 255


# --------------------------------------------------------------------------- folder


def test_folder_by_key(tmp_path: Path) -> None:
    a, b = pattern(seed=1), pattern(seed=2)
    write_image(tmp_path / "a.png", as_png(a))
    write_image(tmp_path / "b_mask.png", as_png(b))
    source = open_mask_source(tmp_path)
    assert isinstance(source, FolderMaskSource)
    source.validate(["a", "b"], {"a": (8, 10), "b": (8, 10)})
    np.testing.assert_array_equal(source.load("a", (8, 10)), a)
    np.testing.assert_array_equal(source.load("b", (8, 10)), b)
    assert str(tmp_path) in source.describe()


def test_key_mask_is_preferred_to_key(tmp_path: Path) -> None:
    mask = pattern(seed=3)
    write_image(tmp_path / "a.png", np.full((8, 10), 255, np.uint8))  # e.g. the image itself
    write_image(tmp_path / "a_mask.png", as_png(mask))
    np.testing.assert_array_equal(open_mask_source(tmp_path).load("a", (8, 10)), mask)


def test_nested_keys(tmp_path: Path) -> None:
    deep = pattern(seed=4)
    write_image(tmp_path / "x" / "y" / "c_mask.png", as_png(deep))
    write_image(tmp_path / "c.png", np.zeros((8, 10), np.uint8))  # same name, other folder
    source = open_mask_source(tmp_path)
    np.testing.assert_array_equal(source.load("x/y/c", (8, 10)), deep)
    assert not source.load("c", (8, 10)).any()
    assert source.missing(["x/c", "y/c", "x/y/c"]) == ["x/c", "y/c"]


@pytest.mark.parametrize("suffix", [".jpg", ".JPEG", ".tif", ".tiff", ".bmp", ".PNG", ".webp"])
def test_other_extensions(tmp_path: Path, suffix: str) -> None:
    holes = np.zeros((32, 40), bool)
    holes[8:24, 10:30] = True  # large blocks survive JPEG exactly after thresholding
    path = tmp_path / f"k{suffix}"
    if suffix.lower().startswith(".tif"):
        tifffile.imwrite(path, as_png(holes))
    else:
        write_image(tmp_path / f"k{suffix.lower()}", as_png(holes)).rename(path)
    np.testing.assert_array_equal(open_mask_source(tmp_path).load("k", (32, 40)), holes)


def test_key_with_an_image_extension(tmp_path: Path) -> None:
    holes = pattern(seed=5)
    write_image(tmp_path / "photo.png", as_png(holes))
    np.testing.assert_array_equal(open_mask_source(tmp_path).load("photo.jpg", (8, 10)), holes)


def test_two_files_for_one_key(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", as_png(pattern()))
    write_image(tmp_path / "a.bmp", as_png(pattern()))
    with pytest.raises(MaskError, match=r"several masks for key 'a'.*a\.bmp.*a\.png"):
        open_mask_source(tmp_path).load("a", (8, 10))


def test_hidden_and_other_files_are_ignored(tmp_path: Path) -> None:
    holes = pattern(seed=6)
    write_image(tmp_path / "a.png", as_png(holes))
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    (tmp_path / "a.txt").write_text("notes")
    (tmp_path / ".git").mkdir()
    write_image(tmp_path / ".git" / "a.png", as_png(~holes))
    np.testing.assert_array_equal(open_mask_source(tmp_path).load("a", (8, 10)), holes)


def test_missing_masks_are_listed(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", as_png(pattern()))
    source = open_mask_source(tmp_path)
    keys = ["a", "b", "sub/c"]
    assert source.missing(keys) == ["b", "sub/c"]
    with pytest.raises(MaskError, match=r"no mask for 2 of 3 key\(s\) .*'b', 'sub/c'") as info:
        source.validate(keys, dict.fromkeys(keys, (8, 10)))
    assert "\n" not in str(info.value)
    with pytest.raises(MaskError, match="no mask for key 'b'"):
        source.load("b", (8, 10))


def test_many_missing_masks_are_summarised(tmp_path: Path) -> None:
    keys = [f"k{i:02d}" for i in range(20)]
    with pytest.raises(MaskError, match="no mask for 20 of 20 key.*and 12 more"):
        open_mask_source(tmp_path).validate(keys, dict.fromkeys(keys, (1, 1)))


# --------------------------------------------------------------------------- single file and zarr


def test_single_file_for_every_key(tmp_path: Path) -> None:
    holes = pattern(seed=7)
    path = write_image(tmp_path / "one.png", as_png(holes))
    source = open_mask_source(path)
    assert isinstance(source, FileMaskSource)
    assert source.missing(["a", "b"]) == []
    source.validate(["a", "b"], {"a": (8, 10), "b": (8, 10)})
    for key in ("a", "b"):
        np.testing.assert_array_equal(source.load(key, (8, 10)), holes)
    assert "one.png" in source.describe() and "every image" in source.describe()


def make_stack_archive(path: Path, masks: np.ndarray, keys: list[str], where: str) -> Path:
    group = zarr.open_group(str(path), mode="w")
    images = group.create_array(
        "images", shape=masks.shape, dtype=masks.dtype, chunks=(1, *masks.shape[1:])
    )
    images[...] = masks
    if where == "group-attr":
        group.attrs["keys"] = keys
    elif where == "array-attr":
        images.attrs["keys"] = keys
    else:
        array = group.create_array("keys", shape=(len(keys),), dtype=str)
        array[...] = np.array(keys)
    return path


@pytest.mark.parametrize("where", ["group-attr", "array-attr", "keys-array"])
def test_zarr_stack(tmp_path: Path, where: str) -> None:
    holes = np.stack([pattern(seed=s) for s in range(3)])
    pixels = as_png(holes)[..., None]  # (N, H, W, 1) as ingest writes grey images
    path = make_stack_archive(tmp_path / "m.zarr", pixels, ["a", "d/b", "c"], where)
    source = open_mask_source(path)
    assert isinstance(source, ZarrMaskSource)
    assert source.missing(["a", "d/b", "x"]) == ["x"]
    source.validate(["a", "d/b", "c"], dict.fromkeys(["a", "d/b", "c"], (8, 10)))
    np.testing.assert_array_equal(source.load("d/b", (8, 10)), holes[1])
    assert "3 keys" in source.describe()


def test_zarr_group_layout(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    images = group.create_group("images")
    small, large = pattern(4, 5, seed=1), pattern(16, 12, seed=2)
    images.create_array("a", shape=(4, 5, 1), dtype=np.uint16)[...] = small[..., None] * np.uint16(
        65535
    )
    colour = np.repeat(as_png(large)[..., None], 3, -1)
    images.create_array("n/b", shape=colour.shape, dtype=np.uint8)[...] = colour
    source = open_mask_source(tmp_path / "g.zarr")
    source.validate(["a", "n/b"], {"a": (4, 5), "n/b": (16, 12)})
    np.testing.assert_array_equal(source.load("a", (4, 5)), small)
    np.testing.assert_array_equal(source.load("n/b", (16, 12)), large)
    assert source.missing(["n", "a"]) == ["n"]
    assert "group layout" in source.describe()


def test_zarr_written_like_ingest(tmp_path: Path) -> None:
    from restore.data.archive import ArchiveBuilder

    keys = ["x/../odd", ".hidden", "plain"]  # unsafe array names are mapped by the archive
    masks = {key: pattern(6, 7, seed=i) for i, key in enumerate(keys)}
    with ArchiveBuilder(tmp_path / "m.zarr", keys=keys, layout="group") as builder:
        for key in keys:
            builder.add(key, as_png(masks[key])[..., None])
    source = open_mask_source(tmp_path / "m.zarr")
    source.validate(keys, dict.fromkeys(keys, (6, 7)))
    for key in keys:
        np.testing.assert_array_equal(source.load(key, (6, 7)), masks[key])


def test_zarr_without_images(tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path / "e.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(MaskError, match="mask archive .*e.zarr.*no 'images'"):
        open_mask_source(tmp_path / "e.zarr")


def test_zarr_keys_must_match(tmp_path: Path) -> None:
    path = make_stack_archive(
        tmp_path / "m.zarr", np.zeros((2, 3, 3, 1), np.uint8), ["a"], "group-attr"
    )
    with pytest.raises(MaskError, match="1 keys for 2 images"):
        open_mask_source(path)


def test_zarr_named_folder_without_metadata(tmp_path: Path) -> None:
    (tmp_path / "fake.zarr").mkdir()
    with pytest.raises(MaskError, match="fake.zarr.*no zarr.json"):
        open_mask_source(tmp_path / "fake.zarr")


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match="mask source not found: .*nowhere"):
        open_mask_source(tmp_path / "nowhere")


# --------------------------------------------------------------------------- pixel rules


def test_threshold_is_above_127() -> None:
    assert holes_from_pixels(np.array([[0, 127, 128, 255]], np.uint8)).tolist() == [
        [False, False, True, True]
    ]


def test_rgba_uses_alpha(tmp_path: Path) -> None:
    alpha = pattern(seed=8)
    bgra = np.zeros((8, 10, 4), np.uint8)
    bgra[..., :3] = as_png(~alpha)[..., None]  # colour says the opposite of alpha
    bgra[..., 3] = np.where(alpha, 200, 40)
    write_image(tmp_path / "a.png", bgra)
    np.testing.assert_array_equal(open_mask_source(tmp_path).load("a", (8, 10)), alpha)


def test_grey_alpha_uses_alpha() -> None:
    alpha = pattern(seed=9)
    grey_alpha = np.stack([as_png(~alpha), as_png(alpha)], axis=-1)
    np.testing.assert_array_equal(holes_from_pixels(grey_alpha), alpha)


def test_colour_mask_uses_luma(tmp_path: Path) -> None:
    rgb = np.array(
        [[[255, 128, 0], [0, 128, 255], [255, 255, 255], [255, 0, 0], [0, 255, 0]]], np.uint8
    )
    # luma 0.299 R + 0.587 G + 0.114 B: 151, 104, 255, 76, 150
    expected = [[True, False, True, False, True]]
    write_image(tmp_path / "c.png", rgb[..., ::-1])  # OpenCV writes BGR
    assert read_mask_file(tmp_path / "c.png").tolist() == expected
    tifffile.imwrite(tmp_path / "c.tif", rgb)  # TIFF is read as RGB
    assert read_mask_file(tmp_path / "c.tif").tolist() == expected


def test_sixteen_bit_masks(tmp_path: Path) -> None:
    values = np.array([[0, 32639, 32640, 65535]], np.uint16)
    write_image(tmp_path / "g.png", values)
    assert read_mask_file(tmp_path / "g.png").tolist() == [[False, False, True, True]]
    write_image(tmp_path / "rgb.png", np.repeat(values[..., None], 3, axis=-1))
    assert read_mask_file(tmp_path / "rgb.png").tolist() == [[False, False, True, True]]
    # an 8-bit mask scaled to 16 bits (v * 257) keeps its holes
    eight = np.array([[127, 128]], np.uint8)
    assert (
        holes_from_pixels(eight.astype(np.uint16) * 257).tolist()
        == holes_from_pixels(eight).tolist()
    )


def test_float_and_bool_masks() -> None:
    assert holes_from_pixels(np.array([[0.0, 0.49, 0.51, 1.0]])).tolist() == [
        [False, False, True, True]
    ]
    assert holes_from_pixels(np.array([[True, False]])).tolist() == [[True, False]]
    with pytest.raises(MaskError, match="unsupported mask dtype int32"):
        holes_from_pixels(np.zeros((2, 2), np.int32), origin="m.tif")
    with pytest.raises(MaskError, match="shape"):
        holes_from_pixels(np.zeros((2, 2, 5), np.uint8))


def test_zero_one_mask_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_image(tmp_path / "a.png", pattern().astype(np.uint8))
    with caplog.at_level(logging.WARNING, logger="restore.data.masks"):
        holes = open_mask_source(tmp_path).load("a", (8, 10))
    assert not holes.any()
    assert "only the values 0 and 1" in caplog.text and "a.png" in caplog.text


def test_all_hole_and_empty_masks(tmp_path: Path) -> None:
    write_image(tmp_path / "full.png", np.full((6, 7), 255, np.uint8))
    write_image(tmp_path / "empty.png", np.zeros((6, 7), np.uint8))
    for dilate in (0, 2):
        source = open_mask_source(tmp_path, dilate=dilate)
        assert source.load("full", (6, 7)).all()
        assert not source.load("empty", (6, 7)).any()


def test_one_pixel_mask(tmp_path: Path) -> None:
    write_image(tmp_path / "p.png", np.full((1, 1), 255, np.uint8))
    assert open_mask_source(tmp_path).load("p", (1, 1)).tolist() == [[True]]
    assert open_mask_source(tmp_path / "p.png", resize=True).load("any", (5, 7)).all()


# --------------------------------------------------------------------------- sizes, resize, dilate


def test_size_mismatch_names_key_and_sizes(tmp_path: Path) -> None:
    write_image(tmp_path / "k1.png", as_png(pattern(8, 10)))
    source = open_mask_source(tmp_path)
    with pytest.raises(
        MaskError, match=r"key 'k1' \(.*k1\.png\) is 8x10 but the image is 16x20"
    ) as info:
        source.validate(["k1"], {"k1": (16, 20)})
    assert "\n" not in str(info.value)


def test_resize_is_nearest(tmp_path: Path) -> None:
    holes = pattern(3, 4, seed=10)
    write_image(tmp_path / "k.png", as_png(holes))
    source = open_mask_source(tmp_path, resize=True)
    source.validate(["k"], {"k": (9, 8)})
    np.testing.assert_array_equal(source.load("k", (9, 8)), np.kron(holes, np.ones((3, 2), bool)))
    np.testing.assert_array_equal(source.load("k", (3, 4)), holes)
    assert "resize nearest" in source.describe()


def test_dilate_is_a_disk(tmp_path: Path) -> None:
    dot = np.zeros((21, 21), np.uint8)
    dot[10, 10] = 255
    write_image(tmp_path / "d.png", dot)
    source = open_mask_source(tmp_path, dilate=3)
    rows, cols = np.mgrid[-10:11, -10:11]
    np.testing.assert_array_equal(source.load("d", (21, 21)), rows**2 + cols**2 <= 9)
    assert "dilate 3 px" in source.describe()


def test_dilate_matches_binary_dilation() -> None:
    holes = np.random.default_rng(11).random((40, 50)) < 0.02
    radius = 4
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    expected = ndimage.binary_dilation(holes, structure=rows**2 + cols**2 <= radius**2)
    np.testing.assert_array_equal(dilate_holes(holes, radius), expected)


def test_dilate_after_resize(tmp_path: Path) -> None:
    dot = np.zeros((4, 4), np.uint8)
    dot[1, 1] = 255
    write_image(tmp_path / "d.png", dot)
    mask = open_mask_source(tmp_path, resize=True, dilate=1).load("d", (8, 8))
    assert mask.sum() == 4 + 4 * 2  # the 2x2 block plus one pixel on each side


def test_negative_dilate(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match="dilate must be >= 0"):
        open_mask_source(tmp_path, dilate=-1)


# --------------------------------------------------------------------------- bad files


def truncated_png(path: Path) -> Path:
    data = write_image(path, as_png(pattern(64, 64))).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_png(path: Path) -> Path:
    data = bytearray(write_image(path, as_png(pattern(64, 64))).read_bytes())
    data[40] ^= 0xFF  # inside the first IDAT chunk: its CRC no longer matches
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (truncated_png, "cannot decode mask file .*bad.png: truncated PNG"),
        (corrupt_png, "cannot decode mask file .*bad.png: corrupt PNG \\(CRC error"),
        (lambda p: p.write_bytes(b""), "mask file .*bad.png is empty"),
        (lambda p: p.write_text("this is not an image"), "cannot decode mask file .*bad.png"),
    ],
    ids=["truncated", "corrupt", "zero-byte", "not-an-image"],
)
def test_bad_mask_files_are_named(tmp_path: Path, make, message: str, capfd: pytest.CaptureFixture) -> None:
    make(tmp_path / "bad.png")
    write_image(tmp_path / "good.png", as_png(pattern()))
    source = open_mask_source(tmp_path)
    with pytest.raises(MaskError, match=message) as info:
        source.validate(["good", "bad"], {"good": (8, 10), "bad": (64, 64)})
    assert "\n" not in str(info.value)
    with pytest.raises(MaskError, match=message):
        open_mask_source(tmp_path / "bad.png").load("any", (64, 64))
    assert capfd.readouterr().err == "", "nothing but our one-line error reaches the terminal (no OpenCV warnings)"


@pytest.mark.parametrize("content", [b"", b"II*\x00garbage"], ids=["zero-byte", "damaged"])
def test_bad_tiff_is_named(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "t.tif").write_bytes(content)
    with pytest.raises(MaskError, match=r"t\.tif"):
        open_mask_source(tmp_path).validate(["t"], {"t": (8, 8)})


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "k.png").symlink_to(tmp_path / "gone.png")  # listed, but reading it fails
    with pytest.raises(MaskError, match=r"cannot read mask file .*k\.png"):
        open_mask_source(tmp_path).validate(["k"], {"k": (1, 1)})


# --------------------------------------------------------------------------- unicode


def test_unicode_names(tmp_path: Path) -> None:
    holes = pattern(seed=12)
    write_image(tmp_path / "фото" / "café_mask.png", as_png(holes))
    write_image(tmp_path / "写真.png", as_png(~holes))
    source = open_mask_source(tmp_path)
    np.testing.assert_array_equal(source.load("фото/café", (8, 10)), holes)
    np.testing.assert_array_equal(source.load("写真", (8, 10)), ~holes)
    decomposed = unicodedata.normalize("NFD", "фото/café")
    assert decomposed != "фото/café" and source.missing([decomposed]) == []
    single = open_mask_source(tmp_path / "写真.png")
    np.testing.assert_array_equal(single.load("x", (8, 10)), ~holes)
