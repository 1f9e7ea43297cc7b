"""Colour hints: the model input, the simulated points, the user's points, and every interface that passes them."""

import json

import keras
import numpy as np
import pytest
from photos import make_photo, write_photos

from colorfusion import cli, color
from colorfusion import model as model_lib
from colorfusion.errors import HintError
from colorfusion.generator import ColorizationGenerator
from colorfusion.hints import hint_map, hints_for_photo, match_hints, parse_hint
from colorfusion.hints import layers as hint_layers
from colorfusion.hints.simulation import simulate_hints
from colorfusion.inference.batch import colorize_folder
from colorfusion.inference.colorizer import Colorizer
from colorfusion.training import TrainingError, train


def random_hints(rng, shape, count=3):
    ab = rng.uniform(-0.5, 0.5, shape + (2,)).astype(np.float32)
    return simulate_hints(ab, rng, count=count)


# === The model ===


def test_a_model_built_without_hints_is_unchanged_and_one_with_hints_takes_them(tiny_model):
    plain, hinted = tiny_model(seed=0), tiny_model(hints=True, seed=0)
    assert [t.name for t in plain.inputs] == ["L"] and not model_lib.model_info(plain)["hints"]
    assert [t.name for t in hinted.inputs] == ["L", "hints"] and model_lib.model_info(hinted)["hints"]
    assert tuple(hinted.inputs[1].shape) == (None, 32, 32, 3)
    # Every weight of the automatic network, unchanged in shape; the hint layers besides.
    shapes = {w.path: tuple(w.shape) for w in hinted.weights}
    assert all(shapes.get(w.path) == tuple(w.shape) for w in plain.weights)
    extra = sorted(set(shapes) - {w.path for w in plain.weights})
    assert extra == ["decoder_conv1_hints/kernel", "decoder_conv2_hints/kernel", "decoder_conv4_hints/kernel",
                     "hint_blend/log_width", "hint_gate/bias", "hint_gate/kernel"]


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_a_hint_model_started_from_an_automatic_one_is_it_without_hints_and_takes_a_hints_colour_at_once(
        head, tiny_model):
    keras.utils.set_random_seed(1)
    automatic = tiny_model(head, image_size=64)
    hinted = tiny_model(head, hints=True, image_size=64)
    model_lib.expand_weights(automatic, hinted)
    rng = np.random.default_rng(0)
    l_scaled = rng.uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(hinted({"L": l_scaled, "hints": hint_layers.no_hints(l_scaled)})),
                               np.asarray(automatic({"L": l_scaled})), atol=1e-6)
    hints = hint_layers.no_hints(l_scaled)
    hints[:, 30:35, 30:35] = (0.6, 0.2, 1.0)  # a reddish point in the middle
    infer = model_lib.inference_model(hinted)
    ab = np.asarray(infer({"L": l_scaled, "hints": hints}))
    ab_automatic = np.asarray(model_lib.inference_model(automatic)({"L": l_scaled}))
    near, far = (slice(None), slice(30, 35), slice(30, 35)), (slice(None), slice(0, 3), slice(0, 3))
    assert np.abs(ab[near] - (0.6, 0.2)).mean() < 0.5 * np.abs(ab_automatic[near] - (0.6, 0.2)).mean()
    assert np.abs(ab[far] - ab_automatic[far]).mean() < np.abs(ab[near] - ab_automatic[near]).mean()


def test_with_an_empty_hint_map_any_hint_model_is_its_automatic_self_and_hints_change_its_output(tiny_model):
    automatic, hinted = tiny_model(seed=1), tiny_model(hints=True, seed=2)
    model_lib.expand_weights(automatic, hinted)
    # Give the hint layers weight, as training does: the empty map must still change nothing.
    for w in hinted.weights:
        if hint_layers.is_hint_layer(w.path.split("/")[0]):
            w.assign(np.random.default_rng(1).normal(0, 0.3, tuple(w.shape)).astype(np.float32))
    rng = np.random.default_rng(0)
    l_scaled = rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    empty = hint_layers.no_hints(l_scaled)
    np.testing.assert_allclose(np.asarray(hinted({"L": l_scaled, "hints": empty})),
                               np.asarray(automatic({"L": l_scaled})), atol=1e-6)
    hints = random_hints(rng, (32, 32))[None]
    assert np.abs(np.asarray(hinted({"L": l_scaled,
                                     "hints": hints})) - np.asarray(automatic({"L": l_scaled}))).max() > 1e-3


