"""The training loop shared by every method: steps, checkpoints, samples, learning curve.

A method provides a trainer (the contract: :mod:`restore.models.trainer`); the loop feeds
it the step number and ``trainer.batches_per_step`` batches, each a pure function of
``(seed, step, draw)`` (the next ones are made in background threads while a step trains,
pinned for a GPU), runs its optimisers at their base rates times the schedule's factor
(:meth:`LoopOptions.lr_scale_at`), and writes atomic checkpoints ``RUN_DIR/last.pt`` (every
``checkpoint_every`` steps, on SIGINT/SIGTERM and at the end) and ``RUN_DIR/step-NNNNNN.pt``
(every ``keep_every`` steps), a sample picture every ``sample_every`` steps and the held-out
learning curve (fidelity and realism, :func:`restore.evaluation.evaluate`) every
``eval_every`` steps. A killed run loses at most the steps since the last checkpoint;
``resume`` continues the step count, learning-rate schedule, phases and RNG.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from restore import __version__
from restore.checkpoint import load_checkpoint, save_checkpoint
from restore.data.datasets import DEFAULT_TRAINING_MASKS, TrainingBatches
from restore.models.config import config_to_dict
from restore.models.trainer import Trainer
from restore.training import distributed
from restore.training.distributed import Ranks

log = logging.getLogger(__name__)
LAST = "last.pt"


@dataclass(frozen=True)
class LoopOptions:
    """How long and how a run trains, and how often it reports.

    Attributes:
        out: the run folder.
        iters: train until this step count.
        warmup: ramp the learning rates linearly from 0 over this many first steps.
        lr_decay_from: from this step, decay the learning rates linearly to 0 at ``iters`` (None: constant).
    """

    out: Path
    iters: int
    batch_size: int = 8
    size: int = 256
    mask_kinds: tuple[str, ...] = DEFAULT_TRAINING_MASKS
    seed: int = 0
    warmup: int = 0
    lr_decay_from: int | None = None
    checkpoint_every: int = 250
    keep_every: int = 5000
    sample_every: int = 500
    eval_every: int = 1000
    log_every: int = 10
    progress: bool = True
    loader_threads: int | None = None

    def batch_threads(self, device: str) -> int:
        """Threads making batches ahead of the steps: ``loader_threads``, else 1 on a CPU (the
        step needs its cores) and up to 4 beside a GPU (a batch of large photos takes longer to
        crop than a GPU step)."""
        if self.loader_threads is not None:
            return max(1, self.loader_threads)
        from restore.hardware import usable_cores

        return 1 if device == "cpu" else max(1, min(4, usable_cores() - 1))

    def lr_scale_at(self, step: int) -> float:
        """The factor on every base learning rate at step ``step`` (0-based): warm-up, 1, then optional linear decay."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.lr_decay_from is None or step < self.lr_decay_from:
            return 1.0
        span = max(1, self.iters - self.lr_decay_from)
        return max(0.0, 1.0 - (step - self.lr_decay_from) / span)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["out"] = str(self.out)
        values["mask_kinds"] = list(self.mask_kinds)
        return values


@dataclass
class HeldOut:
    """Photos set aside from the training data for samples and the learning curve.

    Attributes:
        images: (S, S, 3) uint8 protocol crops.
        mask_sets: per mask set (NVIDIA buckets, centre), one mask per image.
    """

    images: list[np.ndarray]
    mask_sets: dict[str, list[np.ndarray]] = field(default_factory=dict)


def _state(trainer: Trainer, step: int, options: LoopOptions, extra: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "method": trainer.name,
        "step": step,
        "config": config_to_dict(trainer.config),
        "models": {name: module.state_dict() for name, module in trainer.modules().items()},
        "optimizers": {name: opt.state_dict() for name, opt in trainer.optimizers().items()},
        "rng": {"torch": torch.get_rng_state()},
        "metadata": {
            **extra,
            **trainer.metadata(),
            "options": options.to_dict(),
            "train_seconds": seconds,
            "restore_version": __version__,
            "torch_version": str(torch.__version__),
            "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
            + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        },
    }


