"""Archives: building, reading, validation, naming, and the crash-safe output writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers import random_image

import restore
from restore.data import _zarr_store
from restore.data._zarr_store import TEMP_SUFFIX
from restore.data.archive import (
    Archive,
    ArchiveBuilder,
    ArchiveError,
    array_names,
    open_archive,
    shard_images,
)
from restore.data.output_archive import OutputArchive


def build(path: Path, images: dict[str, np.ndarray], layout: str | None = None, **kwargs) -> Archive:
    """An archive of ``images`` (stack when they share a shape and dtype, unless ``layout`` says)."""
    kinds = {(im.shape, im.dtype) for im in images.values()}
    layout = layout or ("stack" if len(kinds) == 1 else "group")
    first = next(iter(images.values()))
    with ArchiveBuilder(path, keys=list(images), layout=layout, image_shape=first.shape, dtype=first.dtype, **kwargs) as builder:
        for key, image in images.items():
            builder.add(key, image, source_file=f"{key}.png")
    return open_archive(path)


def same_size(n: int, shape=(8, 6, 3), dtype=np.uint8) -> dict[str, np.ndarray]:
    return {f"img{i:03d}": random_image(*shape, dtype=dtype, seed=i) for i in range(n)}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


# ---------------------------------------------------------------------------------------------
# Naming and sharding
# ---------------------------------------------------------------------------------------------


def test_shard_images() -> None:
    assert shard_images(256 * 256 * 3, 1000, max_images=64, max_bytes=64 * 2**20) == 64
    assert shard_images(2048 * 2048 * 3, 1000, max_images=64, max_bytes=64 * 2**20) == 5
    assert shard_images(8192 * 8192 * 3, 10, max_images=64, max_bytes=64 * 2**20) == 1
    assert shard_images(256 * 256 * 3, 7, max_images=64, max_bytes=64 * 2**20) == 7


def test_array_names_are_safe_distinct_and_not_folders() -> None:
    keys = ["a", "a/b", "a/b/c", "..", ".x", "__y", "zarr.json", "ü ñ", "sub/.hidden", "p~1", ""]
    names = array_names(keys)
    assert names["a/b/c"] == "a/b/c" and names["ü ñ"] == "ü ñ" and names["p~1"] == "p~1"
    values = list(names.values())
    assert len(set(values)) == len(values)
    folders = {v.rsplit("/", n)[0] for v in values for n in range(1, v.count("/") + 1)}
    assert not folders & set(values)  # "a" is a folder of "a/b": its array got another name
    for name in values:
        for part in name.split("/"):
            assert part not in ("", ".", "..", "zarr.json") and not part.startswith((".", "__"))
    assert array_names(keys) == names  # deterministic


# ---------------------------------------------------------------------------------------------
# Building and reading
# ---------------------------------------------------------------------------------------------


def test_stack_archive_layout(tmp_path: Path) -> None:
    images = same_size(70, (8, 6, 3), np.uint16)
    archive = build(tmp_path / "a.zarr", images)
    assert archive.layout == "stack" and archive.keys == list(images) and len(archive) == 70
    raw = zarr.open_group(tmp_path / "a.zarr", mode="r")
    assert raw["images"].shape == (70, 8, 6, 3)
    assert raw["images"].chunks == (1, 8, 6, 3)
    assert raw["images"].shards == (64, 8, 6, 3)
    assert raw["images"].dtype == np.uint16
    assert raw.attrs["keys"] == list(images)
    assert raw.attrs["restore_version"] == restore.__version__
    assert raw.attrs["source_files"]["img007"] == "img007.png"
    for key, image in images.items():
        np.testing.assert_array_equal(archive.read(key), image)
    assert archive.shape("img000") == (8, 6, 3) and archive.dtype("img000") == np.uint16
    shard_files = [p for p in (tmp_path / "a.zarr" / "images" / "c").rglob("*") if p.is_file()]
    assert len(shard_files) == 2  # 70 images in 2 shard files
    assert leftovers(tmp_path) == []


def test_group_archive_with_nested_and_awkward_keys(tmp_path: Path) -> None:
    images = {
        "a": random_image(3, 4, 1, seed=1),
        "a/b": random_image(5, 2, 4, np.uint16, seed=2),
        "ü ñ/写真": random_image(1, 1, 3, seed=3),
        "zarr.json": random_image(2, 2, 3, seed=4),
    }
    archive = build(tmp_path / "g.zarr", images)
    assert archive.layout == "group" and archive.keys == list(images)
    for key, image in images.items():
        assert archive.shape(key) == image.shape and archive.dtype(key) == image.dtype
        np.testing.assert_array_equal(archive.read(key), image)
    assert archive.array_name("a/b") == "a/b" and archive.array_name("a") != "a"


def test_builder_skips_keys_and_compacts_the_stack(tmp_path: Path) -> None:
    images = same_size(5)
    with ArchiveBuilder(tmp_path / "a.zarr", keys=list(images), layout="stack", image_shape=(8, 6, 3), dtype=np.uint8) as builder:
        for key in ["img000", "img002", "img004"]:
            builder.add(key, images[key])
    archive = open_archive(tmp_path / "a.zarr")
    assert archive.keys == ["img000", "img002", "img004"] and archive.images.shape == (3, 8, 6, 3)
    np.testing.assert_array_equal(archive.read("img004"), images["img004"])


def test_builder_rejects_wrong_images(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="img001"):
        with ArchiveBuilder(tmp_path / "a.zarr", keys=["img000", "img001"], layout="stack", image_shape=(8, 6, 3), dtype=np.uint8) as builder:
            builder.add("img000", random_image(8, 6, 3))
            builder.add("img001", random_image(8, 6, 4))
    assert not (tmp_path / "a.zarr").exists() and leftovers(tmp_path) == []


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with ArchiveBuilder(tmp_path / "a.zarr", keys=["x", "y"], layout="group") as builder:
            builder.add("x", random_image(4, 4, 3))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_empty_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no images"):
        with ArchiveBuilder(tmp_path / "a.zarr", keys=["x"], layout="group"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_never_overwrites_without_permission(tmp_path: Path) -> None:
    first = same_size(2)
    build(tmp_path / "a.zarr", first)
    with pytest.raises(FileExistsError):
        build(tmp_path / "a.zarr", same_size(3))
    assert open_archive(tmp_path / "a.zarr").keys == list(first)
    second = {"other": random_image(3, 3, 3)}
    build(tmp_path / "a.zarr", second, overwrite=True)
    assert open_archive(tmp_path / "a.zarr").keys == ["other"]
    assert leftovers(tmp_path) == []
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.png").write_bytes(b"precious")
    with pytest.raises(ArchiveError, match="not a zarr archive"):
        build(tmp_path / "photos", second, overwrite=True)
    assert (tmp_path / "photos" / "keep.png").read_bytes() == b"precious"


# ---------------------------------------------------------------------------------------------
# open_archive errors
# ---------------------------------------------------------------------------------------------


def assert_archive_error(path: Path, match: str) -> None:
    with pytest.raises(ArchiveError, match=match) as caught:
        open_archive(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_open_errors(tmp_path: Path) -> None:
    assert_archive_error(tmp_path / "missing.zarr", "no such archive")
    (tmp_path / "file.zarr").write_text("x")
    assert_archive_error(tmp_path / "file.zarr", "not an archive")
    (tmp_path / "plain").mkdir()
    assert_archive_error(tmp_path / "plain", "no zarr.json")
    (tmp_path / "plain" / "IMG_1.JPG").write_bytes(b"photo")
    assert_archive_error(tmp_path / "plain", "a folder of images: make an archive first with `restore ingest")
    zarr.open_group(tmp_path / "noimages.zarr", mode="w")
    assert_archive_error(tmp_path / "noimages.zarr", "no 'images'")


def test_open_rejects_malformed_stacks(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "f.zarr", mode="w")
    group.create_array("images", shape=(2, 4, 4, 3), dtype="float32")
    group.attrs["keys"] = ["a", "b"]
    assert_archive_error(tmp_path / "f.zarr", "dtype float32")
    group = zarr.open_group(tmp_path / "k.zarr", mode="w")
    group.create_array("images", shape=(2, 4, 4, 3), dtype="uint8")
    group.attrs["keys"] = ["a"]
    assert_archive_error(tmp_path / "k.zarr", "1 keys for 2 images")
    group = zarr.open_group(tmp_path / "d.zarr", mode="w")
    group.create_array("images", shape=(2, 4, 4, 3), dtype="uint8")
    group.attrs["keys"] = ["a", "a"]
    assert_archive_error(tmp_path / "d.zarr", "more than once")
    group = zarr.open_group(tmp_path / "e.zarr", mode="w")
    group.create_array("images", shape=(0, 4, 4, 3), dtype="uint8")
    group.attrs["keys"] = []
    assert_archive_error(tmp_path / "e.zarr", "empty")


def test_open_reports_a_missing_array(tmp_path: Path) -> None:
    import shutil

    build(tmp_path / "g.zarr", {"a": random_image(3, 3, 3), "b": random_image(4, 4, 3)})
    shutil.rmtree(tmp_path / "g.zarr" / "images" / "b")
    assert_archive_error(tmp_path / "g.zarr", "'b'.*missing")


def test_foreign_archive_with_keys_array(tmp_path: Path) -> None:
    images = np.stack([random_image(4, 5, 3, seed=i) for i in range(3)])
    group = zarr.open_group(tmp_path / "x.zarr", mode="w")
    group.create_array("images", data=images, chunks=(1, 4, 5, 3))
    keys = group.create_array("keys", shape=(3,), dtype=str)
    keys[:] = np.array(["p", "q", "r"])
    archive = open_archive(tmp_path / "x.zarr")
    assert archive.keys == ["p", "q", "r"]
    np.testing.assert_array_equal(archive.read("r"), images[2])


def test_damaged_data_is_an_error_not_wrong_pixels(tmp_path: Path) -> None:
    build(tmp_path / "a.zarr", same_size(3))
    (shard,) = [p for p in (tmp_path / "a.zarr" / "images" / "c").rglob("*") if p.is_file()]
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF  # inside the first image's compressed bytes
    shard.write_bytes(bytes(data))
    archive = open_archive(tmp_path / "a.zarr")
    with pytest.raises(ArchiveError, match="img000.*cannot be read"):
        archive.read("img000")


def test_unknown_key(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zarr", same_size(1))
    with pytest.raises(ArchiveError, match="no image with key 'nope'"):
        archive.read("nope")


# ---------------------------------------------------------------------------------------------
# OutputArchive
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["stack", "group"])
def source(request, tmp_path: Path) -> Archive:
    if request.param == "stack":
        return build(tmp_path / "in.zarr", same_size(40, (6, 5, 3)))
    images = {f"d/img{i}": random_image(3 + i % 4, 4 + i % 3, (1, 3, 4)[i % 3], (np.uint8, np.uint16)[i % 2], seed=i) for i in range(9)}
    return build(tmp_path / "in.zarr", images)


def restored(archive: Archive, key: str) -> np.ndarray:
    return np.ascontiguousarray(archive.read(key)[::-1])  # any deterministic function of the input


def test_output_resume(source: Archive, tmp_path: Path) -> None:
    out_path = tmp_path / "out.zarr"
    provenance = {"method": "telea", "checkpoint_digest": None, "mask_source": "masks/", "strategy": "subsample"}
    with OutputArchive.create(out_path, source, provenance) as out:
        assert out.done_keys() == set() and out.missing_keys() == source.keys
        first = source.keys[:3]
        for key in first:
            out.write(key, restored(source, key))
        with pytest.raises(ArchiveError, match="not written yet"):
            out.as_archive().read(source.keys[5])
    with OutputArchive.open(out_path, source) as out:
        assert out.done_keys() == set(first)
        out.write_many({key: restored(source, key) for key in out.missing_keys()})
        assert out.complete
    result = open_archive(out_path)
    assert result.layout == source.layout and result.keys == source.keys and result.complete
    for key in source.keys:
        assert result.shape(key) == source.shape(key) and result.dtype(key) == source.dtype(key)
        np.testing.assert_array_equal(result.read(key), restored(source, key))
    assert result.attrs["method"] == "telea" and result.attrs["strategy"] == "subsample"
    assert result.attrs["kind"] == "restored" and result.attrs["restore_version"] == restore.__version__
    assert result.attrs["input_archive"] == str(source.path.resolve())


def test_output_refuses_mismatches(tmp_path: Path) -> None:
    source = build(tmp_path / "in.zarr", same_size(4))
    OutputArchive.create(tmp_path / "out.zarr", source, {}).close()
    other = build(tmp_path / "other.zarr", same_size(5))
    with pytest.raises(ArchiveError, match="does not match.*img004"):
        OutputArchive.open(tmp_path / "out.zarr", other)
    bigger = build(tmp_path / "bigger.zarr", same_size(4, (9, 6, 3)))
    with pytest.raises(ArchiveError, match="does not match.*9×6×3"):
        OutputArchive.open(tmp_path / "out.zarr", bigger)
    with pytest.raises(ArchiveError, match="not an output archive"):
        OutputArchive.open(tmp_path / "in.zarr", source)
    with pytest.raises(ArchiveError, match="replace its input"):
        OutputArchive.create(tmp_path / "in.zarr", source, {}, overwrite=True)
    with pytest.raises(FileExistsError):
        OutputArchive.create(tmp_path / "out.zarr", source, {})
    with pytest.raises(ValueError, match="reserved"):
        OutputArchive.create(tmp_path / "new.zarr", source, {"keys": ["x"]})
    with OutputArchive.open(tmp_path / "out.zarr", source) as out:
        with pytest.raises(ArchiveError, match="img000.*expects 8×6×3 uint8"):
            out.write("img000", random_image(8, 6, 3, np.uint16))
        with pytest.raises(ArchiveError, match="no image with key"):
            out.write("nope", random_image(8, 6, 3))
    np.testing.assert_array_equal(source.read("img000"), same_size(1)["img000"])  # the input is untouched


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    source = build(tmp_path / "in.zarr", same_size(2))
    with OutputArchive.create(tmp_path / "out.zarr", source, {}):
        with pytest.raises(ArchiveError, match="another process"):
            OutputArchive.open(tmp_path / "out.zarr", source)
        with pytest.raises(ArchiveError, match="another process"):
            OutputArchive.create(tmp_path / "out.zarr", source, {}, overwrite=True)
    OutputArchive.open(tmp_path / "out.zarr", source).close()  # released on close


def test_overwrite_starts_again(tmp_path: Path) -> None:
    source = build(tmp_path / "in.zarr", same_size(3))
    with OutputArchive.create(tmp_path / "out.zarr", source, {"method": "a"}) as out:
        out.write("img000", source.read("img000"))
    with OutputArchive.open_or_create(tmp_path / "out.zarr", source, {"method": "b"}) as out:
        assert out.done_keys() == {"img000"} and out.attrs["method"] == "a"
    with OutputArchive.open_or_create(tmp_path / "out.zarr", source, {"method": "b"}, overwrite=True) as out:
        assert out.done_keys() == set() and out.attrs["method"] == "b"
    assert leftovers(tmp_path) == []


def test_interrupted_writes_never_damage_written_images(tmp_path: Path, monkeypatch) -> None:
    """A write that dies before its rename (the moment a kill would leave a half file) changes nothing."""
    source = build(tmp_path / "in.zarr", same_size(6))
    out = OutputArchive.create(tmp_path / "out.zarr", source, {})
    out.write("img000", restored(source, "img000"))  # shares its shard with img001
    real_replace = os.replace

    def crash(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(_zarr_store.os, "replace", crash)
    with pytest.raises(OSError, match="killed before the rename"):
        out.write("img001", restored(source, "img001"))
    monkeypatch.setattr(_zarr_store.os, "replace", real_replace)
    out.close()
    with OutputArchive.open(tmp_path / "out.zarr", source) as out:
        assert out.done_keys() == {"img000"}
        np.testing.assert_array_equal(out.as_archive().read("img000"), restored(source, "img000"))
        assert not list((tmp_path / "out.zarr").rglob(f"*{TEMP_SUFFIX}"))


def test_data_written_but_not_recorded_is_recomputed(tmp_path: Path) -> None:
    source = build(tmp_path / "in.zarr", same_size(3))
    out = OutputArchive.create(tmp_path / "out.zarr", source, {})

    class DiesOnWrite:  # the done record, killed right after the image was stored
        chunks = out._done_array.chunks

        def __setitem__(self, selection, value):
            raise RuntimeError("killed between the image and its record")

    out._done_array = DiesOnWrite()
    with pytest.raises(RuntimeError, match="killed between"):
        out.write("img001", restored(source, "img001"))
    out.close()
    stored = zarr.open_array(tmp_path / "out.zarr" / "images", mode="r")[1]
    np.testing.assert_array_equal(stored, restored(source, "img001"))  # the data did land
    with OutputArchive.open(tmp_path / "out.zarr", source) as out:
        assert out.missing_keys() == ["img000", "img001", "img002"]  # but it is not trusted


def test_stale_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    source = build(tmp_path / "in.zarr", same_size(2))
    OutputArchive.create(tmp_path / "out.zarr", source, {}).close()
    stale = tmp_path / "out.zarr" / "images" / f".0.0123456789ab{TEMP_SUFFIX}"
    stale.write_bytes(b"half a shard")
    OutputArchive.open(tmp_path / "out.zarr", source).close()
    assert not stale.exists()


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from restore.data.archive import open_archive
    from restore.data.output_archive import OutputArchive

    source = open_archive(sys.argv[1])

    def result(key):
        return np.ascontiguousarray(255 - source.read(key))

    out = OutputArchive.open_or_create(sys.argv[2], source, {"method": "test"})
    print("ready", flush=True)
    for key in out.missing_keys():
        print("start", key, flush=True)
        out.write(key, result(key))
        print("done", key, flush=True)
    print("finished", flush=True)
    """
)


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    """Kill -9 a writer several times mid-run; the rerun completes the archive exactly, recomputing nothing done."""
    images = {f"k{i:02d}": random_image(48, 40, 3, seed=i) for i in range(48)}
    source = build(tmp_path / "in.zarr", images)
    out_path = tmp_path / "out.zarr"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = np.random.default_rng(1234)
    ever_done: set[str] = set()
    kills = 0
    for _attempt in range(6):
        child = subprocess.Popen(
            [sys.executable, str(script), str(source.path), str(out_path)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert child.stdout.readline().strip() == "ready"
        started: list[str] = []
        stop_after = int(rng.integers(1, 6))  # let a few writes finish, then kill at a random instant
        for line in child.stdout:
            word, *rest = line.split()
            if word == "start":
                started.append(rest[0])
                assert rest[0] not in ever_done, f"{rest[0]} was complete but is computed again"
            if word == "finished" or (word == "done" and len(started) >= stop_after):
                break
        if child.poll() is None:
            time.sleep(float(rng.uniform(0, 0.004)))  # lands inside a write as often as not
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(timeout=60)
        child.stdout.close()
        with OutputArchive.open(out_path, source) as out:
            done = out.done_keys()
        assert ever_done <= done
        ever_done = done
        if len(done) == len(images):
            break
    assert kills >= 3
    run = subprocess.run([sys.executable, str(script), str(source.path), str(out_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    recomputed = {line.split()[1] for line in run.stdout.splitlines() if line.startswith("start")}
    assert not recomputed & ever_done
    result = open_archive(out_path)
    assert result.complete and result.keys == list(images)
    for key, image in images.items():
        np.testing.assert_array_equal(result.read(key), 255 - image)
    assert not list(out_path.rglob(f"*{TEMP_SUFFIX}"))
    assert json.loads((out_path / "zarr.json").read_text())["attributes"]["method"] == "test"
