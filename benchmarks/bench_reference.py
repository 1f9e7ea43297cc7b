"""Benchmark: how much does a reference photo lift the colours, and what does matching it cost?

Each photo is compared as its centred square at `--size` (256) with the
automatic colours of the same model (no reference) and with the colours
taken from a reference photo (`inference.reference`: points matched in the
network's features, given as hints):

(a) same scene: the reference is the photo itself in colour, changed: a
    crop of 70-90 % of each side at a random place (a shift), scaled by
    0.8-1.2, rotated by up to 5 degrees, mirrored half the time (seeded per
    photo). Target: mean PSNR gain >= +3 dB, on the validation photos.
(b) another photo of the same kind: a different photo of the same flower or
    bird species, the same dish, the same Imagenette class
    (`photos_extra/`): the validation photos that have one (the English
    springer, the goldfinch), and one pair per kind of the kinds not used
    for tuning (the odd ones in sorted order). Targets: mean gain > 0 and
    5th percentile >= -0.5 dB (a poor reference must not make a photo much
    worse). Those targets are training photos of the shipped model (its
    automatic colours are at their best there); the reference is another.
(c) speed: the correspondence step on one photo (`Reference.points`: its
    encoder features, the automatic colours the weights blend from, the
    matching), beside the network's own call (the photo with its hints) in
    the same run; target <= 150 ms at 256 px on a CPU. The reference's own
    description (once per reference) apart.
(d) a clip: a 48-frame pan across the first validation photo at 256 x 352,
    colorized (`--temporal flow`) with and without the reference (that photo
    in colour, changed as in (a)), matched once a shot and its points carried
    along the motion: frames/s of each.

`--tune` instead scores a grid of settings (ratio, similarity, number of
points, spacing) on training photos only (the first photos of the training
split for (a), the even kinds for (b)): how the defaults in
`inference.reference` were chosen.

    python benchmarks/bench_reference.py                       # the shipped model
    python benchmarks/bench_reference.py --model release.npz   # another (a run folder, .keras, .npz)
    python benchmarks/bench_reference.py --tune --limit 16

Prints a table and, as its last line, JSON. Needs `../shared/data` (or
`--data`).
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

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXTRA = "photos_extra"
KIND_FOLDERS = ("flowers17", "cub_birds100", "food101_10cls", "imagenette")  # file name "KIND__id.jpg"
# Validation photos (photos/SPLIT.tsv) with photos of their kind in photos_extra.
VAL_KINDS = {"n02102040_English_springer.jpg": "imagenette/n02102040",
             "n01531178_goldfinch.jpg": "cub_birds100/European_Goldfinch"}
TARGETS = {"same scene gain": 3.0, "other photo gain": 0.0, "other photo p5": -0.5, "correspondence ms": 150.0}
# Each setting's default first (`inference.reference`), then the values tried beside it, one at a time.
TUNE_GRID = {"blend": (True, False), "full_similarity": (0.9, 0.95), "min_similarity": (0.85, 0.8),
             "ratio": (0.9, 0.95), "max_lightness": (10.0, 5.0), "max_points": (32, 64), "spacing": (3, 2),
             "min_points": (7, 1, 5)}


def changed(rgb: np.ndarray, rng) -> np.ndarray:
    """The same scene, changed: crop 70-90 % (shift), scale 0.8-1.2, rotate <= 5 degrees, mirror half the time."""
    import cv2

    height, width = rgb.shape[:2]
    ch, cw = (int(side * rng.uniform(0.7, 0.9)) for side in (height, width))
    top, left = rng.integers(0, height - ch + 1), rng.integers(0, width - cw + 1)
    out = rgb[top:top + ch, left:left + cw]
    scale = rng.uniform(0.8, 1.2)
    out = cv2.resize(out, (max(32, round(cw * scale)), max(32, round(ch * scale))), interpolation=cv2.INTER_AREA
                     if scale < 1 else cv2.INTER_CUBIC)
    angle = rng.uniform(-5, 5)
    h, w = out.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(out, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)


def kinds(data: Path) -> dict[str, list[Path]]:
    """{"folder/KIND": photos} of photos_extra's kinds, sorted."""
    found = {}
    for folder in KIND_FOLDERS:
        for path in sorted((data / EXTRA / folder).glob("*.jpg")):
            found.setdefault(f"{folder}/{path.name.split('__')[0]}", []).append(path)
    return dict(sorted(found.items()))


def other_pairs(data: Path, val_files, train: bool, seed: int) -> list[tuple[Path, Path, str]]:
    """(target, reference, kind): the validation photos' pairs and one pair per odd kind (even kinds: `train`)."""
    rng = np.random.default_rng(seed)
    by_kind = kinds(data)
    pairs = []
    if not train:
        for path in val_files:
            kind = VAL_KINDS.get(Path(path).name)
            if kind in by_kind:
                pairs.append((Path(path), by_kind[kind][rng.integers(len(by_kind[kind]))], kind))
    for index, (kind, photos) in enumerate(by_kind.items()):
        if index % 2 == (0 if train else 1) and len(photos) >= 2:
            a, b = rng.choice(len(photos), 2, replace=False)
            pairs.append((photos[a], photos[b], kind))
    return pairs


