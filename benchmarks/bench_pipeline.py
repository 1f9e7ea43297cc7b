"""Images per second of the training input pipeline, against a notebook-style baseline.

What is measured, over the same photos, at 256x256, batch 16:

- ours, cold cache: `ColorizationGenerator(embedding="cache")` made with an
  empty `EmbeddingCache` (it embeds every photo once with InceptionResNetV2),
  then one epoch;
- ours, warm cache: the same with the cache filled by the cold run (a new
  cache object and a new embedder, as in a second training run);
- ours without embedding: one epoch of `embedding=None`;
- baseline: a generator written the way published notebooks of this
  architecture do it: PIL load, `skimage.transform.resize` to 256x256,
  albumentations flip, `skimage.color.rgb2lab` per image, and
  InceptionResNetV2 `predict` on every batch (its gray input made with
  `gray2rgb(rgb2gray(...))` and `skimage.transform.resize` to 299).

InceptionResNetV2 has `weights=None` everywhere, so the run is offline; its
speed does not depend on the weights. Model building and the first (tracing)
call are done before timing, for both. OpenCV runs single-threaded
(`cv2.setNumThreads(1)`) so the figure without embedding is per core; the
table also gives images per CPU-second.

Usage:

    python benchmarks/bench_pipeline.py [--data DIR] [--limit 200]

The last line printed is a JSON object with the figures and
`ratio` = ours warm / baseline.
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

import albumentations as A
import cv2
import keras
import numpy as np
from PIL import Image
from skimage.color import gray2rgb, rgb2gray, rgb2lab
from skimage.transform import resize

from colorfusion import datasets, embeddings
from colorfusion.generator import ColorizationGenerator

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "photos"


class NotebookGenerator(keras.utils.PyDataset):
    """The baseline: one image at a time with PIL and skimage, the backbone on every batch."""

    def __init__(self, files, inception, batch_size=16, image_size=256, **kwargs):
        super().__init__(**kwargs)
        self.files, self.inception = files, inception
        self.batch_size, self.image_size = batch_size, image_size
        self.augment = A.Compose([A.HorizontalFlip(p=0.5)], seed=0)

    def __len__(self):
        return -(-len(self.files) // self.batch_size)

    def __getitem__(self, index):
        files = self.files[index * self.batch_size : (index + 1) * self.batch_size]
        ls, abs_, grays = [], [], []
        for path in files:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            rgb = resize(rgb, (self.image_size, self.image_size))  # float in [0, 1]
            rgb = self.augment(image=rgb)["image"]
            lab = rgb2lab(rgb)
            ls.append(lab[..., :1] / 50 - 1)
            abs_.append(lab[..., 1:] / 128)
            gray = gray2rgb(rgb2gray(rgb))
            grays.append(resize(gray, (299, 299, 3)))
        # As published: [0, 1] images into preprocess_input (the bug; same cost).
        x = keras.applications.inception_resnet_v2.preprocess_input(np.stack(grays).astype(np.float32))
        embedding = self.inception.predict(x, verbose=0)
        return {"L": np.stack(ls), "embedding": embedding}, np.stack(abs_)


def epoch(generator) -> None:
    for i in range(len(generator)):
        generator[i]


def timed(n: int, fn) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return n, time.perf_counter() - wall, time.process_time() - cpu


def pick_photos(data: Path | None, limit: int) -> tuple[list[Path], str]:
    if data is not None and data.is_dir():
        files = datasets.find_images(data)
        # Evenly spaced over the sorted list: a mix of every sub-folder.
        step = max(1, len(files) // limit)
        return files[::step][:limit], str(data)
    photos = datasets.sample_photos()
    return [photos[i % len(photos)] for i in range(limit)], "sample_photos (repeated; no --data folder)"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
    parser.add_argument("--limit", type=int, default=200, help="number of photos (default 200)")
    parser.add_argument(
        "--baseline-limit", type=int, default=None,
        help="photos for the baseline (the first ones of the same list); default: all of --limit. "
        "Its cost per photo is constant (the backbone dominates), so fewer give the same rate sooner.",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--backbone", default="inception_resnet_v2")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)

    files, source = pick_photos(args.data, args.limit)
    n, batch, size = len(files), args.batch_size, args.image_size
    baseline_files = files[: args.baseline_limit] if args.baseline_limit else files
    print(f"{n} photos from {source}; {size}x{size}, batch {batch}; {os.cpu_count()} CPU cores; "
          f"backbone {args.backbone}, weights=None")

    rows = {}  # name: (photos, wall seconds, CPU seconds)
    with tempfile.TemporaryDirectory() as folder:
        warmup = np.full((batch, size, size, 1), 50.0, np.float32)

        embedder = embeddings.Embedder(args.backbone, weights=None, batch_size=batch)
        embedder.embed_l(warmup)  # build and trace before timing
        cache = embeddings.EmbeddingCache(folder, embedder, progress=False)
        rows["ours, cold cache"] = timed(
            n,
            lambda: epoch(ColorizationGenerator(files, batch, size, augment=True, shuffle=True, embedding="cache",
                                                cache=cache))
        )

        # A second run: new embedder and cache objects, the model is never built.
        warm_cache = embeddings.EmbeddingCache(folder, embeddings.Embedder(args.backbone, weights=None), progress=False)
        rows["ours, warm cache"] = timed(
            n,
            lambda: epoch(ColorizationGenerator(files, batch, size, augment=True, shuffle=True, embedding="cache",
                                                cache=warm_cache))
        )
        assert warm_cache.computed == 0, "the warm run recomputed embeddings"

    rows["ours, no embedding"] = timed(n, lambda: epoch(ColorizationGenerator(files, batch, size, augment=True,
                                                                              shuffle=True)))

    inception = embedder.model  # the same architecture, already built and traced
    for rows_in_batch in {batch, len(baseline_files) % batch or batch}:  # trace both batch shapes before timing
        inception.predict(np.zeros((rows_in_batch, 299, 299, 3), np.float32), verbose=0)
    rows["baseline (notebook)"] = timed(len(baseline_files), lambda: epoch(NotebookGenerator(baseline_files, inception,
                                                                                             batch, size)))

    figures = {name: m / wall for name, (m, wall, _) in rows.items()}
    base = figures["baseline (notebook)"]
    print("\n| pipeline | photos | images/s | images per CPU-second | x baseline |\n|---|---:|---:|---:|---:|")
    for name, (m, wall, cpu) in rows.items():
        print(f"| {name} | {m} | {m / wall:.1f} | {m / cpu:.1f} | {m / wall / base:.1f} |")

    figures = {name: round(value, 2) for name, value in figures.items()}
    result = {
        "images": n,
        "images_baseline": len(baseline_files),
        "image_size": size,
        "batch_size": batch,
        "cpu_cores": os.cpu_count(),
        "ours_cold_cache": figures["ours, cold cache"],
        "ours_warm_cache": figures["ours, warm cache"],
        "ours_no_embedding": figures["ours, no embedding"],
        "ours_no_embedding_per_cpu_second": round(n / rows["ours, no embedding"][2], 2),
        "baseline": figures["baseline (notebook)"],
        "ratio": round(figures["ours, warm cache"] / figures["baseline (notebook)"], 2),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
