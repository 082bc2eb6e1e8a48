"""``restore ingest`` / ``restore export`` through click's CliRunner: round trips, layouts, bad input."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import zarr
from click.testing import CliRunner, Result
from helpers import random_image, shared_data

from restore.cli import main
from restore.data.archive import open_archive
from restore.data.images import encode_image, read_image, write_image


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_line(result: Result) -> str:
    """The single ``Error: ...`` line of a failed command (and check there is exactly one)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def files_under(folder: Path) -> dict[str, Path]:
    """Relative POSIX path without suffix → file, for every file below ``folder``."""
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.rglob("*") if p.is_file()}


def assert_round_trip(src: Path, archive: Path, out: Path, *extra: str) -> None:
    """export(ingest(src)) reproduces every source image's pixels exactly."""
    result = run("export", archive, out, *extra)
    assert result.exit_code == 0, result.output
    sources, exported = files_under(src), files_under(out)
    assert sorted(exported) == sorted(sources)
    for key, path in sources.items():
        expected, got = read_image(path), read_image(exported[key])
        assert got.dtype == expected.dtype and got.shape == expected.shape, key
        np.testing.assert_array_equal(got, expected, err_msg=key)


# ---------------------------------------------------------------------------------------------
# Real photos (the "Done when")
# ---------------------------------------------------------------------------------------------


def real_photos() -> list[Path]:
    """58 real photos: Kodak (24 PNG), McMaster (18 TIFF), BSDS500 val (16 JPEG)."""
    photos = [
        *sorted(shared_data("eval", "kodak24").glob("*.png")),
        *sorted(shared_data("eval", "mcmaster18").glob("*.tif")),
        *sorted(shared_data("eval", "bsds500-val").glob("*.jpg"))[:16],
    ]
    assert len(photos) == 58
    return photos


def test_58_real_photos_of_one_size_round_trip_in_one_stack(tmp_path: Path) -> None:
    src = tmp_path / "crops"
    src.mkdir()
    for i, photo in enumerate(real_photos()):
        image = read_image(photo)
        top, left = (image.shape[0] - 256) // 2, (image.shape[1] - 256) // 2
        crop = image[top : top + 256, left : left + 256]
        write_image(src / f"{photo.stem}.{'tiff' if i % 4 == 0 else 'png'}", crop)
    result = run("ingest", src, tmp_path / "a.zarr")
    assert result.exit_code == 0, result.output
    group = zarr.open_group(tmp_path / "a.zarr", mode="r")
    assert isinstance(group["images"], zarr.Array)
    assert group["images"].shape == (58, 256, 256, 3) and group["images"].dtype == np.uint8
    assert group["images"].chunks == (1, 256, 256, 3)
    assert sorted(group.attrs["keys"]) == sorted(files_under(src))
    assert open_archive(tmp_path / "a.zarr").layout == "stack"
    assert_round_trip(src, tmp_path / "a.zarr", tmp_path / "out")


