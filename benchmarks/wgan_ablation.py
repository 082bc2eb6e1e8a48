"""The ablation of Vitoria et al.'s Tables 1–2 on our data, OpenCV beside it, and the search's speed.

Protocol (the paper's, on our photos):

* Images: ``--count`` photos evenly spaced over ``eval/bsds500-val`` and ``eval/kodak24``
  (``--sets``), centre-cropped to a square, area-resized to 256² (the evaluation protocol)
  and then to 64² (area).
* Masks (the paper's Fig. 5c): ``centre``, a central 32×32 square (a quarter of the image);
  ``three``, three rectangles (rows × columns 8–23 × 6–29, 28–51 × 40–55, 44–57 × 10–33;
  the paper does not give its coordinates).
* Rows: the latent search of one checkpoint under each loss weighting (α, β, η) of the
  paper's tables — the contextual + prior loss alone (β = 0, Yeh et al.'s loss) at the paper's
  two (α, η) pairs, and the paper's loss with the gradient term at its four weightings — with
  ``--steps`` Adam steps (paper: 1000) and ``--restarts`` starting points (paper: 1), every
  row from the same starting points; then OpenCV Telea and Navier–Stokes (radius 3).
* Results are the paper's pipeline: G(ẑ) pasted into the hole and Poisson-blended
  (:func:`restore.inference.poisson.poisson_blend`); the JSON also has the plain composite.
* Metrics over the whole 64² image, as the paper: MSE on 0–255 pixels, PSNR, SSIM; and the
  realism pair inside the hole (DESIGN §10): SWD (lower is better) and the detail ratio.
* Speed: seconds per image of each row's search, and the search's seconds per step at batch
  1 and at batch ``--count``, with one restart and with the default number, with the thread count.

    python benchmarks/wgan_ablation.py --checkpoint restore/weights/wgan.pt [--count 32] [--steps 1000]
        [--restarts 1] [--out-json bench-out/wgan-ablation.json] [--figure docs/wgan-ablation.png]
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import click
import numpy as np

SIZE = 64
PROTOCOL_SIZE = 256
DEFAULT_SETS = "bsds500-val,kodak24"
#: (label, α, β, η): the paper's rows, Yeh et al.'s loss (β = 0) first.
WEIGHTINGS = [
    ("contextual+prior a0.1 e0.5", 0.1, 0.0, 0.5),
    ("contextual+prior a0.5 e1.0", 0.5, 0.0, 1.0),
    ("paper a0.1 b0.9 e1.0", 0.1, 0.9, 1.0),
    ("paper a0.5 b0.5 e1.0", 0.5, 0.5, 1.0),
    ("paper a0.1 b0.9 e0.5 (default)", 0.1, 0.9, 0.5),
    ("paper a0.5 b0.5 e0.5", 0.5, 0.5, 0.5),
]
RECTANGLES = [(8, 24, 6, 30), (28, 52, 40, 56), (44, 58, 10, 34)]


def masks() -> dict[str, np.ndarray]:
    """The two 64² masks (True = hole)."""
    centre = np.zeros((SIZE, SIZE), bool)
    centre[16:48, 16:48] = True
    three = np.zeros((SIZE, SIZE), bool)
    for top, bottom, left, right in RECTANGLES:
        three[top:bottom, left:right] = True
    return {"centre": centre, "three": three}


def load_images(sets: list[str], count: int) -> tuple[list[str], np.ndarray]:
    """``count`` evenly spaced 64² images of ``sets`` (names and (N, 64, 64, 3) uint8)."""
    import cv2

    from restore.data.datasets import centre_square
    from restore.data.datasets import load_images as load_folder
    from restore.paths import shared_data_dir

    root = shared_data_dir()
    names, images = [], []
    for name in sets:
        folder = root / "eval" / name
        if not folder.is_dir():
            raise click.ClickException(f"evaluation set not found: {folder}")
        files, photos = load_folder(folder)
        for file, photo in zip(files, photos, strict=True):
            names.append(f"{name}/{file}")
            images.append(cv2.resize(centre_square(photo, PROTOCOL_SIZE), (SIZE, SIZE), interpolation=cv2.INTER_AREA).reshape(SIZE, SIZE, 3))
    picked = np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int)
    return [names[i] for i in picked], np.stack([images[i] for i in picked])


def score(restored: np.ndarray, target: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """Means over images of MSE (0–255), PSNR and SSIM over whole images, SWD in the hole; the
    detail ratio as the ratio of the mean gradient energies in the hole (DESIGN §10)."""
    from restore.metrics import psnr, realism_metrics, ssim

    rows = []
    for pred_u8, truth_u8 in zip(restored, target, strict=True):
        pred, truth = pred_u8.astype(np.float64) / 255.0, truth_u8.astype(np.float64) / 255.0
        realism = realism_metrics(pred, truth, hole)
        rows.append({
            "mse": float(np.mean((pred - truth) ** 2)) * 255.0**2,
            "psnr": psnr(pred, truth), "ssim": ssim(pred, truth),
            "swd": realism["swd"], "grad_pred": realism["grad_pred"], "grad_target": realism["grad_target"],
        })  # fmt: skip
    out = {key: float(np.nanmean([row[key] for row in rows])) for key in ("mse", "psnr", "ssim", "swd")}
    out["detail"] = float(np.nanmean([r["grad_pred"] for r in rows]) / np.nanmean([r["grad_target"] for r in rows]))
    return out


def to_uint8(tensor) -> np.ndarray:
    return (tensor.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@click.command()
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A wgan checkpoint (training or shipped).")
@click.option("--sets", default=DEFAULT_SETS, show_default=True, help="Evaluation sets, comma-separated.")
@click.option("--count", default=32, show_default=True, type=click.IntRange(min=1), help="Images (evenly spaced over the sets).")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(min=0), help="Search steps (paper: 1000).")
@click.option("--restarts", default=1, show_default=True, type=click.IntRange(min=1), help="Starting points per image (paper: 1).")
@click.option("--only", default=None, help="Run only the rows whose label contains one of these texts (comma-separated).")
@click.option("--bf16", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True)
@click.option("--out-json", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-out/wgan-ablation.json"), show_default=True)
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write a picture of 6 images, both masks.")
def main(checkpoint: Path, sets: str, count: int, steps: int, restarts: int, only: str | None, bf16: str, out_json: Path, figure: Path | None) -> None:
    """Run the ablation and print its table."""
    import torch

    from restore.inference.poisson import poisson_blend
    from restore.models.base import composite
    from restore.models.classical import OpenCVInpainter
    from restore.models.wgan.inpainter import load_wgan

    names, images = load_images([s.strip() for s in sets.split(",") if s.strip()], count)
    use_bf16 = None if bf16 == "auto" else bf16 == "on"
    inpainter = load_wgan(checkpoint, "cpu", bf16=use_bf16, search_steps=steps, restarts=restarts)
    target = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    results: dict = {"settings": {"checkpoint": str(checkpoint), "images": names, "steps": steps, "restarts": restarts,
                                  "bf16": inpainter.bf16, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                                  "rectangles": RECTANGLES, "config": dataclasses.asdict(inpainter.config)},
                     "rows": {}}
    pictures: dict[str, dict[str, np.ndarray]] = {}
    base = inpainter.config
    for mask_name, hole in masks().items():
        mask = torch.from_numpy(hole)[None, None].float().expand(len(images), 1, SIZE, SIZE).contiguous()
        pictures[mask_name] = {"masked": np.where(hole[None, ..., None], 255, images).astype(np.uint8), "truth": images}
        for name in ("telea", "ns"):
            restored = to_uint8(OpenCVInpainter(name).inpaint(target, mask))
            results["rows"].setdefault(name, {})[mask_name] = score(restored, images, hole)
            pictures[mask_name][name] = restored
        for label, alpha, beta, eta in WEIGHTINGS:
            if only and not any(part.strip() and part.strip() in label for part in only.split(",")):
                continue
            inpainter.config = dataclasses.replace(base, alpha=alpha, beta=beta, eta=eta)
            start = time.perf_counter()
            raw = inpainter.predict(target, mask)
            seconds = time.perf_counter() - start
            blended = poisson_blend(raw, target, mask).clamp(0, 1)
            pasted = to_uint8(composite(raw, target, mask))
            restored = to_uint8(blended)
            row = results["rows"].setdefault(label, {})
            row[mask_name] = {**score(restored, images, hole), "composite": score(pasted, images, hole),
                              "seconds_per_image": seconds / len(images), "final_loss": float(inpainter.last_result.loss.mean())}
            pictures[mask_name][label] = restored
            print(f"{mask_name:7s} {label:32s} PSNR {row[mask_name]['psnr']:.2f} SSIM {row[mask_name]['ssim']:.3f} "
                  f"SWD {row[mask_name]['swd']:.1f} ({seconds / len(images):.1f} s/image)", flush=True)
    inpainter.config = base
    results["speed"] = _speed(inpainter, target, torch.from_numpy(masks()["centre"])[None, None].float())
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1))
    _print_table(results)
    if figure is not None:
        _figure(pictures, figure)


def _speed(inpainter, target, hole, steps: int = 10) -> dict:
    """Seconds per search step at batch 1 and at the whole batch (after one untimed step), for one
    restart and for the default number, and the whole search's seconds per image from them."""
    from restore.models.wgan.config import WGANConfig

    base = inpainter.config
    batch = target.shape[0]
    out: dict = {"batch": batch, "steps_timed": steps, "search_steps": base.search_steps, "by_restarts": {}}
    for restarts in sorted({1, WGANConfig().restarts}):
        row = {}
        for size in (1, batch):
            inputs = (target[:size], hole.expand(size, 1, SIZE, SIZE))
            inpainter.config = dataclasses.replace(base, search_steps=1, restarts=restarts)
            inpainter.predict(*inputs)
            inpainter.config = dataclasses.replace(base, search_steps=steps, restarts=restarts)
            start = time.perf_counter()
            inpainter.predict(*inputs)
            per_step = (time.perf_counter() - start) / steps
            row[f"seconds_per_step_batch{size}"] = per_step
            row[f"seconds_per_image_batch{size}"] = per_step * base.search_steps / size
        out["by_restarts"][str(restarts)] = row
    inpainter.config = base
    return out


