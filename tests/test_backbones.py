"""`colorfusion.backbones`: the backbone table, the weights argument, feature taps, preprocessing."""

import numpy as np
import pytest

from colorfusion import backbones


def test_choose_weights_keeps_imagenet_only_where_it_can_be_had(tmp_path, no_kaggle, monkeypatch):
    monkeypatch.setattr(backbones, "_reachable", lambda host, timeout: False)
    lines = []
    assert backbones.choose_weights("imagenet", "mobilenet", log=lines.append) is None
    assert "cannot be downloaded" in lines[0] and "weights=None" in lines[0]
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / "mobilenet_1_0_224_tf.h5").write_bytes(b"")
    assert backbones.choose_weights("imagenet", "mobilenet") == "imagenet"  # cached by Keras
    assert backbones.choose_weights("imagenet", "inception_resnet_v2", log=lambda line: None) is None
    monkeypatch.setattr(backbones, "_reachable", lambda host, timeout: True)
    assert backbones.choose_weights("imagenet", "inception_resnet_v2") == "imagenet"


def test_choose_weights_passes_other_values_through(tmp_path):
    assert backbones.choose_weights(None) is None and backbones.choose_weights("none") is None
    weights = tmp_path / "my.h5"
    weights.write_bytes(b"")
    assert backbones.choose_weights(str(weights)) == str(weights.resolve())


# === Names and the weights argument ===


def test_names_are_found_in_any_spelling_and_unknown_ones_are_refused():
    assert backbones.canonical_name("MobileNetV2") == "mobilenet_v2"
    assert backbones.canonical_name("efficientnet-b0") == "efficientnet_b0"
    assert backbones.canonical_name("VGG16") == "vgg16"
    with pytest.raises(ValueError, match="Unknown backbone"):
        backbones.canonical_name("alexnet")


def test_resolve_weights_reads_imagenet_none_and_files(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"")
    assert backbones.resolve_weights("imagenet") == "imagenet"
    assert backbones.resolve_weights(None) is None and backbones.resolve_weights("none") is None
    assert backbones.resolve_weights("None") is None
    assert backbones.resolve_weights(weights) == str(weights.resolve())
    with pytest.raises(ValueError, match="Received: weights="):
        backbones.resolve_weights(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="Received: weights="):
        backbones.resolve_weights("ImageNet-21k")


def test_keras_weight_file_names_set_mobilenet_alpha_and_size(tmp_path):
    assert backbones.kwargs_from_weights_file("mobilenet", "w/mobilenet_2_5_224_tf_no_top.h5") == ({"alpha": 0.25}, 224)
    assert backbones.kwargs_from_weights_file("mobilenet", "mobilenet_7_5_160_tf.h5") == ({"alpha": 0.75}, 160)
    v2 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert backbones.kwargs_from_weights_file("mobilenet_v2", v2) == ({"alpha": 0.35}, 96)
    assert backbones.kwargs_from_weights_file("resnet50", "resnet50_weights.h5") == ({}, None)
    assert backbones.kwargs_from_weights_file("mobilenet", None) == ({}, None)
    assert backbones.is_no_top_file("a/mobilenet_2_5_224_tf_no_top.h5") and not backbones.is_no_top_file(None)


# === Encoders: feature taps and the gray input ===

LIGHT = ["mobilenet", "mobilenet_v2", "efficientnet_b0", "efficientnet_lite0", "efficientnet_lite2"]
HEAVY = ["vgg16", "resnet50", "resnet50_v2", "densenet121", "convnext_tiny"]


@pytest.mark.parametrize("name", LIGHT + [pytest.param(n, marks=pytest.mark.slow) for n in HEAVY])
def test_every_encoder_backbone_taps_features_at_its_strides(name):
    size = 64
    extractor = backbones.feature_extractor(name, size, weights=None)
    taps = backbones.BACKBONES[name].taps
    assert sorted(int(k) for k in extractor.output) == sorted(taps)
    for stride, tensor in extractor.output.items():
        assert tuple(tensor.shape[1:3]) == (size // int(stride), size // int(stride)), (name, stride)
    assert extractor.name == "encoder_backbone"


def test_feature_extractor_refuses_embedding_only_backbones_and_bad_sizes():
    with pytest.raises(ValueError, match="cannot serve as the encoder"):
        backbones.feature_extractor("inception_resnet_v2", 64, weights=None)
    with pytest.raises(ValueError, match="multiple of 32"):
        backbones.feature_extractor("mobilenet", 48, weights=None)


@pytest.mark.parametrize("name", ["mobilenet", "vgg16", "densenet121", "efficientnet_b0",  # tf, caffe, torch, none
                                  "efficientnet_lite0"])  # (x - 127) / 128
def test_gray_to_backbone_is_the_semantic_branch_gray_path(name):
    from keras import ops

    from colorfusion import color
    from colorfusion.model import GrayToBackbone

    lightness = np.linspace(0, 100, 101, dtype=np.float32).reshape(1, 1, 101, 1)
    expected = backbones.preprocess_input(name, color.gray_rgb_from_l(lightness) * np.float32(255.0))
    got = ops.convert_to_numpy(GrayToBackbone(name)(color.l_to_model(lightness)))
    scale = np.ptp(expected) / 255.0  # one gray level, in the backbone's units
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=0.6 * scale)
    layer = GrayToBackbone.from_config(GrayToBackbone(name, name="g").get_config())
    assert layer.backbone == name and layer.name == "g"
