"""Find and load a trained colorizer: a `.keras` file or a run folder.

A run folder (written by `train.train`) holds `best.keras`, `last.keras` and
`config.json`. For inference we take `best.keras`, and, when the model has a
semantic input, rebuild the `Embedder` the run was trained with from its
`config.json` (backbone, weights, output and seed: with `weights=None` the
seed is what makes the random backbone the same one).

Every failure raises `ModelLoadError` with a one-line message naming the file
and the reason, so the command line can print it as it is.

Example:

    model = load_model("runs/exp1")            # runs/exp1/best.keras
    embedder = embedder_for_run(run_config_for("runs/exp1"))
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

RUN_MODEL_FILES = ("best.keras", "last.keras", "model.keras")  # in order of preference
_MAX_REASON = 200  # Keras errors can be pages long; the user needs the first line


class ModelLoadError(Exception):
    """A model file or run folder could not be used; the message says which and why."""


def first_line(error: Exception) -> str:
    """`"Type: first line of the message"`, at most about 200 characters: a reason fit for a one-line error."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    line = line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def resolve_model_path(path) -> Path:
    """The `.keras` file itself, or the best checkpoint of a run folder.

    Raises:
        ModelLoadError: missing path, a folder without a model, or a file
            that is not a `.keras` file.
    """
    path = Path(path)
    if path.is_dir():
        for name in RUN_MODEL_FILES:
            if (path / name).is_file():
                return path / name
        raise ModelLoadError(f"{path}: no model in this folder (looked for {', '.join(RUN_MODEL_FILES)})")
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file or run folder")
    if path.suffix.lower() != ".keras":
        raise ModelLoadError(f"{path}: not a .keras model file (got {path.suffix or 'no suffix'!r}; "
                             f"colorfusion saves models as .keras)")
    return path


def load_model(path):
    """Load a colorizer (either head, raw or from `inference_model`).

    Args:
        path: a `.keras` file or a run folder.

    Raises:
        ModelLoadError: missing, not a `.keras` file, not loadable, or not a
            colorfusion model (no "L" input of a fixed square size).
    """
    import keras

    from colorfusion import model as model_lib  # registers the custom layers and losses

    path = resolve_model_path(path)
    if not zipfile.is_zipfile(path):  # Keras would say "file not found" for a damaged or foreign file
        raise ModelLoadError(f"{path}: not a loadable Keras model (not a zip archive, which a .keras file is; "
                             f"damaged, truncated or another format renamed)")
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a bad file
        raise ModelLoadError(f"{path}: not a loadable Keras model ({first_line(e)})") from None
    try:
        info = model_lib.model_info(loaded)
    except Exception as e:  # noqa: BLE001 - a model of any shape may come in
        raise ModelLoadError(f"{path}: not a colorfusion colorizer ({first_line(e)})") from None
    if not isinstance(info["image_size"], int) or loaded.inputs[0].shape[2] != info["image_size"]:
        raise ModelLoadError(f"{path}: not a colorfusion colorizer (its 'L' input is not a fixed square: "
                             f"{tuple(loaded.inputs[0].shape)})")
    return loaded


def run_config_for(path) -> dict:
    """The `config.json` of the run folder holding `path`; {} for a bare model file."""
    path = Path(path)
    config_file = (path if path.is_dir() else path.parent) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{config_file}: damaged run configuration ({first_line(e)})") from None
    return config if isinstance(config, dict) else {}


def embedder_for_run(config: dict, weights=None):
    """The `Embedder` a run was trained with (backbone, weights, output, seed).

    Args:
        config: the run's `config.json`; {} for a bare model file, which
            gives the training default (InceptionResNetV2, ImageNet weights).
        weights: None to use the run's weights; otherwise "imagenet", "none"
            (random, reproducible from the run's seed) or a weights file.
    """
    from colorfusion.embeddings import Embedder

    chosen = config.get("weights", "imagenet") if weights is None else weights
    return Embedder(backbone=config.get("backbone", "inception_resnet_v2"),
                    weights=None if chosen in (None, "none") else chosen,
                    output=config.get("embedding_output", "predictions"), seed=int(config.get("seed", 0)))


def load_embedder(path, model_info: dict, weights=None):
    """Build (not just describe) the embedder for a model loaded from `path`.

    The backbone is built here, so a missing weights file or a failed
    download is reported now, once, rather than on every batch later.

    Raises:
        ModelLoadError: the embedder cannot be built, or its vectors do not
            have the length the model expects.
    """
    source = Path(path)
    try:
        embedder = embedder_for_run(run_config_for(source), weights=weights)
        embedder.model  # noqa: B018 - builds the backbone now
        dim = embedder.dim
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - bad weights file, no network, unknown backbone, ...
        raise ModelLoadError(f"{source}: cannot build the semantic branch's backbone ({first_line(e)}); "
                             f"--weights chooses other backbone weights") from None
    if dim != model_info["embedding_dim"]:
        raise ModelLoadError(f"{source}: the model expects {model_info['embedding_dim']}-d embeddings but "
                             f"{embedder!r} gives {dim}-d ones")
    return embedder