def restore_state(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Load models, optimisers and RNG from a training checkpoint into ``trainer``."""
    missing = [name for name in trainer.modules() if name not in checkpoint["models"]]
    for name, module in trainer.modules().items():
        if name in checkpoint["models"]:
            module.load_state_dict(checkpoint["models"][name])
    for name in missing:  # after the others: a missing module may start from a loaded one
        trainer.init_missing(name)
    for name, optimizer in trainer.optimizers().items():
        if name in checkpoint.get("optimizers", {}):
            optimizer.load_state_dict(checkpoint["optimizers"][name])
    if "rng" in checkpoint:
        torch.set_rng_state(checkpoint["rng"]["torch"])


def existing_run(out: Path) -> dict[str, Any] | None:
    """The last checkpoint of a run folder, or None when it has none."""
    path = Path(out) / LAST
    return load_checkpoint(path) if path.exists() else None


def _grid(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)


def write_samples(trainer: Trainer, held: HeldOut, path: Path, count: int = 4) -> None:
    """Save a picture: per held-out image, masked input | coarse | output | original; for a
    generative model (a trainer with ``sample(count, seed)``: the WGAN, whose inpainting is a
    minute-long search), a square grid of its samples from fixed z, so pictures compare across steps."""
    import imageio.v3 as iio

    sample = getattr(trainer, "sample", None)
    if callable(sample):
        side = max(1, count)
        grid = sample(side * side, seed=0)
        tiles = (grid.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, _grid([list(tiles[r * side : (r + 1) * side]) for r in range(side)]))
        return
    if not held.images:
        return
    images = np.stack(held.images[:count])
    masks = next(iter(held.mask_sets.values()))[:count] if held.mask_sets else [np.zeros(images.shape[1:3], bool)] * len(images)
    holes = np.stack(masks)
    from restore.models.network import NetworkInpainter

    inpainter = trainer.inpainter()
    image_t = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mask_t = torch.from_numpy(holes).unsqueeze(1).float()
    with torch.no_grad():
        if isinstance(inpainter, NetworkInpainter):  # its batch dict has the first stage too
            out = inpainter.forward(image_t, mask_t)
            out["inpainted"] = inpainter.inpaint(image_t, mask_t)
        else:
            out = {"inpainted": inpainter.inpaint(image_t, mask_t)}
    to_u8 = lambda t: (t.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
    masked = images.copy()
    masked[holes] = 255
    columns = [masked]
    if "coarse_inpainted" in out:
        columns.append(to_u8(out["coarse_inpainted"]))
    columns += [to_u8(out["inpainted"]), images]
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, _grid([[column[i] for column in columns] for i in range(len(images))]))


def held_out_digest(held: HeldOut) -> str:
    """A hex digest of the held-out photos and every mask set: equal sets score equally."""
    import hashlib

    digest = hashlib.sha256()
    for image in held.images:
        digest.update(f"{image.shape}".encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    for name in sorted(held.mask_sets):
        digest.update(name.encode())
        for mask in held.mask_sets[name]:
            digest.update(f"{mask.shape}".encode())
            digest.update(np.packbits(np.ascontiguousarray(mask, dtype=bool)).tobytes())
    return digest.hexdigest()


def _baseline_cache_path(held: HeldOut, name: str) -> Path:
    """Where a classical baseline's scores on this held-out set are kept between runs: the key holds
    the photos, the masks and the OpenCV version that scored them."""
    import cv2

    from restore.paths import cache_dir

    return cache_dir() / "curve-baselines" / f"{held_out_digest(held)[:32]}-{name}-opencv{cv2.__version__}.json"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _write_baselines(held: HeldOut, path: Path, batch_size: int, say: Callable[[str], None] = log.info) -> None:
    """Score the classical baselines (Telea, NS, FSR, shift-map) on the held-out set once, for the
    learning curve's reference; a file from an older run gets the ones it lacks. FSR and shift-map
    take seconds per 256² image (10–15 minutes for 16 photos and five mask sets on one core), so
    each score is also kept in :func:`restore.paths.cache_dir`, where a new run on the same
    held-out set finds it."""
    from restore.baselines import BASELINES

    baselines = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in BASELINES if name not in baselines]
    if not missing:
        return
    from restore.evaluation import evaluate
    from restore.models.registry import load_inpainter

    for name in missing:
        cached = _baseline_cache_path(held, name)
        try:
            baselines[name] = json.loads(cached.read_text())
            continue
        except (OSError, ValueError):
            pass
        say(f"scoring OpenCV {name} on the {len(held.images)} held-out photos for the learning curve (once; kept in {cached.parent})")
        baselines[name] = evaluate(load_inpainter(name), held.images, held.mask_sets, batch_size)
        try:
            _write_atomic(cached, json.dumps(baselines[name]))
        except OSError as error:  # a read-only home costs the next run the same minutes, nothing more
            say(f"could not keep the {name} scores in {cached.parent}: {error}")
    _write_atomic(path, json.dumps(baselines, indent=1))


def _weights_finite(trainer: Trainer) -> bool:
    """Whether every weight is finite (a step with a finite loss can still leave NaN or inf weights)."""
    return all(bool(torch.isfinite(p).all()) for module in trainer.modules().values() for p in module.parameters())


def fit(
    trainer: Trainer,
    batches: TrainingBatches,
    options: LoopOptions,
    held: HeldOut | None = None,
    start: dict[str, Any] | None = None,
    extra_metadata: dict[str, Any] | None = None,
    ranks: Ranks | None = None,
) -> int:
    """Train until ``options.iters`` (or a SIGINT/SIGTERM), checkpointing as it goes.

    Args:
        trainer: the method's trainer, freshly built.
        batches: the training batches.
        options: run options.
        held: held-out photos for samples and the learning curve (None: neither).
        start: a checkpoint to resume from (its step, weights, optimisers, RNG).
        extra_metadata: recorded in every checkpoint (data source, …).
        ranks: this process's place in a data-parallel run (joined already; None: a single
            process); ``batches`` must be this rank's shard. Rank 0 alone writes files.

    Returns:
        The step count reached.
    """
    from restore.evaluation import evaluate, protocol_strategy

    out = Path(options.out)
    ranks = ranks or Ranks()
    main = ranks.is_main
    if main:
        out.mkdir(parents=True, exist_ok=True)
    step, seconds = 0, 0.0
    if start is not None:
        restore_state(trainer, start)
        step = int(start["step"])
        seconds = float(start.get("metadata", {}).get("train_seconds", 0.0))
    if ranks.distributed:
        distributed.broadcast_modules(trainer.modules().values())
        trainer.gradient_sync = lambda parameters: distributed.average_gradients(parameters, ranks.world_size)
    sync_device = str(trainer.device)
    held = held if main else None
    extra = dict(extra_metadata or {})
    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signum

    in_main_thread = threading.current_thread() is threading.main_thread()  # not so in a Dask worker
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    progress = None
    if options.progress and main:
        from tqdm import tqdm

        progress = tqdm(total=options.iters, initial=step, desc=f"train {trainer.name}", unit="step", dynamic_ncols=True)
    averages: dict[str, float] = {}
    last_saved = step
    if held is not None and held.mask_sets:
        _write_baselines(held, out / "curve-baselines.json", options.batch_size, progress.write if progress else log.info)

    pin = sync_device.startswith("cuda")

    def load(index: int) -> list[tuple[Tensor, Tensor]]:
        drawn = batches.batches(index, trainer.batches_per_step)
        return [(images.pin_memory(), masks.pin_memory()) for images, masks in drawn] if pin else drawn

    ahead = options.batch_threads(sync_device.split(":")[0])
    loader = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="training-batches")
    pending: dict[int, Future] = {}

    def make_ahead(first: int) -> None:
        for index in range(first, min(first + ahead, options.iters)):
            if index not in pending:
                pending[index] = loader.submit(load, index)

    make_ahead(step)
    try:
        while step < options.iters and not distributed.any_rank(stop["signal"] is not None, sync_device):
            trainer.set_lr_scale(options.lr_scale_at(step))
            step_batches = pending.pop(step).result()
            make_ahead(step + 1)  # made while this step trains
            began = time.perf_counter()
            losses = trainer.train_step(step, step_batches)
            seconds += time.perf_counter() - began
            diverged = not all(np.isfinite(v) for v in losses.values())
            if distributed.any_rank(diverged, sync_device):  # NaN gradients reached every rank
                raise FloatingPointError(f"non-finite loss at step {step + 1}: {losses}; last good checkpoint is {out / LAST}")
            saves = (step + 1) % options.checkpoint_every == 0 or step + 1 == options.iters or (
                options.keep_every and (step + 1) % options.keep_every == 0)
            if saves and distributed.any_rank(not _weights_finite(trainer), sync_device):
                raise FloatingPointError(f"non-finite weights after step {step + 1}; last good checkpoint is {out / LAST}")
            step += 1
            for key, value in losses.items():
                averages[key] = value if key not in averages else 0.95 * averages[key] + 0.05 * value
            if progress is not None:
                progress.update(1)
                progress.set_postfix({k: f"{v:.4f}" for k, v in averages.items()}, refresh=False)
            if not main:
                continue
            if step % options.log_every == 0:
                with open(out / "log.jsonl", "a") as handle:
                    rates = trainer.learning_rates()
                    lr = {"lr": rates.get("generator", next(iter(rates.values()), 0.0))}
                    lr.update({f"lr_{name}": rate for name, rate in rates.items() if name != "generator"})
                    handle.write(json.dumps({"step": step, "seconds": round(seconds, 1), **lr, **losses}) + "\n")
            if step % options.checkpoint_every == 0 or step == options.iters:
                save_checkpoint(_state(trainer, step, options, extra, seconds), out / LAST)
                last_saved = step
            if options.keep_every and step % options.keep_every == 0:
                save_checkpoint(_state(trainer, step, options, extra, seconds), out / f"step-{step:06d}.pt")
            if held is not None and options.sample_every and step % options.sample_every == 0:
                write_samples(trainer, held, out / "samples" / f"step-{step:06d}.png")
            if held is not None and held.mask_sets and options.eval_every and step % options.eval_every == 0:
                strategy, size = protocol_strategy(trainer.name)
                curve = evaluate(trainer.inpainter(), held.images, held.mask_sets, batch_size=options.batch_size, strategy=strategy, size=size)
                with open(out / "curve.jsonl", "a") as handle:
                    handle.write(json.dumps({"step": step, "train_seconds": round(seconds, 1), "metrics": curve}) + "\n")
                log.info("step %d held-out PSNR %s", step, {k: round(v["psnr"], 2) for k, v in curve.items()})
        # Reached --iters or asked to stop: save. After an error the weights may be half-updated
        # (or NaN), so the last checkpoint stands and at most the steps since it are lost.
        if main and step != last_saved:
            if _weights_finite(trainer):
                save_checkpoint(_state(trainer, step, options, extra, seconds), out / LAST)
            else:
                log.warning("non-finite weights at step %d: not saved; last good checkpoint is %s", step, out / LAST)
    finally:
        loader.shutdown(wait=True, cancel_futures=True)
        if progress is not None:
            progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return step
