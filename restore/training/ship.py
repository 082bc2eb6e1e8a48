"""Turn a training checkpoint into a shipped, half-precision inference checkpoint.

    python -m restore.training.ship runs/csa-w32/last.pt restore/weights/csa.pt

Keeps the modules the method's record names (``ship_modules``: the generator; the WGAN
keeps its critic too), as their moving averages where the run kept them (``--no-average``: the
trained weights), in float16; the
config, the step and the run's metadata (data, wall time, hardware, VGG weights used); and
refuses to write a file over ``--max-mb`` (the repository's limit for a shipped checkpoint).

``--batch-norm-batches N`` first measures the shipped generator's batch-norm statistics afresh
(:func:`restore.nn.batch_norm.recompute_batch_norm`) over N batches drawn as the run draws
them (its photos less the held-out ones, crop side, batch size, masks and seed), for networks
with batch norm whose moving average did not keep statistics of its own.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-mb", default=16.0, show_default=True, type=float, help="Refuse a result larger than this (MB = 10^6 bytes).")
@click.option("--full-precision", is_flag=True, help="Keep float32 weights.")
@click.option("--no-average", "no_average", is_flag=True,
              help="Ship the trained weights, not their moving average (early in a run, when the average still leans on the "
                   "starting weights: compare both on the held-out photos first).")
@click.option("--batch-norm-batches", default=0, show_default=True, type=click.IntRange(min=0),
              help="Measure the generator's batch-norm statistics afresh over this many batches of the run's own training data (0: keep the checkpoint's).")
def main(checkpoint: Path, dest: Path, max_mb: float, full_precision: bool, no_average: bool, batch_norm_batches: int) -> None:
    """Write DEST, the inference-only form of CHECKPOINT."""
    import tempfile

    from restore.checkpoint import (
        CheckpointError,
        inference_checkpoint,
        load_checkpoint,
        save_checkpoint,
    )
    from restore.models.registry import METHODS
    from restore.paths import file_digest

    try:
        full = load_checkpoint(checkpoint)
    except CheckpointError as error:
        raise click.ClickException(str(error)) from None
    method = METHODS.get(str(full.get("method")))
    if method is None:
        raise click.ClickException(f"{checkpoint} is a checkpoint of {full.get('method')!r}, which is not a registered method")
    missing = [name for name in method.ship_modules if name not in full["models"]]
    if missing:
        raise click.ClickException(f"{checkpoint} lacks the {', '.join(missing)} weights a {method.name} checkpoint ships")
    if no_average:  # what follows then takes the trained weights wherever it would take their average
        full["models"] = {name: state for name, state in full["models"].items() if not name.endswith("_ema")}
    if batch_norm_batches:
        _recompute_statistics(full, method, batch_norm_batches, checkpoint)
    slim = inference_checkpoint(full, half=not full_precision, keep=method.ship_modules)
    slim["metadata"]["source_checkpoint"] = checkpoint.name
    slim["metadata"]["total_steps"] = int(full["step"]) + int(full.get("metadata", {}).get("base_steps", 0))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:  # same filesystem: the rename is atomic
        trial = Path(scratch) / dest.name
        save_checkpoint(slim, trial)
        size = trial.stat().st_size
        if size > max_mb * 1e6:
            raise click.ClickException(f"{dest.name} would be {size / 1e6:.1f} MB, over --max-mb {max_mb}")
        trial.replace(dest)
    click.echo(f"{dest}: step {full['step']} ({slim['metadata']['total_steps']} in all), {size / 1e6:.2f} MB, {file_digest(dest)}")



def _recompute_statistics(full: dict, method: object, count: int, checkpoint: Path) -> None:
    """Replace the shipped generator's batch-norm statistics in ``full`` (in place) by ones measured
    over ``count`` batches of the run's training data; records it in the metadata."""
    import torch

    from restore.checkpoint import inference_weights
    from restore.data.datasets import TrainingBatches
    from restore.models.network import generator_from_checkpoint
    from restore.nn.batch_norm import recompute_batch_norm
    from restore.training.job import JobError, training_photos

    meta = full.get("metadata", {})
    options = meta.get("options", {})
    if not meta.get("data") or not options:
        raise click.ClickException(f"{checkpoint} records no training data to measure batch-norm statistics on")
    try:
        names, photos = training_photos(Path(meta["data"]))
    except JobError as error:
        raise click.ClickException(f"--batch-norm-batches: {error}") from None
    held = set(meta.get("held_out", []))
    photos = [photo for name, photo in zip(names, photos, strict=True) if name not in held]
    batches = TrainingBatches(photos, size=int(options["size"]), batch_size=int(options["batch_size"]),
                              mask_kinds=tuple(options["mask_kinds"]), seed=int(options["seed"]))
    generator = generator_from_checkpoint(method, full)
    first = int(full["step"])
    if recompute_batch_norm(generator, (batches.batch(first + k) for k in range(count))) == 0:
        raise click.ClickException(f"--batch-norm-batches: the {method.name} generator has no batch norm")
    state = generator.state_dict()
    name = "generator_ema" if "generator_ema" in full["models"] else "generator"
    prefix = "module." if name == "generator_ema" else ""
    kept = full["models"][name]
    for key in inference_weights(full):
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            kept[prefix + key] = state[key].to(kept[prefix + key].dtype) if isinstance(state[key], torch.Tensor) else state[key]
    full.setdefault("metadata", {})["batch_norm_recomputed"] = {"batches": count, "batch_size": int(options["batch_size"]),
                                                               "from_step": first}


if __name__ == "__main__":
    main()
