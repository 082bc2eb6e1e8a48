"""``index.html`` of a report: the runs and the metrics tables rendered as HTML, the pictures left to its script.

The page needs no network: its style sheet and script are package data
(``restore/report/static/``) copied into ``assets/``, its data is ``data.js`` beside it.
Everything the user named (labels, keys, paths) is HTML-escaped here and set as text by
the script.
"""

from __future__ import annotations

import html
import math
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from restore.report.builder import DATA_FILE
from restore.report.metrics_spec import METRICS, MetricSpec

#: Files of ``restore/report/static`` copied into the report's ``assets/``.
ASSETS = ("report.js", "report.css")
#: Metrics in the bucket table (LPIPS when computed; FID has a column of its own).
TABLE_METRICS = ("psnr", "ssim", "swd", "detail", "lpips")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def _best(values: list[float | None], better: str) -> float | None:
    usable = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if len(usable) < 2:
        return None
    if better == "higher":
        return max(usable)
    if better == "lower":
        return min(usable)
    return min(usable, key=lambda v: abs(math.log(v)) if v > 0 else math.inf)


def metrics_table(labels: Sequence[str], results: Sequence[dict]) -> str:
    """The per-bucket table: one body per hole-ratio bucket (then all images), one row per run.

    The best value of a bucket among the runs is marked (class ``best``, in bold).

    Args:
        labels: One per run.
        results: Per run, what :func:`restore.evaluation.compare_archives` returns (``fid`` optional).
    """
    specs = [s for s in METRICS if s.name in TABLE_METRICS and s.name in results[0]["overall"]]
    has_fid = any("fid" in r for r in results)
    head = "".join(f'<th scope="col" data-metric="{s.name}">{_e(s.title)}</th>' for s in specs)
    head += '<th scope="col" data-metric="fid">FID</th>' if has_fid else ""
    lines = ['<table id="metrics-table" class="metrics">',
             f'<thead><tr><th scope="col">masks</th><th scope="col">method</th><th scope="col">images</th>{head}</tr></thead>']
    groups = [(name, [r["buckets"].get(name) for r in results]) for name in results[0]["buckets"]]
    groups.append(("all", [r["overall"] for r in results]))
    for bucket, cells in groups:
        lines.append(f'<tbody data-bucket="{_e(bucket)}">')
        best = {s.name: _best([c.get(s.name) if c else None for c in cells], s.better) for s in specs}
        for i, (label, cell) in enumerate(zip(labels, cells, strict=True)):
            if not cell:
                continue
            first = f'<th scope="rowgroup" rowspan="{sum(1 for c in cells if c)}">{_e(bucket)}</th>' if i == 0 else ""
            row = [f'<tr data-label="{_e(label)}" data-bucket="{_e(bucket)}">{first}<td class="label">{_e(label)}</td><td class="count">{cell["count"]}</td>']
            for s in specs:
                value = cell.get(s.name)
                mark = ' class="best"' if best[s.name] is not None and value == best[s.name] else ""
                row.append(f'<td data-metric="{s.name}"{mark}>{_number(value, s.digits)}</td>')
            if has_fid:
                fid = results[i].get("fid") if bucket == "all" else None
                row.append(f'<td data-metric="fid">{_number(fid, 2)}</td>')
            lines.append("".join(row) + "</tr>")
        lines.append("</tbody>")
    lines.append("</table>")
    return "\n".join(lines)


