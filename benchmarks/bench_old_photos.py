"""Benchmark: do the colours hold on old prints, and on faces? Models side by side, clean and damaged.

The photos people colorize are scans of old prints. Each validation photo
(its centred square at `--size`) is colorized twice: from its own clean L,
and from its L made old by a fixed, seeded damage (`damage.OLD_PRINT`: grain,
fading, blur, scratches, dust, JPEG; the same damage for every model), and
both are compared with the clean colour photo. Grayscale (the input itself,
a = b = 0) is scored beside each. Reported, per set:

- raw and rebalanced AuC (bins fitted on the clean photos, as `colorfusion
  evaluate` does) and their gain over grayscale; for the damaged photos, the
  gain kept as a share of the clean gain;
- colourfulness, and its ratio to the real photos';
- blotch: of the pixels whose truth is gray (chroma < 15), the share painted
  vivid (chroma >= 40), pooled over the photos (`metrics.blotch_counts`).

The faces (`faces/SPLIT.tsv`'s 100 validation portraits, five groups of skin
tone, tight aligned crops) add the skin's colour: in the cheeks and the
nose (`SKIN_BOXES`, fixed boxes of the aligned crop), the mean ab error
against the truth and the mean a*, b* of model and truth.

    python benchmarks/bench_old_photos.py                                   # the shipped model
    python benchmarks/bench_old_photos.py --model pretrained --model runs/x/best.keras   # side by side

Prints a table and, as its last line, JSON. Needs `../shared/data` (or
`--data`, `--split-file`, `--faces`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Skin in an aligned face crop (fractions of height, width): both cheeks and the nose, clear of eyes and mouth.
SKIN_BOXES = ((0.45, 0.62, 0.18, 0.38), (0.45, 0.62, 0.62, 0.82), (0.42, 0.60, 0.43, 0.57))
BATCH = 8


def skin_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    for top, bottom, left, right in SKIN_BOXES:
        mask[round(top * height):round(bottom * height), round(left * width):round(right * width)] = True
    return mask


def old_versions(truths, seed: int) -> list[np.ndarray]:
    """Each photo's B&W version made old (uint8 gray RGB, as a scan of the print would be): the same for every model."""
    from colorfusion import color
    from colorfusion.damage import OLD_PRINT, damage_lightness

    return [(color.gray_rgb_from_l(damage_lightness(color.rgb_to_l(truth)[..., 0], [seed, index], OLD_PRINT))
             * 255 + 0.5).astype(np.uint8) for index, truth in enumerate(truths)]


def score(truths, predictions, bins, faces: bool) -> dict:
    """Means over the photos of one set, colorized one way."""
    from colorfusion import color, metrics

    rows = [metrics.image_metrics(truth, pred, bins=bins) for truth, pred in zip(truths, predictions)]
    counts = np.array([metrics.blotch_counts(truth, pred) for truth, pred in zip(truths, predictions)])
    result = {key: float(np.mean([row[key] for row in rows])) for key in ("auc", "rebalanced_auc", "colorfulness")}
    result["blotch"] = float(counts[:, 0].sum() / max(1, counts[:, 1].sum()))
    if faces:
        mask = skin_mask(*truths[0].shape[:2])
        true_ab = np.stack([color.split_lab(color.rgb_to_lab(t))[1][mask] for t in truths])  # (N, pixels, 2)
        pred_ab = np.stack([color.split_lab(color.rgb_to_lab(p))[1][mask] for p in predictions])
        result["skin_ab_error"] = float(np.linalg.norm(pred_ab - true_ab, axis=-1).mean())
        result["skin_a"], result["skin_b"] = (float(v) for v in pred_ab.mean(axis=(0, 1)))
        result["skin_a_true"], result["skin_b_true"] = (float(v) for v in true_ab.mean(axis=(0, 1)))
    return result


def colorize(colorizer, inputs) -> list[np.ndarray]:
    from tqdm import tqdm

    out = []
    for begin in tqdm(range(0, len(inputs), BATCH), desc="colorize", unit="batch", leave=False, file=sys.stderr):
        out += colorizer.colorize_many(inputs[begin:begin + BATCH])
    return out


def evaluate_set(colorizers: dict, truths, seed: int, faces: bool) -> dict:
    """{"true_colorfulness", "grayscale": {clean, old}, model: {clean, old}} for one set of photos."""
    from colorfusion import color, metrics
    from colorfusion.bins import ABBins

    bins = ABBins.fit(iter(truths))
    inputs = {"clean": [color.gray_version(truth) for truth in truths], "old": old_versions(truths, seed)}
    results = {"photos": len(truths),
               "true_colorfulness": float(np.mean([metrics.colorfulness(t) for t in truths])),
               "grayscale": {kind: score(truths, gray, bins, faces) for kind, gray in inputs.items()}}
    for name, colorizer in colorizers.items():
        results[name] = {kind: score(truths, colorize(colorizer, gray), bins, faces) for kind, gray in inputs.items()}
    return results


