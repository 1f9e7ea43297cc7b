"""Figures for training: the preview grid, the training curves, saving, showing.

Everything uses the `matplotlib.figure.Figure` object API, never pyplot: no
display is needed, nothing is registered in pyplot's global list of open
figures (which is what leaks when a callback draws every epoch), and drawing
is safe in threads. A figure is rendered once to PNG bytes, which are written
atomically and, in a Jupyter / Kaggle kernel, displayed inline.
"""

from __future__ import annotations

import io as _bytes_io
import math
import sys
from pathlib import Path

import numpy as np

from colorfusion import io

SHOW_CHOICES = ("auto", True, False)
CELL_INCHES = 2.6  # side of one image in the preview grid
TITLE_INCHES = 0.4  # strip for the preview's suptitle


# === Showing and saving ===


def in_notebook() -> bool:
    """True inside a Jupyter / Kaggle kernel (an IPython shell with a kernel)."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_png(png: bytes) -> None:
    """Display PNG bytes inline in a notebook."""
    # The PNG already rendered, not the Figure: works whatever the backend.
    from IPython.display import Image, display

    display(Image(data=png, format="png"))


def check_show(show) -> None:
    """Raise ValueError unless `show` is "auto", True or False."""
    if not (show is True or show is False or (isinstance(show, str) and show == "auto")):
        raise ValueError(f'show must be "auto", True or False. Received: show={show!r}')


def resolve_show(show) -> bool:
    """"auto" -> whether we run in a notebook kernel; True / False as given."""
    return in_notebook() if show == "auto" else bool(show)


def png_bytes(fig, dpi=100) -> bytes:
    """`fig` rendered as PNG."""
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(fig, path, show=False, dpi=100) -> Path:
    """Render `fig` to PNG, write it atomically to `path`, display it if `show`.

    Rendering happens before the file is opened, so a drawing error leaves
    any previous file untouched.
    """
    png = png_bytes(fig, dpi)
    path = Path(path)
    with io.atomic_write(path, "wb") as f:
        f.write(png)
    if show:
        show_png(png)
    return path


# === Preview grid ===


def preview_figure(rgb, gray, pred, scores, title):
    """One row per sample: original | grayscale input | colorization.

    Args:
        rgb: originals (N, S, S, 3) uint8.
        gray: the grayscale inputs (N, S, S, 3), float in [0, 1] or uint8.
        pred: the colorizations (N, S, S, 3) uint8.
        scores: N dicts with "auc" and "psnr" (from `metrics.image_metrics`).
        title: the suptitle, e.g. "epoch 3".

    Returns:
        A `matplotlib.figure.Figure` with an N x 3 grid of axes.
    """
    from matplotlib.figure import Figure

    rows = len(rgb)
    fig = Figure(figsize=(3 * CELL_INCHES, rows * CELL_INCHES + TITLE_INCHES), layout="constrained")
    axes = fig.subplots(rows, 3, squeeze=False)
    for row, (original, gray_input, colorized, score) in enumerate(zip(rgb, gray, pred, scores)):
        titles = ("original", "grayscale input", f"AuC {score['auc']:.3f}  PSNR {score['psnr']:.1f} dB")
        for ax, image, text in zip(axes[row], (original, gray_input, colorized), titles):
            ax.imshow(image, interpolation="nearest")
            ax.set_title(text, fontsize=9)
            ax.set_axis_off()
    fig.suptitle(title)
    return fig


# === Training curves ===


def metric_base(key: str) -> str:
    """The panel a log key belongs to: its name without "val_" / "preview_"."""
    for prefix in ("val_", "preview_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def curve_panels(keys) -> dict:
    """{panel: [keys]}: "loss" first, then other losses, then the rest, in order."""
    def rank(key):
        base = metric_base(key)
        return (base != "loss", not base.endswith("loss"))

    panels = {}
    for key in sorted(keys, key=rank):  # stable: keeps first-appearance order
        panels.setdefault(metric_base(key), []).append(key)
    return panels


def curves_figure(epochs, history):
    """Per-epoch curves, one panel per metric group (see `curve_panels`).

    A panel's y axis is logarithmic when its values are all positive and
    span a factor of 10 or more (typical of a loss or a learning rate).

    Args:
        epochs: epoch numbers (x axis).
        history: {key: per-epoch values, NaN where missing}.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = curve_panels(history) or {"loss": []}
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.5 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, keys) in zip(axes, panels.items()):
        for key in keys:
            ax.plot(epochs, history[key], marker="o", markersize=3, label=key)
        values = np.array([v for key in keys for v in history[key]], np.float64)
        values = values[np.isfinite(values)]
        if values.size and values.min() > 0 and values.max() >= 10 * values.min():
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return fig