def test_only_the_hint_layers_train_when_asked(tiny_model):
    hinted = tiny_model(hints=True, seed=0)
    hint_layers.set_only_hints_trainable(hinted)
    assert sorted(w.path for w in hinted.trainable_weights) == [
        "decoder_conv1_hints/kernel", "decoder_conv2_hints/kernel", "decoder_conv4_hints/kernel",
        "hint_blend/log_width", "hint_gate/bias", "hint_gate/kernel"]


def test_expand_weights_refuses_models_that_differ_in_more_than_the_hints(tiny_model):
    with pytest.raises(ValueError):
        model_lib.expand_weights(tiny_model(seed=0), tiny_model(hints=True, width=0.25))


def test_hint_blend_moves_colours_toward_close_hints_of_like_lightness_only_and_keeps_a_distribution():
    centers = np.array([[0.0, 0.0], [50.0, 20.0], [-40.0, 40.0]], np.float32)
    maps = np.zeros((1, 3, 1, 7), np.float32)
    maps[0, 0, 0] = (0, 0, 0, 50 / 128, 20 / 128, 1.0, 0.0)  # right on a hint of the second bin's colour
    maps[0, 1, 0] = (0, 0, 0, 50 / 128, 20 / 128, 1.0, 0.6)  # as near, but 30 L units lighter: another object
    maps[0, 2, 0, 5] = 0.0  # no hint near
    probs = np.tile(np.array([1.0, 0.0, 0.0], np.float32), (1, 3, 1, 1))
    gate = np.full((1, 3, 1, 1), 10.0, np.float32)  # wide open
    out = np.asarray(hint_layers.HintBlend(centers)([probs, maps, gate]))
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-6)
    assert out[0, 0, 0, 1] > 0.99  # takes the hint's colour
    assert out[0, 1, 0, 1] < 0.05  # a change of lightness stops it
    np.testing.assert_allclose(out[0, 2, 0], probs[0, 2, 0])
    closed = np.asarray(hint_layers.HintBlend(centers)([probs, maps, -gate]))
    assert closed[0, 0, 0, 1] < 0.01  # a shut gate keeps the network's colour


def test_hint_pool_keeps_a_one_pixel_hint_at_full_strength_in_its_cell_and_spreads_it_around():
    hints = np.zeros((1, 64, 64, 3), np.float32)
    hints[0, 40, 9] = (0.5, -0.25, 1.0)  # row 40, column 9
    lightness = np.zeros((1, 64, 64, 1), np.float32)
    lightness[0, :, 32:] = 0.5  # the right half is lighter
    maps = np.asarray(hint_layers.HintPool(8, spread_factor=16)([hints, lightness]))[0]
    assert maps.shape == (8, 8, 7)
    np.testing.assert_allclose(maps[5, 1, :3], (0.5, -0.25, 1.0), atol=1e-6)  # its cell: exact colour, present
    assert maps[..., 2].sum() == 1.0  # nowhere else
    # Spread: the hint's colour near it, closeness falling with distance, nothing far away.
    np.testing.assert_allclose(maps[5, 2, 3:5], (0.5, -0.25), atol=1e-5)
    assert maps[5, 1, 5] > maps[5, 4, 5] > maps[0, 7, 5] >= 0
    # Lightness against the hint's: the same on its side, 0.5 lighter across the edge.
    np.testing.assert_allclose(maps[5, 2, 6], 0.0, atol=1e-5)
    np.testing.assert_allclose(maps[5, 4, 6], 0.5, atol=1e-5)
    assert np.asarray(hint_layers.HintPool(8, spread_factor=16)([np.zeros_like(hints), lightness])).max() == 0


