"""Speed (and memory) of restore's kernels against plain PyTorch.

The comparisons of issue 3:

* ``csa_propagate`` at 32×32×512 with a centre 16×16 hole, batch 1 and 8, against
  (a) the CSA authors' style — a Python loop over the positions that builds a 1×1
  convolution per hole position and an attention map, reconstructed at the end by
  a transposed convolution — and (b) a loop over the hole positions whose every
  step is vectorised over the batch and the channels.
* ``patch_best_match`` (64×64 positions × 128 channels, batch 4) against
  ``torch.matmul`` + ``max`` on pre-normalised inputs: time, and peak memory above
  the inputs (each measured in a fresh subprocess: the RSS high-water mark
  ``VmHWM`` on CPU, ``torch.cuda.max_memory_allocated`` on CUDA).
* ``masked_gradient_penalty`` forward + backward against the unfused expression.

Every comparison first checks that the implementations agree. Prints a table and
writes JSON (``--json``, default ``bench-out/kernels.json``).

    python benchmarks/kernels.py [--device cpu|cuda] [--json PATH] [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.ops import (
    csa_propagate,
    has_ops,
    masked_gradient_penalty,
    masked_gradient_penalty_reference,
    patch_best_match,
)

FLOOR = 1e-4


# ---------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(
    fn: Callable[[], object], device: str, repeats: int, warmup: int = 1, budget_s: float = 20.0
) -> float:
    """Median wall time of ``fn`` in milliseconds (fewer repeats when one call is slow)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        if time.perf_counter() - start_all > budget_s and len(times) >= 3:
            break
    return 1e3 * statistics.median(times)


# ---------------------------------------------------------------------------
# csa_propagate baselines
# ---------------------------------------------------------------------------


def csa_authors_style(
    features: torch.Tensor, hole: torch.Tensor, index: torch.Tensor, score: torch.Tensor
) -> torch.Tensor:
    """The CSA authors' structure: per position a membership test, per hole position a
    freshly built 1×1 ``nn.Conv2d`` (weight = the normalised feature) applied to the
    previous patch, an attention row over all positions, and a transposed convolution
    with every position's feature as a filter to reconstruct the map.
    """
    b, c, h, w = features.shape
    n_pos = h * w
    outputs = []
    with torch.no_grad():
        for i in range(b):
            f = features[i : i + 1]
            hole_idx = hole[i].flatten().nonzero().squeeze(1)
            patches = f.reshape(c, n_pos).t().reshape(n_pos, c, 1, 1)  # deconvolution filters
            attention = torch.zeros(1, n_pos, h, w, dtype=f.dtype)
            rows = torch.zeros(hole_idx.numel(), n_pos, dtype=f.dtype)
            m_prev = None
            step = 0
            for y in range(h):
                for x in range(w):
                    p = y * w + x
                    if int(torch.eq(hole_idx, p).sum()) == 0:  # a known position
                        attention[0, p, y, x] = 1
                        continue
                    j = int(index[i, y, x])
                    d_max = max(float(score[i, y, x]), 0.0)
                    m_bar = patches[j].view(1, c, 1, 1)
                    if step == 0:
                        m = m_bar
                        rows[0, j] = 1
                    else:
                        f_i = f[:, :, y, x].reshape(1, c, 1, 1)
                        conv = torch.nn.Conv2d(c, 1, kernel_size=1, bias=False)
                        conv.weight.data = f_i / f_i.norm().clamp_min(FLOOR)
                        d_ad = float(conv(m_prev / m_prev.norm().clamp_min(FLOOR)).squeeze())
                        d_ad = max(d_ad, 0.0)
                        total = d_ad + d_max
                        weight = d_ad / total if total > 0 else 0.0
                        m = weight * m_prev + (1 - weight) * m_bar
                        rows[step] = rows[step - 1] * weight
                        rows[step, j] += 1 - weight
                    attention[0, :, y, x] = rows[step]
                    m_prev = m
                    step += 1
            outputs.append(F.conv_transpose2d(attention, patches))
    return torch.cat(outputs)


def csa_vectorised_steps(
    features: torch.Tensor, hole: torch.Tensor, index: torch.Tensor, score: torch.Tensor
) -> torch.Tensor:
    """A Python loop over the hole positions, each step vectorised over batch and channels
    (needs the same hole in every image, as in this benchmark)."""
    if not bool((hole == hole[:1]).all()):
        raise ValueError("the vectorised-per-step baseline needs one hole shared by the batch")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    pos = hole[0].flatten().nonzero().squeeze(1)
    idx = index.reshape(b, h * w)[:, pos]  # (B, n)
    d_max = score.reshape(b, h * w)[:, pos].clamp_min(0)
    f_hole = flat[:, :, pos]  # (B, C, n)
    m_bar = torch.gather(flat, 2, idx.unsqueeze(1).expand(b, c, -1))  # (B, C, n)
    out = flat.clone()
    m_prev = m_bar[:, :, 0]
    columns = [m_prev]
    for s in range(1, pos.numel()):
        f_s = f_hole[:, :, s]
        cos = (f_s * m_prev).sum(1) / (
            f_s.norm(dim=1).clamp_min(FLOOR) * m_prev.norm(dim=1).clamp_min(FLOOR)
        )
        d_ad = cos.clamp_min(0)
        total = d_ad + d_max[:, s]
        weight = torch.where(total > 0, d_ad / total.clamp_min(1e-30), 0).unsqueeze(1)
        m_prev = weight * m_prev + (1 - weight) * m_bar[:, :, s]
        columns.append(m_prev)
    out[:, :, pos] = torch.stack(columns, dim=2)
    return out.view(b, c, h, w)


