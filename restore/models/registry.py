"""The methods ``restore`` knows: one :class:`Method` record each, the only list of methods.

Everything that depends on the method reads its record: ``--method`` choices and help
texts of ``restore batch``/``train``/``methods``, how ``restore batch`` loads the model and
cuts large images (``native_size``, ``default_strategy``), which trainer ``restore train``
builds, what ``python -m restore.training.ship`` keeps, the model card, the benchmarks and
the contract tests (``tests/models/test_contract.py``, ``tests/training/test_trainer_contract.py``).
Adding a method is adding a record here and a folder under ``restore/models/`` (DESIGN §12).

Records name their code as ``"module:attribute"`` strings, imported only when used: this
module is read by ``--help`` and must not import torch.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restore.models.config import config_from_dict
from restore.paths import WEIGHTS_DIR

if TYPE_CHECKING:  # the registry is read by --help: it must not import torch
    from restore.models.base import Inpainter

#: How ``restore batch`` may treat images larger than a method's native size.
STRATEGIES: tuple[str, ...] = ("subsample", "tile", "whole")
#: ``restore batch --blend`` post-processing of each fill (:mod:`restore.inference.poisson`).
BLEND_MODES: tuple[str, ...] = ("none", "poisson")
#: The piece side of ``subsample``/``tile`` for a method that works at any size.
DEFAULT_PIECE_SIZE = 256

Loader = Callable[[Path | None, str], "Inpainter"]

#: Size limits of FSR under ``--strategy whole``: about half an hour on one CPU core for a photo
#: with a 22 % hole, hours for harder images (more texture, larger holes) beyond. FSR's time grows
#: with the pixel count: the fast profile took 2.0 s at 256², 22 s at 1024², 83 s at 2048² and 320 s at 4096²
#: (about 21 minutes at 8192², extrapolated); the best one 44 s at 256² (about 30 minutes at
#: 2048², extrapolated at the fast profile's growth). Shift-map has no limit: it works at most
#: 800×600 inside (about 70 s at any size from 1024² up).
FSR_MAX_PIXELS = 8192 * 8192
FSR_BEST_MAX_PIXELS = 2048 * 2048


def import_target(target: str) -> Any:
    """The object a ``"package.module:attribute"`` string names (imported now)."""
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"expected 'module:attribute', got {target!r}")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: the ``--method`` value.
        summary: one line for ``restore methods`` and the help texts.
        config: the method's frozen config dataclass (``"module:Class"``; the paper's
            hyper-parameters as defaults), or None for a method without settings.
        network: the generator class built from a config (``"module:Class"``), for methods
            that restore with one network through :class:`~restore.models.network.NetworkInpainter`:
            ``Class(config)``, ``forward(image, mask) -> dict`` with at least ``predicted``
            (B, 3, H, W) in [0, 1], input sides multiples of ``config.multiple``.
        load: how to build the inpainter, ``load(checkpoint, device) -> Inpainter``, as a
            ``"module:function"`` string or a picklable callable; None uses the shared network
            loader (:func:`~restore.models.network.load_network_inpainter`) with ``network``.
        trainer: the trainer class (``"module:Class"``, :mod:`restore.training.trainer`), or None
            when ``restore train`` cannot train the method.
        native_size: the side the network works at (``restore train --size`` defaults to it,
            ``--strategy subsample``/``tile`` cut larger images into pieces of this side); None
            for methods that work at any size.
        default_strategy: ``restore batch``'s strategy for images larger than ``native_size``.
        ship_modules: the checkpoint modules a shipped (inference) checkpoint keeps.
        needs_weights: whether inference needs a checkpoint.
        training_masks: default ``restore train --masks`` kinds (None: the config's ``training_masks``
            property where it has one, else the loop's default mix).
        smoke_config: config overrides giving a network small enough to train a step in about
            a second (the contract tests train and restore every method with it).
        max_pixels: the largest image (height × width) ``restore batch`` gives the method whole
            (``--strategy whole``) unless ``--allow-large`` is passed: beyond it one image takes
            hours; None for no limit.
        slow: inference takes tens of seconds per 256² image or more: the contract tests run the
            method only under ``-m slow``.
        default_blend: ``restore batch``'s ``--blend`` for the method (GLCIC, WGAN: ``poisson``,
            their papers' post-processing; needs a raw output: see :attr:`blendable`).
        raw_output: the inpainter has ``predict(image, mask)``, its raw fill before compositing,
            without a ``network`` record (the WGAN's latent search); network methods have it anyway.
        inference_settings: config keys ``restore batch --set KEY=VALUE`` may change at inference,
            passed to ``load`` as keyword arguments (the WGAN's search steps and restarts).
        smoke_inference: inference settings that make the method fast enough for the contract tests
            (the WGAN: a few search steps instead of 1000).
        channels_last: run the network with channels-last (NHWC) weights at inference, where that
            was measured faster (``benchmarks/memory_format.py``: DeepFill 1.5x, GLCIC 1.4x,
            DeepGIN 1.1x at 256²; not CSA: equal). Must equal the trainer's
            :attr:`~restore.models.trainer.GANTrainer.channels_last`, so that a shipped file restores
            bit for bit as the run's own inpainter did (tested).
    """

    name: str
    summary: str
    config: str | None = None
    network: str | None = None
    load: str | Loader | None = None
    trainer: str | None = None
    native_size: int | None = None
    default_strategy: str = "subsample"
    ship_modules: tuple[str, ...] = ("generator",)
    needs_weights: bool = False
    training_masks: tuple[str, ...] | None = None
    smoke_config: Mapping[str, Any] = field(default_factory=dict)
    max_pixels: int | None = None
    slow: bool = False
    default_blend: str = "none"
    raw_output: bool = False
    inference_settings: tuple[str, ...] = ()
    smoke_inference: Mapping[str, Any] = field(default_factory=dict)
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.default_strategy not in STRATEGIES:
            raise ValueError(f"method {self.name!r}: unknown default strategy {self.default_strategy!r}")
        if self.default_blend not in BLEND_MODES or (self.default_blend != "none" and not self.blendable):
            raise ValueError(f"method {self.name!r}: default blend {self.default_blend!r} needs one of {', '.join(BLEND_MODES)} and a raw output")
        if (self.inference_settings or self.smoke_inference) and self.config is None:
            raise ValueError(f"method {self.name!r}: inference settings need a config class")
        if set(self.smoke_inference) - set(self.inference_settings):
            raise ValueError(f"method {self.name!r}: smoke_inference names keys that are not inference settings")
        if self.load is None and self.network is None:
            raise ValueError(f"method {self.name!r} needs a network or a load function")
        if self.trainer is not None and self.config is None:
            raise ValueError(f"method {self.name!r}: a trainable method needs a config class")

    @property
    def blendable(self) -> bool:
        """Whether the inpainter has a raw fill to Poisson-blend (``restore batch --blend poisson``)."""
        return self.network is not None or self.raw_output

    @property
    def trainable(self) -> bool:
        """Whether ``restore train --method NAME`` exists."""
        return self.trainer is not None

    @property
    def shipped_checkpoint(self) -> Path | None:
        """The checkpoint that ships inside the package, if there is one."""
        path = WEIGHTS_DIR / f"{self.name}.pt"
        return path if path.is_file() else None

    @property
    def shipped_variants(self) -> list[Path]:
        """Other checkpoints of the method that ship in the package (``NAME-VARIANT.pt``), by name."""
        return sorted(WEIGHTS_DIR.glob(f"{self.name}-*.pt"))

    @property
    def piece_size(self) -> int:
        """The side of the pieces ``subsample``/``tile`` cut large images into."""
        return self.native_size or DEFAULT_PIECE_SIZE

    def config_class(self) -> type:
        """The config dataclass (imported now)."""
        if self.config is None:
            raise ValueError(f"method {self.name!r} has no configuration")
        return import_target(self.config)

    def network_class(self) -> type:
        """The generator class (imported now)."""
        if self.network is None:
            raise ValueError(f"method {self.name!r} has no network")
        return import_target(self.network)

    def trainer_class(self) -> type:
        """The trainer class (imported now)."""
        if self.trainer is None:
            raise ValueError(f"method {self.name!r} cannot be trained")
        return import_target(self.trainer)

    @property
    def loader(self) -> Loader:
        """A picklable ``loader(checkpoint, device, **settings) -> Inpainter`` (Dask workers unpickle it by
        reference); ``settings`` are :attr:`inference_settings` values."""
        if self.load is None:
            from restore.models.network import load_network_inpainter

            return functools.partial(load_network_inpainter, self)
        if isinstance(self.load, str):
            return functools.partial(_call_target, self.load)
        return self.load


