"""Benchmark ``restore batch``: pipeline overhead, workers, memory against archive size, 8192².

Sections (``--sections``, all by default):

- ``throughput``: ``restore batch`` (a subprocess: embedded cluster, 1 worker) against a plain
  in-process loop of the same model over the same images (same reads, masks, engine and
  writes, no Dask). Steady state = first submission to last write (the figure the command
  prints); end to end adds the cluster start and model load. Outputs are checked equal.
- ``workers``: 1 worker × all cores against N workers × 1 thread.
- ``rss``: peak RSS of the whole process tree (client + scheduler + nanny + workers, sampled
  with psutil every 50 ms) against the number of images.
- ``large``: one 8192×8192 photo (a real photo upscaled) with LaMa "medium" masks.
- ``strategies``: sub-sampling against tiles on Kodak photos at their native 768×512, with thin
  scratches and with LaMa "thick" holes: mean PSNR in the holes and a picture of 1:1 crops.

Methods: ``telea`` (OpenCV) and ``tiny-csa`` (a random 4-channel CSA: a model's cost profile,
not its quality) run anywhere; ``csa`` runs with ``--checkpoint`` or when
``restore/weights/csa.pt`` ships. Prints a table; writes JSON (``--json``): the sections run
replace theirs in an existing file, the others are kept.

Run with the machine otherwise idle: ``OMP_NUM_THREADS=1 python benchmarks/batch.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ data


def _photos(size: int) -> list[np.ndarray]:
    """Real photos, centre-cropped square and resized to ``size`` (area)."""
    import cv2

    from restore.data.images import read_image
    from restore.paths import shared_data_dir

    files = sorted((shared_data_dir() / "eval" / "kodak24").glob("*.png")) + sorted((shared_data_dir() / "eval" / "bsds500-val").glob("*.jpg"))
    photos = []
    for path in files:
        image = read_image(path)[..., :3]
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        photos.append(cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA))
    if not photos:  # no shared data: scikit-image's sample photos
        from skimage import data

        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            image = getattr(data, name)()[..., :3]
            side = min(image.shape[:2])
            photos.append(cv2.resize(image[:side, :side], (size, size), interpolation=cv2.INTER_AREA))
    return photos


def make_dataset(folder: Path, count: int, size: int = 256, kind: str = "freeform") -> tuple[Path, Path]:
    """An archive of ``count`` photos (cycled, flipped on later passes) and a mask folder."""
    import cv2

    from restore.data.archive import ArchiveBuilder
    from restore.data.mask_generators import generate_mask

    archive, masks = folder / f"photos{count}.zarr", folder / f"masks{count}"
    if archive.exists():
        return archive, masks
    photos = _photos(size)
    keys = [f"p{i:05d}" for i in range(count)]
    masks.mkdir(parents=True, exist_ok=True)
    with ArchiveBuilder(archive, keys=keys, layout="stack", image_shape=(size, size, 3), dtype="uint8") as builder:
        for i, key in enumerate(keys):
            photo = photos[i % len(photos)]
            builder.add(key, photo if (i // len(photos)) % 2 == 0 else photo[:, ::-1])
            hole = generate_mask(kind, size, size, np.random.default_rng(i))
            cv2.imwrite(str(masks / f"{key}.png"), hole.astype(np.uint8) * 255)
    return archive, masks


def make_large(folder: Path, side: int, hole_ratio: float | None = None) -> tuple[Path, Path]:
    """One ``side``² photo (kodim23 upscaled, bicubic) and a LaMa "medium" mask of that size
    (with ``hole_ratio``: one whose hole area is within 2 points of it)."""
    import cv2

    from restore.data.archive import ArchiveBuilder
    from restore.data.mask_generators import generate_mask

    suffix = f"-{round(100 * hole_ratio)}pct" if hole_ratio is not None else ""
    archive, mask = folder / f"large{side}.zarr", folder / f"large{side}{suffix}-mask.png"
    if not mask.exists():
        ratio = (hole_ratio - 0.02, hole_ratio + 0.02) if hole_ratio is not None else None
        cv2.imwrite(str(mask), generate_mask("medium", side, side, np.random.default_rng(0), ratio=ratio).astype(np.uint8) * 255)
    if archive.exists():
        return archive, mask
    photos = _photos(512)
    photo = photos[min(22, len(photos) - 1)]
    big = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
    with ArchiveBuilder(archive, keys=["large"], layout="group") as builder:
        builder.add("large", big)
    del big
    return archive, mask


def tiny_csa(path: Path) -> Path:
    """A random CSA with 4 base channels (depth 5) saved as a checkpoint."""
    import torch

    from restore.checkpoint import save_checkpoint
    from restore.models.config import config_to_dict
    from restore.models.csa import CSAConfig
    from restore.models.csa.trainer import CSATrainer

    if not path.exists():
        torch.manual_seed(0)
        config = CSAConfig(width=4, max_channels=16, depth=5, consistency_weight=0, adversarial_weight=0)
        trainer = CSATrainer(config)
        save_checkpoint({"method": "csa", "step": 0, "config": config_to_dict(config),
                         "models": {"generator": trainer.generator.state_dict()}, "optimizers": {}, "metadata": {}}, path)  # fmt: skip
    return path


# ------------------------------------------------------------------------------------ runs


class TreeRSS(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._stop_event.is_set():
            total, count = 0, 0
            try:
                for process in [self.root, *self.root.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                        count += 1
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                break
            if total > self.peak:
                self.peak, self.peak_processes = total, count
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def run_batch(archive: Path, masks: Path, output: Path, method: str, checkpoint: Path | None, *, workers: int, threads: int, batch_size: int = 8, strategy: str = "subsample") -> dict:
    """``restore batch`` in a subprocess: wall time, steady-state seconds, peak tree RSS."""
    if output.exists():
        shutil.rmtree(output)
    command = [sys.executable, "-m", "restore", "batch", "--input", str(archive), "--masks", str(masks), "--output", str(output),
               "--method", method, "--workers", str(workers), "--threads-per-worker", str(threads), "--batch-size", str(batch_size),
               "--strategy", strategy, "--device", "cpu"]  # fmt: skip
    if checkpoint is not None:
        command += ["--checkpoint", str(checkpoint)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeRSS(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    peak = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"restore batch failed ({process.returncode}): {stderr.strip()[-2000:]}")
    match = re.search(r"restored (\d+) image\(s\) in ([\d.]+) s", stdout)
    if match is None:
        raise RuntimeError(f"unexpected output: {stdout!r}")
    return {"images": int(match[1]), "steady_s": float(match[2]), "wall_s": wall, "peak_rss_mib": peak / 2**20,
            "peak_processes": sampler.peak_processes}  # fmt: skip


def plain_loop(archive_path: Path, masks_path: Path, output: Path, method: str, checkpoint: Path | None, *, threads: int, batch_size: int = 8, strategy: str = "subsample") -> dict:
    """The same model, reads, masks, engine and writes in one process, without Dask."""
    import torch

    from restore.data.archive import open_archive
    from restore.data.masks import open_mask_source
    from restore.data.output_archive import OutputArchive
    from restore.inference.restoration import restore_images
    from restore.models.registry import load_inpainter
    from restore.pipelines.batch_plan import plan_units

    torch.set_num_threads(threads)
    archive = open_archive(archive_path)
    masks = open_mask_source(masks_path)
    inpainter = load_inpainter(method, checkpoint, "cpu")
    units = plan_units(archive.keys, {key: archive.shape(key)[:2] for key in archive.keys}, batch_size, strategy)
    with OutputArchive.create(output, archive, {}, overwrite=True) as writer:
        start = time.perf_counter()
        for unit in units:
            images = [archive.read(key) for key in unit]
            holes = [masks.load(key, image.shape[:2]) for key, image in zip(unit, images, strict=True)]
            restored = restore_images(inpainter, images, holes, strategy=strategy, batch_size=batch_size)
            writer.write_many(dict(zip(unit, restored, strict=True)))
        seconds = time.perf_counter() - start
    return {"images": len(archive.keys), "steady_s": seconds}


def same_outputs(a: Path, b: Path) -> bool:
    from restore.data.archive import open_archive

    x, y = open_archive(a), open_archive(b)
    return x.keys == y.keys and all(np.array_equal(x.read(key), y.read(key)) for key in x.keys)


# ------------------------------------------------------------------------------------ sections


def section_throughput(work: Path, methods: dict, count: int, thread_counts: list[int]) -> list[dict]:
    archive, masks = make_dataset(work, count)
    rows = []
    for name, (method, checkpoint) in methods.items():
        for threads in thread_counts:
            plain = plain_loop(archive, masks, work / "plain.zarr", method, checkpoint, threads=threads)
            dask = run_batch(archive, masks, work / "dask.zarr", method, checkpoint, workers=1, threads=threads)
            rows.append({
                "method": name, "images": count, "threads": threads,
                "plain_img_s": count / plain["steady_s"], "batch_img_s": count / dask["steady_s"],
                "overhead_pct": 100 * (dask["steady_s"] / plain["steady_s"] - 1),
                "batch_wall_s": dask["wall_s"], "batch_end_to_end_img_s": count / dask["wall_s"],
                "identical": same_outputs(work / "plain.zarr", work / "dask.zarr"),
            })  # fmt: skip
    return rows


def section_workers(work: Path, methods: dict, count: int, cores: int) -> list[dict]:
    archive, masks = make_dataset(work, count)
    rows = []
    for name, (method, checkpoint) in methods.items():
        for workers, threads in ((1, cores), (cores, 1)):
            result = run_batch(archive, masks, work / "workers.zarr", method, checkpoint, workers=workers, threads=threads)
            rows.append({"method": name, "workers": workers, "threads": threads, "img_s": count / result["steady_s"],
                         "wall_s": result["wall_s"], "peak_rss_mib": result["peak_rss_mib"]})  # fmt: skip
    return rows


def section_rss(work: Path, method: tuple, counts: list[int], cores: int) -> list[dict]:
    rows = []
    for count in counts:
        archive, masks = make_dataset(work, count)
        size = sum(f.stat().st_size for f in archive.rglob("*") if f.is_file())
        result = run_batch(archive, masks, work / "rss.zarr", *method, workers=1, threads=cores)
        rows.append({"images": count, "archive_mib": size / 2**20, "peak_rss_mib": result["peak_rss_mib"],
                     "processes": result["peak_processes"], "img_s": count / result["steady_s"], "wall_s": result["wall_s"]})  # fmt: skip
    return rows


def section_large(work: Path, methods: dict, side: int, cores: int, hole_ratio: float | None = None) -> list[dict]:
    archive, mask = make_large(work, side, hole_ratio)
    rows = []
    for name, (method, checkpoint) in methods.items():
        from restore.data.archive import open_archive
        from restore.models.registry import get_method

        strategy = get_method(method).default_strategy  # DeepFill and the classical methods: whole
        result = run_batch(archive, mask, work / "large-out.zarr", method, checkpoint, workers=1, threads=cores, strategy=strategy)

        source, out = open_archive(archive), open_archive(work / "large-out.zarr")
        import cv2

        hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
        known_exact = bool(np.array_equal(out.read("large")[~hole], source.read("large")[~hole]))
        rows.append({"method": name, "side": side, "strategy": strategy, "hole_pct": 100 * float(hole.mean()), "wall_s": result["wall_s"],
                     "steady_s": result["steady_s"], "peak_rss_mib": result["peak_rss_mib"],
                     "processes": result["peak_processes"], "known_pixels_exact": known_exact})  # fmt: skip
    return rows


def _scratches(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Thin straight scratches, 2-5 px wide (about 40 per megapixel)."""
    import cv2

    mask = np.zeros((height, width), np.uint8)
    for _ in range(max(4, round(40 * height * width / 2**20))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = int(np.clip(x0 + rng.integers(-300, 300), 0, width - 1)), int(np.clip(y0 + rng.integers(-300, 300), 0, height - 1))
        cv2.line(mask, (x0, y0), (x1, y1), 255, int(rng.integers(2, 6)))
    return mask > 0


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    import cv2

    header = np.full((22, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(header, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, panel], axis=0)


def section_strategies(work: Path, methods: dict, picture: Path, count: int = 12, ensemble: int = 1) -> list[dict]:
    """Sub-sampling vs tiles on Kodak photos at their native 768x512: PSNR in the holes.

    Two hole kinds: thin scratches, and LaMa "thick" masks (large strokes and boxes). The
    picture shows 1:1 crops of the first photo. ``ensemble`` > 1 adds each CSA method as a
    self-ensemble of that many views (``restore batch --ensemble``).
    """
    from restore.data.images import read_image
    from restore.data.mask_generators import generate_mask
    from restore.inference.restoration import restore_images
    from restore.metrics import psnr
    from restore.models.registry import load_inpainter
    from restore.paths import shared_data_dir

    files = sorted((shared_data_dir() / "eval" / "kodak24").glob("*.png"))[:count]
    if not files:
        return []
    photos = [read_image(path)[..., :3] for path in files]
    kinds = {
        "scratches": lambda h, w, i: _scratches(h, w, np.random.default_rng(i)),
        "thick": lambda h, w, i: generate_mask("thick", h, w, np.random.default_rng(i)),
    }
    inpainters = {name: load_inpainter(method, checkpoint, "cpu") for name, (method, checkpoint) in methods.items()}
    if ensemble > 1:
        from restore.models.ensemble import SelfEnsemble

        for name, (method, _) in methods.items():
            if method == "csa":
                inpainters[f"{name}-x{ensemble}"] = SelfEnsemble(inpainters[name], ensemble)
    rows, picture_rows = [], []
    for kind, draw in kinds.items():
        holes = [draw(*photo.shape[:2], i) for i, photo in enumerate(photos)]
        first = holes[0]
        ys, xs = np.nonzero(first)
        cy = int(np.clip(np.median(ys), 128, first.shape[0] - 128))
        cx = int(np.clip(np.median(xs), 128, first.shape[1] - 128))
        crop = np.s_[cy - 128 : cy + 128, cx - 128 : cx + 128]
        panels = [_label(np.where(first[..., None], np.uint8(255), photos[0])[crop], f"{kind} (white = hole)")]
        for name, inpainter in inpainters.items():
            for strategy in ("subsample", "tile"):
                start, scores = time.perf_counter(), []
                for i, (photo, hole) in enumerate(zip(photos, holes, strict=True)):
                    (out,) = restore_images(inpainter, [photo], [hole], strategy=strategy, batch_size=8)
                    scores.append(psnr(out[hole] / 255.0, photo[hole] / 255.0))
                    if i == 0:
                        panels.append(_label(out[crop], f"{name} {strategy}"))
                rows.append({"holes": kind, "hole_pct": 100 * float(np.mean([h.mean() for h in holes])), "method": name,
                             "strategy": strategy, "photos": len(photos), "hole_psnr_db": float(np.mean(scores)),
                             "seconds": time.perf_counter() - start})  # fmt: skip
        panels.append(_label(photos[0][crop], "original"))
        picture_rows.append(np.concatenate(panels, axis=1))
    import cv2

    picture.parent.mkdir(parents=True, exist_ok=True)
    quality = [cv2.IMWRITE_JPEG_QUALITY, 88] if picture.suffix.lower() in (".jpg", ".jpeg") else []
    cv2.imwrite(str(picture), np.concatenate(picture_rows, axis=0)[..., ::-1], quality)
    return rows


# ------------------------------------------------------------------------------------ report


def _table(title: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    def cell(v):  # noqa: E306
        return f"{v:.2f}" if isinstance(v, float) else str(v)
    lines = [f"\n{title}", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench-out" / "batch.json")
    parser.add_argument("--work", type=Path, default=REPO / "bench-out" / "batch-work", help="Archives are built here (kept between runs).")
    parser.add_argument("--sections", default="throughput,workers,rss,large,strategies")
    parser.add_argument("--methods", default="telea,tiny-csa", help="telea, tiny-csa, csa (csa needs --checkpoint or a shipped checkpoint).")
    parser.add_argument("--checkpoint", type=Path, help="CSA weights for the csa method.")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=METHOD[:CHECKPOINT]",
                        help="Another method to offer the sections (repeatable), e.g. deepfill=deepfill.")
    parser.add_argument("--images", type=int, default=128, help="Images (256²) for throughput/workers.")
    parser.add_argument("--rss-sizes", default="32,128,512")
    parser.add_argument("--large", type=int, default=8192, help="Side of the large photo.")
    parser.add_argument("--workers-methods", default="telea,tiny-csa")
    parser.add_argument("--large-methods", default="telea,tiny-csa")
    parser.add_argument("--large-hole-ratio", type=float, default=None, help="Hole area of the large photo's mask [default: whatever LaMa medium draws].")
    parser.add_argument("--picture", type=Path, default=REPO / "bench-out" / "batch-strategies.png")
    parser.add_argument("--ensemble", type=int, choices=(1, 2, 4, 8), default=1, help="strategies: also score CSA as a self-ensemble of this many views.")
    args = parser.parse_args(argv)

    from restore.models.registry import METHODS

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    available = {"telea": ("telea", None), "tiny-csa": ("csa", tiny_csa(work / "tiny-csa.pt"))}
    shipped = METHODS["csa"].shipped_checkpoint
    if args.checkpoint or shipped:
        available["csa"] = ("csa", args.checkpoint or shipped)

    for spec in args.run:
        name, _, target = spec.partition("=")
        method, _, checkpoint = target.partition(":")
        available[name] = (method, Path(checkpoint) if checkpoint else None)

    def pick(names: str) -> dict:
        return {name: available[name] for name in names.split(",") if name in available}

    sections = set(args.sections.split(","))
    result: dict = json.loads(args.json.read_text()) if args.json.is_file() else {}
    result |= {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": cores, "python": platform.python_version()},
        "methods": {name: {"method": m, "checkpoint": str(c) if c else None} for name, (m, c) in available.items()},
    }
    output = []
    if "throughput" in sections:
        result["throughput"] = section_throughput(work, pick(args.methods), args.images, sorted({1, cores}))
        output.append(_table(f"restore batch (1 worker) vs a plain loop, {args.images} photos 256², img/s at steady state", result["throughput"]))
        print(output[-1], flush=True)
    if "workers" in sections:
        result["workers"] = section_workers(work, pick(args.workers_methods), args.images, cores)
        output.append(_table("workers x threads", result["workers"]))
        print(output[-1], flush=True)
    if "rss" in sections:
        result["rss"] = section_rss(work, available["telea"], [int(v) for v in args.rss_sizes.split(",")], cores)
        output.append(_table("peak RSS of the process tree vs archive size (telea)", result["rss"]))
        print(output[-1], flush=True)
    if "large" in sections and args.large:
        result["large"] = section_large(work, pick(args.large_methods), args.large, cores, args.large_hole_ratio)
        output.append(_table(f"one {args.large}x{args.large} photo", result["large"]))
        print(output[-1], flush=True)
    if "strategies" in sections:
        result["strategies"] = section_strategies(work, pick(args.methods), args.picture, ensemble=args.ensemble)
        result["picture"] = str(args.picture)
        output.append(_table(f"sub-sampling vs tiles, Kodak photos at 768x512, mean PSNR in the holes (picture: {args.picture})", result["strategies"]))
        print(output[-1], flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