def _affinity_inputs():
    """A 4 x 8 grid at stride 4: the left half's features are one kind, the right half's another.

    A red hint sits on the left, a blue one on the right, each two cells in from the middle.
    """
    features = np.zeros((1, 4, 8, 2), np.float32)
    features[..., :4, 0], features[..., 4:, 1] = 1.0, 1.0
    hints = np.zeros((1, 16, 32, 3), np.float32)
    hints[0, 4:8, 8:12] = (0.6, 0.4, 1.0)  # red: the grid cell (1, 2), key cell (0, 1)
    hints[0, 4:8, 20:24] = (-0.2, -0.6, 1.0)  # blue: the grid cell (1, 5), key cell (0, 2)
    prediction = np.zeros((1, 4, 8, 2), np.float32)
    return prediction, hints, features


def test_affinity_blend_gives_each_cell_the_colour_of_the_hint_alike_in_features_not_the_mean_of_the_near_ones():
    prediction, hints, features = _affinity_inputs()
    layer = hint_layers.HintAffinityBlend(4)
    gate = np.full((1, 4, 8, 1), 10.0, np.float32)  # wide open: the support decides
    layer([prediction, hints, features, gate])
    layer.projection.assign(np.eye(2, 16, dtype=np.float32))  # compare the features as they are
    layer.log_sharpness.assign(np.log(20.0) / layer.SCALAR_RATE)
    out = np.asarray(layer([prediction, hints, features, gate]))[0]
    # The cells by the middle are as near the blue hint as the red one: each takes its own side's.
    np.testing.assert_allclose(out[1, 3], (0.6, 0.4), atol=0.02)
    np.testing.assert_allclose(out[1, 4], (-0.2, -0.6), atol=0.02)
    # With no hints the output is the prediction, exactly.
    empty = np.asarray(layer([prediction + 0.1, np.zeros_like(hints), features, gate]))
    np.testing.assert_array_equal(empty, prediction + 0.1)


def test_affinity_blend_support_falls_with_distance_and_unlikeness_and_a_classification_output_stays_a_distribution():
    _, hints, features = _affinity_inputs()
    hints[0, :, 16:] = 0  # the red hint only
    centers = np.array([[0.0, 0.0], [77.0, 51.0], [-25.0, -77.0]], np.float32)
    probs = np.tile(np.array([1.0, 0.0, 0.0], np.float32), (1, 4, 8, 1))
    layer = hint_layers.HintAffinityBlend(4, centers=centers)
    gate = np.full((1, 4, 8, 1), 10.0, np.float32)
    layer([probs, hints, features, gate])
    layer.projection.assign(np.eye(2, 16, dtype=np.float32))
    layer.log_sharpness.assign(np.log(20.0) / layer.SCALAR_RATE)
    out = np.asarray(layer([probs, hints, features, gate]))[0]
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    red = out[..., 1]
    assert red[1, 1] > 0.8  # on the hint's own side, next to it
    assert red[1, 1] > red[1, 0] > 0.5  # farther on the same side: less, still most
    assert red[1, 4] < 0.05  # as near as (1, 0) but across the edge: the network's own colour


def test_an_affinity_hint_model_is_its_automatic_self_without_hints_and_starts_from_a_lightness_one(tiny_model):
    lightness = tiny_model("classification", hints=True, seed=1)
    affinity = tiny_model("classification", hints=True, hint_blend="affinity")
    model_lib.expand_weights(lightness, affinity)  # all but the lightness blend's own width
    paths = {w.path for w in affinity.weights}
    assert "hint_blend/log_width" not in paths and "hint_affinity/projection" in paths
    automatic = tiny_model("classification", seed=1)
    model_lib.expand_weights(automatic, affinity)
    l_scaled = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(affinity({"L": l_scaled, "hints": hint_layers.no_hints(l_scaled)})),
                               np.asarray(automatic({"L": l_scaled})), atol=1e-5)
    with pytest.raises(ValueError):  # an automatic model cannot take a hint model's weights
        model_lib.expand_weights(affinity, tiny_model("classification", seed=0))
    with pytest.raises(ValueError, match="hint_blend"):
        tiny_model(hints=True, hint_blend="nearest")


def test_an_affinity_hint_model_saves_and_loads_with_the_same_colours(tmp_path, tiny_model):
    model = tiny_model("classification", hints=True, hint_blend="affinity")
    rng = np.random.default_rng(0)
    l_scaled = rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    feed = {"L": l_scaled, "hints": random_hints(rng, (32, 32))[None]}
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(feed)), np.asarray(model(feed)), atol=1e-6)