def _print_table(results: dict) -> None:
    print("\n| loss (α, β, η) | centre MSE | PSNR | SSIM | SWD | detail | three MSE | PSNR | SSIM | SWD | detail |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, row in results["rows"].items():
        cells = []
        for mask_name in ("centre", "three"):
            m = row.get(mask_name)
            cells += ["–"] * 5 if m is None else [f"{m['mse']:.1f}", f"{m['psnr']:.2f}", f"{m['ssim']:.3f}", f"{m['swd']:.1f}", f"{m['detail']:.2f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    speed = results["speed"]
    batch = speed["batch"]
    for restarts, row in speed["by_restarts"].items():
        print(f"search, {restarts} restart(s): {row['seconds_per_step_batch1']:.3f} s/step at batch 1, "
              f"{row[f'seconds_per_step_batch{batch}']:.3f} s/step at batch {batch}: {speed['search_steps']} steps take "
              f"{row['seconds_per_image_batch1']:.1f} s per image alone, {row[f'seconds_per_image_batch{batch}']:.1f} s per image "
              f"in a batch of {batch}")


def _figure(pictures: dict[str, dict[str, np.ndarray]], path: Path, rows: int = 6, scale: int = 3) -> None:
    """Per mask: ``rows`` images as rows; masked | Telea | NS | Yeh's loss | the paper's default | truth."""
    import cv2
    import imageio.v3 as iio

    columns = ["masked", "telea", "ns", WEIGHTINGS[0][0], WEIGHTINGS[4][0], "truth"]
    blocks = []
    for columns_of in pictures.values():
        present = [c for c in columns if c in columns_of]
        count = len(columns_of["masked"])
        picked = np.linspace(0, count - 1, min(rows, count)).round().astype(int)
        for i in picked:
            tiles = [cv2.resize(columns_of[c][i], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for c in present]
            blocks.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.concatenate(blocks, axis=0))
    print(f"figure: {path} (columns: {', '.join(columns)}; centre-square rows, then three-rectangle rows)")


if __name__ == "__main__":
    main()