def gains(colorizer, cases, settings: dict, size: int, timings: list | None = None) -> list[float]:
    """Each case's PSNR gain (dB) of the reference's colours over the automatic ones.

    `timings` gets, for each case, (the correspondence step `Reference.points`, of it the encoder's features alone
    and the automatic colours alone, the network with the hints), in ms.
    """
    from colorfusion import metrics
    from colorfusion.inference.reference import Reference

    found = []
    for truth, reference in cases:
        ref = Reference(colorizer, reference, **settings)
        lightness = colorizer.read_lightness(truth)
        started = time.perf_counter()
        points = ref.points(colorizer, lightness)
        matched = time.perf_counter()
        hints = [point.hint for point in points]
        hint_map = colorizer.hints_input(hints, lightness.full, lightness.small.shape[:2]) if hints else None
        network = time.perf_counter()
        ab = colorizer.predict_ab(lightness.small[None], None if hint_map is None else hint_map[None])[0]
        done = time.perf_counter()
        automatic = colorizer.predict_ab(lightness.small[None])[0]
        if timings is not None:
            encoder = time.perf_counter()
            colorizer.features(lightness.small[None])
            encoded = time.perf_counter()
            colorizer.predict_ab(lightness.small[None])
            automatic_ms = (time.perf_counter() - encoded) * 1e3
            timings.append(((matched - started) * 1e3, (encoded - encoder) * 1e3, automatic_ms, (done - network) * 1e3))
        found.append(metrics.psnr(truth, colorizer.join_full_resolution(lightness.full, ab))
                     - metrics.psnr(truth, colorizer.join_full_resolution(lightness.full, automatic)))
    return found


def same_scene_cases(files, size: int, seed: int):
    from colorfusion import augment

    for index, path in enumerate(files):
        truth = augment.load_square(path, size)
        yield truth, changed(truth, np.random.default_rng([seed, index]))


def other_cases(pairs, size: int):
    from colorfusion import augment

    for target, reference, _ in pairs:
        yield augment.load_square(target, size), augment.load_square(reference, size)


