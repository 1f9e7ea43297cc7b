"""Export to ONNX / LiteRT: parity with Colorizer, the JSON beside the file, one-line errors, the CLI."""

import hashlib
import json

import keras
import numpy as np
import pytest
from photos import make_photo

from colorfusion import cli, color, provenance
from colorfusion import model as model_lib
from colorfusion.errors import HintError, ModelLoadError, UsageError
from colorfusion.export import ExportedModel, ExportError, export_model, parse_size, sidecar_path
from colorfusion.hints.layers import BilinearUpSampling2D
from colorfusion.inference.colorizer import Colorizer

# Parity: 1e-4 in the network's output, ab / 128 (0.0128 Lab units). Float32 reassociation alone
# (another runtime's convolutions) moves the shipped model's ab by up to about 7e-4 Lab units
# (5e-6 in ab / 128), as far as the same network traced by tf.function moves from its eager call.
AB_TOLERANCE = 1e-4


def assert_same_ab(ab, expected):
    """ab (Lab units) equal to the network's precision: `AB_TOLERANCE` in ab / 128."""
    np.testing.assert_allclose(color.ab_to_model(ab), color.ab_to_model(expected), rtol=0, atol=AB_TOLERANCE)
SUFFIX = {"onnx": ".onnx", "litert": ".tflite"}


def needs(format):
    """Skip unless the exporter and runtime of `format` are installed (the `export` extra)."""
    if format == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny():
    """A tiny classification model with hints: the decoding and the hint branch go into the file."""
    keras.utils.set_random_seed(3)
    model = model_lib.build_colorizer(image_size=32, width=0.125, embedding_dim=None, head="classification",
                                      hints=True)
    return Colorizer(model)


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    """`exported(format, hints=False)`: the path of `tiny` exported so, once per module (tests that damage a
    file copy it first)."""
    folder = tmp_path_factory.mktemp("exports")
    files = {}

    def get(format, hints=False):
        needs(format)
        if (format, hints) not in files:
            files[format, hints] = export_model(tiny, folder / f"tiny_{'hints' if hints else 'auto'}{SUFFIX[format]}",
                                                format=format, hints=hints)
        return files[format, hints]

    return get


def copy_export(path, folder):
    """The exported file and its JSON copied into `folder` as tiny.SUFFIX (+ .json)."""
    copy = folder / f"tiny{path.suffix}"
    copy.write_bytes(path.read_bytes())
    sidecar_path(copy).write_bytes(sidecar_path(path).read_bytes())
    return copy


@pytest.fixture(scope="module")
def lightness_batch():
    rng = np.random.default_rng(0)
    l_small = np.stack([color.rgb_to_l(make_photo(rng, 32, 32)) for _ in range(3)]).astype(np.float32)
    hint_maps = np.zeros((3, 32, 32, 3), np.float32)
    hint_maps[:, 4:9, 10:15] = (0.4, -0.3, 1.0)  # one hinted patch
    return l_small, hint_maps


@pytest.mark.parametrize("format", ["onnx", "litert"])
@pytest.mark.parametrize("hints", [False, True], ids=["automatic", "hints"])
def test_exported_file_predicts_the_colorizers_ab(tiny, exported, lightness_batch, format, hints):
    path = exported(format, hints)
    assert path.suffix == SUFFIX[format] and sidecar_path(path).is_file()
    exported = ExportedModel(path)
    l_small, hint_maps = lightness_batch
    maps = hint_maps if hints else None
    expected = tiny.predict_ab(l_small, maps)
    ab = exported.predict_ab(l_small, maps)
    assert ab.shape == expected.shape == (3, 32, 32, 2)
    assert_same_ab(ab, expected)
    assert exported.takes_hints == hints
    if hints:  # the hints change the colours: the map reaches the network
        assert np.abs(ab - tiny.predict_ab(l_small)).max() > 1e-3


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_a_file_exported_without_hints_leaves_the_hint_layers_out(tiny, exported, format):
    """Without --hints the file holds none of the hint branch: its weights, nor the constants that an
    empty map would fold into (the shipped model's LiteRT file at 256 x 352 grew from 16 to 48 MB)."""
    from colorfusion.hints.layers import is_hint_layer

    hint_bytes = 4 * sum(int(np.prod(w.shape)) for layer in tiny.inference.layers if is_hint_layer(layer.name)
                         for w in layer.weights)
    automatic, with_hints = (exported(format, hints).stat().st_size for hints in (False, True))
    assert with_hints - automatic >= hint_bytes > 0, (automatic, with_hints, hint_bytes)


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_exported_file_colorizes_photos_with_the_same_pixels(tiny, exported, format):
    exported = ExportedModel(exported(format))
    photos = [make_photo(np.random.default_rng(seed), *shape) for seed, shape in enumerate([(48, 64), (70, 33)])]
    for photo, expected, got in zip(photos, tiny.colorize_many(photos), exported.colorize_many(photos)):
        assert got.shape == photo.shape
        difference = np.abs(got.astype(int) - expected)
        assert difference.max() <= 1 and (difference == 0).mean() > 0.999  # a level at a rounding edge, at most