def test_58_real_photos_of_mixed_sizes_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "mixed"
    (src / "tiff").mkdir(parents=True)
    (src / "jpeg").mkdir()
    (src / "resized").mkdir()
    sizes = [(2048, 1365), (1365, 2048), (1024, 683), (97, 131), (33, 1), (1, 1), (640, 480), (300, 301)]
    for i, photo in enumerate(real_photos()):
        if photo.suffix == ".tif":
            shutil.copy(photo, src / "tiff" / photo.name)  # originals, as given
        elif photo.suffix == ".jpg":
            shutil.copy(photo, src / "jpeg" / photo.name)
        else:  # Kodak PNGs resized to sizes up to 2048 px, some grey, some 16-bit
            width, height = sizes[i % len(sizes)]
            image = cv2.resize(read_image(photo), (width, height), interpolation=cv2.INTER_CUBIC if width > 768 else cv2.INTER_AREA)
            if i % 3 == 1:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            if i % 4 == 2:
                image = image.astype(np.uint16) * 257 + np.uint16(i)
            write_image(src / "resized" / photo.name, image)
    result = run("ingest", "--recursive", src, tmp_path / "a.zarr")
    assert result.exit_code == 0, result.output
    archive = open_archive(tmp_path / "a.zarr")
    assert archive.layout == "group" and len(archive) == 58
    assert max(max(archive.shape(key)[:2]) for key in archive.keys) == 2048
    assert {archive.dtype(key) for key in archive.keys} == {np.dtype(np.uint8), np.dtype(np.uint16)}
    assert archive.source_file("tiff/1") == "tiff/1.tif"
    assert_round_trip(src, tmp_path / "a.zarr", tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# Synthetic corpus: dtypes, channels, tiny images, names, nesting
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    images = {
        "grey8.png": random_image(20, 30, 1, np.uint8, seed=1),
        "rgb16.png": random_image(20, 30, 3, np.uint16, seed=2),
        "rgba8.png": random_image(20, 30, 4, np.uint8, seed=3),
        "rgba16.tiff": random_image(20, 30, 4, np.uint16, seed=4),
        "grey16.tif": random_image(20, 30, 1, np.uint16, seed=5),
        "dot.png": random_image(1, 1, 3, np.uint8, seed=6),
        "фото ü 写真.png": random_image(9, 7, 3, np.uint8, seed=7),
        "nested/deeper/leaf.png": random_image(5, 6, 3, np.uint8, seed=8),
        "nested.png": random_image(4, 4, 3, np.uint8, seed=9),  # key "nested" beside folder "nested/"
    }
    for name, image in images.items():
        write_image(src / name, image)
    return src


def test_corpus_round_trips_png_and_tiff(corpus: Path, tmp_path: Path) -> None:
    result = run("ingest", "-r", corpus, tmp_path / "a.zarr")
    assert result.exit_code == 0, result.output
    assert "ingested 9 image(s)" in result.stderr and "group layout" in result.stderr
    archive = open_archive(tmp_path / "a.zarr")
    assert "nested/deeper/leaf" in archive.keys and "фото ü 写真" in archive.keys
    assert_round_trip(corpus, tmp_path / "a.zarr", tmp_path / "png")
    assert_round_trip(corpus, tmp_path / "a.zarr", tmp_path / "tiff", "--format", "tiff")
    assert all(p.suffix == ".tiff" for p in (tmp_path / "tiff").rglob("*") if p.is_file())


def test_without_recursive_subfolders_are_left_out(corpus: Path, tmp_path: Path) -> None:
    result = run("ingest", corpus, tmp_path / "a.zarr")
    assert result.exit_code == 0, result.output
    assert "nested/deeper/leaf" not in open_archive(tmp_path / "a.zarr").keys
    assert "use --recursive" in result.stderr


def test_same_size_files_make_a_stack_and_layout_can_be_forced(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(5):
        write_image(src / f"{i}.png", random_image(6, 7, 3, seed=i))
    assert run("ingest", src, tmp_path / "auto.zarr").exit_code == 0
    assert open_archive(tmp_path / "auto.zarr").layout == "stack"
    assert run("ingest", "--layout", "group", src, tmp_path / "group.zarr").exit_code == 0
    assert open_archive(tmp_path / "group.zarr").layout == "group"
    assert_round_trip(src, tmp_path / "group.zarr", tmp_path / "out")


def test_stack_of_mixed_sizes_is_a_usage_error(corpus: Path, tmp_path: Path) -> None:
    result = run("ingest", "--layout", "stack", corpus, tmp_path / "a.zarr")
    assert result.exit_code == 2
    assert "--layout" in error_line(result) and "one size" in error_line(result)
    assert list(tmp_path.iterdir()) == [corpus]


def test_single_file_source(tmp_path: Path) -> None:
    image = random_image(3, 5, 4, np.uint16)
    write_image(tmp_path / "one.png", image)
    assert run("ingest", tmp_path / "one.png", tmp_path / "one.zarr").exit_code == 0
    archive = open_archive(tmp_path / "one.zarr")
    assert archive.keys == ["one"]
    np.testing.assert_array_equal(archive.read("one"), image)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def good_and_bad(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for i in range(3):
        write_image(src / f"good{i}.png", random_image(16, 16, 3, seed=i))
    data = encode_image(random_image(64, 64, 3, seed=9), "png")
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    return src


def assert_nothing_written(tmp_path: Path, src: Path) -> None:
    assert sorted(tmp_path.iterdir()) == [src]  # no archive, no .a.zarr.tmp-<pid>


def test_truncated_png_fails_cleanly(good_and_bad: Path, tmp_path: Path) -> None:
    result = run("ingest", good_and_bad, tmp_path / "a.zarr")
    assert result.exit_code == 1
    line = error_line(result)
    assert "truncated.png" in line and "truncated" in line.lower()
    assert_nothing_written(tmp_path, good_and_bad)


def test_truncated_jpeg_fails_while_writing_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, photo in enumerate(sorted(shared_data("eval", "bsds500-val").glob("*.jpg"))[:3]):
        data = photo.read_bytes()
        (src / photo.name).write_bytes(data if i != 2 else data[: len(data) * 2 // 3])
    result = run("ingest", src, tmp_path / "a.zarr")
    assert result.exit_code == 1 and "truncated" in error_line(result).lower()
    assert_nothing_written(tmp_path, src)


@pytest.mark.parametrize(("name", "content", "word"), [("zero.png", b"", "empty"), ("notes.png", b"hello\nworld", "not a supported image")])
def test_zero_byte_and_non_image_files(good_and_bad: Path, tmp_path: Path, name: str, content: bytes, word: str) -> None:
    (good_and_bad / "truncated.png").unlink()
    (good_and_bad / name).write_bytes(content)
    result = run("ingest", good_and_bad, tmp_path / "a.zarr")
    assert result.exit_code == 1
    assert name in error_line(result) and word in error_line(result)
    assert_nothing_written(tmp_path, good_and_bad)


def test_skip_bad_keeps_the_good_and_lists_the_bad(good_and_bad: Path, tmp_path: Path) -> None:
    (good_and_bad / "zero.jpg").write_bytes(b"")
    (good_and_bad / "notes.tif").write_text("not a tiff")
    result = run("ingest", "--skip-bad", good_and_bad, tmp_path / "a.zarr")
    assert result.exit_code == 0, result.output
    for name in ("truncated.png", "zero.jpg", "notes.tif"):
        assert any(name in line and line.startswith("skipped") for line in result.stderr.splitlines()), name
    archive = open_archive(tmp_path / "a.zarr")
    assert archive.keys == ["good0", "good1", "good2"] and archive.layout == "stack"
    assert sorted(entry["file"] for entry in archive.attrs["skipped"]) == ["notes.tif", "truncated.png", "zero.jpg"]


def test_only_bad_files_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "zero.png").write_bytes(b"")
    result = run("ingest", "--skip-bad", src, tmp_path / "a.zarr")
    assert result.exit_code == 1 and "could be read" in error_line(result)
    assert_nothing_written(tmp_path, src)


def test_empty_folder_and_key_clash(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("ingest", tmp_path / "empty", tmp_path / "a.zarr")
    assert result.exit_code == 1 and "no image files" in error_line(result)
    write_image(tmp_path / "clash" / "a.png", random_image(2, 2, 3))
    write_image(tmp_path / "clash" / "a.tiff", random_image(2, 2, 3))
    result = run("ingest", tmp_path / "clash", tmp_path / "a.zarr")
    assert result.exit_code == 1 and "a.png" in error_line(result) and "a.tiff" in error_line(result)
    assert not (tmp_path / "a.zarr").exists()


def test_ingest_never_overwrites_without_the_flag(corpus: Path, tmp_path: Path) -> None:
    assert run("ingest", corpus, tmp_path / "a.zarr").exit_code == 0
    before = open_archive(tmp_path / "a.zarr").keys
    write_image(corpus / "extra.png", random_image(3, 3, 3))
    result = run("ingest", corpus, tmp_path / "a.zarr")
    assert result.exit_code == 2 and "--overwrite" in error_line(result)
    assert open_archive(tmp_path / "a.zarr").keys == before
    assert run("ingest", "--overwrite", corpus, tmp_path / "a.zarr").exit_code == 0
    assert "extra" in open_archive(tmp_path / "a.zarr").keys
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "src"]
    result = run("ingest", "--overwrite", corpus, corpus)
    assert result.exit_code == 2 and "would replace the source" in error_line(result)
    assert (corpus / "extra.png").exists()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.png").write_bytes(b"precious")
    result = run("ingest", "--overwrite", corpus, tmp_path / "photos")
    assert result.exit_code == 2 and "not a zarr archive" in error_line(result)
    assert (tmp_path / "photos" / "mine.png").read_bytes() == b"precious"


def test_export_never_overwrites_without_the_flag(corpus: Path, tmp_path: Path) -> None:
    assert run("ingest", corpus, tmp_path / "a.zarr").exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "dot.png").write_bytes(b"mine")
    result = run("export", tmp_path / "a.zarr", out)
    assert result.exit_code == 2 and "dot.png" in error_line(result) and "--overwrite" in error_line(result)
    assert sorted(p.name for p in out.iterdir()) == ["dot.png"]  # nothing written at all
    assert (out / "dot.png").read_bytes() == b"mine"
    assert run("export", "--overwrite", tmp_path / "a.zarr", out).exit_code == 0
    np.testing.assert_array_equal(read_image(out / "dot.png"), read_image(corpus / "dot.png"))


def test_export_errors(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    result = run("export", tmp_path / "plain", tmp_path / "out")
    assert result.exit_code == 2 and "no zarr.json" in error_line(result)
    result = run("export", tmp_path / "missing.zarr", tmp_path / "out")
    assert result.exit_code == 2 and "no such archive" in error_line(result)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# A failed export leaves DST_DIR as it was; an export never writes into its archive
# ---------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder`` (hidden ones included): relative path → file bytes, None for folders."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


@pytest.fixture
def damaged(corpus: Path, tmp_path: Path) -> Path:
    """A group archive of the corpus whose last image (in export order) has one flipped byte."""
    archive = tmp_path / "a.zarr"
    assert run("ingest", "-r", "--layout", "group", corpus, archive).exit_code == 0
    opened = open_archive(archive)
    chunk = next(p for p in (archive / "images" / opened.array_name(opened.keys[-1]) / "c").rglob("*") if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    return archive


def test_failed_export_leaves_no_new_folder(damaged: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "out"
    result = run("export", damaged, out)
    assert result.exit_code == 1
    assert repr(open_archive(damaged).keys[-1]) in error_line(result)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_failed_export_leaves_an_existing_folder_as_it_was(damaged: Path, tmp_path: Path, overwrite: bool) -> None:
    out = tmp_path / "out"
    (out / "nested").mkdir(parents=True)
    (out / "notes.txt").write_bytes(b"mine")
    (out / "nested" / "mine.png").write_bytes(b"mine too")
    if overwrite:
        (out / "dot.png").write_bytes(b"an old export")
    before = snapshot(out)
    result = run("export", *(["--overwrite"] if overwrite else []), damaged, out)
    assert result.exit_code == 1 and "cannot be read" in error_line(result)
    assert snapshot(out) == before
    result = run("export", *(["--overwrite"] if overwrite else []), damaged, out)
    assert result.exit_code == 1 and "--overwrite" not in error_line(result)  # a rerun is not refused


def test_interrupted_export_leaves_nothing(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("ingest", "-r", corpus, tmp_path / "a.zarr").exit_code == 0
    archive_class = type(open_archive(tmp_path / "a.zarr"))
    read, calls = archive_class.read, []

    def interrupted(self, key: str):
        calls.append(key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return read(self, key)

    monkeypatch.setattr(archive_class, "read", interrupted)
    result = run("export", tmp_path / "a.zarr", tmp_path / "out")
    assert result.exit_code == 1 and len(calls) == 3
    assert not (tmp_path / "out").exists()


def test_a_file_that_appears_during_the_export_is_kept(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("ingest", "-r", corpus, tmp_path / "a.zarr").exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    opened = open_archive(tmp_path / "a.zarr")
    last = key_path_of(opened.keys[-1])
    archive_class, read = type(opened), type(opened).read

    def read_then_appear(self, key: str):
        if key == opened.keys[-1]:
            write_image(out / last, random_image(2, 2, 3))
        return read(self, key)

    monkeypatch.setattr(archive_class, "read", read_then_appear)
    before = {last.as_posix(): encode_image(random_image(2, 2, 3), "png")}
    result = run("export", tmp_path / "a.zarr", out)
    assert result.exit_code == 1 and f"{last} appeared during the export" in error_line(result)
    assert snapshot(out) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_failure_while_moving_files_into_place_is_undone(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    archive = tmp_path / "a.zarr"
    assert run("ingest", "-r", corpus, archive).exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "dot.png").write_bytes(b"an old export")
    (out / "notes.txt").write_bytes(b"mine")
    if not overwrite:
        (out / "dot.png").unlink()
    before = snapshot(out)
    last = out.resolve() / key_path_of(open_archive(archive).keys[-1])
    link, replace = os.link, os.replace

    def failing(real):
        def move(src, dst, *args, **kwargs):
            if Path(dst) == last:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(src, dst, *args, **kwargs)

        return move

    monkeypatch.setattr(os, "link", failing(link))
    monkeypatch.setattr(os, "replace", failing(replace))
    result = run("export", *(["--overwrite"] if overwrite else []), archive, out)
    assert result.exit_code == 1 and "No space left on device" in error_line(result)
    assert snapshot(out) == before
    monkeypatch.undo()
    result = run("export", "--overwrite", archive, out)
    assert result.exit_code == 0, result.output
    assert sorted(files_under(out)) == sorted([*files_under(corpus), "notes"])
    assert not list(out.rglob(".*"))  # no staging folder left


def key_path_of(key: str) -> Path:
    """The file a key is exported to, relative to DST_DIR (PNG)."""
    *folders, name = key.split("/")
    return Path(*folders, name + ".png")


@pytest.mark.parametrize("dst", ["a.zarr", "a.zarr/images", "link/images", "src/../a.zarr/images/dot", "."])
def test_export_refuses_to_write_into_its_archive(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dst: str
) -> None:
    archive = tmp_path / "a.zarr"
    assert run("ingest", "-r", corpus, archive).exit_code == 0
    (tmp_path / "link").symlink_to(archive)
    before = snapshot(archive)
    monkeypatch.chdir(archive / "images" if dst == "." else tmp_path)
    result = run("export", archive, dst)
    assert result.exit_code == 2
    line = error_line(result)
    assert "DST_DIR" in line and f"{dst} is the archive" in line
    assert snapshot(archive) == before


def test_export_refuses_a_key_that_lands_inside_the_archive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_image(src / "a.zarr" / "inside.png", random_image(4, 4, 3))
    write_image(src / "beside.png", random_image(4, 4, 3))
    out = tmp_path / "out"
    assert run("ingest", "-r", src, out / "a.zarr").exit_code == 0
    before = snapshot(out)
    result = run("export", out / "a.zarr", out)
    assert result.exit_code == 2
    assert "inside.png" in error_line(result) and "inside the archive" in error_line(result)
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------------------
# Leftovers of killed ingests
# ---------------------------------------------------------------------------------------------


def test_ingest_removes_the_temporary_folders_of_killed_runs_only(corpus: Path, tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", ""])
    finished.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [f".a.zarr.tmp-{running.pid}", f".a.zarr.old-{finished.pid}", f".b.zarr.tmp-{finished.pid}"]
        for name in [f".a.zarr.tmp-{finished.pid}", *kept]:
            (tmp_path / name).mkdir()
            (tmp_path / name / "zarr.json").write_text("{}")
        result = run("ingest", corpus, tmp_path / "a.zarr")
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if line.startswith("removed")]
        assert len(lines) == 1 and f".a.zarr.tmp-{finished.pid}" in lines[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "a.zarr", "src"])
        result = run("ingest", "--overwrite", corpus, tmp_path / "a.zarr")
        assert result.exit_code == 0 and "removed" not in result.stderr
    finally:
        running.kill()
        running.wait()
