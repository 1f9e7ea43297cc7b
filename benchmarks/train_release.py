"""Train the model that ships inside the package, and pack it: one command, seeded, resumable.

    python benchmarks/train_release.py            # ../shared/data, SPLIT_ALL.tsv, runs/release

Trains a release recipe of `colorfusion.presets.RELEASE_RECIPES` (`release`,
the automatic colours, chosen by `bench_quality.py`'s recipe table; or
`release_hints`) on the training photos of `SPLIT_ALL.tsv`, a 5 % slice of them
picking the best checkpoint, never the 144 validation photos. Run it again
after an interruption and it goes on from the last finished epoch
(`resume="auto"`). Then it

1. packs `best.keras` into `src/colorfusion/models/colorfusion.npz` (float16
   weights, `presets.save_pretrained`), with what the model card quotes;
2. evaluates the packed model and the float32 checkpoint at 256 x 256 on the
   validation photos beside grayscale and the real photos, and prints a table
   and, as its last line, JSON (also written to `RUN/release_report.json`).

`--evaluate-only` repeats step 2 (and 1 with `--pack`) without training.
The same seed, photos and epochs give the same model on the same machine
and versions (a run that early-stops is as reproducible; `--epochs N`
reproduces one that was stopped by hand after N epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import keras

from colorfusion import datasets, presets
from colorfusion import model as model_lib
from colorfusion.bins import ABBins
from colorfusion.evaluation import HINT_COUNTS, evaluate, evaluate_hints, gains_over_grayscale
from colorfusion.inference.colorizer import Colorizer
from colorfusion.loading import load_model, resolve_model_path
from colorfusion.runs import RunFolder
from colorfusion.training import ARCHITECTURE_KEYS, train

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_WEIGHTS = REPO.parent / "shared" / "weights"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_DATA), help="root the split file's paths are relative to")
    parser.add_argument("--split-file", default=str(SHARED_DATA / "SPLIT_ALL.tsv"))
    parser.add_argument("--out", default="runs/release", help="the run folder (default runs/release)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    parser.add_argument("--time-limit", type=float, metavar="MINUTES",
                        help="stop after the epoch that passes this many minutes (the model card then records "
                             "the epochs done: --epochs N reproduces the model)")
    parser.add_argument("--model-file", default=str(REPO / "src" / "colorfusion" / "models" / "colorfusion.npz"),
                        help="where the packed model goes (default: the package's)")
    parser.add_argument("--weights", default=str(SHARED_WEIGHTS),
                        help=f"the folder holding {presets.RELEASE_ENCODER_WEIGHTS}; elsewhere the ImageNet "
                             f"original is downloaded")
    parser.add_argument("--variant", default="release", choices=tuple(presets.RELEASE_RECIPES),
                        help="the release recipe to train (default release, the automatic model)")
    parser.add_argument("--init", metavar="MODEL",
                        help="the model a recipe with init starts from, instead of the shipped one: release "
                             "0.2.0's hint recipe started from release 0.1.0's model (`git show aa51a22:src/"
                             "colorfusion/models/colorfusion.npz > release_0.1.0.npz`), release 0.3.0's affinity "
                             "recipe from release 0.2.0's (`git show 2b08289:...`, the same path)")
    parser.add_argument("--extra-train", action="append", metavar="SPLIT_FILE",
                        help="a split file whose training photos join the training (release 0.4.0: "
                             "../shared/data/faces/SPLIT.tsv); its validation photos are never used here")
    parser.add_argument("--rare-colour-shift", type=float, default=0.0, metavar="STRENGTH",
                        help="pack with the head tilted toward the rare colours, p * w ** STRENGTH "
                             "(model.shift_toward_rare_colours; release 0.4.0: 0.3); default 0, none. The file "
                             "records it: --evaluate-only tilts the float32 checkpoint as the file says")
    parser.add_argument("--evaluate-only", action="store_true", help="no training: evaluate the packed model")
    parser.add_argument("--pack", action="store_true", help="with --evaluate-only: pack best.keras first")
    args = parser.parse_args(argv)
    # What trained it, for the model card: the same command without the flags that only evaluate or pack.
    given = sys.argv[1:] if argv is None else argv
    args.command = " ".join(["python benchmarks/train_release.py",
                             *(a for a in given if a not in ("--evaluate-only", "--pack"))])

    settings = presets.release_settings(args.variant, args.weights)
    settings.pop("time_limit_minutes", None)  # epochs and early stopping end it: reproducible
    if args.epochs:
        settings["epochs"] = args.epochs
    if args.time_limit:
        settings["time_limit_minutes"] = args.time_limit
    if args.init:
        settings["init"] = args.init
    if settings.get("hints") and not settings.get("init") and not args.evaluate_only:
        parser.error(f"--variant {args.variant} trains hint layers on a trained model: give it with --init MODEL")
    out = Path(args.out)
    train_files, val_files = datasets.read_split_file(args.split_file, args.data)
    for extra in args.extra_train or []:
        train_files = train_files + datasets.read_split_file(extra)[0]
    monitor, train_files = datasets.split_files(train_files, val_fraction=0.05, seed=1)[::-1]
    print(f"release recipe: {json.dumps(settings)}\n{len(train_files)} training photos, {len(monitor)} picking "
          f"the checkpoint, {len(val_files)} validation photos evaluated", flush=True)

    timing = out / "training_time.json"
    if not args.evaluate_only:
        start = time.monotonic()
        before = json.loads(timing.read_text())["minutes"] if timing.exists() else 0.0
        result = train(train_files=train_files, val_files=monitor, out=out, resume="auto", show=False,
                       verbose=2, **settings)
        minutes = before + (time.monotonic() - start) / 60
        out.mkdir(parents=True, exist_ok=True)
        timing.write_text(json.dumps({"minutes": round(minutes, 1), "epochs": result.epochs_done}))
    if not args.evaluate_only or args.pack:
        pack(out, Path(args.model_file), settings, train_files, monitor, args)

    bins = ABBins.fit_files(val_files, max_side=256, progress=False)
    rows = {}
    models = {"packed (float16)": lambda: presets.load_pretrained(args.model_file)}
    if (out / "best.keras").exists():  # the checkpoint it was packed from, to show float16 changes nothing
        # ... tilted as the packed file records, so an --evaluate-only without the flag compares like with like
        shift = presets.read_pretrained_config(args.model_file).get("training", {}).get("rare_colour_shift", 0.0)
        models["best.keras (float32)"] = lambda: checkpoint_to_pack(out, shift)
    else:
        print(f"{out}: no run folder with best.keras here: the packed model alone is evaluated", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    for label, load in models.items():
        colorizer = Colorizer(load(), size=256)
        report = evaluate(colorizer, val_files, out / f"report_{label.split()[0]}", size=256, bins=bins,
                          progress=False)
        rows[label] = gains_over_grayscale(report.summary)
    for label, row in rows.items():
        print(f"{label:<22} rebalanced AuC {row['rebalanced_auc']:.4f} ({row['rebalanced_auc_gain']:+.2f} points "
              f"over gray {row['grayscale_rebalanced_auc']:.4f}), colourfulness {row['colorfulness']:.1f} "
              f"({row['colorfulness_ratio']:.2f} of the real {row['true_colorfulness']:.1f}), PSNR {row['psnr']:.2f} "
              f"({row['psnr_gain']:+.2f} dB)")
    result = {"model_file": str(args.model_file), "sha256": presets.file_sha256(args.model_file),
              "bytes": os.path.getsize(args.model_file), "rows": rows}
    if settings.get("hints"):
        # The packed model with 0 to 20 simulated points (the same as bench_hints.py's).
        hinted = evaluate_hints(presets.load_pretrained(args.model_file), val_files, HINT_COUNTS, size=256,
                                progress=False)
        result["hints"] = hinted["hints"]
        for count, row in hinted["hints"].items():
            print(f"{count:>3} points: rebalanced AuC {row['rebalanced_auc']:.4f}, PSNR {row['psnr']:.2f} dB, "
                  f"gain per photo {row['psnr_gain_mean']:+.2f} dB (5th percentile {row['psnr_gain_p5']:+.2f}), "
                  f"colourfulness {row['colorfulness']:.1f}")
    (out / "release_report.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


def checkpoint_to_pack(out: Path, rare_colour_shift: float):
    """The run's best checkpoint as it is packed: float32, its head tilted toward rare colours if asked."""
    model = load_model(out)
    if rare_colour_shift:
        model_lib.shift_toward_rare_colours(model, rare_colour_shift)
    return model


