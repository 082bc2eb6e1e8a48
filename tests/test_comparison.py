"""Labels of restored archives and whether one was restored from another (restore.comparison)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from restore.comparison import (
    ComparisonError,
    default_label,
    labels_for,
    mask_differences,
    restored_from,
)


def _archive(name: str, kind: str = "restored", **attrs) -> SimpleNamespace:
    return SimpleNamespace(path=Path("/data") / name, kind=kind, attrs=attrs)


@pytest.mark.parametrize(("attrs", "label"), [
    ({"method": "telea"}, "telea"),
    ({"method": "csa", "checkpoint": "/pkg/restore/weights/csa.pt"}, "csa"),
    ({"method": "csa", "checkpoint": "/pkg/restore/weights/csa-psnr.pt"}, "csa (csa-psnr)"),
    ({"method": "csa", "checkpoint": "runs/a/last.pt", "ensemble": 8}, "csa (last) ×8"),
    ({"method": "glcic", "blend": "poisson", "ensemble": 1}, "glcic +poisson"),
    ({}, "photos.restored"),
])
def test_default_labels(attrs: dict, label: str) -> None:
    assert default_label(_archive("photos.restored.zarr", **attrs)) == label


def test_given_labels_are_stripped_and_checked() -> None:
    archives = [_archive("a.zarr", method="ns"), _archive("b.zarr", method="ns")]
    assert labels_for(archives, [" NS ", "NS 2"]) == ["NS", "NS 2"]
    assert labels_for(archives) == ["ns [a.zarr]", "ns [b.zarr]"]
    with pytest.raises(ComparisonError, match="must not be empty") as error:
        labels_for(archives, ["x", " "])
    assert error.value.option == "--label"


def test_restored_from_reads_paths_then_photos() -> None:
    source = _archive("in.zarr", kind="images", source_dir="/photos", source_files={"a": "a.png"})
    assert restored_from(_archive("o.zarr", input_archive="/data/in.zarr"), source) is True
    moved = _archive("o.zarr", input_archive="/old/in.zarr", source_dir="/photos", source_files={"a": "a.png"})
    assert restored_from(moved, source) is True
    other = _archive("o.zarr", input_archive="/old/in.zarr", source_dir="/other", source_files={"a": "a.png"})
    assert restored_from(other, source) is False
    assert restored_from(_archive("o.zarr"), source) is None  # written by another tool: cannot tell
    sibling = _archive("p.zarr", input_archive="/data/in.zarr")
    assert restored_from(sibling, _archive("q.zarr", input_archive="/data/in.zarr")) is True


def test_mask_differences_name_each_option_that_differs(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    recorded = _archive("o.zarr", mask_options={"path": str(masks.resolve()), "resize": False, "dilate": 3})
    assert mask_differences(recorded, masks, resize=False, dilate=3) is None
    line = mask_differences(recorded, tmp_path / "other", resize=True, dilate=0)
    assert f"--masks {masks.resolve()}" in line and "--dilate 3 (eval: 0)" in line and "--resize-masks off (eval: on)" in line
    assert "\n" not in line
    assert mask_differences(_archive("o.zarr"), masks, resize=False, dilate=0) is None  # records none: cannot tell
