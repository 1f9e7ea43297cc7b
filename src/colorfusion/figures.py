"""Every figure of the package: previews, curves, and the notebooks' data and colorization figures.

Everything uses the `matplotlib.figure.Figure` object API, never pyplot: no
display is needed, nothing is registered in pyplot's global list of open
figures (which is what leaks when a callback draws every epoch), and drawing
is safe in threads. A figure is rendered once to PNG bytes, which are written
atomically and, in a Jupyter / Kaggle kernel, displayed inline (`show`).

Example:

```python
fig = lab_channels_figure(io.read_rgb("photo.jpg"))
show(fig, "figures/lab_channels.png")     # saved, and shown inline in a notebook
```
"""

from __future__ import annotations

import io as _bytes_io
import math
import sys
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from colorfusion import augment, color, io
from colorfusion.hints import parse_hint

SHOW_CHOICES = ("auto", True, False)
CELL_INCHES = 2.6  # side of one image in a grid of photos
TITLE_INCHES = 0.4  # strip for a suptitle


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
    from IPython.display import Image, display  # IPython is there only in a notebook

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


def show(fig, path=None, dpi=100) -> None:
    """Save `fig` to `path` (when given) and display it inline in a notebook.

    Returns None, so that a notebook cell ending with it shows the figure
    and nothing else.
    """
    if path is not None:
        save_figure(fig, path, show=in_notebook(), dpi=dpi)
    elif in_notebook():
        show_png(png_bytes(fig, dpi))


def show_image(path) -> None:
    """Display a PNG file inline in a notebook (a no-op elsewhere)."""
    if in_notebook():
        show_png(Path(path).read_bytes())


