"""``restore eval``: metrics per bucket against direct computation, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from restore.cli import main
from restore.data.archive import open_archive
from restore.data.images import write_image
from restore.data.output_archive import OutputArchive
from restore.metrics import image_metrics
from restore.models.classical import OpenCVInpainter


def _holes(size: int = 40) -> dict[str, np.ndarray]:
    holes = {}
    for i, fraction in enumerate((0.15, 0.25, 0.45)):
        hole = np.zeros((size, size), bool)
        hole[: int(round(fraction * size)), :] = True
        holes[f"img{i}"] = hole
    return holes


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    ramp = np.add.outer(np.arange(40), np.arange(40)).astype(np.float64) * 3
    for key, hole in _holes().items():
        image = np.clip(np.stack([ramp, ramp[::-1], 255 - ramp], -1) + rng.normal(0, 5, (40, 40, 3)), 0, 255).astype(np.uint8)
        write_image(photos / f"{key}.png", image)
        write_image(masks / f"{key}.png", hole.astype(np.uint8)[..., None] * 255)
    assert CliRunner().invoke(main, ["ingest", str(photos), str(tmp_path / "in.zarr")]).exit_code == 0
    source = open_archive(tmp_path / "in.zarr")
    telea = OpenCVInpainter("telea")
    with OutputArchive.create(tmp_path / "out.zarr", source, {"method": "telea"}) as out:
        for key, hole in _holes().items():
            out.write(key, telea.inpaint_array(source.read(key), hole))
    return {"root": tmp_path, "in": tmp_path / "in.zarr", "out": tmp_path / "out.zarr", "masks": masks}


def _eval(setup: dict[str, Path], *extra: str):
    return CliRunner().invoke(main, ["eval", "--pred", str(setup["out"]), "--target", str(setup["in"]), "--masks", str(setup["masks"]), *extra])


def test_metrics_per_bucket_match_direct_computation(setup: dict[str, Path]) -> None:
    report = setup["root"] / "report"
    result = _eval(setup, "--json", str(setup["root"] / "m.json"), "--report", str(report))
    assert result.exit_code == 0, result.output
    data = json.loads((setup["root"] / "m.json").read_text())
    assert {name: m["count"] for name, m in data["buckets"].items()} == {"10-20%": 1, "20-30%": 1, "40-50%": 1}
    assert data["known_pixels_changed"] == [] and data["method"] == "telea"
    assert data["ensemble"] == 1  # an output that records no ensemble was restored with one view
    source, restored = open_archive(setup["in"]), open_archive(setup["out"])
    for row in data["images"]:
        expected = image_metrics(restored.read(row["key"]) / 255.0, source.read(row["key"]) / 255.0)
        for name in ("l1", "l2", "psnr", "ssim"):
            assert row[name] == pytest.approx(expected[name])
    assert "| 40-50% | 1 |" in result.output and "| all | 3 |" in result.output
    # the metrics files as before, and the HTML report beside them (tests/report/)
    assert {p.name for p in report.iterdir()} == {"metrics.json", "metrics.md", "per_image.csv", "index.html", "data.js", "assets", "images"}


def test_changed_known_pixels_are_reported(setup: dict[str, Path]) -> None:
    source = open_archive(setup["in"])
    image = source.read("img0")
    image[-1, -1] ^= 1  # a known pixel (the hole is at the top)
    with OutputArchive.open(setup["out"], source) as out:
        out.write("img0", image)
    result = _eval(setup)
    assert result.exit_code == 0
    assert "known pixels differ from the target in 1 image(s): img0" in result.output


def test_missing_mask_names_the_key(setup: dict[str, Path]) -> None:
    (setup["masks"] / "img1.png").unlink()
    result = _eval(setup)
    assert result.exit_code == 2 and "img1" in result.output and "--masks" in result.output


def test_incomplete_prediction_is_refused(setup: dict[str, Path]) -> None:
    source = open_archive(setup["in"])
    OutputArchive.create(setup["root"] / "partial.zarr", source).close()
    result = CliRunner().invoke(main, ["eval", "--pred", str(setup["root"] / "partial.zarr"), "--target", str(setup["in"]), "--masks", str(setup["masks"])])
    assert result.exit_code == 2 and "incomplete: 3 image(s)" in result.output


def test_a_folder_that_is_not_an_archive_is_a_usage_error_naming_its_option(setup: dict[str, Path], tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for option, args in (("--pred", [str(plain), str(setup["in"])]), ("--target", [str(setup["in"]), str(plain)])):
        result = CliRunner().invoke(main, ["eval", "--pred", args[0], "--target", args[1], "--masks", str(setup["masks"])])
        assert result.exit_code == 2 and f"'{option}'" in result.output and "not a zarr v3 archive" in result.output


def test_pred_of_other_images_is_refused(setup: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "zzz.png", np.zeros((40, 40, 3), np.uint8))
    assert CliRunner().invoke(main, ["ingest", str(other), str(tmp_path / "other.zarr")]).exit_code == 0
    result = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "other.zarr"), "--target", str(setup["in"]), "--masks", str(setup["masks"])])
    assert result.exit_code == 2 and "does not hold the images" in result.output


def test_lpips_and_fid_from_user_weight_files(setup: dict[str, Path]) -> None:
    """The options load user-supplied files (random weights in the real formats here)."""
    import torch

    from restore.nn.vgg import vgg_features
    from restore.perceptual_metrics import FIDInception

    root = setup["root"]
    torch.manual_seed(0)
    vgg = {f"features.{k}": v for k, v in vgg_features(29).state_dict().items()}
    torch.save(vgg, root / "vgg16.pth")
    channels = (64, 128, 256, 512, 512)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(channels)}, root / "lpips_vgg.pth")
    inception = FIDInception()
    state = {k: v for k, v in inception.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    torch.save(state, root / "inception.pth")
    result = _eval(setup, "--lpips-weights", str(root / "lpips_vgg.pth"), "--vgg-weights", str(root / "vgg16.pth"),
                   "--fid-weights", str(root / "inception.pth"), "--json", str(root / "m.json"), "--report", str(root / "report"))
    assert result.exit_code == 0, result.output
    data = json.loads((root / "m.json").read_text())
    assert all(row["lpips"] > 0 for row in data["images"]) and "lpips" in data["overall"]
    assert "lpips" in (root / "report" / "per_image.csv").read_text().splitlines()[0].split(",")
    assert np.isfinite(data["fid"]) and "FID (3 images)" in result.output


def test_lpips_without_backbone_is_a_usage_error(setup: dict[str, Path]) -> None:
    (setup["root"] / "lpips.pth").write_bytes(b"x")
    result = _eval(setup, "--lpips-weights", str(setup["root"] / "lpips.pth"))
    assert result.exit_code == 2 and "--vgg-weights" in result.output


def test_existing_outputs_are_kept_unless_overwrite(setup: dict[str, Path]) -> None:
    previous = setup["root"] / "m.json"
    previous.write_text("an earlier report")
    result = _eval(setup, "--json", str(previous))
    assert result.exit_code == 2 and f"{previous}: exists (--overwrite replaces it)" in result.output and "'--json'" in result.output
    assert previous.read_text() == "an earlier report"
    assert _eval(setup, "--json", str(previous), "--overwrite").exit_code == 0
    assert json.loads(previous.read_text())["overall"]["count"] == 3


def test_a_perfect_restoration_is_strict_json(setup: dict[str, Path]) -> None:
    source = open_archive(setup["in"])
    with OutputArchive.open(setup["out"], source) as out:
        out.write("img0", source.read("img0"))  # PSNR inf
    result = _eval(setup, "--json", str(setup["root"] / "m.json"))
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads((setup["root"] / "m.json").read_text(), parse_constant=_reject)["images"]}
    assert rows["img0"]["psnr"] is None and rows["img0"]["l1"] == 0


def _reject(constant: str) -> None:
    raise AssertionError(f"non-standard JSON constant {constant}")


def test_pred_with_other_channels_names_the_key(setup: dict[str, Path], tmp_path: Path) -> None:
    grey = tmp_path / "grey"
    grey.mkdir()
    for key in _holes():
        write_image(grey / f"{key}.png", np.zeros((40, 40, 1), np.uint8))
    assert CliRunner().invoke(main, ["ingest", str(grey), str(tmp_path / "grey.zarr")]).exit_code == 0
    result = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "grey.zarr"), "--target", str(setup["in"]), "--masks", str(setup["masks"])])
    assert result.exit_code == 2 and "image 'img0'" in result.output and "--pred" in result.output


def test_images_under_11_px_a_side_are_scored(tmp_path: Path) -> None:
    """SSIM's 11 px window does not fit a 3x700 or a 1x1 image: they are scored with a smaller one."""
    rng = np.random.default_rng(3)
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    thin = np.clip(np.linspace(0, 255, 700)[None, :, None] + rng.normal(0, 6, (3, 700, 3)), 0, 255).astype(np.uint8)
    holes = {"thin": np.zeros((3, 700), bool), "dot": np.ones((1, 1), bool)}
    holes["thin"][1, 300:380] = True
    for key, image in (("thin", thin), ("dot", np.array([[[200, 40, 90]]], np.uint8))):
        write_image(photos / f"{key}.png", image)
        write_image(masks / f"{key}.png", holes[key].astype(np.uint8)[..., None] * 255)
    assert CliRunner().invoke(main, ["ingest", str(photos), str(tmp_path / "in.zarr")]).exit_code == 0
    source = open_archive(tmp_path / "in.zarr")
    restored = {"thin": OpenCVInpainter("telea").inpaint_array(thin, holes["thin"]), "dot": np.array([[[180, 60, 90]]], np.uint8)}
    with OutputArchive.create(tmp_path / "out.zarr", source, {"method": "telea"}) as out:
        for key, image in restored.items():
            out.write(key, image)
    result = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "out.zarr"), "--target", str(tmp_path / "in.zarr"),
                                       "--masks", str(masks), "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads((tmp_path / "m.json").read_text())["images"]}
    for key, image in restored.items():
        assert rows[key]["ssim"] == pytest.approx(image_metrics(image / 255.0, source.read(key) / 255.0)["ssim"])
    assert 0.5 < rows["thin"]["ssim"] < 1
    x, y, c1 = np.array([180, 60, 90]) / 255, np.array([200, 40, 90]) / 255, 0.01**2
    assert rows["dot"]["ssim"] == pytest.approx(float(np.mean((2 * x * y + c1) / (x * x + y * y + c1))))
    assert "| all | 2 |" in result.output


def test_masks_other_than_the_restorations_are_warned_about(setup: dict[str, Path]) -> None:
    out = setup["root"] / "batch.zarr"
    batch = ["batch", "--input", str(setup["in"]), "--masks", str(setup["masks"]), "--output", str(out), "--method", "telea"]
    assert CliRunner().invoke(main, batch).exit_code == 0
    evaluate = ["eval", "--pred", str(out), "--target", str(setup["in"]), "--masks", str(setup["masks"])]
    same = CliRunner().invoke(main, evaluate)
    assert same.exit_code == 0 and "warning" not in same.output
    grown = CliRunner().invoke(main, [*evaluate, "--dilate", "2"])
    assert grown.exit_code == 0 and f"warning: {out} was restored with --dilate 0 (eval: 2)" in grown.output
