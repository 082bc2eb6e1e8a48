"""Shipping a training checkpoint and writing its model card from measured data."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_loop import _run

from restore.checkpoint import load_checkpoint
from restore.paths import file_digest
from restore.training.model_card import main as model_card
from restore.training.ship import main as ship


def test_ship_writes_a_half_precision_generator_and_respects_the_size_limit(tmp_path: Path) -> None:
    _run(tmp_path / "run", iters=2)
    dest = tmp_path / "new" / "folder" / "csa.pt"
    result = CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(dest)])
    assert result.exit_code == 0, result.output
    slim = load_checkpoint(dest)
    assert set(slim["models"]) == {"generator"} and slim["metadata"]["half"] and slim["metadata"]["total_steps"] == 2
    too_big = CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(tmp_path / "big.pt"), "--max-mb", "0.0001"])
    assert too_big.exit_code == 1 and "over --max-mb" in too_big.output and not (tmp_path / "big.pt").exists()
    assert list(dest.parent.iterdir()) == [dest]  # no scratch left behind


def test_ship_takes_the_moving_average_unless_told_otherwise(tmp_path: Path) -> None:
    import torch

    _run(tmp_path / "run", iters=2)
    full = load_checkpoint(tmp_path / "run" / "last.pt")
    assert "generator_ema" in full["models"]
    runner = CliRunner()
    shipped = {}
    for flags in ([], ["--no-average"]):
        dest = tmp_path / f"csa{len(flags)}.pt"
        result = runner.invoke(ship, [str(tmp_path / "run" / "last.pt"), str(dest), "--full-precision", *flags])
        assert result.exit_code == 0, result.output
        shipped[bool(flags)] = load_checkpoint(dest)
    averaged = {k.removeprefix("module."): v for k, v in full["models"]["generator_ema"].items() if k.startswith("module.")}
    assert all(torch.equal(shipped[False]["models"]["generator"][k], v) for k, v in averaged.items())
    assert all(torch.equal(shipped[True]["models"]["generator"][k], v) for k, v in full["models"]["generator"].items())
    assert not all(torch.equal(averaged[k], v) for k, v in full["models"]["generator"].items())  # two steps apart
    assert shipped[False]["metadata"]["moving_average"] and not shipped[True]["metadata"]["moving_average"]


def test_model_card_tables_come_from_the_files(tmp_path: Path) -> None:
    _run(tmp_path / "run", iters=2)
    assert CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(tmp_path / "csa.pt")]).exit_code == 0
    metrics = {"l1": 1.5, "l2": 0.25, "psnr": 27.125, "ssim": 0.875}
    later = {"step": 4, "train_seconds": 9000, "metrics": {"centre": {**metrics, "psnr": 99.0}}}  # trained on after shipping
    rows = [{"step": 2, "train_seconds": 7200, "metrics": {"centre": metrics}}, later]
    (tmp_path / "run" / "curve.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    quality = {"methods": {"csa": {"checkpoint_digest": "sha256:other"}},
               "sets": {"kodak24": {"images": 24, "results": {m: {"centre": metrics} for m in ("csa", "telea", "ns")}}}}
    (tmp_path / "q.json").write_text(json.dumps(quality))
    card = tmp_path / "csa.md"
    arguments = ["--checkpoint", str(tmp_path / "csa.pt"), "--quality", str(tmp_path / "q.json"), "--out", str(card)]
    stale = CliRunner().invoke(model_card, arguments)
    assert stale.exit_code == 1 and "measured another checkpoint" in stale.output and not card.exists()
    quality["methods"]["csa"]["checkpoint_digest"] = file_digest(tmp_path / "csa.pt")
    (tmp_path / "q.json").write_text(json.dumps(quality))
    result = CliRunner().invoke(model_card, ["--checkpoint", str(tmp_path / "csa.pt"), "--run", str(tmp_path / "run"),
                                             "--quality", str(tmp_path / "q.json"), "--out", str(card)])
    assert result.exit_code == 0, result.output
    text = card.read_text()
    assert "| step | train hours | centre |" in text and "| 2 | 2.0 | 27.12 |" in text and "99.00" not in text
    assert "| centre | 1.50 / 0.250 / 27.12 / 0.8750 |" in text and "+0.00 dB" in text
    assert "2 steps" in text

    # baselines re-scored: --quality-only rewrites the Quality section alone, of a checkpoint scored under another label
    card.write_text(text.replace("## Continue training", "## Notes\n\n- typed in\n\n## Continue training"))
    quality = {"methods": {"csa-old": {"checkpoint_digest": file_digest(tmp_path / "csa.pt")}},
               "sets": {"kodak24": {"images": 24, "results": {"csa-old": {"centre": {**metrics, "psnr": 28.5}},
                                                               **{m: {"centre": metrics} for m in ("telea", "ns", "fsr")}}}}}
    (tmp_path / "q2.json").write_text(json.dumps(quality))
    update = ["--checkpoint", str(tmp_path / "csa.pt"), "--quality", str(tmp_path / "q2.json"), "--out", str(card), "--quality-only"]
    unlabelled = CliRunner().invoke(model_card, update)
    assert unlabelled.exit_code == 1 and "under 'csa'" in unlabelled.output
    result = CliRunner().invoke(model_card, [*update, "--quality-label", "csa-old"])
    assert result.exit_code == 0, result.output
    updated = card.read_text()
    assert updated.count("## Quality") == 1 and "| centre | 1.50 / 0.250 / 28.50 / 0.8750 |" in updated and "OpenCV fsr" in updated
    assert "+1.38 dB" in updated and "| centre | 1.50 / 0.250 / 27.12" not in updated
    assert updated.split("## Quality")[0] == text.split("## Quality")[0]  # everything before it kept
    assert "- typed in\n\n## Continue training" in updated  # and after it


def test_model_card_margins_take_fidelity_over_telea_ns_fsr_and_realism_over_telea_ns() -> None:
    """FSR sets the PSNR/SSIM bar, Telea/NS the SWD/detail bar; shift-map's SWD is shown beside (DESIGN §10)."""
    from restore.training.model_card import _quality_tables

    def metrics(psnr: float, swd: float, detail: float) -> dict:
        return {"l1": 1.0, "l2": 0.1, "psnr": psnr, "ssim": psnr / 100, "swd": swd, "detail": detail}

    results = {"csa": metrics(29.0, 88.0, 0.60), "telea": metrics(27.0, 140.0, 0.55), "ns": metrics(27.5, 110.0, 0.50),
               "fsr": metrics(28.5, 150.0, 0.61), "shiftmap": metrics(23.0, 44.0, 0.98)}
    quality = {"sets": {"kodak24": {"images": 24, "results": {label: {"10-20%": m} for label, m in results.items()}}}}
    lines = _quality_tables(quality, "csa")
    header = next(line for line in lines if line.startswith("| masks |"))
    assert "| csa | OpenCV telea | OpenCV ns | OpenCV fsr | OpenCV shift-map | margin over the better OpenCV method" in header
    row = next(line for line in lines if line.startswith("| 10-20% |"))
    assert row.endswith("| +0.50 dB, SSIM +0.0050, SWD ×0.80, detail +0.050, SWD ×2.00 of shift-map's |"), row
    assert "(PSNR, SSIM: telea/ns/fsr; SWD, detail: telea/ns) |" in header
    older = {"sets": {"kodak24": {"images": 24, "results": {label: {"10-20%": results[label]} for label in ("csa", "telea", "ns")}}}}
    older_lines = _quality_tables(older, "csa")
    assert "(PSNR, SSIM: telea/ns; SWD, detail: telea/ns) |" in next(line for line in older_lines if line.startswith("| masks |"))
    assert next(line for line in older_lines if line.startswith("| 10-20% |")).endswith(
        "| +1.50 dB, SSIM +0.0150, SWD ×0.80, detail +0.050 |")


