"""Write the model card of a shipped checkpoint of any method from measured data.

    python -m restore.training.model_card --checkpoint restore/weights/csa.pt \
        --run runs/csa-finetune --base OLD_CSA.pt --base-run runs/old-run \
        [--base OLDER_CSA.pt --base-run runs/older-run ...] \
        --quality bench-out/quality.json --out restore/weights/csa.md

Everything in the card comes from the method's registry record (summary, shipped modules,
how its trainer words its losses), the checkpoints' metadata (the shipped one and, with
``--base``, the chain of checkpoints its run started from), the runs' learning curves
(``curve.jsonl``, ``curve-baselines.json``, ``log.jsonl``) and a quality benchmark JSON
(``benchmarks/quality.py``, which must have measured this very file); only ``--note``
sentences are typed in.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path

import click

from restore.baselines import (
    BASELINES,
    FIDELITY_BASELINES,
    REALISM_ANCHOR,
    REALISM_BASELINES,
    margins,
)

SETS = ("10-20%", "20-30%", "30-40%", "40-50%", "centre")


def _curve_table(run: Path, until: int, offset: int = 0) -> list[str]:
    """The run's learning curve up to its step ``until``; steps shown as ``offset`` + the run's own."""
    lines = []
    curve_path, base_path = run / "curve.jsonl", run / "curve-baselines.json"
    if not curve_path.is_file():
        return lines
    rows = [json.loads(line) for line in curve_path.read_text().splitlines() if line.strip()]
    # a resumed run may have evaluated a step twice; a run trained on after shipping has later rows
    by_step = {row["step"]: row for row in rows if row["step"] <= until}
    if not by_step:
        return lines
    sets = _present(next(iter(by_step.values()))["metrics"])

    def cell(metrics: dict, name: str) -> str:
        if name not in metrics:
            return "–"
        m = metrics[name]
        realism = f" / {m['swd']:.0f} / {m['detail']:.2f}" if "swd" in m and m["swd"] is not None else ""
        return f"{m['psnr']:.2f}{realism}"

    lines += ["| step | train hours | " + " | ".join(sets) + " |", "|---" * (len(sets) + 2) + "|"]
    if base_path.is_file():
        for name, metrics in json.loads(base_path.read_text()).items():
            shown = "shift-map" if name == REALISM_ANCHOR else name
            lines.append(f"| OpenCV {shown} | – | " + " | ".join(cell(metrics, s) for s in sets) + " |")
    for step in sorted(by_step):
        hours = by_step[step].get("train_seconds", 0) / 3600
        lines.append(f"| {offset + step} | {hours:.1f} | " + " | ".join(cell(by_step[step]["metrics"], s) for s in sets) + " |")
    return lines


def lr_knots(log_path: Path, until: int | None = None) -> list[tuple[int, float]]:
    """The learning rate as the run logged it, reduced to the corners of its piecewise-linear path.

    A resumed run whose schedule was re-planned shows the re-planning as a corner, so the
    card says what the run did, not only what its last options say.

    Args:
        log_path: the run's ``log.jsonl``.
        until: ignore steps after this one (a run trained on after the checkpoint was shipped).

    Returns:
        (step, lr) pairs: the first and last logged steps and every step where the slope changes.
    """
    if not log_path.is_file():
        return []
    logged: dict[int, float] = {}
    for line in log_path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if "lr" in row and (until is None or row["step"] <= until):
                logged[int(row["step"])] = float(row["lr"])  # a resumed run logs some steps twice: keep the last
    points = sorted(logged.items())
    if len(points) < 3:
        return points
    tolerance = 1e-3 * max(lr for _, lr in points) / max(1, points[-1][0] - points[0][0])
    slope = lambda a, b: (b[1] - a[1]) / (b[0] - a[0])  # noqa: E731
    knots = [points[0]]
    for i in range(1, len(points) - 1):
        before, here, after = points[i - 1], points[i], points[i + 1]
        if abs(slope(before, here) - slope(here, after)) <= tolerance:
            continue
        if knots[-1] == before:
            # A corner between two logged steps bends both of them (keep the first); a jump
            # (the rate changed at a resume) gives a segment whose slope lies outside its
            # neighbours' slopes: keep both of its ends.
            if i < 2:
                continue
            low, high = sorted((slope(points[i - 2], before), slope(here, after)))
            if low - tolerance <= slope(before, here) <= high + tolerance:
                continue
        knots.append(here)
    return knots + [points[-1]]


def _schedule(options: dict, run: Path | None, until: int) -> str:
    planned = f"warm-up {options.get('warmup')} steps, " + (
        f"linear decay from step {options.get('lr_decay_from')} to 0 at {options.get('iters')}"
        if options.get("lr_decay_from") is not None else "then constant")
    knots = lr_knots(run / "log.jsonl", until) if run else []
    if not knots:
        return planned
    return planned + "; as logged (step: lr) " + ", ".join(f"{step}: {lr:.3g}" for step, lr in knots)


def _batch(options: dict, meta: dict) -> str:
    processes = int(meta.get("processes", 1))
    per_process = options.get("batch_size")
    return f"{per_process}" if processes == 1 else f"{processes} processes x {per_process}"


def _steps(ckpt: dict) -> str:
    """The steps one run added, counted from the first stage: ``first–last``."""
    first = int(ckpt["metadata"].get("base_steps", 0))
    return f"{first}–{first + int(ckpt['step'])}"


def _data(meta: dict) -> str:
    data = str(meta.get("data"))
    held = len(meta.get("held_out", []))
    from_eval = "**includes `eval/`**" if "eval" in Path(data).parts else "no photo from `eval/`"
    trained = meta.get("train_images")
    photos = f"{trained + held} photos: {trained} trained on, {held} held out for the learning curve" if isinstance(trained, int) else f"{held} photos held out"
    return f"`{data}` ({photos}); {from_eval}"


def _in_turn(values: Iterable[str]) -> list[str]:
    """The values in order, each run of equal ones once (stages on A, then B, then A again)."""
    return [value for value, _ in itertools.groupby(values)]


def _losses(method: str, config: dict) -> str:
    """The generator losses a config trains with, and their weights, as the method's trainer words them."""
    from restore.models.registry import get_method

    return get_method(method).trainer_class().describe_losses(config)


