"""``restore train``: train a method on photos, resumably."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from restore.cli.options import device_option
from restore.messages import one_line

if TYPE_CHECKING:
    from restore.training.distributed import Ranks

#: method -> (config class, trainer class), as "module:attribute".
TRAINERS: dict[str, tuple[str, str]] = {
    "csa": ("restore.models.csa.config:CSAConfig", "restore.models.csa.training:CSATrainer"),
}


def _load(target: str):
    import importlib

    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _parse_kinds(value: str) -> tuple[str, ...]:
    from restore.data.mask_generators import TRAINING_KINDS

    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    bad = [k for k in kinds if k not in TRAINING_KINDS]
    if not kinds or bad:
        raise click.BadParameter(
            f"unknown or unusable mask kind(s) {', '.join(bad) or value!r}; choose from {', '.join(TRAINING_KINDS)}",
            param_hint="'--masks'",
        )
    return kinds


def _starting_points(method: str, out: Path, resume: bool, init_path: Path | None) -> tuple[dict | None, dict | None]:
    """The run to resume (``OUT/last.pt``) and the checkpoint to start from (``--init``), validated."""
    from restore.training.checkpoint import CheckpointError, load_checkpoint
    from restore.training.loop import existing_run

    try:
        start = existing_run(out)
    except CheckpointError as error:
        raise click.ClickException(str(error)) from None
    if start is not None and not resume:
        raise click.UsageError(f"{out} already holds a run (step {start['step']}); pass --resume to continue it or choose another --out")
    if start is None and resume:
        raise click.UsageError(f"--resume: {out} has no checkpoint to resume")
    if start is not None and start.get("method") != method:
        raise click.UsageError(f"{out} holds a {start.get('method')!r} run, not {method!r}")
    if init_path is None:
        return start, None
    if resume:
        raise click.UsageError("--init starts a new run and --resume continues one: give one of them")
    try:
        initial = load_checkpoint(init_path)
    except CheckpointError as error:
        raise click.BadParameter(str(error), param_hint="'--init'") from None
    if initial.get("method") != method:
        raise click.BadParameter(f"{init_path} is a {initial.get('method')!r} checkpoint, not {method!r}", param_hint="'--init'")
    return start, initial


def _configuration(config_cls: type, start: dict | None, initial: dict | None, settings: tuple[str, ...], config_file: Path | None):
    """A resumed run keeps its configuration; a new one takes --init's, then --config, then --set."""
    from restore.cli.options import config_overrides

    if start is not None:
        saved = config_cls.from_dict(start["config"])
        changed = {key: value for key, value in config_overrides(config_cls, settings, config_file).items()
                   if value != getattr(saved, key)}
        if changed:
            key, value = next(iter(changed.items()))
            raise click.UsageError(f"--set/--config cannot change a resumed run's configuration ({key}={value!r}; the run has {getattr(saved, key)!r})")
        return saved
    base = initial["config"] if initial is not None else {}
    try:
        return config_cls(**{**base, **config_overrides(config_cls, settings, config_file)})
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--set'") from None


#: Settings that make a run's batches and held-out set (fixed once it started), and its schedule.
FIXED_ON_RESUME = ("size", "batch_size", "mask_kinds", "seed", "holdout")
SCHEDULE = ("iters", "warmup", "lr_decay_from")


def _resumed_settings(ctx: click.Context, start: dict, given: dict) -> dict:
    """The resumed run's own settings; options given on the command line may change its schedule only.

    Raises:
        click.UsageError: an explicitly given data setting differs from the run's.
    """
    from click.core import ParameterSource

    meta = start["metadata"]
    saved = {**meta.get("options", {}), "holdout": meta.get("holdout", len(meta.get("held_out", [])))}
    if isinstance(saved.get("mask_kinds"), list):
        saved["mask_kinds"] = ",".join(saved["mask_kinds"])
    run = {}
    for name, value in given.items():
        explicit = ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
        if explicit and name in SCHEDULE:
            run[name] = value
        elif name not in saved or saved[name] is None and name in FIXED_ON_RESUME:  # a checkpoint from before they were saved
            run[name] = value
        elif explicit and not _same(name, value, saved[name]):
            flag = "--" + ("masks" if name == "mask_kinds" else name.replace("_", "-"))
            raise click.UsageError(f"{flag} {value} differs from the resumed run's {saved[name]} ({flag} cannot change on --resume)")
        else:
            run[name] = saved[name]
    return run