def test_lr_knots_show_a_re_planned_schedule_as_it_ran(tmp_path: Path) -> None:
    from restore.training.loop import LoopOptions
    from restore.training.model_card import lr_knots

    first = LoopOptions(out=tmp_path, iters=1200, batch_size=1, size=32, warmup=100, lr_decay_from=300)
    # resumed at step 700 with the decay re-planned to end at 1500, the rate carried on from where it was
    second = LoopOptions(out=tmp_path, iters=1500, batch_size=1, size=32, warmup=100, lr_decay_from=60)
    assert abs(first.lr_scale_at(700) - second.lr_scale_at(700)) < 1e-12
    rows = [{"step": s, "lr": (first if s <= 700 else second).lr_scale_at(s - 1)} for s in range(10, 1501, 10)]
    rows += [{"step": 690, "lr": first.lr_scale_at(689)}]  # steps logged again after a resume
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    steps = [step for step, _ in lr_knots(tmp_path / "log.jsonl")]
    assert steps == [10, 100, 300, 700, 1500]
    assert [step for step, _ in lr_knots(tmp_path / "log.jsonl", until=1000)] == [10, 100, 300, 700, 1000]
    # re-planned at step 700 without keeping the rate: it jumps up there, and both sides show
    third = LoopOptions(out=tmp_path, iters=2000, batch_size=1, size=32, warmup=100, lr_decay_from=0)
    rows = [{"step": s, "lr": (first if s <= 700 else third).lr_scale_at(s - 1)} for s in range(10, 2001, 10)]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    knots = lr_knots(tmp_path / "log.jsonl")
    assert [step for step, _ in knots] == [10, 100, 300, 700, 710, 2000]
    assert knots[4][1] > knots[3][1]


