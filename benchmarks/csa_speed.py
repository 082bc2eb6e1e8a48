"""CSA inference speed at 256²: images/s at batch 1 and 8, shipped width and paper width,
with and without the compiled ops (the reference CSA layer loops in Python), and the
shipped model as an 8-view self-ensemble (``restore batch --ensemble 8``).

Images go from host memory to the device and back, as in ``restore batch``.

    python benchmarks/csa_speed.py [--device cpu|cuda] [--json bench-out/csa_speed.json]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


def _images_per_second(inpainter, batch: int, repeats: int) -> float:
    import torch

    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, 256, 256, generator=generator)
    mask = torch.zeros(batch, 1, 256, 256)
    mask[:, :, 64:192, 64:192] = 1
    inpainter.inpaint(image, mask)  # warm-up
    began = time.perf_counter()
    for _ in range(repeats):
        inpainter.inpaint(image, mask)
    return batch * repeats / (time.perf_counter() - began)


@click.command()
@click.option("--repeats", default=3, show_default=True, type=int)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: bench-out/csa_speed.json (cpu) or bench-out/csa_speed_cuda.json")
def main(repeats: int, device: str, json_path: Path | None) -> None:
    import torch

    import restore.ops._ext as ext
    from restore.hardware import cpu_has_amx_bf16, prefers_bf16
    from restore.models.csa.config import CSAConfig
    from restore.models.csa.inpainter import CSAInpainter, generator_from_checkpoint
    from restore.models.csa.networks import CSAGenerator
    from restore.models.ensemble import SelfEnsemble
    from restore.models.registry import METHODS
    from restore.checkpoint import load_checkpoint

    torch.set_grad_enabled(False)
    shipped = METHODS["csa"].shipped_checkpoint
    generators = {"paper width 64": CSAGenerator(CSAConfig())}
    if shipped is not None:
        generators = {"shipped": generator_from_checkpoint(load_checkpoint(shipped)), **generators}
    compiled = ext.has_ops()
    rows = []
    for label, generator in generators.items():
        config = generator.config
        bf16_choices = {False, torch.cuda.is_bf16_supported()} if device == "cuda" else {False, cpu_has_amx_bf16()}
        for bf16 in sorted(bf16_choices):
            for use_ops in ([True, False] if compiled else [False]):
                ext._HAS_OPS = use_ops
                inpainter = CSAInpainter(generator, device, bf16=bf16)
                for batch in (1, 8):
                    ips = _images_per_second(inpainter, batch, repeats)
                    rows.append({"model": label, "width": config.width, "max_channels": config.max_channels,
                                 "bf16": bf16, "compiled_ops": use_ops, "batch": batch, "images_per_s": ips, "s_per_image": 1 / ips})
                    click.echo(f"{label:16s} w={config.width:3d} bf16={bf16!s:5s} ops={use_ops!s:5s} batch={batch}: {ips:6.2f} img/s ({1 / ips:.3f} s/img)", err=True)
    ext._HAS_OPS = compiled
    if shipped is not None:
        bf16 = prefers_bf16(device)
        ensemble = SelfEnsemble(CSAInpainter(generators["shipped"], device, bf16=bf16), 8)
        config = generators["shipped"].config
        for batch in (1, 8):
            ips = _images_per_second(ensemble, batch, repeats)
            rows.append({"model": "shipped, ensemble 8", "width": config.width, "max_channels": config.max_channels,
                         "bf16": bf16, "compiled_ops": compiled, "batch": batch, "images_per_s": ips, "s_per_image": 1 / ips})
            click.echo(f"shipped ensemble 8 bf16={bf16!s:5s} batch={batch}: {ips:6.2f} img/s", err=True)
    click.echo("| model | width/cap | bf16 | compiled ops | batch | images/s | s/image |\n|---|---|---|---|---|---|---|")
    for r in rows:
        click.echo(f"| {r['model']} | {r['width']}/{r['max_channels']} | {r['bf16']} | {r['compiled_ops']} | {r['batch']} | {r['images_per_s']:.2f} | {r['s_per_image']:.3f} |")
    json_path = json_path or Path("bench-out/csa_speed.json" if device == "cpu" else "bench-out/csa_speed_cuda.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    machine = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    json_path.write_text(json.dumps({"device": machine, "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
