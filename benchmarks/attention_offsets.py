"""Where DeepFill's contextual attention copies from: the refinement stage's offsets in the flow colour code.

For each photo + ``*_mask.png`` pair (the LDM object-removal examples by default, at full size),
one row: masked input | DeepFill's result | the attention offsets inside the hole, coloured as
optical flow (Middlebury colour wheel, as the paper's figures: hue = direction of the background
patch the hole position draws most from, saturation = its distance) | the colour wheel.

    python benchmarks/attention_offsets.py [--checkpoint PATH] [--folder DIR] --out docs/deepfill-attention.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

#: The Middlebury colour wheel's segments: red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red.
SEGMENTS = (15, 6, 4, 11, 13, 6)


def colour_wheel() -> np.ndarray:
    """(55, 3) float RGB in [0, 1] around the wheel (Baker et al., "A Database and Evaluation Methodology for Optical Flow")."""
    ramps = []
    for index, length in enumerate(SEGMENTS):
        rising = np.arange(length) / length
        start = np.zeros((length, 3))
        lead, trail = index // 2, (index // 2 + 1) % 3
        if index % 2 == 0:  # full lead channel, trail rising
            start[:, lead], start[:, trail] = 1.0, rising
        else:  # full trail channel, lead falling
            start[:, trail], start[:, lead] = 1.0, 1.0 - rising
        ramps.append(start)
    return np.concatenate(ramps)


def flow_colours(dy: np.ndarray, dx: np.ndarray, max_radius: float | None = None) -> np.ndarray:
    """Offsets (H, W) each -> (H, W, 3) uint8 RGB: hue from the direction, saturation from the length."""
    wheel = colour_wheel()
    radius = np.hypot(dx, dy)
    scale = max_radius or max(float(radius.max()), 1.0)
    angle = np.arctan2(-dy, -dx) / np.pi  # in (-1, 1]
    position = (angle + 1) / 2 * (len(wheel) - 1)
    low = np.floor(position).astype(int)
    high = (low + 1) % len(wheel)
    fraction = (position - low)[..., None]
    colour = (1 - fraction) * wheel[low] + fraction * wheel[high]
    strength = np.clip(radius / scale, 0, 1)[..., None]
    return np.round(255 * (1 - strength * (1 - colour))).astype(np.uint8)


def legend(size: int) -> np.ndarray:
    """The colour wheel as a picture: the colour of each offset from the centre."""
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    picture = flow_colours(y, x, max_radius=1.0)
    picture[np.hypot(x, y) > 1] = 255
    return picture


@click.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="[default: the shipped deepfill weights]")
@click.option("--folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Photo + *_mask.png pairs [default: ../shared/data/samples/ldm-inpainting-examples].")
@click.option("--limit", default=4, show_default=True, type=int, help="Photos (rows).")
@click.option("--scale", default=0.5, show_default=True, type=float, help="Scale of the written picture.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(checkpoint: Path | None, folder: Path | None, limit: int, scale: float, out: Path) -> None:
    import cv2
    import torch

    from restore.data.images import read_image
    from restore.models.registry import get_method, load_inpainter
    from restore.paths import shared_data_dir

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # a sibling script: its photo pairs and labels
    from object_removal import _label, _pairs

    folder = folder or shared_data_dir() / "samples" / "ldm-inpainting-examples"
    inpainter = load_inpainter("deepfill", checkpoint or get_method("deepfill").shipped_checkpoint, "cpu")
    rows = []
    for name, photo_path, mask_path in _pairs(folder)[:limit]:
        photo = read_image(photo_path)[..., :3]
        hole = read_image(mask_path)
        hole = (hole if hole.ndim == 2 else hole[..., 0]) > 127
        image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
        mask = torch.from_numpy(hole)[None, None].float()
        offsets = inpainter.forward(image, mask)["offsets"][0].float().numpy()
        restored = (inpainter.inpaint(image, mask)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        colours = flow_colours(offsets[0], offsets[1])
        colours = cv2.resize(colours, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
        colours[~hole] = (np.asarray(colours[~hole], np.float32) * 0.25 + 0.75 * 255).astype(np.uint8)  # background faded
        masked = np.where(hole[..., None], np.uint8(255), photo)
        wheel = np.full_like(photo, 255)
        side = min(photo.shape[:2]) // 2
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        wheel[top : top + side, left : left + side] = legend(side)
        rows.append(np.concatenate([_label(masked, f"{name}: masked"), _label(restored, "DeepFill"),
                                    _label(colours, "attention offsets (hole)"), _label(wheel, "offset colour")], axis=1))
    picture = np.concatenate(rows, axis=0)
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