def test_model_card_lists_the_stage_a_run_started_from(tmp_path: Path) -> None:
    from restore.checkpoint import save_checkpoint

    _run(tmp_path / "run", iters=2)
    assert CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(tmp_path / "base.pt")]).exit_code == 0
    later = load_checkpoint(tmp_path / "base.pt")  # stands in for a run started with --init base.pt
    later["step"] = 3
    later["metadata"].update(init_from={"digest": file_digest(tmp_path / "base.pt"), "step": 2}, base_steps=2, total_steps=5,
                             train_seconds=1800.0, hardware="a GPU", data="copy/of/train")
    save_checkpoint(later, tmp_path / "csa.pt")
    card = tmp_path / "csa.md"
    arguments = ["--checkpoint", str(tmp_path / "csa.pt"), "--out", str(card), "--note", "the copy's photos were downscaled"]
    wrong = CliRunner().invoke(model_card, [*arguments, "--base", str(tmp_path / "csa.pt")])
    assert wrong.exit_code == 1 and "was not started from --base" in wrong.output and not card.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = CliRunner().invoke(model_card, ["--checkpoint", str(tmp_path / "junk.pt"), "--out", str(card)])
    assert junk.exit_code == 1 and "junk.pt" in junk.output and not card.exists()
    result = CliRunner().invoke(model_card, [*arguments, "--base", str(tmp_path / "base.pt"), "--base-run", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    text = card.read_text()
    stages = [line for line in text.splitlines() if line.startswith(("| 0–2 |", "| 2–5 |"))]
    assert len(stages) == 2 and "a GPU" in stages[1] and "copy/of/train" in stages[1] and "0.50 h" in stages[1]
    assert "5 steps in all" in text and "- the copy's photos were downscaled" in text


def test_model_card_follows_a_chain_of_stages(tmp_path: Path) -> None:
    from restore.checkpoint import save_checkpoint

    _run(tmp_path / "run", iters=2)
    assert CliRunner().invoke(ship, [str(tmp_path / "run" / "last.pt"), str(tmp_path / "first.pt")]).exit_code == 0
    parent = tmp_path / "first.pt"
    for name, steps, base_steps in (("second.pt", 3, 2), ("third.pt", 4, 5)):  # each started with --init its parent
        child = load_checkpoint(parent)
        child["step"] = steps
        child["metadata"].update(init_from={"digest": file_digest(parent), "step": base_steps}, base_steps=base_steps,
                                 total_steps=base_steps + steps, hardware=f"hardware of {name}")
        if name == "third.pt":  # a fine-tune on the squared error alone
            child["config"].update(l1_weight=0.0, l2_weight=10.0)
        save_checkpoint(child, tmp_path / name)
        parent = tmp_path / name
    card = tmp_path / "csa.md"
    arguments = ["--checkpoint", str(tmp_path / "third.pt"), "--out", str(card)]
    chain = ["--base", str(tmp_path / "second.pt"), "--base", str(tmp_path / "first.pt")]
    out_of_order = CliRunner().invoke(model_card, [*arguments, *chain[2:], *chain[:2]])
    assert out_of_order.exit_code == 1 and "third.pt was not started from --base" in out_of_order.output
    broken = CliRunner().invoke(model_card, [*arguments, "--base", str(tmp_path / "second.pt"), "--base", str(tmp_path / "second.pt")])
    assert broken.exit_code == 1 and "second.pt was not started from --base" in broken.output and not card.exists()
    unpaired = CliRunner().invoke(model_card, [*arguments, *chain, "--base-run", str(tmp_path / "run")])
    assert unpaired.exit_code == 1 and "one --base-run per --base" in unpaired.output and not card.exists()
    result = CliRunner().invoke(model_card, [*arguments, *chain])
    assert result.exit_code == 0, result.output
    rows = [line for line in card.read_text().splitlines() if line.startswith(("| 0–2 |", "| 2–5 |", "| 5–9 |"))]
    assert [row.split(" | ")[0] for row in rows] == ["| 0–2", "| 2–5", "| 5–9"]
    assert "hardware of second.pt" in rows[1] and "hardware of third.pt" in rows[2] and "9 steps in all" in card.read_text()
    assert "L1 on both stages" in rows[1] and "squared error" not in rows[1]
    assert "squared error on both stages (weight 10.0" in rows[2] and "L1" not in rows[2]
    losses = next(line for line in card.read_text().splitlines() if line.startswith("| losses |"))
    assert losses.count("; then ") == 1 and losses.index("L1 on both") < losses.index("squared error")
