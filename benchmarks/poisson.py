"""Speed of Poisson blending (:func:`restore.inference.poisson.poisson_blend`, ``restore batch --blend poisson``).

One RGB image per size, float32, with a centred box hole of a quarter of the area and with a
random irregular mask (thick brush strokes over about a fifth of the area); the guide is the
image plus a smooth colour drift and noise, so the solve has work to do. Prints seconds per
image (median of the repeats) and conjugate-gradient iterations; ``--json`` writes them.

    python benchmarks/poisson.py [--sizes 256 1024] [--threads 2] [--device cpu|cuda] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from restore.inference.poisson import poisson_blend


def box_mask(size: int) -> np.ndarray:
    """A centred square hole of a quarter of the area."""
    hole = np.zeros((size, size), bool)
    side = size // 2
    start = (size - side) // 2
    hole[start : start + side, start : start + side] = True
    return hole


def stroke_mask(size: int, area: float = 0.2, seed: int = 0) -> np.ndarray:
    """Random thick brush strokes until they cover ``area`` of the image (some touch the border)."""
    rng = np.random.default_rng(seed)
    hole = np.zeros((size, size), np.uint8)
    while hole.mean() < area:
        points = [rng.integers(0, size, 2)]
        for _ in range(rng.integers(3, 8)):
            angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.2) * size
            points.append(np.clip(points[-1] + length * np.array([np.cos(angle), np.sin(angle)]), 0, size - 1).astype(int))
        width = max(2, int(rng.uniform(0.01, 0.04) * size))
        cv2.polylines(hole, [np.array(points, np.int32)], False, 1, width)
    return hole.astype(bool)


def inputs(size: int, hole: np.ndarray, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    image = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size), torch.full((size, size), 0.5)])
    image = (image + 0.05 * torch.randn(3, size, size, generator=generator)).clamp(0, 1)[None]
    drift = torch.tensor([0.1, -0.08, 0.05])[:, None, None] * (1 + ramp[None, None, :])
    guide = (image + drift + 0.02 * torch.randn(3, size, size, generator=generator)).clamp(0, 1)
    mask = torch.from_numpy(hole).float()[None, None]
    return guide.to(device), image.to(device), mask.to(device)


def measure(size: int, kind: str, device: str, repeats: int) -> dict:
    hole = box_mask(size) if kind == "box" else stroke_mask(size)
    guide, image, mask = inputs(size, hole, device)
    info: dict = {}
    seconds = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        poisson_blend(guide, image, mask, info=info)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return {"size": size, "mask": kind, "hole_fraction": round(float(hole.mean()), 3), "seconds": statistics.median(seconds),
            "iterations": info["iterations"], "converged": info["converged"], "residual": info["residual"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--masks", nargs="+", choices=["box", "strokes"], default=["box", "strokes"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"poisson_blend, float32, {args.device}, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'size':>6} {'mask':>8} {'hole':>6} {'seconds':>9} {'iters':>6} {'residual':>9}")
    for size in args.sizes:
        for kind in args.masks:
            row = measure(size, kind, args.device, args.repeats)
            rows.append(row)
            print(f"{size:>6} {kind:>8} {row['hole_fraction']:>6.3f} {row['seconds']:>9.3f} {row['iterations']:>6} {row['residual']:>9.1e}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"device": args.device, "threads": args.threads, "cpu": platform.processor() or platform.machine(), "torch": torch.__version__}
        args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