def clip_cost(colorizer, path, size: int, seed: int) -> dict:
    """Frames/s of a pan clip colorized without and with a reference (matched once a shot, carried)."""
    import tempfile

    from colorfusion import augment, color
    from colorfusion.testing.clips import pan_clip, write_clip

    truth = augment.load_square(path, size)
    source = pan_clip(truth, (size, size * 11 // 8 // 32 * 32), 48)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "pan.mp4", (color.gray_version(source.frame(t)) for t in range(len(source))))
        reference = changed(truth, np.random.default_rng([seed, 0]))
        for name, given in (("without", None), ("with", reference)):
            started = time.perf_counter()
            report = colorizer.colorize_video(clip, Path(tmp) / f"{name}.mp4", progress=False, reference=given)
            found[name] = report.frames / (time.perf_counter() - started)
    return {"frames_per_s_without": found["without"], "frames_per_s_with": found["with"],
            "ratio": found["with"] / found["without"]}


def summary(values) -> dict:
    values = np.asarray(values, np.float64)
    return {"n": int(len(values)), "mean": float(values.mean()), "p5": float(np.percentile(values, 5)),
            "median": float(np.median(values)), "worse_than_-0.5": int((values < -0.5).sum())}


def tune(colorizer, args, train_files) -> dict:
    """Every setting of `TUNE_GRID` on training photos: (a)'s mean gain, (b)'s mean gain and 5th percentile."""
    from colorfusion.inference import reference as reference_lib

    scene = list(same_scene_cases(train_files[: args.limit or 16], args.size, args.seed))
    pairs = other_pairs(Path(args.data), [], train=True, seed=args.seed)[::4][: args.limit or 16]  # every folder
    others = list(other_cases(pairs, args.size))
    print(f"tuning on {len(scene)} training photos (same scene) and {len(others)} training pairs (other photo)")
    print(f"{'setting':<24}{'scene':>8}{'other':>8}{'p5':>8}")
    rows = []
    base = {key: getattr(reference_lib, key.upper(), True) for key in TUNE_GRID}
    for key, values in TUNE_GRID.items():  # one setting at a time around the defaults
        for value in values[1:] if rows else values:
            settings = {**base, key: value}
            a = summary(gains(colorizer, scene, settings, args.size))
            b = summary(gains(colorizer, others, settings, args.size))
            rows.append({**settings, "scene": a, "other": b})
            print(f"{key + ' ' + str(value):<24}{a['mean']:>+8.2f}{b['mean']:>+8.2f}{b['p5']:>+8.2f}", flush=True)
    return {"tune": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_DATA), help="shared/data: photos/ and photos_extra/")
    parser.add_argument("--model", default="pretrained",
                        help="a model that takes hints: run folder, .keras, .npz or pretrained (default)")
    parser.add_argument("--size", type=int, default=256, help="the side photos are compared at (default 256)")
    parser.add_argument("--limit", type=int, help="only the first N photos (and pairs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the changes and of the pairs")
    parser.add_argument("--tune", action="store_true", help="score settings on training photos instead")
    args = parser.parse_args(argv)

    from colorfusion import datasets
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.inference.reference import (
        FULL_SIMILARITY,
        MAX_LIGHTNESS,
        MAX_POINTS,
        MIN_POINTS,
        MIN_SIMILARITY,
        RATIO,
        SPACING,
        STRIDE,
    )

    data = Path(args.data)
    train_files, val_files = datasets.read_split_file(data / "photos" / "SPLIT.tsv", data / "photos")
    colorizer = Colorizer.pretrained(size=args.size) if args.model == "pretrained" else \
        Colorizer.from_path(args.model, size=args.size)
    if args.tune:
        print(json.dumps(tune(colorizer, args, train_files)))
        return 0
    load = os.getloadavg()[0]
    val_files = val_files[: args.limit] if args.limit else val_files
    settings = {}
    timings = []
    scene = summary(gains(colorizer, same_scene_cases(val_files, args.size, args.seed), settings, args.size, timings))
    pairs = other_pairs(data, val_files, train=False, seed=args.seed)[: args.limit or None]
    on_val = [i for i, (target, _, _) in enumerate(pairs) if Path(target).name in VAL_KINDS]
    other_gains = gains(colorizer, other_cases(pairs, args.size), settings, args.size)
    other = summary(other_gains)
    step, features, automatic, network = (float(np.median(column)) for column in zip(*timings))
    print(f"model {args.model}; photos at {args.size} x {args.size}; load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")
    print(f"settings: cell {STRIDE} px, ratio {RATIO}, similarity {MIN_SIMILARITY} (weight 0) to {FULL_SIMILARITY} "
          f"(1), lightness within {MAX_LIGHTNESS}, {MIN_POINTS} to {MAX_POINTS} points, one per {SPACING} x {SPACING} "
          f"cells")
    print(f"{'':<44}{'photos':>7}{'mean gain':>10}{'median':>8}{'5th pct':>9}{'< -0.5':>7}{'target':>16}")
    print(f"{'(a) same scene, changed (validation)':<44}{scene['n']:>7}{scene['mean']:>+10.2f}{scene['median']:>+8.2f}"
          f"{scene['p5']:>+9.2f}{scene['worse_than_-0.5']:>7}{'mean >= +3 dB':>16}")
    print(f"{'(b) another photo of the same kind':<44}{other['n']:>7}{other['mean']:>+10.2f}{other['median']:>+8.2f}"
          f"{other['p5']:>+9.2f}{other['worse_than_-0.5']:>7}{'> 0, p5 >= -0.5':>16}")
    val_pairs = [f"{Path(pairs[i][0]).name}: {other_gains[i]:+.2f} dB" for i in on_val]
    print(f"    of which validation photos: {'; '.join(val_pairs) or 'none'}")
    matching = step - features - automatic
    print(f"(c) per photo, median: correspondence step {step:.1f} ms (target <= 150 ms): the encoder's features "
          f"{features:.1f} ms, the automatic colours {automatic:.1f} ms, the matching {matching:.1f} ms; "
          f"the network with the hints {network:.1f} ms: ratio {step / network:.2f}")
    clip = clip_cost(colorizer, val_files[0], args.size, args.seed)
    print(f"(d) a 48-frame pan clip at {args.size} x {args.size * 11 // 8 // 32 * 32}, flow: "
          f"{clip['frames_per_s_without']:.1f} frames/s without a reference, {clip['frames_per_s_with']:.1f} with "
          f"one (matched once a shot): {clip['ratio']:.2f}x")
    print(json.dumps({"model": args.model, "size": args.size, "load_average": load, "same_scene": scene, "clip": clip,
                      "other_photo": other, "other_photo_validation": val_pairs,
                      "correspondence_ms": step, "features_ms": features, "automatic_ms": automatic,
                      "matching_ms": matching, "network_ms": network, "ratio": step / network,
                      "settings": {"cell": STRIDE, "ratio": RATIO, "min_similarity": MIN_SIMILARITY,
                                   "full_similarity": FULL_SIMILARITY, "max_lightness": MAX_LIGHTNESS,
                                   "max_points": MAX_POINTS, "min_points": MIN_POINTS, "spacing": SPACING},
                      "targets": TARGETS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
