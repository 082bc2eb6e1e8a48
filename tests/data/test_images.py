"""Image I/O: bit-exact round trips, conversions, header probing, bad files, folder listing."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import random_image, shared_data
from PIL import Image

from restore.data.images import (
    ImageReadError,
    KeyClashError,
    encode_image,
    find_images,
    image_key,
    probe_image,
    read_image,
    write_image,
)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(image: np.ndarray, colour_type: int, extra: bytes = b"") -> bytes:
    """A PNG built by hand (filter 0, big-endian samples): an encoder independent of OpenCV and Pillow."""
    height, width = image.shape[:2]
    depth = 16 if image.dtype == np.uint16 else 8
    rows = image.reshape(height, -1).astype(">u2" if depth == 16 else "u1")
    data = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + extra + _png_chunk(b"IDAT", zlib.compress(data)) + _png_chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_write_read_round_trip(tmp_path: Path, suffix: str, dtype, channels: int) -> None:
    image = random_image(13, 17, channels, dtype, seed=channels)
    path = tmp_path / f"image{suffix}"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == dtype and back.shape == (13, 17, channels)
    np.testing.assert_array_equal(back, image)
    assert probe_image(path).shape == back.shape and probe_image(path).dtype == back.dtype


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 3), (1, 1, 4), (1, 7, 3), (7, 1, 1)])
def test_tiny_images(tmp_path: Path, suffix: str, shape: tuple[int, int, int]) -> None:
    image = random_image(*shape, np.uint16, seed=3)
    write_image(tmp_path / f"t{suffix}", image)
    np.testing.assert_array_equal(read_image(tmp_path / f"t{suffix}"), image)


def test_two_dimensional_input_is_grey(tmp_path: Path) -> None:
    image = random_image(5, 6, 1)[:, :, 0]
    write_image(tmp_path / "g.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), image[:, :, None])


def test_unicode_file_names(tmp_path: Path) -> None:
    image = random_image(9, 8, 3, np.uint16)
    path = tmp_path / "фото ü 写真 (1).png"
    write_image(path, image)
    np.testing.assert_array_equal(read_image(path), image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize(("colour_type", "channels"), [(0, 1), (2, 3), (6, 4)])
def test_reads_hand_made_png_bit_exactly(tmp_path: Path, dtype, colour_type: int, channels: int) -> None:
    # 16-bit colour is what imageio's default plugin silently truncates; this file is built without any image library.
    image = random_image(6, 5, channels, dtype, seed=11)
    (tmp_path / "x.png").write_bytes(raw_png(image, colour_type))
    back = read_image(tmp_path / "x.png")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, image)


def test_png_grey_alpha_becomes_rgba(tmp_path: Path) -> None:
    la = random_image(4, 6, 2, np.uint16, seed=5)
    (tmp_path / "la.png").write_bytes(raw_png(la, 4))
    back = read_image(tmp_path / "la.png")
    assert back.shape == (4, 6, 4) and back.dtype == np.uint16
    for c in range(3):
        np.testing.assert_array_equal(back[..., c], la[..., 0])
    np.testing.assert_array_equal(back[..., 3], la[..., 1])
    assert probe_image(tmp_path / "la.png").shape == (4, 6, 4)


def test_palette_png_becomes_rgb_or_rgba(tmp_path: Path) -> None:
    palette_image = Image.fromarray(random_image(7, 9, 3, seed=2)).convert("P")
    palette_image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), np.asarray(palette_image.convert("RGB")))
    palette_image.save(tmp_path / "pt.png", transparency=3)
    with Image.open(tmp_path / "pt.png") as reopened:
        expected = np.asarray(reopened.convert("RGBA"))
    back = read_image(tmp_path / "pt.png")
    assert back.shape == (7, 9, 4)
    np.testing.assert_array_equal(back, expected)
    assert probe_image(tmp_path / "pt.png").shape == (7, 9, 4)


def test_one_bit_png_is_0_or_255(tmp_path: Path) -> None:
    bits = random_image(8, 8, 1, seed=4)[:, :, 0] > 127
    Image.fromarray(bits).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png")[:, :, 0], bits.astype(np.uint8) * 255)


@pytest.mark.parametrize("planar", ["contig", "separate"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_reads_tiff_from_tifffile(tmp_path: Path, planar: str, channels: int) -> None:
    image = random_image(10, 12, channels, np.uint16, seed=channels)
    data = image[:, :, 0] if channels == 1 else image
    if planar == "separate" and channels > 1:
        data = np.moveaxis(image, -1, 0)
    tifffile.imwrite(
        tmp_path / "x.tif", data, photometric="minisblack" if channels == 1 else "rgb",
        planarconfig=planar if channels > 1 else None, extrasamples=["unassalpha"] if channels == 4 else None,
    )  # fmt: skip
    np.testing.assert_array_equal(read_image(tmp_path / "x.tif"), image)
    assert probe_image(tmp_path / "x.tif").shape == image.shape


def test_tiff_grey_alpha_becomes_rgba(tmp_path: Path) -> None:
    la = random_image(5, 4, 2, seed=9)
    tifffile.imwrite(tmp_path / "la.tif", la, photometric="minisblack", extrasamples=["unassalpha"], planarconfig="contig")
    back = read_image(tmp_path / "la.tif")
    np.testing.assert_array_equal(back, np.concatenate([la[..., :1]] * 3 + [la[..., 1:]], axis=-1))
    assert probe_image(tmp_path / "la.tif").shape == (5, 4, 4)


@pytest.mark.parametrize(("dtype", "channels"), [(np.uint16, 3), (np.uint16, 1), (np.uint8, 4)])
def test_lzw_tiff_without_imagecodecs(tmp_path: Path, dtype, channels: int) -> None:
    import cv2

    image = random_image(20, 30, channels, dtype, seed=1)
    bgr = image if channels == 1 else image[..., [2, 1, 0, 3][:channels]]
    ok, encoded = cv2.imencode(".tiff", np.ascontiguousarray(bgr))  # OpenCV writes LZW
    (tmp_path / "lzw.tif").write_bytes(encoded.tobytes())
    assert tifffile.TiffFile(tmp_path / "lzw.tif").pages.first.compression == 5
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), image)
    assert probe_image(tmp_path / "lzw.tif").shape == image.shape
    data = encoded.tobytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.tif"):
        read_image(tmp_path / "cut.tif")


@pytest.mark.parametrize("variant", ["palette", "cmyk", "jpeg", "lzw-grey"])
def test_other_8bit_tiffs_match_pillow(tmp_path: Path, variant: str) -> None:
    image = Image.fromarray(random_image(32, 24, 3, seed=3))
    if variant == "palette":
        image.convert("P").save(tmp_path / "x.tif")
    elif variant == "cmyk":
        image.convert("CMYK").save(tmp_path / "x.tif")
    elif variant == "jpeg":
        image.save(tmp_path / "x.tif", compression="jpeg")
    else:
        image.convert("L").save(tmp_path / "x.tif", compression="tiff_lzw")
    with Image.open(tmp_path / "x.tif") as reopened:
        expected = np.asarray(reopened.convert("L" if variant == "lzw-grey" else "RGB"))
    back = read_image(tmp_path / "x.tif")
    np.testing.assert_array_equal(back, expected.reshape(back.shape))
    assert back.shape[2] == (1 if variant == "lzw-grey" else 3)
    assert probe_image(tmp_path / "x.tif").shape == back.shape


@pytest.mark.parametrize(("fmt", "mode", "suffix"), [("BMP", "RGB", ".bmp"), ("WEBP", "RGBA", ".webp"), ("JPEG", "L", ".jpg"), ("JPEG", "RGB", ".jpg")])
def test_pillow_formats_match_pillow(tmp_path: Path, fmt: str, mode: str, suffix: str) -> None:
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    source = Image.fromarray(random_image(16, 24, channels, seed=1).squeeze(-1) if channels == 1 else random_image(16, 24, channels, seed=1), mode)
    path = tmp_path / f"x{suffix}"
    source.save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with Image.open(path) as reopened:
        expected = np.asarray(reopened).reshape(16, 24, channels)
    back = read_image(path)
    assert back.shape == (16, 24, channels) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, expected)
    assert probe_image(path).shape == back.shape


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.fromarray(random_image(8, 8, 3, seed=6)).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").shape == (8, 8, 3)
    assert probe_image(tmp_path / "c.jpg").shape == (8, 8, 3)


def test_exif_orientation_is_not_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image = random_image(10, 30, 3, seed=8)
    Image.fromarray(image).save(tmp_path / "o.jpg", exif=exif, quality=100)
    Image.fromarray(image).save(tmp_path / "o.png", exif=exif)
    assert read_image(tmp_path / "o.jpg").shape == (10, 30, 3)  # raw pixels, as stored
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), image)


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    image = random_image(4, 5, 3)
    (tmp_path / "really_a_png.jpg").write_bytes(encode_image(image, "png"))
    np.testing.assert_array_equal(read_image(tmp_path / "really_a_png.jpg"), image)


def test_real_photos_match_an_independent_decoder() -> None:
    for path in [
        *sorted(shared_data("eval", "kodak24").glob("*.png"))[:3],
        *sorted(shared_data("eval", "mcmaster18").glob("*.tif"))[:2],
        *sorted(shared_data("eval", "bsds500-val").glob("*.jpg"))[:2],
    ]:
        with Image.open(path) as reference:
            expected = np.asarray(reference.convert("RGB"))
        np.testing.assert_array_equal(read_image(path), expected, err_msg=str(path))
        assert probe_image(path).shape == expected.shape


# ---------------------------------------------------------------------------------------------
# Bad files: one-line errors that name the file
# ---------------------------------------------------------------------------------------------


def assert_read_error(path: Path, *words: str, probe: bool = True) -> None:
    """read_image (and probe_image unless ``probe`` is false) fail with one line naming the file."""
    for reader in (read_image, probe_image) if probe else (read_image,):
        with pytest.raises(ImageReadError) as caught:
            reader(path)
        message = str(caught.value)
        assert isinstance(caught.value, ValueError)
        assert "\n" not in message and str(path) in message
        for word in words:
            assert word in message.lower(), message


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    assert_read_error(tmp_path / "empty.png", "empty")


def test_non_image_file(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("these are\nnot pixels\n")
    assert_read_error(tmp_path / "notes.png", "not a supported image")


def test_gif_is_unsupported(tmp_path: Path) -> None:
    Image.fromarray(random_image(4, 4, 3)).save(tmp_path / "a.gif")
    assert_read_error(tmp_path / "a.gif", "not a supported image")


def test_float_tiff_is_unsupported(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    assert_read_error(tmp_path / "f.tif", "not supported")


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.95])
def test_truncated_png_is_detected(tmp_path: Path, fraction: float) -> None:
    data = encode_image(random_image(64, 64, 3, seed=2), "png")
    (tmp_path / "cut.png").write_bytes(data[: int(len(data) * fraction)])
    assert_read_error(tmp_path / "cut.png", "truncated")


@pytest.mark.parametrize("cut", [1, 4, 12, 20])
def test_png_cut_at_the_very_end_is_detected(tmp_path: Path, cut: int) -> None:
    data = encode_image(random_image(64, 64, 3, seed=2), "png")
    (tmp_path / "cut.png").write_bytes(data[:-cut])
    assert_read_error(tmp_path / "cut.png", "truncated")


def test_corrupt_png_data_is_detected(tmp_path: Path) -> None:
    data = bytearray(encode_image(random_image(64, 64, 3, seed=2), "png"))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.png").write_bytes(bytes(data))
    assert_read_error(tmp_path / "flip.png", "crc")


def test_truncated_real_photo_png(tmp_path: Path) -> None:
    data = (shared_data("eval", "kodak24") / "kodim01.png").read_bytes()
    (tmp_path / "kodim01.png").write_bytes(data[: len(data) // 2])
    assert_read_error(tmp_path / "kodim01.png", "truncated")


@pytest.mark.parametrize("fraction", [0.5, 0.98])
def test_truncated_jpeg_is_detected(tmp_path: Path, fraction: float) -> None:
    buffer = io.BytesIO()
    Image.fromarray(random_image(64, 64, 3, seed=2)).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * fraction)])
    assert_read_error(tmp_path / "cut.jpg", "truncated", probe=False)  # the header is intact: decoding fails


@pytest.mark.parametrize("ifd_first", [True, False])
def test_truncated_tiff_is_detected(tmp_path: Path, ifd_first: bool) -> None:
    if ifd_first:
        data = encode_image(random_image(64, 64, 3, np.uint16), "tiff")
    else:  # the McMaster files keep their directory at the end
        data = (shared_data("eval", "mcmaster18") / "1.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: int(len(data) * 0.7)])
    assert_read_error(tmp_path / "cut.tif", "tiff")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    assert_read_error(tmp_path / "dir.png", "folder")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    first, second = random_image(4, 4, 3, seed=1), random_image(4, 4, 3, seed=2)
    write_image(tmp_path / "a.png", first)
    with pytest.raises(FileExistsError):
        write_image(tmp_path / "a.png", second)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), first)
    write_image(tmp_path / "a.png", second, overwrite=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no temporary files left


@pytest.mark.parametrize(
    ("image", "name", "match"),
    [
        (np.zeros((4, 4, 2), np.uint8), "a.png", "C in 1, 3, 4"),
        (np.zeros((4, 4, 3), np.float32), "a.png", "uint8 or uint16"),
        (np.zeros((0, 4, 3), np.uint8), "a.png", "empty"),
        (np.zeros((4, 4, 3), np.uint8), "a.jpg", "cannot write"),
    ],
)
def test_write_rejects_bad_input(tmp_path: Path, image: np.ndarray, name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_image(tmp_path / name, image)
    assert not (tmp_path / name).exists()


# ---------------------------------------------------------------------------------------------
# Listing folders
# ---------------------------------------------------------------------------------------------


def _touch_images(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_find_images_keys_and_recursion(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["b.PNG", "a.jpg", "sub/c.tif", "sub/deeper/d.webp", ".hidden.png", ".git/e.png", "notes.txt"])
    _touch_images(tmp_path, ["old.zarr/zarr.json", "old.zarr/images/x.png"])  # an archive inside the folder
    flat = find_images(tmp_path)
    assert [key for key, _ in flat.entries] == ["a", "b"]
    assert [p.name for p in flat.ignored] == ["notes.txt"]
    assert [p.name for p in flat.subfolders] == ["sub"]
    deep = find_images(tmp_path, recursive=True)
    assert [key for key, _ in deep.entries] == ["a", "b", "sub/c", "sub/deeper/d"]
    assert deep.relative(deep.entries[-1][1]) == "sub/deeper/d.webp"


def test_find_images_single_file(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["one.png"])
    listing = find_images(tmp_path / "one.png")
    assert listing.entries == [("one", tmp_path / "one.png")] and listing.root == tmp_path


def test_find_images_key_clash(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["a.png", "a.jpg"])
    with pytest.raises(KeyClashError, match="'a'"):
        find_images(tmp_path)


def test_image_key() -> None:
    assert image_key("sub/photo1.png") == "sub/photo1"
    assert image_key("my.photo.jpeg") == "my.photo"


def test_to_rgb8_gives_8_bit_rgb_from_grey_16_bit_and_rgba() -> None:
    from restore.data.images import to_rgb8

    grey16 = np.array([[[0], [65535], [32896]]], np.uint16)
    assert to_rgb8(grey16).tolist() == [[[0] * 3, [255] * 3, [128] * 3]]
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 7
    assert to_rgb8(rgba).shape == (2, 2, 3) and to_rgb8(rgba).max() == 0
    with pytest.raises(ValueError, match="uint8 or uint16"):
        to_rgb8(np.zeros((2, 2, 3), np.float32))
