"""Channels-last (NHWC) against NCHW weights: training-step and inference time per method.

For each method, in one process: a training step of its trainer (the method's shipped
configuration where one ships, else its defaults with ``--set``) in each phase it has (the
generator alone, and with its critics), and inference through
:class:`~restore.models.network.NetworkInpainter` at ``--size``, with the weights in each
layout, alternating the layouts on every repeat and keeping each one's fastest time. What the
registry's ``channels_last`` and the trainers' ``channels_last`` should say is read off the
ratio column (NCHW time / NHWC time: above 1, channels-last is faster).

    python benchmarks/memory_format.py [--method deepfill ...] [--size 256] [--batch 4] [--repeats 2] [--json PATH]
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click


def _batches(count: int, batch: int, size: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        images = torch.rand(batch, 3, size, size, generator=generator)
        masks = torch.zeros(batch, 1, size, size)
        masks[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
        out.append((images, masks))
    return out


def _config(record, settings: tuple[str, ...]):
    from restore.checkpoint import load_checkpoint
    from restore.cli.options import config_overrides
    from restore.models.config import config_from_dict
    from restore.models.registry import MissingWeightsError, resolve_checkpoint

    config_cls = record.config_class()
    try:
        path = resolve_checkpoint(record.name, None)
        base = dict(load_checkpoint(path)["config"]) if path is not None else {}
    except MissingWeightsError:  # no shipped weights (DeepGIN): the defaults
        base = {}
    return config_from_dict(config_cls, {**base, **config_overrides(config_cls, settings, None)})


def _time_training(record, config, layout: bool, batch: int, size: int, bf16: bool) -> dict[str, float]:
    """Seconds of one training step per phase (the second of two: the first warms up)."""

    cls = record.trainer_class()
    # random VGG features where the method has VGG losses: they cost the same as ImageNet weights
    trainer = type(cls.__name__, (cls,), {"channels_last": layout})(config, vgg_weights="random", bf16=bf16)
    times: dict[str, float] = {}
    for step in (0, 10**9):
        phase = trainer.phase(step)
        if phase in times:
            continue
        batches = _batches(trainer.batches_per_step, batch, size)
        trainer.train_step(step, batches)
        began = time.perf_counter()
        trainer.train_step(step, batches)
        times[phase] = time.perf_counter() - began
    return times


def _time_inference(record, config, layout: bool, batch: int, size: int, bf16: bool) -> float:
    from restore.models.network import NetworkInpainter

    generator = record.network_class()(config)
    inpainter = NetworkInpainter(record.name, generator, config.multiple, bf16=bf16, channels_last=layout)
    ((images, masks),) = _batches(1, batch, size)
    inpainter.inpaint(images, masks)
    began = time.perf_counter()
    inpainter.inpaint(images, masks)
    return time.perf_counter() - began


@click.command()
@click.option("--method", "names", multiple=True, default=("csa", "deepfill", "glcic", "deepgin"), show_default=True,
              help="Methods with a network and a trainer (repeatable).")
@click.option("--size", default=256, show_default=True, type=int, help="Training crop and inference image side.")
@click.option("--batch", default=4, show_default=True, type=int, help="Training batch (inference: one image).")
@click.option("--repeats", default=2, show_default=True, type=int, help="Alternations of the two layouts; each keeps its fastest.")
@click.option("--bf16/--fp32", default=True, show_default=True, help="bfloat16 autocast, as training and inference run here.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Config values for every method (e.g. width=26 for DeepGIN).")
@click.option("--threads", default=0, type=int, help="torch threads (0: torch's default).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-out/memory-format.json"), show_default=True)
def main(names: tuple[str, ...], size: int, batch: int, repeats: int, bf16: bool, settings: tuple[str, ...], threads: int, json_path: Path) -> None:
    import torch

    from restore.models.registry import get_method

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    results: dict[str, dict] = {}
    click.echo(f"{'method':10} {'what':22} {'NCHW s':>9} {'NHWC s':>9} {'ratio':>6}  registry")
    for name in names:
        record = get_method(name)
        fields = {field.name for field in dataclasses.fields(record.config_class())}
        usable = [item for item in settings if item.split("=", 1)[0] in fields]
        config = _config(record, tuple(usable))
        best: dict[bool, dict[str, float]] = {False: {}, True: {}}
        for _ in range(repeats):
            for layout in (False, True):
                timed = {f"train step, {phase}": seconds for phase, seconds in _time_training(record, config, layout, batch, size, bf16).items()}
                if record.network is not None:  # the WGAN restores by a latent search, timed by wgan_ablation.py
                    timed[f"inference {size}², batch 1"] = _time_inference(record, config, layout, 1, size, bf16)
                for key, seconds in timed.items():
                    best[layout][key] = min(seconds, best[layout].get(key, float("inf")))
        results[name] = {"registry_channels_last": record.channels_last, "nchw": best[False], "nhwc": best[True]}
        for key in best[False]:
            nchw, nhwc = best[False][key], best[True][key]
            click.echo(f"{name:10} {key:22} {nchw:9.3f} {nhwc:9.3f} {nchw / nhwc:6.2f}  {record.channels_last}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"size": size, "batch": batch, "bf16": bf16, "threads": torch.get_num_threads(), "settings": list(settings), "torch": torch.__version__}
    json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    click.echo(f"wrote {json_path}")


if __name__ == "__main__":
    main()