def _call_target(target: str, checkpoint: Path | None, device: str, **settings: Any) -> Inpainter:
    return import_target(target)(checkpoint, device, **settings)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "csa",
            "Coherent semantic attention (Liu et al. 2019): rough U-Net, then a refinement U-Net with the CSA layer",
            config="restore.models.csa.config:CSAConfig",
            network="restore.models.csa.networks:CSAGenerator",
            trainer="restore.models.csa.trainer:CSATrainer",
            native_size=256,
            default_strategy="subsample",
            needs_weights=True,
            smoke_config={"width": 4, "max_channels": 8, "depth": 5, "consistency_weight": 0.0,
                          "feature_discriminator": False, "discriminator_width": 4},
        ),
        Method(
            "deepfill",
            "Contextual attention (Yu et al. 2018, DeepFill v1): coarse dilated network, then a refinement that copies "
            "background patches into the hole; any size whole, memory linear in the area",
            config="restore.models.deepfill.config:DeepFillConfig",
            network="restore.models.deepfill.networks:DeepFillGenerator",
            trainer="restore.models.deepfill.trainer:DeepFillTrainer",
            native_size=256,
            default_strategy="whole",
            needs_weights=True,
            smoke_config={"width": 4, "critic_width": 4, "local_size": 16, "global_size": 32},
            channels_last=True,
        ),
        Method(
            "glcic",
            "Globally and locally consistent completion (Iizuka et al. 2017): a dilated completion network trained "
            "against one global + local decision; the 32² CIFAR-scale configuration ships as glcic-32",
            config="restore.models.glcic.config:GLCICConfig",
            network="restore.models.glcic.networks:CompletionNetwork",
            trainer="restore.models.glcic.trainer:GLCICTrainer",
            native_size=256,
            default_strategy="subsample",
            needs_weights=True,
            smoke_config={"width": 4, "critic_width": 4, "features": 8, "local_size": 16, "global_size": 32,
                          "global_layers": 3, "local_layers": 2, "generator_steps": 1, "discriminator_steps": 1},
            default_blend="poisson",
            channels_last=True,
        ),
        Method(
            "deepgin",
            "DeepGIN (Li et al. 2020, AIM extreme inpainting): coarse spatial-pyramid-dilation network, then a refinement "
            "with self-attention at three scales and back projection; two spectral-norm patch discriminators",
            config="restore.models.deepgin.config:DeepGINConfig",
            network="restore.models.deepgin.networks:DeepGINGenerator",
            trainer="restore.models.deepgin.trainer:DeepGINTrainer",
            native_size=256,
            default_strategy="subsample",
            needs_weights=True,
            smoke_config={"width": 4, "coarse_blocks": 1, "refine_blocks": 2, "discriminator_width": 4,
                          "discriminator_features": 4, "vgg_size": 0, "warmup_steps": 1},
            inference_settings=("output_lowpass",),
            channels_last=True,
        ),
        Method(
            "wgan",
            "Semantic inpainting by latent search of an improved WGAN (Vitoria et al. 2019): a generative model of "
            "64² images, searched per image for the sample that fits the hole's surroundings, Poisson-blended; "
            "learns a domain from unmasked photos; about a minute per image on a CPU",
            config="restore.models.wgan.config:WGANConfig",
            load="restore.models.wgan.inpainter:load_wgan",
            trainer="restore.models.wgan.trainer:WGANTrainer",
            native_size=64,
            default_strategy="whole",
            ship_modules=("generator", "critic"),
            needs_weights=True,
            smoke_config={"width": 2, "size": 32, "search_steps": 3, "restarts": 2},
            default_blend="poisson",
            raw_output=True,
            inference_settings=("search_steps", "restarts", "search_lr", "alpha", "beta", "eta", "z_clip", "window", "seed"),
            smoke_inference={"search_steps": 3, "restarts": 2},
        ),
        Method("telea", "OpenCV Telea fast marching (radius 3), classical baseline",
               load="restore.models.classical:load_telea", default_strategy="whole"),
        Method("ns", "OpenCV Navier-Stokes (radius 3), classical baseline",
               load="restore.models.classical:load_ns", default_strategy="whole"),
        Method("fsr", "OpenCV contrib frequency-selective reconstruction (Genser et al. 2018), fast profile: "
                      "the highest classical PSNR, best on thin damage (scratches, small holes); seconds per 256² image",
               load="restore.models.xphoto:load_fsr", default_strategy="whole", max_pixels=FSR_MAX_PIXELS),
        Method("fsr-best", "OpenCV contrib frequency-selective reconstruction, best profile: a little more PSNR "
                           "than fsr at about 20 times its time (most of a minute per 256² image)",
               load="restore.models.xphoto:load_fsr_best", default_strategy="whole", max_pixels=FSR_BEST_MAX_PIXELS, slow=True),
        Method("shiftmap", "OpenCV contrib shift-map (He & Sun 2012): copies real texture from elsewhere in the image, "
                           "the lowest classical SWD, but a low PSNR; seconds per 256² image, about a minute from 1024² up",
               load="restore.models.xphoto:load_shiftmap", default_strategy="whole"),
    ]
}


