"""Inference speed of one method at its native size: images/s at batch 1 and 8.

Rows: the method's checkpoint (shipped, or ``--checkpoint``) in float32 and, where the
hardware runs it fast, under bfloat16 autocast; the same with every compiled op replaced by
its PyTorch reference (:func:`restore.ops.use_reference`); the method as an 8-view
self-ensemble; and, with ``--set KEY=VALUE``, a randomly initialised network of another
configuration (e.g. the paper's width). Images go from host memory to the device and back,
as in ``restore batch``. Methods that work at any size are timed at 256².

    python benchmarks/speed.py --method csa [--device cpu|cuda] [--set width=64 --set max_channels=512] [--json PATH]
    python benchmarks/speed.py --method deepfill --size 512 --batches 1 --no-ensemble --no-reference
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import click


def _images_per_second(inpainter, size: int, batch: int, repeats: int) -> float:
    import torch

    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=generator)
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    inpainter.inpaint(image, mask)  # warm-up
    began = time.perf_counter()
    for _ in range(repeats):
        inpainter.inpaint(image, mask)
    return batch * repeats / (time.perf_counter() - began)


@click.command()
@click.option("--method", "name", default="csa", show_default=True, help="A registered method.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Weights [default: the shipped ones].")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Also time a random network with these config values (repeatable).")
@click.option("--repeats", default=3, show_default=True, type=int)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: bench-out/speed-METHOD.json (cpu) or bench-out/speed-METHOD-cuda.json")
@click.option("--size", default=None, type=int, help="Image side [default: the method's native size].")
@click.option("--batches", default="1,8", show_default=True, help="Batch sizes, comma-separated.")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True, help="Also time the 8-view self-ensemble.")
@click.option("--reference/--no-reference", default=True, show_default=True, help="Also time with the compiled ops replaced by their PyTorch references.")
def main(name: str, checkpoint: Path | None, settings: tuple[str, ...], repeats: int, device: str, json_path: Path | None,
         size: int | None, batches: str, ensemble: bool, reference: bool) -> None:
    import torch

    from restore.cli.options import config_overrides
    from restore.hardware import cpu_has_fast_bf16, prefers_bf16
    from restore.models.ensemble import SelfEnsemble
    from restore.models.network import NetworkInpainter
    from restore.models.registry import build, get_method, resolve_checkpoint
    from restore.ops import has_ops, use_reference

    torch.set_grad_enabled(False)
    method = get_method(name)
    size = size or method.piece_size
    batch_sizes = [int(b) for b in batches.split(",")]
    path = resolve_checkpoint(name, checkpoint)
    models = {"checkpoint" if checkpoint else "shipped": method.loader(path, device)}
    if settings:
        config = build(name, **config_overrides(method.config_class(), settings, None))
        label = ", ".join(settings)
        models[label] = NetworkInpainter(name, method.network_class()(config), config.multiple, device=device)
    bf16_choices = {False, torch.cuda.is_bf16_supported()} if device == "cuda" else {False, cpu_has_fast_bf16()}
    rows = []
    for label, inpainter in models.items():
        has_bf16 = hasattr(inpainter, "bf16")
        for bf16 in sorted(bf16_choices) if has_bf16 else [False]:
            if has_bf16:
                inpainter.bf16 = bf16
            for compiled in ([True, False] if has_ops() and reference else [has_ops()]):
                with use_reference() if not compiled else contextlib.nullcontext():
                    for batch in batch_sizes:
                        ips = _images_per_second(inpainter, size, batch, repeats)
                        rows.append({"model": label, "bf16": bf16, "compiled_ops": compiled, "batch": batch, "images_per_s": ips})
                        click.echo(f"{label:24s} bf16={bf16!s:5s} ops={compiled!s:5s} batch={batch}: {ips:7.2f} img/s", err=True)
    first = next(iter(models.values()))
    if hasattr(first, "bf16"):
        first.bf16 = prefers_bf16(device)
    views = SelfEnsemble(first, 8)
    for batch in batch_sizes if ensemble else []:
        ips = _images_per_second(views, size, batch, repeats)
        rows.append({"model": f"{next(iter(models))}, ensemble 8", "bf16": bool(getattr(first, "bf16", False)), "compiled_ops": has_ops(),
                     "batch": batch, "images_per_s": ips})
        click.echo(f"ensemble 8 batch={batch}: {ips:7.2f} img/s", err=True)
    click.echo(f"\n{name} at {size}², {device}\n\n| model | bf16 | compiled ops | batch | images/s |\n|---|---|---|---|---|")
    for r in rows:
        click.echo(f"| {r['model']} | {r['bf16']} | {r['compiled_ops']} | {r['batch']} | {r['images_per_s']:.2f} |")
    json_path = json_path or Path(f"bench-out/speed-{name}.json" if device == "cpu" else f"bench-out/speed-{name}-cuda.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    machine = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    json_path.write_text(json.dumps({"method": name, "size": size, "device": machine, "torch": torch.__version__,
                                     "threads": torch.get_num_threads(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
