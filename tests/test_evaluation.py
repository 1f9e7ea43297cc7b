import csv
import json

import numpy as np
import pytest
from photos import make_photo, write_photos
from PIL import Image

from colorfusion import augment, color, io, metrics
from colorfusion.bins import ABBins
from colorfusion.evaluation import METHODS, METRIC_COLUMNS, evaluate, format_table
from colorfusion.inference.colorizer import Colorizer

PHOTO_COUNT = 7  # the module's `photos` folder (conftest)


@pytest.fixture(scope="module")
def regression(tiny_model):
    return tiny_model(seed=0)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_writes_every_file_with_both_baselines(regression, photos, tmp_path):
    report = evaluate(regression, photos, tmp_path / "report", size=24, batch_size=3, progress=False)
    assert set(report.paths) == {"csv", "json", "grid"} and all(p.is_file() for p in report.paths.values())
    rows = read_rows(tmp_path / "report" / "per_image.csv")
    assert len(rows) == 7 * 3 and {r["method"] for r in rows} == set(METHODS)
    assert list(rows[0]) == ["file", "method", *METRIC_COLUMNS]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["size"] == 24 and summary["n_images"] == 7 and summary["n_failed"] == 0
    assert summary["rebalancing_bins"] == "fitted on the evaluated photos"
    # The means are those of the CSV rows.
    model_auc = np.mean([float(r["auc"]) for r in rows if r["method"] == "model"])
    assert summary["methods"]["model"]["auc"] == pytest.approx(model_auc)
    assert not list((tmp_path / "report").glob(".*")), "temporary files left behind"


def test_grayscale_baseline_differs_from_the_truth_and_the_truth_is_perfect(regression, photos, tmp_path):
    summary = evaluate(regression, photos, tmp_path, size=24, progress=False).summary["methods"]
    truth, gray = summary["ground_truth"], summary["grayscale"]
    assert truth["auc"] == pytest.approx(1.0) and truth["ssim"] == pytest.approx(1.0) and truth["psnr"] == 100.0
    assert gray["auc"] < 0.95 and gray["psnr"] < 40 and gray["colorfulness"] < 1.0 < truth["colorfulness"]


