"""Make the README's figures from a trained run folder.

    python imgs/make_readme_figures.py RUN_DIR [--out imgs]

Writes, from photos that ship with scikit-image and matplotlib (none of them
seen in training):

- `preview.png`: original | grayscale input | colorization at the model's
  size, as the training callback draws it;
- `before_after.png`: full-resolution B&W input | colorized | original;
- `curves.png`: a copy of the run's training curves.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


import numpy as np  # noqa: E402

from colorfusion import color, figures, io, metrics, plots  # noqa: E402
from colorfusion.callbacks import samples_from_images  # noqa: E402
from colorfusion.colorize import Colorizer  # noqa: E402
from colorfusion.datasets import sample_photos  # noqa: E402

PREVIEW = ("astronaut", "chelsea", "coffee", "motorcycle_left")
BEFORE_AFTER = ("rocket", "grace_hopper")


def by_name(names):
    photos = {p.stem: p for p in sample_photos()}
    return [io.read_rgb(photos[name]) for name in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder (uses its best.keras)")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    out = Path(args.out)
    colorizer = Colorizer.from_path(args.run)
    size = colorizer.image_size

    samples = samples_from_images(by_name(PREVIEW), 4 * size)  # shown at 4x the model size
    predictions = colorizer.colorize_many(list(samples["rgb"]))
    scores = [metrics.image_metrics(t, p) for t, p in zip(samples["rgb"], predictions)]
    gray = color.gray_rgb_from_l(color.l_from_model(samples["x"]["L"]))
    fig = figures.preview_figure(samples["rgb"], gray, np.stack(predictions), scores,
                                 f"photos not seen in training (model input {size} px)")
    figures.save_figure(fig, out / "preview.png", dpi=60)

    rows = []
    for rgb in by_name(BEFORE_AFTER):
        bw = (color.gray_rgb_from_l(color.rgb_to_l(rgb)) * 255 + 0.5).astype(np.uint8)
        rows.append((bw, colorizer(bw), rgb))
    plots.show(plots.before_after_figure(rows, names=list(BEFORE_AFTER)), out / "before_after.png", dpi=60)
    shutil.copyfile(Path(args.run) / "curves.png", out / "curves.png")
    for name in ("preview.png", "before_after.png", "curves.png"):
        print(f"{out / name}: {(out / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
