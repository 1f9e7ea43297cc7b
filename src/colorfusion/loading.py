"""Load a trained colorizer from a `.keras` file, a run folder or the shipped model, with its semantic branch.

Every failure is a `ModelLoadError` with one line naming the file and the
reason: a missing path, a folder without a model, a damaged or foreign file, a
model that is not a colorizer, a backbone that cannot be built.

    model = load_model("runs/exp1")          # the run's best checkpoint
    model = load_model("pretrained")         # the model that ships (presets)
    embedder = load_embedder("runs/exp1", model_info(model))   # when the model has a semantic input
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

from colorfusion import model as model_lib  # also registers the custom layers a .keras file names
from colorfusion.embeddings import Embedder
from colorfusion.errors import ModelLoadError, first_line
from colorfusion.presets import PRETRAINED, PRETRAINED_FILE, is_pretrained, load_pretrained
from colorfusion.runs import MODEL_FILES, RunFolder


def resolve_model_path(path) -> Path:
    """The `.keras` file itself, or the best checkpoint of a run folder.

    Raises:
        ModelLoadError: missing path, a folder without a model, or a file
            that is not a `.keras` file.
    """
    path = Path(path)
    if path.is_dir():
        found = RunFolder(path).model_file()
        if found is not None:
            return found
        raise ModelLoadError(f"{path}: no model in this folder (looked for {', '.join(MODEL_FILES)})")
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file or run folder")
    if path.suffix.lower() != ".keras":
        raise ModelLoadError(f"{path}: not a .keras model file (got {path.suffix or 'no suffix'!r}; "
                             f"colorfusion saves models as .keras)")
    return path


def load_model(path):
    """Load a colorizer (either head, raw or from `inference_model`).

    Args:
        path: a `.keras` file or a run folder; "pretrained" for the model
            that ships in the package (`load_pretrained`), or a `.npz`
            file in its format.

    Raises:
        ModelLoadError: missing, not a `.keras` file, not loadable, or not a
            colorfusion model (no "L" input, either a fixed square or of any size).
    """
    if is_pretrained(path):  # the shipped model, or a file in its format
        return load_pretrained(None if str(path).lower() == PRETRAINED else path)
    path = resolve_model_path(path)
    if not zipfile.is_zipfile(path):  # Keras would say "file not found" for a damaged or foreign file
        raise ModelLoadError(f"{path}: not a loadable Keras model (not a zip archive, which a .keras file is; "
                             f"damaged, truncated or another format renamed)")
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a bad file
        raise ModelLoadError(f"{path}: not a loadable Keras model ({first_line(e)})") from None
    try:
        model_lib.model_info(loaded)
    except Exception as e:  # noqa: BLE001 - a model of any shape may come in
        raise ModelLoadError(f"{path}: not a colorfusion colorizer ({first_line(e)})") from None
    height, width = loaded.inputs[0].shape[1:3]
    if height != width:  # a fixed square, or any size (None x None)
        raise ModelLoadError(f"{path}: not a colorfusion colorizer (its 'L' input is neither a fixed square nor "
                             f"of any size: {tuple(loaded.inputs[0].shape)})")
    return loaded


def model_file(path) -> Path:
    """The file `load_model(path)` reads: the shipped model's, a `.npz`, a `.keras` file, a run folder's checkpoint.

    What a written file's mark hashes (`provenance.model_sha256`).
    """
    if is_pretrained(path):
        return PRETRAINED_FILE if str(path).lower() == PRETRAINED else Path(path)
    return resolve_model_path(path)


def run_config_for(path) -> dict:
    """The `config.json` of the run folder holding `path`; {} for a bare model file."""
    if is_pretrained(path):
        return {}
    try:
        return RunFolder.holding(path).read_config() or {}
    except ValueError as e:  # a damaged config.json, named in the message
        raise ModelLoadError(str(e)) from None


def load_embedder(path, model_info, weights=None):
    """Build (not just describe) the embedder for a model loaded from `path`, whose `model.ModelInfo` is `model_info`.

    The backbone is built here, so a missing weights file or a failed
    download is reported now, once, rather than on every batch later.

    Raises:
        ModelLoadError: the embedder cannot be built, or its vectors do not
            have the length the model expects.
    """
    source = Path(path)
    try:
        embedder = Embedder.for_run(run_config_for(source), weights=weights)
        embedder.model  # noqa: B018 - builds the backbone now
        dim = embedder.dim
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - bad weights file, no network, unknown backbone, ...
        raise ModelLoadError(f"{source}: cannot build the semantic branch's backbone ({first_line(e)}); "
                             f"--weights chooses other backbone weights") from None
    if dim != model_info.embedding_dim:
        raise ModelLoadError(f"{source}: the model expects {model_info.embedding_dim}-d embeddings but "
                             f"{embedder!r} gives {dim}-d ones")
    return embedder
