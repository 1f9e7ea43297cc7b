"""Benchmark: how much do a few colour hints lift the colours, and does the hint model lose anything without them?

On the validation photos of a split file (the 144 of `SPLIT.tsv` /
`SPLIT_ALL.tsv`), each compared as its centred square at `--size` (256), hints
are simulated from the true photo as in training and as in Zhang et al.'s
(2017) Fig. 4: 0, 1, 2, 5, 10 and 20 points at random places, each a square
patch of 1 to 9 pixels whose mean ab is the hint (`evaluation.evaluate_hints`,
seeded per photo and count, so every model sees the same points). The hint
model is scored at each count, beside the automatic model (no hints: the
same figures at every count) and grayscale, on rebalanced AuC (bins fitted
on the evaluated photos, as `colorfusion evaluate` does), PSNR and
colourfulness (with the real photos').

    python benchmarks/bench_hints.py                                  # the shipped model, if it takes hints
    python benchmarks/bench_hints.py --hint-model runs/hints --automatic-model auto.npz

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
    parser.add_argument("--hint-model", default="pretrained",
                        help="a model that takes hints: run folder, .keras, .npz or pretrained (default)")
    parser.add_argument("--automatic-model", default=None,
                        help="the automatic model of the same recipe to compare with (run folder, .keras, .npz); "
                             "default: the hint model with no hints only")
    parser.add_argument("--counts", default="0,1,2,5,10,20", help="numbers of points (default 0,1,2,5,10,20)")
    parser.add_argument("--size", type=int, default=256, help="the side photos are compared at (default 256)")
    parser.add_argument("--limit", type=int, help="only the first N validation photos")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated points")
    args = parser.parse_args(argv)

    from colorfusion import datasets
    from colorfusion.evaluation import evaluate_hints

    counts = [int(c) for c in args.counts.split(",")]
    _, files = datasets.read_split_file(args.split_file, args.data)
    files = files[: args.limit] if args.limit else files
    try:
        results = evaluate_hints(args.hint_model, files, counts, size=args.size, automatic=args.automatic_model,
                                 seed=args.seed)
    except ValueError as e:
        print(f"error: {args.hint_model}: {e}", file=sys.stderr)
        return 1
    results.update(hint_model=str(args.hint_model), automatic_model=args.automatic_model)

    # Gains are against the automatic model, else the hint model with no hints, else grayscale.
    against, reference = next((name, row) for name, row in (
        ("automatic", results.get("automatic")), ("0 points", results["hints"].get("0")),
        ("grayscale", results["grayscale"])) if row is not None)
    gray = results["grayscale"]
    print(f"{results['photos']} validation photos at {args.size} x {args.size}; real photos' colourfulness "
          f"{results['true_colorfulness']:.1f}")
    print(f"{'':<22}{'rebalanced AuC':>16}{'vs ' + against:>14}{'PSNR dB':>10}{'vs ' + against:>14}"
          f"{'colourful':>11}{'photo gain: mean':>18}{'5th pct':>9}")
    table = [("grayscale", gray)] + ([("automatic model", results["automatic"])] if "automatic" in results else [])
    table += [(f"hint model, {c} points", results["hints"][str(c)]) for c in counts]
    for label, row in table:
        auc_change = 100 * (row["rebalanced_auc"] - reference["rebalanced_auc"])
        worst = (f"{row['psnr_gain_mean']:>+18.2f}{row['psnr_gain_p5']:>+9.2f}" if "psnr_gain_p5" in row else "")
        print(f"{label:<22}{row['rebalanced_auc']:>16.4f}{auc_change:>+13.2f}p"
              f"{row['psnr']:>10.2f}{row['psnr'] - reference['psnr']:>+14.2f}{row['colorfulness']:>11.1f}{worst}")
    print("photo gain: each photo's PSNR gain (dB) over the hint model given no hints; its mean and 5th percentile")
    if "10" in results["hints"] and "0" in results["hints"] and against != "grayscale":
        results["checks"] = {
            "psnr_gain_10_points_db": results["hints"]["10"]["psnr"] - reference["psnr"],
            "auc_change_0_points": 100 * (results["hints"]["0"]["rebalanced_auc"] - reference["rebalanced_auc"]),
        }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