def bench_csa(device: str, repeats: int) -> list[dict]:
    rows = []
    c, h, w = 512, 32, 32
    for batch in (1, 8):
        torch.manual_seed(0)
        features = torch.randn(batch, c, h, w, device=device)
        hole = torch.zeros(batch, h, w, dtype=torch.bool, device=device)
        hole[:, 8:24, 8:24] = True
        index, score = patch_best_match(features, features, ~hole)
        ours = csa_propagate(features, hole, index, score)
        vec = csa_vectorised_steps(features, hole, index, score)
        torch.testing.assert_close(vec, ours, rtol=1e-4, atol=1e-5)
        t_ours = time_ms(
            lambda f=features, hl=hole, i=index, s=score: csa_propagate(f, hl, i, s),
            device,
            repeats * 10,
        )
        t_vec = time_ms(
            lambda f=features, hl=hole, i=index, s=score: csa_vectorised_steps(f, hl, i, s),
            device,
            repeats,
        )
        row = {
            "bench": "csa_propagate",
            "shape": f"B={batch} C={c} {h}x{w}, hole 16x16",
            "ours_ms": t_ours,
            "vectorised_steps_ms": t_vec,
            "speedup_vs_vectorised_steps": t_vec / t_ours,
        }
        if device == "cpu":  # the authors' style is a CPU-bound Python loop either way
            authors = csa_authors_style(features, hole, index, score)
            torch.testing.assert_close(authors, ours, rtol=1e-4, atol=1e-5)
            t_auth = time_ms(
                lambda f=features, hl=hole, i=index, s=score: csa_authors_style(f, hl, i, s),
                device,
                max(1, repeats // 2),
                warmup=0,
            )
            row["authors_style_ms"] = t_auth
            row["speedup_vs_authors_style"] = t_auth / t_ours
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# patch_best_match vs matmul + max
# ---------------------------------------------------------------------------

MEMORY_SCRIPT = r"""
import sys, json
import psutil, torch
torch.manual_seed(0)
method, device, B, C, H, W = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
from restore.ops import patch_best_match
q = torch.randn(B, C, H, W, device=device)
k = torch.randn(B, C, H, W, device=device)
valid = torch.ones(B, H, W, dtype=torch.bool, device=device)
if method == "baseline":
    qn = (q / q.norm(dim=1, keepdim=True).clamp_min(1e-4)).flatten(2).transpose(1, 2).contiguous()
    kn = (k / k.norm(dim=1, keepdim=True).clamp_min(1e-4)).flatten(2).contiguous()
def ours():
    return patch_best_match(q, k, valid)
def baseline():
    return torch.matmul(qn, kn).max(dim=2)
fn = ours if method == "ours" else baseline
def vm_hwm():  # peak RSS of this process image (ru_maxrss would include the parent's, kept over exec)
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))
if device == "cuda":
    fn(); torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = fn(); torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
else:
    try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # then VmHWM may include the import's peak: an overestimate, never an underestimate
    before = psutil.Process().memory_info().rss
    out = fn()
    peak = vm_hwm() - before
print(json.dumps({"peak_bytes": peak}))
"""


def peak_memory(method: str, device: str, shape: tuple[int, int, int, int]) -> int:
    """Peak memory (bytes) of one call above what was resident before it, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, method, device, *map(str, shape)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(result.stdout.strip().splitlines()[-1])["peak_bytes"])


#: (B, C, H, W): a large feature map, and the CSA layer's input when training at batch 32
#: (width 32: 96 channels at 32x32).
BEST_MATCH_SHAPES = [(4, 128, 64, 64), (32, 96, 32, 32)]


def bench_best_match(device: str, repeats: int) -> list[dict]:
    rows = []
    for b, c, h, w in BEST_MATCH_SHAPES:
        torch.manual_seed(0)
        q = torch.randn(b, c, h, w, device=device)
        k = torch.randn(b, c, h, w, device=device)
        valid = torch.ones(b, h, w, dtype=torch.bool, device=device)
        qn = (q / q.norm(dim=1, keepdim=True).clamp_min(FLOOR)).flatten(2).transpose(1, 2).contiguous()
        kn = (k / k.norm(dim=1, keepdim=True).clamp_min(FLOOR)).flatten(2).contiguous()
        index, score = patch_best_match(q, k, valid)
        ref_score, ref_index = torch.matmul(qn, kn).max(dim=2)
        torch.testing.assert_close(score.flatten(1), ref_score, rtol=1e-4, atol=1e-5)
        agree = (index.flatten(1) == ref_index).float().mean().item()
        t_ours = time_ms(lambda q=q, k=k, valid=valid: patch_best_match(q, k, valid), device, repeats)
        t_base = time_ms(lambda qn=qn, kn=kn: torch.matmul(qn, kn).max(dim=2), device, repeats)
        hole = valid.clone()
        hole[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = False
        t_hole = time_ms(lambda q=q, k=k, hole=hole: patch_best_match(q, k, hole), device, repeats)
        m_ours = peak_memory("ours", device, (b, c, h, w))
        m_base = peak_memory("baseline", device, (b, c, h, w))
        rows.append(
            {
                "bench": "patch_best_match",
                "shape": f"B={b} C={c} {h}x{w} (all keys valid)",
                "ours_ms": t_ours,
                "matmul_max_ms": t_base,
                "speedup_vs_matmul_max": t_base / t_ours,
                "ours_with_centre_hole_ms": t_hole,
                "index_agreement": agree,
                "ours_peak_bytes": m_ours,
                "matmul_max_peak_bytes": m_base,
                "memory_ratio": m_ours / m_base,
            }
        )
    return rows


# ---------------------------------------------------------------------------
# masked_gradient_penalty
# ---------------------------------------------------------------------------


def bench_penalty(device: str, repeats: int) -> list[dict]:
    rows = []
    for b, c, h, w in ((16, 3, 256, 256), (16, 3, 128, 128)):
        torch.manual_seed(0)
        grad = torch.randn(b, c, h, w, device=device)
        mask = (torch.rand(b, 1, h, w, device=device) < 0.3).float()

        def fwd_bwd(fn, grad=grad, mask=mask):
            g = grad.detach().requires_grad_(True)
            fn(g, mask).backward()
            return g.grad

        torch.testing.assert_close(
            fwd_bwd(masked_gradient_penalty),
            fwd_bwd(masked_gradient_penalty_reference),
            rtol=1e-4,
            atol=1e-7,
        )
        t_ours = time_ms(lambda f=fwd_bwd: f(masked_gradient_penalty), device, repeats * 5)
        t_ref = time_ms(lambda f=fwd_bwd: f(masked_gradient_penalty_reference), device, repeats * 5)
        rows.append(
            {
                "bench": "masked_gradient_penalty fwd+bwd",
                "shape": f"B={b} C={c} {h}x{w}",
                "ours_ms": t_ours,
                "unfused_ms": t_ref,
                "speedup_vs_unfused": t_ref / t_ours,
            }
        )
    return rows


# ---------------------------------------------------------------------------


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def print_table(rows: list[dict]) -> None:
    print(f"{'benchmark':<34} {'shape':<36} {'ours':>10}  comparison")
    for row in rows:
        others = []
        for key, value in row.items():
            if key.endswith("_ms") and key != "ours_ms":
                name = key[:-3]
                speed = row.get(f"speedup_vs_{name}")
                others.append(f"{name} {value:.2f} ms" + (f" ({speed:.1f}x)" if speed else ""))
        if "memory_ratio" in row:
            others.append(
                f"peak {_fmt_bytes(row['ours_peak_bytes'])} vs {_fmt_bytes(row['matmul_max_peak_bytes'])}"
                f" ({row['memory_ratio']:.3f})"
            )
        print(
            f"{row['bench']:<34} {row['shape']:<36} {row['ours_ms']:>7.2f} ms  " + "; ".join(others)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"]
    )
    parser.add_argument(
        "--json", default="bench-out/kernels.json", help="where to write the results"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per measurement (median)"
    )
    parser.add_argument(
        "--only", choices=["csa", "best_match", "penalty"], help="run one benchmark"
    )
    parser.add_argument(
        "--threads", type=int, help="torch.set_num_threads (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the memory subprocesses
    if not has_ops():
        print(
            "warning: restore._C is not built; timing the plain-PyTorch references", file=sys.stderr
        )
    rows: list[dict] = []
    if args.only in (None, "csa"):
        rows += bench_csa(args.device, args.repeats)
    if args.only in (None, "best_match"):
        rows += bench_best_match(args.device, args.repeats)
    if args.only in (None, "penalty"):
        rows += bench_penalty(args.device, args.repeats)
    print_table(rows)
    meta = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15min": os.getloadavg(),
        "platform": platform.platform(),
        "compiled_ops": has_ops(),
        "peak_memory_note": "CPU: VmHWM after one call - RSS before it (high-water mark reset first), in a fresh process; CUDA: max_memory_allocated - memory_allocated",
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
