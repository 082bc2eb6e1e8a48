"""``restore batch`` on Dask: validated, resumable, crash-safe inference over a Zarr archive.

The run, in order (DESIGN §9):

1. :func:`prepare_batch` validates everything before any cluster or graph exists: the input
   archive, the output (new, resumed or ``overwrite``), the method and its checkpoint, the
   masks of every image still to do (present and of the image's size, unless
   ``skip_missing`` / ``resize_masks``) and, on resume, that the output was produced by the
   same method, checkpoint, masks and strategy. It groups the images still to do into
   **units**: one image per task, except that several small images of one size (fewer
   model inputs than ``batch_size`` each) share a task so they fill one model batch.
2. :func:`open_client` starts a ``LocalCluster`` of spawned worker processes (one Dask
   thread each; ``torch.set_num_threads(threads)`` in each, so workers × threads ≤ cores by
   default; Dask's ``MALLOC_TRIM_THRESHOLD_`` is not set in them: it made CPU inference
   25-45 % slower) or connects to ``--scheduler`` within ``timeout`` seconds (workers
   of an existing cluster must see the same paths as the client).
3. :func:`execute` registers an :class:`InpainterPlugin` (a ``WorkerPlugin``): each worker
   loads the model **once**, opens the archive and the masks, and keeps them for every task
   (a failing load ends the run before any output exists). It then creates the output
   archive (or uses the resumed one) and submits units with ``client.submit`` — GPU
   resources given there, since graph optimisation drops annotations — keeping a bounded
   window in flight, so memory does not grow with the archive. Workers read their images
   and masks themselves and return restored arrays; the client, the archive's single
   writer, stores each unit with ``OutputArchive.write_many`` as it completes
   (``as_completed``) and marks the images done. A killed run (SIGKILL included) leaves
   only complete, recorded images; a rerun computes exactly the missing ones.
4. Failures: a task that raises is retried (``RETRIES``); a worker that dies is replaced by
   its nanny and its tasks rescheduled (``distributed.scheduler.allowed-failures`` on the
   embedded cluster). A unit of several images that keeps failing is split into one task
   per image so that only the failing images are lost. The run goes on with the others and
   :class:`BatchReport` lists the failed keys; it stops early when the first tasks all
   fail (a systematic fault such as a broken model).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from restore.hardware import usable_cores
from restore.messages import one_line, preview
from restore.models.ensemble import ENSEMBLE_SIZES
from restore.paths import tree_fingerprint
from restore.pipelines.restoration import STRATEGIES, pieces_per_image, restore_images

if TYPE_CHECKING:
    from distributed import Client

    from restore.data.archive import Archive
    from restore.data.masks import MaskSource
    from restore.data.output_archive import OutputArchive
    from restore.models.base import Inpainter

LOGGER = logging.getLogger(__name__)

#: Seconds to reach a ``--scheduler`` (and to wait for its first worker).
CONNECT_TIMEOUT = 30.0
#: Re-runs of a task that raised, before it counts as failed.
RETRIES = 1
#: Worker deaths a task may cause before it counts as failed (embedded cluster).
ALLOWED_FAILURES = 2
#: Stop early when this many tasks failed and none succeeded.
ABORT_AFTER_FAILURES = 3
#: Bytes of restored images allowed in flight (computed, not yet written) beyond one per slot.
IN_FLIGHT_BYTES = 512 * 2**20
#: Keys named in one-line messages.


class BatchError(RuntimeError):
    """The run could not proceed (a cluster, model or write failure); ``str()`` is one line."""


class PlanError(ValueError):
    """Bad input found while validating a run; names the option at fault.

    Args:
        message: one line.
        option: the CLI option (``"--masks"``) the problem belongs to.
    """

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


def shorten(text: str, limit: int = 400) -> str:
    """``text`` cut to ``limit`` characters (errors from libraries can be paragraphs)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# What every worker needs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to restore any image of the run (pickled to the workers).

    Attributes:
        input_path: the input archive.
        mask_spec: the ``--masks`` path.
        resize_masks: resize masks of another size (nearest).
        dilate: grow holes by this many pixels.
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"``.
        batch_size: model inputs per ``inpaint`` call.
        loader: ``loader(device) -> Inpainter`` (picklable; a method's ``load`` with its checkpoint bound).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``, resolved on each worker.
        threads: ``torch.set_num_threads`` on each worker (None: leave as is).
    """

    input_path: str
    mask_spec: str
    resize_masks: bool
    dilate: int
    strategy: str
    batch_size: int
    loader: Callable[[str], Inpainter]
    device: str = "cpu"
    threads: int | None = None


def method_loader(method: str, checkpoint: Path | None, ensemble: int = 1) -> Callable[[str], Inpainter]:
    """A picklable ``loader(device)`` for a registered method with its checkpoint bound.

    The method's own ``load`` function is pickled (not its name), so methods registered at
    run time in the client (plugins, tests) work on workers that can import their module.
    ``ensemble`` > 1 wraps the model in a :class:`~restore.models.ensemble.SelfEnsemble`.
    """
    from restore.models.registry import METHODS

    if ensemble == 1:
        return functools.partial(METHODS[method].load, checkpoint)
    return functools.partial(_load_ensemble, METHODS[method].load, checkpoint, ensemble)


def _load_ensemble(load: Callable[[Path | None, str], Inpainter], checkpoint: Path | None, ensemble: int, device: str) -> Inpainter:
    from restore.models.ensemble import SelfEnsemble

    return SelfEnsemble(load(checkpoint, device), ensemble)


def worker_device(device: str, worker_name: object = None) -> str:
    """Resolve ``auto``/``cuda`` on a worker: ``cuda:i`` with i = worker name mod GPU count.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or an explicit ``"cuda:N"``.
        worker_name: the Dask worker's name (an int on a ``LocalCluster``).

    Returns:
        A torch device string.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: this worker has no CUDA device")
        index = worker_name % torch.cuda.device_count() if isinstance(worker_name, int) else 0
        return f"cuda:{index}"
    return device


@dataclass
class _WorkerState:
    inpainter: Any
    archive: Archive
    masks: MaskSource
    device: str


class InpainterPlugin:
    """The per-worker state of one run: the model (loaded once), the archive and the masks.

    Registered with ``client.register_plugin(plugin, name=...)``: ``setup`` loads the model
    on every worker (off the event loop; a failure makes the registration raise) and again
    on any worker that joins later, e.g. one restarted after a crash. Tasks reach it with
    :func:`restore_task`. ``teardown`` frees the model when the run unregisters it.

    Args:
        spec: the run's settings.
    """

    idempotent = False

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._state: _WorkerState | None = None
        self._worker_name: object = None

    def __getstate__(self) -> dict:
        return {"spec": self.spec}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["spec"])

    async def setup(self, worker: Any) -> None:
        """Load everything on ``worker`` (run in a thread: loading may take seconds)."""
        import asyncio

        self._worker_name = worker.name
        await asyncio.get_running_loop().run_in_executor(None, self.state)

    def teardown(self, worker: Any) -> None:
        """Drop the model (and free GPU memory) when the run ends."""
        with self._lock:
            state, self._state = self._state, None
        if state is not None and state.device.startswith("cuda"):
            import torch

            del state
            torch.cuda.empty_cache()

    def state(self) -> _WorkerState:
        """The loaded state, loading it on first use (thread-safe; once per worker)."""
        with self._lock:
            if self._state is None:
                self._state = self._load()
            return self._state

    def _load(self) -> _WorkerState:
        import torch

        from restore.data.archive import open_archive
        from restore.data.masks import open_mask_source

        spec = self.spec
        if spec.threads:
            torch.set_num_threads(spec.threads)
        device = worker_device(spec.device, self._worker_name)
        inpainter = spec.loader(device)
        archive = open_archive(spec.input_path)
        masks = open_mask_source(spec.mask_spec, resize=spec.resize_masks, dilate=spec.dilate)
        LOGGER.info("worker %s: loaded %s on %s", self._worker_name, getattr(inpainter, "name", "model"), device)
        return _WorkerState(inpainter, archive, masks, device)

    def restore(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Read, restore and return the images of one unit (all of one size).

        Args:
            keys: archive keys.

        Returns:
            key → restored pixels, (H, W, C) in the archive's dtype.
        """
        state = self.state()
        if self.spec.threads:
            import torch

            torch.set_num_threads(self.spec.threads)  # OpenMP settings are per thread: set it in the task's
        images = [state.archive.read(key) for key in keys]
        holes = [state.masks.load(key, image.shape[:2]) for key, image in zip(keys, images, strict=True)]
        restored = restore_images(
            state.inpainter, images, holes, strategy=self.spec.strategy, batch_size=self.spec.batch_size
        )
        return dict(zip(keys, restored, strict=True))


def _as_worker_plugin(plugin: InpainterPlugin) -> Any:
    """``plugin`` as a ``distributed.WorkerPlugin`` (defined lazily: distributed is heavy)."""
    return _worker_plugin_class()(plugin.spec)


@functools.cache
def _worker_plugin_class() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    return type("RestoreInpainterPlugin", (InpainterPlugin, WorkerPlugin), {"__module__": __name__})


def __getattr__(name: str) -> Any:
    # Lets pickle find the lazily built class by name on the workers.
    if name == "RestoreInpainterPlugin":
        return _worker_plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def restore_task(plugin_name: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The Dask task: restore one unit on the current worker with the run's plugin.

    Args:
        plugin_name: the name the run registered its :class:`InpainterPlugin` under.
        keys: the unit's image keys (one image, or a few small ones of one size).

    Returns:
        key → restored pixels.
    """
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(plugin_name)
    if plugin is None:
        raise RuntimeError(f"worker {worker.name} has no plugin {plugin_name!r}; the run that registered it has ended")
    return plugin.restore(keys)


# --------------------------------------------------------------------------------------------
# Validation and planning
# --------------------------------------------------------------------------------------------


def default_output(input_path: Path) -> Path:
    """``photos.zarr`` → ``photos.restored.zarr`` beside it (``photos`` → ``photos.restored.zarr``)."""
    name = Path(input_path).name
    stem = name[: -len(".zarr")] if name.lower().endswith(".zarr") else name
    return Path(input_path).with_name(f"{stem}.restored.zarr")


def plan_units(keys: Sequence[str], shapes: dict[str, tuple[int, int]], batch_size: int, strategy: str) -> list[tuple[str, ...]]:
    """Group keys into tasks: same-size images, as many per task as fill one model batch.

    An image that needs n model inputs (1 within 256², more when sub-sampled or tiled)
    shares its task with up to ``batch_size // n - 1`` other images of its size, taken in
    archive order; an image with n ≥ ``batch_size`` is a task of its own.

    Args:
        keys: keys to compute, in archive order.
        shapes: (H, W) per key.
        batch_size: model inputs per call.
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"``.

    Returns:
        Units (tuples of keys).
    """
    groups: dict[tuple[int, int], list[str]] = {}
    for key in keys:
        groups.setdefault(tuple(shapes[key]), []).append(key)
    units: list[tuple[str, ...]] = []
    for (height, width), members in groups.items():
        per_unit = max(1, batch_size // pieces_per_image(height, width, strategy))
        units.extend(tuple(members[i : i + per_unit]) for i in range(0, len(members), per_unit))
    order = {key: i for i, key in enumerate(keys)}
    units.sort(key=lambda unit: order[unit[0]])
    return units


def parse_scheduler_address(address: str) -> tuple[str, str]:
    """Check a ``--scheduler`` address: ``tcp://host:port``, ``host:port``, ``tls://…``, ``inproc://…``.

    Returns:
        (protocol, location).

    Raises:
        PlanError: malformed.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(address.strip())
        if protocol in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as error:
        raise PlanError(f"not a scheduler address: {address!r} ({one_line(error)}); expected e.g. tcp://host:8786", "--scheduler") from None
    return protocol, location


def strategy_options(strategy: str) -> dict[str, int]:
    """The strategy's parameters, recorded in the output's provenance."""
    from restore.pipelines import subsample, tiles

    if strategy == "subsample":
        return {"size": subsample.SIZE}
    if strategy == "whole":
        return {}
    return {"size": tiles.SIZE, "overlap": tiles.OVERLAP}


@dataclass
class BatchPlan:
    """A validated run (see :func:`prepare_batch`).

    Attributes:
        archive: the input.
        output: the output archive path.
        attrs: provenance of a new output.
        overwrite: replace an existing output.
        writer: the resumed output (holding its writer lock), or None for a new one.
        already_done: images already restored in a resumed output.
        todo: keys to compute, in archive order.
        skipped: keys left out for want of a mask (``skip_missing``).
        units: the tasks.
        spec: what the workers need.
        image_bytes: bytes of the largest unit's images (for the in-flight window).
        mask_stamps: per key to compute, the stamp of its mask (recorded in the output).
    """

    archive: Archive
    output: Path
    attrs: dict[str, Any]
    overwrite: bool
    writer: OutputArchive | None
    already_done: int
    todo: list[str]
    skipped: list[str]
    units: list[tuple[str, ...]]
    spec: RunSpec
    image_bytes: int = 0
    mask_stamps: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        """Release the output's writer lock (idempotent)."""
        if self.writer is not None:
            self.writer.close()


def _check_masks(masks_spec: Path, resize: bool, keys: Sequence[str], shapes: dict[str, tuple[int, int]], bar: Callable[..., Any] | None) -> None:
    """Load every mask once (no dilation: it cannot fail) to check it is readable and sized."""
    from restore.data.masks import FileMaskSource, open_mask_source

    source = open_mask_source(masks_spec, resize=resize, dilate=0)
    seen_shapes: set[tuple[int, int]] = set()
    single = isinstance(source, FileMaskSource)
    progress = bar(total=len(keys), desc="checking masks", unit="mask") if bar is not None else None
    try:
        for key in keys:
            shape = shapes[key]
            if not (single and shape in seen_shapes):
                source.load(key, shape)
                seen_shapes.add(shape)
            if progress is not None:
                progress.update(1)
    finally:
        if progress is not None:
            progress.close()


#: Settings a resumed output must have been written with; an archive from a version that did not
#: record one was written with the value given here (None: not checked).
RESUME_SETTINGS = {"input_archive": None, "input_fingerprint": None, "method": None, "checkpoint_digest": None,
                   "strategy": None, "strategy_options": None, "mask_options": None, "ensemble": 1}

#: What a changed fingerprint means, for the message.
CHANGED_FILES = {"input_fingerprint": "the input archive's files"}


def _check_resume(attrs: dict[str, Any], expected: dict[str, Any], output: Path) -> None:
    for name, before in RESUME_SETTINGS.items():
        written = attrs.get(name, before)
        if (name in attrs or before is not None) and written != expected[name]:
            what = (f"{CHANGED_FILES[name]} changed since {output} was written" if name in CHANGED_FILES
                    else f"{output} was written with {name} {written!r}, this run uses {expected[name]!r}")
            raise PlanError(f"{what}; pass --overwrite to start again, or choose another --output", "--output")


def _check_mask_stamps(writer: OutputArchive, masks: MaskSource, output: Path) -> None:
    """Refuse to resume when the mask of an image already restored was written again since."""
    recorded = writer.mask_stamps()
    if recorded is None:  # an output from before stamps were recorded
        return
    for key in sorted(writer.done_keys()):
        stamp = masks.stamp(key)
        if recorded[key] and stamp and stamp != recorded[key]:
            raise PlanError(
                f"the mask of {key!r} changed since it was restored into {output}; "
                "pass --overwrite to start again, or choose another --output",
                "--output",
            )


def _check_checkpoint(path: Path, method: str) -> None:
    """Refuse, before any worker starts, a checkpoint that cannot be read or is another method's."""
    from restore.training.checkpoint import CheckpointError, load_checkpoint

    try:
        trained = load_checkpoint(path).get("method")
    except CheckpointError as error:
        raise PlanError(str(error), "--checkpoint") from None
    if trained != method:
        raise PlanError(f"{path} is a {trained!r} checkpoint, not {method!r}", "--checkpoint")


def prepare_batch(
    input_path: Path,
    masks_spec: Path,
    *,
    output: Path | None = None,
    method: str = "csa",
    checkpoint: Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    strategy: str = "subsample",
    skip_missing: bool = False,
    resize_masks: bool = False,
    dilate: int = 0,
    ensemble: int = 1,
    bar: Callable[..., Any] | None = None,
) -> BatchPlan:
    """Validate a run and plan its tasks; nothing is written and no cluster is started.

    Args:
        input_path: the input archive.
        masks_spec: mask folder, single mask file or mask archive.
        output: the output archive (default: :func:`default_output`).
        method: a name in :data:`~restore.models.registry.METHODS`.
        checkpoint: weights (default: the method's shipped checkpoint).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (resolved on the workers).
        threads: torch threads per worker.
        batch_size: model inputs per call.
        overwrite: recompute everything into a fresh output.
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"``.
        skip_missing: leave out images without a mask instead of failing.
        resize_masks: resize masks of another size (nearest).
        dilate: grow holes by this many pixels.
        ensemble: views per image of the geometric self-ensemble (:mod:`restore.models.ensemble`).
        bar: optional ``tqdm``-like factory for the mask check's progress.

    Returns:
        The plan; call :meth:`BatchPlan.close` (or run :func:`execute`) to release a resumed output.

    Raises:
        PlanError: bad input, naming the option.
    """
    from restore.data.archive import ArchiveError, is_archive, open_archive
    from restore.data.masks import MaskError, open_mask_source
    from restore.data.output_archive import OutputArchive
    from restore.models.registry import (
        METHODS,
        MissingWeightsError,
        file_digest,
        resolve_checkpoint,
    )

    if batch_size < 1:
        raise PlanError(f"must be at least 1, got {batch_size}", "--batch-size")
    if strategy not in STRATEGIES:
        raise PlanError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}", "--strategy")
    if ensemble not in ENSEMBLE_SIZES:
        raise PlanError(f"must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {ensemble}", "--ensemble")
    try:
        archive = open_archive(input_path)
    except ArchiveError as error:
        raise PlanError(str(error), "--input") from None
    if not archive.complete:
        done = set(archive.done_keys())
        absent = [key for key in archive.keys if key not in done]
        raise PlanError(f"{input_path} is only partly written ({len(done)} of {len(archive.keys)} images complete; not {preview(absent)})", "--input")

    output = Path(output) if output is not None else default_output(Path(input_path))
    source, target = Path(input_path).resolve(), output.resolve()
    if target == source or target.is_relative_to(source) or source.is_relative_to(target):
        raise PlanError(f"{output} would overwrite or nest inside the input {input_path}; choose another --output", "--output")

    if method not in METHODS:
        raise PlanError(f"unknown method {method!r}; known: {', '.join(METHODS)}", "--method")
    if checkpoint is not None and not METHODS[method].needs_weights:
        raise PlanError(f"method {method!r} uses no weights; drop --checkpoint", "--checkpoint")
    try:
        checkpoint = resolve_checkpoint(method, checkpoint)
    except MissingWeightsError as error:
        raise PlanError(str(error), "--checkpoint") from None
    if checkpoint is not None:
        _check_checkpoint(Path(checkpoint), method)

    try:
        masks = open_mask_source(masks_spec, resize=resize_masks, dilate=dilate)
    except MaskError as error:
        raise PlanError(str(error), "--masks") from None
    attrs = {
        "method": method,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "checkpoint_digest": file_digest(checkpoint),
        "mask_source": masks.describe(),
        "mask_options": {"path": str(Path(masks_spec).resolve()), "resize": bool(resize_masks), "dilate": int(dilate)},
        "input_fingerprint": tree_fingerprint(archive.path),
        "strategy": strategy,
        "strategy_options": strategy_options(strategy),
        "ensemble": int(ensemble),
    }

    writer = None
    if output.exists() and not is_archive(output):
        raise PlanError(f"{output} exists and is not a zarr archive; refusing to write into or replace it (choose another --output)", "--output")
    if output.exists() and not overwrite:
        try:
            writer = OutputArchive.open(output, like=archive)
        except ArchiveError as error:
            raise PlanError(f"{one_line(error)} (an existing --output is resumed; pass --overwrite to replace it)", "--output") from None
        try:
            _check_resume(writer.attrs, {**attrs, "input_archive": str(archive.path.resolve())}, output)
            _check_mask_stamps(writer, masks, output)
        except PlanError:
            writer.close()
            raise
        todo = writer.missing_keys()
    else:
        todo = list(archive.keys)

    try:
        already_done = len(archive.keys) - len(todo)
        shapes = {key: tuple(archive.shape(key)[:2]) for key in todo}
        absent = masks.missing(todo)
        if todo and len(absent) == len(todo) and not already_done:
            raise PlanError(f"no mask for any of the {len(todo)} image(s) in {masks.describe()} (keys such as {preview(todo[:3])})", "--masks")
        if absent and not skip_missing:
            raise PlanError(
                f"no mask for {len(absent)} of {len(todo)} image(s) in {masks.describe()}: {preview(absent)} "
                "(pass --skip-missing to restore the others)",
                "--masks",
            )
        skipped = absent
        if skipped:
            missing = set(skipped)
            todo = [key for key in todo if key not in missing]
        try:
            _check_masks(Path(masks_spec), resize_masks, todo, shapes, bar)
        except MaskError as error:
            raise PlanError(str(error), "--masks") from None
        units = plan_units(todo, shapes, batch_size, strategy)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    spec = RunSpec(
        input_path=str(Path(input_path).resolve()),
        mask_spec=str(Path(masks_spec).resolve()),
        resize_masks=bool(resize_masks),
        dilate=int(dilate),
        strategy=strategy,
        batch_size=int(batch_size),
        loader=method_loader(method, checkpoint, ensemble),
        device=device,
        threads=threads,
    )
    image_bytes = 0
    for unit in units:
        h, w = shapes[unit[0]]
        channels = archive.shape(unit[0])[2]
        image_bytes = max(image_bytes, len(unit) * h * w * channels * archive.dtype(unit[0]).itemsize)
    stamps = {key: masks.stamp(key) for key in todo}
    return BatchPlan(archive, output, attrs, overwrite, writer, already_done, todo, skipped, units, spec, image_bytes, stamps)


# --------------------------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------------------------


#: Future states after a worker that had finished the task died: Dask computes it again.
RECOMPUTED = ("lost", "pending")


def _probe(address: str, timeout: float) -> None:
    """Check within ``timeout`` that a Dask scheduler answers at ``address``.

    A refused TCP connection fails at once (the Client would retry it for ``timeout``);
    anything else that is not a scheduler fails with its reason rather than a hang.
    """
    import asyncio

    from distributed.comm import connect
    from distributed.comm.addressing import parse_address, parse_host_port

    where = f"the Dask scheduler at {address} (--scheduler)"
    protocol, location = parse_address(address)
    if protocol in ("tcp", "tls"):
        host, port = parse_host_port(location)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except ConnectionRefusedError:
            raise BatchError(f"cannot reach {where}: connection refused; is a scheduler running there?") from None
        except socket.gaierror as error:
            raise BatchError(f"cannot reach {where}: unknown host ({one_line(error)})") from None
        except OSError as error:
            raise BatchError(f"cannot reach {where} within {timeout:g} s: {one_line(error) or type(error).__name__}") from None

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), timeout))
    except (TimeoutError, asyncio.TimeoutError):
        raise BatchError(f"no answer from {where} within {timeout:g} s") from None
    except Exception as error:
        raise BatchError(f"cannot talk to {where}: {type(error).__name__}: {one_line(error)}") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise BatchError(f"{address} (--scheduler) answers, but not as a Dask scheduler")


