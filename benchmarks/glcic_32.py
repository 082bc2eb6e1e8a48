"""GLCIC at CIFAR scale: the re-runnable reproduction of the 32² seed's hole error, classical baselines beside it.

The seed (a student reproduction of Iizuka et al. 2017 on CIFAR-10: 32² images, one box hole
per image with sides drawn independently in 5–12 px, least squares GAN) reported a "per-pixel
squared loss of 0.0155" in the hole. CIFAR-10 cannot be downloaded here, so the same protocol
runs on 32² versions of our evaluation photos:

* Images: every photo of ``eval/bsds500-val`` and ``eval/kodak24`` under
  :func:`restore.paths.shared_data_dir` (``--sets``), centre-cropped to a square and
  area-resized to 256² (:func:`restore.data.datasets.centre_square`, the evaluation protocol),
  then area-resized to 32².
* Holes: ``--repeats`` seeded boxes per image, ``generate_mask("box", 32, 32, rng,
  ratio=(5/32, 12/32))`` (5–12 px sides, drawn independently) with
  ``rng = np.random.default_rng([seed, image_index, repeat])``. Every (image, repeat) pair is
  one sample. The seed drew one hole per image over 10,000 test images; at our 124 images,
  20 holes per image (2,480 samples) steady the figure instead.
* Columns: OpenCV Telea and Navier–Stokes (radius 3, the registry's ``telea``/``ns``), OpenCV
  contrib's frequency-selective reconstruction and shift-map (``fsr``/``shiftmap``), a
  "mean colour" fill (the hole painted the mean pixel of every ``train/`` photo, full size,
  weighted by pixel count: what :meth:`CompletionNetwork.set_fill
  <restore.models.glcic.networks.CompletionNetwork.set_fill>` measures, computed here from the
  photos so the column does not depend on any checkpoint; the checkpoints' own ``fill``
  buffers are recorded in the JSON beside it; without ``train/`` the first checkpoint's buffer
  is used, and the JSON says so), and every ``--checkpoint LABEL=PATH`` of GLCIC.
* Metrics, pooled over every hole pixel of every sample (the seed's "per-pixel" loss), on
  [0, 1] pixels: the squared error summed over RGB per hole pixel
  (:func:`restore.losses.reconstruction.hole_squared_error` over the whole set, the seed's
  measure), the per-channel mean (a third of it) and the hole PSNR, 10·log10(1 / per-channel
  MSE). "± s.e." is the standard error of the per-sample RGB-summed hole error (its std /
  √n over samples; the JSON adds the pooled figure's ratio-estimator s.e. and each method's
  paired difference to Telea with its s.e.). "beats Telea in" counts the samples where the
  method's hole error is strictly below Telea's.
* Speed: images/s of each checkpoint's ``inpaint`` over the whole set in batches of
  ``--batch-size`` (loading and one warm-up batch excluded), with the torch thread count.

Prints a markdown table (with the seed's 0.0155 for reference: CIFAR-10, not comparable data),
writes the settings and metrics to ``--out-json`` and a picture to ``--figure``: 8 samples (the
first hole of 8 evenly spaced images) as rows; masked input (hole in flat magenta) | Telea |
each checkpoint (and its Poisson-blended fill) | ground truth, each 32² image ×4 (nearest neighbour).

    python benchmarks/glcic_32.py --checkpoint phase1=runs/glcic32-a/step-001500.pt \\
        --checkpoint final=restore/weights/glcic-32.pt [--sets bsds500-val,kodak24] [--repeats 20] \\
        [--seed 0] [--bf16 auto|on|off] [--out-json bench-out/glcic-32.json] [--figure docs/glcic-32.png]
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import click
import numpy as np

from restore.baselines import BASELINES

#: The seed's reported hole error (CIFAR-10 test set; RGB-summed squared error per hole pixel).
SEED_FIGURE = 0.0155
SIZE = 32
PROTOCOL_SIZE = 256
#: Box sides in pixels at 32² (the seed's 5–12 px), as :func:`generate_mask`'s side fractions.
BOX_RATIO = (5 / SIZE, 12 / SIZE)
DEFAULT_SETS = "bsds500-val,kodak24"
#: The figure: rows, upscaling, gaps, header height, the hole's colour in the masked input (RGB).
FIGURE_ROWS = 8
FIGURE_SCALE = 4
FIGURE_GAP = 2
HEADER = 22
HOLE_COLOUR = (255, 0, 255)


class MeanColourFill:
    """The hole painted one colour (an :class:`~restore.models.base.Inpainter`)."""

    name = "mean"

    def __init__(self, colour: np.ndarray) -> None:
        self.colour = np.asarray(colour, dtype=np.float64)

    def inpaint(self, image, mask):
        import torch

        fill = torch.as_tensor(self.colour, dtype=image.dtype).view(1, 3, 1, 1)
        holes = (mask > 0.5).to(image.dtype)
        return image * (1.0 - holes) + fill * holes


def _train_mean_colour(folder: Path) -> np.ndarray:
    """The mean pixel of every photo below ``folder`` (RGB in [0, 1], weighted by pixel count), as ``set_fill`` measures it."""
    from restore.data.datasets import list_image_files, to_rgb8
    from restore.data.images import read_image

    total, count = np.zeros(3, dtype=np.float64), 0
    for path in list_image_files(folder):
        photo = to_rgb8(read_image(path))
        total += photo.reshape(-1, 3).sum(axis=0, dtype=np.float64)
        count += photo.shape[0] * photo.shape[1]
    if count == 0:
        raise click.ClickException(f"no photos in {folder} to measure the mean colour on")
    return total / (255.0 * count)


def _load_images(sets: list[str]) -> tuple[list[str], np.ndarray]:
    """The 32² images of ``sets`` (names ``set/file`` and (N, 32, 32, 3) uint8)."""
    import cv2

    from restore.data.datasets import centre_square, load_images
    from restore.paths import shared_data_dir

    root = shared_data_dir()
    if not root.is_dir():
        raise click.ClickException(f"shared data not found at {root} (set RESTORE_DATA or put it at ../shared/data)")
    names, images = [], []
    for name in sets:
        folder = root / "eval" / name
        if not folder.is_dir():
            raise click.ClickException(f"evaluation set not found: {folder}")
        files, photos = load_images(folder)
        for file, photo in zip(files, photos, strict=True):
            square = centre_square(photo, PROTOCOL_SIZE)
            names.append(f"{name}/{file}")
            images.append(cv2.resize(square, (SIZE, SIZE), interpolation=cv2.INTER_AREA).reshape(SIZE, SIZE, 3))
    return names, np.stack(images)


def _masks(count: int, repeats: int, seed: int) -> np.ndarray:
    """(count × repeats, 32, 32) bool boxes, sample ``i * repeats + r`` from ``default_rng([seed, i, r])``."""
    from restore.data.mask_generators import generate_mask

    return np.stack([
        generate_mask("box", SIZE, SIZE, np.random.default_rng([seed, i, r]), ratio=BOX_RATIO)
        for i in range(count) for r in range(repeats)
    ])  # fmt: skip


def _run(inpainter, images, masks, batch_size: int):
    """The composites of every sample in batches, and the seconds they took (after an untimed warm-up batch)."""
    import torch

    inpainter.inpaint(images[:batch_size], masks[:batch_size])  # first-call costs (allocator, oneDNN kernels) not timed
    out = torch.empty_like(images)
    began = time.perf_counter()
    for start in range(0, images.shape[0], batch_size):
        stop = start + batch_size
        out[start:stop] = inpainter.inpaint(images[start:stop], masks[start:stop]).float()
    return out, time.perf_counter() - began


def _metrics(restored, images, masks, telea_errors) -> tuple[dict, np.ndarray]:
    """The pooled hole error and its companions, and the per-sample RGB-summed hole errors."""
    from restore.losses.reconstruction import hole_squared_error

    pooled = float(hole_squared_error(restored.double(), images.double(), masks.double()))
    sse = (((restored.double() - images.double()) ** 2) * masks.double()).sum(dim=(1, 2, 3)).numpy()
    pixels = masks.double().sum(dim=(1, 2, 3)).numpy()
    per_sample = sse / pixels
    n = per_sample.size
    # the pooled figure is a ratio of sums: its s.e. by the ratio estimator's linearisation
    ratio_se = float(np.sqrt(np.sum((sse - pooled * pixels) ** 2) / (n * (n - 1))) / pixels.mean()) if n > 1 else float("nan")
    per_channel = pooled / 3.0
    result = {
        "hole_error_rgb_sum": pooled,
        "hole_error_per_channel": per_channel,
        "hole_psnr": float(10.0 * np.log10(1.0 / per_channel)) if per_channel > 0 else float("inf"),
        "se_per_sample": float(per_sample.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        "se_pooled": ratio_se,
        "mean_per_sample": float(per_sample.mean()),
        "samples": int(n),
    }
    if telea_errors is not None:
        diff = per_sample - telea_errors
        result["beats_telea"] = int(np.sum(per_sample < telea_errors))
        result["minus_telea_per_sample"] = float(diff.mean())
        result["minus_telea_se"] = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return result, per_sample


def _checkpoints(values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label or not path:
            raise click.BadParameter(f"expected LABEL=PATH, got {value!r}", param_hint="'--checkpoint'")
        if label in pairs or label in (*BASELINES, "mean"):
            raise click.BadParameter(f"label {label!r} is used already", param_hint="'--checkpoint'")
        pairs[label] = path
    return pairs


def _load_glcic(path: Path, bf16: str):
    from restore.models.network import load_network_inpainter
    from restore.models.registry import get_method, load_inpainter

    if bf16 == "auto":  # the registry's loader: bfloat16 where the hardware runs it fast
        return load_inpainter("glcic", path)
    return load_network_inpainter(get_method("glcic"), path, bf16=bf16 == "on")


def _header_cell(text: str, width: int) -> np.ndarray:
    """A white ``HEADER``-high strip with ``text`` centred in black (shrunk, then cut, to fit)."""
    import cv2

    cell = np.full((HEADER, width, 3), 255, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.42
    while True:
        (w, h), _ = cv2.getTextSize(text, font, scale, 1)
        if w <= width - 4 or (scale <= 0.32 and len(text) <= 1):
            break
        if scale > 0.32:
            scale -= 0.02
        else:
            text = text[:-1]
    cv2.putText(cell, text, ((width - w) // 2, (HEADER + h) // 2), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def _figure(columns: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Rows of samples, a header of labels; ``columns``: (label, (rows, 32, 32, 3) uint8 RGB)."""
    from restore.data.images import write_image

    side = SIZE * FIGURE_SCALE
    rows = columns[0][1].shape[0]
    gap_v = np.full((side, FIGURE_GAP, 3), 255, np.uint8)

    def line(cells: list[np.ndarray]) -> np.ndarray:
        parts = []
        for k, cell in enumerate(cells):
            parts += [gap_v[: cell.shape[0]]] if k else []
            parts.append(cell)
        return np.concatenate(parts, axis=1)

    header = line([_header_cell(label, side) for label, _ in columns])
    lines = [header]
    for r in range(rows):
        cells = [np.repeat(np.repeat(images[r], FIGURE_SCALE, axis=0), FIGURE_SCALE, axis=1) for _, images in columns]
        lines += [np.full((FIGURE_GAP, header.shape[1], 3), 255, np.uint8), line(cells)]
    grid = np.concatenate(lines, axis=0)
    grid = np.pad(grid, ((FIGURE_GAP, FIGURE_GAP), (FIGURE_GAP, FIGURE_GAP), (0, 0)), constant_values=255)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, grid, overwrite=True)


