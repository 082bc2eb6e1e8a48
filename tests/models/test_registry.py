"""The method record: the only list of methods, read lazily."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from restore.models.registry import (
    METHODS,
    Method,
    build,
    get_method,
    register,
    strategy_help,
    trainable_methods,
)


def test_records_name_their_code_and_build_configs() -> None:
    csa = get_method("csa")
    assert csa.trainable and csa.needs_weights and csa.native_size == 256 and csa.default_strategy == "subsample"
    assert csa.ship_modules == ("generator",) and csa.piece_size == 256
    config = build("csa", width=8)
    assert config.width == 8 and config == csa.config_class()(width=8)
    with pytest.raises(ValueError, match="unknown CSAConfig keys: colour"):
        build("csa", colour=1)
    with pytest.raises(KeyError, match="unknown method 'deepfillv9'; known: csa, deepfill, glcic, deepgin, wgan, telea, ns, fsr, fsr-best, shiftmap"):
        build("deepfillv9")
    telea = get_method("telea")
    assert not telea.trainable and telea.native_size is None and telea.piece_size == 256 and telea.default_strategy == "whole"
    assert trainable_methods() == ["csa", "deepfill", "glcic", "deepgin", "wgan"] and "subsample for csa, glcic, deepgin" in strategy_help()
    assert "whole for deepfill, wgan, telea, ns" in strategy_help()


def test_a_records_loader_is_picklable_for_dask_workers() -> None:
    for method in METHODS.values():
        loader = pickle.loads(pickle.dumps(method.loader))
        assert callable(loader)
    assert pickle.loads(pickle.dumps(get_method("telea").loader))(None, "cpu").name == "telea"


def test_records_are_checked_and_registration_needs_replace(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown default strategy"):
        Method("x", "x", load="a:b", default_strategy="zoom")
    with pytest.raises(ValueError, match="needs a network or a load function"):
        Method("x", "x")
    with pytest.raises(ValueError, match="needs a config class"):
        Method("x", "x", load="a:b", trainer="a:T")
    monkeypatch.setattr("restore.models.registry.METHODS", dict(METHODS))
    from restore.models import registry

    with pytest.raises(ValueError, match="registered already"):
        register(Method("telea", "again", load="a:b"))
    register(Method("telea", "again", load="restore.models.classical:load_telea"), replace=True)
    assert registry.METHODS["telea"].summary == "again"


def test_the_registry_imports_no_torch() -> None:
    code = "import sys; import restore.models.registry as r; r.strategy_help(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_checkpoints_by_file_or_by_shipped_name(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from restore.models import registry

    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    with pytest.raises(registry.MissingWeightsError, match="no shipped checkpoint"):
        registry.resolve_checkpoint("csa", None)
    (tmp_path / "weights" / "csa-psnr.pt").write_bytes(b"x")
    with pytest.raises(registry.MissingWeightsError, match="pass --checkpoint csa-psnr \\(shipped\\) or train one"):
        registry.resolve_checkpoint("csa", None)
    for name in ("csa.pt", "csa-psnr.pt"):
        (tmp_path / "weights" / name).write_bytes(b"x")
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"x")
    assert registry.resolve_checkpoint("csa", None) == tmp_path / "weights" / "csa.pt"
    assert registry.resolve_checkpoint("csa", mine) == mine
    assert registry.resolve_checkpoint("csa", "csa-psnr") == registry.resolve_checkpoint("csa", "csa-psnr.pt") == tmp_path / "weights" / "csa-psnr.pt"
    assert get_method("csa").shipped_variants == [tmp_path / "weights" / "csa-psnr.pt"]
    with pytest.raises(registry.MissingWeightsError, match=r"csa-sharp: no such file, nor a shipped weights file \(shipped: csa, csa-psnr\)"):
        registry.resolve_checkpoint("csa", "csa-sharp")
    assert registry.resolve_checkpoint("telea", "anything") is None


def test_default_blend_is_glcics_and_wgans_post_processing_and_needs_a_raw_output():
    from restore.models.registry import BLEND_MODES, Method, blend_help

    assert get_method("glcic").default_blend == "poisson" and get_method("wgan").default_blend == "poisson"
    assert all(get_method(name).default_blend == "none" for name in ("csa", "deepfill", "deepgin", "telea", "fsr"))
    assert blend_help() == "poisson for glcic, wgan, none for the others" and BLEND_MODES == ("none", "poisson")
    with pytest.raises(ValueError, match="default blend"):
        Method("x", "x", load="restore.models.classical:load_telea", default_blend="poisson")
    assert Method("x", "x", load="restore.models.wgan.inpainter:load_wgan", raw_output=True, default_blend="poisson").blendable


def test_inference_settings_need_a_config_and_smoke_settings_must_be_among_them():
    from restore.models.registry import Method

    with pytest.raises(ValueError, match="need a config"):
        Method("x", "x", load="restore.models.classical:load_telea", inference_settings=("steps",))
    with pytest.raises(ValueError, match="smoke_inference"):
        Method("x", "x", config="restore.models.wgan.config:WGANConfig", load="restore.models.wgan.inpainter:load_wgan",
               inference_settings=("restarts",), smoke_inference={"search_steps": 2})
    with pytest.raises(ValueError, match="default blend"):
        Method("x", "x", network="restore.models.glcic.networks:CompletionNetwork", default_blend="seamless")
