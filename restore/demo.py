"""``make demo``: restore real photos end to end with the real commands.

Steps (each a ``restore`` command, printed as it runs): centre-crop photos to
256² PNGs, ``ingest`` them, ``masks generate`` one real irregular hole per
photo, ``batch`` (CSA when a checkpoint ships, alone and with ``--ensemble 8``,
else Telea; the classical baselines too for comparison), ``export`` PNGs, a side-by-side picture
(masked input | restored | original) and an ``eval`` metrics table.

Photos come from ``../shared/data/eval/kodak24`` when present, otherwise from
the photographs that ship inside scikit-image.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import numpy as np

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "cat")


def _run(args: list[str]) -> None:
    command = [sys.executable, "-m", "restore", *args]
    click.secho("$ restore " + shlex.join(args), fg="cyan", err=True)
    name = next(arg for arg in args if not arg.startswith("-"))
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise click.ClickException(f"`restore {name}` failed with exit code {result.returncode}")


def _photos(count: int) -> list[tuple[str, np.ndarray]]:
    from restore.data.datasets import list_image_files, to_rgb8
    from restore.data.images import read_image
    from restore.paths import shared_data_dir

    kodak = shared_data_dir() / "eval" / "kodak24"
    if kodak.is_dir():
        return [(path.stem, to_rgb8(read_image(path))) for path in list_image_files(kodak)[:count]]
    import skimage.data

    photos = []
    for name in SKIMAGE_PHOTOS[:count]:
        image = np.asarray(getattr(skimage.data, name)())
        photos.append((name, to_rgb8(image)))
    return photos


def _masks_for(out: Path, seed: int) -> str:
    """Generate one 20–30 % NVIDIA mask per archived photo (LaMa 'thick' strokes without the set); returns the kind."""
    from restore.paths import nvidia_masks_dir

    kind, extra = ("nvidia", ["--ratio", "0.2-0.3"]) if nvidia_masks_dir().is_dir() else ("thick", [])
    _run(["masks", "generate", str(out / "masks"), "--kind", kind, "--for-archive", str(out / "photos.zarr"), "--seed", str(seed), *extra])
    return kind


def _side_by_side(out: Path, keys: list[str], labels: list[str], rows: int = 4) -> Path:
    """masked input | each run of ``labels`` | original, one row per photo."""
    from restore.data.images import read_image, write_image

    lines = []
    for key in keys[:rows]:
        original = read_image(out / "photos" / f"{key}.png")[..., :3]
        hole = read_image(out / "masks" / f"{key}_mask.png")[..., 0] > 127
        restored = [read_image(out / f"restored-{label}" / f"{key}.png")[..., :3] for label in labels]
        masked = original.copy()
        masked[hole] = 255
        lines.append(np.concatenate([masked, *restored, original], axis=1))
    picture = out / "side_by_side.png"
    write_image(picture, np.concatenate(lines, axis=0), overwrite=True)
    return picture


DEMO_MARKER = ".restore-demo"


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--count", default=8, show_default=True, type=click.IntRange(min=1, max=24), help="How many photos.")
@click.option("--seed", default=0, show_default=True, type=int)
def main(out: Path, count: int, seed: int) -> None:
    """Run the end-to-end demo into --out (replaced if it is an earlier demo's folder)."""
    from restore.data.datasets import centre_square
    from restore.data.images import write_image
    from restore.evaluation import PROTOCOL_SIZE
    from restore.models.registry import METHODS

    if out.exists() and any(out.iterdir()):
        earlier_demo = (out / DEMO_MARKER).is_file() or all((out / name).exists() for name in ("photos.zarr", "masks", "side_by_side.png"))
        if not earlier_demo:
            raise click.ClickException(f"{out}: exists and is not a demo folder; give another --out")
        shutil.rmtree(out)
    (out / "photos").mkdir(parents=True)
    (out / DEMO_MARKER).write_text("written by python -m restore.demo; replaced by the next demo run\n")
    photos = _photos(count)
    keys = [key for key, _ in photos]
    for key, image in photos:
        write_image(out / "photos" / f"{key}.png", centre_square(image, PROTOCOL_SIZE))
    _run(["ingest", str(out / "photos"), str(out / "photos.zarr")])
    kind = _masks_for(out, seed)

    main_method = "csa" if METHODS["csa"].shipped_checkpoint is not None else "telea"
    runs = {main_method: [main_method]}  # label: method, then extra batch options
    pictured = [main_method]
    if main_method == "csa":
        for variant in METHODS["csa"].shipped_variants:  # e.g. csa-psnr, the fidelity-only weights
            runs[variant.stem] = ["csa", "--checkpoint", variant.stem]
            pictured.append(variant.stem)
        runs["csa-ensemble8"] = ["csa", "--ensemble", "8"]
    runs.update({m: [m] for m in ("telea", "ns") if m != main_method})
    tables = {}
    for label, (method, *options) in runs.items():
        restored = out / f"restored-{label}.zarr"
        _run(["batch", "--input", str(out / "photos.zarr"), "--masks", str(out / "masks"), "--output", str(restored), "--method", method,
              "--workers", "1", *options])
        _run(["export", str(restored), str(out / f"restored-{label}")])
        _run(["-q", "eval", "--pred", str(restored), "--target", str(out / "photos.zarr"), "--masks", str(out / "masks"), "--report", str(out / f"eval-{label}")])
        tables[label] = (out / f"eval-{label}" / "metrics.md").read_text()
    picture = _side_by_side(out, keys, pictured)

    click.echo(f"\n{len(keys)} photos, 256² centre crops, one '{kind}' hole each (20-30 % for nvidia).")
    for method, table in tables.items():
        click.echo(f"\n{method}:\n{table}")
    click.echo(f"\nside-by-side (masked | {' | '.join(pictured)} | original): {picture}")


if __name__ == "__main__":
    main()
