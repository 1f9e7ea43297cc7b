"""Each per-image row of `evaluate` is the metrics of that photo against its own colorization."""

import csv

import keras
import pytest
from photos import write_photos

from colorfusion import augment, color, metrics
from colorfusion.bins import ABBins
from colorfusion.evaluation import METRIC_COLUMNS, evaluate
from colorfusion.inference.colorizer import Colorizer

SIZE = 24


@pytest.fixture(scope="module")
def colorizer(tiny_model):
    model = tiny_model(seed=0)
    # A random model paints every photo nearly gray: strengthen its last layer, so that each photo gets
    # colours of its own and a prediction paired with the wrong photo shows in the metrics.
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    last.kernel.assign(last.kernel * 30.0)
    return Colorizer(model)


def test_each_row_is_image_metrics_of_that_photo_and_its_own_colorization(colorizer, tmp_path):
    files = write_photos(tmp_path / "photos", count=5, seed=3)
    truths = {path.name: augment.load_square(path, SIZE) for path in files}
    bins = ABBins.fit(truths.values(), num_bins=40)
    # Batches of 3 and 2: predictions mixed up inside a batch, or between batches, change the rows.
    report = evaluate(colorizer, tmp_path / "photos", tmp_path / "report", size=SIZE, bins=bins, batch_size=3,
                      progress=False)
    with open(report.paths["csv"], newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["file"], r["method"]) for r in written] == [(r["file"], r["method"]) for r in report.rows]
    assert sorted({r["file"] for r in written}) == sorted(truths)
    own = {}
    for row, csv_row in zip(report.rows, written):
        truth = truths[row["file"]]
        if row["file"] not in own:
            own[row["file"]] = colorizer(truth)  # this photo alone
        candidates = {"model": own[row["file"]], "grayscale": color.gray_version(truth), "ground_truth": truth}
        expected = metrics.image_metrics(truth, candidates[row["method"]], bins=bins)
        for key in METRIC_COLUMNS:
            where = f"{row['file']} {row['method']} {key}"
            assert row[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), where
            assert float(csv_row[key]) == pytest.approx(row[key], rel=1e-9), where
    # The photos' colorizations differ enough that a mix-up could not pass unnoticed.
    first, second = list(truths)[:2]
    swapped = metrics.image_metrics(truths[first], own[second], bins=bins)
    assert swapped["psnr"] != pytest.approx(metrics.image_metrics(truths[first], own[first], bins=bins)["psnr"],
                                            abs=0.5)
