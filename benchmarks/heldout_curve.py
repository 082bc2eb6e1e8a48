"""Score checkpoints on a training run's held-out photos, the learning curve's protocol.

The learning curve (``RUN_DIR/curve.jsonl``) scores only the checkpoints a run evaluates while
it trains; this scores any checkpoints (the one a run started from, kept ``step-*.pt`` files,
another run's) on the same held-out photos and masks, with OpenCV in the same run, so
fine-tuning runs can be compared and chosen on training data alone (never on ``eval/``).

    python benchmarks/heldout_curve.py --data ../shared/data/train --holdout 16 \\
        restore/weights/csa.pt runs/csa-gan-a/step-001000.pt ... [--json bench-out/heldout.json]
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("checkpoints", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=Path("../shared/data/train"), show_default=True)
@click.option("--holdout", default=16, show_default=True, type=int, help="As the run's --holdout.")
@click.option("--seed", default=0, show_default=True, type=int, help="As the run's --seed.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(checkpoints: tuple[Path, ...], data: Path, holdout: int, seed: int, json_path: Path | None) -> None:
    import torch

    from restore.checkpoint import load_checkpoint
    from restore.data.datasets import load_images
    from restore.evaluation import evaluate, format_table
    from restore.models.registry import get_method
    from restore.training.job import held_out

    torch.set_grad_enabled(False)
    names, photos = load_images(data)
    _, _, held = held_out(names, photos, holdout, seed)
    results = {}
    for name in ("telea", "ns"):
        results[name] = evaluate(get_method(name).loader(None, "cpu"), held.images, held.mask_sets)
    for path in checkpoints:
        method = get_method(str(load_checkpoint(path).get("method")))
        results[str(path)] = evaluate(method.loader(path, "cpu"), held.images, held.mask_sets)
        click.echo(format_table({str(path): results[str(path)]}).splitlines()[-1], err=True)
    click.echo(format_table(results))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
