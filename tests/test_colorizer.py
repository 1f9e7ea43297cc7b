from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from photos import make_photo, write_photos
from PIL import Image

from colorfusion import color, io
from colorfusion import model as model_lib
from colorfusion.bins import ABBins
from colorfusion.errors import ModelLoadError
from colorfusion.hints.layers import no_hints
from colorfusion.inference import colorizer as colorizer_lib
from colorfusion.inference.batch import colorize_folder, plan_outputs, refused_outputs
from colorfusion.inference.colorizer import Colorizer, as_colorizer
from colorfusion.loading import load_model


def colorize_one(model, image, return_lab=False, **colorizer_kwargs):
    """One photo through a Colorizer made from a model, a Colorizer or a path."""
    return as_colorizer(model, **colorizer_kwargs)(image, return_lab=return_lab)

AB = (12.0, -8.0)  # the constant colour of the `constant` model: in gamut for L in [20, 80]


def constant_ab_model(model, ab):
    """`model` (a regression one) made to output `ab` (Lab units) everywhere: zero kernel, bias atanh(ab / 128)."""
    layer = model.get_layer("ab_tanh")
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.arctanh(np.asarray(ab, np.float32) / color.AB_SCALE)])
    return model


def mid_photo(height, width, seed=0) -> np.ndarray:
    """A colour photo with L in about [25, 75], so that AB stays in gamut."""
    photo = make_photo(np.random.default_rng(seed), height, width)
    return (64 + photo // 2).astype(np.uint8)


@pytest.fixture(scope="module")
def constant(tiny_model):
    return Colorizer(constant_ab_model(tiny_model(), AB))


@pytest.fixture(scope="module")
def regression(tiny_model):
    return tiny_model(seed=1)


@pytest.fixture(scope="module")
def classification(tiny_model):
    keras.utils.set_random_seed(2)
    bins = ABBins.fit([make_photo(np.random.default_rng(s), 48, 48) for s in range(4)], num_bins=24)
    return tiny_model(head="classification", bins=bins)


# === One image ===

SHAPES = {"1x1": (1, 1), "odd": (33, 47), "portrait": (61, 23), "landscape": (23, 61), "large": (301, 517)}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("kind", ["colour", "gray", "gray1", "float_colour", "float_gray"])
def test_output_has_the_input_size_its_own_l_and_the_model_colour(constant, shape, kind):
    rgb = mid_photo(*shape)
    l_in = color.rgb_to_l(rgb)[..., 0]
    gray = (color.gray_rgb_from_l(l_in[..., None])[..., 0] * 255 + 0.5).astype(np.uint8)
    image = {"colour": rgb, "gray": gray, "gray1": gray[..., None], "float_colour": rgb / 255.0,
             "float_gray": gray / np.float32(255)}[kind]
    if kind.endswith("gray") or kind == "gray1":
        l_in = color.rgb_to_l(np.repeat(gray[..., None], 3, -1))[..., 0]
    out, lab = colorize_one(constant, image, return_lab=True)
    assert out.shape == shape + (3,) and out.dtype == np.uint8
    assert lab.shape == shape + (3,) and lab.dtype == np.float32
    np.testing.assert_allclose(lab[..., 0], l_in, atol=1e-4)  # the photo's own L, untouched
    np.testing.assert_allclose(lab[..., 1:], np.broadcast_to(AB, shape + (2,)), atol=1e-3)
    out_lab = color.rgb_to_lab(out)
    assert np.abs(out_lab[..., 0] - l_in).max() <= 0.5
    assert np.abs(out_lab[..., 1:] - AB).max() <= 2.0  # 8-bit rounding of the colour


def test_colour_input_is_reduced_to_its_l_first(regression):
    rgb = make_photo(np.random.default_rng(3), 40, 56)
    gray = color.gray_rgb_from_l(color.rgb_to_l(rgb))  # float, same L, no colour
    from_colour, from_gray = colorize_one(regression, rgb), colorize_one(regression, gray)
    assert np.abs(from_colour.astype(int) - from_gray).max() <= 1


def test_path_pil_and_array_inputs_give_the_same_colorization(regression, tmp_path):
    rgb = make_photo(np.random.default_rng(4), 37, 29)
    path = io.write_image(tmp_path / "photo.png", rgb)
    colorizer = Colorizer(regression)
    expected = colorizer(rgb)
    with Image.open(path) as pil:
        from_pil = colorizer(pil)
    for result in (colorizer(path), colorizer(str(path)), from_pil):
        np.testing.assert_array_equal(result, expected)


def test_colorize_many_equals_one_at_a_time(regression):
    photos = [make_photo(np.random.default_rng(s), h, w) for s, (h, w) in enumerate([(8, 9), (50, 20), (1, 1)])]
    colorizer = Colorizer(regression)
    together = colorizer.colorize_many(photos)
    for photo, result in zip(photos, together):
        assert np.abs(result.astype(int) - colorizer(photo)).max() <= 1  # batched float maths may round apart


def test_bilinear_and_bicubic_upsampling_both_work_and_differ(regression):
    photo = make_photo(np.random.default_rng(5), 90, 70)
    cubic = Colorizer(regression, interpolation="bicubic")(photo)
    linear = Colorizer(regression, interpolation="bilinear")(photo)
    assert cubic.shape == linear.shape == (90, 70, 3)
    assert not np.array_equal(cubic, linear)
    with pytest.raises(ValueError, match="interpolation"):
        Colorizer(regression, interpolation="nearest")


def test_classification_head_decodes_with_each_method(classification):
    photo = make_photo(np.random.default_rng(6), 40, 40)
    results = {d: colorize_one(classification, photo, decode=d, return_lab=True)[1] for d in
               ("expectation", "annealed_mean", "mode")}
    assert all(lab.shape == (40, 40, 3) for lab in results.values())
    # The mode is a bin centre, far from the mean of a near-uniform untrained distribution.
    assert np.abs(results["mode"][..., 1:] - results["expectation"][..., 1:]).mean() > 1.0
    # T = 1 is the expectation.
    t1 = colorize_one(classification, photo, decode="annealed_mean", temperature=1.0, return_lab=True)[1]
    np.testing.assert_allclose(t1[..., 1:], results["expectation"][..., 1:], atol=1e-2)


def test_a_model_with_a_semantic_input_needs_an_embedder(tiny_model):
    model = tiny_model(embedding_dim=8)
    with pytest.raises(ValueError, match="embedder"):
        Colorizer(model)

    class Fixed:  # anything with embed_l(L) -> (N, D)
        calls = []

        def embed_l(self, l_batch):
            self.calls.append(l_batch.shape)
            return np.ones((len(l_batch), 8), np.float32)

    embedder = Fixed()
    out = colorize_one(model, mid_photo(20, 30), embedder=embedder)
    assert out.shape == (20, 30, 3) and embedder.calls == [(1, 32, 32, 1)]


# === Model files ===


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_models_saved_raw_or_from_inference_model_reload_and_colorize_the_same(head, regression, classification,
                                                                               tmp_path):
    model = {"regression": regression, "classification": classification}[head]
    photo = make_photo(np.random.default_rng(7), 33, 35)
    expected = colorize_one(model, photo)
    model.save(tmp_path / "raw.keras")
    model_lib.inference_model(model).save(tmp_path / "inference.keras")
    for path in (tmp_path / "raw.keras", tmp_path / "inference.keras"):
        np.testing.assert_array_equal(colorize_one(path, photo), expected)
        np.testing.assert_array_equal(colorize_one(str(path), photo), expected)


def test_a_run_folder_path_loads_its_best_model(regression, tiny_model, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    regression.save(run / "best.keras")
    tiny_model().save(run / "last.keras")  # other weights: must not be the one picked
    photo = make_photo(np.random.default_rng(8), 20, 20)
    np.testing.assert_array_equal(colorize_one(run, photo), colorize_one(regression, photo))


def _bad_model(tmp_path, kind) -> Path:
    if kind == "text_named_keras":
        path = tmp_path / "model.keras"
        path.write_text("this is not a model\n")
    elif kind == "h5":
        path = tmp_path / "model.h5"
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    elif kind == "missing":
        path = tmp_path / "nowhere" / "model.keras"
    elif kind == "empty_folder":
        path = tmp_path / "run"
        path.mkdir()
    else:  # a Keras model that is no colorizer
        path = tmp_path / "classifier.keras"
        inputs = keras.Input((4,), name="features")
        keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs)).save(path)
    return path


