"""``restore batch``: restore every image of an archive on Dask (DESIGN §4, §9)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from restore.cli.options import MethodChoice, device_option
from restore.hardware import usable_cores
from restore.models.ensemble import ENSEMBLE_SIZES
from restore.models.registry import BLEND_MODES, STRATEGIES, blend_help, limited_help, strategy_help


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path), help="Archive of images to restore (never modified).")
@click.option("--masks", "masks_spec", required=True, type=click.Path(exists=True, path_type=Path), help="Mask folder (KEY.png / KEY_mask.png), one mask file for all, or a mask archive.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), help="Output archive [default: INPUT.restored.zarr beside the input]; an existing one is resumed.")
@click.option("--method", default="csa", show_default=True, type=MethodChoice(), help=f"Inpainting method: {MethodChoice.summary()} (see `restore methods`).")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), help="Weights: a file, or the name of one shipped in the package (see `restore methods`) [default: the method's shipped checkpoint].")
@device_option
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes of the embedded cluster [default: 1; more are faster on many small images, at about 0.4 GiB each].")
@click.option("--threads-per-worker", type=click.IntRange(min=1), help="Torch threads per worker [default: cores / workers].")
@click.option("--scheduler", help="Address of an existing Dask scheduler (tcp://host:8786) instead of the embedded cluster.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Model inputs (images, sub-images or tiles) per model call.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output and recompute everything.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None, help=f"Images over the method's native size (256 px for csa): polyphase sub-images of that size (whole-picture context, large holes), overlapping tiles of that size (full resolution, small holes) or the whole image at once [default: the method's: {strategy_help()}].")
@click.option("--skip-missing", is_flag=True, help="Leave out images without a mask (listed) instead of failing.")
@click.option("--resize-masks", is_flag=True, help="Resize masks of another size to each image (nearest).")
@click.option("--dilate", default=0, show_default=True, type=click.IntRange(min=0), help="Grow every hole by this many pixels.")
@click.option("--allow-large", is_flag=True, help=f"Restore images over the method's size limit whole all the same ({limited_help()}; see `restore methods`).")
@click.option("--ensemble", default="1", show_default=True, type=click.Choice([str(n) for n in ENSEMBLE_SIZES]), help="Average the fills of N mirrored/transposed views of each image (self-ensemble): N times the model calls for a slightly better fill from a network such as CSA.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Change one inference setting of the method (repeatable; wgan: search_steps, restarts and the search's other settings, see `restore methods`) [default: the checkpoint's].")
@click.option("--blend", default=None, type=click.Choice(BLEND_MODES), help=f"Post-process each fill: poisson solves for the hole's pixels with the network's own gradients and the known pixels as the boundary (GLCIC's post-processing; seamless colours at the hole's edge); needs a network method [default: the method's: {blend_help()}].")
def batch(
    input_path: Path,
    masks_spec: Path,
    output_path: Path | None,
    method: str,
    checkpoint: Path | None,
    device: str,
    workers: int | None,
    threads_per_worker: int | None,
    scheduler: str | None,
    batch_size: int,
    overwrite: bool,
    strategy: str | None,
    skip_missing: bool,
    resize_masks: bool,
    dilate: int,
    ensemble: str,
    blend: str | None,
    allow_large: bool,
    settings: tuple[str, ...],
) -> None:
    """Fill the holes of every image of --input and write them to --output.

    Runs on an embedded Dask cluster of --workers processes, or on an existing cluster
    (--scheduler). Everything is checked before any work starts. Images are written one
    by one as they finish, so an interrupted run (even killed) resumes where it stopped
    when run again (with the same settings, and the input and the masks of finished images
    unchanged); only --overwrite recomputes finished images. Known pixels are
    copied exactly; grey images are restored as RGB and written back as the mean of the
    three channels; alpha is kept as it is.
    """
    import logging

    from tqdm import tqdm

    from restore.cli import verbosity
    from restore.cli.options import resolve_device
    from restore.messages import preview
    from restore.pipelines.cluster import (
        ClusterError,
        SchedulerAddressError,
        default_workers_threads,
        has_gpu_workers,
        open_client,
        parse_scheduler_address,
    )
    from restore.pipelines.tiled_inference import BatchError, PlanError, execute, prepare_batch

    level = verbosity()
    quiet = level < 0

    def note(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    if scheduler is not None:
        if workers is not None:
            raise click.UsageError("--workers sizes the embedded cluster; it cannot be combined with --scheduler")
        try:
            parse_scheduler_address(scheduler)
        except SchedulerAddressError as error:
            raise click.BadParameter(str(error), param_hint="'--scheduler'") from None
        worker_device, threads = device, threads_per_worker
    else:
        worker_device = resolve_device(device)
        workers, threads = default_workers_threads(workers, threads_per_worker)
        if workers * threads > usable_cores():
            note(f"warning: {workers} worker(s) x {threads} thread(s) is more than the {usable_cores()} usable cores; expect slowdowns")

    from restore.models.registry import get_method

    record = get_method(method)
    strategy = strategy or record.default_strategy
    blend = blend or record.default_blend
    inference_settings = _inference_settings(record, settings)

    def mask_bar(**kwargs: object) -> tqdm:
        return tqdm(file=sys.stderr, disable=True if quiet else None, leave=False, delay=1.0, **kwargs)

    try:
        plan = prepare_batch(
            input_path, masks_spec, output=output_path, method=method, checkpoint=checkpoint,
            device=worker_device, threads=threads, batch_size=batch_size, overwrite=overwrite,
            strategy=strategy, skip_missing=skip_missing, resize_masks=resize_masks, dilate=dilate,
            ensemble=int(ensemble), blend=blend, allow_large=allow_large, bar=mask_bar, settings=inference_settings,
        )  # fmt: skip
    except PlanError as error:
        raise click.BadParameter(str(error), param_hint=f"'{error.option}'") from None

    total = len(plan.archive.keys)
    restored = [0]
    try:
        if plan.skipped:
            note(f"skipping {len(plan.skipped)} image(s) without a mask: {preview(plan.skipped)}")
        if not plan.todo:
            click.echo(f"nothing to do: {plan.already_done} of {total} image(s) in {plan.output} are restored")
            return
        if plan.already_done:
            note(f"resuming {plan.output}: {plan.already_done} of {total} image(s) already restored")
        where = f"the Dask cluster at {scheduler}" if scheduler else f"{workers} local worker(s) x {threads} thread(s)"
        views = f", {ensemble} views per image" if ensemble != "1" else ""
        views += ", Poisson-blended" if blend == "poisson" else ""
        note(f"restoring {len(plan.todo)} image(s) with {method} ({strategy}{views}) on {where}")
        # Worker and scheduler logs: failures reach the user through the client anyway.
        log_level = {0: logging.CRITICAL, 1: logging.WARNING}.get(level, logging.INFO if level > 1 else logging.CRITICAL)
        with open_client(scheduler, workers=workers or 1, device=worker_device, log_level=log_level) as client:
            if scheduler is not None and device == "cuda" and not has_gpu_workers(client):
                raise click.ClickException(
                    f"--device cuda: no worker of the cluster at {scheduler} offers a GPU resource "
                    "(start the workers with --resources GPU=1)"
                )
            gpu = worker_device.startswith("cuda") if scheduler is None else (device != "cpu" and has_gpu_workers(client))
            with tqdm(total=len(plan.todo), desc="restoring", unit="img", file=sys.stderr, disable=True if quiet else None, dynamic_ncols=True) as bar:

                def advance(count: int) -> None:
                    restored[0] += count
                    bar.update(count)

                report = execute(plan, client, gpu=gpu, progress=advance)
    except (BatchError, ClusterError) as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        click.echo(f"interrupted: {plan.already_done + restored[0]} of {total} image(s) are restored in {plan.output}; "
                   "the same command resumes", err=True)
        raise SystemExit(130) from None
    finally:
        plan.close()

    written = report.already_done + len(report.computed)
    rate = f"{len(report.computed) / report.seconds:.2f} img/s" if report.seconds > 0 and report.computed else "-"
    click.echo(
        f"restored {len(report.computed)} image(s) in {report.seconds:.2f} s ({rate}); "
        f"{written} of {total} done in {report.output}"
    )
    if report.skipped:
        note(f"{len(report.skipped)} image(s) without a mask were not restored; add their masks and run again to finish")
    if report.failed:
        keys = list(report.failed)
        stop = "stopped: the first tasks all failed; " if report.aborted else ""
        raise click.ClickException(
            f"{stop}{len(keys)} image(s) failed: {preview(keys)} (first error: {report.failed[keys[0]]}); "
            f"the {written} restored image(s) are written; run again to retry the others"
        )


def _inference_settings(record: Any, settings: tuple[str, ...]) -> dict[str, Any]:
    """``--set`` items as typed values, each one of the method's inference settings."""
    if not settings:
        return {}
    from restore.cli.options import config_overrides

    if not record.inference_settings:
        raise click.BadParameter(f"method {record.name!r} has no inference settings", param_hint="'--set'")
    values = config_overrides(record.config_class(), settings, None)
    fixed = sorted(set(values) - set(record.inference_settings))
    if fixed:
        raise click.BadParameter(
            f"{', '.join(fixed)}: not an inference setting of {record.name} (its weights fix it); "
            f"settable: {', '.join(record.inference_settings)}", param_hint="'--set'"
        )
    try:
        record.config_class()(**values)
    except (TypeError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="'--set'") from None
    return values
