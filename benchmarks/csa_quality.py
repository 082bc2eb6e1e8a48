"""CSA quality table (DESIGN §10): BSDS500-val and Kodak24 at 256², NVIDIA masks per bucket and the centre hole.

Scores CSA (the shipped checkpoint, or --checkpoint) and the OpenCV Telea and NS
baselines in the same run, on the same images and masks, and prints a markdown
table per data set plus the margins of CSA over the better baseline. ``--ensemble N``
also scores CSA as an N-view self-ensemble (``restore batch --ensemble N``), as method
``csa-xN``.

    python benchmarks/csa_quality.py [--checkpoint PATH] [--ensemble 8] [--json bench-out/csa_quality.json]
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import click


@click.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="CSA checkpoint (default: the shipped one).")
@click.option("--sets", default="bsds500-val,kodak24", show_default=True, help="Folders of ../shared/data/eval to score.")
@click.option("--limit", type=int, default=None, help="Use only the first N images of each set (quick checks).")
@click.option("--seed", default=0, show_default=True, type=int, help="Mask seed (one fixed mask per image per bucket).")
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--ensemble", type=click.Choice(["2", "4", "8"]), default=None, help="Also score CSA as a self-ensemble of this many views.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-out/csa_quality.json"), show_default=True)
def main(checkpoint: Path | None, sets: str, limit: int | None, seed: int, batch_size: int, ensemble: str | None, json_path: Path) -> None:
    import torch

    from restore.data.datasets import centre_square, load_images
    from restore.evaluation import PROTOCOL_SIZE, evaluate, format_table, protocol_mask_sets
    from restore.models.ensemble import SelfEnsemble
    from restore.models.registry import load_inpainter, resolve_checkpoint
    from restore.paths import file_digest
    from restore.paths import shared_data_dir

    torch.set_grad_enabled(False)
    checkpoint = resolve_checkpoint("csa", checkpoint)
    methods = {"csa": load_inpainter("csa", checkpoint), "telea": load_inpainter("telea"), "ns": load_inpainter("ns")}
    learned = ["csa"]
    if ensemble is not None:
        methods = {"csa": methods["csa"], f"csa-x{ensemble}": SelfEnsemble(methods["csa"], int(ensemble)), "telea": methods["telea"], "ns": methods["ns"]}
        learned.append(f"csa-x{ensemble}")
    report: dict = {"checkpoint": str(checkpoint), "checkpoint_digest": file_digest(checkpoint), "seed": seed,
                    "threads": torch.get_num_threads(), "bf16": methods["csa"].bf16, "torch": torch.__version__,
                    "machine": platform.machine(), "sets": {}}
    for name in sets.split(","):
        folder = shared_data_dir() / "eval" / name
        if not folder.is_dir():
            raise click.ClickException(f"evaluation set not found: {folder}")
        _, photos = load_images(folder)
        photos = photos[:limit] if limit else photos
        images = [centre_square(photo, PROTOCOL_SIZE) for photo in photos]
        masks = protocol_mask_sets(len(images), PROTOCOL_SIZE, seed=seed)
        results, seconds = {}, {}
        for method, inpainter in methods.items():
            began = time.perf_counter()
            results[method] = evaluate(inpainter, images, masks, batch_size=batch_size)
            seconds[method] = time.perf_counter() - began
        report["sets"][name] = {"images": len(images), "results": results, "seconds": seconds}
        click.echo(f"\n### {name} ({len(images)} images, 256² centre crops)\n")
        click.echo(format_table(results))
        click.echo("\n| masks | method | PSNR − best baseline (dB) | SSIM − best baseline |\n|---|---|---|---|")
        for mask_set in masks:
            best_psnr = max(results[m][mask_set]["psnr"] for m in ("telea", "ns"))
            best_ssim = max(results[m][mask_set]["ssim"] for m in ("telea", "ns"))
            for method in learned:
                click.echo(f"| {mask_set} | {method} | {results[method][mask_set]['psnr'] - best_psnr:+.2f} | {results[method][mask_set]['ssim'] - best_ssim:+.4f} |")
        click.echo("\nseconds: " + ", ".join(f"{method} {value:.1f}" for method, value in seconds.items()))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1))
    click.echo(f"\nwrote {json_path}")


if __name__ == "__main__":
    main()
