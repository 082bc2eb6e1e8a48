"""The worker side of ``restore batch``: what every Dask worker holds and the task it runs.

An :class:`InpainterPlugin` (registered as a ``distributed.WorkerPlugin``) loads the model
**once** per worker, opens the archive and the masks, and keeps them for every task;
:func:`restore_task` restores one unit (an image, or a few small images of one size) with
:func:`~restore.inference.restoration.restore_images` and returns the pixels to the client,
the output's single writer.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from restore.inference.restoration import restore_images

if TYPE_CHECKING:
    from restore.data.archive import Archive
    from restore.data.masks import MaskSource
    from restore.models.base import Inpainter

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to restore any image of the run (pickled to the workers).

    Attributes:
        input_path: the input archive.
        mask_spec: the ``--masks`` path.
        resize_masks: resize masks of another size (nearest).
        dilate: grow holes by this many pixels.
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"``.
        size: the pieces' side for ``subsample`` and ``tile`` (the method's native size).
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
    size: int
    batch_size: int
    loader: Callable[[str], Inpainter]
    device: str = "cpu"
    threads: int | None = None


def method_loader(method: str, checkpoint: Path | None, ensemble: int = 1, blend: str = "none",
                  settings: Mapping[str, Any] | None = None) -> Callable[[str], Inpainter]:
    """A picklable ``loader(device)`` for a registered method with its checkpoint bound.

    The method's own ``load`` function is pickled (not its name), so methods registered at
    run time in the client (plugins, tests) work on workers that can import their module.
    ``ensemble`` > 1 wraps the model in a :class:`~restore.models.ensemble.SelfEnsemble`;
    ``blend="poisson"`` wraps that in a :class:`~restore.inference.poisson.PoissonBlended`
    (blending the ensemble's mean raw output). ``settings`` are the method's inference settings,
    passed to its loader.
    """
    from restore.inference.poisson import BLEND_MODES
    from restore.models.registry import get_method

    if blend not in BLEND_MODES:
        raise ValueError(f"unknown blend {blend!r}; expected one of {', '.join(BLEND_MODES)}")
    load = get_method(method).loader
    if settings:
        load = functools.partial(load, **settings)
    if ensemble == 1 and blend == "none":
        return functools.partial(load, checkpoint)
    return functools.partial(_load_wrapped, load, checkpoint, ensemble, blend)


def _load_wrapped(load: Callable[..., Inpainter], checkpoint: Path | None, ensemble: int, blend: str,
                  device: str) -> Inpainter:
    from restore.inference.poisson import PoissonBlended
    from restore.models.ensemble import SelfEnsemble

    inpainter = load(checkpoint, device)
    if ensemble > 1:
        inpainter = SelfEnsemble(inpainter, ensemble)
    if blend == "poisson":
        inpainter = PoissonBlended(inpainter)
    return inpainter


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
            state.inpainter, images, holes, strategy=self.spec.strategy, size=self.spec.size, batch_size=self.spec.batch_size
        )
        return dict(zip(keys, restored, strict=True))


def as_worker_plugin(plugin: InpainterPlugin) -> Any:
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
