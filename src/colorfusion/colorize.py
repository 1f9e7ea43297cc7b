"""Full-resolution colorization of one photo, an array, or whole folders.

The model sees the photo resized as in training (RGB resized, then its L):
keeping its aspect ratio, short side `INFERENCE_SIZE` (each side a multiple
of 32), for a model that takes any size (a pretrained encoder), or squeezed
into the square of a model with a fixed input. The ab it predicts is resized
back to the photo's own size and joined with the photo's full-resolution L. The
output therefore has exactly the input's size and every detail of its
lightness: only the colour comes from the network.

    colorizer = Colorizer.pretrained()                     # the model that ships in the package
    colorizer = Colorizer.from_path("runs/exp1")          # or a run folder, or a .keras file
    rgb = colorizer("old_photo.jpg")                        # uint8 RGB, same size as the photo
    colorize_folder(["scans/"], "colorized/", colorizer)   # mirror a tree, skip bad files
    rgb = colorizer("car.jpg", hints=[(320, 140, "#c0392b")])  # this point is red (a hint model)

Models of either head work: `model.inference_model` decodes a
classification model (annealed mean by default), so nothing here asks which
head a model has.

Four parts, top to bottom:

- loading: `load_model` takes a `.keras` file, a run folder (its
  `best.keras`) or "pretrained" and, for a model with a semantic input,
  `load_embedder` rebuilds the `Embedder` its run used; every failure is a
  `ModelLoadError` with one line naming the file and the reason;
- the shipped model: the trained colorizer that lives in the package as data
  (`load_pretrained`, `save_pretrained`, its file format);
- full-resolution pixels: a 12 MP photo is 144 MB as float32 RGB, and
  converting it in one piece spends more time moving memory than converting.
  OpenCV's float Lab conversion is two to three times faster on strips of
  about 64K pixels that stay in the CPU cache, with buffers allocated once;
  bands of strips run on one thread per core (OpenCV and numpy release the
  GIL). The conversions are `color.rgb_to_lab` / `color.lab_to_rgb` writing
  into the strip buffers, so results are bit for bit those of whole-image
  calls;
- colour hints: a user's points `(x, y, colour)` in the photo's pixels become
  the "hints" input of a hint model (`hint_map`), the colour's ab taken at
  the photo's own lightness there;
- `Colorizer` (one photo or a batch) and `colorize_folder` (trees of files,
  per-file errors, atomic writes).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from colorfusion import color, io

INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}
RUN_MODEL_FILES = ("best.keras", "last.keras", "model.keras")  # in order of preference
STRIP_PIXELS = 1 << 16  # 64K pixels: 768 KB of float32 RGB, within L2 on most CPUs
_TO_UNIT = np.float32(1.0 / 255.0)
_MAX_REASON = 200  # Keras errors can be pages long; the user needs the first line


# === Loading models ===


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
        path: a `.keras` file or a run folder; "pretrained" for the model
            that ships in the package (`load_pretrained`), or a `.npz`
            file in its format.

    Raises:
        ModelLoadError: missing, not a `.keras` file, not loadable, or not a
            colorfusion model (no "L" input, either a fixed square or of any size).
    """
    import keras

    from colorfusion import model as model_lib  # registers the custom layers

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
        info = model_lib.model_info(loaded)
    except Exception as e:  # noqa: BLE001 - a model of any shape may come in
        raise ModelLoadError(f"{path}: not a colorfusion colorizer ({first_line(e)})") from None
    height, width = loaded.inputs[0].shape[1:3]
    if height != width:  # a fixed square, or any size (None x None)
        raise ModelLoadError(f"{path}: not a colorfusion colorizer (its 'L' input is neither a fixed square nor "
                             f"of any size: {tuple(loaded.inputs[0].shape)})")
    return loaded