def runs_table(labels: Sequence[str], provenance: Sequence[dict], changed: Sequence[int] | None) -> str:
    """One row per run: label, method, checkpoint (and digest), strategy, archive; known pixels changed with a target."""
    head = "<th>label</th><th>method</th><th>checkpoint</th><th>strategy</th><th>archive</th>"
    head += "<th>known pixels changed</th>" if changed is not None else ""
    rows = []
    for i, (label, info) in enumerate(zip(labels, provenance, strict=True)):
        checkpoint = Path(info["checkpoint"]).name if info.get("checkpoint") else "–"
        digest = f' <span class="digest">{_e(info["checkpoint_digest"])}</span>' if info.get("checkpoint_digest") else ""
        strategy = info.get("strategy") or "–"
        if int(info.get("ensemble") or 1) > 1:
            strategy += f", ensemble {info['ensemble']}"
        cells = (f'<td class="label">{_e(label)}</td><td>{_e(info.get("method") or "–")}</td>'
                 f'<td>{_e(checkpoint)}{digest}</td><td>{_e(strategy)}</td><td class="path">{_e(info["archive"])}</td>')
        if changed is not None:
            cells += f'<td class="{"warn" if changed[i] else ""}">{changed[i]}</td>'
        rows.append(f'<tr data-label="{_e(label)}">{cells}</tr>')
    return f'<table id="runs-table" class="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_index(
    *,
    labels: Sequence[str],
    provenance: Sequence[dict],
    count: int,
    masks: str,
    target: str | None,
    results: Sequence[dict] | None,
    created: str,
    version: str,
) -> str:
    """The page's HTML.

    Args:
        labels: One per run, in column order.
        provenance: Per run, :func:`restore.comparison.provenance`.
        count: Images in the report.
        masks: The mask source, described.
        target: The original archive, or None.
        results: Per run, the metrics (None without a target).
        created: When the report was made (ISO 8601).
        version: The package version.
    """
    title = f"restore eval: {' vs '.join(labels)} ({count} images)"
    changed = [len(r["known_pixels_changed"]) for r in results] if results is not None else None
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        '<link rel="stylesheet" href="assets/report.css"></head>',
        "<body>",
        f'<header><h1>{_e(title)}</h1><p class="meta">{count} images · '
        + (f'original <span class="path">{_e(target)}</span> · ' if target else "no original (no metrics) · ")
        + f'masks: {_e(masks)} · made {_e(created)} by restore {_e(version)}</p></header>',
        '<section id="runs"><h2>Runs</h2>',
        runs_table(labels, provenance, changed),
        "</section>",
    ]
    if results is not None:
        parts += [
            '<section id="metrics"><h2>Metrics per hole-ratio bucket</h2>',
            metrics_table(labels, results),
            '<p class="note">PSNR and SSIM over the whole image; inside the holes, SWD ×10³ (lower is better) and the '
            "detail ratio (1.0 is the original's detail, a blurry fill is below it). Bold: the best run of the bucket.</p>",
            "</section>",
        ]
    parts += [
        '<section id="controls" aria-label="view">',
        '<label>sort by <select id="sort"></select></label> ',
        '<label><select id="order"></select></label> ',
        '<label><input type="checkbox" id="outlines" checked> hole outlines</label> ',
        '<label>per page <select id="page-size"><option>25</option><option selected>50</option><option>100</option><option>200</option></select></label>',
        "</section>",
        '<section id="extremes" hidden><h2 id="extremes-title">Worst and best per method</h2><div id="extremes-rows"></div></section>',
        '<section id="images"><h2>All images</h2>',
        '<nav class="pager" aria-label="pages"></nav><div id="rows"></div><nav class="pager" aria-label="pages"></nav>',
        "</section>",
        "<noscript><p>The pictures, sorting and pages need JavaScript; the tables above do not.</p></noscript>",
        f'<script src="{DATA_FILE}" charset="utf-8"></script>',
        '<script src="assets/report.js" charset="utf-8"></script>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_page(root: Path, html_text: str) -> Path:
    """Write ``index.html`` and copy the script and style sheet into ``assets/``.

    Returns:
        The path of ``index.html``.
    """
    assets = Path(root) / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    static = resources.files("restore.report") / "static"
    for name in ASSETS:
        with resources.as_file(static / name) as source:
            shutil.copyfile(source, assets / name)
    index = Path(root) / "index.html"
    index.write_text(html_text, encoding="utf-8")
    return index


__all__ = ["MetricSpec", "metrics_table", "render_index", "runs_table", "write_page"]