def default_workers_threads(workers: int | None, threads: int | None) -> tuple[int, int]:
    """Defaults of the embedded cluster: one worker; torch threads = usable cores / workers.

    One worker keeps memory bounded whatever the image size (an 8192² photo needs about
    0.6 GiB in its worker and 1.2 GiB in the writing client); several single-threaded
    workers are faster on many small images (see ``benchmarks/batch.py``).
    """
    cores = usable_cores()
    workers = workers or 1
    threads = threads or max(1, cores // workers)
    return workers, threads


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Ignore SIGINT while worker processes start, so that they inherit the disposition.

    Ctrl-C reaches every process of the terminal's process group; the workers would each print
    a traceback. Ignoring it there leaves the interruption to this process, which closes them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def open_client(
    scheduler: str | None = None,
    *,
    workers: int = 1,
    device: str = "cpu",
    timeout: float = CONNECT_TIMEOUT,
    log_level: int = logging.ERROR,
) -> Iterator[Client]:
    """A Dask client: an embedded ``LocalCluster`` of processes, or an existing cluster.

    Args:
        scheduler: address of an existing scheduler; None starts a ``LocalCluster``.
        workers: worker processes of the embedded cluster (one Dask thread each; the
            plugin sets their torch threads).
        device: ``"cuda"`` gives each embedded worker a ``GPU`` resource.
        timeout: seconds to reach ``scheduler`` and to see its first worker.
        log_level: level of distributed's loggers in the embedded cluster.

    Yields:
        The client (closed, with its cluster, on exit).

    Raises:
        BatchError: the scheduler cannot be reached or has no workers.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        _probe(scheduler, timeout)
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except Exception as error:
            raise BatchError(f"cannot reach the Dask scheduler at {scheduler} (--scheduler) within {timeout:g} s: {one_line(error)}") from None
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError):
                raise BatchError(f"the Dask cluster at {scheduler} has no workers (waited {timeout:g} s)") from None
            yield client
        finally:
            client.close()
        return
    resources = {"GPU": 1} if device.startswith("cuda") else None
    logger = logging.getLogger("distributed")
    old_level = logger.level
    logger.setLevel(log_level)  # the scheduler runs in this process
    settings = {
        "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
        # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in workers, which also freezes glibc's mmap
        # threshold: every tensor over 128 KiB then costs fresh page faults (measured: CPU
        # inference 25-45 % slower than in a plain process). glibc's defaults already return
        # big blocks (images) to the system.
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    }
    try:
        with dask.config.set(settings), _workers_ignore_sigint():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: runs never collide on 8787
                silence_logs=log_level,
                resources=resources,
            )
        try:
            client = Client(cluster, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()
    finally:
        logger.setLevel(old_level)


def cluster_slots(client: Client, gpu: bool) -> int:
    """Tasks the cluster runs at once: Dask threads, or GPU resources when ``gpu``."""
    if gpu:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        return max(1, int(sum(w.get("resources", {}).get("GPU", 0) for w in workers)))
    return max(1, sum(client.nthreads().values()))


def has_gpu_workers(client: Client) -> bool:
    """Whether any worker of the cluster offers a ``GPU`` resource."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(w.get("resources", {}).get("GPU", 0) > 0 for w in workers)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class BatchReport:
    """What a run did.

    Attributes:
        output: the output archive.
        total: images in the archive.
        already_done: images restored by earlier runs (resume).
        computed: keys restored and written by this run.
        failed: key → one-line error, for images that kept failing.
        skipped: keys without a mask (``skip_missing``).
        seconds: wall time of the computation (submission to last write).
        aborted: the run stopped early because every task failed.
    """

    output: Path
    total: int
    already_done: int
    computed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    aborted: bool = False

    @property
    def ok(self) -> bool:
        """No image failed."""
        return not self.failed and not self.aborted


def execute(
    plan: BatchPlan,
    client: Client,
    *,
    gpu: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Run a plan on a cluster: load the model on the workers, create or resume the output,
    compute the units and write each as it completes.

    Args:
        plan: from :func:`prepare_batch` (its writer lock is released on return).
        client: a connected client.
        gpu: request a ``GPU`` resource per task (``client.submit(resources=...)``).
        progress: called with the number of images written after each write.

    Returns:
        The report (failed keys listed there; finished images are written either way).

    Raises:
        BatchError: the model cannot be loaded on the workers, or the output cannot be created.
    """
    from restore.data.output_archive import OutputArchive

    report = BatchReport(plan.output, len(plan.archive.keys), plan.already_done, skipped=list(plan.skipped))
    name = f"restore-batch-{uuid.uuid4().hex[:12]}"
    try:
        if not plan.units:
            return report
        try:
            client.register_plugin(_as_worker_plugin(InpainterPlugin(plan.spec)), name=name)
        except Exception as error:
            raise BatchError(f"the workers could not load the model or the data: {type(error).__name__}: {shorten(one_line(error))}") from error
        try:
            if plan.writer is None:
                try:
                    plan.writer = OutputArchive.create(plan.output, plan.archive, plan.attrs, overwrite=plan.overwrite)
                except (OSError, ValueError) as error:
                    raise BatchError(f"cannot create {plan.output}: {one_line(error)}") from error
            try:
                plan.writer.record_mask_stamps(plan.mask_stamps)
            except OSError as error:
                raise BatchError(f"cannot write {plan.output}: {one_line(error)}") from error
            _run_units(client, name, plan, plan.writer, report, gpu, progress)
        finally:
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(name)
    finally:
        plan.close()
    return report


def _run_units(
    client: Client,
    name: str,
    plan: BatchPlan,
    writer: OutputArchive,
    report: BatchReport,
    gpu: bool,
    progress: Callable[[int], None] | None,
) -> None:
    from distributed import as_completed

    from restore.data.archive import ArchiveError

    resources = {"GPU": 1} if gpu else None
    slots = cluster_slots(client, gpu)
    by_bytes = IN_FLIGHT_BYTES // max(1, plan.image_bytes)
    window = max(slots + 1, min(2 * slots + 2, slots + by_bytes))
    pending = deque((str(i), unit) for i, unit in enumerate(plan.units))
    running: dict[str, tuple[str, tuple[str, ...], Any]] = {}
    completed = as_completed(loop=client.loop)
    successes = 0

    def fill() -> None:
        while pending and len(running) < window:
            tag, keys = pending.popleft()
            future = client.submit(
                restore_task, name, keys, key=f"{name}-{tag}", pure=False, retries=RETRIES, resources=resources
            )
            running[future.key] = (tag, keys, future)
            completed.add(future)

    start = time.perf_counter()
    try:
        fill()
        for future in completed:
            if future.status in RECOMPUTED:  # its worker died after finishing it: the scheduler runs it again
                completed.add(future)
                continue
            error: BaseException | None = None
            result = None
            if future.status == "finished":
                try:
                    result = future.result()
                except Exception as exc:
                    if future.status in RECOMPUTED:  # lost between finishing and the transfer
                        completed.add(future)
                        continue
                    error = exc
            elif future.status == "error":
                error = future.exception()
            else:
                error = RuntimeError(f"task {future.status}")
            tag, keys, _ = running.pop(future.key)
            future.release()
            del future
            if error is None and result is None:
                error = RuntimeError("task returned no images")
            if error is None:
                try:
                    writer.write_many(result)
                except ArchiveError as exc:  # a result that does not fit its image: that image fails, the run goes on
                    error = exc
                del result
            if error is None:
                successes += 1
                report.computed.extend(keys)
                if progress is not None:
                    progress(len(keys))
            elif len(keys) > 1:
                # Isolate the failing image(s): retry each image of the unit as a task of its own.
                LOGGER.info("unit of %d images failed (%s); retrying them one by one", len(keys), one_line(error))
                pending.extendleft(reversed([(f"{tag}-{j}", (key,)) for j, key in enumerate(keys)]))
            else:
                message = f"{type(error).__name__}: {shorten(one_line(error))}"
                report.failed[keys[0]] = message
                LOGGER.warning("image %r failed: %s", keys[0], message)
                if successes == 0 and len(report.failed) >= ABORT_AFTER_FAILURES:
                    report.aborted = True
                    break
            fill()
    finally:
        report.seconds = time.perf_counter() - start
        leftovers = [future for _, _, future in running.values()]
        if leftovers:
            client.cancel(leftovers)
