"""The Dask pipeline on a real LocalCluster (one spawned worker, shared by the module)."""

from __future__ import annotations

import functools
from pathlib import Path

import dask
import numpy as np
import pytest
import torch
import zarr
from helpers import torch_threads
from pipelines.batch_fakes import (
    POISON,
    load_crashing,
    load_failing,
    load_logging,
    logged_loads,
    logged_markers,
    make_images,
    make_masks,
    method,
    tiny_csa_checkpoint,
    write_archive,
    write_masks,
)

from restore.data.archive import open_archive
from restore.data.output_archive import OutputArchive
from restore.inference import subsample
from restore.models.classical import OpenCVInpainter
from restore.models.csa import load_csa_inpainter
from restore.models.registry import METHODS
from restore.pipelines.batch_plan import plan_units
from restore.pipelines.tiled_inference import PlanError, execute, prepare_batch


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 2}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40)
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def _direct(inpainter, image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """One ``inpaint`` call on the whole image (no sub-sampling), converted back to uint8/16."""
    top = np.iinfo(image.dtype).max
    rgb = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image, 3, axis=-1)
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None] / top
    m = torch.from_numpy(holes)[None, None].float()
    y = inpainter.inpaint(x, m)[0].permute(1, 2, 0).numpy()
    if image.shape[-1] == 1:
        y = y.mean(axis=-1, keepdims=True, dtype=np.float32)
    out = image.copy()
    out[..., : y.shape[-1]] = np.rint(y * top).astype(image.dtype)
    return out