def test_grayscale_baseline_keeps_l_and_drops_colour():
    rgb = make_photo(np.random.default_rng(0), 20, 30)
    gray = color.gray_version(rgb)
    assert gray.dtype == np.uint8 and (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert np.abs(color.rgb_to_l(gray) - color.rgb_to_l(rgb)).max() <= 0.5


def test_photos_are_compared_as_their_centred_square_at_size(regression, tmp_path):
    rgb = np.zeros((40, 100, 3), np.uint8)
    rgb[:, :30], rgb[:, 70:] = (40, 40, 200), (40, 200, 40)
    rgb[:, 30:70] = (200, 40, 40)  # the centred 40 x 40 square is all red, blue and green beside it
    square = augment.fit_square(rgb, 16)
    assert square.shape == (16, 16, 3) and (np.abs(square.astype(int) - (200, 40, 40)) <= 1).all()
    colorizer = Colorizer(regression)
    report = evaluate(colorizer, [io.write_image(tmp_path / "wide.png", rgb)], tmp_path / "report", size=16,
                      progress=False)
    rows = {row["method"]: row for row in report.rows}
    # The truth evaluate scores against is the red square (the whole photo squeezed would be three colours),
    # and the model colorized that square.
    assert rows["ground_truth"]["colorfulness"] == pytest.approx(metrics.colorfulness(square))
    assert metrics.colorfulness(io.resize(rgb, 16, 16)) > 1.5 * metrics.colorfulness(square)
    expected = metrics.image_metrics(square, colorizer(square))
    for key in ("auc", "psnr", "ssim", "colorfulness"):
        assert rows["model"][key] == pytest.approx(expected[key]), key


def test_unreadable_photos_are_listed_and_the_rest_scored(regression, photos, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    files = sorted(photos.iterdir())[:3] + [bad]
    lines = []
    report = evaluate(regression, files, tmp_path / "report", size=16, progress=False, log=lines.append)
    assert not report.ok and [p for p, _ in report.failed] == [bad]
    assert len(lines) == 1 and "bad.png" in lines[0] and "not an image" in lines[0]
    assert report.summary["n_images"] == 3 and report.summary["n_failed"] == 1
    with pytest.raises(ValueError, match="No readable photos"):
        evaluate(regression, [bad], tmp_path / "none", size=16, progress=False, log=lines.append)


def test_the_grid_shows_the_worst_and_best_photos_without_overlap(regression, photos, tmp_path):
    report = evaluate(regression, photos, tmp_path, size=16, grid_rows=3, progress=False)
    with Image.open(report.paths["grid"]) as grid:
        width, height = grid.size
    assert height > 1.5 * width  # 6 rows (3 worst, 3 best) of 3 columns
    few = evaluate(regression, sorted(photos.iterdir())[:2], tmp_path / "few", size=16, grid_rows=3,
                   progress=False)
    with Image.open(few.paths["grid"]) as grid:
        assert grid.size[1] < grid.size[0]  # 2 photos: one worst row, one best row


def test_a_classification_model_is_rebalanced_with_the_evaluated_photos_prior_not_its_own(photos, tiny_model,
                                                                                         tmp_path):
    bins = ABBins.fit([io.read_rgb(p) for p in sorted(photos.iterdir())[:2]], num_bins=20)
    model = tiny_model("classification", bins=bins)
    report = evaluate(model, photos, tmp_path, size=16, progress=False, decode="mode")
    assert report.summary["rebalancing_bins"] == "fitted on the evaluated photos"
    assert 0 <= report.summary["methods"]["model"]["rebalanced_auc"] <= 1
    # Same photos, same prior: the grayscale baseline scores the same whatever model is evaluated.
    regression = tiny_model("regression")
    other = evaluate(regression, photos, tmp_path / "r", size=16, progress=False)
    gray = [r["methods"]["grayscale"]["rebalanced_auc"] for r in (report.summary, other.summary)]
    assert gray[0] == pytest.approx(gray[1])


def test_format_table_has_one_row_per_method_with_the_means():
    summary = {"methods": {m: {k: i + 0.5 for k in METRIC_COLUMNS} for i, m in enumerate(METHODS)}}
    lines = format_table(summary).splitlines()
    assert len(lines) == 2 + len(METHODS)
    assert all(key in lines[0] for key in METRIC_COLUMNS)
    assert lines[2].split()[0] == "model" and lines[2].split()[1] == "0.5000"
    assert lines[4].split()[0] == "ground_truth" and lines[4].split()[-1] == "2.5000"


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_bad_batch_size_raises_value_error_before_any_work(regression, photos, tmp_path, batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        evaluate(regression, photos, tmp_path / "report", size=16, batch_size=batch_size, progress=False)
    assert not (tmp_path / "report").exists()


def test_evaluate_hints_reports_each_photos_gain_over_no_hints_its_mean_and_worst_case(tmp_path, tiny_model):
    from colorfusion.evaluation import evaluate_hints

    hinted = tiny_model(hints=True, seed=0)
    for weight in hinted.weights:  # hint layers that do something, so that points change the colours
        if "hint" in weight.path and "kernel" in weight.path:
            weight.assign(np.random.default_rng(1).normal(0, 0.3, weight.shape).astype("float32"))
    photos = write_photos(tmp_path / "photos", count=6, sizes=(40, 48))
    results = evaluate_hints(Colorizer(hinted), photos, counts=(0, 5), size=32, progress=False)
    none, five = results["hints"]["0"], results["hints"]["5"]
    assert none["psnr_gain_mean"] == 0 and none["psnr_gain_p5"] == 0  # no points: the model given no hints
    assert five["psnr_gain_p5"] <= five["psnr_gain_mean"] and five["psnr_gain_mean"] != 0
    assert five["psnr_gain_mean"] == pytest.approx(five["psnr"] - none["psnr"], abs=1e-9)


# === A hint asking for a new colour: response at the point, spill far from it ===


class PaintsAskedColour(Colorizer):
    """A stand-in hint model: no colour without hints; given a point, its colour over `reach` pixels of it.

    `reach=None` paints the whole photo (all spill), `reach=0` nothing (a hint that does not act).
    """

    def __init__(self, reach):  # no Keras model: the engine's steps evaluate_hint_response calls
        self.reach, self.takes_hints, self.image_size, self.size = reach, True, None, 64

    def read_lightness(self, image):
        l_full = color.rgb_to_l(np.asarray(image))[..., 0]
        return l_full, l_full[..., None]

    def predict_ab_many(self, l_smalls, hint_maps=None):
        out = []
        for index, l_small in enumerate(l_smalls):
            ab = np.zeros(l_small.shape[:2] + (2,), np.float32)
            points = None if hint_maps is None else hint_maps[index]
            if points is not None and self.reach != 0:
                mask = points[..., 2] > 0
                asked = points[mask][:, :2].mean(axis=0) * color.AB_SCALE
                if self.reach is None:
                    ab[:] = asked
                else:
                    rows, cols = np.nonzero(mask)
                    near = (slice(max(0, rows.min() - self.reach), rows.max() + self.reach + 1),
                            slice(max(0, cols.min() - self.reach), cols.max() + self.reach + 1))
                    ab[near] = asked
            out.append(ab)
        return out


@pytest.fixture(scope="module")
def patchwork(tmp_path_factory):
    """Photos of 4 x 4 flat patches of random colours: other objects everywhere, far from any point."""
    folder = tmp_path_factory.mktemp("patchwork")
    rng = np.random.default_rng(0)
    return [io.write_image(folder / f"p{i}.png", np.kron(rng.integers(0, 256, (4, 4, 3)),
                                                           np.ones((64, 64, 1))).astype(np.uint8))
            for i in range(6)]


def test_hint_response_tells_a_local_hint_from_one_that_spills_or_does_nothing(patchwork):
    from colorfusion.evaluation import evaluate_hint_response

    local = evaluate_hint_response(PaintsAskedColour(reach=8), patchwork, progress=False)
    spills = evaluate_hint_response(PaintsAskedColour(reach=None), patchwork, progress=False)
    idle = evaluate_hint_response(PaintsAskedColour(reach=0), patchwork, progress=False)
    assert local["photos"] == spills["photos"] == idle["photos"] == 6
    assert local["response_mean"] == pytest.approx(1.0, abs=0.02) and local["too_little"] == 0
    assert local["spill_mean"] == 0 and local["spill_p95"] == 0
    assert spills["response_mean"] == pytest.approx(1.0, abs=0.02)
    assert spills["spill_mean"] == pytest.approx(1.0, abs=0.02)  # every other object took the asked colour
    assert idle["response_mean"] == 0 and idle["too_little"] == 1 and idle["spill_mean"] == 0


def test_spill_counts_other_objects_only_not_the_far_end_of_the_hinted_one():
    from colorfusion.evaluation import _response_and_spill

    truth = np.zeros((256, 256, 3), np.uint8)
    truth[:, :128], truth[:, 128:] = (30, 90, 200), (200, 60, 40)  # a blue object, a red one
    asked = np.array([40.0, 40.0])
    ab_auto = np.zeros((256, 256, 2), np.float32)
    ab_hint = ab_auto.copy()
    ab_hint[:, :128] = asked  # the whole blue object follows the point, however far
    response, spill = _response_and_spill(truth, (20, 128, "#ff0000", asked), ab_auto, ab_hint)
    assert response == pytest.approx(1.0) and spill == 0
    ab_hint[:, 200:] = asked / 2  # half the way on the red object
    assert _response_and_spill(truth, (20, 128, "#ff0000", asked), ab_auto, ab_hint)[1] == pytest.approx(
        0.5 * 56 / 128, abs=0.02)  # the red object lies at >= 64 px from the point: columns 128-255
