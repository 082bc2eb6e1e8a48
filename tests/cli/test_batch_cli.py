"""``restore batch`` through the CLI: results, provenance, resume, SIGKILL, bad input, faults."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from helpers import torch_threads
from pipelines.batch_fakes import (
    POISON,
    load_failing,
    load_logging,
    logged_markers,
    make_images,
    make_masks,
    method,
    tiny_csa_checkpoint,
    write_archive,
    write_masks,
)

from restore.cli import main
from restore.data.archive import open_archive
from restore.models.classical import OpenCVInpainter
from restore.models.registry import METHODS

TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scheduler():
    """The address of a LocalCluster (one spawned worker) shared by this module's runs."""
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 2}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40)
    yield cluster.scheduler_address
    cluster.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["batch", *args], catch_exceptions=False)


def _direct(image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """OpenCV Telea by one direct model call, converted back as documented (grey: mean)."""
    top = np.iinfo(image.dtype).max
    rgb = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image, 3, axis=-1)
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None] / top
    y = OpenCVInpainter("telea").inpaint(x, torch.from_numpy(holes)[None, None].float())[0].permute(1, 2, 0).numpy()
    if image.shape[-1] == 1:
        y = y.mean(axis=-1, keepdims=True, dtype=np.float32)
    out = image.copy()
    out[..., : y.shape[-1]] = np.rint(y * top).astype(image.dtype)
    return out


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    images = make_images(8, 32, 40)
    holes = make_masks(images)
    return write_archive(tmp_path / "photos.zarr", images), write_masks(tmp_path / "masks", holes), images, holes


def test_embedded_cluster_restores_every_dtype_and_channel_count_exactly(tmp_path: Path) -> None:
    images = {
        "rgb8": make_images(1, 30, 41, seed=1)["img00"],
        "grey8": make_images(1, 30, 41, channels=1, seed=2)["img00"],
        "rgba8": make_images(1, 30, 41, channels=4, seed=3)["img00"],
        "rgb16": make_images(1, 30, 41, dtype=np.uint16, seed=4)["img00"],
        "grey16": make_images(1, 30, 41, channels=1, dtype=np.uint16, seed=5)["img00"],
        "rgba16": make_images(1, 30, 41, channels=4, dtype=np.uint16, seed=6)["img00"],
        "wide": make_images(1, 20, 300, seed=7)["img00"],
    }
    holes = make_masks(images)
    archive = write_archive(tmp_path / "mixed.zarr", images, "group")
    masks = write_masks(tmp_path / "masks", holes)
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--workers", "1", "--threads-per-worker", "1")
    assert result.exit_code == 0, result.output
    out = open_archive(tmp_path / "mixed.restored.zarr")
    assert out.complete
    for key, image in images.items():
        restored = out.read(key)
        assert restored.dtype == image.dtype and restored.shape == image.shape
        assert np.array_equal(restored[~holes[key]], image[~holes[key]]), key  # known pixels exact
        if image.shape[-1] == 4:
            assert np.array_equal(restored[..., 3], image[..., 3])  # alpha untouched
        assert np.array_equal(restored, _direct(image, holes[key])), key  # telea takes "wide" whole
    assert out.attrs["method"] == "telea" and out.attrs["checkpoint_digest"] is None
    assert out.attrs["strategy"] == "whole" and "mask folder" in out.attrs["mask_source"]
    assert out.attrs["restore_version"] and out.attrs["input_archive"] == str(archive.resolve())
    evaluated = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "mixed.restored.zarr"), "--target", str(archive), "--masks", str(masks)])
    assert evaluated.exit_code == 0, evaluated.output


def test_scheduler_run_resume_and_overwrite(scheduler: str, small, tmp_path: Path, monkeypatch) -> None:
    archive, masks, images, holes = small
    log = tmp_path / "log.txt"
    monkeypatch.setitem(METHODS, "logging-telea", method("logging-telea", functools.partial(load_logging, str(log))))
    output = tmp_path / "out.zarr"
    args = ["--input", str(archive), "--masks", str(masks), "--output", str(output), "--method", "logging-telea", "--scheduler", scheduler]
    result = run(*args, "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert "restored 8 image(s)" in result.output
    out = open_archive(output)
    for key, image in images.items():
        assert np.array_equal(out.read(key), _direct(image, holes[key])), key
    assert sorted(logged_markers(log)) == list(range(8))
    before = {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()}
    again = run(*args)
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()} == before
    assert len(logged_markers(log)) == 8
    other = run(*[a if a != "logging-telea" else "ns" for a in args])
    assert other.exit_code == 2 and "method 'logging-telea'" in other.output and "--overwrite" in other.output
    redo = run(*args, "--overwrite")
    assert redo.exit_code == 0, redo.output
    assert len(logged_markers(log)) == 16
    assert open_archive(output).complete
    assert sorted(open_archive(archive).keys) == sorted(images)  # the input is untouched


