"""Evaluate a colorization model on colour photos, against two baselines.

Every photo is compared at `size` x `size` (256 by default, the field's
convention: the centred square, resized as in training), for three methods
on the same photos:

- `model`: the model's colorization of the photo's L;
- `grayscale`: ab = 0 everywhere (the floor a model must beat);
- `ground_truth`: the photo itself (the ceiling of each metric).

Outputs in `out_dir`: `per_image.csv` (one row per photo and method),
`summary.json` (means per method), `worst_best.png` (the photos with the
lowest and highest model AuC: original | grayscale | colorized).

Photos are read, colorized and scored a batch at a time, so memory does not
grow with the number of photos.

`evaluate_hints` scores a model that takes colour hints given 0, 1, 2, ...
points simulated from each true photo (Zhang et al. 2017, Fig. 4), beside
grayscale and, optionally, an automatic model. `evaluate_hint_response`
measures what a person does: one point asking for a colour the model did
not give, how far the colour there follows, and how much it spills onto
other objects far from the point.

Example:
    report = evaluate("runs/exp1", "photos/test", "reports/exp1")
    print(format_table(report.summary))
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from colorfusion import augment, color, datasets, figures, io, metrics
from colorfusion import bins as bins_lib
from colorfusion.bins import ABBins
from colorfusion.errors import UsageError
from colorfusion.hints.simulation import simulate_hints
from colorfusion.inference.colorizer import as_colorizer
from colorfusion.inference.engine import colorize_iter

METHODS = ("model", "grayscale", "ground_truth")
METRIC_COLUMNS = ("auc", "rebalanced_auc", "psnr", "ssim", "colorfulness")
OUTPUT_FILES = {"csv": "per_image.csv", "json": "summary.json", "grid": "worst_best.png"}


@dataclass
class EvaluationReport:
    """Per-image rows, their means, unreadable files and the files written."""

    rows: list = field(default_factory=list)  # dicts: file, method, *METRIC_COLUMNS
    summary: dict = field(default_factory=dict)  # size, n_images, bins, methods: {method: {metric: mean}}
    failed: list = field(default_factory=list)  # (path, reason)
    paths: dict = field(default_factory=dict)  # "csv" / "json" / "grid" -> Path

    @property
    def ok(self) -> bool:
        return not self.failed


def evaluate(model, data, out_dir, size: int = 256, bins=None, batch_size: int = 8, grid_rows: int = 3,
             progress: bool = True, log=None, **colorizer_kwargs) -> EvaluationReport:
    """Score `model` and the two baselines on colour photos; write the report files.

    Args:
        model: a `Colorizer`, a Keras model, or a `.keras` file / run folder.
        data: a folder of colour photos (searched recursively) or a list of files.
        out_dir: report folder (created when needed).
        size: the side photos are compared at.
        bins: `ABBins` whose prior weights the rebalanced AuC; by default
            fitted on the evaluated photos, so that models of either head, and
            their bins, are scored alike.
        grid_rows: photos shown from each end (worst, best) in the grid.
        log: called with each one-line error (default: stderr).
        **colorizer_kwargs: `decode`, `temperature`, ... when `model` is not a Colorizer.

    Returns:
        An `EvaluationReport`; unreadable photos are in `failed` (and skipped).

    Raises:
        ValueError: no photo could be read.
    """
    if not isinstance(size, int) or size < 8:
        raise UsageError(f"size must be an integer of at least 8. Received: size={size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    colorizer = as_colorizer(model, **colorizer_kwargs)
    files, root = _files(data)
    bins, bins_source = _bins(files, size, bins)
    report = EvaluationReport()
    for start in tqdm(range(0, len(files), batch_size), desc="evaluate", unit="batch", disable=not progress):
        names, truths = [], []
        for path in files[start:start + batch_size]:
            try:
                truths.append(augment.load_square(path, size))
                names.append(_name(path, root))
            except io.ImageReadError as e:
                report.failed.append((Path(path), e.reason))
                log(f"error: {e}")
        if truths:
            report.rows += score_batch(names, truths, colorizer.colorize_many(truths), bins)
    if not report.rows:
        raise UsageError(f"No readable photos to evaluate among {len(files)} file(s).")
    report.summary = summarize(report.rows, size, bins_source, report.failed)
    report.paths = write_report(report, out_dir, colorizer, files, root, size, grid_rows)
    return report


def _files(data):
    if isinstance(data, (str, Path)) and Path(data).is_dir():
        return datasets.find_images(data), Path(data)
    return [Path(f) for f in ([data] if isinstance(data, (str, Path)) else data)], None


def _name(path, root) -> str:
    return Path(path).relative_to(root).as_posix() if root is not None else str(path)


def _bins(files, size, bins):
    if bins is not None:
        return bins, "given"
    # Never the model's own bins: every model (either head) is scored against the same prior.
    def squares():  # unreadable files are reported by the main pass
        for path in files:
            try:
                yield augment.load_square(path, size)
            except io.ImageReadError:
                continue

    try:
        return bins_lib.ABBins.fit(squares()), "fitted on the evaluated photos"
    except ValueError:  # no pixels: nothing readable; the main pass says so
        return None, "none"


def score_batch(names, truths, predictions, bins) -> list[dict]:
    """One row per photo and method: the metrics of `METRIC_COLUMNS` against the truth."""
    rows = []
    for name, truth, prediction in zip(names, truths, predictions):
        candidates = {"model": prediction, "grayscale": color.gray_version(truth), "ground_truth": truth}
        for method, rgb in candidates.items():
            values = metrics.image_metrics(truth, rgb, bins=bins)
            rows.append({"file": name, "method": method,
                         **{key: float(values.get(key, np.nan)) for key in METRIC_COLUMNS}})
    return rows


def summarize(rows, size, bins_source="", failed=()) -> dict:
    """Means of every metric per method, with what they were computed on."""
    methods = {}
    for method in METHODS:
        selected = [row for row in rows if row["method"] == method]
        methods[method] = {key: float(np.mean([row[key] for row in selected])) for key in METRIC_COLUMNS}
    return {"size": size, "n_images": len({row["file"] for row in rows}), "n_failed": len(failed),
            "rebalancing_bins": bins_source, "methods": methods}


def gains_over_grayscale(summary: dict) -> dict:
    """The model's scores beside the grayscale baseline and the real photos, from an `evaluate` summary.

    Returns:
        {"rebalanced_auc_gain", "auc_gain" (points over grayscale), "psnr_gain" (dB),
        "colorfulness_ratio" (of the real photos'), and the scores they come from}.
    """
    methods = summary["methods"]
    model, gray, truth = methods["model"], methods["grayscale"], methods["ground_truth"]
    return {
        "rebalanced_auc_gain": round(100 * (model["rebalanced_auc"] - gray["rebalanced_auc"]), 2),
        "colorfulness_ratio": round(model["colorfulness"] / truth["colorfulness"], 3),
        "psnr_gain": round(model["psnr"] - gray["psnr"], 2),
        "auc_gain": round(100 * (model["auc"] - gray["auc"]), 2),
        "rebalanced_auc": round(model["rebalanced_auc"], 4),
        "grayscale_rebalanced_auc": round(gray["rebalanced_auc"], 4),
        "psnr": round(model["psnr"], 2),
        "colorfulness": round(model["colorfulness"], 1),
        "true_colorfulness": round(truth["colorfulness"], 1),
        "n_images": summary["n_images"],
    }


def format_table(summary: dict) -> str:
    """The means as a fixed-width text table, one row per method."""
    header = f"{'method':<14}" + "".join(f"{key:>16}" for key in METRIC_COLUMNS)
    lines = [header, "-" * len(header)]
    for method, values in summary["methods"].items():
        lines.append(f"{method:<14}" + "".join(f"{values[key]:>16.4f}" for key in METRIC_COLUMNS))
    return "\n".join(lines)


def write_report(report, out_dir, colorizer, files, root, size, grid_rows) -> dict:
    """Write per_image.csv, summary.json and worst_best.png (each atomically)."""
    out_dir = Path(out_dir)
    paths = {key: out_dir / name for key, name in OUTPUT_FILES.items()}
    with io.atomic_write(paths["csv"], "w") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "method", *METRIC_COLUMNS])
        writer.writeheader()
        writer.writerows(report.rows)
    with io.atomic_write(paths["json"], "w") as f:
        json.dump(report.summary, f, indent=2)
    # Only the grid's photos are read again: nothing else was kept.
    model_rows = [row for row in report.rows if row["method"] == "model"]
    order = np.argsort([row["auc"] for row in model_rows], kind="stable")
    count = max(1, min(grid_rows, len(order) // 2))  # worst and best never overlap when n >= 2
    picks = [model_rows[i] for i in [*order[:count], *order[::-1][:count]]]
    by_name = {_name(path, root): path for path in files}
    truths = np.stack([augment.load_square(by_name[row["file"]], size) for row in picks])
    predictions = np.stack(colorizer.colorize_many(list(truths)))
    gray = np.stack([color.gray_version(t) for t in truths])
    title = f"lowest model AuC (top {count} rows) and highest (bottom {count})"
    figure = figures.preview_figure(truths, gray, predictions, picks, title)
    figures.save_figure(figure, paths["grid"], dpi=80)
    return paths


# === Colour hints ===

HINT_COUNTS = (0, 1, 2, 5, 10, 20)


def evaluate_hints(model, data, counts=HINT_COUNTS, size: int = 256, automatic=None, bins=None, seed: int = 0,
                   batch_size: int = 8, progress: bool = True, log=None) -> dict:
    """Score a hint model given 0, 1, 2, ... points simulated from each true photo, beside grayscale.

    As Zhang et al. (2017, Fig. 4) measure their user-guided network: each
    photo (its centred square at `size`) gets `count` points at random
    places, each a square patch of 1 to 9 pixels holding its mean true
    colour (`generator.simulate_hints`, seeded by `(seed, photo, count)`, so
    two models see the same points). With `automatic`, an automatic model
    of the same recipe is scored once beside it.

    Args:
        model: a hint model: a `Colorizer`, a Keras model or a path.
        data: a folder of colour photos or a list of files.
        counts: the numbers of points.
        automatic: optional automatic model to compare with (same kinds as `model`).
        bins: `ABBins` weighting the rebalanced AuC; default fitted on the photos.

    Returns:
        {"photos", "size", "true_colorfulness", "grayscale": {metric: mean},
        "hints": {str(count): {metric: mean}}, ["automatic": {metric: mean}]},
        metrics "rebalanced_auc", "psnr", "colorfulness" (and "seconds"); each
        count also has "psnr_gain_mean" and "psnr_gain_p5", the mean and the
        5th percentile over photos of each photo's PSNR gain over the same
        model given no hints (the worst case a hint can do).

    Raises:
        ValueError: the model takes no hints, or no photo could be read.
    """
    colorizer, truths = _hint_model_and_truths(model, data, size, log)
    if bins is None:
        bins = ABBins.fit(iter(truths))
    prepared = [colorizer.read_lightness(truth) for truth in truths]  # read once, run at every count
    # The points are drawn on the photo as the network sees it (its input size).
    true_ab = [true_ab_scaled(truth, l_small.shape[:2]) for truth, (_, l_small) in zip(truths, prepared)]

    def score(scorer, maps, label):
        rows, start = [], time.perf_counter()
        for begin in tqdm(range(0, len(truths), batch_size), desc=label, unit="batch", leave=False,
                          disable=not progress):
            chunk = range(begin, min(begin + batch_size, len(truths)))
            done = colorize_iter(scorer, [prepared[i] for i in chunk],
                                 hint_maps=None if maps is None else [maps[i] for i in chunk])
            rows += [metrics.image_metrics(truths[i], result.rgb, bins=bins) for i, result in zip(chunk, done)]
        return rows, {**_means(rows), "seconds": round(time.perf_counter() - start, 1)}

    gray = [metrics.image_metrics(t, color.gray_version(t), bins=bins) for t in truths]
    results = {"photos": len(truths), "size": size,
               "true_colorfulness": float(np.mean([row["colorfulness_true"] for row in gray])),
               "grayscale": _means(gray), "hints": {}}
    if automatic is not None:
        results["automatic"] = score(as_colorizer(automatic, size=size), None, "automatic")[1]
    # The worst case matters as much as the mean (a hint should almost never make a photo worse):
    # each photo's PSNR gain over the same model given no hints.
    unhinted = [row["psnr"] for row in score(colorizer, None, "no hints")[0]]
    for count in counts:
        # A photo's points depend on (seed, photo, count) only: every model sees the same.
        maps = [simulate_hints(ab, np.random.default_rng([seed, i, int(count)]), count=int(count))
                for i, ab in enumerate(true_ab)]
        rows, means = score(colorizer, maps, f"{count} points")
        gains = np.array([row["psnr"] for row in rows]) - np.array(unhinted)
        results["hints"][str(count)] = {**means, "psnr_gain_mean": float(gains.mean()),
                                        "psnr_gain_p5": float(np.percentile(gains, 5))}
    return results


def true_ab_scaled(truth: np.ndarray, shape) -> np.ndarray:
    """The true ab / 128 (h, w, 2) of a colour photo resized to the network's input `shape` (h, w): what
    simulated points are drawn from (`hints.simulation.simulate_hints`)."""
    return color.ab_to_model(color.split_lab(color.rgb_to_lab(io.resize(truth, shape[1], shape[0])))[1])


# What a person asks: a vivid colour the model did not give at a point (Lab ab units and pixels at `size`).
ASKED_COLOURS = ("#d62728", "#ff7f0e", "#f1c40f", "#2ca02c", "#17becf", "#1f3fb4", "#8e44ad", "#e377c2")
NEW_COLOUR_DISTANCE = 40.0  # the asked colour is at least this far (ab) from the model's own there
RESPONSE_RADIUS = 3  # "around the point": the (2r + 1)^2 pixels centred on it
SPILL_DISTANCE = 64  # "far from the point": pixels at least this far away (a quarter of 256)
SPILL_TRUE_DIFFERENCE = 20.0  # "another object": its true ab differs from the point's by more than this


def evaluate_hint_response(model, data, size: int = 256, seed: int = 0, batch_size: int = 8,
                           progress: bool = True, log=None) -> dict:
    """One point asking for a colour the model did not give: does the colour there follow, and does it spill?

    Each photo (its centred square at `size`) gets one point at a random
    place (seeded by `(seed, photo)`), asking for one of `ASKED_COLOURS` at
    least `NEW_COLOUR_DISTANCE` away (ab) from the model's own colour there
    (seen at the photo's lightness, as `hint_map` gives any user's point).
    With `d` the asked change (asked ab minus the automatic ab at the point):

    - response: the mean, over the pixels around the point
      (`RESPONSE_RADIUS`), of the move toward the asked colour,
      `<ab_hinted - ab_auto, d> / |d|^2` (1: all the way, 0: not at all);
    - spill: over the pixels at least `SPILL_DISTANCE` from the point whose
      true colour differs from the point's (another object), the mean move
      toward the asked colour, `max(0, <ab_hinted - ab_auto, d / |d|>) / |d|`,
      as a share of the asked change.

    Returns:
        {"photos", "response_mean", "too_little" (share of points with a
        response below 0.5), "spill_mean", "spill_p95", "skipped" (photos
        where no asked colour was far enough)}.

    Raises:
        ValueError: the model takes no hints, or no photo could be read.
    """
    colorizer, truths = _hint_model_and_truths(model, data, size, log)
    responses, spills, skipped = [], [], 0
    for begin in tqdm(range(0, len(truths), batch_size), desc="hint response", unit="batch", leave=False,
                      disable=not progress):
        chunk = range(begin, min(begin + batch_size, len(truths)))
        # The network's ab (no full-resolution join): without a point, then with each photo's ask.
        automatic = list(colorize_iter(colorizer, [truths[i] for i in chunk], rgb=False))
        asks = [_ask_new_colour(np.random.default_rng([seed, i]), result.lightness.full, result.ab)
                for i, result in zip(chunk, automatic)]
        hinted = colorize_iter(colorizer, [result.lightness for result in automatic], rgb=False,
                               hints=[None if ask is None else [ask[:3]] for ask in asks])
        for i, ask, ab_auto, ab_hint in zip(chunk, asks, (r.ab for r in automatic), (r.ab for r in hinted)):
            if ask is None:
                skipped += 1
                continue
            response, spill = _response_and_spill(truths[i], ask, ab_auto, ab_hint)
            responses.append(response)
            spills.append(spill)
    if not responses:
        raise UsageError(f"none of the {len(truths)} photos had a colour far enough from the model's own")
    responses = np.array(responses)
    spills = np.array([spill for spill in spills if np.isfinite(spill)])  # photos with another object far away
    return {"photos": len(responses), "response_mean": float(responses.mean()),
            "too_little": float((responses < 0.5).mean()),
            "spill_mean": float(spills.mean()) if spills.size else None,
            "spill_p95": float(np.percentile(spills, 95)) if spills.size else None, "skipped": skipped}


def _around(x: float, y: float, photo_shape, grid_shape) -> tuple[slice, slice]:
    """The `RESPONSE_RADIUS` window on the network's grid around the photo's pixel (x, y)."""
    row = int((y + 0.5) * grid_shape[0] / photo_shape[0])
    col = int((x + 0.5) * grid_shape[1] / photo_shape[1])
    return (slice(max(0, row - RESPONSE_RADIUS), row + RESPONSE_RADIUS + 1),
            slice(max(0, col - RESPONSE_RADIUS), col + RESPONSE_RADIUS + 1))


def _ask_new_colour(rng, l_full, ab_auto):
    """(x, y, colour, asked ab) of a point asking for a colour far from the model's own there, or None.

    x, y are the photo's pixels; the model's own colour is read on its grid (`ab_auto`).
    """
    height, width = l_full.shape
    margin = max(1, height // 32), max(1, width // 32)
    y, x = int(rng.integers(margin[0], height - margin[0])), int(rng.integers(margin[1], width - margin[1]))
    own = ab_auto[_around(x, y, l_full.shape, ab_auto.shape)].reshape(-1, 2).mean(axis=0)
    lightness = float(l_full[max(0, y - 1):y + 2, max(0, x - 1):x + 2].mean())
    candidates = [(colour, color.ab_at_lightness(colour, lightness)) for colour in ASKED_COLOURS]
    far = [(colour, ab) for colour, ab in candidates if np.linalg.norm(ab - own) >= NEW_COLOUR_DISTANCE]
    if not far:
        return None
    colour, ab = far[int(rng.integers(len(far)))]
    return x, y, colour, ab


def _response_and_spill(truth, ask, ab_auto, ab_hint) -> tuple[float, float]:
    """(response, spill) of one point on the network's grid (see `evaluate_hint_response`)."""
    x, y, _, asked = ask
    grid = ab_auto.shape[:2]
    around = _around(x, y, truth.shape[:2], grid)
    change = asked - ab_auto[around].reshape(-1, 2).mean(axis=0)
    norm = float(np.linalg.norm(change))
    moved = ab_hint - ab_auto
    response = float((moved[around].reshape(-1, 2) @ change).mean() / norm**2)
    true_ab = color.split_lab(color.rgb_to_lab(io.resize(truth, grid[1], grid[0])))[1]
    rows, cols = np.mgrid[0:grid[0], 0:grid[1]]
    centre_row, centre_col = (around[0].start + around[0].stop) / 2, (around[1].start + around[1].stop) / 2
    far = np.hypot(rows - centre_row, cols - centre_col) >= SPILL_DISTANCE * grid[0] / truth.shape[0]
    other = np.linalg.norm(true_ab - true_ab[around].reshape(-1, 2).mean(axis=0), axis=-1) > SPILL_TRUE_DIFFERENCE
    region = far & other
    if not region.any():
        return response, float("nan")
    toward = np.maximum(0.0, moved[region] @ (change / norm))
    return response, float(toward.mean() / norm)


def _hint_model_and_truths(model, data, size: int, log) -> tuple:
    """(the hint model as a `Colorizer`, the readable photos as centred squares at `size`); unreadable ones logged.

    Raises:
        UsageError: the model takes no hints, or no photo could be read.
    """
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    colorizer = as_colorizer(model, size=size)
    if not colorizer.takes_hints:
        raise UsageError("this model takes no colour hints: evaluate it with evaluate()")
    files, _ = _files(data)
    truths = []
    for path in files:
        try:
            truths.append(augment.load_square(path, size))
        except io.ImageReadError as e:
            log(f"error: {e}")
    if not truths:
        raise UsageError(f"No readable photos to evaluate among {len(files)} file(s).")
    return colorizer, truths


def _means(rows) -> dict:
    return {key: float(np.mean([row[key] for row in rows])) for key in ("rebalanced_auc", "psnr", "colorfulness")}