def _same(name: str, value, saved) -> bool:
    if name == "mask_kinds":
        return _parse_kinds(value) == _parse_kinds(saved)
    return value == saved


def _held_out(names: list[str], photos: list, count: int, seed: int):
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
        click.echo(f"warning: learning curve without NVIDIA masks ({error}); centre hole only", err=True)
        centre = generate_mask("center", PROTOCOL_SIZE, PROTOCOL_SIZE, np.random.default_rng(0))
        mask_sets = {"centre": [centre] * len(images)}
    return train_idx, held_idx, HeldOut(images, mask_sets)


@click.command()
@click.option("--method", required=True, type=click.Choice(sorted(TRAINERS)), help="Method to train.")
@click.option("--data", "data", required=True, type=click.Path(exists=True, path_type=Path), help="Folder of photos or a restore archive.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder (checkpoints, samples, curve).")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=16), help="Training crop side (a multiple of 2**depth: 256 at the paper's depth).")
@click.option("--iters", default=100_000, show_default=True, type=click.IntRange(min=1), help="Train until this many steps.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--masks", "mask_kinds", default="freeform,medium,thick,cellular,box,center", show_default=True, help="Training mask kinds, comma-separated.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--init", "init_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Start a new run from these generator weights (e.g. the shipped checkpoint) and their configuration.")
@device_option
@click.option("--bf16", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True, help="bfloat16 autocast (auto: on GPUs with bf16 and AMX CPUs).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch (default: torch's choice).")
@click.option("--vgg-weights", default=None, help="torchvision VGG-16 weights file, or 'random'; default: the torch hub cache / download.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML file of method config values.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override one method config value (repeatable).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--holdout", default=16, show_default=True, type=click.IntRange(min=0), help="Photos of --data set aside for samples and the learning curve.")
@click.option("--warmup", default=500, show_default=True, type=click.IntRange(min=0), help="Linear learning-rate warm-up over this many first steps.")
@click.option("--lr-decay-from", type=click.IntRange(min=0), default=None, help="Decay the learning rate linearly to 0 from this step to --iters.")
@click.option("--checkpoint-every", default=250, show_default=True, type=click.IntRange(min=1))
@click.option("--keep-every", default=5000, show_default=True, type=click.IntRange(min=0), help="Also keep step-NNNNNN.pt every this many steps (0: never).")
@click.option("--sample-every", default=500, show_default=True, type=click.IntRange(min=0))
@click.option("--eval-every", default=1000, show_default=True, type=click.IntRange(min=0), help="Held-out learning curve every this many steps (0: never).")
@click.option("--nprocs", default=1, show_default=True, type=click.IntRange(min=1), help="Data-parallel processes (one per GPU; --batch-size is per process): on this machine, or on --scheduler's workers. torchrun works too.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Run the --nprocs ranks on the workers of this Dask scheduler, one per worker (paths must be shared).")
@click.pass_context
def train(ctx: click.Context, method: str, data: Path, out: Path, size: int, iters: int, batch_size: int, mask_kinds: str, resume: bool, init_path: Path | None,
          device: str, bf16: str, threads: int | None, vgg_weights: str | None, config_file: Path | None,
          settings: tuple[str, ...], seed: int, holdout: int, warmup: int, lr_decay_from: int | None, checkpoint_every: int,
          keep_every: int, sample_every: int, eval_every: int, nprocs: int, scheduler: str | None) -> None:
    """Train METHOD on the photos in --data, writing checkpoints to --out.

    The run is resumable: --resume continues from OUT/last.pt with its step count,
    schedule, RNG, configuration and data settings (--data must hold the same photos;
    --size, --batch-size, --masks, --seed, --holdout cannot change; --iters, --warmup and --lr-decay-from
    keep the run's values unless given). A run folder that already holds a checkpoint
    is never overwritten. --init starts a new run from a checkpoint's generator
    (the shipped one included): its configuration, a fresh optimiser, and the steps
    it had counted towards the total recorded in the new checkpoints.

    --nprocs N trains data-parallel in N processes (gloo on CPUs, NCCL on GPUs, one GPU
    each); every process takes its own --batch-size samples of each step, so N processes
    follow the run one process would make with N times the batch. With --scheduler the
    processes are N workers of that Dask cluster.
    """
    from restore.cli import verbosity
    from restore.cli.options import resolve_device

    start, initial = _starting_points(method, out, resume, init_path)
    if start is not None:
        given = {"size": size, "batch_size": batch_size, "mask_kinds": mask_kinds, "seed": seed, "holdout": holdout,
                 "iters": iters, "warmup": warmup, "lr_decay_from": lr_decay_from}
        run = _resumed_settings(ctx, start, given)
        size, batch_size, mask_kinds, seed, holdout = run["size"], run["batch_size"], run["mask_kinds"], run["seed"], run["holdout"]
        iters, warmup, lr_decay_from = run["iters"], run["warmup"], run["lr_decay_from"]
        vgg_weights = vgg_weights or start["metadata"].get("vgg_weights")
    kinds = _parse_kinds(mask_kinds)
    if scheduler is None:
        resolve_device(device)  # fails early here; on a cluster, each worker resolves it for itself
    if start is not None and scheduler is None and "WORLD_SIZE" not in os.environ:
        _check_processes(start, nprocs)
    config = _configuration(_load(TRAINERS[method][0]), start, initial, settings, config_file)
    if size % config.multiple:
        raise click.BadParameter(f"must be a multiple of {config.multiple} (2**depth), got {size}", param_hint="'--size'")
    job = TrainJob(
        method=method, data=data, out=out, init_path=init_path, config=config.to_dict(), size=size, iters=iters,
        batch_size=batch_size, kinds=kinds, seed=seed, holdout=holdout, warmup=warmup, lr_decay_from=lr_decay_from,
        device=device, bf16=bf16, threads=threads, vgg_weights=vgg_weights,
        checkpoint_every=checkpoint_every, keep_every=keep_every, sample_every=sample_every, eval_every=eval_every,
        verbosity=verbosity(),
    )
    if scheduler is not None:
        _on_dask(job, scheduler, nprocs)
    elif nprocs > 1:
        _spawn(job, nprocs)
    else:
        from restore.training.distributed import ranks_from_environment

        try:
            ranks = ranks_from_environment()
        except RuntimeError as error:
            raise click.ClickException(str(error)) from None
        step = _train_process(job, ranks, start, initial)
        _exit_if_stopped(step, job.iters, job.out, report=ranks.is_main)


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


