"""The trainer contract every method's trainer follows, and the GAN trainer base that keeps them short.

The training loop (:func:`restore.training.loop.fit`) drives any :class:`Trainer`:

* it is built as ``TrainerClass(config, device=..., vgg_weights=..., bf16=...)``
  (``vgg_weights``: a file, ``"random"`` or None for the hub cache; used only by methods
  with VGG losses);
* before step ``s`` (0-based) the loop calls ``set_lr_scale(f)`` with the schedule's factor
  ``f`` in [0, 1] (warm-up, decay): every optimiser runs at its own base rate times ``f``
  (DeepGIN: generator 1e-4, discriminators 4e-4);
* ``train_step(s, batches)`` gets the step number and ``batches_per_step`` batches, each a
  pure function of ``(seed, s, k)``: WGAN-GP's critic iterations draw fresh batches
  (DeepFill v1: 5 critic batches, then one for the generator). Anything that depends on
  the step (phases: GLCIC's generator-only, discriminator-only and joint phases, DeepGIN's
  L1 warm-up) is derived from ``s``, so resuming at any step gives the same run;
* checkpoints hold ``modules()`` and ``optimizers()`` state dicts, the config
  (:func:`~restore.models.registry.config_to_dict`) and ``metadata()``; ``init_missing(name)``
  starts a module a resumed checkpoint lacks, ``start_from(models)`` takes ``restore train
  --init``'s weights (the method's ``ship_modules``);
* ``observe_photos(photos)``, optional: called with the training photos (uint8 RGB arrays)
  before the first step of every process, fresh or resumed, for statistics a network keeps
  (GLCIC's hole colour, the training set's mean pixel); it must not change a resumed run;
* ``sample(count, seed)``, optional: a generative model's samples (B, 3, S, S) in [0, 1]
  from fixed z (the WGAN); the loop's sample pictures are then a grid of them;
* ``inpainter()`` is the current network as an :class:`~restore.models.base.Inpainter`
  (for samples and the learning curve); ``gradient_sync``, set by the loop in data-parallel
  runs, is called with an optimiser's parameters after each backward pass.

:class:`GANTrainer` implements all of it for a generator with discriminators: a method's
trainer registers its modules and optimisers and writes three hooks — the generator's loss
terms, the discriminators' loss terms, and (optionally) the phase of a step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from restore.models.base import Inpainter
from restore.nn.ema import ExponentialMovingAverage

#: Phases of a step: the generator alone, the discriminators alone, or both.
GENERATOR, DISCRIMINATOR, JOINT = "generator", "discriminator", "joint"
PHASES = (GENERATOR, DISCRIMINATOR, JOINT)

#: A loss term: (weight, unweighted value). The step minimises Σ weight · value and logs the values.
Term = tuple[float, Tensor]
Batch = tuple[Tensor, Tensor]


class Trainer(Protocol):
    """What a method gives the training loop (see the module docstring for the contract)."""

    name: str
    config: Any
    device: torch.device
    batches_per_step: int
    gradient_sync: Callable[[Iterable[Tensor]], None] | None

    def modules(self) -> dict[str, nn.Module]:
        """Every module a checkpoint keeps (networks, moving averages), by name."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser a checkpoint keeps, by name."""
        ...

    def metadata(self) -> dict[str, object]:
        """Facts to record in checkpoints (VGG weights used, bf16)."""
        ...

    def set_lr_scale(self, scale: float) -> None:
        """Run every optimiser at its base learning rate times ``scale``."""
        ...

    def learning_rates(self) -> dict[str, float]:
        """The current learning rate of each optimiser (for the log)."""
        ...

    def train_step(self, step: int, batches: Sequence[Batch]) -> dict[str, float]:
        """Train step ``step`` (0-based) on ``batches_per_step`` (images, masks) batches; returns losses as floats."""
        ...

    def inpainter(self) -> Inpainter:
        """The network being trained (its moving average where kept), as an inpainter."""
        ...

    def start_from(self, models: Mapping[str, Mapping[str, Tensor]]) -> None:
        """Take these modules' weights (any float precision) as the starting point of a new run."""
        ...

    def init_missing(self, name: str) -> None:
        """Start module ``name``, which a resumed checkpoint lacks, or raise ``ValueError``."""
        ...


