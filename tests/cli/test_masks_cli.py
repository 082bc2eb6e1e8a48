"""``restore masks generate`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import shared_data

from restore.cli import main
from restore.cli.masks import KINDS
from restore.data import mask_generators


def run(*args: str):
    return CliRunner().invoke(main, ["masks", "generate", *args])


def read_png(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


@pytest.fixture
def fake_nvidia(tmp_path: Path) -> Path:
    """An NVIDIA-style folder without a tsv: 32² masks covering k/8 of the columns."""
    root = tmp_path / "nv"
    (root / "testing_mask_dataset").mkdir(parents=True)
    for k in range(1, 7):
        mask = np.zeros((32, 32), np.uint8)
        mask[:, : 4 * k] = 255
        (root / "testing_mask_dataset" / f"{k:05d}.png").write_bytes(
            cv2.imencode(".png", mask)[1].tobytes()
        )
    mask_generators.nvidia_index.cache_clear()
    return root


def test_kind_list_matches_the_generators() -> None:
    assert KINDS == mask_generators.MASK_KINDS


def test_center_files(tmp_path: Path) -> None:
    result = run(str(tmp_path / "out"), "--kind", "center", "--size", "256x256", "--count", "2")
    assert result.exit_code == 0, result.output
    files = pngs(tmp_path / "out")
    assert [f.name for f in files] == ["00000.png", "00001.png"]
    expected = np.zeros((256, 256), np.uint8)
    expected[64:192, 64:192] = 255
    for path in files:
        pixels = read_png(path)
        assert pixels.dtype == np.uint8 and pixels.shape == (256, 256)  # single channel
        np.testing.assert_array_equal(pixels, expected)
    assert "wrote 2 center masks of 256x256" in result.output


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "nvidia"])
def test_every_kind_writes_binary_pngs(tmp_path: Path, kind: str) -> None:
    result = run(str(tmp_path), "--kind", kind, "--size", "48x64", "--count", "3")
    assert result.exit_code == 0, result.output
    for path in pngs(tmp_path):
        pixels = read_png(path)
        assert pixels.shape == (48, 64)
        assert set(np.unique(pixels)) <= {0, 255} and pixels.max() == 255


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        result = run(
            str(tmp_path / name),
            "--kind",
            "freeform",
            "--size",
            "64x64",
            "--count",
            "4",
            "--seed",
            seed,
        )
        assert result.exit_code == 0, result.output
    a, b, c = ([p.read_bytes() for p in pngs(tmp_path / n)] for n in "abc")
    assert a == b
    assert all(x != y for x, y in zip(a, c, strict=True))
    assert len(set(a)) == 4, "the masks of one run differ from each other"


def test_larger_count_extends_smaller(tmp_path: Path) -> None:
    run(str(tmp_path / "few"), "--kind", "thin", "--size", "32x32", "--count", "2")
    run(str(tmp_path / "more"), "--kind", "thin", "--size", "32x32", "--count", "5")
    few, more = pngs(tmp_path / "few"), pngs(tmp_path / "more")
    assert len(more) == 5
    assert [p.read_bytes() for p in few] == [p.read_bytes() for p in more[:2]]


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "00001.png").write_bytes(b"the user's file")
    (out / "notes.txt").write_text("kept")
    result = run(str(out), "--kind", "box", "--size", "16x16", "--count", "3")
    assert result.exit_code == 2
    assert "00001.png" in result.output and "--overwrite" in result.output
    assert (out / "00001.png").read_bytes() == b"the user's file"
    assert not (out / "00000.png").exists(), "nothing is written when refusing"

    result = run(str(out), "--kind", "box", "--size", "16x16", "--count", "3", "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_png(out / "00001.png").shape == (16, 16)
    assert (out / "notes.txt").read_text() == "kept"
    assert not list(out.glob(".*partial"))


def test_other_files_do_not_block(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / "99999.png").write_bytes(b"x")
    assert run(str(tmp_path), "--kind", "cellular", "--size", "16", "--count", "2").exit_code == 0
    assert (tmp_path / "99999.png").read_bytes() == b"x"


def test_square_size_shorthand_and_progress(tmp_path: Path) -> None:
    result = run(str(tmp_path), "--kind", "rect", "--size", "20", "--count", "120")
    assert result.exit_code == 0, result.output
    assert len(pngs(tmp_path)) == 120
    assert read_png(tmp_path / "00119.png").shape == (20, 20)


def test_glcic_boxes_via_ratio(tmp_path: Path) -> None:
    result = run(
        str(tmp_path),
        "--kind",
        "box",
        "--size",
        "32x32",
        "--count",
        "20",
        "--ratio",
        "0.15625-0.375",
    )
    assert result.exit_code == 0, result.output
    for path in pngs(tmp_path):
        rows, cols = np.nonzero(read_png(path))
        assert 5 <= rows.max() - rows.min() + 1 <= 12 and 5 <= cols.max() - cols.min() + 1 <= 12


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--size", "abc", "expected HxW"),
        ("--size", "0x5", "at least 1"),
        ("--size", "64x", "expected HxW"),
        ("--size", "100000x8", "at most"),
        ("--ratio", "0.5-0.2", "LO must not exceed HI"),
        ("--ratio", "x", "expected LO-HI"),
        ("--ratio", "10-20", "fractions in [0, 1]"),
        ("--kind", "blob", "'blob' is not one of"),
        ("--count", "0", "0 is not in the range"),
    ],
)
def test_usage_errors_name_the_option(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    args = {"--kind": "box", "--size": "8x8", "--count": "1"}
    args[option] = value
    result = run(str(tmp_path / "out"), *[item for pair in args.items() for item in pair])
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output and message in result.output
    assert not (tmp_path / "out").exists()


def test_unreachable_ratio_is_a_usage_error(tmp_path: Path) -> None:
    result = run(
        str(tmp_path / "out"),
        "--kind",
        "thin",
        "--size",
        "64x64",
        "--count",
        "2",
        "--ratio",
        "0.6-0.7",
    )
    assert result.exit_code == 2
    assert "Invalid value for '--ratio'" in result.output and "at most 0.5" in result.output


def test_destination_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run(str(tmp_path / "file"), "--kind", "box", "--size", "8x8", "--count", "1")
    assert result.exit_code == 2


def test_missing_nvidia_folder(tmp_path: Path) -> None:
    absent = tmp_path / "no-nvidia-here"
    result = run(
        str(tmp_path / "out"),
        "--kind",
        "nvidia",
        "--size",
        "8x8",
        "--count",
        "1",
        "--nvidia-dir",
        str(absent),
    )
    assert result.exit_code == 1
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and str(absent) in error_lines[0]
    assert "Traceback" not in result.output


def test_nvidia_from_folder_and_environment(
    tmp_path: Path, fake_nvidia: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(
        str(tmp_path / "a"),
        "--kind",
        "nvidia",
        "--size",
        "16x16",
        "--count",
        "5",
        "--ratio",
        "0.3-0.4",
        "--nvidia-dir",
        str(fake_nvidia),
    )
    assert result.exit_code == 0, result.output
    for path in pngs(tmp_path / "a"):
        assert (read_png(path) > 127).mean() == pytest.approx(3 / 8)
    monkeypatch.setenv("RESTORE_NVIDIA_MASKS", str(fake_nvidia))
    result = run(
        str(tmp_path / "b"),
        "--kind",
        "nvidia",
        "--size",
        "16x16",
        "--count",
        "5",
        "--ratio",
        "0.3-0.4",
    )
    assert result.exit_code == 0, result.output
    assert [p.read_bytes() for p in pngs(tmp_path / "a")] == [
        p.read_bytes() for p in pngs(tmp_path / "b")
    ]


def test_nvidia_real_ratio_bucket(tmp_path: Path) -> None:
    root = shared_data("masks", "nvidia-irregular")
    result = run(
        str(tmp_path),
        "--kind",
        "nvidia",
        "--size",
        "256x256",
        "--count",
        "10",
        "--ratio",
        "0.3-0.4",
        "--nvidia-dir",
        str(root),
    )
    assert result.exit_code == 0, result.output
    ratios = [float((read_png(p) > 127).mean()) for p in pngs(tmp_path)]
    assert len(ratios) == 10 and all(0.3 <= r <= 0.4 for r in ratios)


def test_unicode_destination(tmp_path: Path) -> None:
    out = tmp_path / "маски 日本"
    assert run(str(out), "--kind", "center", "--size", "8x8", "--count", "1").exit_code == 0
    assert read_png(out / "00000.png")[2:6, 2:6].all()


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["-q", "masks", "generate", str(tmp_path), "--kind", "box", "--size", "8", "--count", "2"],
    )
    assert result.exit_code == 0 and result.output == ""


def test_one_mask_per_archived_image_that_batch_finds(tmp_path: Path) -> None:
    """--for-archive names masks after the keys (nested ones too) at each image's size."""
    from restore.data.images import write_image
    from restore.data.masks import open_mask_source

    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    write_image(photos / "a.png", np.zeros((30, 40, 3), np.uint8))
    write_image(photos / "trip" / "b.png", np.zeros((50, 20, 3), np.uint8))
    assert CliRunner().invoke(main, ["ingest", "-r", str(photos), str(tmp_path / "p.zarr")]).exit_code == 0
    result = run(str(tmp_path / "m"), "--kind", "thick", "--for-archive", str(tmp_path / "p.zarr"), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "wrote 2 thick masks of 2 sizes" in result.output
    source = open_mask_source(tmp_path / "m")
    source.validate(["a", "trip/b"], {"a": (30, 40), "trip/b": (50, 20)})
    assert read_png(tmp_path / "m" / "trip" / "b_mask.png").shape == (50, 20)
    again = run(str(tmp_path / "m2"), "--kind", "thick", "--for-archive", str(tmp_path / "p.zarr"), "--seed", "3")
    assert again.exit_code == 0
    assert np.array_equal(read_png(tmp_path / "m" / "a_mask.png"), read_png(tmp_path / "m2" / "a_mask.png"))


def test_for_archive_excludes_size_and_count(tmp_path: Path) -> None:
    from restore.data.images import write_image

    (tmp_path / "photos").mkdir()
    write_image(tmp_path / "photos" / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert CliRunner().invoke(main, ["ingest", str(tmp_path / "photos"), str(tmp_path / "p.zarr")]).exit_code == 0
    both = run(str(tmp_path / "m"), "--kind", "box", "--for-archive", str(tmp_path / "p.zarr"), "--count", "2")
    assert both.exit_code == 2 and "drop --size/--count" in both.output
    neither = run(str(tmp_path / "m"), "--kind", "box", "--count", "2")
    assert neither.exit_code == 2 and "'--size'" in neither.output
    assert not (tmp_path / "m").exists()


def test_for_archive_keeps_a_and_a_mask_apart_and_refuses_unsafe_keys(tmp_path: Path) -> None:
    from pipelines.batch_fakes import write_archive

    from restore.data.masks import open_mask_source

    blank = np.zeros((16, 16, 3), np.uint8)
    archive = write_archive(tmp_path / "p.zarr", {"a": blank, "a_mask": blank}, "group")
    result = run(str(tmp_path / "m"), "--kind", "box", "--for-archive", str(archive), "--seed", "1")
    assert result.exit_code == 0, result.output
    source = open_mask_source(tmp_path / "m")
    a, a_mask = source.load("a", (16, 16)), source.load("a_mask", (16, 16))
    assert np.array_equal(a, read_png(tmp_path / "m" / "a_mask.png") > 127)
    assert np.array_equal(a_mask, read_png(tmp_path / "m" / "a_mask_mask.png") > 127) and not np.array_equal(a, a_mask)
    unsafe = write_archive(tmp_path / "u.zarr", {"../outside": blank}, "stack")
    refused = run(str(tmp_path / "m2"), "--kind", "box", "--for-archive", str(unsafe))
    assert refused.exit_code == 2 and "'../outside' cannot name a mask file" in refused.output
    assert not (tmp_path / "outside_mask.png").exists() and not (tmp_path / "m2").exists()
