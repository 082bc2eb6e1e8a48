"""Data-parallel training: one process (rank) per device, gradients averaged every step.

Every rank trains on its own shard of each step's batch (``--batch-size`` per rank;
:class:`~restore.data.datasets.TrainingBatches` draws sample ``i`` of a step from
``(seed, step, i)``), so N ranks at batch B follow the trajectory of one process at
batch N·B, up to float rounding, for losses that are plain means over the batch (L1
with ``hole_l1_weight`` 1). The others are averaged per rank: the hole-weighted L1 and
the consistency loss normalise by each rank's hole count, and the relativistic GAN
loss compares each sample with its own rank's batch average. Rank 0 alone writes checkpoints, logs, samples and the
learning curve. Launch with ``restore train --nprocs N …`` (N local processes) or
under ``torchrun … -m restore train …``, which sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

#: Collective timeout: a rank that died or hangs ends the others' wait after this long
#: (long enough for rank 0 to score the learning curve while the others wait).
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a data-parallel run (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def ranks_from_environment() -> Ranks:
    """The ranks torchrun (or ``--nprocs``) put in the environment; rank 0 of 1 without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise RuntimeError(f"bad RANK/WORLD_SIZE/LOCAL_RANK in the environment: {error}") from None
    if not 0 <= rank < world:
        raise RuntimeError(f"RANK {rank} is outside WORLD_SIZE {world}")
    return Ranks(rank=rank, world_size=world, local_rank=local)


def rank_device(device: str, ranks: Ranks) -> str:
    """The device of this rank: ``cuda:LOCAL_RANK`` on GPUs, the CPU otherwise."""
    return f"cuda:{ranks.local_rank}" if str(device).startswith("cuda") and ranks.distributed else str(device)


def start(ranks: Ranks, device: str, timeout_s: float = TIMEOUT_S, init_method: str | None = None) -> None:
    """Join the process group (NCCL on GPUs, gloo on CPUs); nothing to do for one process.

    Args:
        init_method: the rendezvous (``tcp://host:port``, ``file://path``); None reads
            ``MASTER_ADDR``/``MASTER_PORT`` (torchrun).
    """
    if not ranks.distributed:
        return
    if dist.is_initialized():  # e.g. a rank of an earlier run still running in this Dask worker
        raise RuntimeError("this process already belongs to a training process group")
    if str(device).startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=ranks.rank, world_size=ranks.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))


def finish() -> None:
    """Leave the process group (when one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(parameters: Iterable[Tensor], world_size: int) -> None:
    """Replace every gradient by its mean over the ranks (one all-reduce of all of them)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def broadcast_modules(modules: Iterable[nn.Module]) -> None:
    """Give every rank rank 0's parameters and buffers."""
    for module in modules:
        for tensor in module.state_dict().values():
            if isinstance(tensor, Tensor):
                dist.broadcast(tensor, src=0)


def any_rank(flag: bool, device: str) -> bool:
    """Whether ``flag`` is true on any rank (a stop request reaches them all); ``flag`` in one process."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
