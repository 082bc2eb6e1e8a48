"""A grid of samples drawn from a WGAN checkpoint (its model card's picture), beside real 64² training views.

    python benchmarks/wgan_samples.py --checkpoint restore/weights/wgan.pt --out docs/wgan-samples.png [--rows 6] [--seed 0]

Left: ``rows``² samples G(z), z ~ N(0, 1) drawn by ``--seed`` (the generator's moving average
in eval mode, as the search uses it); right, for comparison, as many 64² views of the training
photos drawn the way training draws them (random crops of half to all of the short side,
area-resized), when ``../shared/data/train`` is there. Each image ×2 (nearest neighbour).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


def _tile(images: np.ndarray, rows: int, scale: int) -> np.ndarray:
    """(rows², S, S, 3) uint8 → one grid image with 2-px white gaps."""
    padded = [np.pad(np.kron(image, np.ones((scale, scale, 1), np.uint8)), ((1, 1), (1, 1), (0, 0)), constant_values=255) for image in images]
    return np.concatenate([np.concatenate(padded[r * rows : (r + 1) * rows], axis=1) for r in range(rows)], axis=0)


@click.command()
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rows", default=6, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--scale", default=2, show_default=True, type=click.IntRange(min=1))
def main(checkpoint: Path, out: Path, rows: int, seed: int, scale: int) -> None:
    """Write the grid."""
    import imageio.v3 as iio
    import torch

    from restore.checkpoint import load_checkpoint
    from restore.models.wgan.inpainter import networks_from_checkpoint
    from restore.models.wgan.search import initial_latents
    from restore.paths import shared_data_dir

    config, generator, _ = networks_from_checkpoint(load_checkpoint(checkpoint))
    with torch.no_grad():
        samples = (generator.eval()(initial_latents(rows * rows, config.latent, seed)) + 1) * 0.5
    grids = [_tile((samples.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy(), rows, scale)]
    train = shared_data_dir() / "train"
    if train.is_dir():
        from restore.data.datasets import load_images, random_resized_crop

        _, photos = load_images(train)
        rng = np.random.default_rng(seed)
        views = np.stack([random_resized_crop(rng, photos[int(rng.integers(len(photos)))], config.size) for _ in range(rows * rows)])
        grids += [np.full((grids[0].shape[0], 8, 3), 255, np.uint8), _tile(views, rows, scale)]
    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, np.concatenate(grids, axis=1))
    print(f"wrote {out}: {rows * rows} samples of {checkpoint}" + (" | training views" if len(grids) > 1 else ""))


if __name__ == "__main__":
    main()
