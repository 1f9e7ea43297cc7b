"""Command line: `colorfusion train | colorize | evaluate | fit-bins`.

Exit codes: 0 success; 1 the work ran but something failed (a file, a
diverged loss) or could not start (bad data folder, bad model file);
2 bad usage (argparse); 130 interrupted. A failure is one line on stderr,
never a traceback (`COLORFUSION_DEBUG=1` shows it).

`colorize` and `evaluate` use the model that ships in the package unless
`--model` names another. `colorize --hint X,Y,#RRGGBB` (repeated) or
`--hints hints.json` (per photo) give a hint model colour points; a bad
hint fails its photo with one line, and the rest are colorized.

Each command prints only its own lines: the backend's start-up noise
(absl / oneDNN / "no CUDA" lines, which TensorFlow 2.21 prints whatever
TF_CPP_MIN_LOG_LEVEL says) is dropped by `import_backend_quietly`, and a GPU
that is present but unusable is one warning line.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

# === A quiet backend start ===

# TensorFlow's C++ start-up lines. From TF 2.21 they come whatever TF_CPP_MIN_LOG_LEVEL
# says (absl logs them before TensorFlow reads it), so the CLI filters them itself.
_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"TF-TRT Warning: Could not find TensorRT",
    r"oneDNN supports DT_INT32 only on platforms with AVX-512",
]))
# Expected where there is no GPU; where there is one, they say why it cannot be used.
_GPU_PROBLEM = re.compile("|".join([
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"Cannot dlopen some GPU libraries",
]))
_GLOG_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ")


def nvidia_gpu_present() -> bool:
    """An NVIDIA device node or nvidia-smi: a GPU that the backend should be able to use.

    Not when CUDA_VISIBLE_DEVICES hides every GPU ("" or "-1"): then no GPU is meant to be used.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia*")) or shutil.which("nvidia-smi") is not None


def filter_startup_lines(lines, gpu_present: bool) -> list[str]:
    """What a user should see of the backend's start-up output.

    Known start-up noise is dropped; so are the "no CUDA" lines when there is
    no GPU. With a GPU present, the first such line becomes one warning line
    (the rest are its echoes). Anything else is kept as it is.
    """
    kept, gpu_problem = [], None
    for line in lines:
        if not line.strip() or _NOISE.search(line):
            continue
        if _GPU_PROBLEM.search(line):
            gpu_problem = gpu_problem or _GLOG_PREFIX.sub("", line).strip()
            continue
        kept.append(line)
    if gpu_present and gpu_problem:
        kept.append(f"warning: a GPU is present but the backend cannot use it, running on the CPU: {gpu_problem}")
    return kept