def _direct_subsampled(inpainter, image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Split into polyphase sub-images, one ``inpaint`` call each, merge, keep known pixels."""
    k = subsample.factors(*holes.shape)
    subs, mask_subs = subsample.split(image, k), subsample.split(holes, k)
    restored = np.empty_like(subs)
    for a in range(k[0]):
        for b in range(k[1]):
            restored[a, b] = _direct(inpainter, subs[a, b], mask_subs[a, b])
    merged = subsample.merge(restored, holes.shape)
    return np.where(holes[..., None], merged, image)


def _run(client, archive: Path, masks: Path, **kwargs):
    plan = prepare_batch(archive, masks, threads=1, **kwargs)
    return plan, execute(plan, client)


@pytest.mark.parametrize("layout", ["stack", "group"])
def test_output_equals_direct_telea_calls_and_the_model_loads_once(client, tmp_path: Path, monkeypatch, layout: str) -> None:
    log = tmp_path / "log.txt"
    monkeypatch.setitem(METHODS, "logging-telea", method("logging-telea", functools.partial(load_logging, str(log))))
    images = make_images(10, 40, 56)
    holes = make_masks(images)
    archive = write_archive(tmp_path / "in.zarr", images, layout)
    masks = write_masks(tmp_path / "masks", holes)
    plan, report = _run(client, archive, masks, method="logging-telea", batch_size=4)
    assert report.ok and sorted(report.computed) == sorted(images)
    assert plan_units(list(images), {k: (40, 56) for k in images}, 4, "subsample") == [
        tuple(list(images)[i : i + 4]) for i in (0, 4, 8)
    ]
    out = open_archive(tmp_path / "in.restored.zarr")
    assert out.complete and out.layout == layout and out.attrs["method"] == "logging-telea"
    telea = OpenCVInpainter("telea")
    for key, image in images.items():
        assert np.array_equal(out.read(key), _direct(telea, image, holes[key])), key
    assert len(logged_loads(log)) == 1  # once per worker, not per task
    assert sorted(logged_markers(log)) == list(range(10))


def test_mixed_sizes_grey_alpha_16_bit_with_a_tiny_csa_equal_direct_calls(client, tmp_path: Path) -> None:
    checkpoint = tiny_csa_checkpoint(tmp_path / "csa.pt")
    images = {
        **make_images(3, 40, 56, seed=1),
        "grey16": make_images(1, 33, 70, channels=1, dtype=np.uint16, seed=2)["img00"],
        "rgba": make_images(1, 40, 56, channels=4, seed=3)["img00"],
        "large": make_images(1, 300, 270, seed=4)["img00"],  # sub-sampled 2 x 2
    }
    holes = make_masks(images)
    archive = write_archive(tmp_path / "mixed.zarr", images, "group")
    masks = write_masks(tmp_path / "masks", holes)
    _, report = _run(client, archive, masks, method="csa", checkpoint=checkpoint, batch_size=3)
    assert report.ok
    out = open_archive(tmp_path / "mixed.restored.zarr")
    csa = load_csa_inpainter(checkpoint)
    for key, image in images.items():
        with torch_threads(1):  # as on the worker: under bf16 autocast, sums depend on the thread count
            expected = _direct_subsampled(csa, image, holes[key]) if key == "large" else _direct(csa, image, holes[key])
        restored = out.read(key)
        assert restored.dtype == image.dtype and restored.shape == image.shape
        assert np.array_equal(restored, expected), key
        assert np.array_equal(restored[~holes[key]], image[~holes[key]])
        assert not np.array_equal(restored[holes[key]], image[holes[key]])
    assert out.attrs["checkpoint_digest"].startswith("sha256:")


def test_resume_after_a_crash_computes_only_what_is_missing(client, tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "log.txt"
    monkeypatch.setitem(METHODS, "logging-telea", method("logging-telea", functools.partial(load_logging, str(log))))
    images = make_images(12, 32, 48)
    holes = make_masks(images)
    archive = write_archive(tmp_path / "in.zarr", images)
    masks = write_masks(tmp_path / "masks", holes)
    telea = OpenCVInpainter("telea")
    expected = {key: _direct(telea, image, holes[key]) for key, image in images.items()}
    # The state a killed run leaves: some images done, one written but not recorded, the rest empty.
    plan = prepare_batch(archive, masks, method="logging-telea")
    writer = OutputArchive.create(plan.output, plan.archive, plan.attrs)
    done_before = ["img01", "img02", "img07"]
    writer.write_many({key: expected[key] for key in done_before})
    writer.close()
    zarr.open_group(plan.output, mode="r+")["images"][5] = np.full((32, 48, 3), 7, np.uint8)  # data landed, done flag not
    plan, report = _run(client, archive, masks, method="logging-telea", batch_size=2)
    assert report.ok and report.already_done == 3
    todo = sorted(set(images) - set(done_before))
    assert sorted(report.computed) == todo
    assert sorted(logged_markers(log)) == sorted(int(key[3:]) for key in todo)  # nothing done recomputed
    out = open_archive(plan.output)
    assert out.complete
    for key in images:
        assert np.array_equal(out.read(key), expected[key]), key


def test_a_failing_image_is_isolated_listed_and_the_others_are_written(client, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(METHODS, "failing", method("failing", functools.partial(load_failing, None)))
    images = make_images(8, 24, 24)
    images["img05"][0, 0, 0] = POISON
    archive = write_archive(tmp_path / "in.zarr", images)
    masks = write_masks(tmp_path / "masks", make_masks(images))
    plan, report = _run(client, archive, masks, method="failing", batch_size=4)
    assert list(report.failed) == ["img05"] and "poisoned image" in report.failed["img05"]
    assert sorted(report.computed) == sorted(set(images) - {"img05"})
    out = open_archive(plan.output)
    assert out.done_keys() == set(images) - {"img05"}


def test_a_run_where_everything_fails_stops_early(client, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(METHODS, "failing", method("failing", functools.partial(load_failing, None)))
    images = make_images(12, 16, 16)
    for image in images.values():
        image[0, 0, 0] = POISON
    archive = write_archive(tmp_path / "in.zarr", images)
    masks = write_masks(tmp_path / "masks", make_masks(images))
    plan, report = _run(client, archive, masks, method="failing", batch_size=1)
    assert report.aborted and 3 <= len(report.failed) < 12 and not report.computed
    assert not open_archive(plan.output).done_keys()


def test_validation_happens_before_any_work(client, tmp_path: Path) -> None:
    images = make_images(4, 20, 20)
    holes = make_masks(images)
    archive = write_archive(tmp_path / "in.zarr", images)
    masks = write_masks(tmp_path / "masks", {k: v for k, v in holes.items() if k not in ("img01", "img03")})
    with pytest.raises(PlanError, match=r"no mask for 2 of 4 .*'img01', 'img03'") as caught:
        prepare_batch(archive, masks, method="telea")
    assert caught.value.option == "--masks"
    assert not (tmp_path / "in.restored.zarr").exists()
    plan, report = _run(client, archive, masks, method="telea", skip_missing=True)
    assert report.skipped == ["img01", "img03"] and sorted(report.computed) == ["img00", "img02"]
    wrong = write_masks(tmp_path / "wrong", {**holes, "img02": np.zeros((21, 20), bool)})
    with pytest.raises(PlanError, match=r"img02.*21x20"):
        prepare_batch(archive, wrong, method="telea", output=tmp_path / "other.zarr")
    assert not (tmp_path / "other.zarr").exists()


def test_a_worker_that_dies_is_replaced_and_its_task_retried(client, tmp_path: Path, monkeypatch) -> None:
    log, flag = tmp_path / "log.txt", tmp_path / "crashed"
    monkeypatch.setitem(METHODS, "crashing", method("crashing", functools.partial(load_crashing, str(log), str(flag))))
    images = make_images(6, 24, 24)
    images["img03"][0, 0, 0] = POISON
    archive = write_archive(tmp_path / "in.zarr", images)
    holes = make_masks(images)
    masks = write_masks(tmp_path / "masks", holes)
    plan, report = _run(client, archive, masks, method="crashing", batch_size=1)
    assert flag.exists()  # the worker process did die
    assert report.ok and sorted(report.computed) == sorted(images)
    assert len(set(logged_loads(log))) == 2  # the replacement worker loaded the model again
    out = open_archive(plan.output)
    telea = OpenCVInpainter("telea")
    for key, image in images.items():
        assert np.array_equal(out.read(key), _direct(telea, image, holes[key])), key