def test_json_beside_says_how_to_feed_the_file_and_plain_onnxruntime_follows_it(tiny, exported, lightness_batch):
    path = exported("onnx", hints=True)
    import onnxruntime

    record = json.loads(sidecar_path(path).read_text())
    assert sidecar_path(path).name == "tiny_hints.onnx.json" and record["file"] == "tiny_hints.onnx"
    assert record["runtime"] == "onnx" and record["opset"] == 17 and record["size"] == [32, 32]
    assert [item["name"] for item in record["inputs"]] == ["L", "hints"]
    assert record["inputs"][0]["shape"] == [None, 32, 32, 1] and record["outputs"][0]["name"] == "ab"
    assert record["decode"] == {"method": "annealed_mean", "temperature": model_lib.TEMPERATURE,
                                "hint_temperature": model_lib.HINT_TEMPERATURE}
    assert record["model"]["head"] == "classification" and record["model_card"] is None
    # docs/export.md's recipe: L / 50 - 1 in, ab / 128 out, by the JSON's numbers alone.
    l_small, hint_maps = lightness_batch
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scale = record["l_scale"]
    feeds = {"L": l_small / scale["divide"] - scale["subtract"], "hints": hint_maps}
    ab = session.run(["ab"], feeds)[0] * record["ab_scale"]
    assert_same_ab(ab, tiny.predict_ab(l_small, hint_maps))


def test_litert_json_names_the_interpreters_tensors(exported):
    path = exported("litert", hints=True)
    record = json.loads(sidecar_path(path).read_text())
    assert record["runtime"] == "litert" and record["batch"] == 1 and record["opset"] is None
    assert [item["tensor"] for item in record["inputs"]][0].endswith("L")
    assert all(item.get("tensor") for item in record["inputs"] + record["outputs"])


# === Files of any size ===

# Photos of every shape, (height, width): at short side 64 the network sees 64 x 96, 96 x 64, 64 x 64, 64 x 96.
PHOTO_SHAPES = ((96, 144), (144, 96), (80, 80), (67, 103))  # landscape, portrait, square, odd


@pytest.fixture(scope="module")
def any_size():
    """A tiny hint model that takes any size (a U-Net on an untrained MobileNet, the affinity blend), run at
    short side 64."""
    keras.utils.set_random_seed(4)
    model = model_lib.build_colorizer(64, head="classification", embedding_dim=None, encoder="mobilenet",
                                      encoder_weights=None, width=0.125, hints=True, hint_blend="affinity")
    return Colorizer(model, size=64)


def shaped_photos(shapes=PHOTO_SHAPES):
    return [make_photo(np.random.default_rng(seed), *shape) for seed, shape in enumerate(shapes)]


def recipe_shape(record, photo_height, photo_width):
    """The network input's shape for a photo by docs/export.md's plain-onnxruntime recipe (a file of any size)."""
    short, multiple = record["short_side"], record["multiple"]
    ratio = min(max(photo_height, photo_width) / min(photo_height, photo_width), 4)
    long = max(short, round(short * ratio / multiple) * multiple)
    return (short, long) if photo_height <= photo_width else (long, short)


def test_bilinear_upsampling_gives_keras_numbers_with_free_sides():
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
    for factor in (2, 4):
        expected = keras.layers.UpSampling2D(factor, interpolation="bilinear")(x)
        np.testing.assert_array_equal(BilinearUpSampling2D(factor)(x), expected)
    import tensorflow as tf

    # Traced with the sides unknown, which Keras' layer refuses.
    free = tf.function(BilinearUpSampling2D(2), input_signature=[tf.TensorSpec((None, None, None, 3))])
    assert tuple(free(x).shape) == (2, 10, 14, 3)
    restored = BilinearUpSampling2D.from_config(BilinearUpSampling2D(4, name="up").get_config())
    assert restored.factor == 4 and restored.compute_output_shape((None, None, 6, 3)) == (None, None, 24, 3)