def run_config_for(path) -> dict:
    """The `config.json` of the run folder holding `path`; {} for a bare model file."""
    if is_pretrained(path):
        return {}
    path = Path(path)
    config_file = (path if path.is_dir() else path.parent) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{config_file}: damaged run configuration ({first_line(e)})") from None
    return config if isinstance(config, dict) else {}


def load_embedder(path, model_info: dict, weights=None):
    """Build (not just describe) the embedder for a model loaded from `path`.

    The backbone is built here, so a missing weights file or a failed
    download is reported now, once, rather than on every batch later.

    Raises:
        ModelLoadError: the embedder cannot be built, or its vectors do not
            have the length the model expects.
    """
    from colorfusion.embeddings import Embedder

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
    if dim != model_info["embedding_dim"]:
        raise ModelLoadError(f"{source}: the model expects {model_info['embedding_dim']}-d embeddings but "
                             f"{embedder!r} gives {dim}-d ones")
    return embedder


# === The shipped model ===

# One trained colorizer lives in the package as data (`models/colorfusion.npz`, in the wheel
# too) with its model card beside it; `load_model("pretrained")`, `Colorizer.pretrained()`, the
# CLI without `--model` and `train(init="pretrained")` come here. The file is a compressed
# `.npz`, not a `.keras` file: its weights are stored in float16 (half the size, within the 12 MB
# the repository allows, the same colours: README "Model card"), and the model is rebuilt by
# `build_colorizer` from its recorded arguments, not from a Keras config, which one Keras
# version writes and an older one (Kaggle's) cannot read. Its arrays:
#   config: UTF-8 JSON of {"format", "version", "build": the build_colorizer arguments, "bins":
#           the ABBins config (classification), "architecture": the TrainConfig settings a run
#           starting from it takes (`train(init=...)`), "training": what the model card quotes};
#   w0000, w0001, ...: the weights in `model.get_weights()` order, float16 (others as they are).
# `benchmarks/train_release.py` writes it with `save_pretrained`.

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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    from colorfusion import model as model_lib

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
    from colorfusion import model as model_lib
    from colorfusion.bins import ABBins

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
    from colorfusion import model as model_lib

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


# === Full-resolution pixels ===


