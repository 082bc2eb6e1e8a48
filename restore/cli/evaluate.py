"""``restore eval``: score a restored archive against the originals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

REPORT_FILES = ("metrics.json", "metrics.md", "per_image.csv")


def _finite(value):
    """``value`` with every non-finite float (PSNR of a perfect image is inf) as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _markdown(result: dict) -> str:
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


@click.command("eval")
@click.option("--pred", "pred_path", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Restored archive (restore batch output).")
@click.option("--target", "target_path", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Original archive.")
@click.option("--masks", "masks_spec", required=True, type=click.Path(exists=True, path_type=Path), help="The masks the restoration used (folder, file or archive).")
@click.option("--resize-masks", is_flag=True, help="Resize masks of another size to each image (nearest).")
@click.option("--dilate", default=0, show_default=True, type=click.IntRange(min=0), help="Grow holes by this many pixels (as given to restore batch).")
@click.option("--lpips-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="LPIPS (VGG, v0.1) linear-layer weights, e.g. the lpips package's vgg.pth; needs --vgg-weights.")
@click.option("--vgg-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="torchvision VGG-16 ImageNet weights (vgg16-397923af.pth), for LPIPS.")
@click.option("--fid-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="pytorch-fid Inception weights (pt_inception-2015-12-05-*.pth); adds FID over all images.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the full result (per image too) as JSON.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), help="Write metrics.json, metrics.md and per_image.csv here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file or report files.")
def evaluate(pred_path: Path, target_path: Path, masks_spec: Path, resize_masks: bool, dilate: int, lpips_weights: Path | None,
             vgg_weights: Path | None, fid_weights: Path | None, json_path: Path | None, report_dir: Path | None, overwrite: bool) -> None:
    """Score --pred against --target: L1 %, L2 %, PSNR, SSIM, SWD and detail ratio per hole-ratio bucket.

    Metrics follow the evaluation protocol: fidelity on the whole image, values in [0, 1],
    SSIM with a Gaussian window (sigma 1.5; narrower on images under 11 px); realism inside
    the holes: SWD (x 10^3; lower is better; images of 32 px a side and more) of 7x7
    Laplacian-pyramid patches, and the detail ratio (gradient magnitude, restored /
    original; 1.0 is the original's detail, blur is below). Images whose known pixels differ from the target are
    reported, since a correct restoration never changes them. LPIPS and FID are
    computed only with weights you supply (nothing is downloaded).
    """
    from restore.cli import verbosity
    from restore.data.archive import ArchiveError, open_archive
    from restore.data.masks import MaskError, open_mask_source
    from restore.evaluation import evaluate_archives

    outputs = [(json_path, "--json")] if json_path is not None else []
    outputs += [(report_dir / name, "--report") for name in REPORT_FILES] if report_dir is not None else []
    existing = [(path, option) for path, option in outputs if path.exists()]
    if existing and not overwrite:
        path, option = existing[0]
        raise click.BadParameter(f"{path}: exists (--overwrite replaces it)", param_hint=f"'{option}'")
    archives = []
    for path, option in ((pred_path, "--pred"), (target_path, "--target")):
        try:
            archives.append(open_archive(path))
        except ArchiveError as error:
            raise click.BadParameter(str(error), param_hint=f"'{option}'") from None
    pred, target = archives
    if list(pred.keys) != list(target.keys):
        missing = sorted(set(target.keys) - set(pred.keys))
        extra = sorted(set(pred.keys) - set(target.keys))
        detail = f"missing {', '.join(missing[:5])}" if missing else f"unexpected {', '.join(extra[:5])}"
        raise click.BadParameter(f"{pred_path} does not hold the images of {target_path} ({detail})", param_hint="'--pred'")
    if not pred.complete:
        todo = len(pred.keys) - len(pred.done_keys())
        raise click.BadParameter(f"{pred_path} is incomplete: {todo} image(s) not restored yet (rerun restore batch to finish it)", param_hint="'--pred'")
    for key in target.keys:
        if pred.shape(key) != target.shape(key) or pred.dtype(key) != target.dtype(key):
            raise click.BadParameter(f"image {key!r}: {pred.shape(key)} {pred.dtype(key)} in --pred but {target.shape(key)} "
                                     f"{target.dtype(key)} in --target", param_hint="'--pred'")
    try:
        masks = open_mask_source(masks_spec, resize=resize_masks, dilate=dilate)
        masks.validate(target.keys, {key: target.shape(key)[:2] for key in target.keys})
    except MaskError as error:
        raise click.BadParameter(str(error), param_hint="'--masks'") from None

    if lpips_weights is not None and vgg_weights is None:
        raise click.BadParameter("LPIPS needs the VGG-16 backbone weights too", param_hint="'--vgg-weights'")
    from restore.perceptual_metrics import LPIPS, FIDInception, PerceptualWeightsError

    try:
        lpips = LPIPS.from_files(lpips_weights, vgg_weights) if lpips_weights is not None else None
    except PerceptualWeightsError as error:
        raise click.BadParameter(str(error), param_hint="'--lpips-weights' / '--vgg-weights'") from None
    try:
        inception = FIDInception.from_file(fid_weights) if fid_weights is not None else None
    except PerceptualWeightsError as error:
        raise click.BadParameter(str(error), param_hint="'--fid-weights'") from None
    result = evaluate_archives(pred, target, masks, progress=verbosity() >= 0 and len(target.keys) > 20, lpips=lpips)
    if inception is not None:
        from restore.evaluation import archive_fid

        result["fid"] = archive_fid(pred, target, inception, list(target.keys))
    result["pred"], result["target"], result["masks"] = str(pred_path), str(target_path), masks.describe()
    result["method"] = pred.attrs.get("method")
    result["ensemble"] = pred.attrs.get("ensemble", 1)  # views per image (restore batch --ensemble)
    table = _markdown(result)
    if verbosity() >= 0:
        click.echo(table)
    if result["known_pixels_changed"]:
        click.echo(f"warning: known pixels differ from the target in {len(result['known_pixels_changed'])} image(s): "
                   f"{', '.join(result['known_pixels_changed'][:5])}", err=True)
    text = json.dumps(_finite(result), indent=1, allow_nan=False)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text)
    if report_dir is not None:
        import csv

        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "metrics.json").write_text(text)
        (report_dir / "metrics.md").write_text(table + "\n")
        columns = ["key", "hole_ratio", "bucket", "l1", "l2", "psnr", "ssim", "swd", "detail", "grad_pred", "grad_target"]
        columns += ["lpips"] if "lpips" in result["overall"] else []
        with open(report_dir / "per_image.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(result["images"])