def register(method: Method, *, replace: bool = False) -> Method:
    """Add a method to :data:`METHODS` (plugins, tests); an existing name needs ``replace``."""
    if method.name in METHODS and not replace:
        raise ValueError(f"a method named {method.name!r} is registered already")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The record of ``name``.

    Raises:
        KeyError: no such method (the message lists the known ones).
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def trainable_methods() -> list[str]:
    """Names of the methods ``restore train`` can train."""
    return [name for name, method in METHODS.items() if method.trainable]


def build(name: str, **overrides: Any) -> Any:
    """The config of method ``name``: the paper's defaults with ``overrides`` (DESIGN §3).

    Raises:
        KeyError: unknown method.
        ValueError: an override that is not a field of the config, or a value the config rejects.
    """
    return config_from_dict(get_method(name).config_class(), overrides)


def strategy_help() -> str:
    """``restore batch --strategy``'s default, method by method, as the records give it."""
    by_strategy: dict[str, list[str]] = {}
    for method in METHODS.values():
        by_strategy.setdefault(method.default_strategy, []).append(method.name)
    return "; ".join(f"{strategy} for {', '.join(names)}" for strategy, names in by_strategy.items())


def blend_help() -> str:
    """``restore batch --blend``'s default, method by method, as the records give it."""
    blended = [name for name, method in METHODS.items() if method.default_blend != "none"]
    return f"poisson for {', '.join(blended)}, none for the others" if blended else "none"