def test_missing_masks_are_listed_and_nothing_is_created(small, tmp_path: Path) -> None:
    archive, masks, _, _ = small
    (masks / "img02.png").unlink()
    (masks / "img06.png").unlink()
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea")
    assert result.exit_code == 2
    assert "'img02', 'img06'" in result.output and "--skip-missing" in result.output
    assert not (tmp_path / "photos.restored.zarr").exists()


def test_skip_missing_restores_the_others(scheduler: str, small, tmp_path: Path) -> None:
    archive, masks, images, _ = small
    (masks / "img02.png").unlink()
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler, "--skip-missing")
    assert result.exit_code == 0, result.output
    assert "skipping 1 image(s) without a mask: 'img02'" in result.output
    assert open_archive(tmp_path / "photos.restored.zarr").done_keys() == set(images) - {"img02"}


def test_mask_size_mismatch_names_the_key_unless_resized(scheduler: str, small, tmp_path: Path) -> None:
    archive, masks, _, _ = small
    other_size = np.ones((16, 20), bool)
    other_size[0, 0] = False  # telea needs a known pixel to fill from
    write_masks(masks, {"img04": other_size})
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea")
    assert result.exit_code == 2 and "'img04'" in result.output and "16x20" in result.output
    assert not (tmp_path / "photos.restored.zarr").exists()
    resized = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler, "--resize-masks")
    assert resized.exit_code == 0, resized.output
    assert open_archive(tmp_path / "photos.restored.zarr").attrs["mask_options"]["resize"] is True


def test_tile_strategy_through_the_cli_equals_the_engine(scheduler: str, tmp_path: Path) -> None:
    from restore.inference.restoration import restore_images

    images = make_images(3, 40, 600)  # 3 tiles across each
    holes = make_masks(images)
    archive, masks = write_archive(tmp_path / "wide.zarr", images), write_masks(tmp_path / "masks", holes)
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler, "--strategy", "tile")
    assert result.exit_code == 0, result.output
    out = open_archive(tmp_path / "wide.restored.zarr")
    assert out.attrs["strategy"] == "tile" and out.attrs["strategy_options"] == {"size": 256, "overlap": 64}
    telea = OpenCVInpainter("telea")
    for key, image in images.items():
        assert np.array_equal(out.read(key), restore_images(telea, [image], [holes[key]], strategy="tile")[0])


