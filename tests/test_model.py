"""Tests for colorfusion.model (the network and its layers): shapes, decoding, saving, memorisation."""

import json

import cv2
import keras
import numpy as np
import pytest
import skimage.data
from keras import ops

from colorfusion import color
from colorfusion import model as model_lib
from colorfusion.bins import ABBins
from colorfusion.losses import get_loss
from colorfusion.model import BinSoftmax, DecodeAB, build_colorizer, inference_model, model_bins, model_info


@pytest.fixture(scope="module")
def bins():
    return ABBins.default()


def _inputs(size, embedding_dim, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    x = {"L": rng.uniform(-1, 1, (batch, size, size, 1)).astype(np.float32)}
    if embedding_dim:
        x["embedding"] = rng.normal(size=(batch, embedding_dim)).astype(np.float32)
    return x


def _expected_params(head, embedding_dim, num_bins, width):
    """Parameter count of the architecture as the issue specifies it."""
    f = lambda n: max(1, round(n * width))  # noqa: E731
    convs, cin = [], 1  # (kernel, in, out)
    for n in (64, 128, 256):
        convs += [(3, cin, f(n)), (3, f(n), f(n))]
        cin = f(n)
    convs += [(3, f(256), f(512)), (3, f(512), f(256))]
    if embedding_dim:
        convs.append((1, f(256) + embedding_dim, f(256)))
    convs += [(3, f(256), f(128)), (3, f(128), f(64)), (3, f(64), f(64))]
    if head == "classification":
        convs.append((1, f(64), num_bins))
    else:
        convs += [(3, f(64), f(32)), (3, f(32), f(16)), (3, f(16), 2)]
    return sum((k * k * i + 1) * o for k, i, o in convs)


# === Shapes, ranges, architecture ===


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("embedding_dim", [None, 12])
@pytest.mark.parametrize("head", ["regression", "classification"])
def test_output_shapes_and_ranges(head, embedding_dim, size, bins):
    model = build_colorizer(size, head=head, embedding_dim=embedding_dim, width=0.125, bins=bins)
    x = _inputs(size, embedding_dim)
    out = ops.convert_to_numpy(model(x))
    if head == "regression":
        assert out.shape == (2, size, size, 2)
        assert np.all(np.abs(out) <= 1.0)
    else:
        assert out.shape == (2, size // 4, size // 4, bins.num_bins)
        assert np.all(out >= 0)
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    ab = ops.convert_to_numpy(inference_model(model)(x))
    assert ab.shape == (2, size, size, 2) and ab.dtype == np.float32
    assert np.all(np.abs(ab) <= 1.0)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_parameter_count_follows_the_specified_architecture(head, bins):
    model = build_colorizer(256, head=head, embedding_dim=1000, width=1.0, bins=bins)
    assert model.count_params() == _expected_params(head, 1000, bins.num_bins, 1.0)
    small = build_colorizer(64, head=head, embedding_dim=None, width=0.25, bins=bins)
    assert small.count_params() == _expected_params(head, None, bins.num_bins, 0.25)


def test_encoder_ends_at_an_eighth_with_256_channels_and_fuses_the_embedding():
    model = build_colorizer(64, embedding_dim=10)
    assert tuple(model.get_layer("encoder_conv8").output.shape) == (None, 8, 8, 256)
    assert tuple(model.get_layer("fusion_concat").output.shape) == (None, 8, 8, 266)
    assert tuple(model.get_layer("fusion_conv").output.shape) == (None, 8, 8, 256)
    assert "fusion_conv" not in [layer.name for layer in build_colorizer(64, embedding_dim=None).layers]


def test_inputs_are_named_L_and_embedding():
    assert [t.name for t in build_colorizer(64, embedding_dim=5, width=0.125).inputs] == ["L", "embedding"]
    assert [t.name for t in build_colorizer(64, embedding_dim=None, width=0.125).inputs] == ["L"]


def test_the_embedding_changes_the_output():
    model = build_colorizer(64, embedding_dim=4, width=0.125)
    x = _inputs(64, 4, batch=1)
    other = dict(x, embedding=x["embedding"] + 3.0)
    assert not np.allclose(ops.convert_to_numpy(model(x)), ops.convert_to_numpy(model(other)))


def test_head_layers_stay_float32_under_mixed_precision(bins):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        for head in ("regression", "classification"):
            model = build_colorizer(64, head=head, embedding_dim=None, width=0.125, bins=bins)
            assert model.get_layer("encoder_conv8").compute_dtype == "float16"
            assert model.outputs[0].dtype == "float32"
            assert inference_model(model).outputs[0].dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 60}, "image_size"),
        ({"head": "segmentation"}, "head"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"width": 0}, "width"),
        ({"head": "classification", "num_bins": 1}, "num_bins"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_colorizer(**{"image_size": 64, "width": 0.125, **kwargs})


def test_num_bins_must_match_the_given_bins(bins):
    with pytest.raises(ValueError, match="num_bins"):
        build_colorizer(64, head="classification", num_bins=100, bins=bins)
    assert model_info(build_colorizer(64, head="classification", num_bins=50, width=0.125))["num_bins"] == 50


# === model_info and inference_model ===


@pytest.mark.parametrize("head", ["regression", "classification"])
@pytest.mark.parametrize("embedding_dim", [None, 7])
def test_model_info_describes_raw_and_inference_models(head, embedding_dim, bins):
    model = build_colorizer(64, head=head, embedding_dim=embedding_dim, width=0.125, bins=bins)
    for m in (model, inference_model(model)):
        info = model_info(m)
        assert (info["image_size"], info["head"], info["embedding_dim"]) == (64, head, embedding_dim)
        assert info["decoded"] == (m is not model or head == "regression")
        assert (info["bins"] is None) == (head == "regression")


def test_inference_model_returns_regression_and_inference_models_unchanged(bins):
    regression = build_colorizer(64, embedding_dim=None, width=0.125)
    assert inference_model(regression) is regression
    decoded = inference_model(build_colorizer(64, head="classification", embedding_dim=None, width=0.125, bins=bins))
    assert inference_model(decoded, decode="mode") is decoded
    with pytest.raises(ValueError, match="decode"):
        inference_model(regression, decode="median")


def test_inference_model_decodes_then_upsamples_bilinear_x4(bins):
    model = build_colorizer(64, head="classification", embedding_dim=None, width=0.125, bins=bins)
    x = _inputs(64, None, batch=1)
    probs = ops.convert_to_numpy(model(x))[0]
    mode_ab = bins.centers[probs.argmax(-1)] / 128.0
    expected = cv2.resize(mode_ab, (64, 64), interpolation=cv2.INTER_LINEAR)
    got = ops.convert_to_numpy(inference_model(model, decode="mode")(x))[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


# === Decoding ===


def _random_probs(num_bins, n=16, seed=0):
    logits = np.random.default_rng(seed).normal(scale=2.0, size=(n, num_bins))
    return (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)


def _decode(centers, probs, method, temperature=0.38):
    return ops.convert_to_numpy(DecodeAB(centers, method, temperature)(probs))


@pytest.mark.parametrize("method", ["expectation", "annealed_mean", "mode"])
def test_a_one_hot_distribution_decodes_to_its_bin_centre(method, bins):
    one_hot = np.eye(bins.num_bins, dtype=np.float32)
    np.testing.assert_allclose(_decode(bins.centers, one_hot, method) * 128, bins.centers, atol=1e-3)


def test_annealed_mean_at_temperature_one_equals_the_expectation(bins):
    probs = _random_probs(bins.num_bins)
    expected = probs @ bins.centers / 128.0
    np.testing.assert_allclose(_decode(bins.centers, probs, "expectation"), expected, atol=1e-5)
    np.testing.assert_allclose(_decode(bins.centers, probs, "annealed_mean", 1.0), expected, atol=1e-5)


def test_annealed_mean_approaches_the_mode_as_temperature_goes_to_zero(bins):
    probs = _random_probs(bins.num_bins)
    probs[np.arange(len(probs)), np.arange(len(probs)) * 7] = probs.max(-1) + 0.05  # a clear mode per row
    probs /= probs.sum(-1, keepdims=True)
    mode = _decode(bins.centers, probs, "mode")
    np.testing.assert_allclose(mode * 128, bins.centers[probs.argmax(-1)], atol=1e-4)
    gaps = [np.abs(_decode(bins.centers, probs, "annealed_mean", t) - mode).mean() for t in (1.0, 0.38, 0.1, 0.01)]
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 1e-4


def test_decode_rejects_bad_arguments(bins):
    with pytest.raises(ValueError, match="method"):
        DecodeAB(bins.centers, method="median")
    with pytest.raises(ValueError, match="temperature"):
        DecodeAB(bins.centers, temperature=0.0)
    with pytest.raises(ValueError, match="centers"):
        DecodeAB(np.zeros((5, 3)))


# === Config round trips and saving ===


def test_custom_layer_configs_round_trip(bins):
    probs = _random_probs(bins.num_bins)
    decode = DecodeAB(bins.centers, "annealed_mean", 0.2, name="d")
    softmax = BinSoftmax(bins, name="s")
    for layer, x in ((decode, probs), (softmax, np.log(probs))):
        config = json.loads(json.dumps(layer.get_config()))
        restored = layer.__class__.from_config(config)
        assert restored.get_config() == layer.get_config()
        np.testing.assert_allclose(ops.convert_to_numpy(restored(x)), ops.convert_to_numpy(layer(x)), atol=1e-6)
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert isinstance(again, layer.__class__)
    np.testing.assert_array_equal(BinSoftmax.from_config(softmax.get_config()).bins.weights, bins.weights)


def test_bin_softmax_checks_the_number_of_channels(bins):
    with pytest.raises(ValueError, match="channels"):
        BinSoftmax(bins)(np.zeros((1, 4, 4, bins.num_bins + 1), np.float32))


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_saved_models_reload_with_equal_outputs(head, tmp_path):
    bins = ABBins.fit([skimage.data.coffee()[::4, ::4]], num_bins=60)
    model = build_colorizer(64, head=head, embedding_dim=6, width=0.125, bins=bins)
    x = _inputs(64, 6, batch=1, seed=3)
    model.save(tmp_path / "raw.keras")
    loaded = keras.saving.load_model(tmp_path / "raw.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)), atol=1e-6)
    predictor = inference_model(model, decode="annealed_mean", temperature=0.3)
    predictor.save(tmp_path / "inference.keras")
    reloaded = keras.saving.load_model(tmp_path / "inference.keras", compile=False)
    assert inference_model(reloaded) is reloaded
    np.testing.assert_allclose(ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(predictor(x)), atol=1e-6)
    # The bins travel inside the file: decoding the reloaded raw model agrees.
    np.testing.assert_allclose(
        ops.convert_to_numpy(inference_model(loaded, temperature=0.3)(x)), ops.convert_to_numpy(predictor(x)), atol=1e-6
    )
    if head == "classification":
        np.testing.assert_array_equal(model_bins(loaded).centers, bins.centers)
        np.testing.assert_array_equal(model_bins(reloaded).weights, bins.weights)


# === Memorisation ===


def _memorise(head, max_steps=600, check_every=25, target=5.0):
    """Train on one 64x64 photo until the mean ab error is under `target`."""
    keras.utils.set_random_seed(0)
    rgb = cv2.resize(skimage.data.chelsea()[50:250, 100:300], (64, 64), interpolation=cv2.INTER_AREA)
    lab = color.rgb_to_lab(rgb)
    ab = lab[..., 1:]
    x = {"L": color.l_to_model(lab[..., :1])[None],
         "embedding": np.random.default_rng(0).normal(size=(1, 16)).astype(np.float32)}
    y = color.ab_to_model(ab)
    if head == "classification":  # targets at S/4, area-downsampled, as the generator gives them
        y = cv2.resize(y, (16, 16), interpolation=cv2.INTER_AREA)
    bins = ABBins.fit([rgb]) if head == "classification" else None
    model = build_colorizer(64, head=head, embedding_dim=16, width=0.25, bins=bins)
    model.compile(keras.optimizers.Adam(1e-3), loss=get_loss(head, model_bins(model)))
    predictor = inference_model(model)

    def error():
        pred = ops.convert_to_numpy(predictor(x))[0] * color.AB_SCALE
        return float(np.linalg.norm(pred - ab, axis=-1).mean())

    errors = [error()]
    for step in range(check_every, max_steps + 1, check_every):  # noqa: B007 - the last step is reported below
        for _ in range(check_every):
            model.train_on_batch(x, y[None])
        errors.append(error())
        if errors[-1] < target:
            break
    print(f"\nmemorisation {head}: {step} steps, mean ab error {errors[0]:.2f} -> {errors[-1]:.2f}")
    return errors, step


@pytest.mark.slow
@pytest.mark.parametrize("head", ["regression", "classification"])
def test_each_head_memorises_one_photo(head):
    errors, steps = _memorise(head)
    # The photo is colourful (a gray guess is far off), and training gets
    # within 5 ab units of it on average.
    assert float(np.linalg.norm(color.rgb_to_lab(skimage.data.chelsea())[..., 1:], axis=-1).mean()) > 20
    assert errors[-1] < 5.0, errors
    assert errors[-1] < errors[0] / 3


# === Pretrained encoder ===


@pytest.mark.parametrize("head", ["regression", "classification"])
@pytest.mark.parametrize("embedding_dim, global_features", [(None, True), (7, False)])
def test_a_pretrained_encoder_builds_a_unet_with_the_usual_inputs_and_outputs(head, embedding_dim, global_features,
                                                                               bins):
    model = build_colorizer(64, head=head, embedding_dim=embedding_dim, encoder="mobilenet", encoder_weights=None,
                            global_features=global_features, width=0.25, bins=bins)
    x = _inputs(64, embedding_dim)
    out = ops.convert_to_numpy(model(x))
    assert out.shape == ((2, 64, 64, 2) if head == "regression" else (2, 16, 16, bins.num_bins))
    info = model_info(model)
    assert info["encoder"] == "mobilenet" and info["embedding_dim"] == embedding_dim and info["head"] == head
    names = [layer.name for layer in model.layers]
    # Skips at every stride the head needs; the bottleneck fuses at S/32.
    assert "decoder_skip4" in names and "decoder_skip8" in names and "decoder_skip16" in names
    assert ("decoder_skip2" in names) == (head == "regression")
    assert ("global_pool" in names) == global_features and ("fusion_grid" in names) == bool(embedding_dim)
    assert model.get_layer("fusion_concat").output.shape[-1] > 0 and info["image_size"] is None  # any size
    assert ops.convert_to_numpy(inference_model(model)(x)).shape == (2, 64, 64, 2)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_a_pretrained_encoder_model_takes_any_size_and_computes_what_a_fixed_size_one_does(head, bins):
    keras.utils.set_random_seed(3)
    any_size = build_colorizer(64, head=head, embedding_dim=5, encoder="mobilenet", encoder_weights=None,
                               global_features=True, width=0.25, bins=bins)
    fixed = build_colorizer(64, head=head, embedding_dim=5, encoder="mobilenet", encoder_weights=None,
                            global_features=True, width=0.25, bins=bins, any_size=False)
    fixed.set_weights(any_size.get_weights())
    assert model_info(fixed)["image_size"] == 64 and model_info(any_size)["image_size"] is None
    square = _inputs(64, 5)
    np.testing.assert_allclose(ops.convert_to_numpy(any_size(square)), ops.convert_to_numpy(fixed(square)),
                               atol=1e-5)
    # A 64 x 96 photo: the output follows the input's shape (ab at S, or bins at S/4), decoded at full size.
    wide = {"L": np.random.default_rng(0).uniform(-1, 1, (1, 64, 96, 1)).astype(np.float32),
            "embedding": square["embedding"][:1]}
    out = ops.convert_to_numpy(any_size(wide))
    assert out.shape == ((1, 64, 96, 2) if head == "regression" else (1, 16, 24, bins.num_bins))
    assert ops.convert_to_numpy(inference_model(any_size)(wide)).shape == (1, 64, 96, 2)


def test_broadcast_to_grid_repeats_each_vector_over_its_own_feature_map():
    vectors = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    grid = np.zeros((2, 3, 5, 7), np.float32)
    out = ops.convert_to_numpy(model_lib.BroadcastToGrid()([vectors, grid]))
    assert out.shape == (2, 3, 5, 2)
    np.testing.assert_array_equal(out[1, 2, 4], [3.0, 4.0])
    np.testing.assert_array_equal(out[0, 0, 0], [1.0, 2.0])


def test_a_scratch_model_has_no_encoder_and_reports_scratch(bins):
    model = build_colorizer(64, embedding_dim=None, width=0.125)
    assert model_info(model)["encoder"] == "scratch" and model_lib.encoder_layer(model) is None
    assert not model_lib.set_encoder_trainable(model, False)
    with pytest.raises(ValueError, match="encoder"):
        build_colorizer(64, encoder="inception_resnet_v2", encoder_weights=None)


def test_a_frozen_encoder_does_not_train_and_an_unfrozen_one_keeps_its_batchnorm_statistics(bins):
    model = build_colorizer(64, head="regression", embedding_dim=None, encoder="mobilenet", encoder_weights=None,
                            width=0.25)
    encoder = model_lib.encoder_layer(model)
    kernel = encoder.get_layer("conv1").kernel
    bn_mean = encoder.get_layer("conv1_bn").moving_mean
    x = _inputs(64, None, batch=4)
    y = np.random.default_rng(1).uniform(-0.3, 0.3, (4, 64, 64, 2)).astype(np.float32)

    def step():
        before = [ops.convert_to_numpy(v).copy() for v in (kernel, bn_mean)]
        model.compile(keras.optimizers.Adam(1e-2), loss="mse")
        model.train_on_batch(x, y)
        return [not np.allclose(b, ops.convert_to_numpy(v)) for b, v in zip(before, (kernel, bn_mean))]

    assert model_lib.set_encoder_trainable(model, False)
    assert step() == [False, False]  # frozen: nothing in the encoder moves
    model_lib.set_encoder_trainable(model, True)
    assert step() == [True, False]  # fine-tuned: weights move, ImageNet BatchNorm statistics stay


def test_an_encoder_unfrozen_from_a_stride_trains_only_its_upper_blocks():
    model = build_colorizer(64, head="regression", embedding_dim=None, encoder="mobilenet", encoder_weights=None,
                            width=0.25)
    encoder = model_lib.encoder_layer(model)
    # MobileNet's stride-8 features are conv_pw_5_relu: from stride 16 up, the layers after it train.
    lower, upper = encoder.get_layer("conv_pw_5"), encoder.get_layer("conv_dw_6")
    x = _inputs(64, None, batch=4)
    y = np.random.default_rng(1).uniform(-0.3, 0.3, (4, 64, 64, 2)).astype(np.float32)
    before = [ops.convert_to_numpy(layer.kernel).copy() for layer in (lower, upper)]
    assert model_lib.set_encoder_trainable(model, True, from_stride=16)
    model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    model.train_on_batch(x, y)
    moved = [not np.allclose(b, ops.convert_to_numpy(layer.kernel)) for b, layer in zip(before, (lower, upper))]
    assert moved == [False, True]
    assert not any(inner.trainable for inner in encoder.layers if isinstance(inner, keras.layers.BatchNormalization))
    model_lib.set_encoder_trainable(model, True)  # all of it again
    assert lower.trainable
    with pytest.raises(ValueError, match="from_stride"):
        model_lib.set_encoder_trainable(model, True, from_stride=3)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_a_pretrained_encoder_model_reloads_with_equal_outputs_and_its_frozen_state(head, bins, tmp_path):
    model = build_colorizer(64, head=head, embedding_dim=None, encoder="mobilenet", encoder_weights=None,
                            global_features=True, width=0.25, bins=bins)
    model_lib.set_encoder_trainable(model, False)
    x = _inputs(64, None, batch=1, seed=4)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)), atol=1e-5)
    assert model_lib.encoder_layer(loaded).trainable is False
    assert model_info(loaded)["encoder"] == "mobilenet"