def _grid(rows, cols, cell=CELL_INCHES, title_space=TITLE_INCHES):
    """A figure with a rows x cols grid of axes of `cell` inches each."""
    fig = Figure(figsize=(cols * cell, rows * cell + title_space), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _image(ax, image, title=None):
    ax.imshow(image, interpolation="antialiased")
    ax.set_title(title or "", fontsize=9)
    ax.set_axis_off()


def _rgb(image) -> np.ndarray:
    return io.read_rgb(image) if isinstance(image, (str, Path)) else np.asarray(image)


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
    fig, axes = _grid(len(rgb), 3)
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


# === Data ===


def photo_grid(images, titles=None, cols=4, cell=CELL_INCHES):
    """Photos (arrays or paths) in a grid, titled."""
    images = [_rgb(image) for image in images]
    rows = -(-len(images) // cols)
    fig, axes = _grid(rows, min(cols, len(images)), cell)
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
    fig, axes = _grid(1, 5)
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
    rgb = _rgb(rgb)
    transform = augment.build_transform(size, train=True, **options)
    crops = [augment.augment_image(transform, rgb, seed=seed + i) for i in range(count)]
    return photo_grid([augment.fit_square(rgb, size), *crops],
                      ["validation crop"] + [f"train crop, seed {seed + i}" for i in range(count)])


AB_HISTOGRAM_EDGES = np.arange(-128, 129, 2)  # 2-unit cells over the ab plane


def ab_histogram(images, max_side=256, edges=AB_HISTOGRAM_EDGES) -> np.ndarray:
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
    fig, axes = _grid(1, 3, cell=3.6)
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
        rows: `(bw, colorized, original_or_None)` arrays or paths; more
            columns with as many `titles` (e.g. several models' colours).
        names: optional photo names, added to the titles.
    """
    rows = [[None if image is None else _rgb(image) for image in row] for row in rows]
    cols = len(titles) if any(row[-1] is not None for row in rows) else len(titles) - 1
    fig, axes = _grid(len(rows), cols, cell=2.8)
    for r, row in enumerate(rows):
        for c in range(cols):
            label = titles[c] + (f": {names[r]}" if names and c == 0 else "")
            if row[c] is None:
                axes[r, c].set_axis_off()
            else:
                _image(axes[r, c], row[c], label)
    return fig


def temperature_figure(colorizer, images, temperatures=(1.0, 0.7, 0.38, 0.2, 0.05)):
    """Annealed-mean decoding at several temperatures T, one row per photo.

    T = 1 is the mean of the predicted colour distribution (safe, dull);
    T -> 0 tends to its mode (vivid, patchy); Zhang et al. use T = 0.38.
    Regression models have no distribution: every column is the same.

    Args:
        colorizer: a `Colorizer`.
        images: photos (arrays or paths).
    """
    images = [_rgb(image) for image in images]
    columns = [colorizer.with_decoding("annealed_mean", t).colorize_many(images) for t in temperatures]
    fig, axes = _grid(len(images), len(temperatures) + 1)
    for r, image in enumerate(images):
        _image(axes[r, 0], color.gray_rgb_from_l(color.rgb_to_l(image)), "B&W input")
        for c, (t, outputs) in enumerate(zip(temperatures, columns), start=1):
            _image(axes[r, c], outputs[r], f"T = {t:g}" + (" (mean)" if t == 1 else ""))
    return fig


def compare_figure(images, colorizers: dict):
    """One row per photo: B&W input | each model's colorization | original."""
    images = [_rgb(image) for image in images]
    outputs = {name: c.colorize_many(images) for name, c in colorizers.items()}
    fig, axes = _grid(len(images), len(colorizers) + 2)
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


def hints_figure(original, automatic, hinted, hints, title=None):
    """B&W input with the hints marked | automatic | hinted | original, for one photo.

    Args:
        original: the photo (array or path); None when unknown.
        automatic, hinted: its colorization without and with the hints.
        hints: the `(x, y, colour)` points (`hints.parse_hint`), drawn as
            discs of their colour ringed in black and white.
    """
    automatic, hinted = _rgb(automatic), _rgb(hinted)
    gray = color.gray_rgb_from_l(color.rgb_to_l(hinted))
    panels = [(gray, f"B&W input + {len(hints)} hints"), (automatic, "automatic"), (hinted, "with hints")]
    if original is not None:
        panels.append((_rgb(original), "original"))
    fig, axes = _grid(1, len(panels), title_space=TITLE_INCHES if title else 0)
    for ax, (image, label) in zip(axes[0], panels):
        _image(ax, image, label)
    for x, y, rgb in map(parse_hint, hints):
        for ax in axes[0][:3]:
            ax.scatter([x], [y], s=70, c=[np.asarray(rgb) / 255.0], edgecolors="black", linewidths=1.5)
            ax.scatter([x], [y], s=130, facecolors="none", edgecolors="white", linewidths=1.0)
    if title:
        fig.suptitle(title)
    return fig


def hint_curve_figure(results: dict):
    """Rebalanced AuC, PSNR and colourfulness against the number of hints (`evaluation.evaluate_hints`).

    The hint model is a line over the counts; the automatic model (when
    scored), grayscale and the real photos' colourfulness are horizontal
    references.
    """
    counts = sorted(results["hints"], key=int)
    xs = [int(c) for c in counts]
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, key, label in zip(axes, ("rebalanced_auc", "psnr", "colorfulness"),
                              ("rebalanced AuC", "PSNR (dB)", "colourfulness")):
        ax.plot(xs, [results["hints"][c][key] for c in counts], "o-", color="C0", label="hint model")
        if "automatic" in results:
            ax.axhline(results["automatic"][key], color="C1", linestyle="--", label="automatic model")
        ax.axhline(results["grayscale"][key], color="gray", linestyle=":", label="grayscale")
        if key == "colorfulness":
            ax.axhline(results["true_colorfulness"], color="C2", linestyle="-.", label="real photos")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("points given")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Colour hints on {results['photos']} photos at {results['size']} px")
    return fig


# === Video ===


def steadiness_figure(histograms: dict, title="Colour change from frame to frame (lower is steadier)"):
    """Per-frame Jensen-Shannon divergence of the RGB histograms of frames t and t + 1, one line per method.

    Args:
        histograms: {method: (T, 3, 256) per-frame histograms}
            (`inference.video.clip_histograms`); the legend gives each one's CDC.
    """
    from colorfusion import metrics

    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.subplots()
    for name, h in histograms.items():
        h = np.asarray(h)
        ax.plot(np.arange(1, len(h)), metrics.js_divergence(h[:-1], h[1:]).mean(-1),
                label=f"{name} (CDC {metrics.cdc(h):.4f})")
    ax.set(xlabel="frame", ylabel="JS divergence to the previous frame", title=title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig
