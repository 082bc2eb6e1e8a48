"""Quality table for any methods (DESIGN §10): fidelity and realism per hole-ratio bucket, the classical baselines in the same run.

Images: 256² centre crops of ``../shared/data/eval/<set>`` (BSDS500-val and Kodak24 by
default). Masks: one fixed, seeded NVIDIA irregular mask per image per bucket (10–20 … 40–50 %)
and the centre 128² hole. Metrics: L1 %, L2 %, PSNR, SSIM on the whole composited image;
SWD (×10³, lower is better) and the detail ratio (1.0 is the original's) inside the hole
(:mod:`restore.metrics`). The classical baselines (OpenCV Telea, NS, and contrib's FSR and
shift-map; ``--baselines`` picks fewer for quick runs) are scored in the same run; each other
method is listed with its margins over the better OpenCV method (:mod:`restore.baselines`: the
best of Telea, NS and FSR for PSNR and SSIM, the best of Telea and NS for SWD, as a ratio, and
the detail ratio) and its SWD beside shift-map's, the realism anchor. A method whose native
size is under 256² is restored the way ``restore batch`` would (its default strategy and
native size). FSR and shift-map take seconds per image each: the four baselines over both
default sets took 71 minutes on the 2-core development machine.

    python benchmarks/quality.py --methods csa [--checkpoint csa=PATH] [--ensemble 8] \\
        [--baselines telea,ns,fsr,shiftmap] [--sets bsds500-val,kodak24] [--limit N] [--json bench-out/quality.json]

``--reuse JSON`` takes the baselines' results from an earlier run on the same images and seed
(the report records which); ``benchmarks/reference/quality-fsr-shiftmap.json`` holds FSR and
shift-map on both default sets at seed 0 (as the CSA card prints them), so a run on a fresh
machine scores only Telea and NS itself. ``--blend poisson`` also scores each learned method with
``restore batch --blend poisson``'s post-processing (as ``NAME+poisson``). ``--label NAME=METHOD:PATH`` scores another checkpoint of a method beside it (e.g.
``--label csa-l2=csa:old.pt``). The JSON records each method's checkpoint digest (what a model
card checks), the baselines and the margins' rules, the machine and the seconds each method took.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import click

from restore.baselines import (
    BASELINES,
    FIDELITY_BASELINES,
    REALISM_ANCHOR,
    REALISM_BASELINES,
    margins,
)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint=f"'{option}'")
        pairs[name] = rest
    return pairs


def _margins(results: dict, learned: list[str], sets: list[str]) -> list[str]:
    """Each learned method's margins over the better OpenCV method (:func:`restore.baselines.margins`), per mask set."""
    lines = ["| masks | method | PSNR − best of telea/ns/fsr (dB) | SSIM − best of telea/ns/fsr | SWD / best of telea/ns | "
             "detail − best of telea/ns | SWD / shift-map |",
             "|---|---|---|---|---|---|---|"]
    for mask_set in sets:
        scored = {label: per_set[mask_set] for label, per_set in results.items() if label in BASELINES}
        for label in learned:
            m = margins(results[label][mask_set], scored)
            cells = [f"{m['psnr']:+.2f}" if "psnr" in m else "–", f"{m['ssim']:+.4f}" if "ssim" in m else "–",
                     f"{m['swd']:.2f}×" if "swd" in m else "–", f"{m['detail']:+.3f}" if "detail" in m else "–",
                     f"{m['swd_anchor']:.2f}×" if "swd_anchor" in m else "–"]
            lines.append(f"| {mask_set} | {label} | " + " | ".join(cells) + " |")
    return lines