BAD_MODELS = {"text_named_keras": "not a loadable Keras model", "h5": "not a .keras model file",
              "missing": "no such model file", "empty_folder": "no model in this folder",
              "not_colorfusion": "not a colorfusion colorizer"}


@pytest.mark.parametrize("kind", BAD_MODELS)
def test_a_wrong_model_file_raises_a_one_line_error_naming_it_and_why(kind, tmp_path):
    path = _bad_model(tmp_path, kind)
    with pytest.raises(ModelLoadError) as error:
        load_model(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)) and BAD_MODELS[kind] in message


# === Folders ===


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(9)
    files = {"a.png": (30, 41), "sub/b.jpg": (25, 19), "sub/deeper/c.gif": (17, 33), "sub/deeper/d.bmp": (1, 1)}
    for name, shape in files.items():
        io.write_image(src / name, make_photo(rng, *shape))
    return src, files


def test_folder_mode_mirrors_the_tree_with_names_and_sizes(regression, tree, tmp_path):
    src, files = tree
    dst = tmp_path / "out"
    report = colorize_folder(src, dst, regression, batch_size=3, progress=False)
    expected = {"a.png", "sub/b.jpg", "sub/deeper/c.png", "sub/deeper/d.bmp"}  # GIF -> PNG: keep the colours
    assert {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()} == expected
    assert report.ok and len(report.written) == 4 and not report.skipped
    for name, (height, width) in files.items():
        out = dst / (name.replace(".gif", ".png"))
        assert io.read_rgb(out).shape == (height, width, 3)