@pytest.mark.parametrize("hints", [False, True], ids=["automatic", "hints"])
def test_onnx_file_takes_any_size_and_colorizes_every_shape_as_keras(any_size, tmp_path, hints):
    needs("onnx")
    path = export_model(any_size, tmp_path / "any.onnx", hints=hints)
    record = json.loads(sidecar_path(path).read_text())
    assert record["version"] == 2 and record["size"] is None and record["multiple"] == 32
    assert record["short_side"] == 64 and record["inputs"][0]["shape"] == [None, None, None, 1]
    exported = ExportedModel(path)
    photos = shaped_photos()
    points = [[(10, 12, "#c0392b"), (40, 50, "#2e86c1")]] * len(photos) if hints else None
    expected = any_size.colorize_many(photos, hints=points)
    for photo, want, got in zip(photos, expected, exported.colorize_many(photos, hints=points)):
        assert exported.input_shape(*photo.shape[:2]) == any_size.input_shape(*photo.shape[:2])
        assert recipe_shape(record, *photo.shape[:2]) == any_size.input_shape(*photo.shape[:2])
        assert got.shape == photo.shape and np.abs(got.astype(int) - want).max() <= 1
    l_small = np.stack([color.rgb_to_l(make_photo(np.random.default_rng(9), 128, 96))]).astype(np.float32)
    assert_same_ab(exported.predict_ab(l_small), any_size.predict_ab(l_small))
    with pytest.raises(ValueError, match="h and w multiples of 32"):
        exported.predict_ab(np.zeros((1, 48, 64, 1), np.float32))
    with pytest.raises(ValueError, match="photos at short side 64 only"):
        exported.with_size(128)


def test_size_fixes_an_onnx_file_and_litert_files_take_one_size(any_size, tmp_path):
    needs("onnx")
    fixed = ExportedModel(export_model(any_size, tmp_path / "fixed.onnx", size="64x96"))
    assert fixed.record["size"] == [64, 96] and fixed.record["multiple"] is None
    assert fixed.input_shape(144, 96) == (64, 96)  # a portrait squeezed into the file's landscape
    l_small = np.stack([color.rgb_to_l(make_photo(np.random.default_rng(2), 64, 96))]).astype(np.float32)
    assert_same_ab(fixed.predict_ab(l_small), any_size.predict_ab(l_small))
    with pytest.raises(ValueError, match=r"takes L of shape \(N, 64, 96, 1\)"):
        fixed.predict_ab(np.zeros((1, 96, 64, 1), np.float32))
    litert = ExportedModel(export_model(any_size, tmp_path / "default.tflite"))
    assert litert.record["size"] == [256, 352] and litert.input_shape(96, 144) == (256, 352)


def test_a_version_1_record_of_one_size_still_loads_and_runs(any_size, tmp_path):
    """Files exported before sizes were free: a version-1 JSON, always a size, no "multiple" nor "short_side"."""
    needs("onnx")
    path = export_model(any_size, tmp_path / "old.onnx", size=(64, 96))
    photos = shaped_photos()
    expected = ExportedModel(path).colorize_many(photos)
    record = json.loads(sidecar_path(path).read_text())
    for key in ("multiple", "short_side"):
        del record[key]
    sidecar_path(path).write_text(json.dumps({**record, "version": 1}))
    old = ExportedModel(path)
    assert old.shape == (64, 96) and old.size == 64 and old.input_shape(144, 96) == (64, 96)
    for want, got in zip(expected, old.colorize_many(photos)):
        np.testing.assert_array_equal(got, want)


def test_a_model_with_keras_upsampling_exports_at_one_size_only(any_size, tmp_path):
    """A `.keras` file saved before `BilinearUpSampling2D` holds Keras' layer, which takes one size."""
    needs("onnx")

    def keras_upsampling(layer):
        if isinstance(layer, BilinearUpSampling2D):
            return keras.layers.UpSampling2D(layer.factor, interpolation="bilinear", name=layer.name)
        return layer

    old = Colorizer(keras.models.clone_model(any_size.model, clone_function=keras_upsampling), size=64)
    with pytest.raises(ExportError, match=r"one input size only; export it at one size with --size HxW"):
        export_model(old, tmp_path / "old.onnx")
    assert not (tmp_path / "old.onnx").exists()
    assert ExportedModel(export_model(old, tmp_path / "old.onnx", size=(64, 64))).shape == (64, 64)