def test_ensemble_through_the_cli_equals_the_engine_and_binds_the_resume(scheduler: str, small, tmp_path: Path) -> None:
    from restore.data.output_archive import OutputArchive
    from restore.inference.restoration import restore_images
    from restore.models.ensemble import SelfEnsemble

    archive, masks, images, holes = small
    output = tmp_path / "out.zarr"
    args = ["--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler, "--output", str(output)]
    result = run(*args, "--ensemble", "4")
    assert result.exit_code == 0, result.output
    out = open_archive(output)
    assert out.attrs["ensemble"] == 4
    ensemble = SelfEnsemble(OpenCVInpainter("telea"), 4)
    differs = 0
    for key, image in images.items():
        restored = out.read(key)
        assert np.array_equal(restored, restore_images(ensemble, [image], [holes[key]], strategy="whole")[0]), key
        differs += not np.array_equal(restored, _direct(image, holes[key]))
    assert differs > 0  # Telea marches in one order, so its mirrored views do differ
    scored = CliRunner().invoke(main, ["eval", "--pred", str(output), "--target", str(archive), "--masks", str(masks), "--json", str(tmp_path / "m.json")])
    assert scored.exit_code == 0, scored.output
    assert json.loads((tmp_path / "m.json").read_text())["ensemble"] == 4
    other = run(*args, "--ensemble", "2")
    assert other.exit_code == 2 and "was written with ensemble 4, this run uses 2" in other.output
    older = tmp_path / "older.zarr"  # written before outputs recorded the ensemble: one view
    OutputArchive.create(older, open_archive(archive), {"method": "telea"}).close()
    refused = run(*args[:-1], str(older), "--ensemble", "8")
    assert refused.exit_code == 2 and "was written with ensemble 1, this run uses 8" in refused.output
    assert run(*args[:-1], str(older)).exit_code == 0
    bad = run(*args, "--ensemble", "3")
    assert bad.exit_code == 2 and "--ensemble" in bad.output


def test_blend_poisson_through_the_cli_blends_csa_and_binds_the_resume(scheduler: str, tmp_path: Path) -> None:
    from restore.data.output_archive import OutputArchive
    from restore.inference.poisson import PoissonBlended
    from restore.inference.restoration import restore_images
    from restore.models.registry import load_inpainter

    images = make_images(3, 24, 32, seed=8)
    holes = make_masks(images, seed=3)
    archive, masks = write_archive(tmp_path / "p.zarr", images), write_masks(tmp_path / "masks", holes)
    # The shipped CSA: a trained network's raw output is off at the known pixels (an untrained
    # one with a push-pull prefill returns them exactly, and blending would change nothing).
    args = ["--input", str(archive), "--masks", str(masks), "--method", "csa", "--scheduler", scheduler]
    output, plain = tmp_path / "blended.zarr", tmp_path / "plain.zarr"
    result = run(*args, "--output", str(output), "--blend", "poisson")
    assert result.exit_code == 0, result.output
    assert run(*args, "--output", str(plain)).exit_code == 0
    out, unblended = open_archive(output), open_archive(plain)
    assert out.attrs["blend"] == "poisson" and unblended.attrs["blend"] == "none"
    engine = PoissonBlended(load_inpainter("csa"))
    for key, image in images.items():
        restored, hole = out.read(key), holes[key]
        assert np.array_equal(restored[~hole], image[~hole]), key  # known pixels exact
        assert not np.array_equal(restored[hole], unblended.read(key)[hole]), key
        with torch_threads(1):  # as the worker
            expected = restore_images(engine, [image], [hole], strategy="subsample")[0]
        assert np.abs(restored.astype(int) - expected.astype(int)).max() <= 1, key  # bf16 and threads may differ by an LSB

    other = run(*args, "--output", str(output))
    assert other.exit_code == 2 and "was written with blend 'poisson', this run uses 'none'" in other.output
    older = tmp_path / "older.zarr"  # written before outputs recorded the blend: none
    OutputArchive.create(older, open_archive(archive), {"method": "csa"}).close()
    refused = run(*args, "--output", str(older), "--blend", "poisson")
    assert refused.exit_code == 2 and "was written with blend 'none', this run uses 'poisson'" in refused.output
    assert "nothing to do" in run(*args, "--output", str(output), "--blend", "poisson").output


def test_blend_poisson_needs_a_network_method(small, tmp_path: Path) -> None:
    archive, masks, _, _ = small
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--blend", "poisson")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == ["Error: Invalid value for '--blend': method 'telea' has no network output to blend; "
                      "--blend poisson needs a network method"]
    unknown = run("--input", str(archive), "--masks", str(masks), "--blend", "laplace")
    assert unknown.exit_code == 2 and "'--blend'" in unknown.output
    assert not (tmp_path / "photos.restored.zarr").exists()


def test_an_unreadable_or_foreign_checkpoint_is_refused_before_any_work(small, tmp_path: Path) -> None:
    from restore.checkpoint import save_checkpoint

    archive, masks, _, _ = small
    (tmp_path / "empty.pt").write_bytes(b"")
    foreign = tmp_path / "deepfill.pt"
    save_checkpoint({"method": "deepfill", "step": 1, "config": {}, "models": {}, "optimizers": {}, "metadata": {}}, foreign)
    for path, message in [(tmp_path / "empty.pt", "empty or truncated file"), (foreign, "is a 'deepfill' checkpoint, not 'csa'")]:
        result = run("--input", str(archive), "--masks", str(masks), "--checkpoint", str(path))
        assert result.exit_code == 2 and "'--checkpoint'" in result.output and message in result.output, result.output
        assert "restoring" not in result.output
    assert not (tmp_path / "photos.restored.zarr").exists()