def _train_process(job: TrainJob, ranks: Ranks, start: dict | None = None, initial: dict | None = None,
                   init_method: str | None = None) -> int:
    """Train as one process of ``ranks`` (rank 0 of 1 without data parallelism); returns the step reached."""
    import torch

    from restore.cli.options import resolve_bf16, resolve_device
    from restore.data.datasets import TrainingBatches
    from restore.models.registry import file_digest
    from restore.nn.vgg import VGGWeightsError
    from restore.training import distributed
    from restore.training.loop import LoopOptions, existing_run, fit

    if job.threads:
        torch.set_num_threads(job.threads)
    if start is None and initial is None:  # a rank in another process reads the checkpoints itself (before any rank trains)
        start = existing_run(job.out)
        initial = _load_checkpoint(job.init_path) if start is None else None
    if start is not None:
        _check_processes(start, ranks.world_size)
    device = distributed.rank_device(resolve_device(job.device), ranks)
    use_bf16 = resolve_bf16(job.bf16, device)
    config_target, trainer_target = TRAINERS[job.method]
    config = _load(config_target).from_dict(job.config)
    names, photos = _training_photos(job.data)  # before VGG weights that may be downloaded
    distributed.start(ranks, device, init_method=init_method)
    try:
        torch.manual_seed(job.seed)  # the initial weights (a resumed run restores its RNG state)
        try:
            trainer = _load(trainer_target)(config, device=device, vgg_weights=job.vgg_weights, bf16=use_bf16)
        except VGGWeightsError as error:
            raise click.ClickException(f"{error} (or disable the VGG losses: --set consistency_weight=0 --set feature_discriminator=false)") from None

        extra: dict = {"data": str(job.data), "base_steps": int(start["metadata"].get("base_steps", 0)) if start else 0}
        if initial is not None:
            try:
                trainer.start_from(initial["models"]["generator"])
            except RuntimeError as error:
                raise click.BadParameter(f"{job.init_path} does not fit this configuration ({str(error).splitlines()[0]})", param_hint="'--init'") from None
            extra["base_steps"] = int(initial["step"]) + int(initial.get("metadata", {}).get("base_steps", 0))
            extra["init_from"] = {"path": str(job.init_path), "digest": file_digest(job.init_path), "step": int(initial["step"])}
        elif start is not None and "init_from" in start["metadata"]:
            extra["init_from"] = start["metadata"]["init_from"]

        train_idx, held_idx, held = _held_out(names, photos, job.holdout, job.seed)
        extra.update(train_images=len(train_idx), held_out=[names[i] for i in held_idx], holdout=job.holdout, processes=ranks.world_size)
        extra["photos_digest"] = _names_digest(names)
        if start is not None:
            _check_same_photos(start["metadata"], extra, job.data)
        batches = TrainingBatches([photos[i] for i in train_idx], size=job.size, batch_size=job.batch_size, mask_kinds=job.kinds,
                                  seed=job.seed, rank=ranks.rank, world_size=ranks.world_size)
        options = LoopOptions(
            out=job.out, iters=job.iters, lr=config.lr, batch_size=job.batch_size, size=job.size, mask_kinds=job.kinds, seed=job.seed,
            warmup=job.warmup, lr_decay_from=job.lr_decay_from, checkpoint_every=job.checkpoint_every, keep_every=job.keep_every,
            sample_every=job.sample_every, eval_every=job.eval_every, progress=job.verbosity >= 0,
        )
        if job.verbosity >= 0 and ranks.is_main:
            params = sum(p.numel() for p in trainer.generator.parameters())
            processes = f" x {ranks.world_size} processes" if ranks.distributed else ""
            click.echo(
                f"training {job.method} on {len(train_idx)} photos ({len(held_idx)} held out), generator {params / 1e6:.2f} M parameters, "
                f"device {device}{' bf16' if use_bf16 else ''}, batch {job.batch_size}{processes}, "
                f"from step {start['step'] if start else 0} to {job.iters}",
                err=True,
            )
        step = fit(trainer, batches, options, held, start=start, extra_metadata=extra, ranks=ranks)
    finally:
        distributed.finish()
    if ranks.is_main:
        click.echo(f"{job.out / 'last.pt'} at step {step}")
    return step