def _stage_row(ckpt: dict, run: Path | None) -> str:
    """One row of the training-stages table: what one run (one checkpoint's own steps) did."""
    meta, config = ckpt["metadata"], ckpt["config"]
    options = meta.get("options", {})
    betas = f" (β {config['beta1']}, {config['beta2']})" if "beta1" in config else ""
    return " | ".join([
        f"| {_steps(ckpt)}", f"{_batch(options, meta)}", _data(meta), _losses(ckpt["method"], config),
        f"Adam lr {config.get('lr')}{betas}; {_schedule(options, run, ckpt['step'])}",
        f"{meta.get('train_seconds', 0) / 3600:.2f} h", f"{meta.get('hardware')}, bf16 autocast: {meta.get('bf16')}",
        f"restore {meta.get('restore_version')}, torch {meta.get('torch_version')} |",
    ])


def _present(metrics: dict) -> list[str]:
    """The mask sets of ``metrics``, in the protocol's order."""
    return [name for name in SETS if name in metrics] + sorted(set(metrics) - set(SETS))


def _cell(m: dict) -> str:
    realism = f" / {m['swd']:.1f} / {m['detail']:.3f}" if m.get("swd") is not None else ""
    return f"{m['l1']:.2f} / {m['l2']:.3f} / {m['psnr']:.2f} / {m['ssim']:.4f}{realism}"


def _margin(results: dict, method: str, mask_set: str) -> str:
    """The method's margins over the better OpenCV method for one mask set (:mod:`restore.baselines`), as a table cell."""
    m = margins(results[method][mask_set], {label: results[label][mask_set] for label in BASELINES if label in results})
    formats = {"psnr": "{:+.2f} dB", "ssim": "SSIM {:+.4f}", "swd": "SWD ×{:.2f}", "detail": "detail {:+.3f}",
               "swd_anchor": "SWD ×{:.2f} of shift-map's"}
    return ", ".join(text.format(m[key]) for key, text in formats.items() if key in m) or "–"


def _scored(rule: tuple[str, ...], scored: list[str]) -> str:
    """The baselines of a margin's rule that the quality run scored, for a table header (``telea/ns``)."""
    return "/".join(name for name in rule if name in scored) or "none scored"


