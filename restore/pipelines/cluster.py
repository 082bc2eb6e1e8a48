"""Dask clients for ``restore batch`` and ``restore train``: an embedded cluster, or an existing one by address.

:func:`open_client` starts a ``LocalCluster`` of spawned worker processes (one Dask thread
each; the caller sets their torch threads; Dask's ``MALLOC_TRIM_THRESHOLD_`` is not set in
them: it made CPU inference 25-45 % slower) or connects to ``--scheduler`` within a timeout,
checking first that a Dask scheduler answers there (a refused connection fails at once,
with a one-line :class:`ClusterError`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from restore.hardware import usable_cores
from restore.messages import one_line

if TYPE_CHECKING:
    from distributed import Client

#: Seconds to reach a ``--scheduler`` (and to wait for its first worker).
CONNECT_TIMEOUT = 30.0
#: Worker deaths a task may cause before it counts as failed (embedded cluster).
ALLOWED_FAILURES = 2


class ClusterError(RuntimeError):
    """The cluster cannot be reached or used; ``str()`` is one line."""


class SchedulerAddressError(ValueError):
    """A ``--scheduler`` value that is not an address."""


def parse_scheduler_address(address: str) -> tuple[str, str]:
    """Check a ``--scheduler`` address: ``tcp://host:port``, ``host:port``, ``tls://…``, ``inproc://…``.

    Returns:
        (protocol, location).

    Raises:
        SchedulerAddressError: malformed.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(address.strip())
        if protocol in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as error:
        raise SchedulerAddressError(f"not a scheduler address: {address!r} ({one_line(error)}); expected e.g. tcp://host:8786") from None
    return protocol, location


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
            raise ClusterError(f"cannot reach {where}: connection refused; is a scheduler running there?") from None
        except socket.gaierror as error:
            raise ClusterError(f"cannot reach {where}: unknown host ({one_line(error)})") from None
        except OSError as error:
            raise ClusterError(f"cannot reach {where} within {timeout:g} s: {one_line(error) or type(error).__name__}") from None

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
        raise ClusterError(f"no answer from {where} within {timeout:g} s") from None
    except Exception as error:
        raise ClusterError(f"cannot talk to {where}: {type(error).__name__}: {one_line(error)}") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise ClusterError(f"{address} (--scheduler) answers, but not as a Dask scheduler")


def default_workers_threads(workers: int | None, threads: int | None) -> tuple[int, int]:
    """Defaults of the embedded cluster: one worker; torch threads = usable cores / workers.

    One worker keeps memory bounded whatever the image size (an 8192² photo with Telea: a
    peak of 1.8–3.3 GiB for the whole process tree, client included, depending on the
    photo and its holes; see ``benchmarks/batch.py`` and the slow test); several single-threaded
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
        ClusterError: the scheduler cannot be reached or has no workers.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        _probe(scheduler, timeout)
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except Exception as error:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} (--scheduler) within {timeout:g} s: {one_line(error)}") from None
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError):
                raise ClusterError(f"the Dask cluster at {scheduler} has no workers (waited {timeout:g} s)") from None
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