#: Exit status of a run stopped by SIGINT/SIGTERM before --iters (its last.pt is saved): 128 + SIGINT.
INTERRUPTED = 130


def _exit_if_stopped(step: int, iters: int, out: Path, report: bool = True) -> None:
    """A run that ended before --iters was stopped by a signal: say so and exit non-zero."""
    if step < iters:
        if report:
            click.echo(f"stopped at step {step} of {iters} by a signal; {out / 'last.pt'} is saved and --resume continues", err=True)
        raise SystemExit(INTERRUPTED)


def _names_digest(names: list[str]) -> str:
    """A digest of the photo names of --data (what a resumed run must find again)."""
    import hashlib

    return "sha256:" + hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def _check_same_photos(saved: dict, current: dict, data: Path) -> None:
    """A resumed run must train on the photos it started with (checkpoints may predate the digest)."""
    for key, what in (("photos_digest", "other photo names"), ("train_images", "another number of photos"), ("held_out", "another held-out set")):
        if saved.get(key) is not None and saved[key] != current[key]:
            raise click.BadParameter(f"{data} does not hold the resumed run's photos ({what})", param_hint="'--data'")


def _training_photos(data: Path) -> tuple[list[str], list]:
    """Every photo of --data, decoded; an empty or unreadable source is an error naming --data."""
    from restore.data.archive import ArchiveError
    from restore.data.datasets import load_images
    from restore.data.images import ImageReadError

    try:
        return load_images(data)
    except (FileNotFoundError, ImageReadError, ArchiveError) as error:
        raise click.BadParameter(one_line(error), param_hint="'--data'") from None


