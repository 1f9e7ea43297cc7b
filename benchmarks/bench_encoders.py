"""Benchmark: what an EfficientNet-Lite encoder costs against MobileNetV2, forward time on this machine.

The colorizer's pretrained encoder (`backbones.feature_extractor`, features at
strides 2 to 32, any input size) is most of its forward pass. This times each
encoder alone on a batch of gray photos at 256 x 352 (the size a 4:3 photo is
colorized at), compiled (`predict_on_batch`), after a warm-up; the encoders
take turns, `--repeats` rounds. Prints each one's parameters, median and
fastest time and their ratios to MobileNetV2, measured in the same run.
Weights do not change the time: random.

    python benchmarks/bench_encoders.py [--batch 1] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np

ENCODERS = ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def time_encoders(names, x: np.ndarray, repeats: int) -> list[tuple[str, int, list[float]]]:
    """(name, parameters, seconds of each forward pass of the batch) per encoder.

    The encoders take turns, one pass each per round, so that a machine busy
    with something else slows them all alike.
    """
    from colorfusion import backbones

    extractors = [backbones.feature_extractor(name, 64, weights=None, any_size=True) for name in names]
    for extractor in extractors:
        for _ in range(2):
            extractor.predict_on_batch(x)  # trace and warm up
    times = [[] for _ in extractors]
    for _ in range(repeats):
        for extractor, seconds in zip(extractors, times):
            start = time.perf_counter()
            extractor.predict_on_batch(x)
            seconds.append(time.perf_counter() - start)
    return [(name, extractor.count_params(), seconds) for name, extractor, seconds in zip(names, extractors, times)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=352)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    args = parser.parse_args(argv)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, args.height, args.width, 3)).astype(np.float32)
    rows = time_encoders(args.encoders.split(","), x, args.repeats)
    base_median, base_min = statistics.median(rows[0][2]), min(rows[0][2])
    print(f"encoder forward pass, batch {args.batch} at {args.height} x {args.width}, {args.repeats} turns each "
          f"({os.cpu_count()} CPUs); ratios to {rows[0][0]}")
    print(f"{'encoder':20} {'parameters':>11} {'median ms':>10} {'ratio':>6} {'fastest ms':>11} {'ratio':>6}")
    for name, params, seconds in rows:
        median, fastest = statistics.median(seconds), min(seconds)
        print(f"{name:20} {params:11,} {median * 1000:10.1f} {median / base_median:6.2f} {fastest * 1000:11.1f} "
              f"{fastest / base_min:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