def test_folder_mode_batches_model_calls(regression, tmp_path):
    write_photos(tmp_path / "src", count=5)
    colorizer = Colorizer(regression)
    calls = []
    predict = colorizer.predict_ab
    colorizer.predict_ab = lambda l_small, hint_maps=None: calls.append(len(l_small)) or predict(l_small, hint_maps)
    colorize_folder(tmp_path / "src", tmp_path / "out", colorizer, batch_size=2, progress=False)
    assert calls == [2, 2, 1]


def test_bad_files_get_one_line_each_and_the_rest_go_on(regression, tree, tmp_path):
    src, _ = tree
    (src / "sub" / "notes.png").write_text("not a picture")
    (src / "empty.jpg").write_bytes(b"")
    lines = []
    report = colorize_folder([src, tmp_path / "missing.png"], tmp_path / "out", regression, progress=False,
                             log=lines.append)
    assert len(report.written) == 4 and not report.ok
    assert sorted(p.name for p, _ in report.failed) == ["empty.jpg", "missing.png", "notes.png"]
    assert len(lines) == 3 and all("\n" not in line and line.startswith("error: ") for line in lines)
    assert any("notes.png" in line and "not an image" in line for line in lines)
    assert not list((tmp_path / "out").rglob(".*")), "temporary files left behind"