def _quality_tables(quality: dict, method: str) -> list[str]:
    """Per evaluation set: the method (and its ensembles) beside the classical baselines of the same run, with its
    margins over the better OpenCV method (PSNR, SSIM: best of telea, ns, fsr; SWD, detail: best of telea, ns) and
    its SWD beside shift-map's, the realism anchor."""
    lines = []
    for name, data in quality["sets"].items():
        results = data["results"]
        learned = [label for label in results if label == method or label.startswith(f"{method}-x")]
        baselines = [label for label in BASELINES if label in results]
        names = {REALISM_ANCHOR: "shift-map"}
        lines += [f"\n**{name}** ({data['images']} images, 256² centre crops; L1 % / L2 % / PSNR dB / SSIM / SWD ×10³ / detail ratio):\n",
                  "| masks | " + " | ".join([*learned, *(f"OpenCV {names.get(b, b)}" for b in baselines)])
                  + f" | margin over the better OpenCV method (PSNR, SSIM: {_scored(FIDELITY_BASELINES, baselines)}; "
                  f"SWD, detail: {_scored(REALISM_BASELINES, baselines)}) |",
                  "|---" * (len(learned) + len(baselines) + 2) + "|"]
        for mask_set in _present(results[method]):
            cells = [_cell(results[label][mask_set]) for label in [*learned, *baselines]]
            lines.append(f"| {mask_set} | " + " | ".join(cells) + f" | {_margin(results, method, mask_set)} |")
    return lines


def _quality_section(quality: Path, checkpoint: Path, label: str) -> list[str]:
    """The card's "## Quality" section from a quality benchmark JSON that measured ``checkpoint`` under ``label``."""
    from restore.paths import file_digest

    data = json.loads(Path(quality).read_text())
    measured = data.get("methods", {}).get(label, {}).get("checkpoint_digest")
    if measured != file_digest(checkpoint):
        raise click.ClickException(f"{quality} measured another checkpoint under {label!r} ({measured}), not {checkpoint}; rerun benchmarks/quality.py")
    return ["## Quality", "", "`python benchmarks/quality.py` (DESIGN §10): NVIDIA irregular masks per hole-ratio bucket (one seeded "
            "mask per image) and the centre 128² hole; fidelity on the whole composited image, realism (SWD, detail ratio) inside "
            "the hole.", *_quality_tables(data, label)]


def replace_section(card: str, title: str, section: list[str]) -> str:
    """``card`` with its "## TITLE" section (up to the next "## " heading) replaced by ``section`` (its heading included).

    A card without that section gets it before its Notes (or Continue training) section, or at the end.
    """
    lines = card.rstrip("\n").split("\n")
    heading = f"## {title}"
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    else:
        start = end = next((i for i, line in enumerate(lines) if line in ("## Notes", "## Continue training")), len(lines))
    tail = lines[end:]
    body = [*section, ""] if tail else section
    return "\n".join([*lines[:start], *body, *tail]) + "\n"


@click.command()
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run", "run", type=click.Path(exists=True, file_okay=False, path_type=Path), help="The run folder (learning curve).")
@click.option("--quality", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="benchmarks/quality.py JSON that scored this checkpoint.")
@click.option("--base", "bases", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The checkpoint CHECKPOINT's run started from (restore train --init): an earlier training stage. "
                   "Repeat for the checkpoint that one started from, and so on.")
@click.option("--base-run", "base_runs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run folder of each --base, in the same order (their learning curves).")
@click.option("--quality-label", default=None, help="The label --quality scored CHECKPOINT under [default: the method's name; "
              "e.g. csa-psnr for benchmarks/quality.py --label csa-psnr=csa:PATH].")
@click.option("--quality-only", is_flag=True, help="Rewrite only the Quality section of the existing card OUT from --quality "
              "(baselines re-scored, a checkpoint re-measured); the rest of the card is kept as it is.")
