"""Validation and planning of a ``restore batch`` run: everything is checked before any cluster exists.

:func:`prepare_batch` checks the input archive, the output (new, resumed or ``overwrite``),
the method and its checkpoint, the masks of every image still to do (present and of the
image's size, unless ``skip_missing`` / ``resize_masks``), that no image is over the method's
size limit for ``--strategy whole`` (unless ``allow_large``) and, on resume, that the output was
produced by the same input, method, checkpoint, masks, strategy (with the method's piece
size), ensemble and blend. It groups the images still to do into **units**: one image per task,
except that several small images of one size (fewer model inputs than ``batch_size`` each)
share a task so they fill one model batch. Bad input raises :class:`PlanError`, naming the option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restore.inference.poisson import BLEND_MODES
from restore.inference.restoration import pieces_per_image
from restore.messages import megapixels, one_line, preview
from restore.models.ensemble import ENSEMBLE_SIZES
from restore.models.registry import DEFAULT_PIECE_SIZE, STRATEGIES
from restore.paths import tree_fingerprint
from restore.pipelines.batch_worker import RunSpec, method_loader

if TYPE_CHECKING:
    from restore.data.archive import Archive
    from restore.data.masks import MaskSource
    from restore.data.output_archive import OutputArchive
    from restore.models.registry import Method


class PlanError(ValueError):
    """Bad input found while validating a run; names the option.

    Args:
        message: one line.
        option: the CLI option (``"--masks"``) the problem belongs to.
    """

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


def default_output(input_path: Path) -> Path:
    """``photos.zarr`` → ``photos.restored.zarr`` beside it (``photos`` → ``photos.restored.zarr``)."""
    name = Path(input_path).name
    stem = name[: -len(".zarr")] if name.lower().endswith(".zarr") else name
    return Path(input_path).with_name(f"{stem}.restored.zarr")


def plan_units(keys: Sequence[str], shapes: dict[str, tuple[int, int]], batch_size: int, strategy: str,
               size: int = DEFAULT_PIECE_SIZE) -> list[tuple[str, ...]]:
    """Group keys into tasks: same-size images, as many per task as fill one model batch.

    An image that needs n model inputs (1 within ``size``², more when sub-sampled or tiled)
    shares its task with up to ``batch_size // n - 1`` other images of its size, taken in
    archive order; an image with n ≥ ``batch_size`` is a task of its own.

    Args:
        keys: keys to compute, in archive order.
        shapes: (H, W) per key.
        batch_size: model inputs per call.
        strategy: ``"subsample"``, ``"tile"`` or ``"whole"``.
        size: the pieces' side (the method's native size).

    Returns:
        Units (tuples of keys).
    """
    groups: dict[tuple[int, int], list[str]] = {}
    for key in keys:
        groups.setdefault(tuple(shapes[key]), []).append(key)
    units: list[tuple[str, ...]] = []
    for (height, width), members in groups.items():
        per_unit = max(1, batch_size // pieces_per_image(height, width, strategy, size))
        units.extend(tuple(members[i : i + per_unit]) for i in range(0, len(members), per_unit))
    order = {key: i for i, key in enumerate(keys)}
    units.sort(key=lambda unit: order[unit[0]])
    return units


def strategy_options(strategy: str, size: int = DEFAULT_PIECE_SIZE) -> dict[str, int]:
    """The strategy's parameters, recorded in the output's provenance (and checked on resume)."""
    from restore.inference import tiles

    if strategy == "subsample":
        return {"size": size}
    if strategy == "whole":
        return {}
    return {"size": size, "overlap": tiles.default_overlap(size)}


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
                   "strategy": None, "strategy_options": None, "mask_options": None, "ensemble": 1,
                   "blend": "none", "settings": {}}

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
    from restore.checkpoint import CheckpointError, load_checkpoint

    try:
        trained = load_checkpoint(path).get("method")
    except CheckpointError as error:
        raise PlanError(str(error), "--checkpoint") from None
    if trained != method:
        raise PlanError(f"{path} is a {trained!r} checkpoint, not {method!r}", "--checkpoint")


def _check_size_limit(method: Method, keys: Sequence[str], shapes: dict[str, tuple[int, int]]) -> None:
    """Refuse images larger than the method's limit for ``--strategy whole`` (hours each)."""
    if method.max_pixels is None:
        return
    over = [key for key in keys if shapes[key][0] * shapes[key][1] > method.max_pixels]
    if over:
        height, width = shapes[over[0]]
        raise PlanError(
            f"{len(over)} image(s) are over {method.name}'s limit of {megapixels(method.max_pixels)} for --strategy whole "
            f"({over[0]}: {height}x{width}; hours each): pass --allow-large to restore them whole anyway, or --strategy tile",
            "--method",
        )


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
    blend: str = "none",
    allow_large: bool = False,
    bar: Callable[..., Any] | None = None,
    settings: Mapping[str, Any] | None = None,
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
        blend: ``"none"``, or ``"poisson"`` to Poisson-blend each fill (:mod:`restore.inference.poisson`;
            network methods only).
        allow_large: restore images over the method's size limit whole all the same
            (:attr:`~restore.models.registry.Method.max_pixels`).
        bar: optional ``tqdm``-like factory for the mask check's progress.
        settings: the method's inference settings (``--set``; keys of its record's
            ``inference_settings``), recorded with the output like the other settings.

    Returns:
        The plan; call :meth:`BatchPlan.close` (or run :func:`execute`) to release a resumed output.

    Raises:
        PlanError: bad input, naming the option.
    """
    from restore.data.archive import ArchiveError, is_archive, open_archive
    from restore.data.masks import MaskError, open_mask_source
    from restore.data.output_archive import OutputArchive
    from restore.models.registry import METHODS, MissingWeightsError, resolve_checkpoint
    from restore.paths import file_digest

    if batch_size < 1:
        raise PlanError(f"must be at least 1, got {batch_size}", "--batch-size")
    if strategy not in STRATEGIES:
        raise PlanError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}", "--strategy")
    if ensemble not in ENSEMBLE_SIZES:
        raise PlanError(f"must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {ensemble}", "--ensemble")
    if blend not in BLEND_MODES:
        raise PlanError(f"must be one of {', '.join(BLEND_MODES)}, got {blend!r}", "--blend")
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
    if blend != "none" and not METHODS[method].blendable:
        raise PlanError(f"method {method!r} has no network output to blend; --blend {blend} needs a network method", "--blend")
    settings = dict(settings or {})
    fixed = sorted(set(settings) - set(METHODS[method].inference_settings))
    if fixed:
        raise PlanError(f"{', '.join(fixed)}: not an inference setting of {method}", "--set")
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
        "strategy_options": strategy_options(strategy, METHODS[method].piece_size),
        "ensemble": int(ensemble),
        "blend": blend,
        "settings": settings,
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
        if strategy == "whole" and not allow_large:
            _check_size_limit(METHODS[method], todo, shapes)
        try:
            _check_masks(Path(masks_spec), resize_masks, todo, shapes, bar)
        except MaskError as error:
            raise PlanError(str(error), "--masks") from None
        units = plan_units(todo, shapes, batch_size, strategy, METHODS[method].piece_size)
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
        size=METHODS[method].piece_size,
        batch_size=int(batch_size),
        loader=method_loader(method, checkpoint, ensemble, blend, settings),
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
