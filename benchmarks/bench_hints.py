"""Benchmark: how much do a few colour hints lift the colours, and does the hint model lose anything without them?

On the validation photos of a split file (the 144 of `SPLIT.tsv` /
`SPLIT_ALL.tsv`), each compared as its centred square at `--size` (256), hints
are simulated from the true photo as in training and as in Zhang et al.'s
(2017) Fig. 4: 0, 1, 2, 5, 10 and 20 points at random places, each a square
patch of 1 to 9 pixels whose mean ab is the hint (`evaluation.evaluate_hints`,
seeded per photo and count, so every model sees the same points). Each hint
model is scored at each count, beside grayscale (and an automatic model, if
given), on rebalanced AuC (bins fitted on the evaluated photos, as
`colorfusion evaluate` does), PSNR and colourfulness (with the real
photos'); and the worst case beside the mean: each photo's PSNR gain over the
same model given no hints, its mean and its 5th percentile (a hint should
almost never make a photo worse). Then what a person does: one point asking
for a colour the model did not give (`evaluation.evaluate_hint_response`):
how far the colour around it follows (1 = all the way), how many points do
too little (below half), and how far other objects at least 64 px away move
toward it (spill, as a share of the asked change).

    python benchmarks/bench_hints.py                                  # the shipped model
    git show 2b08289:src/colorfusion/models/colorfusion.npz > release_0.2.0.npz
    python benchmarks/bench_hints.py --hint-model release_0.2.0.npz --hint-model pretrained   # side by side

Prints a table and, as its last line, JSON. Needs `../shared/data` (or
`--data`, `--split-file`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_DATA), help="root the split file's paths are relative to")
    parser.add_argument("--split-file", default=str(SHARED_DATA / "SPLIT_ALL.tsv"),
                        help="path<TAB>split list; its val photos are scored "
                             "(default SPLIT_ALL.tsv: the 144 of SPLIT.tsv)")
    parser.add_argument("--hint-model", action="append", metavar="MODEL",
                        help="a model that takes hints: run folder, .keras, .npz or pretrained (default); repeat "
                             "it to score several side by side (release 0.2.0's file beside the shipped one)")
    parser.add_argument("--automatic-model", default=None,
                        help="the automatic model of the same recipe to compare with (run folder, .keras, .npz); "
                             "default: each hint model with no hints only")
    parser.add_argument("--counts", help="numbers of points, comma-separated (default evaluation.HINT_COUNTS: 0 to 20)")
    parser.add_argument("--size", type=int, default=256, help="the side photos are compared at (default 256)")
    parser.add_argument("--limit", type=int, help="only the first N validation photos")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated points")
    args = parser.parse_args(argv)

    from colorfusion import datasets
    from colorfusion.evaluation import HINT_COUNTS, evaluate_hint_response, evaluate_hints

    counts = [int(c) for c in args.counts.split(",")] if args.counts else list(HINT_COUNTS)
    _, files = datasets.read_split_file(args.split_file, args.data)
    files = files[: args.limit] if args.limit else files
    models = args.hint_model or ["pretrained"]
    runs = {}  # each evaluation fits the same bins on the same photos: the AuCs compare
    for model in models:
        try:
            results = evaluate_hints(model, files, counts, size=args.size, seed=args.seed,
                                     automatic=args.automatic_model if not runs else None)
        except ValueError as e:
            print(f"error: {model}: {e}", file=sys.stderr)
            return 1
        results["new_colour"] = evaluate_hint_response(model, files, size=args.size, seed=args.seed)
        runs[str(model)] = results
    first = next(iter(runs.values()))
    print(f"{first['photos']} validation photos at {args.size} x {args.size}; real photos' colourfulness "
          f"{first['true_colorfulness']:.1f}; grayscale: rebalanced AuC {first['grayscale']['rebalanced_auc']:.4f}, "
          f"PSNR {first['grayscale']['psnr']:.2f} dB")
    if "automatic" in first:
        auto = first["automatic"]
        print(f"automatic model {args.automatic_model}: rebalanced AuC {auto['rebalanced_auc']:.4f}, PSNR "
              f"{auto['psnr']:.2f} dB, colourfulness {auto['colorfulness']:.1f}")
    print(f"{'model':<34}{'points':>7}{'rebal. AuC':>11}{'vs 0 pts':>9}{'PSNR dB':>9}{'vs 0 pts':>9}"
          f"{'photo gain: mean':>17}{'5th pct':>9}{'colourful':>10}")
    for model, results in runs.items():
        none = results["hints"].get("0")
        for count in counts:
            row = results["hints"][str(count)]
            auc = f"{100 * (row['rebalanced_auc'] - none['rebalanced_auc']):>+8.2f}p" if none else f"{'':>9}"
            psnr = f"{row['psnr'] - none['psnr']:>+9.2f}" if none else f"{'':>9}"
            print(f"{model[-34:]:<34}{count:>7}{row['rebalanced_auc']:>11.4f}{auc}{row['psnr']:>9.2f}{psnr}"
                  f"{row['psnr_gain_mean']:>+17.2f}{row['psnr_gain_p5']:>+9.2f}{row['colorfulness']:>10.1f}")
    print("photo gain: each photo's PSNR gain (dB) over the same model given no hints; its mean and 5th percentile")
    print(f"\nOne point asking for a colour the model did not give (evaluation.evaluate_hint_response):\n"
          f"{'model':<34}{'photos':>7}{'response':>9}{'too little':>11}{'spill':>7}{'spill p95':>10}")
    for model, results in runs.items():
        row = results["new_colour"]
        spill = "n/a" if row["spill_mean"] is None else f"{row['spill_mean']:.3f}"
        p95 = "n/a" if row["spill_p95"] is None else f"{row['spill_p95']:.3f}"
        print(f"{model[-34:]:<34}{row['photos']:>7}{row['response_mean']:>9.3f}{100 * row['too_little']:>10.1f}%"
              f"{spill:>7}{p95:>10}")
    print("response: how far the colour around the point moves toward the asked one (1 = all the way); too little: "
          "points below half; spill: how far other objects at >= 64 px move toward it, as a share of the asked change")
    print(json.dumps({"automatic_model": args.automatic_model, "models": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
