"""The evaluation protocol (DESIGN §10): 256² centre crops, NVIDIA masks per bucket, the centre hole.

Used by ``restore eval``-style quality tables, the CSA quality benchmark and the
training learning curve, so all three measure the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from restore.metrics import BUCKETS, bucket_name, image_metrics, realism_metrics, summarise
from restore.models.base import Inpainter

if TYPE_CHECKING:
    from restore.data.archive import Archive
    from restore.data.masks import MaskSource
    from restore.perceptual_metrics import LPIPS, FIDInception

PROTOCOL_SIZE = 256
CENTRE = "centre"


def protocol_mask_sets(count: int, size: int = PROTOCOL_SIZE, seed: int = 0, nvidia_dir: Path | None = None) -> dict[str, list[np.ndarray]]:
    """One fixed, seeded mask per image for each NVIDIA bucket, plus the centre hole.

    Returns:
        ``{"10-20%": [mask, ...], ..., "centre": [...]}``, each list ``count`` long of
        (size, size) bool masks, True = hole. Mask ``i`` of a bucket depends only on
        ``(seed, bucket, i)``.
    """
    from restore.data.mask_generators import generate_mask

    sets: dict[str, list[np.ndarray]] = {}
    for b, (low, high) in enumerate(BUCKETS):
        sets[bucket_name(low, high)] = [
            generate_mask("nvidia", size, size, np.random.default_rng([seed, b, i]), ratio=(low, high), nvidia_dir=nvidia_dir)
            for i in range(count)
        ]
    centre = generate_mask("center", size, size, np.random.default_rng(seed))
    sets[CENTRE] = [centre] * count
    return sets


def protocol_strategy(method: str) -> tuple[str | None, int | None]:
    """How the protocol's 256² images reach a method: whole, or (strategy, piece side) when its
    native size is smaller (the way ``restore batch`` would cut them)."""
    from restore.models.registry import METHODS

    record = METHODS.get(method)
    if record is None or record.native_size is None or record.native_size >= PROTOCOL_SIZE:
        return None, None
    return record.default_strategy, record.native_size


def inpaint_uint8(inpainter: Inpainter, images: np.ndarray, holes: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Inpaint uint8 images and return uint8 results (what an output archive stores).

    Shape:
        images: (B, H, W, 3) uint8; holes: (B, H, W) bool; returns (B, H, W, 3) uint8.
    """
    image = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device, torch.float32) / 255.0
    mask = torch.from_numpy(np.ascontiguousarray(holes)).unsqueeze(1).to(device, torch.float32)
    out = inpainter.inpaint(image, mask)
    return (out.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def evaluate(
    inpainter: Inpainter,
    images: Sequence[np.ndarray],
    mask_sets: dict[str, list[np.ndarray]],
    batch_size: int = 8,
    device: str = "cpu",
    strategy: str | None = None,
    size: int | None = None,
) -> dict[str, dict[str, float]]:
    """Fidelity and realism of ``inpainter`` per mask set (:func:`~restore.metrics.summarise`).

    Args:
        images: (S, S, 3) uint8 protocol images.
        mask_sets: from :func:`protocol_mask_sets` (each list as long as ``images``).
        strategy, size: restore as ``restore batch`` would with this strategy and piece side
            (a method whose native size is under S); None gives the images to the model whole.

    Returns:
        ``{set name: {"l1", "l2", "psnr", "ssim", "swd", "detail", "count"}}``.
    """
    results: dict[str, dict[str, float]] = {}
    stack = np.stack(images)
    for name, masks in mask_sets.items():
        holes = np.stack(masks[: len(images)])
        rows = []
        for start in range(0, len(images), batch_size):
            part, part_holes = stack[start : start + batch_size], holes[start : start + batch_size]
            if strategy is not None and size is not None and max(part.shape[1:3]) > size:
                from restore.inference.restoration import restore_images

                with torch.no_grad():
                    batch = np.stack(restore_images(inpainter, list(part), list(part_holes), strategy=strategy, size=size, batch_size=batch_size))
            else:
                batch = inpaint_uint8(inpainter, part, part_holes, device)
            for out, target, hole in zip(batch, part, part_holes, strict=True):
                restored, original = out.astype(np.float64) / 255.0, target.astype(np.float64) / 255.0
                rows.append({**image_metrics(restored, original), **realism_metrics(restored, original, hole)})
        results[name] = {**summarise(rows), "count": len(rows)}
    return results


def format_table(results: dict[str, dict[str, dict[str, float]]], sets: Iterable[str] | None = None) -> str:
    """A markdown table: one row per (method, mask set) with L1 %, L2 %, PSNR, SSIM, SWD and the detail ratio."""
    lines = ["| method | masks | L1 % | L2 % | PSNR dB | SSIM | SWD | detail |", "|---|---|---|---|---|---|---|---|"]
    for method, per_set in results.items():
        for name in sets or per_set:
            if name not in per_set:
                continue
            m = per_set[name]
            realism = f" {m.get('swd', math.nan):.1f} | {m.get('detail', math.nan):.3f} |"
            lines.append(f"| {method} | {name} | {m['l1']:.2f} | {m['l2']:.3f} | {m['psnr']:.2f} | {m['ssim']:.4f} |" + realism)
    return "\n".join(lines)


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 pixels as float64 in [0, 1], RGB (grey kept, alpha dropped).

    Shape:
        image: (H, W, C); returns (H, W, min(C, 3)).
    """
    scale = float(np.iinfo(image.dtype).max)
    array = image.astype(np.float64) / scale
    return array[..., :3] if array.shape[-1] == 4 else array


def _means(rows: list[dict]) -> dict[str, float]:
    means = summarise(rows)
    if rows and "lpips" in rows[0]:
        means["lpips"] = float(np.mean([row["lpips"] for row in rows]))
    return means


def archive_fid(pred: Archive, target: Archive, inception: FIDInception, keys: Sequence[str], chunk: int = 32) -> float:
    """FID between the restored and the original images of ``keys`` (streamed in chunks).

    Args:
        inception: a :class:`~restore.perceptual_metrics.FIDInception`.
    """
    from restore.perceptual_metrics import frechet_distance, statistics

    acts_pred, acts_target = [], []
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        acts_pred.append(inception.activations([to_unit_float(pred.read(k)) for k in part]))
        acts_target.append(inception.activations([to_unit_float(target.read(k)) for k in part]))
    return frechet_distance(*statistics(np.concatenate(acts_pred)), *statistics(np.concatenate(acts_target)))


def score_image(restored: np.ndarray, reference: np.ndarray, hole: np.ndarray, lpips: LPIPS | None = None) -> dict[str, float]:
    """The protocol's metrics of one restored image (DESIGN §10).

    Args:
        restored, reference: uint8/uint16 pixels of the restoration and the original.
        hole: True = hole.
        lpips: an optional :class:`~restore.perceptual_metrics.LPIPS`; adds ``lpips``.

    Returns:
        ``{"l1", "l2", "psnr", "ssim", "swd", "detail", "grad_pred", "grad_target"[, "lpips"]}``.

    Shape:
        restored, reference: (H, W, C); hole: (H, W).
    """
    restored_f, reference_f = to_unit_float(restored), to_unit_float(reference)
    metrics = {**image_metrics(restored_f, reference_f), **realism_metrics(restored_f, reference_f, hole)}
    if lpips is not None:
        metrics["lpips"] = lpips.distance(restored_f, reference_f)
    return metrics


def summarise_images(rows: list[dict]) -> dict:
    """Means over all images and per hole-ratio bucket of per-image rows (each with ``bucket``).

    Returns:
        ``{"overall": {..., "count"}, "buckets": {name: {..., "count"}}}`` (empty buckets left out).
    """
    buckets: dict[str, dict[str, float]] = {}
    for low, high in BUCKETS:
        name = bucket_name(low, high)
        members = [row for row in rows if row["bucket"] == name]
        if members:
            buckets[name] = {**_means(members), "count": len(members)}
    return {"overall": {**_means(rows), "count": len(rows)}, "buckets": buckets}


#: Called once per image by :func:`compare_archives`: (position, key, hole, target pixels or None,
#: the restorations' pixels, their metric rows or None without a target).
ImageVisitor = Callable[[int, str, np.ndarray, "np.ndarray | None", list[np.ndarray], "list[dict] | None"], None]


def compare_archives(
    preds: Sequence[Archive],
    target: Archive | None,
    masks: MaskSource,
    *,
    progress: bool = False,
    lpips: LPIPS | None = None,
    visit: ImageVisitor | None = None,
) -> list[dict]:
    """Score several restorations of one input against the originals in one pass over the keys.

    Images are read one key at a time (the target's image, its mask, each restoration's
    image), so memory stays bounded whatever the archives' length; ``visit`` sees each
    key's pixels before the next ones are read (``restore eval --report`` makes its
    thumbnails there).

    Args:
        preds: restored archives with the keys and shapes of ``target`` (or of each other;
            see :func:`restore.comparison.check_restorations`).
        target: the original archive, or None (no ground truth: nothing is scored).
        masks: the :class:`~restore.data.masks.MaskSource` the restorations used.
        progress: show a progress bar.
        lpips: an optional :class:`~restore.perceptual_metrics.LPIPS`; adds ``lpips`` per image.
        visit: called with every image (see :data:`ImageVisitor`).

    Returns:
        Per restoration, in order, what :func:`evaluate_archives` returns; ``[]`` without a target.
    """
    from restore.metrics import bucket_of

    rows: list[list[dict]] = [[] for _ in preds]
    changed: list[list[str]] = [[] for _ in preds]
    keys = list((target if target is not None else preds[0]).keys)
    iterator: Iterable[str] = keys
    if progress:
        from tqdm import tqdm

        iterator = tqdm(keys, desc="eval" if target is not None else "report", unit="image")
    for position, key in enumerate(iterator):
        reference = target.read(key) if target is not None else None
        restored = [pred.read(key) for pred in preds]
        hole = masks.load(key, restored[0].shape[:2])
        scored = None
        if reference is not None:
            ratio = float(hole.mean())
            scored = []
            for i, image in enumerate(restored):
                if not np.array_equal(image[~hole], reference[~hole]):
                    changed[i].append(key)
                row = {"key": key, "hole_ratio": ratio, "bucket": bucket_of(ratio), **score_image(image, reference, hole, lpips)}
                rows[i].append(row)
                scored.append(row)
        if visit is not None:
            visit(position, key, hole, reference, restored, scored)
    if target is None:
        return []
    return [{**summarise_images(r), "images": r, "known_pixels_changed": c} for r, c in zip(rows, changed, strict=True)]


def evaluate_archives(pred: Archive, target: Archive, masks: MaskSource, progress: bool = False, lpips: LPIPS | None = None) -> dict:
    """Score a restored archive against the originals, per image and per hole-ratio bucket.

    Args:
        pred: the restored :class:`~restore.data.archive.Archive`.
        target: the original archive (same keys and shapes).
        masks: the :class:`~restore.data.masks.MaskSource` the restoration used.
        progress: show a progress bar.
        lpips: an optional :class:`~restore.perceptual_metrics.LPIPS`; adds ``lpips`` per image.

    Returns:
        ``{"overall": {...}, "buckets": {name: {..., "count"}}, "images": [...],
        "known_pixels_changed": [keys]}``; metrics are L1 %, L2 %, PSNR, SSIM over the
        whole image in [0, 1] (DESIGN §10), and SWD and the detail ratio inside the hole
        (:func:`~restore.metrics.realism_metrics`; NaN where undefined: SWD needs 32 px a
        side); images of any size down to 1×1 are scored (:func:`~restore.metrics.ssim`
        narrows its window below 11 px a side).
    """
    return compare_archives([pred], target, masks, progress=progress, lpips=lpips)[0]