def as_pixels(image) -> np.ndarray:
    """Contiguous uint8 or float32 [0, 1] pixels, (H, W) gray or (H, W, 3) RGB.

    Args:
        image: a path, a PIL image, or an array (H, W), (H, W, 1) or
            (H, W, 3): uint8; uint16 (16-bit scans); other integers within
            [0, 255]; or float in [0, 1].

    Raises:
        io.ImageReadError: a path that cannot be read.
        ValueError: an array of another shape, type or range.
    """
    if isinstance(image, (str, os.PathLike)):
        return io.read_rgb(image)
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        return io.pil_to_rgb(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1) or (H, W, 3). Received: shape={array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"Expected a non-empty image. Received: shape={array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.uint16:
        return array.astype(np.float32) * np.float32(1.0 / 65535.0)
    if np.issubdtype(array.dtype, np.integer) and 0 <= array.min() and array.max() <= 255:
        return array.astype(np.uint8)  # e.g. an array built from Python ints
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"Expected uint8, uint16 or float pixels. Received: dtype={array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)) or low < -0.01 or high > 1.01:
        raise ValueError("Expected float pixels in [0, 1] (divide 0-255 values by 255). "
                         f"Received: min={low:g}, max={high:g}")
    return np.clip(array, 0.0, 1.0) if low < 0 or high > 1 else array


def lightness(pixels: np.ndarray) -> np.ndarray:
    """L (H, W) float32 in [0, 100] of pixels from `as_pixels`; equals `color.rgb_to_l`."""
    height, width = pixels.shape[:2]
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        # 256 gray levels have 256 values of L: a table from the same conversion.
        levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
        return cv2.LUT(pixels, color.rgb_to_l(levels).reshape(1, 256))
    l_full = np.empty((height, width), np.float32)

    def convert(start, stop, rgb, lab):
        source = pixels[start:stop]
        if source.dtype == np.uint8:
            np.multiply(source, _TO_UNIT, out=rgb)  # as color.rgb_to_lab scales uint8
        else:
            rgb[...] = source[..., None] if source.ndim == 2 else source
        l_full[start:stop] = color.rgb_to_lab(rgb, out=lab)[..., 0]

    over_strips(height, width, convert)
    return l_full


def lab_to_rgb_uint8(l_full: np.ndarray, ab_full: np.ndarray, lab_out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of L (H, W) and ab (H, W, 2); equals `color.lab_to_rgb(..., np.uint8)`.

    Args:
        lab_out: optional float32 (H, W, 3) array that receives the joined Lab.
    """
    height, width = l_full.shape
    rgb = np.empty((height, width, 3), np.uint8)

    def convert(start, stop, lab_buffer, rgb_buffer):
        lab = lab_out[start:stop] if lab_out is not None else lab_buffer
        lab[..., 0] = l_full[start:stop]
        lab[..., 1:] = ab_full[start:stop]
        out = color.lab_to_rgb(lab, out=rgb_buffer)  # clipped to [0, 1]
        # Scale and round exactly as color.lab_to_rgb(..., np.uint8) does, in place.
        np.multiply(out, np.float32(255.0), out=out)
        np.add(out, np.float32(0.5), out=out)
        np.copyto(rgb[start:stop], out, casting="unsafe")

    over_strips(height, width, convert)
    return rgb


def over_strips(height: int, width: int, convert) -> None:
    """Call `convert(start, stop, buffer_1, buffer_2)` for every strip of rows.

    Strips hold about `STRIP_PIXELS` pixels; bands of strips run in threads
    (`in_bands`). The two float32 buffers, (stop - start, width, 3) views,
    are allocated once per band, so no strip pays for fresh memory.
    """
    rows = strip_rows(width)

    def band(top, bottom):
        first = np.empty((rows, width, 3), np.float32)
        second = np.empty((rows, width, 3), np.float32)
        for start in range(top, bottom, rows):
            stop = min(start + rows, bottom)
            convert(start, stop, first[: stop - start], second[: stop - start])

    in_bands(height, band)


def strip_rows(width: int) -> int:
    """Rows per strip: about `STRIP_PIXELS` pixels, at least one row."""
    return max(1, STRIP_PIXELS // max(1, width))


def in_bands(height: int, work) -> None:
    """Call `work(top, bottom)` on one band of rows per available core, in threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(cores, cv2.getNumThreads() or 1, height // 64))  # small images: one thread
    if workers == 1:
        work(0, height)
        return
    edges = np.linspace(0, height, workers + 1).round().astype(int)
    with ThreadPoolExecutor(workers) as pool:
        # list() re-raises the first error of any band.
        list(pool.map(work, edges[:-1].tolist(), edges[1:].tolist()))


# === Colour hints ===

HINT_PATCH = 5  # a user's point marks a square of this side at the network's input size


class HintError(ValueError):
    """A colour hint that cannot be used; the message is one line naming it and why."""


def parse_hint(hint) -> tuple[float, float, tuple[int, int, int]]:
    """(x, y, (r, g, b)) of a hint given as `(x, y, colour)` or the text "X,Y,#rrggbb".

    x and y are pixels of the photo (x to the right, y down, from its top
    left corner); the colour is "#rrggbb" or an (r, g, b) triple of 0-255.

    Raises:
        HintError: one line saying what is wrong with it.
    """
    parts = hint.split(",", 2) if isinstance(hint, str) else hint
    try:
        x, y, colour = parts
    except (TypeError, ValueError):
        raise HintError(f"hint {hint!r}: expected (x, y, colour), e.g. '320,140,#c0392b'") from None
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        raise HintError(f"hint {hint!r}: x and y must be numbers (pixels of the photo)") from None
    try:
        return x, y, color.parse_color(colour)
    except ValueError as e:
        raise HintError(f"hint {hint!r}: {e}") from None


def hint_map(hints, l_full: np.ndarray, shape) -> np.ndarray:
    """A hint model's "hints" input (h, w, 3) for user hints on a photo.

    Args:
        hints: `(x, y, colour)` points (`parse_hint`) in the photo's pixels.
        l_full: the photo's lightness (H, W), in [0, 100].
        shape: (h, w), the network's input size for the photo.

    Returns:
        float32 (h, w, 3): around each point, a square of `HINT_PATCH` pixels
        holding the colour's ab / 128 at the photo's lightness there
        (`color.ab_at_lightness`) and a mask of 1; zeros elsewhere.

    Raises:
        ValueError: a hint is malformed or outside the photo.
    """
    height, width = l_full.shape
    h, w = shape
    out = np.zeros((h, w, 3), np.float32)
    for hint in hints:
        x, y, rgb = parse_hint(hint)
        if not (0 <= x < width and 0 <= y < height):
            raise HintError(f"hint {hint!r} is outside the photo ({width} x {height} pixels)")
        # Lightness around the point, in the photo's own pixels.
        row, col = int(y), int(x)
        around = l_full[max(0, row - 1):row + 2, max(0, col - 1):col + 2]
        ab = color.ab_at_lightness(rgb, float(around.mean())) / color.AB_SCALE
        # The point on the network's grid, with its patch clipped to the map.
        top = min(max(0, int((y + 0.5) * h / height) - HINT_PATCH // 2), max(0, h - HINT_PATCH))
        left = min(max(0, int((x + 0.5) * w / width) - HINT_PATCH // 2), max(0, w - HINT_PATCH))
        out[top:top + HINT_PATCH, left:left + HINT_PATCH] = (ab[0], ab[1], 1.0)
    return out


def read_hints_file(path) -> dict[str, list]:
    """{photo: [hint, ...]} from a JSON file such as `{"car.jpg": [[320, 140, "#c0392b"]]}`.

    A key names a photo by its path as given on the command line, its path
    inside an input folder, or its file name.

    Raises:
        ValueError: one line naming the file and what is wrong with it.
    """
    try:
        hints = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read hints ({first_line(e)})") from None
    if not isinstance(hints, dict) or not all(isinstance(v, list) for v in hints.values()):
        raise ValueError(f'{path}: hints must be a JSON object {{"photo.jpg": [[x, y, "#rrggbb"], ...], ...}}')
    return hints


# === Colorizer ===

# The short side a photo is colorized at by a model that takes any size (README "Colour at the
# right resolution": measured on the validation photos and a 12 MP photo).
INFERENCE_SIZE = 256
INPUT_MULTIPLE = 32  # the deepest stride of the pretrained encoders
MAX_ASPECT = 4  # a panorama's long side is capped at 4 short sides (memory)


def network_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w): the photo's aspect ratio at `short_side`, each side a multiple of 32.

    Example:
        network_shape(3000, 4000, 256) == (256, 352)
    """
    short = max(INPUT_MULTIPLE, round(short_side / INPUT_MULTIPLE) * INPUT_MULTIPLE)
    ratio = min(max(height, width) / max(1, min(height, width)), MAX_ASPECT)
    long = max(short, round(short * ratio / INPUT_MULTIPLE) * INPUT_MULTIPLE)
    return (short, long) if height <= width else (long, short)



class Colorizer:
    """A colorization model ready for full-resolution inference.

    Args:
        model: a trained colorizer of either head, or a model from
            `model.inference_model`.
        decode: "annealed_mean" (default), "expectation" or "mode"; how a
            classification head turns bin probabilities into ab.
        temperature: annealed-mean temperature; None: `model.TEMPERATURE`.
        embedder: an `embeddings.Embedder`; required exactly when the model
            has an "embedding" input (`from_path` builds the run's own).
        interpolation: "bicubic" (default) or "bilinear", to resize ab to the
            photo's size.
        size: for a model that takes any size (a pretrained encoder: the
            shipped model, and runs built with `any_size`, the default), the
            short side the photo is resized to for the network, keeping its
            aspect ratio (each side a multiple of 32). None: `INFERENCE_SIZE`.
            A model with a fixed square input sees every photo resized to
            that square.

    Example:
        colorizer = Colorizer(model)
        rgb = colorizer(photo)                       # uint8 (H, W, 3)
        rgb, lab = colorizer(photo, return_lab=True)  # lab[..., 0] is the photo's own L
    """

    def __init__(self, model, decode="annealed_mean", temperature=None, embedder=None,
                 interpolation="bicubic", size=None):
        from colorfusion import model as model_lib

        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}. "
                             f"Received: interpolation={interpolation!r}")
        info = model_lib.model_info(model)
        size = INFERENCE_SIZE if size is None else size
        if not isinstance(size, int) or size < INPUT_MULTIPLE:
            raise ValueError(f"size must be an integer of at least {INPUT_MULTIPLE}. Received: size={size!r}")
        self.model = model
        # None: any size; the photo keeps its aspect ratio at short side `size`.
        self.image_size = None if info["image_size"] is None else int(info["image_size"])
        self.size = size
        self.embedding_dim = info["embedding_dim"]
        self.takes_hints = info["hints"]
        self.embedder = embedder
        self.interpolation = interpolation
        if self.embedding_dim and embedder is None:
            raise ValueError("This model has a semantic input: pass embedder=Embedder(...) with the backbone "
                             "it was trained with (Colorizer.from_path reads it from the run folder).")
        self.decode = decode
        self.temperature = model_lib.TEMPERATURE if temperature is None else float(temperature)
        self.inference = model_lib.inference_model(model, decode=decode, temperature=self.temperature)

    @classmethod
    def from_path(cls, path, decode="annealed_mean", temperature=None, embedder=None, weights=None, **kwargs):
        """Load a `.keras` file or run folder, with the embedder its run used.

        Args:
            weights: backbone weights of the semantic branch when the run's
                cannot be used here: "imagenet", "none" or a file. None keeps
                the run's.

        Raises:
            ModelLoadError: one line naming the file and the reason.
        """
        from colorfusion import model as model_lib

        model = load_model(path)
        info = model_lib.model_info(model)
        if embedder is None and info["embedding_dim"]:
            embedder = load_embedder(path, info, weights=weights)
        return cls(model, decode=decode, temperature=temperature, embedder=embedder, **kwargs)

    @classmethod
    def pretrained(cls, decode="annealed_mean", temperature=None, **kwargs) -> "Colorizer":
        """The model that ships in the package: colorize with no training and no network.

        Example:
            rgb = Colorizer.pretrained()("old_photo.jpg")
        """
        return cls.from_path("pretrained", decode=decode, temperature=temperature, **kwargs)

    def with_decoding(self, decode="annealed_mean", temperature=None) -> "Colorizer":
        """The same model and embedder with another decoding of a classification head."""
        return Colorizer(self.model, decode=decode, temperature=temperature, embedder=self.embedder,
                         interpolation=self.interpolation, size=self.size)

    def with_size(self, size) -> "Colorizer":
        """The same model, decoding and embedder, run at another short side (any-size models)."""
        return Colorizer(self.model, decode=self.decode, temperature=self.temperature, embedder=self.embedder,
                         interpolation=self.interpolation, size=size)

    def __call__(self, image, return_lab: bool = False, hints=None):
        """Colorize one image (path, PIL image or array) at its full resolution.

        Args:
            hints: for a model that takes hints, points `(x, y, colour)` in
                the photo's pixels whose colour the user knows, the colour
                "#rrggbb" or (r, g, b); e.g. `[(320, 140, "#c0392b")]`.
        """
        return self.colorize_many([image], return_lab=return_lab, hints=None if hints is None else [hints])[0]

    def colorize_many(self, images, return_lab: bool = False, hints=None) -> list:
        """Colorize several images (any sizes) with one model call; `hints`: one list (or None) per image."""
        if not images:
            return []
        if hints is not None and len(hints) != len(images):
            raise ValueError(f"hints must hold one list per image ({len(images)}). Received: {len(hints)} lists")
        prepared = [self.prepare(image) for image in images]
        maps = None
        if hints is not None and any(hints):
            maps = [self.hint_map(points or [], l_full, l_small.shape[:2])
                    for (l_full, l_small), points in zip(prepared, hints)]
        ab_small = self.predict_ab_many([l_small for _, l_small in prepared], maps)
        return [self.finish(l_full, ab, return_lab) for (l_full, _), ab in zip(prepared, ab_small)]

    def hint_map(self, hints, l_full: np.ndarray, shape) -> np.ndarray:
        """The "hints" input (h, w, 3) for `hints` on a photo of lightness `l_full` (`hint_map`).

        Raises:
            ValueError: the model takes no hints, or a hint is malformed or outside the photo.
        """
        if hints and not self.takes_hints:
            raise HintError("this model takes no colour hints (it was trained without hints=True); use the "
                             "shipped model or a run trained with hints")
        return hint_map(hints, l_full, shape)

    # The three steps, public so that folder mode can batch and report per file.

    def network_shape(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the network input for a photo of `height` x `width`."""
        if self.image_size is not None:
            return self.image_size, self.image_size
        return network_shape(height, width, self.size)

    def prepare(self, image) -> tuple[np.ndarray, np.ndarray]:
        """(full-resolution L (H, W), L at network size (h, w, 1)), float32 in [0, 100]."""
        pixels = as_pixels(image)
        height, width = self.network_shape(*pixels.shape[:2])
        # Like training: RGB resized first, then its L.
        small = io.resize(pixels, width, height)
        return lightness(pixels), lightness(small)[..., None]

    def predict_ab_many(self, l_smalls, hint_maps=None) -> list[np.ndarray]:
        """`predict_ab` of L maps of several shapes: one model call per shape, results in input order.

        `hint_maps`: None, or one "hints" input (h, w, 3) or None per L map.
        """
        by_shape = {}
        for index, l_small in enumerate(l_smalls):
            by_shape.setdefault(np.shape(l_small), []).append(index)
        results = [None] * len(l_smalls)
        for indices in by_shape.values():
            maps = None
            if hint_maps is not None and any(hint_maps[i] is not None for i in indices):
                from colorfusion.model import no_hints

                maps = np.stack([no_hints(l_smalls[i]) if hint_maps[i] is None else hint_maps[i] for i in indices])
            for index, ab in zip(indices, self.predict_ab(np.stack([l_smalls[i] for i in indices]), maps)):
                results[index] = ab
        return results

    def predict_ab(self, l_small: np.ndarray, hint_maps=None) -> np.ndarray:
        """ab in Lab units (N, h, w, 2) for a batch of L (N, h, w, 1) in [0, 100].

        Args:
            hint_maps: for a model that takes hints, its "hints" input
                (N, h, w, 3) (`hint_map`); None: no hints.
        """
        from colorfusion.model import no_hints

        l_small = np.asarray(l_small, np.float32)
        count = len(l_small)
        inputs = {"L": color.l_to_model(l_small)}
        if self.embedding_dim:
            inputs["embedding"] = np.asarray(self.embedder.embed_l(l_small), np.float32)
        if self.takes_hints:
            inputs["hints"] = no_hints(inputs["L"]) if hint_maps is None else np.asarray(hint_maps, np.float32)
        if self.image_size is None:
            # Any size: a direct call, not `predict_on_batch`, whose compiled function would be
            # retraced with the photo's sides unknown, which Keras' bilinear upsampling refuses.
            return color.ab_from_model(np.asarray(self.inference(inputs, training=False)))
        # Pad to a power of two: a few batch shapes, so the compiled function is
        # traced a few times, not once per odd-sized last batch.
        padded = 1 << max(0, count - 1).bit_length()
        inputs = {k: np.concatenate([v, np.zeros((padded - count, *v.shape[1:]), v.dtype)]) for k, v in inputs.items()}
        # predict_on_batch: no per-call data pipeline, one compiled function.
        return color.ab_from_model(np.asarray(self.inference.predict_on_batch(inputs))[:count])

    def finish(self, l_full: np.ndarray, ab_small: np.ndarray, return_lab: bool = False):
        """Resize ab (h, w, 2) to L's size (H, W) and join: uint8 RGB, and with `return_lab` the Lab."""
        height, width = l_full.shape
        ab_small = np.asarray(ab_small, np.float32)
        if height * width >= ab_small.shape[0] * ab_small.shape[1]:  # the usual case: enlarge smoothly
            ab = cv2.resize(ab_small, (width, height), interpolation=INTERPOLATIONS[self.interpolation])
        else:
            ab = io.resize(ab_small, width, height)
        lab = np.empty((height, width, 3), np.float32) if return_lab else None
        rgb = lab_to_rgb_uint8(l_full, ab.reshape(height, width, 2), lab_out=lab)
        return (rgb, lab) if return_lab else rgb


def as_colorizer(model, **kwargs) -> Colorizer:
    """A `Colorizer` from a Colorizer (returned as is), a Keras model or a path."""
    if isinstance(model, Colorizer):
        return model
    if isinstance(model, (str, os.PathLike)):
        return Colorizer.from_path(model, **kwargs)
    return Colorizer(model, **kwargs)


# === Folders ===


@dataclass
class FolderReport:
    """What `colorize_folder` did: files written, skipped (output exists), failed (with reasons).

    `outputs` maps each input that has an output now (written or skipped) to it.
    """

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, reason)
    outputs: dict = field(default_factory=dict)  # input path -> output path

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_outputs(inputs, dst) -> list[tuple[Path, Path]]:
    """Pair every input image with its output path, mirroring folders.

    A file given directly lands in `dst` under its name; a folder's images
    keep their path relative to that folder. GIF outputs become PNG (a
    palette would throw the colours away). When `dst` lies inside an input
    folder, the images under `dst` are not inputs (so `-o photos/colorized`
    can be run twice). Missing inputs are left out (`colorize_folder`
    reports them); see `refused_outputs` for pairs that must not be written.
    """
    from colorfusion.datasets import find_images

    dst = Path(dst)
    resolved_dst = dst.resolve()
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = find_images(item)
            root = item.resolve()
            if resolved_dst != root and resolved_dst.is_relative_to(root):  # dst inside this input folder
                found = [f for f in found if not f.resolve().is_relative_to(resolved_dst)]
            pairs += [(f, dst / f.relative_to(item)) for f in found]
        elif item.exists():
            pairs.append((item, dst / item.name))
    return [(src, out.with_suffix(".png") if out.suffix.lower() == ".gif" else out) for src, out in pairs]


def refused_outputs(pairs) -> dict[Path, str]:
    """{input: reason} for pairs whose output would replace an input or another pair's output."""
    inputs = {src.resolve() for src, _ in pairs}
    claimed, refused = {}, {}
    for src, out in pairs:
        target = out.resolve()
        if target in inputs:
            refused[src] = f"output {out} would replace an input; choose another output folder"
        elif target in claimed:
            refused[src] = f"output {out} is already the output of {claimed[target]}"
        else:
            claimed[target] = src
    return refused


def colorize_folder(inputs, dst, model, batch_size: int = 8, overwrite: bool = False,
                    progress: bool = True, log=None, hints=None, **colorizer_kwargs) -> FolderReport:
    """Colorize files and folders (recursively) into `dst`, mirroring the tree.

    A file that cannot be read or written gets one line in `log` and the
    rest go on; existing outputs are skipped unless `overwrite`; an output
    that would replace an input is refused. Outputs are written atomically.

    Args:
        inputs: a path or a list of image files and folders.
        dst: output folder (created when needed).
        model: a `Colorizer`, a Keras model, or a `.keras` file / run folder.
        batch_size: photos per model call. Memory grows with it: each photo
            waiting for its batch holds its full-resolution L (4 bytes a pixel).
        log: called with each one-line error (default: stderr, above the bar).
        hints: colour hints for a hint model: a list of `(x, y, colour)`
            points for every photo, or `{photo: points}` naming photos by
            their path as given, their path inside an input folder, or their
            file name (`read_hints_file`). A photo whose hints are bad (or
            given to a model that takes none) fails with one line; a name
            that matches no photo is reported as a failure too.
        **colorizer_kwargs: `decode`, `temperature`, ... for a model not yet
            a `Colorizer`.

    Returns:
        A `FolderReport`; `report.ok` is False when any file failed.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    colorizer = as_colorizer(model, **colorizer_kwargs)
    report = FolderReport()
    for item in map(Path, inputs):
        if not item.exists():
            _fail(report, log, item, "no such file or folder")
    pairs = plan_outputs(inputs, dst)
    refused = refused_outputs(pairs)
    hints_of = _hints_by_input(hints, pairs, dst, report, log)
    todo = []
    for src, out in pairs:
        if src in refused:
            _fail(report, log, src, refused[src])
        elif out.exists() and not overwrite:
            report.skipped.append(out)
            report.outputs[src] = out
        else:
            todo.append((src, out))
    with tqdm(total=len(todo), unit="img", desc="colorize", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            _colorize_batch(batch, colorizer, report, log, hints_of)
            bar.update(len(batch))
    return report


def _fail(report: FolderReport, log, src, reason: str) -> None:
    report.failed.append((Path(src), reason))
    log(f"error: {src}: {reason}")


def _reason(error: Exception) -> str:
    # Keras / TensorFlow errors can span pages: the log gets one line per file.
    if isinstance(error, HintError):
        return str(error)
    return error.reason if isinstance(error, io.ImageReadError) else first_line(error)


def _hints_by_input(hints, pairs, dst, report: FolderReport, log) -> dict:
    """{input: its hints} from one list for all (`--hint`) or a {name: hints} dict (`--hints`)."""
    if not hints:
        return {}
    if not isinstance(hints, dict):
        return {src: list(hints) for src, _ in pairs}
    by_input, used = {}, set()
    for src, out in pairs:
        for key in (str(src), Path(out).relative_to(dst).as_posix(), src.name):
            if key in hints:
                by_input[src] = hints[key]
                used.add(key)
                break
    for key in hints:
        if key not in used:
            _fail(report, log, key, "hints given for a photo that is not among the inputs")
    return by_input


def _colorize_batch(pairs, colorizer: Colorizer, report: FolderReport, log, hints_of=None) -> None:
    # Any error is about one file (or, for the model call, this batch): report it and go on.
    hints_of = hints_of or {}
    ready, maps = [], []
    for src, out in pairs:
        try:
            l_full, l_small = colorizer.prepare(io.read_rgb(src))
            maps.append(colorizer.hint_map(hints_of[src], l_full, l_small.shape[:2]) if src in hints_of else None)
            ready.append((src, out, l_full, l_small))
        except Exception as e:  # noqa: BLE001 - a batch job never stops for one file
            _fail(report, log, src, _reason(e))
    if not ready:
        return
    try:
        ab_small = colorizer.predict_ab_many([l_small for *_, l_small in ready], maps)
    except Exception as e:  # noqa: BLE001
        for src, *_ in ready:
            _fail(report, log, src, f"model failed: {_reason(e)}")
        return
    for (src, out, l_full, _), ab in zip(ready, ab_small):
        try:
            io.write_image(out, colorizer.finish(l_full, ab))
            report.written.append(out)
            report.outputs[src] = out
        except Exception as e:  # noqa: BLE001
            _fail(report, log, src, f"cannot write {out}: {_reason(e)}")
