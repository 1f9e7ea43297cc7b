"""Benchmark: at which short side should a photo be colorized? Quality and time per inference size.

A model that takes any size (the shipped model, any pretrained-encoder run)
colorizes a photo resized to a short side S, its aspect ratio kept; the ab it
predicts (at S / 4 for the classification head) is upsampled to the photo's
own size. Small S loses detail in the colour map (colour bleeds over edges);
large S shows the network objects at a scale it never trained on.

For each S of `--sizes`, the model is evaluated on the validation photos of
`--split-file` as `colorfusion evaluate` does (centred squares at `--size`,
grayscale and the real photos scored beside it), and a 4000 x 3000 photo
(scikit-image's astronaut, upscaled; or `--photo`) is colorized end to end
in memory; `--crops DIR` writes a crop of it at each S to look at the colour
edges. Prints a table and, as its last line, JSON.

    python benchmarks/bench_inference_size.py --data ../shared/data \\
        --split-file ../shared/data/SPLIT_ALL.tsv --sizes 128,192,256,320,384
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


def big_photo(path=None):
    import cv2
    from skimage import data

    from colorfusion import io

    if path:
        return io.read_rgb(path)
    return cv2.resize(data.astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="root the split file's paths are relative to, or a folder")
    parser.add_argument("--split-file", help="path<TAB>split list; its val photos are evaluated")
    parser.add_argument("--model", default="pretrained", help="a run folder, .keras file or pretrained (default)")
    parser.add_argument("--sizes", default="128,192,256,320,384", help="short sides to try (default 128..384)")
    parser.add_argument("--size", type=int, default=256, help="photos are compared at SIZE x SIZE (default 256)")
    parser.add_argument("--photo", help="the big photo (default: scikit-image's astronaut at 4000 x 3000)")
    parser.add_argument("--crops", help="write a 600 x 600 crop of the big photo at each size into this folder")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs on the big photo (median)")
    parser.add_argument("--out", default="runs/bench_inference_size", help="evaluation reports")
    args = parser.parse_args(argv)

    import numpy as np

    from colorfusion import datasets, io
    from colorfusion.bins import ABBins
    from colorfusion.evaluation import evaluate
    from colorfusion.inference.colorizer import Colorizer

    if args.split_file:
        files = datasets.read_split_file(args.split_file, args.data)[1]
    else:
        files = datasets.find_images(args.data)
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Colorizer.from_path(args.model)
    bins = ABBins.fit_files(files, max_side=args.size, progress=False)
    photo = big_photo(args.photo)
    rows = {}
    for size in sizes:
        colorizer = base.with_size(size)
        report = evaluate(colorizer, files, Path(args.out) / f"S{size}", size=args.size, bins=bins, progress=False)
        row = bench_quality.summary_row(report.summary, None, None)
        colorizer(photo[:64, :64])  # warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            rgb = colorizer(photo)
            times.append(time.perf_counter() - start)
        row["network_shape"] = list(colorizer.input_shape(*photo.shape[:2]))
        row["big_photo_s"] = round(float(np.median(times)), 3)
        rows[str(size)] = row
        if args.crops:
            top, left = photo.shape[0] // 5, photo.shape[1] // 3
            io.write_image(Path(args.crops) / f"S{size}.png", rgb[top:top + 600, left:left + 600])
        print(f"S={size:<5} network {row['network_shape'][0]}x{row['network_shape'][1]:<6}"
              f"rebalanced AuC {row['rebalanced_auc']:.4f} ({row['rebalanced_auc_gain']:+.2f}), colourfulness "
              f"{row['colorfulness_ratio']:.2f}, PSNR {row['psnr']:.2f} ({row['psnr_gain']:+.2f} dB), "
              f"{photo.shape[1]}x{photo.shape[0]} in {row['big_photo_s']:.3f} s", flush=True)
    print(json.dumps({"model": args.model, "n_images": len(files), "sizes": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