def test_an_affinity_models_decoder_reads_the_points_only_where_they_are(tiny_model):
    hints = np.zeros((1, 64, 64, 3), np.float32)
    hints[0, 40, 9] = (0.5, -0.25, 1.0)
    lightness = np.zeros((1, 64, 64, 1), np.float32)
    spread = np.asarray(hint_layers.HintPool(8, spread_factor=16)([hints, lightness]))
    local = np.asarray(hint_layers.HintPool(8, spread_factor=16, spread=False)([hints, lightness]))
    np.testing.assert_array_equal(local[..., :3], spread[..., :3])
    assert spread[..., 5].max() > 0 and not local[..., 3:].any()
    model = tiny_model("classification", hints=True, hint_blend="affinity")
    pools = [layer for layer in model.layers if isinstance(layer, hint_layers.HintPool)]
    assert pools and not any(pool.spread for pool in pools)
    lightness_blend = tiny_model(hints=True, seed=0)
    assert all(layer.spread for layer in lightness_blend.layers if isinstance(layer, hint_layers.HintPool))


def test_a_hint_model_saves_and_loads_with_its_hint_input(tmp_path, tiny_model):
    model = tiny_model("classification", hints=True, seed=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    x = {"L": rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32), "hints": random_hints(rng, (32, 32))[None]}
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


# === Simulated hints (training) ===


def test_simulated_points_are_patches_of_1_to_9_pixels_holding_their_mean_true_colour():
    rng = np.random.default_rng(3)
    ab = rng.uniform(-1, 1, (64, 64, 2)).astype(np.float32)
    for seed in range(20):
        hints = simulate_hints(ab, np.random.default_rng(seed), count=1)
        rows, cols = np.nonzero(hints[..., 2])
        side = rows.max() - rows.min() + 1
        assert 1 <= side <= 9 and cols.max() - cols.min() + 1 == side and len(rows) == side * side
        np.testing.assert_allclose(hints[rows[0], cols[0], :2], ab[rows, cols].mean(axis=0), atol=1e-5)
        assert np.all(hints[hints[..., 2] == 0] == 0)


def test_simulated_point_counts_follow_the_geometric_distribution_with_a_share_of_examples_without_hints():
    ab = np.zeros((128, 128, 2), np.float32)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(600):
        hints = simulate_hints(ab, rng, hint_free_fraction=0.3)
        counts.append(hints[..., 2].any())
    assert 0.22 < 1 - np.mean(counts) < 0.38  # hint-free share
    assert not simulate_hints(ab, rng, count=0)[..., 2].any()


def test_the_generator_gives_each_example_hints_from_its_own_colours_reproducibly(tmp_path):
    files = write_photos(tmp_path, count=8, sizes=(60, 90))
    gen = ColorizationGenerator(files, batch_size=8, image_size=32, hints=True, hint_free_fraction=0.0)
    x, y = gen[0]
    assert x["hints"].shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(gen[0][0]["hints"], x["hints"])
    own, other = [], []
    for i in range(8):
        mask = x["hints"][i, ..., 2] > 0
        assert mask.any()
        own.append(np.abs(x["hints"][i][mask][:, :2] - y[i][mask]).mean())
        other.append(np.abs(x["hints"][i][mask][:, :2] - y[(i + 1) % 8][mask]).mean())
    assert np.mean(own) < 0.3 * np.mean(other)  # the points hold this photo's colours, not a neighbour's
    validation = ColorizationGenerator(files, batch_size=8, image_size=32, hints=True)
    first = validation[0][0]["hints"]
    validation.on_epoch_end()
    np.testing.assert_array_equal(validation[0][0]["hints"], first)  # same points every epoch
    assert "hints" not in ColorizationGenerator(files, batch_size=8, image_size=32)[0][0]


# === The user's hints ===


@pytest.mark.parametrize("colour, expected", [("#c0392b", (192, 57, 43)), ("C0392B", (192, 57, 43)),
                                              ((0, 128, 255), (0, 128, 255)), ([1.0, 2.0, 3.0], (1, 2, 3))])
def test_colours_are_hex_or_rgb_triples(colour, expected):
    assert color.parse_color(colour) == expected


