"""The model that ships in the package (`presets.load_pretrained`): its file format, its colours, its use by default."""

import json
import zipfile

import numpy as np
import pytest
from photos import make_photo

from colorfusion import color, presets
from colorfusion import model as model_lib
from colorfusion.errors import ModelLoadError
from colorfusion.inference.colorizer import Colorizer
from colorfusion.loading import load_model
from colorfusion.presets import (
    MODEL_CARD,
    PRETRAINED_FILE,
    file_sha256,
    is_pretrained,
    load_pretrained,
    pretrained_available,
    read_pretrained_config,
    save_pretrained,
)

# build_colorizer's arguments of a tiny classification colorizer on MobileNetV2: any size, as the shipped model.
TINY_BUILD = dict(image_size=64, head="classification", embedding_dim=None, encoder="mobilenet_v2",
                  global_features=True, width=0.125)


def tiny_encoder_model(seed=0):
    import keras

    from colorfusion.bins import ABBins

    keras.utils.set_random_seed(seed)
    bins = ABBins.fit([make_photo(np.random.default_rng(s), 48, 48) for s in range(4)], num_bins=16)
    return model_lib.build_colorizer(**TINY_BUILD, encoder_weights=None, bins=bins)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    model = tiny_encoder_model()
    path = save_pretrained(model, tmp_path_factory.mktemp("packed") / "model.npz", build=TINY_BUILD,
                           architecture={"head": "classification", "width": 0.125, "encoder": "mobilenet_v2"})
    return model, path


# === The file format ===


def test_save_stores_float16_weights_and_load_gives_the_same_colours(packed):
    model, path = packed
    with np.load(path) as archive:
        stored = [archive[name] for name in sorted(archive.files) if name.startswith("w")]
        config = json.loads(archive["config"].tobytes())
    assert {w.dtype for w in stored} == {np.dtype("float16")} and len(stored) == len(model.weights)
    assert config["format"] == presets.PRETRAINED_FORMAT and config["build"] == TINY_BUILD
    assert config["architecture"]["width"] == 0.125 and len(config["bins"]["centers"]) == 16
    loaded = load_pretrained(path)
    assert all(v.dtype == "float32" for v in loaded.weights)
    for ours, theirs in zip(model.weights, loaded.weights):  # each weight in its place, to float16's precision
        np.testing.assert_allclose(np.asarray(theirs), np.asarray(ours), rtol=1e-3, atol=1e-4)
    l_input = color.l_to_model(np.linspace(0, 100, 64 * 96, dtype=np.float32).reshape(1, 64, 96, 1))
    ours, theirs = (np.asarray(m({"L": l_input}, training=False)) for m in (model, loaded))
    # float16 weights: bin probabilities within a few thousandths, the same colours decoded.
    assert np.abs(ours - theirs).max() < 0.01
    decode = model_lib.DecodeAB(model_lib.model_bins(model).centers)
    ab_ours, ab_theirs = (np.asarray(decode(p)) * color.AB_SCALE for p in (ours, theirs))
    assert np.abs(ab_ours - ab_theirs).max() < 1.0


def test_a_damaged_or_foreign_file_is_one_line_naming_it(packed, tmp_path):
    _, path = packed
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:5000])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    for bad in (truncated, foreign, tmp_path / "missing.npz"):
        with pytest.raises(ModelLoadError) as caught:
            load_model(bad)
        assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


def test_a_build_record_that_does_not_rebuild_the_model_is_refused_when_saving(packed, tmp_path):
    model, _ = packed
    with pytest.raises(ValueError, match="does not rebuild"):
        save_pretrained(model, tmp_path / "wrong.npz", build={**TINY_BUILD, "width": 0.25})
    assert not (tmp_path / "wrong.npz").exists()


def test_weights_that_do_not_fit_the_recorded_model_are_refused(packed, tmp_path):
    _, path = packed
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    first = sorted(name for name in arrays if name.startswith("w"))[0]
    arrays[first] = np.zeros((1, 2, 3), np.float16)
    bad = tmp_path / "reshaped.npz"
    np.savez_compressed(bad, **arrays)
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_pretrained(bad)


# === The model that ships ===


