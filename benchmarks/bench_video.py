"""Benchmark: is `--temporal flow` steadier than frame by frame, as good, and fast enough?

Clips are made from real colour photos with known motion
(`colorfusion.testing.clips`): a slow pan, a zoom, an object moving
across a still background, a cut between two photos, camera shake; each frame
is the photo resampled by a known transform, so every frame's true colour and
the true motion between frames are known. The shipped model colorizes the
B&W version of each frame (short side 256); the same network outputs are
shown frame by frame (`none`) and carried along the motion (`flow`,
`SteadyColour`), and both are scored against the truth, side by side:

- quality: mean PSNR and rebalanced AuC (bins fitted on the clips' true
  frames, as `colorfusion evaluate` fits them on its photos) per frame;
- steadiness: CDC (Jensen-Shannon divergence of the 256-bin R, G, B
  histograms of frames t and t+1, t+2, t+4, averaged: TCVC, NTIRE 2023) and
  the warping error (Lai et al. 2018: frame t warped onto t-1 by the TRUE
  motion, mean squared difference in [0, 1] RGB over pixels visible in both,
  x 1000). The true clip's own figures are the floor (resampling, content
  entering the picture): printed as `truth`.
- speed: `colorize_video` on files at 854x480 and 1920x1080 (decode,
  network, flow, encode, audio-less), frames/s, median of `--repeats`.

    python benchmarks/bench_video.py                    # the photos that ship with scikit-image and matplotlib
    python benchmarks/bench_video.py --photos DIR       # your own colour photos (at least two)
    python benchmarks/bench_video.py --quick            # 16 frames at 426x240, one speed repeat: a smoke test
    python benchmarks/bench_video.py --figure imgs/video.png   # also the README's strip of frames

Targets (issue 26): CDC and warping error at most half of `none`'s, PSNR
at most 0.1 dB lower, at least 8 frames/s at 854x480, `flow` at most 30 %
slower than `none`. Prints a table and, as its last line, JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np


def load_photos(folder):
    from colorfusion import datasets, io

    paths = datasets.find_images(folder) if folder else datasets.sample_photos()
    photos = [io.read_rgb(path, max_side=2048) for path in paths]
    if len(photos) < 2:
        raise SystemExit(f"need at least two colour photos, found {len(photos)} in {folder or 'the sample photos'}")
    return photos


def score_clip(colorizer, clip, bins, batch_size=8, keep=()):
    """Per mode: mean PSNR, rebalanced AuC, CDC, warping error (x 1000); the true clip's steadiness too.

    `keep`: frame numbers whose B&W input and outputs are returned too ({t: (bw, none, flow, truth)}).
    """
    from colorfusion import color, metrics
    from colorfusion.inference.motion import SteadyColour

    steady = SteadyColour()
    rows = {name: {"psnr": [], "rebalanced_auc": [], "hist": [], "warp": []} for name in ("none", "flow", "truth")}
    cuts = []
    previous, kept = {}, {}
    for start in range(0, len(clip), batch_size):
        indices = range(start, min(start + batch_size, len(clip)))
        truths = [clip.frame(t) for t in indices]
        lightnesses = [colorizer.read_lightness(color.gray_version(truth)) for truth in truths]
        predicted = colorizer.predict_ab_many([l_input for _, l_input in lightnesses])
        for t, truth, (l_full, l_input), ab in zip(indices, truths, lightnesses, predicted):
            shown = {"none": colorizer.join_full_resolution(l_full, ab),
                     "flow": colorizer.join_full_resolution(l_full, steady.step(l_input, ab)), "truth": truth}
            if t in keep:
                kept[t] = (color.gray_version(truth), shown["none"], shown["flow"], truth)
            ab_true = half_ab(truth)
            motion = clip.motion(t) if t else None
            if motion is not None and not motion[2].any():
                cuts.append(t)
            for name, rgb in shown.items():
                row = rows[name]
                if name != "truth":
                    row["psnr"].append(metrics.psnr(truth, rgb))
                    row["rebalanced_auc"].append(metrics.rebalanced_auc(ab_true, half_ab(rgb), bins))
                row["hist"].append(metrics.color_histograms(rgb))
                if motion is not None and motion[2].any():
                    row["warp"].append(1000 * metrics.warping_error(previous[name], rgb, *motion))
                previous[name] = rgb
    return kept, {name: {"psnr": float(np.mean(row["psnr"])) if row["psnr"] else float("nan"),
                   "rebalanced_auc": float(np.mean(row["rebalanced_auc"])) if row["rebalanced_auc"] else float("nan"),
                   "cdc": metrics.cdc(np.stack(row["hist"])), "warp": float(np.mean(row["warp"])),
                   "cdc_shots": metrics.cdc(np.stack(row["hist"]), cuts=cuts)}
            for name, row in rows.items()}


def half_ab(rgb):
    """ab of the frame at half size: the AuC's sweep over every pixel of 480p frames costs more than the network."""
    import cv2

    from colorfusion import color

    small = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return color.rgb_to_lab(small)[..., 1:]