def test_pretrained_encoder_heads_stay_float32_under_mixed_precision(bins):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_colorizer(64, head="classification", embedding_dim=None, encoder="mobilenet",
                                encoder_weights=None, width=0.25, bins=bins)
        assert model.get_layer("decoder_s4_conv1").compute_dtype == "float16"
        assert model.get_layer("encoder_gray").compute_dtype == "float32"
        assert model.outputs[0].dtype == "float32" and inference_model(model).outputs[0].dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


# === Tilting the head toward rare colours ===


def test_a_rare_colour_shift_multiplies_each_probability_by_its_weight_to_the_strength(bins):
    model = build_colorizer(64, head="classification", embedding_dim=None, width=0.125, bins=bins)
    x = _inputs(64, None)
    before = ops.convert_to_numpy(model(x)).astype(np.float64)
    model_lib.shift_toward_rare_colours(model, 0.5)
    after = ops.convert_to_numpy(model(x)).astype(np.float64)
    expected = before * bins.weights**0.5
    expected /= expected.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(after, expected, rtol=1e-4, atol=1e-7)
    # The rare colours (large weights) gain at the common ones' expense, and the rare ones are the vivid
    # ones: the probable chroma rises.
    rare, common = np.argmax(bins.weights), np.argmin(bins.weights)
    assert (after[..., rare] > before[..., rare]).all() and (after[..., common] < before[..., common]).all()
    expected_chroma = lambda p: (p @ np.linalg.norm(bins.centers, axis=-1)).mean()  # noqa: E731
    assert expected_chroma(after) > expected_chroma(before) + 1


def test_a_rare_colour_shift_refuses_a_regression_model():
    with pytest.raises(ValueError, match="regression"):
        model_lib.shift_toward_rare_colours(build_colorizer(64, head="regression", embedding_dim=None,
                                                            width=0.125), 0.5)
