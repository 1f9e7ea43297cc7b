"""Benchmark: what does fine-tuning the shipped model on a few new photos gain on photos like them?

A user with their own photos starts from the shipped model (`train(...,
init="pretrained")`). Here the photos of one folder or the validation photos
of a split file, which the shipped model never trained on, are halved at
random (seeded): the shipped model is fine-tuned on one half (a slice of it
picks the checkpoint) for `--minutes`, and both models, with grayscale and
the real photos beside them, are evaluated on the other half at 256 x 256.

    python benchmarks/bench_finetune.py --data ../shared/data --split-file ../shared/data/SPLIT_ALL.tsv

Prints a table and, as its last line, JSON.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="root the split file's paths are relative to, or a folder")
    parser.add_argument("--split-file", help="path<TAB>split list: its val photos are the new photos")
    parser.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time (default 5)")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4)")
    parser.add_argument("--image-size", type=int, default=128, help="fine-tuning crop size (default 128)")
    parser.add_argument("--out", default="runs/bench_finetune", help="run folder and reports")
    args = parser.parse_args(argv)

    from colorfusion import datasets
    from colorfusion.bins import ABBins
    from colorfusion.evaluation import evaluate
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.training import train

    photos = (datasets.read_split_file(args.split_file, args.data)[1] if args.split_file
              else datasets.find_images(args.data))
    evaluated, tuning = datasets.split_files(photos, val_fraction=0.5, seed=0)
    monitor, tuning = datasets.split_files(tuning, val_fraction=0.15, seed=1)[::-1]
    print(f"{len(photos)} new photos: fine-tuning on {len(tuning)} ({len(monitor)} picking the checkpoint), "
          f"evaluating on {len(evaluated)}", flush=True)
    out = Path(args.out)
    start = time.monotonic()
    result = train(train_files=tuning, val_files=monitor, out=out / "run", init="pretrained", resume="auto",
                   image_size=args.image_size, epochs=1000, learning_rate=args.learning_rate, freeze_epochs=10_000,
                   early_stopping_patience=6, time_limit_minutes=args.minutes, show=False, verbose=2)
    minutes = (time.monotonic() - start) / 60
    bins = ABBins.fit_files(evaluated, max_side=256, progress=False)
    rows = {}
    for name, colorizer in (("shipped", Colorizer.pretrained()), ("fine-tuned", Colorizer.from_path(out / "run"))):
        report = evaluate(colorizer, evaluated, out / f"report_{name}", size=256, bins=bins, progress=False)
        rows[name] = bench_quality.summary_row(report.summary, minutes if name != "shipped" else None,
                                               result.epochs_done if name != "shipped" else 0)
    print(bench_quality.format_rows(rows))
    print(json.dumps({"tuning_photos": len(tuning), "evaluated_photos": len(evaluated), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
