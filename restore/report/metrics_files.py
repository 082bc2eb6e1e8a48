"""The metrics files of ``restore eval``: strict JSON, a markdown table, per-image CSV.

One restoration gives the flat layout ``restore eval`` has always written; several give one
section per label (a ``runs`` object in the JSON, a ``## label`` section in the markdown, a
``label`` column in the CSV).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The metrics files of a report folder.
METRICS_FILES = ("metrics.json", "metrics.md", "per_image.csv")
#: Columns of per_image.csv (LPIPS added when computed).
CSV_COLUMNS = ["key", "hole_ratio", "bucket", "l1", "l2", "psnr", "ssim", "swd", "detail", "grad_pred", "grad_target"]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (PSNR of a perfect image is inf) as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def markdown_table(result: dict) -> str:
    """One run's table: a row per hole-ratio bucket and one for all images (L1 %, L2 %, PSNR, SSIM, SWD, detail[, LPIPS]; FID below)."""
    has_lpips = "lpips" in result["overall"]
    header = "| masks | images | L1 % | L2 % | PSNR dB | SSIM | SWD | detail |" + (" LPIPS |" if has_lpips else "")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    rows = [*result["buckets"].items(), ("all", result["overall"])]
    for name, m in rows:
        if m.get("count"):
            line = (f"| {name} | {m['count']} | {m['l1']:.2f} | {m['l2']:.3f} | {m['psnr']:.2f} | {m['ssim']:.4f} | "
                    f"{m['swd']:.1f} | {m['detail']:.3f} |")
            lines.append(line + (f" {m['lpips']:.4f} |" if has_lpips else ""))
    if "fid" in result:
        lines.append(f"\nFID ({result['overall']['count']} images): {result['fid']:.2f}")
    return "\n".join(lines)


def markdown(labels: Sequence[str], results: Sequence[dict]) -> str:
    """The table of one run, or a ``## label`` section per run."""
    if len(results) == 1:
        return markdown_table(results[0])
    return "\n\n".join(f"## {label}\n\n{markdown_table(result)}" for label, result in zip(labels, results, strict=True))


def combined(labels: Sequence[str], results: Sequence[dict], common: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: one run's result (flat, as before), or ``common`` with ``labels`` and ``runs`` (label → result)."""
    if len(results) == 1:
        return results[0]
    return {**common, "labels": list(labels), "runs": dict(zip(labels, results, strict=True))}


def json_text(document: dict[str, Any]) -> str:
    """Strict JSON (no NaN or Infinity: None in their place), indented by one."""
    return json.dumps(finite(document), indent=1, allow_nan=False)


def write_csv(path: Path, labels: Sequence[str], results: Sequence[dict]) -> None:
    """per_image.csv: a row per image (per run and image, with a ``label`` column, for several runs)."""
    columns = CSV_COLUMNS + (["lpips"] if "lpips" in results[0]["overall"] else [])
    several = len(results) > 1
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=(["label"] if several else []) + columns, extrasaction="ignore")
        writer.writeheader()
        for label, result in zip(labels, results, strict=True):
            for row in result["images"]:
                writer.writerow({"label": label, **row} if several else row)


def write_metrics(folder: Path, labels: Sequence[str], results: Sequence[dict], document: dict[str, Any]) -> None:
    """metrics.json (``document``), metrics.md and per_image.csv in ``folder``."""
    (folder / "metrics.json").write_text(json_text(document))
    (folder / "metrics.md").write_text(markdown(labels, results) + "\n")
    write_csv(folder / "per_image.csv", labels, results)
