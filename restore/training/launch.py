"""Data-parallel training in N local processes (``restore train --nprocs N``)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

from restore.training.job import JobError, TrainJob, train_process


class LaunchError(RuntimeError):
    """A rank failed or died (one line naming why)."""


def spawn(job: TrainJob, nprocs: int) -> None:
    """Run ``job`` in ``nprocs`` local processes (one per GPU); a rank that fails ends them all.

    On a CPU each process gets ``usable cores / nprocs`` torch threads unless ``job.threads`` says.

    Raises:
        JobError: ``--nprocs`` cannot be honoured (under torchrun; more processes than GPUs).
        LaunchError: a rank failed.
    """
    import torch.multiprocessing as mp

    from restore.hardware import DeviceError, resolve_device, usable_cores

    if "WORLD_SIZE" in os.environ:
        raise JobError("--nprocs starts its own processes; under torchrun leave it out", "--nprocs")
    try:
        device = resolve_device(job.device)
    except DeviceError as error:
        raise JobError(str(error), "--device") from None
    if device == "cuda":
        import torch

        if torch.cuda.device_count() < nprocs:
            raise JobError(f"{nprocs} processes need {nprocs} GPUs, this machine has {torch.cuda.device_count()}", "--nprocs")
    elif job.threads is None:
        job = replace(job, threads=max(1, usable_cores() // nprocs))
    with tempfile.TemporaryDirectory(prefix="restore-train-") as rendezvous:  # a file, not a port: nothing to race for
        try:
            mp.spawn(_rank_main, args=(nprocs, f"file://{rendezvous}/store", job), nprocs=nprocs, join=True)
        except mp.ProcessRaisedException as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise LaunchError(f"a training process failed: {lines[-1].strip() if lines else error}") from None
        except mp.ProcessExitedException as error:
            raise LaunchError(f"a training process died: {error}") from None


def _rank_main(local_rank: int, world_size: int, init_method: str, job: TrainJob) -> None:
    """Entry point of one process started by :func:`spawn`."""
    from restore.training.distributed import Ranks

    os.environ.update(RANK=str(local_rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank))
    try:
        train_process(job, Ranks(rank=local_rank, world_size=world_size, local_rank=local_rank), init_method=init_method)
    except JobError as error:  # the parent shows the exception's last line
        raise RuntimeError(error.format_message()) from None
