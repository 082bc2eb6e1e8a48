"""One training run as every process of it runs it: ``restore train``'s work, apart from its options.

:class:`TrainJob` is the run as resolved from the command line (picklable, the same for
every rank); :func:`train_process` trains as one process of it — in the command's own
process, in each of ``--nprocs`` local processes (:mod:`restore.training.launch`), under
``torchrun``, or on Dask workers (:mod:`restore.pipelines.distributed_training`). It finds
the method's trainer through the registry, splits the held-out photos off, checks that a
resumed run sees the photos and process count it started with, and runs the loop.

Problems with what the user asked for raise :class:`JobError`, naming the option; the CLI
turns them into its one-line errors (and a rank's into the same line).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from restore.training.distributed import Ranks
    from restore.training.loop import HeldOut

log = logging.getLogger(__name__)


class JobError(ValueError):
    """A run that cannot start as asked (one line).

    Args:
        message: what is wrong.
        option: the ``restore train`` option at fault (``"--data"``), or None.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option

    def format_message(self) -> str:
        """The message as the command line shows it (click's wording for a bad option)."""
        return f"Invalid value for '{self.option}': {self}" if self.option else str(self)


@dataclass(frozen=True)
class TrainJob:
    """A training run as resolved and checked from the command line (picklable, for every rank)."""

    method: str
    data: Path
    out: Path
    init_path: Path | None
    config: dict
    size: int
    iters: int
    batch_size: int
    kinds: tuple[str, ...]
    seed: int
    holdout: int
    warmup: int
    lr_decay_from: int | None
    device: str  # as asked (auto, cpu, cuda): each process resolves it on its machine
    bf16: str  # auto, on, off
    threads: int | None
    vgg_weights: str | None
    checkpoint_every: int
    keep_every: int
    sample_every: int
    eval_every: int
    verbosity: int


def names_digest(names: list[str]) -> str:
    """A digest of the photo names of ``--data`` (what a resumed run must find again)."""
    return "sha256:" + hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def check_same_photos(saved: dict, current: dict, data: Path) -> None:
    """A resumed run must train on the photos it started with (checkpoints may predate the digest)."""
    for key, what in (("photos_digest", "other photo names"), ("train_images", "another number of photos"), ("held_out", "another held-out set")):
        if saved.get(key) is not None and saved[key] != current[key]:
            raise JobError(f"{data} does not hold the resumed run's photos ({what})", "--data")


def check_processes(start: dict, processes: int) -> None:
    """A resumed run keeps its process count (each process draws its own samples of a step)."""
    trained_by = int(start["metadata"].get("processes", 1))
    if trained_by != processes:
        raise JobError(f"the run was trained by {trained_by} process(es), not {processes}: resume it with --nprocs {trained_by}", "--nprocs")


def training_photos(data: Path) -> tuple[list[str], list[np.ndarray]]:
    """Every photo of ``--data``, decoded; an empty or unreadable source is an error naming ``--data``."""
    from restore.data.archive import ArchiveError
    from restore.data.datasets import load_images
    from restore.data.images import ImageReadError
    from restore.messages import one_line

    try:
        return load_images(data)
    except (FileNotFoundError, ImageReadError, ArchiveError) as error:
        raise JobError(one_line(error), "--data") from None


def held_out(names: list[str], photos: list, count: int, seed: int) -> tuple[list[int], list[int], HeldOut]:
    """Split off ``count`` photos for samples and the learning curve, with their protocol masks."""
    import numpy as np

    from restore.data.datasets import centre_square, split_holdout
    from restore.data.mask_generators import generate_mask
    from restore.evaluation import PROTOCOL_SIZE, protocol_mask_sets
    from restore.training.loop import HeldOut

    train_idx, held_idx = split_holdout(names, min(count, max(0, len(names) - 1)))
    images = [centre_square(photos[i], PROTOCOL_SIZE) for i in held_idx]
    try:
        mask_sets = protocol_mask_sets(len(images), PROTOCOL_SIZE, seed=seed) if images else {}
    except FileNotFoundError as error:
        log.warning("learning curve without NVIDIA masks (%s); centre hole only", error)
        centre = generate_mask("center", PROTOCOL_SIZE, PROTOCOL_SIZE, np.random.default_rng(0))
        mask_sets = {"centre": [centre] * len(images)}
    return train_idx, held_idx, HeldOut(images, mask_sets)


def build_trainer(job: TrainJob, device: str, bf16: bool) -> Any:
    """The method's trainer for ``job`` (through its registry record), VGG errors as :class:`JobError`."""
    from restore.models.config import config_from_dict
    from restore.models.registry import get_method
    from restore.nn.vgg import VGGWeightsError

    method = get_method(job.method)
    config = config_from_dict(method.config_class(), job.config)
    trainer_class = method.trainer_class()
    try:
        return trainer_class(config, device=device, vgg_weights=job.vgg_weights, bf16=bf16)
    except VGGWeightsError as error:
        hint = " ".join(f"--set {item}" for item in getattr(trainer_class, "without_vgg", ()))
        raise JobError(f"{error}" + (f" (or train without VGG-19: {hint})" if hint else "")) from None


