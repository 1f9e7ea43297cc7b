"""`colorfusion.backbones`: the backbone table, the weights argument, feature taps, preprocessing."""

import pytest

from colorfusion import backbones


@pytest.fixture
def no_kaggle(tmp_path, monkeypatch):
    """Keras cache in tmp."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


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