STRIP_FRAMES = (0, 16, 32, 47)


def write_strip(kept, path, width=240):
    """Rows B&W | frame by frame | flow | truth, one column per kept frame, as a small palette PNG."""
    import cv2
    from PIL import Image

    rows = []
    for row, label in enumerate(("B&W input", "none (frame by frame)", "flow", "true colour")):
        cells = []
        for t in sorted(kept):
            image = kept[t][row]
            height = round(image.shape[0] * width / image.shape[1])
            cell = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            text = f"{label}, frame {t}" if t == min(kept) else f"frame {t}"
            (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)
            cell[2:22, 2:text_width + 10] = cell[2:22, 2:text_width + 10] // 3  # a dark band under the label
            cv2.putText(cell, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(np.pad(cell, ((1, 1), (1, 1), (0, 0)), constant_values=255))
        rows.append(np.concatenate(cells, axis=1))
    strip = np.concatenate(rows, axis=0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True)
    print(f"{path}: {Path(path).stat().st_size // 1024} KB", file=sys.stderr)


def measure_speed(colorizer, clip_path, repeats):
    from colorfusion.inference.video import colorize_video

    rates = {"none": [], "flow": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for temporal in ("none", "flow") if repeat % 2 == 0 else ("flow", "none"):  # drift cancels out
                start = time.perf_counter()
                report = colorize_video(colorizer, clip_path, Path(tmp) / f"{temporal}.mp4", temporal=temporal,
                                        overwrite=True, progress=False)
                rates[temporal].append(report.frames / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", help="folder of colour photos (default: the sample photos of scikit-image "
                                         "and matplotlib)")
    parser.add_argument("--model", default="pretrained", help="run folder, .keras, .npz or pretrained (default)")
    parser.add_argument("--frames", type=int, default=48, help="frames per quality clip (default 48)")
    parser.add_argument("--speed-frames", type=int, default=48, help="frames of the speed clips (default 48)")
    parser.add_argument("--repeats", type=int, default=5, help="speed runs per size and mode; the median counts")
    parser.add_argument("--sizes", default="854x480,1920x1080", help="speed sizes WxH (default 854x480,1920x1080)")
    parser.add_argument("--figure", help="write a strip of frames of the object clip here (README: imgs/video.png)")
    parser.add_argument("--only", choices=("quality", "speed"), help="run one half of the benchmark")
    parser.add_argument("--quick", action="store_true", help="16 frames at 426x240, one repeat: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.speed_frames, args.repeats, args.sizes = 16, 16, 1, "426x240"

    from colorfusion import color
    from colorfusion.bins import ABBins
    from colorfusion.hardware import environment_line
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.testing.clips import pan_clip, standard_clips, write_clip

    print(environment_line(), file=sys.stderr)
    photos = load_photos(args.photos)
    colorizer = Colorizer.from_path(args.model)
    size = (240, 426) if args.quick else (480, 854)
    clips = standard_clips(photos, size, args.frames)
    bins = ABBins.fit(clip.frame(t)[::2, ::2] for clip in clips for t in range(0, len(clip), 4))
    # Warm up: the network is compiled once per input shape (a full batch of frames), not in a timed run.
    colorizer.predict_ab_many([colorizer.read_lightness(np.zeros((*size, 3), np.uint8))[1]] * 8)

    results = {}
    for clip in clips if args.only != "speed" else ():
        start = time.perf_counter()
        kept, results[clip.name] = score_clip(colorizer, clip, bins, keep=STRIP_FRAMES if clip.name == "object" else ())
        if kept and args.figure:
            write_strip(kept, args.figure)
        print(f"{clip.name}: scored in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    speeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.sizes.split(",") if args.only != "quality" else ():
            width, height = (int(v) for v in text.lower().split("x"))
            source = pan_clip(photos[0], (height, width), args.speed_frames)
            path = write_clip(Path(tmp) / f"{text}.mp4", (color.gray_version(source.frame(t))
                                                           for t in range(args.speed_frames)))
            speeds[text] = measure_speed(colorizer, path, args.repeats)
            print(f"{text}: {speeds[text]}", file=sys.stderr)

    print(format_table(results, speeds, args))
    print(json.dumps({"clips": results, "speed": speeds, "frames": args.frames, "size": f"{size[1]}x{size[0]}"}))
    return 0


def ratio(row, none, key, with_ratio) -> str:
    return f"{row[key]:.5f}" + (f" ({row[key] / none[key]:.2f})" if with_ratio else "       ")


def format_table(results, speeds, args) -> str:
    lines = []
    if results:
        lines += [f"Quality and steadiness: {args.frames} frames at {'426x240' if args.quick else '854x480'}, "
                  f"shipped model at short side 256 (flow / none in brackets)",
                  f"{'clip':<8} {'temporal':<9} {'PSNR dB':>8} {'rebal. AuC':>11} {'CDC':>16} {'CDC in shots':>16} "
                  f"{'warp err x1e3':>15}"]
        for name, modes in results.items():
            none = modes["none"]
            for mode in ("none", "flow", "truth"):
                row = modes[mode]
                warp = f"{row['warp']:.3f}" + (f" ({row['warp'] / none['warp']:.2f})" if mode == "flow" else "       ")
                psnr = "" if mode == "truth" else f"{row['psnr']:.2f}"
                auc = "" if mode == "truth" else f"{row['rebalanced_auc']:.4f}"
                lines.append(f"{name if mode == 'none' else '':<8} {mode:<9} {psnr:>8} {auc:>11} "
                             f"{ratio(row, none, 'cdc', mode == 'flow'):>16} "
                             f"{ratio(row, none, 'cdc_shots', mode == 'flow'):>16} "
                             f"{warp:>15}")
        lines.append("CDC in shots leaves out the pairs of frames across a cut (only the cut clip has one); truth: "
                     "the true clip's own figures (the floor).")
        lines.append("")
    if speeds:
        lines.append(f"Speed (colorize_video, frames/s, median of {args.repeats}):")
        lines.append(f"{'size':<10} {'none':>7} {'flow':>7} {'flow slower by':>15}")
        for text, rates in speeds.items():
            lines.append(f"{text:<10} {rates['none']:>7.2f} {rates['flow']:>7.2f} "
                         f"{100 * (1 - rates['flow'] / rates['none']):>14.0f}%")
        lines.append("")
    checks = {}
    clips = list(results.values())
    if clips:
        checks["CDC at most half of none's (within shots, every clip)"] = all(
            m["flow"]["cdc_shots"] <= 0.5 * m["none"]["cdc_shots"] for m in clips)
        checks["CDC at most half of none's (whole clip, cut included, every clip)"] = all(
            m["flow"]["cdc"] <= 0.5 * m["none"]["cdc"] for m in clips)
        checks["warping error at most half of none's (every clip)"] = all(
            m["flow"]["warp"] <= 0.5 * m["none"]["warp"] for m in clips)
        checks["PSNR at most 0.1 dB lower (every clip)"] = all(m["flow"]["psnr"] >= m["none"]["psnr"] - 0.1
                                                               for m in clips)
    if "854x480" in speeds:
        checks[">= 8 frames/s at 854x480 (flow)"] = speeds["854x480"]["flow"] >= 8
    if speeds:
        checks["flow at most 30 % slower than none"] = all(r["flow"] >= 0.7 * r["none"] for r in speeds.values())
    lines += [f"{'met   ' if ok else 'MISSED'} {text}" for text, ok in checks.items()]
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    sys.exit(main())