def test_usage_errors_exit_2(small, tmp_path: Path) -> None:
    archive, masks, _, _ = small
    both = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2")
    assert both.exit_code == 2 and "--workers" in both.output
    weights = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--checkpoint", str(masks / "img00.png"))
    assert weights.exit_code == 2 and "uses no weights" in weights.output
    unknown = run("--input", str(archive), "--masks", str(masks), "--method", "nonesuch")
    assert unknown.exit_code == 2 and "'telea'" in unknown.output
    assert not (tmp_path / "photos.restored.zarr").exists()


def test_images_over_a_methods_size_limit_are_refused_unless_allowed(tmp_path: Path, monkeypatch) -> None:
    """FSR and shift-map take hours on huge images: ``restore batch`` refuses them whole, in one line naming the way out."""
    import dataclasses

    from restore.pipelines.batch_plan import prepare_batch

    images = {**make_images(1, 24, 24, seed=1), "big": make_images(1, 40, 41, seed=2)["img00"]}
    archive, masks = write_archive(tmp_path / "photos.zarr", images, "group"), write_masks(tmp_path / "masks", make_masks(images))
    monkeypatch.setitem(METHODS, "fsr", dataclasses.replace(METHODS["fsr"], max_pixels=30 * 30))
    refused = run("--input", str(archive), "--masks", str(masks), "--method", "fsr")
    assert refused.exit_code == 2 and not (tmp_path / "photos.restored.zarr").exists()
    message = refused.output.strip().splitlines()[-1]
    assert "1 image(s) are over fsr's limit of 30² (0.0009 MP)" in message and "big: 40x41" in message
    assert "--allow-large" in message and "--strategy tile" in message
    for options in ({"allow_large": True}, {"strategy": "tile"}, {"strategy": "subsample"}):
        plan = prepare_batch(archive, masks, method="fsr", **{"strategy": "whole", **options})
        assert plan.todo == ["img00", "big"]
        plan.close()
    with pytest.raises(ValueError, match="--allow-large"):
        prepare_batch(archive, masks, method="fsr", strategy="whole")


def test_cuda_without_a_gpu_is_a_usage_error(small, tmp_path: Path, monkeypatch) -> None:
    archive, masks, _, _ = small
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cuda = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--device", "cuda")
    assert cuda.exit_code == 2 and "no CUDA device" in cuda.output and "--device" in cuda.output
    assert not (tmp_path / "photos.restored.zarr").exists()


def test_empty_archive_and_output_on_input_are_refused(small, tmp_path: Path) -> None:
    import zarr

    archive, masks, _, _ = small
    empty = zarr.open_group(tmp_path / "empty.zarr", mode="w")
    empty.create_array("images", shape=(0, 8, 8, 3), dtype="uint8", chunks=(1, 8, 8, 3))
    empty.attrs["keys"] = []
    result = run("--input", str(tmp_path / "empty.zarr"), "--masks", str(masks), "--method", "telea")
    assert result.exit_code == 2 and "empty" in result.output and "--input" in result.output
    same = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--output", str(archive))
    assert same.exit_code == 2 and "--output" in same.output


def test_partly_written_input_and_another_input_on_resume_are_refused(small, tmp_path: Path) -> None:
    import shutil

    from restore.data.output_archive import OutputArchive

    archive, masks, _, _ = small
    OutputArchive.create(tmp_path / "partial.zarr", open_archive(archive), {"method": "telea"}).close()
    partial = run("--input", str(tmp_path / "partial.zarr"), "--masks", str(masks), "--method", "telea", "--output", str(tmp_path / "p2.zarr"))
    assert partial.exit_code == 2 and "only partly written (0 of 8 images complete; not " in partial.output and "--input" in partial.output
    assert not (tmp_path / "p2.zarr").exists()

    output = tmp_path / "out.zarr"
    assert run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--output", str(output)).exit_code == 0
    twin = shutil.copytree(archive, tmp_path / "twin.zarr")  # same keys and shapes, another input
    other = run("--input", str(twin), "--masks", str(masks), "--method", "telea", "--output", str(output))
    assert other.exit_code == 2 and "was written with input_archive" in other.output and "--overwrite" in other.output


