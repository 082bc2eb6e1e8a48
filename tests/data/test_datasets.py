"""Training photo listing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from restore.data.datasets import list_image_files, load_images
from restore.data.images import write_image


def test_hidden_files_and_folders_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "trip").mkdir()
    (tmp_path / ".thumbnails").mkdir()
    write_image(tmp_path / "trip" / "b.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "a.png", np.full((8, 8, 1), 7, np.uint8))
    write_image(tmp_path / ".thumbnails" / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "._a.png").write_bytes(b"AppleDouble metadata, not a PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.relative_to(tmp_path).as_posix() for p in list_image_files(tmp_path)] == ["a.png", "trip/b.png"]
    names, photos = load_images(tmp_path)
    assert names == ["a.png", "trip/b.png"] and photos[0].shape == (8, 8, 3) and photos[0][0, 0, 2] == 7