def test_cli_exports_onnx_of_any_size_unless_given_one(any_size, tmp_path, capsys):
    needs("onnx")
    keras_file = tmp_path / "any.keras"
    any_size.model.save(keras_file)
    for size, expected in ((None, None), ("64x96", [64, 96])):
        output = tmp_path / f"{size}.onnx"
        assert cli.main(["export", "--model", str(keras_file), "-o", str(output),
                         *(["--size", size] if size else [])]) == 0
        assert json.loads(sidecar_path(output).read_text())["size"] == expected
    assert ExportedModel(tmp_path / "None.onnx").size == 256  # the Colorizer's default short side
    capsys.readouterr()


def test_shipped_model_onnx_file_colorizes_photos_of_every_shape_as_keras(tmp_path):
    """`colorize --model shipped.onnx` against `Colorizer.pretrained()`: landscape, portrait, square and odd photos,
    each at its own network shape (256 x 384, 384 x 256, 256 x 256, 256 x 384)."""
    needs("onnx")
    from colorfusion.presets import pretrained_available

    if not pretrained_available():
        pytest.skip("this installation lacks the shipped model")
    exported = ExportedModel(export_model("pretrained", tmp_path / "shipped.onnx"))
    colorizer = Colorizer.pretrained()
    photos = shaped_photos([(512, 768), (768, 512), (400, 400), (333, 517)])
    for photo, want, got in zip(photos, colorizer.colorize_many(photos), exported.colorize_many(photos)):
        assert exported.input_shape(*photo.shape[:2]) == colorizer.input_shape(*photo.shape[:2])
        assert got.shape == photo.shape and np.abs(got.astype(int) - want).max() <= 3


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_shipped_model_exports_with_parity(tmp_path, format):
    needs(format)
    from colorfusion.presets import MODEL_CARD, pretrained_available

    if not pretrained_available():
        pytest.skip("this installation lacks the shipped model")
    path = export_model("pretrained", tmp_path / f"shipped{SUFFIX[format]}", size=(64, 96), hints=True)
    record = json.loads(sidecar_path(path).read_text())
    assert record["model"]["source"] == "pretrained" and record["model_card"] == MODEL_CARD.read_text()
    exported = ExportedModel(path)
    colorizer = Colorizer.pretrained(size=64)
    rng = np.random.default_rng(1)
    l_small = np.stack([color.rgb_to_l(make_photo(rng, 64, 96)) for _ in range(2)]).astype(np.float32)
    hint_maps = np.zeros((2, 64, 96, 3), np.float32)
    hint_maps[1, 20:25, 40:45] = (0.5, 0.3, 1.0)
    for maps in (None, hint_maps):
        assert_same_ab(exported.predict_ab(l_small, maps), colorizer.predict_ab(l_small, maps))


# === Errors: one line each ===


def test_bad_sizes_are_refused_in_one_line(tiny):
    with pytest.raises(ExportError, match="fixed 32x32 input"):
        export_model(tiny, "unused.onnx", size=(64, 64))
    for bad in ("abc", "0x32", (32,), "32x32x3"):
        with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
            parse_size(bad)
    assert parse_size("256x352") == (256, 352) and parse_size(64) == (64, 64)


def test_any_size_model_needs_multiples_of_32(tmp_path):
    model = model_lib.build_colorizer(64, embedding_dim=None, encoder="mobilenet", encoder_weights=None, width=0.125)
    with pytest.raises(ValueError, match="multiples of 32"):
        export_model(model, tmp_path / "m.onnx", size=(65, 96))
    assert not (tmp_path / "m.onnx").exists()


def test_the_suffix_names_the_format(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"litert files end in \.tflite"):
        export_model(tiny, tmp_path / "m.onnx", format="litert")
    assert not list(tmp_path.iterdir())


