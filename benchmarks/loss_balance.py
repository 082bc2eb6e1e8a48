"""The share of the generator's gradient each loss term carries, at a training checkpoint.

Loads a run's checkpoint (its generator and discriminators), draws training batches as the run
did (its crop size, batch size and mask kinds) and prints, per term, its weight, its value, the
norm of its weighted gradient over the generator's parameters, that norm per unit of weight
(so another weight's share can be read off: the norm is linear in it) and its share of the sum.

    python benchmarks/loss_balance.py runs/deepgin-adv/last.pt --batches 4 [--phase joint]
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=Path("../shared/data/train"), show_default=True)
@click.option("--batches", default=4, show_default=True, type=click.IntRange(min=1), help="Batches averaged over.")
@click.option("--phase", type=click.Choice(["generator", "joint"]), default="joint", show_default=True,
              help="Which phase's generator terms (joint: with the adversarial term).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--vgg-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="VGG weights for methods whose losses use them, as restore train takes them.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(checkpoint: Path, data: Path, batches: int, phase: str, threads: int, vgg_weights: Path | None,
         json_path: Path | None) -> None:
    import numpy as np
    import torch

    from restore.checkpoint import CheckpointError, load_checkpoint
    from restore.data.datasets import DEFAULT_TRAINING_MASKS, TrainingBatches, load_images
    from restore.models.config import saved_config
    from restore.models.registry import get_method
    from restore.nn.vgg import VGGWeightsError
    from restore.training.loop import restore_state
    from restore.training.loss_balance import TermGradient, shares, term_gradients

    torch.set_num_threads(threads)
    try:
        state = load_checkpoint(checkpoint)
        method = get_method(str(state.get("method")))
        if not method.trainable:
            raise click.ClickException(f"{checkpoint}: method {method.name!r} has no trainer")
        if "optimizers" not in state:
            raise click.ClickException(f"{checkpoint} is a shipped checkpoint; give a run's checkpoint (RUN/last.pt, with its discriminators)")
        config_class = method.config_class()
        config = config_class(**saved_config(config_class, state["config"]))
        options = state.get("metadata", {}).get("options", {})
        bf16 = bool(state.get("metadata", {}).get("bf16", True))
        trainer = method.trainer_class()(config, vgg_weights=vgg_weights, bf16=bf16)
        restore_state(trainer, state)
    except (CheckpointError, KeyError, ValueError, VGGWeightsError) as error:
        raise click.ClickException(f"{checkpoint}: {error}") from None
    _, photos = load_images(data)
    source = TrainingBatches(photos, options.get("size") or 128, options.get("batch_size") or 4,
                             mask_kinds=options.get("mask_kinds") or DEFAULT_TRAINING_MASKS, seed=12345)
    rows: dict[str, list] = {}
    for index in range(batches):
        images, masks = source.batch(index)
        for name, term in term_gradients(trainer, images, masks, phase).items():
            rows.setdefault(name, []).append(term)
    mean = {name: {"weight": terms[0].weight, "value": float(np.mean([t.value for t in terms])),
                   "gradient_norm": float(np.mean([t.gradient_norm for t in terms]))} for name, terms in rows.items()}
    fractions = shares({name: TermGradient(**values) for name, values in mean.items()})
    click.echo(f"{checkpoint} ({state.get('method')}, step {state.get('step')}, {batches} batch(es), phase {phase})")
    click.echo(f"{'term':22s} {'weight':>9s} {'value':>9s} {'|grad|':>10s} {'|grad|/weight':>14s} {'share':>7s}")
    for name, values in mean.items():
        per_unit = values["gradient_norm"] / values["weight"] if values["weight"] else float("nan")
        click.echo(f"{name:22s} {values['weight']:9.4g} {values['value']:9.4f} {values['gradient_norm']:10.4g} {per_unit:14.4g} {fractions[name]:7.1%}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"checkpoint": str(checkpoint), "step": state.get("step"), "terms": mean, "shares": fractions}, indent=1))


if __name__ == "__main__":
    main()