def pack(out: Path, model_file: Path, settings: dict, train_files, monitor, args) -> None:
    """best.keras -> the package's float16 model file, with the facts the model card quotes."""
    state = json.loads((out / "state.json").read_text())
    init = settings.get("init")
    # The file it started from: the shipped one, a model file, or a run folder's best checkpoint (0.4.0's hints).
    init_file = (None if not init else presets.PRETRAINED_FILE if str(init).lower() == presets.PRETRAINED
                 else Path(init) if presets.is_pretrained(init) else resolve_model_path(init))
    timing = json.loads((out / "training_time.json").read_text()) if (out / "training_time.json").exists() else {}
    # How build_colorizer rebuilds it (any size: a pretrained encoder), and what a run starting from it takes:
    # from the run's own configuration, which holds what an init model gave it.
    run = RunFolder(out).read_config()
    build = dict(image_size=run["image_size"], head=run["head"], width=run["width"], encoder=run["encoder"],
                 embedding_dim=None, global_features=run["embedding"] == "encoder", batchnorm=run["batchnorm"],
                 hints=run["hints"], hint_blend=run.get("hint_blend", "lightness"))
    architecture = {key: run.get(key) for key in ARCHITECTURE_KEYS}
    training = {
        "command": args.command,
        "recipe": {k: v for k, v in settings.items() if k not in ("encoder_weights", "time_limit_minutes")},
        "encoder_weights": Path(str(settings.get("encoder_weights"))).name,
        "photos": {"split_file": Path(args.split_file).name, "trained_on": len(train_files),
                   "picking_checkpoint": len(monitor)},
        "epochs_done": state.get("epoch"), "best_val_loss": state.get("best_val_loss"),
        # A run from a trained model (the hint recipe) names the file it started from.
        **({"started_from": {"file": init_file.name, "sha256": presets.file_sha256(init_file)}} if init_file else {}),
        "minutes": timing.get("minutes"),
        **({"rare_colour_shift": args.rare_colour_shift} if args.rare_colour_shift else {}),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
        "backend": f"{keras.backend.backend()}, Keras {keras.__version__}",
    }
    model = checkpoint_to_pack(out, args.rare_colour_shift)
    model_file.parent.mkdir(parents=True, exist_ok=True)
    presets.save_pretrained(model, model_file, build=build, architecture=architecture, training=training)
    print(f"packed {out / 'best.keras'} -> {model_file} ({os.path.getsize(model_file) / 1e6:.2f} MB)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