def test_hints_refused_for_a_model_without_them(tmp_path):
    model = model_lib.build_colorizer(image_size=32, width=0.125, embedding_dim=None)
    with pytest.raises(ExportError, match="takes no colour hints"):
        export_model(model, tmp_path / "m.onnx", hints=True)


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_damaged_missing_or_mismatched_files_fail_in_one_line(exported, tmp_path, format):
    path = copy_export(exported(format), tmp_path)
    good = path.read_bytes()
    with pytest.raises(ModelLoadError, match="describes another file"):
        path.write_bytes(good[:-10] + b"0123456789")
        ExportedModel(path)
    damaged = tmp_path / f"damaged{SUFFIX[format]}"
    damaged.write_bytes(b"not a model")
    record = json.loads(sidecar_path(path).read_text())
    record["sha256"] = __import__("hashlib").sha256(b"not a model").hexdigest()
    sidecar_path(damaged).write_text(json.dumps(record))
    with pytest.raises(ModelLoadError, match="not a loadable") as caught:
        ExportedModel(damaged)
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelLoadError, match="no such exported model file"):
        ExportedModel(tmp_path / f"missing{SUFFIX[format]}")
    sidecar_path(path).unlink()
    with pytest.raises(ModelLoadError, match=r"no tiny\.\w+\.json beside it"):
        ExportedModel(path)


def test_wrong_input_shape_or_hints_without_a_hints_input_are_one_line(exported):
    exported = ExportedModel(exported("litert"))
    with pytest.raises(ValueError, match=r"takes L of shape \(N, 32, 32, 1\)"):
        exported.predict_ab(np.zeros((1, 64, 64, 1), np.float32))
    with pytest.raises(HintError, match="exported without the hints input"):
        exported(make_photo(np.random.default_rng(0), 40, 40), hints=[(1, 1, "#ff0000")])


def test_missing_runtime_says_what_to_install(exported, monkeypatch):
    path = exported("onnx")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(ModelLoadError, match=r"colorfusion\[export\]"):
        ExportedModel(path)


# === Command line ===


def test_cli_exports_and_colorizes_with_the_same_pixels(tiny, tmp_path, capsys):
    needs("onnx")
    from colorfusion import io

    keras_file = tmp_path / "tiny.keras"
    tiny.model.save(keras_file)
    onnx_file = tmp_path / "tiny.onnx"
    assert cli.main(["export", "--model", str(keras_file), "-o", str(onnx_file)]) == 0
    assert "tiny.onnx.json" in capsys.readouterr().out
    photo = make_photo(np.random.default_rng(5), 40, 56)
    io.write_image(tmp_path / "in" / "photo.png", photo)
    assert cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(onnx_file),
                     "--quiet"]) == 0
    got = io.read_rgb(tmp_path / "out" / "photo.png")
    assert np.abs(got.astype(int) - tiny(photo)).max() <= 1


def test_cli_errors_are_one_line(tiny, exported, tmp_path, capsys):
    keras_file = tmp_path / "tiny.keras"
    tiny.model.save(keras_file)
    assert cli.main(["export", "--model", str(keras_file), "--size", "64x64", "-o", str(tmp_path / "x.onnx")]) == 1
    assert cli.main(["export", "--size", "big", "-o", str(tmp_path / "x.onnx")]) == 1
    assert cli.main(["export", "--model", str(tmp_path / "none.keras"), "-o", str(tmp_path / "x.onnx")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "fixed 32x32" in lines[0] and "HEIGHTxWIDTH" in lines[1] and "no such model" in lines[2]
    path = exported("litert")
    io_dir = tmp_path / "photos"
    io_dir.mkdir()
    from colorfusion import io

    io.write_image(io_dir / "p.png", make_photo(np.random.default_rng(0), 20, 20))
    assert cli.main(["colorize", str(io_dir), "-o", str(tmp_path / "o"), "--model", str(path), "--decode",
                     "mode"]) == 1
    assert "--decode: an exported file's decoding" in capsys.readouterr().err


# === Every client on an exported file: a clip, the studio ===


@pytest.fixture(scope="module")
def hint_export(tmp_path_factory):
    """(a Keras colorizer of any size with hint layers that act, its ONNX file with the hints input)."""
    needs("onnx")
    keras.utils.set_random_seed(6)
    model = model_lib.build_colorizer(64, head="classification", embedding_dim=None, encoder="mobilenet",
                                      encoder_weights=None, width=0.125, hints=True, hint_blend="affinity")
    rng = np.random.default_rng(6)
    for weight in model.weights:  # hint layers start at zero: make them act, so that points change colours
        if "hint" in weight.path and "kernel" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape).astype("float32"))
    colorizer = Colorizer(model, size=64)
    return colorizer, export_model(colorizer, tmp_path_factory.mktemp("hint_export") / "hints.onnx", hints=True)