def test_the_shipped_model_is_in_the_package_at_most_12_mb_and_documented():
    assert pretrained_available(), f"missing {PRETRAINED_FILE}"
    assert PRETRAINED_FILE.stat().st_size <= 12 * 2**20
    card = MODEL_CARD.read_text()
    assert file_sha256() in card, "the model card must quote the file's SHA-256"
    architecture = read_pretrained_config()["architecture"]
    assert architecture["encoder"] == "efficientnet_lite0" and architecture["head"] == "classification"  # 0.4.0


@pytest.fixture(scope="module")
def shipped():
    return Colorizer.pretrained()


def test_load_model_pretrained_is_the_shipped_file(shipped):
    info = model_lib.model_info(load_model("pretrained"))
    assert info["image_size"] is None and info["encoder"] == "efficientnet_lite0" and info["head"] == "classification"
    assert model_lib.model_info(shipped.model)["num_bins"] == info["num_bins"]


def test_the_shipped_model_colorizes_any_shape_at_full_resolution(shipped):
    for height, width in ((37, 201), (120, 90)):
        photo = make_photo(np.random.default_rng(height), height, width)
        rgb, lab = shipped(photo, return_lab=True)
        assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
        # The photo's own lightness, only the colour from the network.
        assert np.abs(lab[..., 0] - color.rgb_to_lab(photo)[..., 0]).max() < 0.01


@pytest.mark.slow
def test_the_shipped_model_beats_grayscale_on_the_package_photos(shipped, tmp_path):
    """The photos that ship with scikit-image and matplotlib: not one of them was trained on."""
    from colorfusion.datasets import sample_photos
    from colorfusion.evaluation import evaluate

    photos = sample_photos(tmp_path / "photos")
    report = evaluate(shipped, photos, tmp_path / "report", size=256, progress=False)
    methods = report.summary["methods"]
    assert report.summary["n_images"] == len(photos) >= 6
    assert methods["model"]["rebalanced_auc"] > methods["grayscale"]["rebalanced_auc"]
    assert methods["model"]["colorfulness"] > 0.3 * methods["ground_truth"]["colorfulness"]


def test_a_sky_and_foliage_get_different_hues_from_the_shipped_model(shipped):
    """Not one colour everywhere: a sky-like gradient and a foliage-like texture get different hues."""
    rng = np.random.default_rng(0)
    sky = np.zeros((128, 192, 3), np.uint8) + np.array([110, 160, 225], np.uint8)
    sky = np.clip(sky.astype(int) + np.linspace(-20, 20, 128)[:, None, None], 0, 255).astype(np.uint8)
    leaves = np.clip(rng.normal(0, 40, (128, 192, 1)) + np.array([70, 120, 50]), 0, 255).astype(np.uint8)
    hues = []
    for photo in (sky, leaves):
        _, lab = shipped(color.gray_version(photo), return_lab=True)
        hues.append(np.degrees(np.arctan2(lab[..., 2].mean(), lab[..., 1].mean())))
    assert abs(hues[0] - hues[1]) > 20, hues


def test_one_red_hint_on_a_gray_photo_turns_the_pixels_around_the_point_red(tmp_path, capsys):
    """`colorfusion colorize photo --hint X,Y,#RRGGBB` with the shipped model: the colour goes where it is told."""
    from colorfusion import cli, io

    rng = np.random.default_rng(0)
    gray = np.clip(rng.normal(128, 12, (240, 320, 1)), 0, 255).repeat(3, axis=-1).astype(np.uint8)
    io.write_image(tmp_path / "in" / "gray.png", gray)
    assert cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "auto"), "--quiet"]) == 0
    assert cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "hinted"), "--quiet",
                     "--hint", "200,90,#c0392b"]) == 0
    around = (slice(90 - 15, 90 + 15), slice(200 - 15, 200 + 15))
    for folder, red in (("hinted", True), ("auto", False)):
        lab = color.rgb_to_lab(io.read_rgb(tmp_path / folder / "gray.png"))[around]
        a, b = lab[..., 1].mean(), lab[..., 2].mean()
        hue = np.degrees(np.arctan2(b, a))
        is_red = a > 15 and -10 < hue < 60  # the hint's hue is 36 degrees
        assert is_red == red, (folder, a, b, hue)