@click.option("--note", "notes", multiple=True, help="A sentence for the card's notes (repeatable).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def main(checkpoint: Path, run: Path | None, quality: Path | None, quality_label: str | None, quality_only: bool,
         bases: tuple[Path, ...], base_runs: tuple[Path, ...], notes: tuple[str, ...], out: Path) -> None:
    """Write the model card OUT for CHECKPOINT."""
    from restore.checkpoint import CheckpointError, load_checkpoint
    from restore.models.registry import METHODS
    from restore.paths import file_digest

    def load(path: Path) -> dict:
        try:
            return load_checkpoint(path)
        except CheckpointError as error:
            raise click.ClickException(str(error)) from None

    ckpt = load(checkpoint)
    record = METHODS.get(str(ckpt.get("method")))
    if record is None or not record.trainable:
        raise click.ClickException(f"{checkpoint} is a checkpoint of {ckpt.get('method')!r}, not of a registered trainable method")
    label = quality_label or record.name
    if quality_only:
        if quality is None or not out.is_file():
            raise click.ClickException("--quality-only rewrites the Quality section of an existing card: give --quality and an --out that exists")
        out.write_text(replace_section(out.read_text(), "Quality", _quality_section(quality, checkpoint, label)))
        click.echo(f"wrote {out} (Quality section)")
        return
    meta, config = ckpt["metadata"], ckpt["config"]
    options = meta.get("options", {})
    stages = [(ckpt, run)]
    if base_runs and len(base_runs) != len(bases):
        raise click.ClickException(f"give one --base-run per --base, or none ({len(bases)} --base, {len(base_runs)} --base-run)")
    child, child_path = ckpt, checkpoint
    for position, base in enumerate(bases):
        started_from = child["metadata"].get("init_from", {}).get("digest")
        if started_from != file_digest(base):
            origin = f"its run started from {started_from}" if started_from else "its run did not start from a checkpoint"
            raise click.ClickException(f"{child_path} was not started from --base {base} ({origin})")
        child, child_path = load(base), base
        stages.insert(0, (child, base_runs[position] if base_runs else None))
    parameters = ", ".join(f"{name} {sum(v.numel() for v in ckpt['models'][name].values()) / 1e6:.2f} M"
                           for name in record.ship_modules if name in ckpt["models"])
    settings = ", ".join(f"{key} {value}" for key, value in config.items() if not key.endswith("_weight"))
    lines = [
        f"# Model card: `{checkpoint.name}` ({record.name})",
        "",
        "| | |",
        "|---|---|",
        f"| file | `{checkpoint.name}`, {checkpoint.stat().st_size / 1e6:.1f} MB, {'float16' if meta.get('half') else 'float32'}, `{file_digest(checkpoint)}` |",
        f"| method | {record.summary}; native size {record.native_size or 'any'}², large images by `--strategy {record.default_strategy}` |",
        f"| network | parameters: {parameters}; configuration: {settings} |",
        f"| weights | {'moving average (decay ' + str(config.get('ema_decay')) + ') of the generator' if meta.get('moving_average') else 'the generator'} |",
        f"| data | {'; then '.join(_in_turn(_data(stage['metadata']) for stage, _ in stages))} |",
        f"| training | {meta.get('total_steps', ckpt['step'])} steps in all, {options.get('size')}² random resized crops with flips, masks {', '.join(options.get('mask_kinds', []))}; stages below |",
        f"| losses | {'; then '.join(_in_turn(_losses(stage['method'], stage['config']) for stage, _ in stages))} |",
        f"| VGG weights | {meta.get('vgg_weights') or 'not used (no VGG loss enabled)'} |",
        f"| time | {sum(s['metadata'].get('train_seconds', 0) for s, _ in stages) / 3600:.1f} h in training steps in all (data loading overlaps them; evaluation and checkpoints are not counted) |",
    ]
    lines += ["", "## Training stages", "", "| steps | batch | data | losses | optimiser | time in steps | hardware | software |", "|---|---|---|---|---|---|---|---|"]
    lines += [_stage_row(stage, stage_run) for stage, stage_run in stages]
    curves = [(stage, _curve_table(stage_run, stage["step"], int(stage["metadata"].get("base_steps", 0)))) for stage, stage_run in stages if stage_run]
    if any(curve for _, curve in curves):
        lines += ["", "## Learning curve", "", "PSNR (dB; with SWD ×10³ and the detail ratio where the run measured them) on the held-out training photos (256² centre crops; one seeded NVIDIA mask per image per bucket, and the centre 128² hole), composited output; steps counted from the first stage:"]
        for stage, curve in curves:
            if curve:
                lines += ["", f"Steps {_steps(stage)}, held out from `{stage['metadata'].get('data')}`:", "", *curve]
    if quality:
        lines += ["", *_quality_section(quality, checkpoint, label)]
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Continue training", "",
              f"`restore train --method {record.name} --init {checkpoint.name} …` starts a new run from this checkpoint"
              + (" (`make train-csa` does it, or resumes its run folder `CSA_RUN`)" if record.name == "csa" else "") + "; ship the result with",
              f"`python -m restore.training.ship RUN/last.pt restore/weights/{record.name}.pt` and regenerate this card",
              "(`--base` the checkpoint the run started from, then the one that started from, and so on)."]
    out.write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
