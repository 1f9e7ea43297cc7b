"""Benchmark: does the input pipeline make a training step wait?

Training throughput (images per second) of `colorfusion.training.train()`'s loop
(files on disk -> ColorizationGenerator -> model.fit, with cached
embeddings) against a bare `model.train_on_batch` loop over the same batches
already in memory, with the same model, batch and machine, in one run.

Only the training part of each epoch is timed in `train()` (from the
epoch's start to its last training batch): validation, previews and
checkpoints are per-epoch costs outside the step loop. The first epoch of
each variant is a warm-up (graph tracing, cache fill) and is not counted.

    python benchmarks/bench_train.py [--data DIR] [--limit 200] [--image-size 64] [--batch-size 32]

Prints a table, then as its last line a JSON object with `ratio` = train /
bare (target: at least 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from colorfusion import datasets, losses
from colorfusion import model as model_lib
from colorfusion.training import train

SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


class TrainTimer(keras.callbacks.Callback):
    """Seconds from each epoch's start to its last training batch."""

    def __init__(self):
        super().__init__()
        self.seconds, self.images, self._start, self._last = [], [], 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self._last - self._start)


def photo_files(data, limit):
    if data is not None:
        return datasets.find_images(data)[:limit]
    if SHARED_PHOTOS.is_dir():
        return datasets.find_images(SHARED_PHOTOS)[:limit]
    print("no --data and no ../shared/data/photos: using the package-shipped sample photos", file=sys.stderr)
    return datasets.sample_photos()[:limit]


def run_train(files, args, out, cache, workers):
    timer = TrainTimer()
    n_val = max(1, len(files) // 20)
    train(train_files=files[n_val:], val_files=files[:n_val], out=out, cache_dir=cache, callbacks=[timer],
          head="regression", image_size=args.image_size, batch_size=args.batch_size, epochs=args.epochs + 1,
          width=args.width, encoder="scratch", early_stopping_patience=None, backbone="mobilenet", weights=None,
          embedding="cache", preview_every=1000,
          preview_samples=1, workers=workers, hardware="cpu", verbose=0, show=False)
    n_train = len(files) - n_val
    return n_train * args.epochs / sum(timer.seconds[1:]), n_train


def run_bare(files, args, cache):
    """The same batches, pre-built in memory, through train_on_batch."""
    from colorfusion.embeddings import Embedder, EmbeddingCache
    from colorfusion.generator import ColorizationGenerator

    embedder = Embedder("mobilenet", weights=None)
    gen = ColorizationGenerator(files, batch_size=args.batch_size, image_size=args.image_size, augment=True,
                                shuffle=True, embedding="cache", cache=EmbeddingCache(cache, embedder, progress=False))
    batches = [gen[i] for i in range(len(gen))]
    model = model_lib.build_colorizer(args.image_size, "regression", embedding_dim=embedder.dim, width=args.width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.get_loss("regression"))
    for x, y in batches:  # warm-up epoch: tracing
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(args.epochs):
        for x, y in batches:
            model.train_on_batch(x, y)
    return len(files) * args.epochs / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder of colour photos (default ../shared/data/photos when present)")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    args = parser.parse_args()

    files = photo_files(args.data, args.limit)
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        rows = []
        for workers in (1, 2):
            ips, n_train = run_train(files, args, Path(tmp) / f"run{workers}", cache, workers)
            rows.append((f"train() workers={workers}", ips))
        n_bare = n_train  # same number of training photos as train() used
        bare = run_bare(files[len(files) - n_bare:], args, cache)
        rows.append(("bare train_on_batch", bare))

    print(f"{len(files)} photos, {args.image_size}x{args.image_size}, batch {args.batch_size}, width {args.width}, "
          f"backend {keras.backend.backend()}, {os.cpu_count()} CPU cores")
    print(f"{'loop':<24}{'images/s':>10}{'vs bare':>9}")
    for name, ips in rows:
        print(f"{name:<24}{ips:>10.1f}{ips / bare:>8.2f}x")
    best_train = max(ips for name, ips in rows if name.startswith("train()"))
    print(json.dumps({
        "photos": len(files), "image_size": args.image_size, "batch_size": args.batch_size,
        "train_workers1_ips": round(rows[0][1], 1), "train_workers2_ips": round(rows[1][1], 1),
        "bare_ips": round(bare, 1), "ratio": round(best_train / bare, 3),
    }))


if __name__ == "__main__":
    main()
