"""Figures for the notebooks and the demo: Lab channels, augmentations, ab bins, before / after.

Every function returns a `matplotlib.figure.Figure` (no pyplot, so no global
figure state and no display needed); `show(fig, path)` saves it and, inside a
notebook kernel, displays it inline.

Example:

```python
fig = lab_channels_figure(io.read_rgb("photo.jpg"))
show(fig, "figures/lab_channels.png")
```
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

from colorfusion import color, figures, io

CELL = 2.4  # inches per image


def _figure(rows, cols, cell=CELL, title_space=0.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * cell, rows * cell + title_space), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _image(ax, image, title=None):
    ax.imshow(image, interpolation="antialiased")
    ax.set_title(title or "", fontsize=9)
    ax.set_axis_off()


def _rgb(image) -> np.ndarray:
    return io.read_rgb(image) if isinstance(image, (str, Path)) else np.asarray(image)


# === Showing ===


def show(fig, path=None, dpi=100) -> None:
    """Save `fig` to `path` (when given) and display it inline in a notebook.

    Returns None, so that a notebook cell ending with it shows the figure
    and nothing else.
    """
    if path is not None:
        figures.save_figure(fig, path, show=figures.in_notebook(), dpi=dpi)
    elif figures.in_notebook():
        figures.show_png(figures.png_bytes(fig, dpi))


def show_image(path) -> None:
    """Display a PNG file inline in a notebook (a no-op elsewhere)."""
    if figures.in_notebook():
        figures.show_png(Path(path).read_bytes())


class ShowPreviews(keras.callbacks.Callback):
    """Show each new `epoch_NNN.png` of a previews folder inline, after every epoch.

    `train(..., show=False, callbacks=[ShowPreviews(run / "previews")])`
    shows the per-epoch previews while training, and nothing else (previews
    from an earlier run of a resumed folder are not shown again).
    """

    def __init__(self, folder):
        super().__init__()
        self.folder = Path(folder)
        self.shown = set()

    def on_train_begin(self, logs=None):
        self.shown = set(self.folder.glob("epoch_*.png"))

    def on_epoch_end(self, epoch, logs=None):
        for path in sorted(set(self.folder.glob("epoch_*.png")) - self.shown):
            show_image(path)
            self.shown.add(path)

    def on_train_end(self, logs=None):
        self.on_epoch_end(None, logs)


# === Data ===


def photo_grid(images, titles=None, cols=4, cell=CELL):
    """Photos (arrays or paths) in a grid, titled."""
    images = [_rgb(image) for image in images]
    rows = -(-len(images) // cols)
    fig, axes = _figure(rows, min(cols, len(images)), cell)
    for i, ax in enumerate(axes.ravel()):
        if i < len(images):
            _image(ax, images[i], titles[i] if titles else f"{images[i].shape[1]}x{images[i].shape[0]}")
        else:
            ax.set_axis_off()
    return fig


def lab_channels_figure(rgb, chroma_l=70.0):
    """A photo and its CIE Lab channels: L (what the network sees), a, b, and ab alone.

    a and b are drawn on a diverging scale centred on 0 (gray); "ab alone" is
    the colour at a constant lightness `chroma_l`, i.e. what the network
    must predict.
    """
    rgb = _rgb(rgb)
    lab = color.rgb_to_lab(rgb)
    ab_only = color.lab_to_rgb(np.concatenate([np.full_like(lab[..., :1], chroma_l), lab[..., 1:]], -1))
    fig, axes = _figure(1, 5)
    _image(axes[0, 0], rgb, "RGB photo")
    _image(axes[0, 1], color.gray_rgb_from_l(lab[..., :1]), "L: lightness (input)")
    for ax, channel, name in ((axes[0, 2], 1, "a: green - red"), (axes[0, 3], 2, "b: blue - yellow")):
        im = ax.imshow(lab[..., channel], cmap="RdYlGn_r" if channel == 1 else "RdYlBu_r", vmin=-80, vmax=80)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.7)
    _image(axes[0, 4], ab_only, f"ab at L={chroma_l:g} (target)")
    return fig


def augmentation_grid(rgb, size=256, count=7, seed=0, **options):
    """The photo, then `count` training crops of it (`augment.build_transform`: geometry only)."""
    from colorfusion import augment

    rgb = _rgb(rgb)
    transform = augment.build_transform(size, train=True, **options)
    crops = [augment.augment_image(transform, rgb, seed=seed + i) for i in range(count)]
    return photo_grid([augment.fit_square(rgb, size), *crops],
                      ["validation crop"] + [f"train crop, seed {seed + i}" for i in range(count)])


def ab_histogram(images, max_side=256, edges=np.arange(-128, 129, 2)) -> np.ndarray:
    """Pixel counts over the ab plane (a on rows, b on columns) of RGB images or image files.

    Files are read at most `max_side` pixels long (the colour distribution
    barely changes); an unreadable file is reported in one line and skipped.
    """
    hist = np.zeros((len(edges) - 1, len(edges) - 1))
    for image in images:
        try:
            rgb = io.read_rgb(image, max_side=max_side) if isinstance(image, (str, Path)) else np.asarray(image)
        except io.ImageReadError as e:
            print(f"skipped {e}", file=sys.stderr)
            continue
        ab = color.rgb_to_lab(rgb)[..., 1:].reshape(-1, 2)
        hist += np.histogram2d(ab[:, 0], ab[:, 1], bins=(edges, edges))[0]
    return hist


def ab_bins_figure(hist, bins, chroma_l=65.0):
    """The ab distribution and the quantized bins with their prior and rebalancing weights.

    Args:
        hist: from `ab_histogram` (2-unit cells over [-128, 128]).
        bins: an `bins.ABBins`.

    Panels: the log pixel density over ab; each bin drawn in its colour
    (area ~ prior); each bin's rebalancing weight against its prior, where
    rare colours get large weights.
    """
    from matplotlib.colors import LogNorm

    fig, axes = _figure(1, 3, cell=3.6)
    ax = axes[0, 0]
    # hist rows are a: transposed, a runs along x and b along y.
    im = ax.imshow(np.where(hist.T > 0, hist.T, np.nan), origin="lower", extent=(-128, 128, -128, 128),
                   norm=LogNorm(), cmap="viridis")
    ax.set(title=f"ab distribution ({int(hist.sum()):,} pixels)", xlabel="a", ylabel="b")
    fig.colorbar(im, ax=ax, shrink=0.7, label="pixels")
    centers = bins.centers
    lab = np.concatenate([np.full((len(centers), 1), chroma_l), centers], -1).astype(np.float32)
    colours = color.lab_to_rgb(lab[None])[0]
    ax = axes[0, 1]
    ax.scatter(centers[:, 0], centers[:, 1], c=colours, s=4 + 400 * bins.prior / bins.prior.max(),
               marker="s", edgecolors="none")
    ax.set(title=f"{bins.num_bins} bins (area ~ prior)", xlabel="a", ylabel="b", xlim=(-128, 128),
           ylim=(-128, 128), aspect="equal")
    ax = axes[0, 2]
    ax.scatter(np.maximum(bins.prior, 1e-7), bins.weights, c=colours, edgecolors="gray", linewidths=0.3)
    ax.set(xscale="log", yscale="log", xlabel="prior (share of pixels)", ylabel="rebalancing weight",
           title=f"weights, lambda={bins.lam:g}")
    ax.grid(True, alpha=0.3)
    return fig


# === Colorization ===


def before_after_figure(rows, names=None, titles=("B&W input", "colorized", "original")):
    """One row per photo: B&W input | colorized | original (when known).

    Args:
        rows: `(bw, colorized, original_or_None)` arrays or paths.
        names: optional photo names, added to the titles.
    """
    rows = [[None if image is None else _rgb(image) for image in row] for row in rows]
    cols = 3 if any(row[2] is not None for row in rows) else 2
    fig, axes = _figure(len(rows), cols, cell=2.8)
    for r, row in enumerate(rows):
        for c in range(cols):
            label = titles[c] + (f": {names[r]}" if names and c == 0 else "")
            if row[c] is None:
                axes[r, c].set_axis_off()
            else:
                _image(axes[r, c], row[c], label)
    return fig


def temperature_figure(model, images, temperatures=(1.0, 0.6, 0.38, 0.2, 0.05), embedder=None):
    """Annealed-mean decoding at several temperatures T, one row per photo.

    T = 1 is the mean of the predicted colour distribution (safe, dull);
    T -> 0 tends to its mode (vivid, patchy); Zhang et al. use T = 0.38.
    Regression models have no distribution: every column is the same.
    """
    from colorfusion.colorize import Colorizer

    images = [_rgb(image) for image in images]
    columns = [Colorizer(model, temperature=t, embedder=embedder).colorize_many(images) for t in temperatures]
    fig, axes = _figure(len(images), len(temperatures) + 1)
    for r, image in enumerate(images):
        _image(axes[r, 0], color.gray_rgb_from_l(color.rgb_to_l(image)), "B&W input")
        for c, (t, outputs) in enumerate(zip(temperatures, columns), start=1):
            _image(axes[r, c], outputs[r], f"T = {t:g}" + (" (mean)" if t == 1 else ""))
    return fig


def compare_figure(images, colorizers: dict):
    """One row per photo: B&W input | each model's colorization | original."""
    images = [_rgb(image) for image in images]
    outputs = {name: c.colorize_many(images) for name, c in colorizers.items()}
    fig, axes = _figure(len(images), len(colorizers) + 2)
    for r, image in enumerate(images):
        _image(axes[r, 0], color.gray_rgb_from_l(color.rgb_to_l(image)), "B&W input")
        for c, name in enumerate(outputs, start=1):
            _image(axes[r, c], outputs[name][r], name)
        _image(axes[r, -1], image, "original")
    return fig


def metrics_figure(methods: dict, keys=("auc", "rebalanced_auc", "psnr", "ssim", "colorfulness")):
    """Bars of mean metrics per method: `{method: {metric: value}}` (an evaluation summary).

    The PSNR panel leaves out "ground_truth": an identical image has no
    finite PSNR (metrics caps it at 100 dB), which would flatten the others.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * len(keys), 3.4), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    colours = {name: f"C{i}" for i, name in enumerate(methods)}
    for ax, key in zip(axes, keys):
        names = [name for name in methods if not (key == "psnr" and name == "ground_truth")]
        bars = ax.bar(range(len(names)), [methods[name][key] for name in names], color=[colours[n] for n in names])
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(key)
        ax.grid(True, axis="y", alpha=0.3)
    return fig