class GANTrainer(ABC):
    """A generator trained with reconstruction and adversarial losses: the shared mechanics.

    A subclass sets ``name``, builds its networks in ``__init__`` after calling this one,
    registers them with :meth:`add_module` (the generator as ``"generator"``, with a moving
    average when ``average`` > 0) and its optimisers with :meth:`add_optimizer`
    (``"generator"`` and, with discriminators, ``"discriminator"``), and implements
    :meth:`generator_terms` and :meth:`discriminator_terms` (and :meth:`phase` for a
    schedule). :meth:`train_step` then does, per step: the critic updates
    (``critic_steps`` of them, each on a fresh batch when ``batches_per_step`` > 1, else
    all on the step's one batch, whose generator output is shared with the generator
    update), then one generator update, then the moving average. Forward passes run under
    bfloat16 autocast when ``bf16``; losses are summed in float32.

    Args:
        config: the method's config (needs ``multiple`` for :meth:`inpainter`).
        device: where to train.
        vgg_weights: VGG weights for methods with VGG losses (a file, ``"random"``, None).
        bf16: bfloat16 autocast for forward passes.
    """

    name: ClassVar[str] = ""
    #: Critic updates per step (WGAN-GP: 5).
    critic_steps: ClassVar[int] = 1
    #: Batches per step: 1 (shared by critic and generator updates) or ``critic_steps + 1``.
    batches_per_step: ClassVar[int] = 1
    #: ``--set`` items that train the method without VGG-19 (its VGG losses off, and what must
    #: change with them); named when VGG weights are missing.
    without_vgg: ClassVar[tuple[str, ...]] = ()
    #: Keep every module's 4-D weights channels-last (NHWC): a training step of DeepFill, GLCIC,
    #: DeepGIN and the WGAN runs 1.3-1.6x faster so on this CPU (oneDNN's bf16 convolutions;
    #: ``benchmarks/memory_format.py``), and the maps follow (a convolution with channels-last
    #: weights returns channels-last maps whatever its input). Not CSA's (its own ops want NCHW;
    #: 1.1x). The registry's :attr:`~restore.models.registry.Method.channels_last` makes the
    #: same choice for inference.
    channels_last: ClassVar[bool] = False

    def __init__(self, config: Any, *, device: str | torch.device = "cpu", vgg_weights: str | Path | None = None,
                 bf16: bool = False) -> None:
        if self.batches_per_step not in (1, self.critic_steps + 1):
            raise ValueError(f"{type(self).__name__}: batches_per_step must be 1 or critic_steps + 1")
        self.config = config
        self.device = torch.device(device)
        self.vgg_weights = vgg_weights
        self.vgg_source: str | None = None
        self.bf16 = bf16
        self.gradient_sync: Callable[[Iterable[Tensor]], None] | None = None
        self._modules: dict[str, nn.Module] = {}
        self._averages: dict[str, str] = {}  # average's name -> module's name
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._base_lrs: dict[str, float] = {}
        self._clip: dict[str, float | None] = {}

    # -- what the subclass registers ------------------------------------------------------
    def add_module(self, name: str, module: nn.Module, average: float = 0.0, own_statistics: bool = False) -> nn.Module:
        """Register a checkpointed module (moved to the device); ``average`` > 0 also keeps
        its exponential moving average as ``NAME_ema`` (what is evaluated and shipped), with
        its own batch-norm statistics when ``own_statistics`` (the subclass measures them)."""
        if name in self._modules:
            raise ValueError(f"module {name!r} is registered already")
        module = module.to(self.device, memory_format=torch.channels_last) if self.channels_last else module.to(self.device)
        self._modules[name] = module
        if average > 0:
            self._modules[f"{name}_ema"] = ExponentialMovingAverage(module, average, own_statistics).to(self.device)
            self._averages[f"{name}_ema"] = name
        return module

    def add_optimizer(self, name: str, parameters: Iterable[Tensor], lr: float, betas: tuple[float, float] = (0.5, 0.999),
                      clip_norm: float | None = None) -> torch.optim.Optimizer:
        """Register an Adam optimiser with its own base learning rate (scaled by the loop's schedule).

        Args:
            clip_norm: clip the gradient norm of its parameters to this before each step (None: no clipping).
        """
        optimizer = torch.optim.Adam(list(parameters), lr=lr, betas=betas)
        self._optimizers[name] = optimizer
        self._base_lrs[name] = lr
        self._clip[name] = clip_norm
        return optimizer

    def average(self, name: str = "generator") -> ExponentialMovingAverage | None:
        """The moving average of module ``name``, if one is kept."""
        module = self._modules.get(f"{name}_ema")
        return module if isinstance(module, ExponentialMovingAverage) else None

    # -- the loop's side of the contract -------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return dict(self._modules)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self._optimizers)

    def metadata(self) -> dict[str, object]:
        return {"vgg_weights": self.vgg_source, "bf16": self.bf16}

    def set_lr_scale(self, scale: float) -> None:
        for name, optimizer in self._optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self._base_lrs[name] * scale

    def learning_rates(self) -> dict[str, float]:
        return {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in self._optimizers.items()}

    def start_from(self, models: Mapping[str, Mapping[str, Tensor]]) -> None:
        for name, state in models.items():
            if name not in self._modules or name in self._averages:
                raise ValueError(f"{type(self).__name__} has no module {name!r} to start from")
            self._modules[name].load_state_dict({key: value.float() if value.is_floating_point() else value for key, value in state.items()})
        for average, source in self._averages.items():
            if source in models:
                self._modules[average].reset(self._modules[source])

    def init_missing(self, name: str) -> None:
        if name in self._averages:  # an average added to an older run: start at the current weights
            self._modules[name].reset(self._modules[self._averages[name]])
            return
        raise ValueError(f"the checkpoint has no {name!r} weights")

    def inpainter(self) -> Inpainter:
        """The generator (its moving average when kept) as a :class:`~restore.models.network.NetworkInpainter`."""
        from restore.models.network import NetworkInpainter

        average = self.average("generator")
        generator = average.module if average is not None else self._modules["generator"]
        return NetworkInpainter(self.name, generator, self.config.multiple, device=self.device, bf16=self.bf16, channels_last=self.channels_last)

    @classmethod
    def describe_losses(cls, config: Mapping[str, Any]) -> str:
        """The generator's losses and weights in words, for model cards (default: the config's ``*_weight`` fields)."""
        weights = [f"{key.removesuffix('_weight')} {value}" for key, value in config.items() if key.endswith("_weight") and value]
        return ", ".join(weights) or "none listed"

    def parameter_count(self, name: str = "generator") -> int:
        """Parameters of module ``name``."""
        return sum(p.numel() for p in self._modules[name].parameters())

    # -- hooks ----------------------------------------------------------------------------
    def phase(self, step: int) -> str:
        """What step ``step`` trains: :data:`GENERATOR`, :data:`DISCRIMINATOR` or :data:`JOINT` (the default)."""
        return JOINT

    def generate(self, images: Tensor, masks: Tensor) -> dict[str, Tensor]:
        """The generator's batch dict (called under autocast)."""
        return self._modules["generator"](images, masks)

    @abstractmethod
    def generator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """The generator's loss terms for one batch: name -> (weight, value)."""

    def discriminator_terms(self, images: Tensor, masks: Tensor, out: dict[str, Tensor], phase: str) -> dict[str, Term]:
        """The discriminators' loss terms for one batch (``out`` detached): name -> (weight, value)."""
        return {}

    # -- one step -------------------------------------------------------------------------
    def autocast(self) -> torch.autocast:
        """bfloat16 autocast on the trainer's device when ``bf16`` (a no-op otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, step: int, batches: Sequence[Batch]) -> dict[str, float]:
        """Critic updates, then a generator update, as the phase of ``step`` asks.

        Shape:
            batches[k]: images (B, 3, H, W) in [0, 1], masks (B, 1, H, W), 1 = hole.
        """
        if len(batches) != self.batches_per_step:
            raise ValueError(f"{self.name} takes {self.batches_per_step} batch(es) per step, got {len(batches)}")
        phase = self.phase(step)
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r} at step {step}")
        moved = [(images.to(self.device, non_blocking=True), masks.to(self.device, non_blocking=True)) for images, masks in batches]
        images, masks = moved[-1]
        update_critics = phase != GENERATOR and "discriminator" in self._optimizers
        update_generator = phase != DISCRIMINATOR
        for module in self._modules.values():
            module.train()
        losses: dict[str, float] = {}
        out = None
        if update_critics:
            for k in range(self.critic_steps):
                critic_images, critic_masks = moved[k] if len(moved) > 1 else (images, masks)
                if len(moved) > 1 or out is None:
                    with torch.set_grad_enabled(update_generator and len(moved) == 1), self.autocast():
                        fake = self.generate(critic_images, critic_masks)
                    if len(moved) == 1:
                        out = fake
                else:
                    fake = out
                detached = {key: value.detach() for key, value in fake.items()}
                terms = self.discriminator_terms(critic_images, critic_masks, detached, phase)
                losses.update(self._minimise("discriminator", terms, total_name="discriminator"))
        if update_generator:
            if out is None:
                with self.autocast():
                    out = self.generate(images, masks)
            terms = self.generator_terms(images, masks, out, phase)
            losses.update(self._minimise("generator", terms, total_name="total"))
            for average, source in self._averages.items():
                self._modules[average].update(self._modules[source])
        return losses

    def _minimise(self, optimizer_name: str, terms: dict[str, Term], total_name: str) -> dict[str, float]:
        """Σ weight·value over ``terms``, one backward pass and one step of the named optimiser."""
        if not terms:
            return {}
        total = sum(weight * value.float() for weight, value in terms.values())
        optimizer = self._optimizers[optimizer_name]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if self.gradient_sync is not None:
            self.gradient_sync(parameters)
        if self._clip[optimizer_name] is not None:
            torch.nn.utils.clip_grad_norm_(parameters, self._clip[optimizer_name])
        optimizer.step()
        logged = {name: float(value.detach()) for name, (_, value) in terms.items()} if len(terms) > 1 or total_name == "total" else {}
        logged[total_name] = float(total.detach())
        return logged
