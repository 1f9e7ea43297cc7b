"""Where the model is unsure: the confidence formula, the "click here" places, `Colorizer.confidence`, the CLI."""

import numpy as np
import pytest

from colorfusion import cli, io
from colorfusion.errors import UsageError
from colorfusion.hints.simulation import simulate_hints
from colorfusion.inference.batch import confidence_path
from colorfusion.inference.confidence import (
    PLACES_LEAST,
    PLACES_MOST,
    as_gray,
    confidence_grid,
    unsure_places,
)

CENTERS = np.array([[0, 0], [10, 0], [60, 0], [-60, 0]], np.float32)  # ab bins: two near, two far apart


def cell(probs, ab):
    """A 1 x 1 grid: one distribution, its decoded ab."""
    return np.asarray(probs, np.float32)[None, None], np.asarray(ab, np.float32)[None, None]


# === The formula ===


def test_mass_is_the_probability_near_the_decoded_colour():
    probs, ab = cell([0.5, 0.5, 0, 0], [5, 0])
    assert confidence_grid(probs, CENTERS, ab)[0, 0] == pytest.approx(1.0)
    # "red or blue": the colour decoded in between is near neither mode.
    probs, ab = cell([0, 0, 0.5, 0.5], [0, 0])
    assert confidence_grid(probs, CENTERS, ab)[0, 0] == pytest.approx(0.0)
    probs, ab = cell([0.1, 0.1, 0.8, 0.0], [50, 0])
    assert confidence_grid(probs, CENTERS, ab)[0, 0] == pytest.approx(0.8)


def test_entropy_is_one_for_one_bin_and_zero_for_all_alike():
    one, _ = cell([0, 0, 1, 0], [60, 0])
    alike, _ = cell([0.25] * 4, [0, 0])
    assert confidence_grid(one, CENTERS, None, "entropy")[0, 0] == pytest.approx(1.0)
    assert confidence_grid(alike, CENTERS, None, "entropy")[0, 0] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="measure"):
        confidence_grid(one, CENTERS, None, "variance")


def test_the_decoded_colour_at_the_networks_size_is_averaged_onto_the_grid():
    probs = np.zeros((2, 3, 4), np.float32)
    probs[..., 2] = 1.0  # every cell sure of a = 60
    ab = np.zeros((8, 12, 2), np.float32)
    ab[..., 0] = 60
    ab[:4, :4, 0] = 0  # the top left cell shows gray, far from what it is sure of
    found = confidence_grid(probs, CENTERS, ab)
    assert found.shape == (2, 3) and found[0, 0] == 0 and np.all(found.ravel()[1:] == 1)


def test_as_gray_writes_255_for_sure():
    assert as_gray(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]


# === The places ===


def blob_map(height=120, width=160):
    confidence = np.ones((height, width), np.float32)
    confidence[20:80, 20:80] = 0.1  # large and very unsure
    confidence[30:60, 110:140] = 0.5  # smaller, less unsure
    confidence[100:102, :] = 0.0  # a thin line: unsure, but no region
    return confidence


def test_places_are_the_large_unsure_regions_most_unsure_first():
    places = unsure_places(blob_map())
    assert PLACES_LEAST <= len(places) <= PLACES_MOST
    assert 20 <= places[0].x < 80 and 20 <= places[0].y < 80  # the large, very unsure region first
    assert 100 <= places[1].x < 150 and 20 <= places[1].y < 70  # then the smaller one
    assert places[2].score < places[1].score / 2  # a thin unsure line is no region: at most a filler
    assert [p.score for p in places] == sorted((p.score for p in places), reverse=True)
    for place in places:
        assert 0 < place.x < 159 and 0 < place.y < 119  # never on the border


def test_a_photo_the_model_is_sure_of_gets_no_place():
    assert unsure_places(np.ones((64, 64), np.float32)) == []


def test_places_of_a_large_photo_are_in_its_own_pixels():
    big = np.kron(blob_map(), np.ones((25, 25), np.float32))  # 3000 x 4000, the same regions
    first = unsure_places(big)[0]
    assert 500 <= first.x < 2000 and 500 <= first.y < 2000


# === Simulated hints at given places ===


def test_simulated_hints_at_places_are_centred_there_with_the_true_colour():
    ab = np.zeros((32, 32, 2), np.float32)
    ab[:, 16:] = (0.5, -0.25)
    hints = simulate_hints(ab, np.random.default_rng(0), places=[(8, 24), (31, 0)])
    marked = hints[..., 2] > 0
    rows, cols = np.nonzero(marked[:16, 16:])
    assert abs(rows.mean() - 8) <= 1 and abs(cols.mean() + 16 - 24) <= 1
    assert np.allclose(hints[8, 24, :2], (0.5, -0.25))
    assert marked[31, 0] and marked.sum() <= 2 * 81  # the corner's patch stays inside the map


