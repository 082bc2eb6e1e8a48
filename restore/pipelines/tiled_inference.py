"""``restore batch`` on Dask: validated, resumable, crash-safe inference over a Zarr archive.

The run, in order (DESIGN §9):

1. :func:`~restore.pipelines.batch_plan.prepare_batch` validates everything before any
   cluster or graph exists and groups the images still to do into units
   (:mod:`restore.pipelines.batch_plan`).
2. :func:`~restore.pipelines.cluster.open_client` starts a ``LocalCluster`` of spawned worker
   processes or connects to ``--scheduler`` (:mod:`restore.pipelines.cluster`).
3. :func:`execute` registers an :class:`~restore.pipelines.batch_worker.InpainterPlugin`
   (each worker loads the model **once**, opens the archive and the masks, and keeps them
   for every task; a failing load ends the run before any output exists;
   :mod:`restore.pipelines.batch_worker`). It then creates the output archive (or uses the
   resumed one) and submits units with ``client.submit`` — GPU resources given there, since
   graph optimisation drops annotations — keeping a bounded window in flight, so memory
   does not grow with the archive. Workers read their images and masks themselves and
   return restored arrays; the client, the archive's single writer, stores each unit with
   ``OutputArchive.write_many`` as it completes (``as_completed``) and marks the images
   done. A killed run (SIGKILL included) leaves only complete, recorded images; a rerun
   computes exactly the missing ones.
4. Failures: a task that raises is retried (``RETRIES``); a worker that dies is replaced by
   its nanny and its tasks rescheduled (``distributed.scheduler.allowed-failures`` on the
   embedded cluster). A unit of several images that keeps failing is split into one task
   per image so that only the failing images are lost. The run goes on with the others and
   :class:`BatchReport` lists the failed keys; it stops early when the first tasks all
   fail (a systematic fault such as a broken model).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restore.messages import one_line
from restore.pipelines.batch_plan import BatchPlan, PlanError, prepare_batch
from restore.pipelines.batch_worker import InpainterPlugin, as_worker_plugin, restore_task
from restore.pipelines.cluster import cluster_slots

if TYPE_CHECKING:
    from distributed import Client

    from restore.data.output_archive import OutputArchive

__all__ = ["BatchError", "BatchPlan", "BatchReport", "PlanError", "execute", "prepare_batch"]

LOGGER = logging.getLogger(__name__)

#: Re-runs of a task that raised, before it counts as failed.
RETRIES = 1
#: Stop early when this many tasks failed and none succeeded.
ABORT_AFTER_FAILURES = 3
#: Bytes of restored images allowed in flight (computed, not yet written) beyond one per slot.
IN_FLIGHT_BYTES = 512 * 2**20
#: Future states after a worker that had finished the task died: Dask computes it again.
RECOMPUTED = ("lost", "pending")


class BatchError(RuntimeError):
    """The run could not proceed (a model or write failure); ``str()`` is one line."""


def shorten(text: str, limit: int = 400) -> str:
    """``text`` cut to ``limit`` characters (errors from libraries can be paragraphs)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
            client.register_plugin(as_worker_plugin(InpainterPlugin(plan.spec)), name=name)
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