def test_existing_outputs_are_skipped_unless_overwrite(regression, tree, tmp_path):
    src, _ = tree
    dst = tmp_path / "out"
    colorize_folder(src, dst, regression, progress=False)
    target = dst / "a.png"
    target.write_bytes(b"old")
    again = colorize_folder(src, dst, regression, progress=False)
    assert len(again.skipped) == 4 and not again.written and target.read_bytes() == b"old"
    forced = colorize_folder(src, dst, regression, overwrite=True, progress=False)
    assert len(forced.written) == 4 and io.read_rgb(target).shape == (30, 41, 3)


def test_report_outputs_map_each_input_to_its_output_written_or_skipped(regression, tree, tmp_path):
    src, _ = tree
    (src / "broken.png").write_text("not a picture")
    dst = tmp_path / "out"
    first = colorize_folder([src, tmp_path / "missing.png"], dst, regression, progress=False, log=lambda line: None)
    # Every readable input, GIF -> PNG; the unreadable and the missing file have none.
    assert {k.relative_to(src).as_posix(): v.relative_to(dst).as_posix() for k, v in first.outputs.items()} == {
        "a.png": "a.png", "sub/b.jpg": "sub/b.jpg", "sub/deeper/c.gif": "sub/deeper/c.png",
        "sub/deeper/d.bmp": "sub/deeper/d.bmp"}
    again = colorize_folder(src, dst, regression, progress=False, log=lambda line: None)
    assert again.outputs == first.outputs and not again.written


def test_an_output_equal_to_an_input_is_refused(regression, tree):
    src, _ = tree
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    report = colorize_folder(src, src, regression, overwrite=True, progress=False)
    # c.gif would become c.png beside it: a new file, not an input, so it is allowed.
    assert {p.name for p, _ in report.failed} == {"a.png", "b.jpg", "d.bmp"}
    assert all("would replace an input" in reason for _, reason in report.failed)
    assert all(p.read_bytes() == data for p, data in before.items())


def test_outputs_inside_an_input_folder_are_not_colorized_again(regression, tree):
    src, _ = tree
    dst = src / "colorized"
    first = colorize_folder(src, dst, regression, progress=False)
    second = colorize_folder(src, dst, regression, progress=False)
    assert len(first.written) == 4 and len(second.skipped) == 4 and second.ok
    assert not (dst / "colorized").exists()