def import_backend_quietly(training: bool = False) -> None:
    """Import Keras and start its backend's devices without the backend's start-up noise.

    The noise is written by C++ straight to file descriptor 2, so fd 2 (not
    just `sys.stderr`) goes to a temporary file meanwhile; what
    `filter_startup_lines` keeps is written back to stderr afterwards, also
    when the import fails. `training=True` also takes one step on a toy model
    meanwhile (`_first_training_step`), for the line TensorFlow logs there.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to keep quiet
        import keras  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.config.list_physical_devices("GPU")  # CUDA start-up (cuInit) logs here, not at import
                if training:
                    _first_training_step()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", errors="replace").splitlines()
            for line in filter_startup_lines(lines, nvidia_gpu_present()):
                print(line, file=sys.stderr)


def _first_training_step() -> None:
    """One training step of a toy Conv2D + UpSampling2D model, then a clean Keras session.

    On a CPU without AVX-512, TensorFlow's oneDNN graph pass logs "E0000 ...
    oneDNN supports DT_INT32 only on platforms with AVX-512" once per process,
    at the first training step with an upsampling gradient: harmless (it falls
    back to Eigen) but it reads as an error in the middle of training. Taking
    that step here, while fd 2 is captured, spends it; about a second.
    """
    import keras
    import numpy as np

    toy = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 3, padding="same"),
                            keras.layers.UpSampling2D()])
    toy.compile(optimizer="sgd", loss="mse")
    toy.fit(np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 8, 8, 1), np.float32), epochs=1, verbose=0)
    keras.utils.clear_session()


def _weights(value: str):
    """'imagenet', 'none' (random init) or a path to a local weights file."""
    from colorfusion.backbones import resolve_weights

    try:
        return resolve_weights(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'imagenet', 'none' or an existing weights file, got {value!r}") from None


def _weights_override(value: str) -> str:
    """Like `_weights`, but keeps 'none' as a string: None means 'as the run recorded'."""
    chosen = _weights(value)
    return "none" if chosen is None else chosen


def _embedding(value: str):
    if value not in ("cache", "exact", "encoder", "none"):
        raise argparse.ArgumentTypeError(f"expected cache, exact, encoder or none, got {value!r}")
    return None if value == "none" else value


def _encoder(value: str) -> str:
    from colorfusion.backbones import ENCODER_BACKBONES, canonical_name

    if value == "scratch":
        return value
    try:
        name = canonical_name(value)
    except ValueError:
        name = None
    if name not in ENCODER_BACKBONES:
        raise argparse.ArgumentTypeError(f"expected scratch or one of {', '.join(ENCODER_BACKBONES)}, got {value!r}")
    return name


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def _add_model_options(parser) -> None:
    """--model and the inference options shared by colorize and evaluate."""
    parser.add_argument("--model", default="pretrained", metavar="PATH",
                        help="a run folder (its best.keras), a .keras model file, or 'pretrained': the model that "
                             "ships in the package (default)")
    parser.add_argument("--inference-size", type=_positive_int, default=None, metavar="PX",
                        help="short side the photo is resized to for the network, keeping its aspect ratio "
                             "(models with a pretrained encoder; default 256); a model with a fixed square "
                             "input uses its own size")
    parser.add_argument("--decode", choices=("annealed_mean", "expectation", "mode"), default="annealed_mean",
                        help="how a classification model turns bin probabilities into colour: annealed_mean "
                             "(vivid yet consistent), expectation (smooth, desaturated), mode (vivid, patchy); "
                             "ignored for regression models (default annealed_mean)")
    parser.add_argument("--temperature", type=_positive_float, metavar="T",
                        help="annealed-mean temperature: lower is more vivid, 1 = expectation "
                             "(default 0.7, colorfusion.model.TEMPERATURE)")
    parser.add_argument("--weights", type=_weights_override, default=None,
                        help="backbone weights of the semantic branch, overriding the run folder's: imagenet, "
                             "none (random, from the run's seed) or a local .h5 file (default: as trained)")


def build_parser() -> argparse.ArgumentParser:
    from colorfusion import __version__

    parser = argparse.ArgumentParser(prog="colorfusion", description="Automatic colorization of grayscale photos.")
    parser.add_argument("--version", action="version", version=f"colorfusion {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Options left out stay out of the namespace, so --resume only checks what the user asked for.
    train = commands.add_parser("train", help="train a colorizer on a folder of colour photos",
                                argument_default=argparse.SUPPRESS,
                                description="Train a colorizer on a folder of colour photos; writes a run folder "
                                            "(config.json, best.keras, last.keras, history.csv, previews/, curves.png).")
    train.add_argument("--data", required=True, help="folder of colour photos (searched recursively)")
    train.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    # Defaults shown in --help are those of training.TrainConfig.
    train.add_argument("--head", choices=("regression", "classification"),
                       help="regression (tanh x 128 ab) or classification (softmax over ab bins) "
                            "(default classification)")
    train.add_argument("--image-size", type=_positive_int, help="training size in pixels (default 256)")
    train.add_argument("--epochs", type=_positive_int,
                       help="at most this many epochs; early stopping usually ends sooner (default 40)")
    train.add_argument("--batch-size", type=_positive_int, help="batch size (default 16)")
    train.add_argument("--learning-rate", type=float, help="initial Adam learning rate (default 0.001)")
    train.add_argument("--width", type=float, help="scale of the network's own filter counts (default 0.5)")
    train.add_argument("--encoder", type=_encoder,
                       help="scratch, or a pretrained keras.applications encoder (mobilenet, mobilenet_v2, vgg16, "
                            "resnet50, efficientnet_b0, ...) whose features feed a U-Net decoder (default mobilenet_v2)")
    train.add_argument("--encoder-weights", type=_weights,
                       help="weights of a pretrained encoder: imagenet (downloads; offline, mobilenet_v2 takes "
                            "the ImageNet weights inside the shipped model), none or a local .h5 file "
                            "(default imagenet)")
    train.add_argument("--freeze-epochs", type=int,
                       help="at most this many epochs with the pretrained encoder frozen; a stalled val_loss "
                            "unfreezes it sooner (default 30)")
    train.add_argument("--finetune-learning-rate", type=_positive_float,
                       help="learning rate once the encoder is unfrozen (default: learning rate / 10)")
    train.add_argument("--early-stopping-patience", type=_positive_int,
                       help="stop after this many epochs without a better val_loss (default 10)")
    train.add_argument("--time-limit", type=_positive_float, dest="time_limit_minutes", metavar="MINUTES",
                       help="stop before an epoch would end after this many minutes")
    train.add_argument("--rebalance-lambda", type=float,
                       help="classification: mix of the uniform distribution into the colour prior; smaller "
                            "gives rare, vivid colours more weight (default 0.75; Zhang et al. use 0.5)")
    train.add_argument("--backbone",
                       help="keras.applications backbone of the semantic branch (default inception_resnet_v2)")
    train.add_argument("--weights", type=_weights,
                       help="semantic backbone weights: imagenet (downloads), none (random) or a local .h5 file "
                            "(default imagenet)")
    train.add_argument("--embedding", type=_embedding,
                       help="semantic input: cache (embed each photo once with --backbone), exact (every batch), "
                            "encoder (pool the model's own encoder features), none (default encoder)")
    train.add_argument("--val-fraction", type=float, help="validation share of the photos (default 0.1)")
    train.add_argument("--split-file", help="path<TAB>split list (train/val) instead of a random split")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--preview-every", type=_positive_int, help="preview every N epochs (default 1)")
    train.add_argument("--workers", type=_positive_int, help="data loading threads (default 2: one prepares the next batch while the model steps)")
    train.add_argument("--init", metavar="MODEL",
                       help="start from a trained model instead of a fresh decoder: 'pretrained' (the model that "
                            "ships in the package), a run folder or a .keras file; the run takes its architecture "
                            "and colour bins")
    train.add_argument("--hints", action="store_true",
                       help="a model that takes colour hints, trained with points simulated from each photo "
                            "(from an --init model that takes none, it starts as that model)")
    train.add_argument("--hint-free-fraction", type=float,
                       help="with --hints: the share of examples trained with no hints at all (default 0.3)")
    train.add_argument("--train-only-hints", action="store_true",
                       help="with --hints: train the hint layers alone, so that with no hints the model stays "
                            "exactly the --init model")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")

    colorize = commands.add_parser(
        "colorize", help="colorize photos or folders at full resolution",
        description="Colorize photos at their full resolution: the model predicts the colour (ab) at its input size, "
                    "which is resized to the photo's size and joined with the photo's own lightness. Folders are "
                    "searched recursively and their tree is mirrored in the output folder; a file that cannot be "
                    "read gets one error line and the rest go on (exit code 1 if any failed).")
    colorize.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    colorize.add_argument("-o", "--output", required=True, metavar="OUT",
                          help="output folder (created when missing); must not be where an input would be replaced")
    _add_model_options(colorize)
    colorize.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                          help="photos per model call; memory grows with it (default 8)")
    colorize.add_argument("--overwrite", action="store_true", help="replace outputs that already exist (default: skip)")
    colorize.add_argument("--quiet", action="store_true", help="no progress bar")
    colorize.add_argument("--hint", action="append", default=None, metavar="X,Y,#RRGGBB",
                          help="a colour hint for a model that takes hints (the shipped one does): this point of "
                               "the photo (pixels from its top left corner) has this colour; repeat for more "
                               "points. Given with several photos, it applies to each")
    colorize.add_argument("--hints", metavar="HINTS.json",
                          help='per-photo hints: {"photo.jpg": [[320, 140, "#c0392b"], ...], ...}, a photo named '
                               "by its path as given, inside its input folder, or its file name")

    evaluate = commands.add_parser(
        "evaluate", help="measure a model against grayscale and ground truth",
        description="Per-image AuC, rebalanced AuC, PSNR, SSIM and colorfulness of a model and of two baselines "
                    "(grayscale: ab = 0; ground truth: the photo itself) on a folder of colour photos compared at "
                    "--size x --size. Writes per_image.csv, summary.json and worst_best.png, prints the means.")
    evaluate.add_argument("--data", required=True, help="folder of colour photos (searched recursively)")
    evaluate.add_argument("--out", required=True, metavar="REPORT_DIR",
                          help="report folder: per_image.csv, summary.json, worst_best.png")
    _add_model_options(evaluate)
    evaluate.add_argument("--size", type=_positive_int, default=256, metavar="SIZE",
                          help="photos are compared as their centred square at SIZE x SIZE (default 256)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="photos per model call (default 8)")
    evaluate.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate only the first N photos (sorted by path)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")

    fit_bins = commands.add_parser("fit-bins", help="fit the quantized ab colour bins on a folder of photos")
    fit_bins.add_argument("--data", required=True, help="folder of colour photos")
    fit_bins.add_argument("--out", required=True, help="bins file to write (.json)")
    fit_bins.add_argument("--num-bins", type=_positive_int, default=200, help="number of bins (default 200)")
    fit_bins.add_argument("--rebalance-lambda", type=float, default=None,
                          help="mix of the uniform distribution into the colour prior of the loss weights "
                               "(default 0.75, as train)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "colorize": cmd_colorize, "evaluate": cmd_evaluate, "fit-bins": cmd_fit_bins}
    try:
        return handler[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a command fails in one line, never with a traceback
        if os.environ.get("COLORFUSION_DEBUG"):
            raise
        from colorfusion.colorize import first_line

        return _error(f"{args.command} failed: {first_line(e)} (COLORFUSION_DEBUG=1 shows the traceback)")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_train(args) -> int:
    import_backend_quietly(training=True)
    from colorfusion.training import TrainingError, train

    options = ("head", "image_size", "epochs", "batch_size", "learning_rate", "width", "encoder", "encoder_weights",
               "freeze_epochs", "finetune_learning_rate", "early_stopping_patience", "time_limit_minutes",
               "rebalance_lambda", "backbone", "weights", "embedding", "val_fraction", "seed", "preview_every",
               "workers", "init", "hints", "hint_free_fraction", "train_only_hints")
    settings = {name: getattr(args, name) for name in options if hasattr(args, name)}
    try:
        result = train(args.data, args.out, split_file=getattr(args, "split_file", None),
                       resume=getattr(args, "resume", False), show=False, **settings)
    except (TrainingError, ValueError) as e:
        return _error(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if not result.epochs_done:
        print(f"stopped: no epoch finished, no model saved in {Path(args.out)}", file=sys.stderr)
        return 1
    history = result.history
    best = min(history.get("val_loss", [float("nan")]))
    print(f"done: {result.epochs_done} epochs, best val_loss {best:.4f}, run folder {Path(args.out)}"
          f" (best.keras, previews/, curves.png)")
    return 1 if result.stopped_reason else 0


def _load_colorizer(args):
    from colorfusion.colorize import Colorizer

    return Colorizer.from_path(args.model, decode=args.decode, temperature=args.temperature, weights=args.weights,
                               size=args.inference_size)


def cmd_colorize(args) -> int:
    from colorfusion.colorize import ModelLoadError, colorize_folder, plan_outputs, read_hints_file

    # Nothing to do is an error, found before the model is loaded (which takes seconds).
    if not plan_outputs(args.inputs, args.output):
        missing = [item for item in args.inputs if not Path(item).exists()]
        for item in missing:
            _error(f"{item}: no such file or folder")
        empty = [item for item in args.inputs if item not in missing]
        if empty:
            _error(f"no images found in {', '.join(empty)}")
        return 1
    if args.hint and args.hints:
        return _error("give hints with --hint or with --hints, not both")
    hints = args.hint
    if args.hints:
        try:
            hints = read_hints_file(args.hints)
        except ValueError as e:
            return _error(str(e))
    import_backend_quietly()
    try:
        colorizer = _load_colorizer(args)
    except (ModelLoadError, ValueError) as e:
        return _error(str(e))
    report = colorize_folder(args.inputs, args.output, colorizer, batch_size=args.batch_size,
                             overwrite=args.overwrite, progress=not args.quiet, hints=hints)
    print(f"done: {len(report.written)} written, {len(report.skipped)} skipped (exist; --overwrite replaces), "
          f"{len(report.failed)} failed -> {args.output}")
    return 0 if report.ok else 1


def cmd_evaluate(args) -> int:
    from colorfusion.colorize import ModelLoadError
    from colorfusion.datasets import find_images
    from colorfusion.evaluation import evaluate, format_table

    if not Path(args.data).is_dir():
        return _error(f"{args.data}: no such folder")
    files = find_images(args.data)[: args.limit]
    if not files:
        return _error(f"{args.data}: no images found")
    import_backend_quietly()
    try:
        colorizer = _load_colorizer(args)
        report = evaluate(colorizer, files, args.out, size=args.size, batch_size=args.batch_size,
                          progress=not args.quiet)
    except (ModelLoadError, ValueError) as e:
        return _error(str(e))
    print(format_table(report.summary))
    print(f"{report.summary['n_images']} photos at {args.size}x{args.size}; {len(report.failed)} unreadable; "
          f"report in {args.out}")
    return 0 if report.ok else 1


def cmd_fit_bins(args) -> int:
    from colorfusion.datasets import find_images

    files = find_images(args.data) if Path(args.data).is_dir() else []
    if not files:
        return _error(f"{args.data}: no images found")
    import_backend_quietly()
    from colorfusion.bins import ABBins

    from colorfusion.training import TrainConfig

    lam = TrainConfig.rebalance_lambda if args.rebalance_lambda is None else args.rebalance_lambda
    if not 0 <= lam <= 1:
        return _error(f"--rebalance-lambda must be between 0 and 1, got {lam}")
    bins = ABBins.fit_files(files, num_bins=args.num_bins, lam=lam)
    bins.save(args.out)
    print(f"done: {len(bins.centers)} bins from {len(files)} photos -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