@pytest.mark.parametrize("colour", ["#c0392", "red", "#gg0000", (1, 2), (0, 0, 256), (0.5, 0, 0), None])
def test_a_bad_colour_is_a_one_line_error(colour):
    with pytest.raises(ValueError, match="colour must be") as caught:
        color.parse_color(colour)
    assert "\n" not in str(caught.value)


def test_a_hint_colour_is_taken_at_the_photos_lightness_with_its_hue():
    for lightness in (25.0, 50.0, 75.0):
        a, b = color.ab_at_lightness("#c0392b", lightness)
        assert a > 15 and b > 10  # still red-orange
        rgb = color.lab_to_rgb(np.array([[[lightness, a, b]]], np.float32), np.uint8)
        assert abs(color.rgb_to_l(rgb)[0, 0] - lightness) < 2.5  # in gamut at that lightness


@pytest.mark.parametrize("hint", ["1,2", "a,2,#ff0000", "1,2,#ff00", (1, 2), (1, None, "#ff0000")])
def test_a_malformed_hint_is_a_hint_error_naming_it(hint):
    with pytest.raises(HintError, match="hint"):
        parse_hint(hint)


def test_a_hint_lands_at_its_place_on_the_network_grid_of_a_non_square_photo():
    l_full = np.full((60, 120), 50.0, np.float32)  # H 60, W 120 -> network 32 x 64
    maps = hint_map([(119, 0, "#0000ff"), (0, 59, (255, 0, 0))], l_full, (32, 64))
    rows, cols = np.nonzero(maps[..., 2])
    assert set(zip(rows.tolist(), cols.tolist())) >= {(0, 63), (31, 0)}
    assert maps[0, 63, 1] < -0.2 and maps[31, 0, 0] > 0.2  # blue: b < 0; red: a > 0
    np.testing.assert_allclose(maps[0, 63, :2], color.ab_at_lightness("#0000ff", 50.0) / 128, atol=1e-6)
    with pytest.raises(HintError, match=r"outside the photo \(120 x 60"):
        hint_map([(120, 10, "#ffffff")], l_full, (32, 64))


def test_the_colorizer_passes_the_hint_map_of_each_photo_to_the_model(tiny_model):
    colorizer = Colorizer(tiny_model(hints=True, seed=0))
    seen = []

    def recorder(inputs):  # the network, recording the hints it is given
        seen.append(inputs.get("hints"))
        return np.zeros(np.shape(inputs["L"])[:-1] + (2,), np.float32)

    colorizer.run_network = recorder
    photos = [make_photo(np.random.default_rng(i), 48, 64) for i in range(2)]
    colorizer.colorize_many(photos, hints=[[(63, 0, "#ff0000")], None])
    assert seen[0].shape[1:] == (32, 32, 3)  # batch padded to a power of two
    assert seen[0][0, 0, 31, 2] == 1 and seen[0][0, 0, 31, 0] > 0.2  # top right corner of the first photo
    assert not seen[0][1].any()  # the second has none
    colorizer(photos[0])
    assert seen[1] is None  # no hints: no map (the network runs without its hint layers)


def test_a_photo_given_hints_decodes_at_the_hint_temperature_and_one_without_at_the_automatic(tiny_model):
    model = tiny_model("classification", hints=True, seed=2)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # hint layers start at zero: give them weight, so that hints matter
        if "hint" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape).astype(np.float32))
    lightness = [rng.uniform(0, 100, (32, 32, 1)).astype(np.float32) for _ in range(2)]
    points = simulate_hints(rng.uniform(-0.5, 0.5, (32, 32, 2)).astype(np.float32), rng, count=3)

    def ab(temperature, hint_temperature, maps):
        return Colorizer(model, temperature=temperature, hint_temperature=hint_temperature).predict_ab_many(
            lightness, maps)

    mixed = ab(0.7, 0.3, [points, None])  # one batch: the first photo with hints, the second without
    np.testing.assert_allclose(mixed[0], ab(0.3, 0.3, [points, None])[0], atol=1e-4)
    np.testing.assert_allclose(mixed[1], ab(0.7, 0.7, None)[1], atol=1e-4)
    assert not np.allclose(mixed[0], ab(0.7, 0.7, [points, None])[0], atol=1e-3)  # the two temperatures differ
    assert Colorizer(model).hint_temperature == model_lib.HINT_TEMPERATURE != model_lib.TEMPERATURE