def test_an_exported_file_colorizes_a_clip_as_its_keras_model(hint_export, tmp_path):
    av = pytest.importorskip("av")
    from colorfusion.inference.video import colorize_video
    from colorfusion.testing import clips

    photo = make_photo(np.random.default_rng(7), 120, 160)
    clip = clips.write_clip(tmp_path / "pan.mp4", [clips.pan_clip(photo, (64, 96), 10).frame(t) for t in range(10)])
    keras_colorizer, path = hint_export
    exported = ExportedModel(path)
    point = [[40, 30, "#c0392b", 4]]
    report = colorize_video(exported, clip, tmp_path / "onnx.mp4", hints=point, progress=False)
    reference = colorize_video(keras_colorizer, clip, tmp_path / "keras.mp4", hints=point, progress=False)
    assert report.frames == reference.frames == 10
    assert exported.colorize_video(clip, tmp_path / "convenience.mp4", progress=False).frames == 10

    def frames(path):
        with av.open(str(path)) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)

    # The same pixels in (the runners agree to a level), the same encoder: frames a few levels apart at most.
    assert np.abs(frames(report.output) - frames(reference.output)).mean() < 0.5


def test_the_studio_colours_and_hints_an_exported_file_and_refuses_suggestions_in_one_line(hint_export, tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import http.client
    from urllib.parse import urlsplit

    from PIL import Image

    from colorfusion import io
    from colorfusion.inference.suggest import HintSession, suggest_colours
    from colorfusion.studio.serving import running
    from colorfusion.studio.state import Studio

    keras_colorizer, path = hint_export
    exported = Colorizer.from_path(path)  # as `colorfusion studio --model FILE.onnx` loads it
    assert isinstance(exported, ExportedModel) and exported.takes_hints
    with pytest.raises(ValueError, match="fixed when it was exported"):
        Colorizer.from_path(path, decode="mode")
    photo = make_photo(np.random.default_rng(8), 90, 120)
    points = [(40, 30, "#c0392b"), (100, 70, "#2e86c1")]
    session = HintSession(exported, photo)
    np.testing.assert_array_equal(session.full_resolution(points), exported(photo, hints=points))
    assert np.abs(session.full_resolution(points).astype(int) - keras_colorizer(photo, hints=points)).max() <= 1
    with pytest.raises(ValueError, match="hints.onnx holds the decoded colours only") as caught:
        suggest_colours(exported, photo, 40, 30)
    assert "\n" not in str(caught.value)

    studio = Studio(exported)
    try:
        with running(studio) as url:
            parts = urlsplit(url)

            def call(method, path, body=b"", kind="application/json"):
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                connection.request(method, path, body=body, headers={"Host": f"127.0.0.1:{parts.port}",
                                                                     "Content-Type": kind})
                response = connection.getresponse()
                data = response.read()
                connection.close()
                return response.status, data

            status, record = call("POST", "/api/photos?name=photo.png",
                                  io.write_image(tmp_path / "photo.png", photo).read_bytes(), "image/png")
            assert status == 200
            photo_id = json.loads(record)["id"]
            shown = {}
            for name, hints in (("automatic", []), ("hinted", [[x, y, c] for x, y, c in points])):
                status, jpeg = call("POST", f"/api/photos/{photo_id}/result", json.dumps({"hints": hints}).encode())
                assert status == 200
                shown[name] = np.asarray(Image.open(__import__("io").BytesIO(jpeg)).convert("RGB")).astype(int)
            assert shown["automatic"].shape == (90, 120, 3)
            assert np.abs(shown["hinted"] - shown["automatic"]).max() > 30  # the points reached the file
            status, answer = call("POST", f"/api/photos/{photo_id}/suggest", json.dumps({"x": 40, "y": 30}).encode())
            message = json.loads(answer)["error"]
            assert status == 400 and "\n" not in message
            assert "holds the decoded colours only" in message and "regression" not in message  # the file's reason
    finally:
        studio.close()


def test_an_exported_files_confidence_is_refused_in_its_words_and_its_mark_is_the_files_sha256(exported):
    path = exported("onnx")
    colorizer = Colorizer.from_path(path)
    with pytest.raises(UsageError, match="holds the decoded colours only") as caught:
        colorizer.confidence(np.zeros((32, 32, 3), np.uint8))
    assert "\n" not in str(caught.value) and "confidence" in str(caught.value)
    assert provenance.model_sha256(colorizer) == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
