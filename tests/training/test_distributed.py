"""Data-parallel training: N processes at batch B follow one process at batch N·B."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restore.checkpoint import load_checkpoint
from restore.cli import main
from restore.data.datasets import TrainingBatches
from restore.data.images import write_image
from restore.pipelines.distributed_training import TrainLaunchError, run_ranks
from restore.training.distributed import Ranks, ranks_from_environment

#: L1 only: its batch mean is the mean of the ranks' means (the relativistic GAN loss compares
#: each sample with its own rank's batch average, so with it the ranks only approximate one process).
TINY = ["--size", "32", "--set", "width=4", "--set", "max_channels=8", "--set", "depth=5", "--set", "consistency_weight=0",
        "--set", "adversarial_weight=0", "--holdout", "0", "--checkpoint-every", "1", "--sample-every", "0", "--eval-every", "0",
        "--warmup", "0", "--threads", "1", "--bf16", "off", "--device", "cpu"]


def _photos(count: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8) for i in range(count)]


def test_rank_shards_of_a_step_are_the_single_process_batch() -> None:
    whole = TrainingBatches(_photos(), size=32, batch_size=6, mask_kinds=("box", "freeform"), seed=4)
    shards = [TrainingBatches(_photos(), size=32, batch_size=2, mask_kinds=("box", "freeform"), seed=4, rank=r, world_size=3) for r in range(3)]
    for step in (0, 7):
        images, masks = whole.batch(step)
        parts = [shard.batch(step) for shard in shards]
        assert torch.equal(images, torch.cat([p[0] for p in parts])) and torch.equal(masks, torch.cat([p[1] for p in parts]))
    with pytest.raises(ValueError, match="outside world size"):
        TrainingBatches(_photos(), size=32, batch_size=2, rank=2, world_size=2)


def test_ranks_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert ranks_from_environment() == Ranks() and Ranks().is_main and not Ranks().distributed
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert ranks_from_environment() == Ranks(rank=3, world_size=4, local_rank=1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(RuntimeError, match="outside WORLD_SIZE"):
        ranks_from_environment()


def test_two_processes_follow_one_process_with_twice_the_batch(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(_photos()):
        write_image(photos / f"p{i}.png", image)
    common = ["-q", "train", "--method", "csa", "--data", str(photos), "--iters", "3", *TINY]
    single = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "one"), "--batch-size", "4"])
    assert single.exit_code == 0, single.output
    pair = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "two"), "--batch-size", "2", "--nprocs", "2"])
    assert pair.exit_code == 0, pair.output
    one, two = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert one["step"] == two["step"] == 3 and two["metadata"]["processes"] == 2
    start = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "zero"), "--batch-size", "4", "--iters", "1"])
    assert start.exit_code == 0, start.output
    first = load_checkpoint(tmp_path / "zero" / "last.pt")["models"]["generator"]
    for name in ("generator", "generator_ema"):
        for key, value in one["models"][name].items():
            if value.is_floating_point():
                torch.testing.assert_close(two["models"][name][key], value, rtol=1e-4, atol=1e-6, msg=f"{name}.{key}")
    assert any(not torch.equal(first[key], value) for key, value in one["models"]["generator"].items())  # training moved them

    resume = ["-q", "train", "--method", "csa", "--data", str(photos), "--iters", "4", "--resume", "--threads", "1", "--device", "cpu"]
    resumed = CliRunner().invoke(main, [*resume, "--out", str(tmp_path / "two"), "--nprocs", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(tmp_path / "two" / "last.pt")["step"] == 4
    other = CliRunner().invoke(main, [*resume, "--out", str(tmp_path / "one"), "--nprocs", "2"])
    assert other.exit_code == 2 and "trained by 1 process(es), not 2: resume it with --nprocs 1" in other.output


def test_a_failing_rank_ends_the_run_with_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    result = CliRunner().invoke(main, ["-q", "train", "--method", "csa", "--data", str(empty), "--out", str(tmp_path / "run"),
                                       "--iters", "1", "--nprocs", "2", *TINY])
    assert result.exit_code == 1 and "a training process failed" in result.output and "no images found" in result.output


def test_ranks_on_the_workers_of_a_dask_cluster(tmp_path: Path) -> None:
    """--scheduler puts one rank on each worker; the result is the --nprocs result."""
    from distributed import LocalCluster

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(_photos()):
        write_image(photos / f"p{i}.png", image)
    common = ["-q", "train", "--method", "csa", "--data", str(photos), "--iters", "2", "--batch-size", "2", *TINY]
    local = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "local"), "--nprocs", "2"])
    assert local.exit_code == 0, local.output
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40) as cluster:
        result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "dask"), "--nprocs", "2", "--scheduler", cluster.scheduler_address])
        assert result.exit_code == 0, result.output
        empty = tmp_path / "empty"
        empty.mkdir()
        failing = CliRunner().invoke(main, [*[a if a != str(photos) else str(empty) for a in common], "--out", str(tmp_path / "none"),
                                            "--nprocs", "2", "--scheduler", cluster.scheduler_address])
        assert failing.exit_code == 1 and "failed: Invalid value for '--data': no images found" in failing.output
        with pytest.raises(TrainLaunchError, match="3 ranks need 3 workers; the cluster at .* has 2"):
            run_ranks(print, None, cluster.scheduler_address, 3, timeout=1)
    ours, theirs = load_checkpoint(tmp_path / "dask" / "last.pt"), load_checkpoint(tmp_path / "local" / "last.pt")
    assert ours["step"] == 2 and ours["metadata"]["processes"] == 2
    for key, value in theirs["models"]["generator"].items():
        torch.testing.assert_close(ours["models"]["generator"][key], value, rtol=1e-5, atol=1e-7, msg=key)