def limited_help() -> str:
    """The methods with a size limit, for ``restore batch --allow-large``'s help, as the records give it."""
    names = [name for name, method in METHODS.items() if method.max_pixels is not None]
    return f"{', '.join(names)}: beyond it one image takes hours" if names else "no method has one"


class MissingWeightsError(RuntimeError):
    """A method needs weights and none were given or shipped."""


def resolve_checkpoint(name: str, checkpoint: Path | str | None) -> Path | None:
    """The checkpoint a run of ``name`` uses: the given file, a shipped weights file named
    without its folder (``csa-psnr`` or ``csa-psnr.pt``: see :attr:`Method.shipped_variants`),
    else the method's shipped checkpoint.

    Raises:
        MissingWeightsError: nothing given and nothing shipped, or a name that is neither a
            file nor a shipped weights file.
    """
    method = get_method(name)
    if not method.needs_weights:
        return None
    if checkpoint is not None:
        path = Path(checkpoint)
        if path.is_file():
            return path
        if path.parent == Path("."):  # a bare name: a shipped weights file, with or without .pt
            for shipped in (WEIGHTS_DIR / path.name, WEIGHTS_DIR / f"{path.name}.pt"):
                if shipped.suffix == ".pt" and shipped.is_file():
                    return shipped
        variants = ", ".join(p.stem for p in [*filter(None, [method.shipped_checkpoint]), *method.shipped_variants])
        raise MissingWeightsError(f"{checkpoint}: no such file, nor a shipped weights file" + (f" (shipped: {variants})" if variants else ""))
    if method.shipped_checkpoint is None:
        variants = " or ".join(p.stem for p in method.shipped_variants)
        raise MissingWeightsError(
            f"method {name!r} has no shipped checkpoint of its own; "
            + (f"pass --checkpoint {variants} (shipped) or " if variants else "")
            + f"train one with `restore train --method {name}` and pass it with --checkpoint"
        )
    return method.shipped_checkpoint


def load_inpainter(name: str, checkpoint: Path | None = None, device: str = "cpu") -> Inpainter:
    """Build the named method, with its checkpoint (or the shipped one) on ``device``."""
    return get_method(name).loader(resolve_checkpoint(name, checkpoint), device)
