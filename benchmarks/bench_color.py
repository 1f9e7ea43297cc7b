"""Benchmark: colorfusion.color (OpenCV) against scikit-image for sRGB <-> Lab.

Two workloads, timed in the same run on the same data:
- a batch of 32 photos at 256 x 256 (what a training batch converts);
- one 12-megapixel image (4000 x 3000, what full-resolution colorization converts).

Prints a table, then as its last line a JSON object with the figures and
`ratio` = the smaller of the two (skimage time / ours) ratios.

    python benchmarks/bench_color.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from skimage import color as skcolor
from skimage import data

from colorfusion import color


def best_time(fn, repeats):
    """Best of `repeats` wall-clock runs (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_inputs():
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    tiles = [cv2.resize(photos[i % 4], (256, 256), interpolation=cv2.INTER_AREA) for i in range(32)]
    batch = np.stack([np.roll(t, 7 * i, axis=1) for i, t in enumerate(tiles)])
    large = cv2.resize(data.astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    return {"batch 32 x 256x256": batch, "12 MP (4000x3000)": large}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rows, figures = [], {}
    for name, rgb in make_inputs().items():
        repeats = args.repeats if rgb.ndim == 4 else max(2, args.repeats // 2)
        lab = color.rgb_to_lab(rgb)
        times = {
            "rgb->lab ours": best_time(lambda rgb=rgb: color.rgb_to_lab(rgb), repeats),
            "rgb->lab skimage": best_time(lambda rgb=rgb: skcolor.rgb2lab(rgb), repeats),
            "lab->rgb ours": best_time(lambda lab=lab: color.lab_to_rgb(lab), repeats),
            "lab->rgb skimage": best_time(lambda lab=lab: skcolor.lab2rgb(lab), repeats),
        }
        for direction in ("rgb->lab", "lab->rgb"):
            ours, theirs = times[f"{direction} ours"], times[f"{direction} skimage"]
            rows.append((name, direction, ours * 1e3, theirs * 1e3, theirs / ours))
            key = f"{'batch' if rgb.ndim == 4 else '12mp'}_{direction.replace('->', '_to_')}"
            figures[key] = {"ours_ms": round(ours * 1e3, 2), "skimage_ms": round(theirs * 1e3, 2),
                            "ratio": round(theirs / ours, 1)}

    print(f"{'workload':<22}{'direction':<11}{'ours ms':>10}{'skimage ms':>12}{'ratio':>8}")
    for name, direction, ours, theirs, ratio in rows:
        print(f"{name:<22}{direction:<11}{ours:>10.1f}{theirs:>12.1f}{ratio:>7.1f}x")
    figures["ratio"] = round(min(r[4] for r in rows), 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