def test_unreachable_scheduler_is_a_clear_error_within_30_s(small, tmp_path: Path) -> None:
    archive, masks, _, _ = small
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 30
    assert result.exit_code == 1
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in result.output
    assert len(result.output.strip().splitlines()) <= 2  # the "restoring ..." note and the error
    assert not (tmp_path / "photos.restored.zarr").exists()
    bad = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", "tcp://host:port")
    assert bad.exit_code == 2 and "--scheduler" in bad.output


def test_csa_without_a_shipped_checkpoint_says_so(small, tmp_path: Path, monkeypatch) -> None:
    archive, masks, _, _ = small
    monkeypatch.setattr("restore.models.registry.WEIGHTS_DIR", tmp_path / "no-weights")
    result = run("--input", str(archive), "--masks", str(masks))
    assert result.exit_code == 2
    assert "no shipped checkpoint" in result.output and "--checkpoint" in result.output
    assert not (tmp_path / "photos.restored.zarr").exists()


def test_a_failing_task_ends_the_run_with_its_key_and_the_rest_written(scheduler: str, small, tmp_path: Path, monkeypatch) -> None:
    archive, masks, images, holes = small
    monkeypatch.setitem(METHODS, "failing", method("failing", functools.partial(load_failing, None)))
    images["img03"][0, 0, 0] = POISON
    archive = write_archive(tmp_path / "poisoned.zarr", images)
    result = run("--input", str(archive), "--masks", str(masks), "--method", "failing", "--scheduler", scheduler, "--batch-size", "4")
    assert result.exit_code == 1
    assert "1 image(s) failed: 'img03'" in result.output and "poisoned image" in result.output
    out = open_archive(tmp_path / "poisoned.restored.zarr")
    assert out.done_keys() == set(images) - {"img03"}
    for key in out.done_keys():
        assert np.array_equal(out.read(key), _direct(images[key], holes[key]))


def _done(path: Path) -> set[str]:
    try:
        return open_archive(path).done_keys()
    except Exception:  # not created yet
        return set()


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(scheduler: str, tmp_path: Path, monkeypatch) -> None:
    images = make_images(16, 24, 32)
    holes = make_masks(images)
    archive = write_archive(tmp_path / "in.zarr", images)
    masks = write_masks(tmp_path / "masks", holes)
    output = tmp_path / "in.restored.zarr"
    first_log = tmp_path / "first.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
           "RESTORE_TEST_LOG": str(first_log), "RESTORE_TEST_DELAY": "0.4", "OMP_NUM_THREADS": "1"}  # fmt: skip
    command = [sys.executable, "-c", "from pipelines.batch_fakes import cli_main; cli_main()", "batch",
               "--input", str(archive), "--masks", str(masks), "--method", "slow-telea",
               "--workers", "1", "--threads-per-worker", "1", "--batch-size", "1"]  # fmt: skip
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(_done(output)) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.stdout.read().decode()
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the client, the nanny and the worker at once
        process.wait()
    done_before = _done(output)
    assert 3 <= len(done_before) < len(images)
    killed = open_archive(output)
    for key in done_before:  # whatever is recorded done is complete and right
        assert np.array_equal(killed.read(key), _direct(images[key], holes[key])), key

    log = tmp_path / "rerun.txt"
    monkeypatch.setitem(METHODS, "slow-telea", method("slow-telea", functools.partial(load_logging, str(log))))
    result = run("--input", str(archive), "--masks", str(masks), "--method", "slow-telea", "--scheduler", scheduler)
    assert result.exit_code == 0, result.output
    assert sorted(logged_markers(log)) == sorted(int(key[3:]) for key in set(images) - done_before)
    out = open_archive(output)
    assert out.complete
    for key, image in images.items():
        assert np.array_equal(out.read(key), _direct(image, holes[key])), key