# === Colorizer.confidence ===


@pytest.fixture(scope="module")
def classifier(tiny_model):
    from colorfusion.inference.colorizer import Colorizer

    return Colorizer(tiny_model("classification", hints=True, seed=1))


def test_confidence_is_a_map_at_the_photos_size_in_0_1(classifier):
    photo = np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)
    found = classifier.confidence(photo)
    assert found.shape == (45, 70) and found.dtype == np.float32
    assert 0 <= found.min() and found.max() <= 1 and found.std() > 0
    held = classifier.hold(photo)
    assert np.array_equal(classifier.confidence(held), found)  # a held photo: the same map, read once
    with_hint = classifier.confidence(photo, hints=[(10, 10, "#c0392b")])
    assert with_hint.shape == found.shape and not np.array_equal(with_hint, found)


def test_a_model_without_probabilities_is_refused_in_the_runners_words(tiny_model):
    from colorfusion.inference.colorizer import Colorizer

    with pytest.raises(UsageError, match="regression model"):
        Colorizer(tiny_model("regression")).confidence(np.zeros((32, 32, 3), np.uint8))


# === colorize --confidence ===


def test_cli_writes_a_gray_confidence_png_beside_each_output(tiny_model_file, photo_tree, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["colorize", str(photo_tree), "-o", str(out), "--model", str(tiny_model_file("classification")),
                     "--confidence", "--quiet"])
    assert code == 0, capsys.readouterr().err
    for i in range(3):
        photo = out / "sub" / f"photo_{i:02d}.png"
        gray = io.read_rgb(confidence_path(photo))
        assert confidence_path(photo).name == f"photo_{i:02d}.confidence.png"
        assert gray.shape == io.read_rgb(photo).shape and np.array_equal(gray[..., 0], gray[..., 1])
    assert "3 written" in capsys.readouterr().out  # photos: each with its map


def test_cli_confidence_never_replaces_a_users_file_and_fills_in_a_missing_map(tiny_model_file, photo_tree,
                                                                              tmp_path, capsys):
    args = ["colorize", str(photo_tree / "sub" / "photo_00.png"), "-o", str(tmp_path / "out"),
            "--model", str(tiny_model_file("classification")), "--confidence", "--quiet"]
    mine = tmp_path / "out" / "photo_00.confidence.png"
    mine.parent.mkdir()
    mine.write_bytes(b"my own file")
    assert cli.main(args) == 0
    assert mine.read_bytes() == b"my own file"  # kept; the photo itself written
    assert (tmp_path / "out" / "photo_00.png").exists()
    assert cli.main(args) == 0 and "1 skipped" in capsys.readouterr().out
    mine.unlink()
    photo_bytes = (tmp_path / "out" / "photo_00.png").read_bytes()
    assert cli.main(args) == 0 and mine.exists()  # the missing map only: the photo is not written again
    assert (tmp_path / "out" / "photo_00.png").read_bytes() == photo_bytes
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left


def test_cli_confidence_map_that_would_be_another_inputs_output_is_refused(tiny_model_file, photo_tree, tmp_path,
                                                                          capsys):
    io.write_image(photo_tree / "sub" / "photo_00.confidence.png", np.zeros((8, 8, 3), np.uint8))
    code = cli.main(["colorize", str(photo_tree), "-o", str(tmp_path / "out"), "--model",
                     str(tiny_model_file("classification")), "--confidence", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "photo_00.confidence.png" in line and "already the output of" in line


def test_cli_confidence_with_a_regression_model_is_one_line_before_any_file(tiny_model_file, photo_tree, tmp_path,
                                                                            capsys):
    code = cli.main(["colorize", str(photo_tree), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file()),
                     "--confidence", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().count("\n") == 0
    assert err.startswith("error: ") and "regression model" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_confidence_and_no_provenance_are_for_the_local_engine_only(photo_tree, tmp_path, capsys):
    for option in ("--confidence", "--no-provenance"):
        code = cli.main(["colorize", str(photo_tree), "-o", str(tmp_path / "out"), "--engine", "ray", option])
        err = capsys.readouterr().err
        assert code == 1 and err.strip() == "error: --confidence and --no-provenance work with --engine local only"
    assert not (tmp_path / "out").exists()