def start_modules(method_name: str, initial: dict) -> dict[str, dict]:
    """The weights ``--init`` starts a run from: the method's shipped modules (moving averages where kept)."""
    from restore.checkpoint import inference_weights
    from restore.models.registry import get_method

    return {name: inference_weights(initial, name) for name in get_method(method_name).ship_modules if name in initial["models"]}


def train_process(job: TrainJob, ranks: Ranks, start: dict | None = None, initial: dict | None = None,
                  init_method: str | None = None, report: Callable[[str], None] | None = None) -> int:
    """Train as one process of ``ranks`` (rank 0 of 1 without data parallelism).

    Args:
        job: the run.
        ranks: this process's place.
        start: the run's last checkpoint when resuming (read here when None and the run exists).
        initial: ``--init``'s checkpoint (read here when None).
        init_method: the process group's rendezvous (None: torchrun's environment).
        report: ``report(line)`` for the start line (rank 0; None: silent).

    Returns:
        The step reached (below ``job.iters`` when stopped by a signal).

    Raises:
        JobError: the photos, ``--init`` or the VGG weights do not allow the run.
    """
    import torch

    from restore.checkpoint import load_checkpoint
    from restore.data.datasets import TrainingBatches
    from restore.hardware import DeviceError, resolve_bf16, resolve_device, retain_freed_memory
    from restore.paths import file_digest
    from restore.training import distributed
    from restore.training.loop import LoopOptions, existing_run, fit

    if job.threads:
        torch.set_num_threads(job.threads)
    retain_freed_memory()
    if start is None and initial is None:  # a rank in another process reads the checkpoints itself (before any rank trains)
        start = existing_run(job.out)
        initial = load_checkpoint(job.init_path) if start is None and job.init_path is not None else None
    if start is not None:
        check_processes(start, ranks.world_size)
    try:
        device = distributed.rank_device(resolve_device(job.device), ranks)
    except DeviceError as error:
        raise JobError(str(error), "--device") from None
    use_bf16 = resolve_bf16(job.bf16, device)
    names, photos = training_photos(job.data)  # before VGG weights that may be downloaded
    distributed.start(ranks, device, init_method=init_method)
    try:
        torch.manual_seed(job.seed)  # the initial weights (a resumed run restores its RNG state)
        trainer = build_trainer(job, device, use_bf16)
        extra: dict = {"data": str(job.data), "base_steps": int(start["metadata"].get("base_steps", 0)) if start else 0}
        if initial is not None:
            try:
                trainer.start_from(start_modules(job.method, initial))
            except (RuntimeError, ValueError) as error:
                raise JobError(f"{job.init_path} does not fit this configuration ({str(error).splitlines()[0]})", "--init") from None
            extra["base_steps"] = int(initial["step"]) + int(initial.get("metadata", {}).get("base_steps", 0))
            extra["init_from"] = {"path": str(job.init_path), "digest": file_digest(job.init_path), "step": int(initial["step"])}
        elif start is not None and "init_from" in start["metadata"]:
            extra["init_from"] = start["metadata"]["init_from"]

        train_idx, held_idx, held = held_out(names, photos, job.holdout, job.seed)
        extra.update(train_images=len(train_idx), held_out=[names[i] for i in held_idx], holdout=job.holdout, processes=ranks.world_size)
        extra["photos_digest"] = names_digest(names)
        if start is not None:
            check_same_photos(start["metadata"], extra, job.data)
        if hasattr(trainer, "observe_photos"):
            trainer.observe_photos([photos[i] for i in train_idx])
        batches = TrainingBatches([photos[i] for i in train_idx], size=job.size, batch_size=job.batch_size, mask_kinds=job.kinds,
                                  seed=job.seed, rank=ranks.rank, world_size=ranks.world_size)
        options = LoopOptions(
            out=job.out, iters=job.iters, batch_size=job.batch_size, size=job.size, mask_kinds=job.kinds, seed=job.seed,
            warmup=job.warmup, lr_decay_from=job.lr_decay_from, checkpoint_every=job.checkpoint_every, keep_every=job.keep_every,
            sample_every=job.sample_every, eval_every=job.eval_every, progress=job.verbosity >= 0,
        )
        if report is not None and ranks.is_main:
            sizes = ", ".join(f"{name} {sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"
                              for name, module in trainer.modules().items() if not name.endswith("_ema"))
            processes = f" x {ranks.world_size} processes" if ranks.distributed else ""
            report(
                f"training {job.method} on {len(train_idx)} photos ({len(held_idx)} held out), parameters: {sizes}; "
                f"device {device}{' bf16' if use_bf16 else ''}, batch {job.batch_size}{processes}, "
                f"from step {start['step'] if start else 0} to {job.iters}"
            )
        step = fit(trainer, batches, options, held, start=start, extra_metadata=extra, ranks=ranks)
    finally:
        distributed.finish()
    return step