def _to_uint8(batch) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] as (B, H, W, 3) uint8."""
    import torch

    return (batch.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _format_table(results: dict[str, dict], total: int) -> str:
    lines = ["| method | RGB-summed hole error | per-channel | hole PSNR (dB) | ± s.e. | beats Telea in |",
             "|---|---|---|---|---|---|"]
    for label, m in results.items():
        beats = f"{m['beats_telea']} / {total} ({100 * m['beats_telea'] / total:.0f} %)" if "beats_telea" in m else "–"
        lines.append(f"| {label} | {m['hole_error_rgb_sum']:.4f} | {m['hole_error_per_channel']:.4f} | {m['hole_psnr']:.2f} | "
                     f"{m['se_per_sample']:.4f} | {beats} |")
    lines.append(f"| seed (CIFAR-10, not comparable data) | {SEED_FIGURE:.4f} | {SEED_FIGURE / 3:.4f} | "
                 f"{10 * np.log10(3 / SEED_FIGURE):.2f} | – | – |")
    return "\n".join(lines)


@click.command()
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="LABEL=PATH",
              help="A GLCIC checkpoint to score as a column (repeatable; a path or a shipped weights name).")
@click.option("--sets", default=DEFAULT_SETS, show_default=True, help="Evaluation sets under shared data's eval/, comma-separated.")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(min=1), help="Seeded box holes per image.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--bf16", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="bfloat16 autocast for the checkpoints (auto: where the hardware runs it fast).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads [default: torch's].")
@click.option("--blend/--no-blend", default=True, show_default=True, help="Also score each checkpoint Poisson-blended (LABEL+poisson).")
@click.option("--out-json", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench-out/glcic-32.json"), show_default=True)
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/glcic-32.png"), show_default=True)
def main(checkpoints: tuple[str, ...], sets: str, repeats: int, seed: int, batch_size: int, bf16: str, threads: int | None,
         blend: bool, out_json: Path, figure: Path) -> None:
    import torch

    from restore.models.registry import MissingWeightsError, load_inpainter, resolve_checkpoint
    from restore.paths import file_digest, shared_data_dir

    torch.set_grad_enabled(False)
    if threads:
        torch.set_num_threads(threads)
    glcic = {}
    for label, target in _checkpoints(checkpoints).items():
        try:
            path = resolve_checkpoint("glcic", Path(target))
            glcic[label] = (path, _load_glcic(path, bf16))
        except (MissingWeightsError, ValueError) as error:
            raise click.ClickException(f"--checkpoint {label}: {error}") from error
    set_names = [name.strip() for name in sets.split(",") if name.strip()]
    names, photos = _load_images(set_names)
    count = len(names)
    masks_np = _masks(count, repeats, seed)
    images = torch.from_numpy(np.repeat(photos, repeats, axis=0)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    masks = torch.from_numpy(masks_np[:, None]).float()
    click.echo(f"{count} images × {repeats} holes = {images.shape[0]} samples at {SIZE}²; "
               f"hole {masks_np.mean() * 100:.1f} % of the image on average", err=True)

    fills = {label: [float(v) for v in inpainter.generator.fill] for label, (_, inpainter) in glcic.items()}
    train = shared_data_dir() / "train"
    if train.is_dir():
        mean_colour, fill_source = _train_mean_colour(train), f"mean pixel of every photo under {train} (as set_fill)"
    elif fills:
        first = next(iter(fills))
        mean_colour, fill_source = np.array(fills[first]), f"generator fill buffer of checkpoint {first!r}"
    else:
        raise click.ClickException(f"no {train} to measure the mean colour on, and no checkpoint to read it from")

    inpainters = {name: load_inpainter(name) for name in BASELINES}
    inpainters["mean"] = MeanColourFill(mean_colour)
    inpainters.update({label: inpainter for label, (_, inpainter) in glcic.items()})
    if blend:
        from restore.inference.poisson import PoissonBlended

        inpainters.update({f"{label}+poisson": PoissonBlended(inpainter) for label, (_, inpainter) in glcic.items()})
    results, seconds, restored_all = {}, {}, {}
    telea_errors = None
    for label, inpainter in inpainters.items():
        restored, seconds[label] = _run(inpainter, images, masks, batch_size)
        results[label], per_sample = _metrics(restored, images, masks, telea_errors)
        if label == "telea":
            telea_errors = per_sample
        restored_all[label] = restored
        click.echo(f"{label}: {seconds[label]:.2f} s", err=True)

    total = images.shape[0]
    speed = {label: {"images_per_second": total / seconds[label], "seconds": seconds[label],
                     "bf16": bool(getattr(glcic[label][1], "bf16", False))} for label in glcic}
    report = {
        "protocol": {"sets": set_names, "images": count, "repeats": repeats, "samples": total, "seed": seed, "size": SIZE,
                     "resize": f"centre_square to {PROTOCOL_SIZE}², then INTER_AREA to {SIZE}²",
                     "holes": f"generate_mask('box', {SIZE}, {SIZE}, default_rng([seed, image, repeat]), ratio=(5/32, 12/32))",
                     "mean_hole_fraction": float(masks_np.mean()), "batch_size": batch_size},
        "mean_colour": {"rgb": [float(v) for v in mean_colour], "source": fill_source, "checkpoint_fills": fills},
        "checkpoints": {label: {"path": str(path), "sha256": file_digest(path), "bf16": speed[label]["bf16"]}
                        for label, (path, _) in glcic.items()},
        "results": results,
        "seconds": seconds,
        "speed": speed,
        "seed_figure": {"hole_error_rgb_sum": SEED_FIGURE, "note": "CIFAR-10 test set, not comparable data"},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": {"processor": platform.processor(), "arch": platform.machine(), "cpus": os.cpu_count()},
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(report, indent=1))

    click.echo(f"\n### GLCIC 32²: {', '.join(set_names)} ({count} images × {repeats} box holes of 5–12 px, seed {seed}; "
               f"squared error per hole pixel on [0, 1] pixels)\n")
    click.echo(_format_table(results, total))
    if glcic:
        click.echo(f"\nspeed at {SIZE}², batch {batch_size}, {torch.get_num_threads()} torch thread(s): "
                   + ", ".join(f"{label} {s['images_per_second']:.0f} images/s{' (bf16)' if s['bf16'] else ''}" for label, s in speed.items()))

    rows = sorted({int(i) for i in np.linspace(0, count - 1, min(FIGURE_ROWS, count)).round()})
    picks = [i * repeats for i in rows]  # the first hole of each picked image
    masked = _to_uint8(images[picks])
    masked[masks_np[picks]] = HOLE_COLOUR
    columns = [("input", masked), ("Telea", _to_uint8(restored_all["telea"][picks]))]
    columns += [(label, _to_uint8(restored_all[label][picks])) for label in restored_all if label.split("+")[0] in glcic]
    columns.append(("ground truth", _to_uint8(images[picks])))
    _figure(columns, figure)
    click.echo(f"\nwrote {out_json} and {figure}")


if __name__ == "__main__":
    main()