def test_red_hints_on_the_motorcycle_leave_the_floor_its_own_colour(shipped):
    """The README's figure as a check: three red points on the tank turn the tank red and not the floor.

    Release 0.2.0 turned the floor red (its mean a* rose by 33); 0.3.0's hints stop at the object's edge.
    """
    from colorfusion import io
    from colorfusion.datasets import sample_photos

    [path] = [p for p in sample_photos() if p.stem == "motorcycle_left"]  # ships with scikit-image
    original = io.read_rgb(path)  # 741 x 500
    bw = color.gray_version(original)
    hints = [(x, y, "#{:02x}{:02x}{:02x}".format(*original[y, x])) for x, y in ((228, 234), (338, 227), (433, 185))]
    automatic, hinted = (color.rgb_to_lab(shipped(bw, hints=h))[..., 1] for h in (None, hints))
    tank = (slice(175, 245), slice(220, 440))
    floor = (slice(425, 500), slice(0, 220))  # bare concrete, a* 3 in the original
    assert hinted[tank].mean() > automatic[tank].mean() + 15, (automatic[tank].mean(), hinted[tank].mean())
    assert abs(hinted[floor].mean() - automatic[floor].mean()) < 5, (automatic[floor].mean(), hinted[floor].mean())


def test_the_shipped_model_takes_hints_and_a_bad_hint_is_one_line(tmp_path, capsys):
    from colorfusion import cli, io

    assert model_lib.model_info(load_model("pretrained"))["hints"]
    assert read_pretrained_config()["architecture"]["hints"] is True
    io.write_image(tmp_path / "in" / "p.png", make_photo(np.random.default_rng(0), 40, 60))
    code = cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--quiet", "--hint",
                     "60,5,#ff0000"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "p.png" in errors[0] and "outside the photo (60 x 40" in errors[0]


def test_the_package_data_lists_the_model_file():
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["colorfusion"]
    root = Path(presets.__file__).parent
    assert str(PRETRAINED_FILE.relative_to(root)) in data and str(MODEL_CARD.relative_to(root)) in data


def test_the_model_file_is_not_a_keras_zip_but_an_npz():
    # `load_model("pretrained")` must not reach Keras' .keras loader with it.
    assert zipfile.is_zipfile(PRETRAINED_FILE) and is_pretrained(PRETRAINED_FILE)
    assert is_pretrained("pretrained") and is_pretrained("PRETRAINED")
    assert not is_pretrained("runs/exp1") and not is_pretrained("model.keras")


# === Used by default ===


def test_cli_colorize_and_evaluate_without_model_use_the_shipped_model(tmp_path, capsys):
    from colorfusion import cli, io

    photos = tmp_path / "photos"
    for i, (height, width) in enumerate(((48, 80), (90, 60))):
        io.write_image(photos / f"p{i}.png", make_photo(np.random.default_rng(i), height, width))
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == ["p0.png", "p1.png"]
    assert io.read_rgb(outputs[1]).shape == (90, 60, 3)
    # --model pretrained names it explicitly: the same pixels.
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "named"), "--model", "pretrained", "--quiet"]) == 0
    assert all(np.array_equal(io.read_rgb(a), io.read_rgb(b)) for a, b in
               zip(outputs, sorted((tmp_path / "named").iterdir())))
    assert cli.main(["evaluate", "--data", str(photos), "--out", str(tmp_path / "report"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["n_images"] == 2 and "rebalanced_auc" in summary["methods"]["model"]


def test_cli_inference_size_sets_the_short_side_the_network_sees(tmp_path, monkeypatch):
    from colorfusion import cli, io

    seen = []
    original = Colorizer.predict_ab

    def spy(self, l_small, hint_maps=None):
        seen.append(np.shape(l_small)[1:3])
        return original(self, l_small, hint_maps)

    monkeypatch.setattr(Colorizer, "predict_ab", spy)
    io.write_image(tmp_path / "in" / "wide.png", make_photo(np.random.default_rng(0), 300, 400))
    assert cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--quiet",
                     "--inference-size", "96"]) == 0
    assert seen == [(96, 128)]


def test_a_command_that_fails_unexpectedly_prints_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    from colorfusion import cli, io

    io.write_image(tmp_path / "in" / "p.png", make_photo(np.random.default_rng(0), 40, 40))

    def broken(*args, **kwargs):
        raise RuntimeError("something deep inside\nwith a second line")

    monkeypatch.setattr("colorfusion.inference.batch.colorize_folder", broken)
    assert cli.main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: colorize failed: RuntimeError: something deep inside")
    assert not any("Traceback" in line for line in err)