def gains(results: dict, name: str) -> dict:
    """Gains over grayscale (points of AuC), the share kept on old photos, the colourfulness ratio."""
    gray, model = results["grayscale"], results[name]
    out = {}
    for kind in ("clean", "old"):
        for metric in ("auc", "rebalanced_auc"):
            out[f"{metric}_gain_{kind}"] = 100 * (model[kind][metric] - gray[kind][metric])
        out[f"colorfulness_ratio_{kind}"] = model[kind]["colorfulness"] / results["true_colorfulness"]
    for metric in ("auc", "rebalanced_auc"):
        clean = out[f"{metric}_gain_clean"]
        out[f"{metric}_kept_old"] = out[f"{metric}_gain_old"] / clean if clean > 0 else float("nan")
    return out


def print_table(title: str, results: dict, names, faces: bool) -> None:
    print(f"\n{title}: {results['photos']} photos; real photos' colourfulness {results['true_colorfulness']:.1f}")
    header = (f"{'model':<30}{'photos':>7}{'AuC':>8}{'gain':>7}{'rebal.':>8}{'gain':>7}{'kept':>6}{'colourful':>10}"
              f"{'ratio':>6}{'blotch':>8}")
    if faces:
        header += f"{'skin err':>9}{'a*':>6}{'b*':>6}{'true a*':>8}{'true b*':>8}"
    print(header)
    for name in ["grayscale", *names]:
        g = gains(results, name) if name != "grayscale" else {}
        for kind in ("clean", "old"):
            row = results[name][kind]
            auc_gain = f"{g['auc_gain_' + kind]:+7.2f}" if g else ""
            rebalanced_gain = f"{g['rebalanced_auc_gain_' + kind]:+7.2f}" if g else ""
            kept = f"{g['rebalanced_auc_kept_old']:.2f}" if g and kind == "old" else ""
            line = (f"{name[-30:]:<30}{kind:>7}{row['auc']:>8.4f}{auc_gain:>7}{row['rebalanced_auc']:>8.4f}"
                    f"{rebalanced_gain:>7}{kept:>6}{row['colorfulness']:>10.1f}"
                    f"{row['colorfulness'] / results['true_colorfulness']:>6.2f}{100 * row['blotch']:>7.2f}%")
            if faces:
                line += (f"{row['skin_ab_error']:>9.2f}{row['skin_a']:>6.1f}{row['skin_b']:>6.1f}"
                         f"{row['skin_a_true']:>8.1f}{row['skin_b_true']:>8.1f}")
            print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", metavar="MODEL",
                        help="run folder, .keras, .npz or pretrained (default); repeat to compare side by side")
    parser.add_argument("--data", default=str(SHARED_DATA), help="root the split file's paths are relative to")
    parser.add_argument("--split-file", default=str(SHARED_DATA / "SPLIT_ALL.tsv"),
                        help="path<TAB>split list whose val photos are scored (default SPLIT_ALL.tsv: 144 photos)")
    parser.add_argument("--faces", default=str(SHARED_DATA / "faces" / "SPLIT.tsv"),
                        help="the faces' split file (its val photos); 'none' skips the faces")
    parser.add_argument("--size", type=int, default=256, help="the side photos are compared at (default 256)")
    parser.add_argument("--limit", type=int, help="only the first N photos of each set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the damage (default 0)")
    args = parser.parse_args(argv)

    from colorfusion.startup import import_backend_quietly

    import_backend_quietly()
    from colorfusion import augment, datasets, io
    from colorfusion.inference.colorizer import as_colorizer

    names = args.model or ["pretrained"]
    colorizers = {name: as_colorizer(name, size=args.size) for name in names}
    sets = {"scenes": (args.split_file, args.data, False)}
    if args.faces.lower() != "none":
        sets["faces"] = (args.faces, None, True)
    report = {"size": args.size, "seed": args.seed, "models": names, "sets": {}}
    for label, (split_file, root, faces) in sets.items():
        files = datasets.read_split_file(split_file, root)[1][: args.limit]
        truths = []
        for path in files:
            try:
                truths.append(augment.load_square(path, args.size))
            except io.ImageReadError as e:
                print(f"error: {e}", file=sys.stderr)
        results = evaluate_set(colorizers, truths, args.seed, faces)
        results["gains"] = {name: gains(results, name) for name in names}
        report["sets"][label] = results
        print_table(f"{label} at {args.size} x {args.size}, clean and made old (damage.OLD_PRINT, seed {args.seed})",
                    results, names, faces)
    print("gain: points of AuC over grayscale from the same input; kept: the old photos' rebalanced gain as a share "
          "of the clean gain; ratio: colourfulness over the real photos'; blotch: gray truth painted vivid")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
