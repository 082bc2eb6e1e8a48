"""Data-parallel training ranks on the workers of a Dask cluster (``restore train --scheduler``).

:func:`train_on_dask` runs a :class:`~restore.training.job.TrainJob` with one rank per
worker (the first ``nprocs`` workers by address); rank 0's worker hosts the process group's
rendezvous. The run folder and the photos must be at the same paths on
every worker (a shared file system). When a rank fails, the run ends with its error at
once; ranks stuck in a collective give up after the process group's timeout.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from restore.training.job import JobError, TrainJob

#: Seconds to wait for the cluster to have enough workers.
WORKERS_TIMEOUT = 30.0


class TrainLaunchError(RuntimeError):
    """The ranks could not be placed on the cluster, or one of them failed (one line)."""


def free_port() -> int:
    """A TCP port that is free on this machine now (run on rank 0's worker)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def run_ranks(rank_main: Callable[..., Any], job: Any, scheduler: str, nprocs: int, timeout: float = WORKERS_TIMEOUT) -> None:
    """Run ``rank_main(rank, nprocs, init_method, job)`` for every rank, one per Dask worker.

    ``timeout`` bounds the wait for ``nprocs`` workers; reaching the scheduler has its own
    timeout (``CONNECT_TIMEOUT``), so a short wait never turns a slow connection into an error.

    Raises:
        TrainLaunchError: too few workers, or a rank failed.
        restore.pipelines.cluster.ClusterError: the scheduler cannot be reached.
    """
    from distributed import as_completed
    from distributed.comm.addressing import get_address_host

    from restore.messages import one_line
    from restore.pipelines.cluster import CONNECT_TIMEOUT, open_client

    with open_client(scheduler, timeout=CONNECT_TIMEOUT) as client:
        try:
            client.wait_for_workers(nprocs, timeout=timeout)
        except (TimeoutError, OSError):
            have = len(client.scheduler_info()["workers"])
            raise TrainLaunchError(f"{nprocs} ranks need {nprocs} workers; the cluster at {scheduler} has {have}") from None
        workers = sorted(client.scheduler_info()["workers"])[:nprocs]
        port = client.run(free_port, workers=[workers[0]])[workers[0]]
        init_method = f"tcp://{get_address_host(workers[0])}:{port}"
        run_id = uuid.uuid4().hex[:8]
        futures = [
            client.submit(rank_main, rank, nprocs, init_method, job, workers=[worker], allow_other_workers=False, pure=False,
                          key=f"restore-train-{run_id}-rank-{rank}")
            for rank, worker in enumerate(workers)
        ]
        for future in as_completed(futures, loop=client.loop):
            if future.status == "error":
                error = future.exception()
                client.cancel(futures)
                # a rank's error with the run's options reads as it would in one process
                reason = str(error) if isinstance(error, TrainLaunchError) else f"{type(error).__name__}: {error}"
                raise TrainLaunchError(f"rank {futures.index(future)} failed: {one_line(reason)}")


def train_on_dask(job: TrainJob, scheduler: str, nprocs: int) -> None:
    """Run ``job`` as ``nprocs`` ranks on the workers of the Dask cluster at ``scheduler``.

    Paths are made absolute: the workers must see the photos and the run folder at the same paths.

    Raises:
        TrainLaunchError: too few workers, or a rank failed.
        restore.pipelines.cluster.ClusterError: the scheduler cannot be reached.
    """
    shared = replace(job, data=job.data.resolve(), out=job.out.resolve(), init_path=job.init_path.resolve() if job.init_path else None)
    run_ranks(dask_rank, shared, scheduler, nprocs)


def dask_rank(rank: int, world_size: int, init_method: str, job: TrainJob) -> None:
    """One rank on a Dask worker (each worker sees its own GPUs from index 0)."""
    from restore.training.distributed import Ranks
    from restore.training.job import train_process

    try:
        train_process(replace(job, verbosity=-1), Ranks(rank=rank, world_size=world_size, local_rank=0), init_method=init_method)
    except JobError as error:  # the client shows it as the command line would
        raise TrainLaunchError(error.format_message()) from None