def test_hints_given_to_a_model_without_hints_are_a_hint_error(tiny_model):
    with pytest.raises(HintError, match="takes no colour hints"):
        Colorizer(tiny_model(seed=0))(make_photo(np.random.default_rng(0), 40, 40), hints=[(1, 1, "#ff0000")])


# === Folders and the command line ===


def test_a_folder_takes_hints_per_photo_and_bad_hints_fail_only_their_photo(tmp_path, tiny_model_file):
    files = write_photos(tmp_path / "in", count=3)
    hints = {"photo_00.png": [[1, 1, "#ff0000"]], str(files[1]): [[10_000, 1, "#ff0000"]], "missing.png": []}
    lines = []
    report = colorize_folder(tmp_path / "in", tmp_path / "out", tiny_model_file(hints=True), hints=hints,
                             progress=False, log=lines.append)
    assert sorted(p.name for p in report.written) == ["photo_00.png", "photo_02.png"]
    assert [(p.name, "outside the photo" in r) for p, r in report.failed if p.name == "photo_01.png"] == [
        ("photo_01.png", True)]
    assert any("missing.png" in line and "not among the inputs" in line for line in lines)
    assert all("\n" not in line for line in lines)


def test_cli_hint_on_a_hint_model_writes_the_photo(tmp_path, capsys, tiny_model_file):
    photo = write_photos(tmp_path / "in", count=1)[0]
    code = cli.main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file(hints=True)),
                     "--hint", "2,3,#c0392b", "--hint", "5,5,#2e86c1", "--quiet"])
    assert code == 0 and (tmp_path / "out" / photo.name).exists()


def test_cli_hint_temperature_reaches_a_photo_given_hints_as_the_api_does(tmp_path, capsys, tiny_model):
    from colorfusion import io

    model = tiny_model("classification", hints=True, seed=2)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # hint layers start at zero: give them weight, so that hints matter
        if "hint" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape).astype(np.float32))
    model.save(tmp_path / "hints.keras")
    photo = write_photos(tmp_path / "in", count=1)[0]  # 40 to 80 px a side
    hints = [(5, 7, "#c0392b"), (30, 20, "#2e86c1")]
    code = cli.main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "hints.keras"),
                     "--hint", "5,7,#c0392b", "--hint", "30,20,#2e86c1", "--hint-temperature", "0.05", "--quiet"])
    written = io.read_rgb(tmp_path / "out" / photo.name)
    expected = Colorizer(model, hint_temperature=0.05)(photo, hints=hints)
    assert code == 0
    np.testing.assert_array_equal(written, expected)
    assert np.abs(written.astype(int) - Colorizer(model)(photo, hints=hints)).max() > 2


@pytest.mark.parametrize("hint, message", [("2,3,#c0392", "colour must be"), ("99999,3,#c0392b", "outside the photo"),
                                           ("2;3;#c0392b", "expected (x, y, colour)")])
def test_cli_bad_hints_are_one_error_line_naming_the_photo_exit_1_and_the_rest_done(tiny_model_file, tmp_path,
                                                                                     capsys, hint, message):
    photos = write_photos(tmp_path / "in", count=2)
    (tmp_path / "hints.json").write_text(json.dumps({photos[0].name: [hint.split(",") if "," in hint else hint],
                                                     photos[1].name: [[1, 1, "#ffffff"]]}))
    code = cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                     "--model", str(tiny_model_file(hints=True)), "--hints", str(tmp_path / "hints.json"), "--quiet"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1
    assert len(errors) == 1 and photos[0].name in errors[0] and message in errors[0], errors
    assert (tmp_path / "out" / photos[1].name).exists() and not (tmp_path / "out" / photos[0].name).exists()


def test_cli_hints_for_a_model_without_hints_are_one_error_line_and_exit_1(tmp_path, capsys, tiny_model):
    model_file = tmp_path / "plain.keras"
    tiny_model(seed=0).save(model_file)
    photo = write_photos(tmp_path / "in", count=1)[0]
    code = cli.main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--model", str(model_file),
                     "--hint", "1,1,#ff0000", "--quiet"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "takes no colour hints" in errors[0] and str(photo) in errors[0]


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"a.png": "1,2,#ff0000"}'])
def test_cli_an_unreadable_hints_file_is_one_error_line_and_exit_1(tmp_path, capsys, content, tiny_model_file):
    photo = write_photos(tmp_path / "in", count=1)[0]
    (tmp_path / "h.json").write_text(content)
    code = cli.main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file(hints=True)),
                     "--hints", str(tmp_path / "h.json"), "--quiet"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "h.json" in errors[0]



