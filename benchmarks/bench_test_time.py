"""Benchmark: choices made at inference, no retraining: test-time flip averaging, and the temperature per hint count.

For one trained model (the shipped one by default), on the validation photos
of a split file (the 144 of `SPLIT_ALL.tsv`), each compared as its centred
square at 256:

- flip averaging: the colours predicted for the photo and for its mirror
  image (flipped back) averaged, against the model as it ships, automatic
  (rebalanced AuC over grayscale, colourfulness / the real photos', PSNR
  over grayscale) and, for a hint model, with the simulated points of
  `bench_hints.py` (the hints mirrored too);
- the annealed-mean temperature at each number of points (0 to 20): whether
  a model given hints should decode at another T than without (each row
  decodes at its T with and without hints).

Every row is measured in the same run as the baseline (the model as it
ships: `model.TEMPERATURE`, with hints `model.HINT_TEMPERATURE`, no flip),
with the same points.

    python benchmarks/bench_test_time.py                               # the shipped model
    python benchmarks/bench_test_time.py --model runs/mine --temperatures 0.5,1.0 --no-flip

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
SIZE = 256


def flip_averaged(colorizer):
    """`colorizer` whose network output is averaged with that of the mirrored input, mirrored back."""
    import numpy as np

    from colorfusion.inference.colorizer import Colorizer

    class FlipAveraged(Colorizer):
        def predict_ab(self, l_small, hint_maps=None):
            mirrored_maps = None if hint_maps is None else np.asarray(hint_maps)[:, :, ::-1]
            ab = super().predict_ab(l_small, hint_maps)
            mirrored = super().predict_ab(np.asarray(l_small)[:, :, ::-1], mirrored_maps)
            return (ab + mirrored[:, :, ::-1]) / 2

    return FlipAveraged(colorizer.model, decode=colorizer.decode, temperature=colorizer.temperature,
                        embedder=colorizer.embedder, size=colorizer.size, hint_temperature=colorizer.hint_temperature)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_DATA), help="root the split file's paths are relative to")
    parser.add_argument("--split-file", default=str(SHARED_DATA / "SPLIT_ALL.tsv"),
                        help="path<TAB>split list; its val photos are scored (default SPLIT_ALL.tsv)")
    parser.add_argument("--model", default="pretrained", help="run folder, .keras, .npz or pretrained (default)")
    parser.add_argument("--temperatures", default="0.5,1.0",
                        help="annealed-mean temperatures to try beside the model's default (comma-separated)")
    parser.add_argument("--no-flip", action="store_true", help="skip flip averaging")
    parser.add_argument("--limit", type=int, help="only the first N validation photos")
    parser.add_argument("--out", default="runs/bench_test_time", help="folder for the evaluation reports")
    args = parser.parse_args(argv)

    from colorfusion import datasets
    from colorfusion import model as model_lib
    from colorfusion.bins import ABBins
    from colorfusion.evaluation import evaluate, evaluate_hints, gains_over_grayscale
    from colorfusion.inference.colorizer import Colorizer

    _, files = datasets.read_split_file(args.split_file, args.data)
    files = files[: args.limit] if args.limit else files
    bins = ABBins.fit_files(files, max_side=SIZE, progress=False)  # one prior: every row's AuC compares
    base = Colorizer.from_path(args.model, size=SIZE)
    shipped = f"T={base.temperature:g}" + (f", hints {base.hint_temperature:g}" if base.takes_hints else "")
    variants = {f"{shipped} (default)": base}
    if not args.no_flip:
        variants[f"{shipped}, flip averaged"] = flip_averaged(base)
    for t in (float(v) for v in args.temperatures.split(",") if v):
        variants[f"T={t:g}"] = base.with_decoding("annealed_mean", t, hint_temperature=t)

    rows = {}
    for label, colorizer in variants.items():
        report = evaluate(colorizer, files, Path(args.out) / label.replace(" ", "_").replace(",", ""), size=SIZE,
                          bins=bins, progress=False)
        rows[label] = {"automatic": gains_over_grayscale(report.summary)}
        if base.takes_hints:
            rows[label]["hints"] = evaluate_hints(colorizer, files, size=SIZE, bins=bins, progress=False)["hints"]
        print(f"{label}: done", file=sys.stderr, flush=True)

    print(f"{args.model} on {len(files)} validation photos at {SIZE} x {SIZE} (default T "
          f"{model_lib.TEMPERATURE:g}, with hints {model_lib.HINT_TEMPERATURE:g}); automatic: gains over grayscale")
    print(f"{'variant':<26}{'rebal. AuC':>11}{'gain pts':>9}{'colourful.':>11}{'ratio':>7}{'PSNR':>7}{'gain dB':>8}")
    for label, row in rows.items():
        a = row["automatic"]
        print(f"{label:<26}{a['rebalanced_auc']:>11.4f}{a['rebalanced_auc_gain']:>+9.2f}{a['colorfulness']:>11.1f}"
              f"{a['colorfulness_ratio']:>7.2f}{a['psnr']:>7.2f}{a['psnr_gain']:>+8.2f}")
    if base.takes_hints:
        baseline = rows[next(iter(rows))]["automatic"]["psnr"]
        counts = list(next(iter(rows.values()))["hints"])
        print(f"\nwith N simulated points: PSNR dB over the baseline's automatic {baseline:.2f} dB "
              "(the 5th percentile of the per-photo gain over the same variant with none), colourfulness")
        print(f"{'variant':<26}" + "".join(f"{c + ' pts':>20}" for c in counts))
        for label, row in rows.items():
            print(f"{label:<26}" + "".join(
                f"{row['hints'][c]['psnr'] - baseline:>+7.2f}{row['hints'][c]['psnr_gain_p5']:>+7.2f}"
                f"{row['hints'][c]['colorfulness']:>6.1f}" for c in counts))
    print(json.dumps({"model": args.model, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
