"""Benchmark: does the confidence map say where the colour is wrong, and do its "click here" places help most?

On the validation photos of a split file (the 144 of `SPLIT.tsv` /
`SPLIT_ALL.tsv`), each as its centred square at `--size` (256), with the
shipped model (or `--model`):

- ranking: per pixel, how well low confidence finds the pixels whose colour
  is wrong (ab error > `--error` = 20 Lab units between the colorized photo and
  the real one): the AUROC over all pixels of all photos pooled (0.5 is
  chance, 1 perfect; target >= 0.7), and its mean over the photos, for each
  formula of `inference.confidence` (the probability within 10, 20 or 30 ab
  units of the decoded colour, and 1 - normalised entropy);
- clicks: three true-colour hints at the places `unsure_places` marks,
  against three at random places, simulated as `evaluation.evaluate_hints`
  draws them (`simulate_hints`: square patches of 1 to 9 pixels holding
  their mean true ab): each photo's PSNR gain over the same model with no
  hints, the mean over the photos, and the ratio of the two means (target
  >= 1.3x). The random places are drawn `--random-draws` times a photo
  (their gains averaged) so that the baseline is steady.

    python benchmarks/bench_confidence.py                # the shipped model, the 144 validation photos
    python benchmarks/bench_confidence.py --limit 20     # a quick look

Prints a table and, as its last line, JSON. Needs `../shared/data` (or
`--data`, `--split-file`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HINTS = 3  # hints at the marked places, and at random ones
FORMULAS = {"mass within 10": ("mass", 10.0), "mass within 20": ("mass", 20.0), "mass within 30": ("mass", 30.0),
            "1 - entropy / log Q": ("entropy", None)}


def auroc(scores, positives):
    """The AUROC of `scores` (higher: more likely positive) against boolean `positives`, ties counted half."""
    import numpy as np
    from scipy.stats import rankdata

    positives = np.asarray(positives, bool)
    count, total = int(positives.sum()), positives.size
    if count in (0, total):
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - count * (count + 1) / 2) / (count * (total - count)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_DATA), help="root the split file's paths are relative to")
    parser.add_argument("--split-file", default=str(SHARED_DATA / "SPLIT_ALL.tsv"),
                        help="path<TAB>split list; its val photos are scored (default SPLIT_ALL.tsv: the 144 of "
                             "SPLIT.tsv)")
    parser.add_argument("--model", default="pretrained", help="a classification model (default: the shipped one)")
    parser.add_argument("--size", type=int, default=256, help="the side photos are compared at (default 256)")
    parser.add_argument("--error", type=float, default=20.0, help="a pixel's colour is wrong past this ab error")
    parser.add_argument("--random-draws", type=int, default=3, help="random placements a photo (default 3)")
    parser.add_argument("--limit", type=int, help="only the first N validation photos")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated points")
    args = parser.parse_args(argv)

    import numpy as np

    from colorfusion import augment, color, datasets, metrics
    from colorfusion.evaluation import true_ab_scaled
    from colorfusion.hints.simulation import simulate_hints
    from colorfusion.inference.colorizer import as_colorizer
    from colorfusion.inference.confidence import MASS_RADIUS, MEASURE, at_size, confidence_grid, unsure_places

    _, files = datasets.read_split_file(args.split_file, args.data)
    files = files[: args.limit] if args.limit else files
    colorizer = as_colorizer(args.model, size=args.size)
    centers = colorizer.runner.centers
    if centers is None or not colorizer.takes_hints:
        print(f"error: {args.model}: the benchmark needs a classification model that takes hints", file=sys.stderr)
        return 1
    started, load = time.perf_counter(), os.getloadavg()[0]
    scores = {name: [] for name in FORMULAS}
    wrong, per_photo, marked_gains, random_gains = [], {name: [] for name in FORMULAS}, [], []
    for index, path in enumerate(files):
        truth = augment.load_square(path, args.size)
        held = colorizer.hold(truth)
        l_full, l_small = held.lightness
        probs, ab = held.run(None)
        automatic = colorizer.join_full_resolution(l_full, ab)
        error = np.linalg.norm(color.rgb_to_lab(automatic)[..., 1:] - color.rgb_to_lab(truth)[..., 1:], axis=-1)
        wrong.append((error > args.error).ravel())
        maps = {}
        for name, (measure, radius) in FORMULAS.items():
            grid = confidence_grid(probs, centers, ab, measure, radius or MASS_RADIUS)
            maps[name] = at_size(grid, *l_full.shape)
            scores[name].append((1.0 - maps[name]).ravel())  # low confidence: likely wrong
            per_photo[name].append(auroc(scores[name][-1], wrong[-1]))
        chosen = next(name for name, (measure, radius) in FORMULAS.items()
                      if measure == MEASURE and radius in (None, MASS_RADIUS))
        places = unsure_places(maps[chosen], most=HINTS, least=HINTS)
        true_ab = true_ab_scaled(truth, l_small.shape[:2])
        rows, cols = l_small.shape[:2]
        grid_places = [(int(p.y * rows / l_full.shape[0]), int(p.x * cols / l_full.shape[1])) for p in places]

        def psnr_with(hint_map, truth=truth, held=held, l_full=l_full):
            return metrics.psnr(truth, colorizer.join_full_resolution(l_full, held.run(hint_map)[1]))

        base = metrics.psnr(truth, automatic)
        marked_gains.append(psnr_with(simulate_hints(true_ab, np.random.default_rng([args.seed, index, 1]),
                                                     places=grid_places)) - base)
        random_gains.append(np.mean([psnr_with(simulate_hints(true_ab, np.random.default_rng([args.seed, index, 2, d]),
                                                              count=HINTS)) - base
                                     for d in range(args.random_draws)]))
        if (index + 1) % 24 == 0:
            print(f"  {index + 1}/{len(files)} photos, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    positives = np.concatenate(wrong)
    results = {"photos": len(files), "size": args.size, "error_threshold": args.error, "wrong_share":
               float(positives.mean()), "measure": MEASURE, "mass_radius": MASS_RADIUS, "auroc": {},
               "auroc_photo_mean": {}, "seconds": round(time.perf_counter() - started, 1), "load_average": load}
    for name in FORMULAS:
        results["auroc"][name] = auroc(np.concatenate(scores[name]), positives)
        results["auroc_photo_mean"][name] = float(np.nanmean(per_photo[name]))
    marked, randomly = float(np.mean(marked_gains)), float(np.mean(random_gains))
    results.update(marked_gain=marked, random_gain=randomly, gain_ratio=marked / randomly if randomly else None,
                   marked_better_share=float(np.mean(np.array(marked_gains) > np.array(random_gains))))

    print(f"{len(files)} validation photos at {args.size} x {args.size}, model {args.model}; "
          f"{100 * results['wrong_share']:.1f} % of pixels have ab error > {args.error:g}")
    print(f"{'confidence formula':<24}{'AUROC (pooled)':>15}{'mean / photo':>14}{'target':>8}")
    for name in FORMULAS:
        shipped = "  <- inference.confidence" if name == chosen else ""
        print(f"{name:<24}{results['auroc'][name]:>15.3f}{results['auroc_photo_mean'][name]:>14.3f}{'>= 0.7':>8}"
              f"{shipped}")
    print(f"\n{HINTS} true-colour hints{'':<14}{'PSNR gain dB':>13}")
    print(f"{'at the marked places':<31}{marked:>+13.3f}")
    print(f"{'at random places':<31}{randomly:>+13.3f}   ({args.random_draws} draws a photo, averaged)")
    ratio = results["gain_ratio"]
    print(f"{'ratio':<31}{ratio:>13.2f}x  (target >= 1.3x); marked beat random on "
          f"{100 * results['marked_better_share']:.0f} % of the photos")
    print(f"{results['seconds']:.0f} s; load average at the start {load:.2f} (2-core CPU, shared)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