def test_two_inputs_with_one_output_path_are_refused_not_overwritten(regression, tmp_path):
    for folder in ("x", "y"):
        io.write_image(tmp_path / folder / "same.png", make_photo(np.random.default_rng(0), 9, 9))
    pairs = plan_outputs([tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"], tmp_path / "out")
    assert [out for _, out in pairs] == [tmp_path / "out" / "same.png"] * 2
    assert list(refused_outputs(pairs).items()) == [
        (tmp_path / "y" / "same.png", f"output {tmp_path / 'out' / 'same.png'} is already the output of "
                                      f"{tmp_path / 'x' / 'same.png'}")]
    report = colorize_folder([tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"], tmp_path / "out",
                             regression, progress=False, log=lambda line: None)
    assert len(report.written) == 1 and [p for p, _ in report.failed] == [tmp_path / "y" / "same.png"]


@pytest.mark.slow
def test_a_50_megapixel_photo_keeps_its_size_and_l(constant):
    height, width = 7072, 7072  # 50.0 MP
    gray = np.tile(np.arange(256, dtype=np.uint8), (height, width // 256 + 1))[:, :width]
    out = constant(gray)
    assert out.shape == (height, width, 3)
    rows = slice(0, None, 997)
    l_out = color.rgb_to_l(out[rows])[..., 0]
    l_in = color.rgb_to_l(np.repeat(gray[rows, :, None], 3, -1))[..., 0]
    mid = (l_in > 25) & (l_in < 75)  # where AB is in gamut
    assert np.abs(l_out - l_in)[mid].max() <= 0.5


@pytest.mark.slow
def test_a_run_folder_with_a_semantic_branch_colorizes_with_the_embedder_it_was_trained_with(tmp_path, monkeypatch):
    from colorfusion.embeddings import Embedder, EmbeddingCache, load_l
    from colorfusion.training import train

    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))
    photos = write_photos(tmp_path / "photos", count=6)
    # Pooled features: a random backbone's softmax is uniform whatever the seed, its features are not.
    train(tmp_path / "photos", tmp_path / "run", encoder="scratch", backbone="mobilenet", weights=None,
          embedding="cache", embedding_output="pooled", image_size=32, width=0.125, epochs=1, batch_size=4, seed=3,
          hardware="cpu", show=False, verbose=0)
    colorizer = Colorizer.from_path(tmp_path / "run")
    assert (colorizer.embedder.backbone, colorizer.embedder.seed) == ("mobilenet", 3)
    # Training cached every photo's vector under its embedder's identity; ours finds them all...
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings", colorizer.embedder, progress=False)
    stored = cache.get(photos, image_size=32)
    assert cache.computed == 0
    # ...and computes the same vectors (random weights: only the run's seed gives these).
    l_batch = np.stack([load_l(p, 32) for p in photos])
    ours = colorizer.embedder.embed_l(l_batch)
    assert np.abs(ours - stored).max() <= 1e-5 * np.abs(stored).max()
    default_seed = Embedder("mobilenet", weights=None, output="pooled", seed=0).embed_l(l_batch)
    assert np.abs(default_seed - stored).max() > 1e-3 * np.abs(stored).max()
    rgb, lab = colorizer(photos[0], return_lab=True)
    assert rgb.shape == io.read_rgb(photos[0]).shape
    np.testing.assert_array_equal(lab[..., 0], color.rgb_to_l(io.read_rgb(photos[0]))[..., 0])


def test_a_multi_line_model_error_is_logged_as_one_line_per_file(regression, tmp_path):
    write_photos(tmp_path / "src", count=2)
    colorizer = Colorizer(regression)

    def broken(l_small, hint_maps=None):
        raise RuntimeError("graph execution failed\n" + "stack frame\n" * 50)

    colorizer.predict_ab = broken
    lines = []
    report = colorize_folder(tmp_path / "src", tmp_path / "out", colorizer, progress=False, log=lines.append)
    assert len(report.failed) == 2 and not report.written
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert all("RuntimeError: graph execution failed" in line for line in lines)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_a_pretrained_encoder_model_saves_loads_and_colorizes_at_full_resolution(head, tmp_path):
    bins = ABBins.fit([make_photo(np.random.default_rng(3), 40, 40)], num_bins=30)
    model = model_lib.build_colorizer(64, head=head, embedding_dim=None, encoder="mobilenet", encoder_weights=None,
                                      global_features=True, width=0.25, bins=bins if head != "regression" else None)
    model.save(tmp_path / "model.keras")
    colorizer = Colorizer.from_path(tmp_path / "model.keras")
    photo = make_photo(np.random.default_rng(4), 301, 177)  # odd sizes, not the model's
    rgb, lab = colorizer(photo, return_lab=True)
    assert rgb.shape == (301, 177, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(lab[..., 0], color.rgb_to_l(photo)[..., 0], atol=1e-4)  # the photo's own L
    np.testing.assert_array_equal(rgb, Colorizer(model)(photo))


# === Training / inference parity (any-size models) ===


def l_dependent_model():
    """An any-size regression model whose ab is a fixed function of L at each pixel (not constant)."""
    inputs = keras.Input((None, None, 1), name="L")
    ab = keras.layers.Conv2D(2, 1, activation="tanh", name="ab",
                             kernel_initializer=keras.initializers.Constant([[[[0.6, -0.4]]]]),
                             bias_initializer=keras.initializers.Constant([0.1, 0.05]))(inputs)
    return keras.Model([inputs], ab)


def test_the_network_sees_what_the_generator_gave_it_in_training(tmp_path):
    from colorfusion.generator import ColorizationGenerator

    photo = mid_photo(96, 96, seed=5)
    path = io.write_image(tmp_path / "square.png", photo)
    generator = ColorizationGenerator([path], batch_size=1, image_size=64, augment=False, shuffle=False,
                                      embedding=None)
    trained_on = generator[0][0]["L"][0]
    colorizer = Colorizer(l_dependent_model(), size=64)
    seen = []
    run_network = colorizer.run_network

    def spy(inputs):  # what the network is called with at inference
        seen.append(np.asarray(inputs["L"]))
        return run_network(inputs)

    colorizer.run_network = spy
    colorizer(path)
    assert len(seen) == 1 and seen[0].shape == (1, 64, 64, 1) == (1, *trained_on.shape)
    np.testing.assert_allclose(seen[0][0], trained_on, atol=1e-4)


def test_full_resolution_ab_is_the_small_prediction_resized_in_place_and_orientation():
    photo = mid_photo(90, 150, seed=6)
    model = l_dependent_model()
    colorizer = Colorizer(model, size=64)
    _, lab = colorizer(photo, return_lab=True)
    l_full, l_small = colorizer.read_lightness(photo)
    assert l_small.shape == (64, 96, 1)  # the photo's aspect ratio at short side 64, sides multiples of 32
    small = np.asarray(model({"L": color.l_to_model(l_small[None])})[0]) * color.AB_SCALE
    expected = cv2.resize(small, (150, 90), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(lab[..., 1:], expected, atol=0.05)
    # Independently of the pipeline: ab follows the photo's own L at full resolution, not a flipped copy.
    direct = np.asarray(model({"L": color.l_to_model(l_full[None, ..., None])})[0]) * color.AB_SCALE
    error = np.abs(lab[..., 1:] - direct).mean()
    flipped = np.abs(lab[::-1, ::-1, 1:] - direct).mean()
    assert error < 1.0 and error < flipped / 3, (error, flipped)


def test_network_shape_keeps_the_aspect_ratio_with_sides_multiples_of_32():
    assert colorizer_lib.network_shape(3000, 4000, 256) == (256, 352)
    assert colorizer_lib.network_shape(4000, 3000, 256) == (352, 256)
    assert colorizer_lib.network_shape(500, 500, 200) == (192, 192)
    assert colorizer_lib.network_shape(100, 10_000, 128) == (128, 128 * colorizer_lib.MAX_ASPECT)  # capped panorama
    assert colorizer_lib.network_shape(7, 5, 16) == (32, 32)  # never below one stride


def test_a_fixed_size_model_still_sees_its_own_square(tiny_model):
    colorizer = Colorizer(tiny_model())
    assert colorizer.input_shape(90, 150) == (32, 32)
    assert colorizer(mid_photo(90, 150)).shape == (90, 150, 3)


def test_photos_of_different_shapes_in_one_call_are_each_colorized_at_their_own_shape():
    model = l_dependent_model()
    colorizer = Colorizer(model, size=64)
    photos = [mid_photo(90, 150, seed=1), mid_photo(150, 90, seed=2), mid_photo(64, 64, seed=3)]
    together = colorizer.colorize_many(photos)
    alone = [colorizer(p) for p in photos]
    assert [t.shape for t in together] == [(90, 150, 3), (150, 90, 3), (64, 64, 3)]
    assert all(np.array_equal(a, b) for a, b in zip(together, alone))


# === Compiled inference ===


def compiled_test_models(tiny_model):
    """A fixed-size regression model, a fixed-size classification model with hints, an any-size one with hints."""
    keras.utils.set_random_seed(4)
    bins = ABBins.fit([make_photo(np.random.default_rng(s), 48, 48) for s in range(4)], num_bins=24)
    return {
        "fixed": tiny_model(),
        "fixed_hints": tiny_model(head="classification", bins=bins, hints=True),
        "any_size_hints": model_lib.build_colorizer(64, head="classification", bins=bins, embedding_dim=None,
                                                    encoder="mobilenet", encoder_weights=None, width=0.125,
                                                    hints=True),
    }


def eager_ab(colorizer, l_small, hint_maps=None):
    inputs = {"L": color.l_to_model(l_small)}
    if colorizer.takes_hints:
        inputs["hints"] = no_hints(inputs["L"]) if hint_maps is None else hint_maps
    return np.asarray(colorizer.inference(inputs, training=False))  # ab / 128


def test_the_network_is_compiled_once_per_shape_and_equals_the_eager_call(tiny_model):
    for name, model in compiled_test_models(tiny_model).items():
        colorizer = Colorizer(model, size=64)
        side = 32 if colorizer.image_size else 64
        rng = np.random.default_rng(0)
        l_small = rng.uniform(0, 100, (3, side, side * 3 // 2 if name == "any_size_hints" else side, 1))
        l_small = l_small.astype(np.float32)
        hint_maps = np.zeros(l_small.shape[:3] + (3,), np.float32)
        hint_maps[0, 2:7, 3:8] = (0.4, -0.3, 1.0)
        for maps in ([None, hint_maps] if colorizer.takes_hints else [None]):
            before = colorizer.traces
            first = colorizer.predict_ab(l_small, maps)
            assert colorizer.traces == before + 1, name
            again = colorizer.predict_ab(l_small, maps)
            one = colorizer.predict_ab(l_small[:1], None if maps is None else maps[:1])  # any batch size
            assert colorizer.traces == before + 1, name  # no retrace for a shape seen before
            np.testing.assert_array_equal(first, again)
            np.testing.assert_allclose(color.ab_to_model(one), color.ab_to_model(first[:1]), atol=1e-5)
            np.testing.assert_allclose(color.ab_to_model(first), eager_ab(colorizer, l_small, maps), atol=1e-4,
                                       err_msg=name)
        assert colorizer.traces == (2 if colorizer.takes_hints else 1), name  # with and without hints
        if colorizer.image_size is None:
            colorizer.predict_ab(l_small[:, :32, :64])  # another size: another compilation
            assert colorizer.traces == 3, name


def test_with_no_hints_the_network_without_hint_layers_gives_the_same_colours(tiny_model):
    models = compiled_test_models(tiny_model)
    for name in ("fixed_hints", "any_size_hints"):
        colorizer = Colorizer(models[name])
        network = colorizer_lib.without_hint_layers(colorizer.inference)
        assert {id(w) for w in network.weights} < {id(w) for w in colorizer.inference.weights}  # shared, fewer
        side = 32 if colorizer.image_size else 64
        l_scaled = np.random.default_rng(1).uniform(-1, 1, (2, side, side, 1)).astype(np.float32)
        inputs = {"L": l_scaled, "hints": no_hints(l_scaled)}
        np.testing.assert_array_equal(np.asarray(network(inputs, training=False)),
                                      np.asarray(colorizer.inference(inputs, training=False)), err_msg=name)
        # An explicit empty map takes the same path as none.
        l_small = color.l_from_model(l_scaled)
        np.testing.assert_array_equal(colorizer.predict_ab(l_small, np.zeros((2, side, side, 3), np.float32)),
                                      colorizer.predict_ab(l_small))


def test_compiled_networks_are_bounded(monkeypatch):
    from colorfusion.inference import runners

    monkeypatch.setattr(runners, "MAX_COMPILED_SHAPES", 2)
    colorizer = Colorizer(l_dependent_model(), size=64)
    for side in (32, 64, 96):
        colorizer.predict_ab(np.zeros((1, side, side, 1), np.float32))
    assert len(colorizer.runner.compiled) == 2 and colorizer.traces == 3
    colorizer.predict_ab(np.zeros((1, 96, 96, 1), np.float32))  # the most recent is kept
    assert colorizer.traces == 3
