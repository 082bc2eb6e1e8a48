"""The one VGG feature extractor: layer names, taps, architectures and weight files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restore.nn.vgg import VGGFeatures, VGGWeightsError, layer_indices, vgg_features


def test_layer_names_follow_torchvision_indices() -> None:
    vgg16, vgg19 = layer_indices("vgg16"), layer_indices("vgg19")
    assert (vgg16["relu1_2"], vgg16["relu2_2"], vgg16["relu3_3"], vgg16["relu4_3"], vgg16["relu5_3"]) == (3, 8, 15, 22, 29)
    assert (vgg19["conv3_1"], vgg19["relu4_4"], vgg19["relu5_4"], vgg19["pool5"]) == (10, 26, 35, 36)
    with pytest.raises(ValueError, match="unknown VGG"):
        layer_indices("vgg11")


def test_taps_come_back_in_the_order_asked_with_their_shapes() -> None:
    vgg = VGGFeatures("random", "vgg19", ("relu4_1", "conv1_1", "relu2_1"))
    outputs = vgg(torch.rand(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [(1, 512, 4, 4), (1, 64, 32, 32), (1, 128, 16, 16)]
    assert float(outputs[1].min()) < 0 <= float(outputs[2].min())  # a conv output is pre-ReLU
    assert len(vgg.features) == layer_indices("vgg19")["relu4_1"] + 1  # stops at the deepest tap
    assert vgg.source == "random" and not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(ValueError, match="unknown vgg16 layers"):
        VGGFeatures("random", taps=("relu9_9",))


def test_a_torchvision_vgg19_file_loads_and_is_recorded(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = vgg_features(36, "vgg19")
    torch.save({f"features.{k}": v for k, v in reference.state_dict().items()} | {"classifier.0.weight": torch.zeros(2)},
               tmp_path / "vgg19.pth")
    vgg = VGGFeatures(tmp_path / "vgg19.pth", "vgg19", ("relu5_4",), input_norm="none")
    image = torch.rand(1, 3, 32, 32)
    assert torch.allclose(vgg(image)[0], reference[:36](image))
    assert vgg.source == str(tmp_path / "vgg19.pth")
    with pytest.raises(VGGWeightsError, match="is this a torchvision vgg16 file"):
        VGGFeatures(tmp_path / "vgg19.pth", "vgg16", ("relu5_3",))  # VGG-19's conv layers sit elsewhere
