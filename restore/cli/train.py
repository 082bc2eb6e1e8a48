"""``restore train``: train a method on photos, resumably.

The options and their reconciliation with a resumed run live here; the run itself is
:mod:`restore.training.job` (one process), :mod:`restore.training.launch` (``--nprocs``) and
:mod:`restore.pipelines.distributed_training` (``--scheduler``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from restore.cli.options import MethodChoice, device_option
from restore.models.registry import METHODS

if TYPE_CHECKING:
    from restore.training.job import JobError


def _native_sizes() -> str:
    return ", ".join(f"{name} {method.native_size}" for name, method in METHODS.items() if method.trainable and method.native_size)


def _parse_kinds(value: str) -> tuple[str, ...]:
    from restore.data.mask_generators import TRAINING_KINDS, parse_kind

    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    bad = []
    for kind in kinds:
        try:
            parse_kind(kind)
        except ValueError:
            bad.append(kind)
    if not kinds or bad:
        raise click.BadParameter(
            f"unknown or unusable mask kind(s) {', '.join(bad) or value!r}; choose from {', '.join(TRAINING_KINDS)}, "
            "each optionally with a ratio range as KIND:LO-HI",
            param_hint="'--masks'",
        )
    return kinds


def _check_kinds_fit(kinds: tuple[str, ...], size: int) -> None:
    """Every mask kind can be drawn in a ``size``² crop (a ratio range may not fit it), else a usage error naming --masks."""
    import numpy as np

    from restore.data.mask_generators import random_training_mask

    for kind in kinds:
        try:
            random_training_mask([kind], size, size, np.random.default_rng(0))
        except ValueError as error:
            raise click.BadParameter(f"{kind}: {error}", param_hint="'--masks'") from None


def _starting_points(method: str, out: Path, resume: bool, init_path: Path | None) -> tuple[dict | None, dict | None]:
    """The run to resume (``OUT/last.pt``) and the checkpoint to start from (``--init``), validated."""
    from restore.checkpoint import CheckpointError, load_checkpoint
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
    from restore.models.config import config_from_dict, saved_config

    if start is not None:
        saved = config_from_dict(config_cls, saved_config(config_cls, start["config"]))
        changed = {key: value for key, value in config_overrides(config_cls, settings, config_file).items()
                   if value != getattr(saved, key)}
        if changed:
            key, value = next(iter(changed.items()))
            raise click.UsageError(f"--set/--config cannot change a resumed run's configuration ({key}={value!r}; the run has {getattr(saved, key)!r})")
        return saved
    base = saved_config(config_cls, initial["config"]) if initial is not None else {}
    try:
        return config_from_dict(config_cls, {**base, **config_overrides(config_cls, settings, config_file)})
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


@click.command()
@click.option("--method", required=True, type=MethodChoice(trainable=True), help=f"Method to train: {MethodChoice.summary(trainable=True)}.")
@click.option("--data", "data", required=True, type=click.Path(exists=True, path_type=Path), help="Folder of photos or a restore archive.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder (checkpoints, samples, curve).")
@click.option("--size", default=None, type=click.IntRange(min=8), help=f"Training crop side, a multiple of the network's [default: the method's native size: {_native_sizes()}].")
@click.option("--iters", default=100_000, show_default=True, type=click.IntRange(min=1), help="Train until this many steps.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--masks", "mask_kinds", default=None, help="Training mask kinds, comma-separated, each KIND or KIND:LO-HI (a ratio range; box:0.375-0.5 draws boxes of 3/8 to 1/2 of the side) [default: the method's; freeform,medium,thick,cellular,box,center for csa].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--init", "init_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Start a new run from a checkpoint's networks (the shipped modules, e.g. the generator of the shipped checkpoint) and its configuration.")
@device_option
@click.option("--bf16", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True, help="bfloat16 autocast (auto: on GPUs with bf16 and CPUs with AMX or AVX-512 BF16).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch (default: torch's choice).")
@click.option("--vgg-weights", default=None, help="torchvision VGG weights file (for the methods with VGG losses), or 'random' (recorded); default: the torch hub cache / download.")
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
def train(ctx: click.Context, method: str, data: Path, out: Path, size: int | None, iters: int, batch_size: int, mask_kinds: str | None, resume: bool, init_path: Path | None,
          device: str, bf16: str, threads: int | None, vgg_weights: str | None, config_file: Path | None,
          settings: tuple[str, ...], seed: int, holdout: int, warmup: int, lr_decay_from: int | None, checkpoint_every: int,
          keep_every: int, sample_every: int, eval_every: int, nprocs: int, scheduler: str | None) -> None:
    """Train METHOD on the photos in --data, writing checkpoints to --out.

    The run is resumable: --resume continues from OUT/last.pt with its step count,
    schedule, RNG, configuration and data settings (--data must hold the same photos;
    --size, --batch-size, --masks, --seed, --holdout cannot change; --iters, --warmup, --lr-decay-from
    and --bf16 keep the run's values unless given). A run folder that already holds a checkpoint
    is never overwritten. --init starts a new run from a checkpoint's generator
    (the shipped one included): its configuration, a fresh optimiser, and the steps
    it had counted towards the total recorded in the new checkpoints.

    --nprocs N trains data-parallel in N processes (gloo on CPUs, NCCL on GPUs, one GPU
    each); every process takes its own --batch-size samples of each step, so N processes
    follow the run one process would make with N times the batch. With --scheduler the
    processes are N workers of that Dask cluster.
    """
    from click.core import ParameterSource

    from restore.cli import verbosity
    from restore.cli.options import resolve_device
    from restore.data.datasets import DEFAULT_TRAINING_MASKS
    from restore.models.config import config_to_dict
    from restore.models.registry import get_method
    from restore.training.job import JobError, TrainJob, check_processes

    record = get_method(method)
    start, initial = _starting_points(method, out, resume, init_path)
    if start is not None:
        given = {"size": size, "batch_size": batch_size, "mask_kinds": mask_kinds, "seed": seed, "holdout": holdout,
                 "iters": iters, "warmup": warmup, "lr_decay_from": lr_decay_from}
        run = _resumed_settings(ctx, start, given)
        size, batch_size, mask_kinds, seed, holdout = run["size"], run["batch_size"], run["mask_kinds"], run["seed"], run["holdout"]
        iters, warmup, lr_decay_from = run["iters"], run["warmup"], run["lr_decay_from"]
        vgg_weights = vgg_weights or start["metadata"].get("vgg_weights")
        if ctx.get_parameter_source("bf16") != ParameterSource.COMMANDLINE and isinstance(start["metadata"].get("bf16"), bool):
            bf16 = "on" if start["metadata"]["bf16"] else "off"  # the run's own precision unless asked otherwise
    size = size or record.piece_size
    if scheduler is None:
        resolve_device(device)  # fails early here; on a cluster, each worker resolves it for itself
    if start is not None and scheduler is None and "WORLD_SIZE" not in os.environ:
        try:
            check_processes(start, nprocs)
        except JobError as error:
            raise click.UsageError(str(error)) from None
    config = _configuration(record.config_class(), start, initial, settings, config_file)
    default_kinds = record.training_masks or getattr(config, "training_masks", None) or DEFAULT_TRAINING_MASKS
    kinds = _parse_kinds(mask_kinds or ",".join(default_kinds))
    multiple = getattr(config, "multiple", 1)
    if size % multiple:
        raise click.BadParameter(f"must be a multiple of {multiple} (the network's down-sampling), got {size}", param_hint="'--size'")
    _check_kinds_fit(kinds, size)
    smallest = getattr(config, "min_training_size", 1)
    if size < smallest:
        raise click.BadParameter(f"must be at least {smallest} for this configuration (its min_training_size), got {size}", param_hint="'--size'")
    job = TrainJob(
        method=method, data=data, out=out, init_path=init_path, config=config_to_dict(config), size=size, iters=iters,
        batch_size=batch_size, kinds=kinds, seed=seed, holdout=holdout, warmup=warmup, lr_decay_from=lr_decay_from,
        device=device, bf16=bf16, threads=threads, vgg_weights=vgg_weights,
        checkpoint_every=checkpoint_every, keep_every=keep_every, sample_every=sample_every, eval_every=eval_every,
        verbosity=verbosity(),
    )
    try:
        if scheduler is not None:
            _on_dask(job, scheduler, nprocs)
        elif nprocs > 1:
            from restore.training.launch import LaunchError, spawn

            try:
                spawn(job, nprocs)
            except LaunchError as error:
                raise click.ClickException(str(error)) from None
            _finish(job)
        else:
            _in_this_process(job, start, initial)
    except JobError as error:
        raise _as_click_error(error) from None


def _as_click_error(error: JobError) -> click.ClickException:
    """A job's error as the command line reports it (naming the option, exit status 2; else 1)."""
    if error.option == "--nprocs":
        return click.UsageError(str(error))
    if error.option is not None:
        return click.BadParameter(str(error), param_hint=f"'{error.option}'")
    return click.ClickException(str(error))


def _in_this_process(job, start: dict | None, initial: dict | None) -> None:
    """Train here: rank 0 of 1, or one rank of a torchrun launch."""
    from restore.training.distributed import ranks_from_environment
    from restore.training.job import train_process

    try:
        ranks = ranks_from_environment()
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    report = (lambda line: click.echo(line, err=True)) if job.verbosity >= 0 else None
    step = train_process(job, ranks, start, initial, report=report)
    if ranks.is_main:
        click.echo(f"{job.out / 'last.pt'} at step {step}")
    _exit_if_stopped(step, job.iters, job.out, report=ranks.is_main)


def _finish(job) -> None:
    """After ranks in other processes: say where the run stands; exit 130 when it was stopped."""
    from restore.training.loop import existing_run

    last = existing_run(job.out)
    step = last["step"] if last else 0
    click.echo(f"{job.out / 'last.pt'} at step {step}")
    _exit_if_stopped(step, job.iters, job.out)


def _on_dask(job, scheduler: str, nprocs: int) -> None:
    """Run the ranks on a Dask cluster's workers."""
    from restore.pipelines.cluster import (
        ClusterError,
        SchedulerAddressError,
        parse_scheduler_address,
    )
    from restore.pipelines.distributed_training import TrainLaunchError, train_on_dask

    try:
        parse_scheduler_address(scheduler)
    except SchedulerAddressError as error:
        raise click.BadParameter(str(error), param_hint="'--scheduler'") from None
    if job.verbosity >= 0:
        click.echo(f"training on {nprocs} worker(s) of {scheduler}; progress in {job.out.resolve() / 'log.jsonl'}", err=True)
    try:
        train_on_dask(job, scheduler, nprocs)
    except (ClusterError, TrainLaunchError) as error:
        raise click.ClickException(str(error)) from None
    _finish(job)


#: Exit status of a run stopped by SIGINT/SIGTERM before --iters (its last.pt is saved): 128 + SIGINT.
INTERRUPTED = 130


def _exit_if_stopped(step: int, iters: int, out: Path, report: bool = True) -> None:
    """A run that ended before --iters was stopped by a signal: say so and exit non-zero."""
    if step < iters:
        if report:
            click.echo(f"stopped at step {step} of {iters} by a signal; {out / 'last.pt'} is saved and --resume continues", err=True)
        raise SystemExit(INTERRUPTED)
