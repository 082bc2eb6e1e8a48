"""Object removal on real photos with hand-drawn masks: a picture to look at, method beside method.

Reads the photo + ``*_mask.png`` pairs of ``../shared/data/samples/ldm-inpainting-examples``
(eight 512² photos, CompVis/latent-diffusion's examples; a folder of such pairs with
``--folder``), restores each at full size with every ``--run`` the way ``restore batch``
would (the method's default strategy, or ``--strategy``; its default blend, or ``--blend``;
``--set`` inference settings for the runs whose method has them), and writes one row per photo:
masked input | each run. There is no ground truth (the objects are gone), so this is for
the eye: texture continued or smeared, seams, colour.

    python benchmarks/object_removal.py --run "PSNR-only=csa:old.pt" --run "new=csa" --run telea=telea \\
        --out docs/object-removal.jpg [--strategy tile] [--scale 0.5]
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


def _pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    pairs = []
    for mask in sorted(folder.glob("*_mask.png")):
        photo = mask.with_name(mask.name.removesuffix("_mask.png") + ".png")
        if photo.is_file():
            pairs.append((photo.stem, photo, mask))
    return pairs


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = image.copy()
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return out


@click.command()
@click.option("--run", "runs", multiple=True, required=True, metavar="LABEL=METHOD[:CHECKPOINT]", help="A column (repeatable).")
@click.option("--folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Photo + *_mask.png pairs [default: ../shared/data/samples/ldm-inpainting-examples].")
@click.option("--strategy", type=click.Choice(["subsample", "tile", "whole"]), default=None, help="[default: each method's].")
@click.option("--blend", type=click.Choice(["none", "poisson"]), default=None, help="[default: each method's].")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="An inference setting for the runs whose method has it (wgan: restarts=2).")
@click.option("--scale", default=0.5, show_default=True, type=float, help="Scale of the written picture.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(runs: tuple[str, ...], folder: Path | None, strategy: str | None, blend: str | None, settings: tuple[str, ...], scale: float,
         out: Path) -> None:
    import cv2
    import torch

    from restore.cli.options import config_overrides
    from restore.data.images import read_image, write_image
    from restore.data.masks import open_mask_source
    from restore.inference.poisson import PoissonBlended
    from restore.inference.restoration import restore_images
    from restore.models.registry import get_method, resolve_checkpoint
    from restore.paths import shared_data_dir

    torch.set_grad_enabled(False)
    folder = folder or shared_data_dir() / "samples" / "ldm-inpainting-examples"
    pairs = _pairs(folder)
    if not pairs:
        raise click.ClickException(f"no photo + *_mask.png pairs in {folder}")
    columns = []
    for run in runs:
        label, _, target = run.partition("=")
        name, _, checkpoint = target.partition(":")
        method = get_method(name)
        path = resolve_checkpoint(name, Path(checkpoint) if checkpoint else None)
        values = config_overrides(method.config_class(), settings, None) if settings and method.inference_settings else {}
        inpainter = method.loader(path, "cpu", **values)
        if (blend or method.default_blend) == "poisson":
            inpainter = PoissonBlended(inpainter)
        columns.append((label, method, inpainter))
    rows = []
    for key, photo_path, mask_path in pairs:
        photo = read_image(photo_path)[..., :3]
        hole = open_mask_source(mask_path).load(key, photo.shape[:2])
        masked = photo.copy()
        masked[hole] = 255
        row = [_label(masked, key[:24])]
        for label, method, inpainter in columns:
            restored = restore_images(inpainter, [photo], [hole], strategy=strategy or method.default_strategy, size=method.piece_size)[0]
            row.append(_label(restored, label))
        rows.append(np.concatenate(row, axis=1))
        click.echo(f"{key}: {hole.mean() * 100:.1f} % hole", err=True)
    grid = np.concatenate(rows, axis=0)
    if scale != 1:
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_image(out, grid) if out.suffix.lower() == ".png" else cv2.imwrite(str(out), grid[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
