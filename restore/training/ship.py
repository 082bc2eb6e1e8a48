"""Turn a training checkpoint into a shipped, half-precision inference checkpoint.

    python -m restore.training.ship runs/csa-w32/last.pt restore/weights/csa.pt

Keeps the modules the method's record names (``ship_modules``: the generator; the WGAN
keeps its critic too), as their moving averages where the run kept them, in float16; the
config, the step and the run's metadata (data, wall time, hardware, VGG weights used); and
refuses to write a file over ``--max-mb`` (the repository's limit for a shipped checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-mb", default=16.0, show_default=True, type=float, help="Refuse a result larger than this (MB = 10^6 bytes).")
@click.option("--full-precision", is_flag=True, help="Keep float32 weights.")
def main(checkpoint: Path, dest: Path, max_mb: float, full_precision: bool) -> None:
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


if __name__ == "__main__":
    main()