# === Which photo a key of a hints file names: one rule, for `colorize --hints` and the studio ===


def test_a_key_names_a_photo_by_its_path_as_given_its_path_inside_its_folder_or_its_file_name():
    points = [[1, 1, "#ff0000"]]
    mapping = {"scans/a.png": points, "sub/b.png": points, "c.png": points, "stray.png": points}
    photos = [("scans/a.png", "a.png"), ("in/sub/b.png", "sub/b.png"), ("in/x/c.png", "x/c.png"), ("in/d.png", "d.png")]
    assert match_hints(mapping, photos) == {photos[0]: "scans/a.png", photos[1]: "sub/b.png", photos[2]: "c.png"}
    assert match_hints(mapping, ["sub/b.png"]) == {"sub/b.png": "sub/b.png"}  # a name alone is its path inside


def test_a_hints_file_of_one_entry_applies_to_one_photo_whatever_its_name_and_only_then():
    mapping = {"renamed.jpg": [[1, 1, "#ff0000"]]}
    assert match_hints(mapping, ["photo.jpg"]) == {"photo.jpg": "renamed.jpg"}
    assert hints_for_photo(mapping, "photo.jpg") == [[1, 1, "#ff0000"]]
    assert match_hints(mapping, ["photo.jpg", "other.jpg"]) == {}  # two photos: it names neither
    assert hints_for_photo({**mapping, "x.jpg": []}, "photo.jpg") is None  # two entries: neither is for it


