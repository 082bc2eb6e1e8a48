"""Contextual attention's memory and time: the blocked form against the full score volume.

For each image side, DeepFill's attention input (128 channels at 1/4 resolution, 30 % of it
hole in random boxes) goes through :func:`restore.nn.contextual_attention.contextual_attention`
in a fresh process, once in the blocked form (the default beyond ``max_scores``) and once
in the full form (the whole (H/8·W/8)² volume, what the reference implementations hold), every
query attended (no near-hole shortcut): peak RSS growth over the process before the call, and
seconds. The full form is only run where its volume (one float32 copy) fits ``--full-limit-gib``;
beyond, its size is printed as computed.

    OMP_NUM_THREADS=2 python benchmarks/attention_memory.py --sides 512,1024,2048 [--json PATH]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

PROBE = """
import resource, sys, time, numpy as np, torch
from restore.nn.contextual_attention import contextual_attention
side, form = int(sys.argv[1]), sys.argv[2]
grid = side // 4
rng = np.random.default_rng(0)
hole = np.zeros((grid, grid), bool)
while hole.mean() < 0.3:
    y, x = rng.integers(0, grid, 2); h, w = rng.integers(max(1, grid // 64), max(2, grid // 8), 2); hole[y:y + h, x:x + w] = True
features = torch.from_numpy(rng.standard_normal((1, 128, grid, grid), dtype=np.float32)).relu()
mask = torch.from_numpy(hole)[None, None].float()
with torch.no_grad():
    contextual_attention(features[..., :32, :32], mask[..., :32, :32])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    contextual_attention(features, mask, max_scores=(2**62 if form == "full" else 2**24))
    seconds = time.perf_counter() - start
print(seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, float(hole.mean()))
"""


@click.command()
@click.option("--sides", default="512,1024,2048", show_default=True, help="Image sides (the attention runs at 1/4 of them).")
@click.option("--full-limit-gib", default=3.0, show_default=True, type=float, help="Run the full form only when one copy of its volume fits this.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-out/attention-memory.json"), show_default=True)
def main(sides: str, full_limit_gib: float, json_path: Path) -> None:
    rows = []
    for side in (int(s) for s in sides.split(",")):
        positions = (side // 8) ** 2
        volume_gib = 4 * positions**2 / 2**30
        row = {"side": side, "grid": side // 8, "full_volume_gib": volume_gib}
        for form in ("blocked", "full"):
            if form == "full" and volume_gib > full_limit_gib:
                row["full_s"], row["full_peak_mib"] = None, None
                continue
            result = subprocess.run([sys.executable, "-c", PROBE, str(side), form], capture_output=True, text=True, check=True)
            seconds, grown, hole = (float(v) for v in result.stdout.split())
            row[f"{form}_s"], row[f"{form}_peak_mib"], row["hole_pct"] = seconds, grown, 100 * hole
        rows.append(row)
        full = f"{row['full_peak_mib']:.0f} MiB, {row['full_s']:.1f} s" if row["full_s"] is not None else f"not run (one copy of the volume: {volume_gib:.1f} GiB)"
        print(f"{side}²: blocked {row['blocked_peak_mib']:.0f} MiB, {row['blocked_s']:.1f} s; full {full}", flush=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