def _reused(paths: tuple[Path, ...], label: str, set_name: str, images: int, seed: int) -> tuple[dict, float, str] | None:
    """``label``'s results on ``set_name`` from the first earlier run that scored it on the same images with the same seed."""
    for path in paths:
        earlier = json.loads(path.read_text())
        scored = earlier.get("sets", {}).get(set_name, {})
        if earlier.get("seed") == seed and scored.get("images") == images and label in scored.get("results", {}):
            return scored["results"][label], scored.get("seconds", {}).get(label, float("nan")), str(path)
    return None


@click.command()
@click.option("--methods", default="csa", show_default=True, help="Registered methods to score, comma-separated (the --baselines are always added).")
@click.option("--baselines", default=",".join(BASELINES), show_default=True, help="Classical baselines to score in the same run, comma-separated (fewer for quick runs: fsr and shiftmap take seconds per image).")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="METHOD=PATH", help="A method's checkpoint (default: its shipped one).")
@click.option("--label", "labels", multiple=True, metavar="NAME=METHOD:PATH", help="Also score another checkpoint of a method, under NAME.")
@click.option("--sets", default="bsds500-val,kodak24", show_default=True, help="Folders of ../shared/data/eval to score.")
@click.option("--limit", type=int, default=None, help="Use only the first N images of each set (quick checks).")
@click.option("--seed", default=0, show_default=True, type=int, help="Mask seed (one fixed mask per image per bucket).")
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--ensemble", type=click.Choice(["2", "4", "8"]), default=None, help="Also score each learned method as a self-ensemble of this many views (as NAME-xN).")
@click.option("--blend", type=click.Choice(["poisson"]), default=None, help="Also score each learned method Poisson-blended (as NAME+poisson; restore batch --blend poisson).")
@click.option("--reuse", "reuse_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An earlier run's JSON: baselines it scored with the same seed on the same set and number of images are "
                   "taken from it instead of scored again (repeatable; FSR and shift-map take most of an hour).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="An inference setting for every scored method that has it (wgan: search_steps=200, restarts=1); recorded in the JSON.")
@click.option("--strategy", "strategy_override", type=click.Choice(["subsample", "tile", "whole"]), default=None,
              help="How the 256² images reach methods of a smaller native size (wgan: 64²) [default: each method's]; recorded in the JSON.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-out/quality.json"), show_default=True)