@pytest.mark.slow
def test_an_8192_photo_stays_under_4_gib_for_the_whole_process_tree(tmp_path: Path) -> None:
    """Measured on the 2-core EPYC: 3.3 GiB (5.9 GiB before the OpenCV and write-back paths
    stopped making whole-image float copies). What remains is the model-space float32 image
    and mask (1.1 GiB for 8192² RGB), the restored float32 image, and OpenCV's own buffers."""
    import cv2
    import psutil

    side = 8192
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    image = np.stack([yy, xx, (yy + xx) / 2], axis=-1) * 200 + np.random.default_rng(0).integers(0, 50, (side, side, 3))
    image = image.astype(np.uint8)
    del yy, xx
    archive = write_archive(tmp_path / "big.zarr", {"big": image}, "group")
    hole = np.zeros((side, side), np.uint8)
    hole[1000:1400, 2000:2600] = 255
    hole[5000:5100, :] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), hole)
    command = [sys.executable, "-m", "restore", "batch", "--input", str(archive), "--masks", str(tmp_path / "mask.png"),
               "--method", "telea", "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    assert process.returncode == 0, process.stdout.read().decode()
    assert peak < 4 * 2**30, f"peak RSS of the process tree {peak / 2**30:.2f} GiB"
    restored = open_archive(tmp_path / "big.restored.zarr").read("big")
    known = hole == 0
    assert np.array_equal(restored[known], image[known])
    assert not np.array_equal(restored[~known], image[~known])


def test_telea_equals_opencvs_own_result_on_real_photos_of_any_size(tmp_path: Path) -> None:
    """Classical methods take images of any size whole (no sub-sampling): the output is cv2.inpaint's."""
    import cv2
    from helpers import shared_data

    from restore.data.images import read_image, write_image

    kodak = shared_data("eval", "kodak24")
    photos = tmp_path / "photos"
    masks = tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    expected = {}
    for path in sorted(kodak.glob("*.png"))[:3]:
        image = read_image(path)
        hole = np.zeros(image.shape[:2], np.uint8)
        for _ in range(6):
            y, x = rng.integers(0, image.shape[0] - 60), rng.integers(0, image.shape[1] - 60)
            hole[y : y + rng.integers(8, 60), x : x + rng.integers(8, 60)] = 255
        write_image(photos / path.name, image)
        write_image(masks / path.name, hole[..., None])
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        expected[path.stem] = cv2.inpaint(bgr, hole, 3, cv2.INPAINT_TELEA)[..., ::-1]
    assert CliRunner().invoke(main, ["ingest", str(photos), str(tmp_path / "in.zarr")]).exit_code == 0
    result = run("--input", str(tmp_path / "in.zarr"), "--masks", str(masks), "--method", "telea", "--workers", "1")
    assert result.exit_code == 0, result.output
    out = open_archive(tmp_path / "in.restored.zarr")
    assert out.attrs["strategy"] == "whole"
    for key, want in expected.items():
        assert max(want.shape[:2]) > 256
        assert np.array_equal(out.read(key), want), key


def test_empty_and_all_hole_masks_with_csa(tmp_path: Path) -> None:
    """An empty mask returns the image unchanged; CSA fills an all-hole mask with a full, valid image."""
    images = make_images(2, 24, 24, seed=5)
    holes = {"img00": np.zeros((24, 24), bool), "img01": np.ones((24, 24), bool)}
    archive = write_archive(tmp_path / "p.zarr", images)
    masks = write_masks(tmp_path / "masks", holes)
    checkpoint = tiny_csa_checkpoint(tmp_path / "tiny.pt")
    result = run("--input", str(archive), "--masks", str(masks), "--method", "csa", "--workers", "1", "--checkpoint", str(checkpoint))
    assert result.exit_code == 0, result.output
    out = open_archive(tmp_path / "p.restored.zarr")
    assert np.array_equal(out.read("img00"), images["img00"])
    filled = out.read("img01")
    assert filled.shape == images["img01"].shape and filled.dtype == np.uint8


@pytest.mark.parametrize("method_name", ["telea", "ns"])
def test_an_all_hole_mask_fails_that_image_with_classical_methods(tmp_path: Path, method_name: str) -> None:
    """Telea and NS have no known pixel to fill an all-hole image from: it is reported failed, not written."""
    images = make_images(3, 24, 24, seed=5)
    holes = {"img00": np.zeros((24, 24), bool), "img01": np.ones((24, 24), bool), "img02": make_masks(images)["img02"]}
    archive = write_archive(tmp_path / "p.zarr", images)
    masks = write_masks(tmp_path / "masks", holes)
    result = run("--input", str(archive), "--masks", str(masks), "--method", method_name, "--workers", "1")
    assert result.exit_code == 1, result.output
    assert "1 image(s) failed: 'img01'" in result.output
    assert f"ValueError: {method_name}: no known pixel to fill the hole from" in result.output
    out = open_archive(tmp_path / "p.restored.zarr")
    assert out.done_keys() == {"img00", "img02"} and not out.complete
    assert np.array_equal(out.read("img00"), images["img00"])


def test_an_interrupted_run_says_how_far_it_got_and_exits_130(scheduler: str, small, tmp_path: Path, monkeypatch) -> None:
    import restore.pipelines.tiled_inference as engine

    archive, masks, images, _ = small
    real_execute = engine.execute

    def interrupted_after_one(plan, client, *, gpu, progress):
        def first_then_stop(count: int) -> None:
            progress(count)
            raise KeyboardInterrupt

        return real_execute(plan, client, gpu=gpu, progress=first_then_stop)

    monkeypatch.setattr(engine, "execute", interrupted_after_one)
    result = CliRunner().invoke(main, ["batch", "--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler, "--batch-size", "1"])
    assert result.exit_code == 130
    done = open_archive(tmp_path / "photos.restored.zarr").done_keys()
    assert 1 <= len(done) < len(images)
    assert f"interrupted: {len(done)} of {len(images)} image(s) are restored in" in result.stderr and "the same command resumes" in result.stderr
    monkeypatch.setattr(engine, "execute", real_execute)
    assert run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler).exit_code == 0
    assert open_archive(tmp_path / "photos.restored.zarr").done_keys() == set(images)


def test_embedded_workers_are_started_ignoring_ctrl_c() -> None:
    from restore.pipelines.cluster import _workers_ignore_sigint

    # pytest started in the background inherits SIGINT ignored: start from the interactive default
    launched_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        probe = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"]
        with _workers_ignore_sigint():
            inside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
        assert inside == "True"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "False"
    finally:
        signal.signal(signal.SIGINT, launched_with)


def test_resume_refuses_an_input_or_masks_rewritten_since(scheduler: str, small, tmp_path: Path) -> None:
    archive, masks, images, _ = small
    args = ["--input", str(archive), "--masks", str(masks), "--method", "telea", "--scheduler", scheduler]
    kept = (masks / "img05.png").read_bytes()
    (masks / "img05.png").unlink()
    assert run(*args, "--skip-missing").exit_code == 0
    (masks / "img05.png").write_bytes(kept)  # the documented way to finish: add the missing masks, run again
    finished = run(*args)
    assert finished.exit_code == 0 and "7 of 8 image(s) already restored" in finished.output
    assert "nothing to do" in run(*args).output

    mask_file = masks / "img03.png"
    later = mask_file.stat().st_mtime_ns + 10**9
    os.utime(mask_file, ns=(later, later))  # as `restore masks generate --overwrite` would leave it
    result = run(*args)
    assert result.exit_code == 2 and "the mask of 'img03' changed since it was restored into" in result.output
    assert "--overwrite" in result.output
    assert run(*args, "--overwrite").exit_code == 0
    assert "nothing to do" in run(*args).output

    chunk = next(path for path in sorted(archive.rglob("*")) if path.is_file() and path.name != "zarr.json")
    later = chunk.stat().st_mtime_ns + 10**9
    os.utime(chunk, ns=(later, later))
    result = run(*args)
    assert result.exit_code == 2 and "the input archive's files changed since" in result.output
    assert open_archive(tmp_path / "photos.restored.zarr").done_keys() == set(images)


def test_an_output_folder_that_is_no_archive_and_masks_for_no_image_are_refused(small, tmp_path: Path) -> None:
    archive, masks, _, _ = small
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes((masks / "img00.png").read_bytes())
    result = run("--input", str(archive), "--masks", str(masks), "--method", "telea", "--output", str(photos))
    assert result.exit_code == 2 and "exists and is not a zarr archive" in result.output and "restore ingest" not in result.output
    assert sorted(p.name for p in photos.iterdir()) == ["a.png"]

    unrelated = tmp_path / "other-masks"
    unrelated.mkdir()
    (unrelated / "zzz.png").write_bytes((masks / "img00.png").read_bytes())
    result = run("--input", str(archive), "--masks", str(unrelated), "--method", "telea", "--skip-missing")
    assert result.exit_code == 2 and "no mask for any of the 8 image(s)" in result.output
    assert not (tmp_path / "photos.restored.zarr").exists()
