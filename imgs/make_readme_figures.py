"""Make the README's figures from trained run folders.

    python imgs/make_readme_figures.py [MODEL] [--curves-from RUN_DIR] [--compare NAME=RUN_DIR ...] [--out imgs]

MODEL is "pretrained" (the shipped model, the default), a run folder or a
`.keras` file.

Writes, from photos that ship with scikit-image and matplotlib (none of them
seen in training; the development photos are research-only and stay out of
the repository):

- `preview.png`: original | grayscale input | colorization, as the training
  callback draws it;
- `before_after.png`: full-resolution B&W input | colorized | original;
- `hints.png` (a model that takes hints): a B&W photo with three hints at the
  places where the automatic colours are furthest from the original's, each
  hint the original's colour there (what someone who remembers the scene would
  give) | automatic | with the hints | original;
- `old_prints.png`: the same photos made old (`damage.OLD_PRINT`: grain,
  fading, blur, scratches, dust, JPEG; seeded) | colorized by each
  `--previous` model | by MODEL | original;
- `compare.png` (with `--compare`): the same B&W photos through each model;
- `curves.png`: a copy of the training curves of MODEL's run folder (or of
  `--curves-from`, the release run for the shipped model).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np

from colorfusion import Colorizer, color, damage, figures, io, metrics
from colorfusion.callbacks import samples_from_images
from colorfusion.datasets import sample_photos

PREVIEW = ("astronaut", "chelsea", "coffee", "motorcycle_left")
BEFORE_AFTER = ("rocket", "astronaut", "grace_hopper")
HINTED = "motorcycle_left"
OLD_PRINTS = ("grace_hopper", "chelsea", "coffee")


def worst_points(original, automatic, count=3):
    """(x, y) of the `count` places where the automatic ab is furthest from the original's, spread apart."""
    error = np.linalg.norm(color.rgb_to_lab(original)[..., 1:] - color.rgb_to_lab(automatic)[..., 1:], axis=-1)
    error = cv2.blur(error, (15, 15))  # a region, not one stray pixel
    spacing = min(error.shape) // 5
    points = []
    for index in np.argsort(error, axis=None)[::-1]:
        y, x = np.unravel_index(index, error.shape)
        if all((x - px) ** 2 + (y - py) ** 2 >= spacing ** 2 for px, py in points):
            points.append((int(x), int(y)))
            if len(points) == count:
                return points
    return points


def by_name(names):
    photos = {p.stem: p for p in sample_photos()}
    return [io.read_rgb(photos[name]) for name in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default="pretrained",
                        help="pretrained (default), a run folder (its best.keras) or a .keras file")
    parser.add_argument("--curves-from", help="run folder whose curves.png to copy (default: MODEL's)")
    parser.add_argument("--compare", nargs="*", default=[], metavar="NAME=RUN_DIR",
                        help="other models for compare.png, beside RUN_DIR")
    parser.add_argument("--previous", nargs="*", default=[], metavar="NAME=MODEL",
                        help="earlier models beside MODEL in old_prints.png (e.g. 0.3.0=release_0.3.0.npz)")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    out = Path(args.out)
    colorizer = Colorizer.from_path(args.run)

    samples = samples_from_images(by_name(PREVIEW), 256)
    predictions = colorizer.colorize_many(list(samples["rgb"]))
    scores = [metrics.image_metrics(t, p) for t, p in zip(samples["rgb"], predictions)]
    gray = color.gray_rgb_from_l(color.l_from_model(samples["x"]["L"]))
    size = colorizer.image_size or f"short side {colorizer.size}"
    fig = figures.preview_figure(samples["rgb"], gray, np.stack(predictions), scores,
                                 f"photos not seen in training (model input {size} px)")
    written = [figures.save_figure(fig, out / "preview.png", dpi=60)]

    rows = []
    for rgb in by_name(BEFORE_AFTER):
        bw = color.gray_version(rgb)
        rows.append((bw, colorizer(bw), rgb))
    written.append(figures.save_figure(figures.before_after_figure(rows, names=list(BEFORE_AFTER)),
                                       out / "before_after.png", dpi=60))
    if colorizer.takes_hints:
        [original] = by_name([HINTED])
        bw = color.gray_version(original)
        automatic = colorizer(bw)
        hints = [(x, y, "#{:02x}{:02x}{:02x}".format(*original[y, x])) for x, y in worst_points(original, automatic)]
        fig = figures.hints_figure(original, automatic, colorizer(bw, hints=hints), hints,
                                   title=f"{HINTED}: three hints where the automatic colours are furthest off")
        written.append(figures.save_figure(fig, out / "hints.png", dpi=60))
    previous = {name: Colorizer.from_path(path) for name, path in (item.split("=", 1) for item in args.previous)}
    written.append(figures.save_figure(old_prints_figure(colorizer, previous), out / "old_prints.png", dpi=60))
    if args.compare:
        others = dict(item.split("=", 1) for item in args.compare)
        colorizers = {name: Colorizer.from_path(path) for name, path in others.items()}
        colorizers["default"] = colorizer
        # The models see only each photo's L; the last column is the original.
        images = by_name(PREVIEW + BEFORE_AFTER[:1])
        written.append(figures.save_figure(figures.compare_figure(images, colorizers), out / "compare.png", dpi=50))
    curves = Path(args.curves_from or args.run) / "curves.png"
    if curves.is_file():
        shutil.copyfile(curves, out / "curves.png")
        written.append(out / "curves.png")
    for path in written:
        shrink_png(path)
        print(f"{path}: {path.stat().st_size // 1024} KB")


def old_prints_figure(colorizer, previous: dict):
    """One row per photo: made old | each previous model's colours | this model's | original."""
    rows = []
    for seed, rgb in enumerate(by_name(OLD_PRINTS)):
        old = color.gray_rgb_from_l(damage.damage_lightness(color.rgb_to_l(rgb)[..., 0], seed=[2026, seed]))
        rows.append([old, *(other(old) for other in previous.values()), colorizer(old), rgb])
    titles = ("made old (the input)", *previous, "this model" if previous else "colorized", "original")
    return figures.before_after_figure(rows, names=list(OLD_PRINTS), titles=titles)


def shrink_png(path: Path) -> None:
    """256 colours, dithered: a third of the size, and the README's images stay a few hundred KB in all."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    small.save(path, optimize=True)


if __name__ == "__main__":
    main()
