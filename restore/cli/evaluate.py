"""``restore eval``: score restored archives against the originals; compare them in an HTML report."""

from __future__ import annotations

import os
from pathlib import Path

import click

ARCHIVE = click.Path(exists=True, file_okay=False, path_type=Path)
WEIGHTS = click.Path(exists=True, dir_okay=False, path_type=Path)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _open(path: Path, option: str):
    from restore.data.archive import ArchiveError, open_archive

    try:
        return open_archive(path)
    except ArchiveError as error:
        raise click.BadParameter(str(error), param_hint=f"'{option}'") from None


def _check_outputs(target: Path | None, report_dir: Path | None, json_path: Path | None, overwrite: bool,
                   weights: list[tuple[Path | None, str]]) -> None:
    from restore.report.folder import ReportFolderError, check_report_folder

    if target is None:
        if report_dir is None:
            raise click.BadParameter("needed unless --report is given (metrics need the originals; a report without them "
                                     "shows the restorations side by side)", param_hint="'--target'")
        given = [option for path, option in [(json_path, "--json"), *weights] if path is not None]
        if given:
            raise click.BadParameter("needs --target: there are no metrics without the originals", param_hint=f"'{given[0]}'")
    if json_path is not None and json_path.exists() and not overwrite:
        raise click.BadParameter(f"{json_path}: exists (--overwrite replaces it)", param_hint="'--json'")
    if report_dir is not None:
        try:
            check_report_folder(report_dir, overwrite)
        except ReportFolderError as error:
            raise click.BadParameter(str(error), param_hint="'--report'") from None


@click.command("eval")
@click.option("--pred", "pred_paths", required=True, multiple=True, type=ARCHIVE,
              help="Restored archive (restore batch output); repeat to compare several restorations of the same images.")
@click.option("--label", "labels", multiple=True,
              help="A name for each --pred, in order [default: the method and checkpoint the archive records].")
@click.option("--target", "target_path", type=ARCHIVE,
              help="Original archive (the ground truth). Optional with --report: without it (real damage) the report "
                   "shows the masked input and the restorations side by side, with no metrics.")
@click.option("--masks", "masks_spec", required=True, type=click.Path(exists=True, path_type=Path), help="The masks the restoration used (folder, file or archive).")
@click.option("--resize-masks", is_flag=True, help="Resize masks of another size to each image (nearest).")
@click.option("--dilate", default=0, show_default=True, type=click.IntRange(min=0), help="Grow holes by this many pixels (as given to restore batch).")
@click.option("--lpips-weights", type=WEIGHTS, help="LPIPS (VGG, v0.1) linear-layer weights, e.g. the lpips package's vgg.pth; needs --vgg-weights.")
@click.option("--vgg-weights", type=WEIGHTS, help="torchvision VGG-16 ImageNet weights (vgg16-397923af.pth), for LPIPS.")
@click.option("--fid-weights", type=WEIGHTS, help="pytorch-fid Inception weights (pt_inception-2015-12-05-*.pth); adds FID over all images.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the full result (per image too) as JSON.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write an HTML report here: index.html (tables; per image masked input | each restoration | original, "
                   "sortable, paged; opens from disk) with its thumbnails, and with --target metrics.json, metrics.md, per_image.csv.")
@click.option("--thumbnail-size", default=256, show_default=True, type=click.IntRange(16, 1024), help="Long side of the report's thumbnails, px.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file or report.")
def evaluate(pred_paths: tuple[Path, ...], labels: tuple[str, ...], target_path: Path | None, masks_spec: Path, resize_masks: bool,
             dilate: int, lpips_weights: Path | None, vgg_weights: Path | None, fid_weights: Path | None, json_path: Path | None,
             report_dir: Path | None, thumbnail_size: int, overwrite: bool) -> None:
    """Score --pred against --target: L1 %, L2 %, PSNR, SSIM, SWD and detail ratio per hole-ratio bucket.

    Metrics follow the evaluation protocol: fidelity on the whole image, values in [0, 1],
    SSIM with a Gaussian window (sigma 1.5; narrower on images under 11 px); realism inside
    the holes: SWD (x 10^3; lower is better; images of 32 px a side and more) of 7x7
    Laplacian-pyramid patches, and the detail ratio (gradient magnitude, restored /
    original; 1.0 is the original's detail, blur is below). Images whose known pixels differ from the target are
    reported, since a correct restoration never changes them. LPIPS and FID are
    computed only with weights you supply (nothing is downloaded).

    Several --pred archives (restorations of one input by different methods) are scored in
    one pass, each labelled by the method and checkpoint it records (or --label). --report
    DIR adds DIR/index.html: the tables, and per image the masked input, each restoration
    and the original side by side (hole outlines toggleable), sortable by any metric or by
    the gap between two methods, worst and best images per method first.
    """
    from restore.cli import verbosity
    from restore.comparison import ComparisonError, check_restorations, labels_for, mask_differences

    weights = [(lpips_weights, "--lpips-weights"), (vgg_weights, "--vgg-weights"), (fid_weights, "--fid-weights")]
    _check_outputs(target_path, report_dir, json_path, overwrite, weights)
    preds = [_open(path, "--pred") for path in pred_paths]
    target = _open(target_path, "--target") if target_path is not None else None
    try:
        check_restorations(preds, target)
        names = labels_for(preds, labels)
    except ComparisonError as error:
        raise click.BadParameter(str(error), param_hint=f"'{error.option}'") from None
    masks = _open_masks(masks_spec, resize_masks, dilate, target if target is not None else preds[0])
    for pred in preds:
        difference = mask_differences(pred, masks_spec, resize_masks, dilate)
        if difference is not None:
            click.echo(f"warning: {difference}", err=True)
    lpips, inception = _perceptual(lpips_weights, vgg_weights, fid_weights) if target is not None else (None, None)

    progress = verbosity() >= 0 and len(preds[0].keys) > 20
    if report_dir is None:
        results = _score(preds, names, target, masks, progress, lpips, inception, visit=None)
        _finish(names, preds, target_path, masks, results, json_path, None)
        return
    from restore.report.folder import ReportFolderError, staged_report

    try:
        with staged_report(report_dir, overwrite=overwrite) as folder:
            builder = _builder(folder, names, target is not None, thumbnail_size)
            results = _score(preds, names, target, masks, progress, lpips, inception, visit=builder.add)
            _write_page(folder, builder, names, preds, target_path, masks, results)
            _finish(names, preds, target_path, masks, results, json_path, folder)
    except ReportFolderError as error:  # a report appeared while this one was being built
        raise click.BadParameter(str(error), param_hint="'--report'") from None
    if verbosity() >= 0:
        click.echo(f"report: {report_dir / 'index.html'} ({len(preds[0].keys)} images, {len(names)} restoration(s))", err=True)


def _open_masks(masks_spec: Path, resize: bool, dilate: int, reference):
    from restore.data.masks import MaskError, open_mask_source

    try:
        masks = open_mask_source(masks_spec, resize=resize, dilate=dilate)
        masks.validate(reference.keys, {key: reference.shape(key)[:2] for key in reference.keys})
    except MaskError as error:
        raise click.BadParameter(str(error), param_hint="'--masks'") from None
    return masks


def _perceptual(lpips_weights: Path | None, vgg_weights: Path | None, fid_weights: Path | None):
    if lpips_weights is not None and vgg_weights is None:
        raise click.BadParameter("LPIPS needs the VGG-16 backbone weights too", param_hint="'--vgg-weights'")
    if lpips_weights is None and fid_weights is None:
        return None, None
    from restore.perceptual_metrics import LPIPS, FIDInception, PerceptualWeightsError

    try:
        lpips = LPIPS.from_files(lpips_weights, vgg_weights) if lpips_weights is not None else None
    except PerceptualWeightsError as error:
        raise click.BadParameter(str(error), param_hint="'--lpips-weights' / '--vgg-weights'") from None
    try:
        inception = FIDInception.from_file(fid_weights) if fid_weights is not None else None
    except PerceptualWeightsError as error:
        raise click.BadParameter(str(error), param_hint="'--fid-weights'") from None
    return lpips, inception


def _builder(folder: Path, names: list[str], has_target: bool, side: int):
    from restore.report.builder import ReportBuilder

    return ReportBuilder(folder, names, has_target=has_target, side=side)


def _score(preds, names, target, masks, progress, lpips, inception, visit) -> list[dict] | None:
    """Per restoration its result (what restore.evaluation.evaluate_archives returns, with provenance); None without a target."""
    from restore.evaluation import compare_archives

    results = compare_archives(preds, target, masks, progress=progress, lpips=lpips, visit=visit)
    if target is None:
        return None
    if inception is not None:
        from restore.evaluation import archive_fid

        for pred, result in zip(preds, results, strict=True):
            result["fid"] = archive_fid(pred, target, inception, list(target.keys))
    for pred, result in zip(preds, results, strict=True):
        result["pred"], result["target"], result["masks"] = str(pred.path), str(target.path), masks.describe()
        result["method"] = pred.attrs.get("method")
        result["ensemble"] = pred.attrs.get("ensemble", 1)  # views per image (restore batch --ensemble)
    return results


def _write_page(folder: Path, builder, names, preds, target_path, masks, results) -> None:
    from restore import __version__
    from restore.comparison import provenance
    from restore.data.archive import utc_now
    from restore.report.page import render_index, write_page

    created = utc_now()
    builder.write_data({"created": created, "target": str(target_path) if target_path else None, "masks": masks.describe()})
    write_page(folder, render_index(
        labels=names, provenance=[provenance(pred) for pred in preds], count=len(builder.keys), masks=masks.describe(),
        target=str(target_path) if target_path else None, results=results, created=created, version=__version__,
    ))  # fmt: skip


def _finish(names, preds, target_path, masks, results, json_path: Path | None, folder: Path | None) -> None:
    """Print the tables and warnings; write --json and the report's metrics files (with a target)."""
    from restore.cli import verbosity
    from restore.report.metrics_files import combined, json_text, markdown, write_metrics

    if results is None:
        return
    if verbosity() >= 0:
        click.echo(markdown(names, results))
    for label, result in zip(names, results, strict=True):
        changed = result["known_pixels_changed"]
        if changed:
            whose = f"{label}: " if len(results) > 1 else ""
            click.echo(f"warning: {whose}known pixels differ from the target in {len(changed)} image(s): {', '.join(changed[:5])}", err=True)
    document = combined(names, results, {"target": str(target_path), "masks": masks.describe()})
    if json_path is not None:
        _write_atomic(json_path, json_text(document))
    if folder is not None:
        write_metrics(folder, names, results, document)
