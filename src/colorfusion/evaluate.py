"""Evaluate a colorization model on a folder of colour photos.

Every photo is compared at `size` x `size` (256 by default, the field's
convention: short side resized to `size`, centre crop), for three methods on
the same photos:

- `model`: the colorization of the photo's L by the model;
- `grayscale`: ab = 0 everywhere (the floor a model must beat);
- `ground_truth`: the photo itself (the ceiling of each scale).

Outputs in `out_dir`: `per_image.csv` (one row per photo and method),
`summary.json` (means per method), `worst_best.png` (the photos with the
lowest and highest model AuC: original | grayscale | colorized).
"""

from __future__ import annotations

import csv
import io as pyio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from colorfusion import color, io, metrics

METHODS = ("model", "grayscale", "ground_truth")
METRIC_COLUMNS = ("auc", "rebalanced_auc", "psnr", "ssim", "colorfulness")


@dataclass
class EvaluationReport:
    rows: list = field(default_factory=list)  # dicts: file, method, metrics
    summary: dict = field(default_factory=dict)  # method -> metric -> mean
    failed: list = field(default_factory=list)  # (path, reason)
    paths: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def center_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to `size` and take the centre `size` x `size` crop."""
    height, width = rgb.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    flag = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=flag)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.ascontiguousarray(resized[top:top + size, left:left + size])


def grayscale_baseline(rgb: np.ndarray) -> np.ndarray:
    """The photo with ab = 0: uint8 RGB of its own L."""
    return (color.gray_rgb_from_l(color.rgb_to_l(rgb)) * 255.0 + 0.5).astype(np.uint8)


def evaluate(colorizer, files, out_dir, size: int = 256, bins=None, batch_size: int = 8,
             grid_rows: int = 3, progress: bool = True, log=None) -> EvaluationReport:
    """Evaluate `colorizer` (a `colorize.Colorizer`) on colour photo `files`.

    Args:
        bins: `ABBins` for the rebalanced AuC; by default the model's own bins
            (classification head) or bins fitted on the evaluated photos.

    Returns:
        An `EvaluationReport`; unreadable files are listed in `failed`.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels. Received: size={size!r}")
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    out_dir = Path(out_dir)
    report = EvaluationReport()
    truths, names = [], []
    for path in tqdm(files, desc="read", unit="img", disable=not progress):
        try:
            truths.append(center_square(io.read_rgb(path, max_side=8 * size), size))
            names.append(str(path))
        except io.ImageReadError as e:
            report.failed.append((Path(path), e.reason))
            log(f"error: {e}")
    if not truths:
        raise ValueError("No readable photos to evaluate.")
    bins = bins if bins is not None else _default_bins(colorizer, truths)
    predictions = []
    for start in tqdm(range(0, len(truths), batch_size), desc="colorize", unit="batch", disable=not progress):
        predictions += colorizer.colorize_many(truths[start:start + batch_size])
    for name, truth, prediction in zip(names, truths, predictions):
        candidates = {"model": prediction, "grayscale": grayscale_baseline(truth), "ground_truth": truth}
        for method, rgb in candidates.items():
            values = metrics.image_metrics(truth, rgb, bins=bins)
            report.rows.append({"file": name, "method": method, **{k: values[k] for k in METRIC_COLUMNS}})
    report.summary = summarize(report.rows, size)
    report.paths = write_outputs(report, truths, predictions, out_dir, grid_rows)
    return report


def _default_bins(colorizer, truths):
    from colorfusion import bins as bins_lib
    from colorfusion import model as model_lib

    own = model_lib.model_bins(colorizer.model)
    return own if own is not None else bins_lib.ABBins.fit(truths)


def summarize(rows, size) -> dict:
    summary = {"size": size, "n_images": len({row["file"] for row in rows}), "methods": {}}
    for method in METHODS:
        selected = [row for row in rows if row["method"] == method]
        summary["methods"][method] = {
            key: float(np.mean([row[key] for row in selected])) for key in METRIC_COLUMNS
        }
    return summary


def format_table(summary: dict) -> str:
    """The means as a fixed-width text table, one row per method."""
    header = f"{'method':<14}" + "".join(f"{key:>16}" for key in METRIC_COLUMNS)
    lines = [header, "-" * len(header)]
    for method, values in summary["methods"].items():
        lines.append(f"{method:<14}" + "".join(f"{values[key]:>16.4f}" for key in METRIC_COLUMNS))
    return "\n".join(lines)


def write_outputs(report, truths, predictions, out_dir: Path, grid_rows: int) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "per_image.csv", "json": out_dir / "summary.json", "grid": out_dir / "worst_best.png"}
    with io.atomic_write(paths["csv"], "w") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "method", *METRIC_COLUMNS])
        writer.writeheader()
        writer.writerows(report.rows)
    with io.atomic_write(paths["json"], "w") as f:
        json.dump(report.summary, f, indent=2)
    model_auc = [row["auc"] for row in report.rows if row["method"] == "model"]
    order = np.argsort(model_auc, kind="stable")
    count = min(grid_rows, len(order))
    picks = [("worst", i) for i in order[:count]] + [("best", i) for i in order[::-1][:count]]
    save_grid(paths["grid"], [(label, truths[i], predictions[i], model_auc[i]) for label, i in picks])
    return paths


def save_grid(path: Path, entries) -> None:
    """Rows of original | grayscale | colorized, titled with the row's AuC."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 2.6 * len(entries)))
    axes = figure.subplots(len(entries), 3, squeeze=False)
    for row, (label, truth, prediction, auc) in zip(axes, entries):
        images = (truth, grayscale_baseline(truth), prediction)
        titles = ("original", "grayscale input", f"colorized ({label}, AuC {auc:.3f})")
        for ax, image, title in zip(row, images, titles):
            ax.imshow(image)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    figure.tight_layout()
    buffer = pyio.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    with io.atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())