def main(methods: str, baselines: str, checkpoints: tuple[str, ...], labels: tuple[str, ...], sets: str, limit: int | None, seed: int,
         batch_size: int, ensemble: str | None, blend: str | None, reuse_paths: tuple[Path, ...], settings: tuple[str, ...],
         strategy_override: str | None, json_path: Path) -> None:
    import torch

    from restore.data.datasets import centre_square, load_images
    from restore.evaluation import (
        PROTOCOL_SIZE,
        evaluate,
        format_table,
        protocol_mask_sets,
        protocol_strategy,
    )
    from restore.models.ensemble import SelfEnsemble
    from restore.models.registry import METHODS, resolve_checkpoint
    from restore.paths import file_digest, shared_data_dir

    torch.set_grad_enabled(False)
    names = [name.strip() for name in methods.split(",") if name.strip()]
    chosen = [name.strip() for name in baselines.split(",") if name.strip()]
    if [name for name in chosen if name not in BASELINES]:
        raise click.BadParameter(f"expected some of {', '.join(BASELINES)}, got {baselines!r}", param_hint="'--baselines'")
    names += [b for b in chosen if b not in names]
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise click.BadParameter(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}", param_hint="'--methods'")
    given = {name: Path(path) for name, path in _pairs(checkpoints, "--checkpoint").items()}
    runs: dict[str, tuple[str, Path | None]] = {name: (name, resolve_checkpoint(name, given.get(name))) for name in names}
    for label, target in _pairs(labels, "--label").items():
        method, _, path = target.partition(":")
        if method not in METHODS or not path:
            raise click.BadParameter(f"expected NAME=METHOD:PATH with a registered method, got {label}={target}", param_hint="'--label'")
        runs[label] = (method, Path(path))
    given_settings = _pairs(settings, "--set")
    if given_settings and not any(set(given_settings) <= set(METHODS[method].inference_settings) for method, _ in runs.values()):
        raise click.BadParameter(f"no scored method has the inference setting(s) {', '.join(given_settings)}", param_hint="'--set'")

    def method_settings(method: str) -> dict:
        """The --set values of a method's inference settings, typed by its config."""
        record = METHODS[method]
        if not given_settings or not set(given_settings) <= set(record.inference_settings):
            return {}
        from restore.cli.options import config_overrides

        return config_overrides(record.config_class(), settings, None)

    inpainters = {label: METHODS[method].loader(path, "cpu", **method_settings(method)) for label, (method, path) in runs.items()}
    learned = [label for label, (method, _) in runs.items() if method not in BASELINES]
    if ensemble is not None:
        for label in list(learned):
            inpainters[f"{label}-x{ensemble}"] = SelfEnsemble(inpainters[label], int(ensemble))
            runs[f"{label}-x{ensemble}"] = runs[label]
            learned.append(f"{label}-x{ensemble}")
    if blend is not None:
        from restore.inference.poisson import PoissonBlended

        for label in list(learned):
            inpainters[f"{label}+{blend}"] = PoissonBlended(inpainters[label])
            runs[f"{label}+{blend}"] = runs[label]
            learned.append(f"{label}+{blend}")
    report: dict = {
        "methods": {label: {"method": method, "checkpoint": str(path) if path else None, "checkpoint_digest": file_digest(path),
                            "ensemble": int(label.split("+")[0].rsplit("-x", 1)[1]) if "-x" in label else 1,
                            "blend": label.split("+", 1)[1] if "+" in label else "none",
                            "bf16": bool(getattr(inpainters[label], "bf16", False))}
                    for label, (method, path) in runs.items()},
        "baselines": {"scored": [label for label in runs if label in BASELINES], "fidelity": list(FIDELITY_BASELINES),
                      "realism": list(REALISM_BASELINES), "anchor": REALISM_ANCHOR},
        "seed": seed, "settings": given_settings, "strategy": strategy_override, "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(), "sets": {},
    }
    for name in sets.split(","):
        folder = shared_data_dir() / "eval" / name
        if not folder.is_dir():
            raise click.ClickException(f"evaluation set not found: {folder}")
        _, photos = load_images(folder)
        photos = photos[:limit] if limit else photos
        images = [centre_square(photo, PROTOCOL_SIZE) for photo in photos]
        masks = protocol_mask_sets(len(images), PROTOCOL_SIZE, seed=seed)
        results, seconds = {}, {}
        for label, inpainter in inpainters.items():
            earlier = _reused(reuse_paths, label, name, len(images), seed) if label in BASELINES else None
            if earlier is not None:
                results[label], seconds[label], source = earlier
                report.setdefault("reused", {}).setdefault(label, {})[name] = source
                continue
            strategy, size = protocol_strategy(runs[label][0])
            if strategy is not None and strategy_override is not None:
                strategy = strategy_override
            began = time.perf_counter()
            results[label] = evaluate(inpainter, images, masks, batch_size=batch_size, strategy=strategy, size=size)
            seconds[label] = time.perf_counter() - began
        report["sets"][name] = {"images": len(images), "results": results, "seconds": seconds}
        click.echo(f"\n### {name} ({len(images)} images, 256² centre crops; SWD ×10³ and detail ratio inside the hole)\n")
        click.echo(format_table(results))
        if learned:
            click.echo("\n" + "\n".join(_margins(results, learned, list(masks))))
        click.echo("\nseconds: " + ", ".join(f"{label} {value:.1f}" for label, value in seconds.items()))
        for label, sources in report.get("reused", {}).items():
            if name in sources:
                click.echo(f"{label}: reused from {sources[name]}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1))
    click.echo(f"\nwrote {json_path}")


if __name__ == "__main__":
    main()