def test_cli_a_hints_file_saved_for_one_photo_under_another_name_applies_to_it(tmp_path, capsys, tiny_model_file):
    photo = write_photos(tmp_path / "in", count=1)[0]
    (tmp_path / "hints.json").write_text(json.dumps({"renamed.png": [[2, 3, "#c0392b"]]}))  # as the studio saves
    code = cli.main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file(hints=True)),
                     "--hints", str(tmp_path / "hints.json"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and "1 written" in captured.out and "error" not in captured.err, captured.err


def test_a_folder_matches_a_photo_in_a_subfolder_by_its_path_inside_under_its_own_suffix(tmp_path, tiny_model_file):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    from colorfusion import io

    io.write_image(tmp_path / "in" / "sub" / "old.gif", make_photo(np.random.default_rng(0), 40, 40))
    write_photos(tmp_path / "in", count=1)
    lines = []
    report = colorize_folder(tmp_path / "in", tmp_path / "out", tiny_model_file(hints=True), progress=False,
                             log=lines.append,
                             hints={"sub/old.gif": [[1, 1, "#ff0000"]], "photo_00.png": [[2, 2, "#00ff00"]]})
    assert report.ok and not lines, lines
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == ["photo_00.png",
                                                                                          "sub/old.png"]


# === Training ===


def test_a_hint_run_from_an_automatic_model_starts_as_it_trains_and_resumes(tmp_path, tiny_model):
    photos = tmp_path / "photos"
    write_photos(photos, count=12)
    automatic = tmp_path / "automatic.keras"
    tiny_model("classification", seed=0).save(automatic)
    # A bare .keras file records no architecture: the run says it.
    settings = dict(image_size=32, batch_size=4, encoder="scratch", embedding=None, width=0.125, verbose=0,
                    hardware="cpu")
    train(photos, tmp_path / "run", init=str(automatic), hints=True, epochs=1, learning_rate=1e-12, **settings)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hints"] is True and config["width"] == 0.125
    best = keras.saving.load_model(tmp_path / "run" / "best.keras")
    assert model_lib.model_info(best)["hints"]
    rng = np.random.default_rng(0)
    l_scaled = rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    before = keras.saving.load_model(automatic)
    np.testing.assert_allclose(np.asarray(best({"L": l_scaled, "hints": hint_layers.no_hints(l_scaled)})),
                               np.asarray(before({"L": l_scaled})), atol=1e-4)
    result = train(photos, tmp_path / "run", resume=True, epochs=2, **{k: v for k, v in settings.items()
                                                                       if k in ("verbose", "hardware")})
    assert result.epochs_done == 2


def test_an_automatic_run_starts_a_hint_run_with_the_affinity_blend(tmp_path):
    # Release 0.4.0's lineage: an automatic run folder (its config says hint_blend "lightness", a blend it
    # does not have) starts a hint run with affinity: not a clash of architectures.
    photos = tmp_path / "photos"
    write_photos(photos, count=8)
    settings = dict(image_size=32, batch_size=4, encoder="scratch", embedding=None, width=0.125, verbose=0,
                    hardware="cpu")
    train(photos, tmp_path / "automatic", epochs=1, **settings)
    train(photos, tmp_path / "run", init=str(tmp_path / "automatic"), hints=True, train_only_hints=True,
          hint_blend="affinity", epochs=1, learning_rate=1e-12, **settings)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hints"] is True and config["hint_blend"] == "affinity"
    trained = keras.saving.load_model(tmp_path / "run" / "best.keras")
    assert any(isinstance(layer, hint_layers.HintAffinityBlend) for layer in trained.layers)


def test_training_only_the_hints_keeps_the_automatic_colours_exactly_and_learns_to_follow_hints(tmp_path, tiny_model):
    photos = tmp_path / "photos"
    write_photos(photos, count=12)
    automatic = tmp_path / "automatic.keras"
    tiny_model("classification", seed=0).save(automatic)
    train(photos, tmp_path / "run", init=str(automatic), hints=True, train_only_hints=True, hint_free_fraction=0.0,
          epochs=2, learning_rate=1e-2, image_size=32, batch_size=4, encoder="scratch", embedding=None,
          width=0.125, verbose=0, hardware="cpu")
    trained = keras.saving.load_model(tmp_path / "run" / "last.keras")
    before = keras.saving.load_model(automatic)
    rng = np.random.default_rng(0)
    l_scaled = rng.uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(trained({"L": l_scaled, "hints": hint_layers.no_hints(l_scaled)})),
                               np.asarray(before({"L": l_scaled})), atol=1e-5)
    moved = [w for w in trained.weights if hint_layers.is_hint_layer(w.path.split("/")[0])
             and w.path.endswith("kernel") and np.abs(np.asarray(w)).max() > 0]
    assert moved  # the hint layers learnt something


def test_a_hint_runs_previews_colorize_with_fixed_simulated_points(tiny_model):
    from colorfusion.callbacks import colorize_samples, samples_from_images
    from colorfusion.hints.simulation import PREVIEW_HINTS, preview_hints

    photos = [make_photo(np.random.default_rng(i), 40, 50) for i in range(2)]
    samples = samples_from_images(photos, 32)
    samples["x"]["hints"] = preview_hints(samples["rgb"])
    assert all(0 < (h[..., 2] > 0).sum() for h in samples["x"]["hints"])
    np.testing.assert_array_equal(preview_hints(samples["rgb"]), samples["x"]["hints"])  # the same every epoch
    assert PREVIEW_HINTS == 5
    model = tiny_model(hints=True, seed=0)
    for w in model.weights:  # hint layers that do something
        if hint_layers.is_hint_layer(w.path.split("/")[0]) and w.path.endswith("kernel"):
            w.assign(np.random.default_rng(0).normal(0, 0.5, tuple(w.shape)).astype(np.float32))
    hinted = colorize_samples(model, samples)
    automatic = colorize_samples(model, {"rgb": samples["rgb"], "x": {"L": samples["x"]["L"]}})
    assert np.abs(hinted.astype(int) - automatic).max() > 10


def test_a_hint_model_cannot_start_a_run_without_hints(tmp_path):
    photos = tmp_path / "photos"
    write_photos(photos, count=8)
    hinted = tmp_path / "hinted"
    train(photos, hinted, hints=True, epochs=1, image_size=32, batch_size=4, encoder="scratch", embedding=None,
          width=0.125, verbose=0, hardware="cpu")
    with pytest.raises(TrainingError, match="hints"):
        train(photos, tmp_path / "run", init=str(hinted), hints=False, epochs=1, verbose=0, hardware="cpu")