def _check_processes(start: dict, processes: int) -> None:
    """A resumed run keeps its process count (each process draws its own samples of a step)."""
    trained_by = int(start["metadata"].get("processes", 1))
    if trained_by != processes:
        raise click.UsageError(f"the run was trained by {trained_by} process(es), not {processes}: resume it with --nprocs {trained_by}")


def _load_checkpoint(path: Path | None) -> dict | None:
    from restore.training.checkpoint import load_checkpoint

    return load_checkpoint(path) if path is not None else None


def _spawn(job: TrainJob, nprocs: int) -> None:
    """Run ``job`` in ``nprocs`` local processes; a rank that fails ends them all."""
    import tempfile

    import torch.multiprocessing as mp

    from restore.cli.options import resolve_device
    from restore.hardware import usable_cores

    if "WORLD_SIZE" in os.environ:
        raise click.UsageError("--nprocs starts its own processes; under torchrun leave it out")
    if resolve_device(job.device) == "cuda":
        import torch

        if torch.cuda.device_count() < nprocs:
            raise click.BadParameter(f"{nprocs} processes need {nprocs} GPUs, this machine has {torch.cuda.device_count()}", param_hint="'--nprocs'")
    elif job.threads is None:
        job = replace(job, threads=max(1, usable_cores() // nprocs))
    with tempfile.TemporaryDirectory(prefix="restore-train-") as rendezvous:  # a file, not a port: nothing to race for
        try:
            mp.spawn(_rank_main, args=(nprocs, f"file://{rendezvous}/store", job), nprocs=nprocs, join=True)
        except mp.ProcessRaisedException as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise click.ClickException(f"a training process failed: {lines[-1].strip() if lines else error}") from None
        except mp.ProcessExitedException as error:
            raise click.ClickException(f"a training process died: {error}") from None
    from restore.training.loop import existing_run

    last = existing_run(job.out)
    _exit_if_stopped(last["step"] if last else 0, job.iters, job.out)


def _rank_main(local_rank: int, world_size: int, init_method: str, job: TrainJob) -> None:
    """Entry point of one process started by ``--nprocs``."""
    from restore.training.distributed import Ranks

    os.environ.update(RANK=str(local_rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank))
    _train_process(job, Ranks(rank=local_rank, world_size=world_size, local_rank=local_rank), init_method=init_method)


def _on_dask(job: TrainJob, scheduler: str, nprocs: int) -> None:
    """Run the ranks on a Dask cluster's workers."""
    from restore.pipelines.tiled_inference import BatchError, PlanError, parse_scheduler_address
    from restore.training.dask_ranks import TrainLaunchError, run_ranks

    try:
        parse_scheduler_address(scheduler)
    except PlanError as error:
        raise click.BadParameter(str(error), param_hint="'--scheduler'") from None
    from restore.training.loop import existing_run

    shared = replace(job, data=job.data.resolve(), out=job.out.resolve(), init_path=job.init_path.resolve() if job.init_path else None)
    if job.verbosity >= 0:
        click.echo(f"training on {nprocs} worker(s) of {scheduler}; progress in {shared.out / 'log.jsonl'}", err=True)
    try:
        run_ranks(_dask_rank, shared, scheduler, nprocs)
    except (BatchError, TrainLaunchError) as error:
        raise click.ClickException(str(error)) from None
    last = existing_run(job.out)
    click.echo(f"{job.out / 'last.pt'} at step {last['step'] if last else 0}")
    _exit_if_stopped(last["step"] if last else 0, job.iters, job.out)


def _dask_rank(rank: int, world_size: int, init_method: str, job: TrainJob) -> None:
    """One rank on a Dask worker (each worker sees its own GPUs from index 0)."""
    from restore.training.distributed import Ranks

    _train_process(replace(job, verbosity=-1), Ranks(rank=rank, world_size=world_size, local_rank=0), init_method=init_method)
