"""Full-resolution colorization of one photo, an array, or whole folders.

The model sees the photo's L resized to its input size (256 by default); the
ab it predicts is resized back to the photo's own size and joined with the
photo's full-resolution L. The output therefore has exactly the input's size
and every detail of its lightness: only the colour comes from the network.

    colorizer = Colorizer.from_path("runs/exp1")          # a run folder or a .keras file
    rgb = colorizer("old_photo.jpg")                        # uint8 RGB, same size as the photo
    colorize_folder(["scans/"], "colorized/", colorizer)   # mirror a tree, skip bad files

Works with models of either head: classification models are decoded by
`model.inference_model` (annealed mean by default), so nothing here asks
which head a model has.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from colorfusion import color, io

_RUN_MODEL_FILES = ("best.keras", "last.keras", "model.keras")


class ModelLoadError(Exception):
    """A model file or run folder could not be loaded; the message says why."""


# === Loading ===


def resolve_model_path(path) -> Path:
    """A `.keras` file, or the best checkpoint of a run folder."""
    path = Path(path)
    if path.is_dir():
        for name in _RUN_MODEL_FILES:
            if (path / name).is_file():
                return path / name
        raise ModelLoadError(f"{path}: no model in this folder (looked for {', '.join(_RUN_MODEL_FILES)})")
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file or run folder")
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path}: not a .keras model file (got suffix {path.suffix!r})")
    return path


def load_model(path):
    """Load a colorization model from a `.keras` file or a run folder.

    Raises:
        ModelLoadError: missing, not a `.keras` file, or not loadable.
    """
    import keras

    from colorfusion import model as model_lib  # registers the custom layers

    path = resolve_model_path(path)
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{path}: not a loadable Keras model ({reason})") from None
    try:
        model_lib.model_info(loaded)
    except Exception as e:
        raise ModelLoadError(f"{path}: not a colorfusion model ({e})") from None
    return loaded


def run_config_for(path) -> dict:
    """The `config.json` of the run folder holding `path`, or {} for a bare file."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_file = folder / "config.json"
    if config_file.is_file():
        try:
            return json.loads(config_file.read_text())
        except (OSError, ValueError):
            return {}
    return {}


# === Colorizer ===


@dataclass
class Colorizer:
    """A model ready for inference: decoding chosen, embedder attached.

    Args:
        model: a trained colorization model (either head) or an inference model.
        decode: "annealed_mean" (default), "expectation" or "mode";
            classification head only.
        temperature: annealed-mean temperature T (0.38 as in Zhang et al.).
        embedder: an `embeddings.Embedder` for models with a semantic input;
            required exactly when the model has an "embedding" input.
        interpolation: "bicubic" (default) or "bilinear" for upsampling ab.
    """

    model: object
    decode: str = "annealed_mean"
    temperature: float = 0.38
    embedder: object = None
    interpolation: str = "bicubic"
    _infer: object = field(init=False, repr=False, default=None)

    def __post_init__(self):
        from colorfusion import model as model_lib

        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(
                f"interpolation must be 'bicubic' or 'bilinear'. Received: interpolation={self.interpolation!r}"
            )
        info = model_lib.model_info(self.model)
        self.image_size = int(info["image_size"])
        self.embedding_dim = info.get("embedding_dim")
        if self.embedding_dim and self.embedder is None:
            raise ValueError(
                "This model has a semantic input: pass embedder=Embedder(...) with the backbone it was "
                "trained with (a run folder's config.json names it)."
            )
        self._infer = model_lib.inference_model(self.model, decode=self.decode, temperature=self.temperature)

    @classmethod
    def from_path(cls, path, decode="annealed_mean", temperature=0.38, embedder=None, weights=None, **kwargs):
        """Load a model file or run folder, and the embedder its run used.

        Args:
            weights: override for the backbone weights ("imagenet", None or a
                path) when the run folder's config cannot be used here.
        """
        model = load_model(path)
        from colorfusion import model as model_lib

        if embedder is None and model_lib.model_info(model).get("embedding_dim"):
            embedder = embedder_for_run(run_config_for(path), weights=weights)
        return cls(model, decode=decode, temperature=temperature, embedder=embedder, **kwargs)

    def __call__(self, image, return_lab: bool = False):
        """Colorize one image (path, PIL image or array) at its full resolution."""
        return self.colorize_many([image], return_lab=return_lab)[0]

    def predict_ab(self, l_small: np.ndarray) -> np.ndarray:
        """ab (Lab units) at model size for a batch of L (N, S, S, 1) in [0, 100]."""
        inputs = {"L": color.l_to_model(l_small)}
        if self.embedding_dim:
            inputs["embedding"] = np.asarray(self.embedder.embed_l(l_small), np.float32)
        ab_scaled = self._infer.predict(inputs, verbose=0, batch_size=len(l_small))
        return color.ab_from_model(np.asarray(ab_scaled, np.float32))

    def colorize_many(self, images, return_lab: bool = False) -> list:
        """Colorize a list of images with one batched model call."""
        lightness = [full_resolution_l(image) for image in images]
        size = self.image_size
        l_small = np.stack([_resize(l, size, size, cv2.INTER_AREA) for l in lightness])[..., None]
        ab_small = self.predict_ab(l_small)
        results = []
        for l, ab in zip(lightness, ab_small):
            lab = join_full_resolution(l, ab, self.interpolation)
            rgb = color.lab_to_rgb(lab, dtype=np.uint8)
            results.append((rgb, lab) if return_lab else rgb)
        return results


def embedder_for_run(config: dict, weights=None):
    """The Embedder a run was trained with (backbone, output, seed).

    Args:
        config: the run's `config.json` ({} for a bare model file: then the
            default InceptionResNetV2 with ImageNet weights).
        weights: None to use the run's weights; otherwise "imagenet", "none"
            (random, reproducible from the run's seed) or a weights file.
    """
    from colorfusion.embeddings import Embedder

    chosen = config.get("weights", "imagenet") if weights is None else weights
    return Embedder(backbone=config.get("backbone", "inception_resnet_v2"),
                    weights=None if chosen in (None, "none") else chosen,
                    output=config.get("embedding_output", "predictions"), seed=int(config.get("seed", 0)))


def colorize(model, image, decode="annealed_mean", temperature=0.38, embedder=None, return_lab=False):
    """Colorize one photo at its full resolution.

    Args:
        model: a `Colorizer`, a Keras model, or a path to a `.keras` file or run folder.
        image: a path, a PIL image or a numpy array (H, W), (H, W, 1) or
            (H, W, 3), uint8 or float in [0, 1], any size.

    Returns:
        uint8 RGB (H, W, 3) of the input's size; with `return_lab`, also its
        float32 Lab.
    """
    colorizer = as_colorizer(model, decode=decode, temperature=temperature, embedder=embedder)
    return colorizer(image, return_lab=return_lab)


def as_colorizer(model, **kwargs) -> Colorizer:
    if isinstance(model, Colorizer):
        return model
    if isinstance(model, (str, Path)):
        return Colorizer.from_path(model, **kwargs)
    return Colorizer(model, **kwargs)


# === Image plumbing ===


def full_resolution_l(image) -> np.ndarray:
    """L in [0, 100], float32 (H, W), of a path, PIL image or array (gray or colour)."""
    if isinstance(image, (str, Path)):
        return color.rgb_to_l(io.read_rgb(image))[..., 0]
    if hasattr(image, "mode") and hasattr(image, "size"):  # PIL image
        return color.rgb_to_l(io.pil_to_rgb(image))[..., 0]
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1) or (H, W, 3). Received: shape={array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"Expected a non-empty image. Received: shape={array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(np.asarray(array, np.float32), 0.0, 1.0)
    return color.rgb_to_l(array)[..., 0]


def join_full_resolution(l_full: np.ndarray, ab_small: np.ndarray, interpolation="bicubic") -> np.ndarray:
    """Upsample ab (S, S, 2) to L's size and join: Lab (H, W, 3) float32."""
    height, width = l_full.shape[:2]
    flag = cv2.INTER_CUBIC if interpolation == "bicubic" else cv2.INTER_LINEAR
    ab = _resize(ab_small, height, width, flag)
    lab = np.empty((height, width, 3), np.float32)
    lab[..., 0] = l_full
    lab[..., 1:] = ab.reshape(height, width, 2)
    return lab


def _resize(array: np.ndarray, height: int, width: int, flag) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return np.asarray(array, np.float32)
    return cv2.resize(np.asarray(array, np.float32), (width, height), interpolation=flag)


# === Folders ===


@dataclass
class FolderReport:
    """What `colorize_folder` did: files written, skipped, and failed (with reasons)."""

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, reason)

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_outputs(inputs, dst) -> list[tuple[Path, Path]]:
    """Pair every input image with its output path, mirroring folders.

    A file given directly lands in `dst` by name; a folder's images keep their
    path relative to that folder. GIF outputs become PNG (a palette would
    throw the colours away).
    """
    from colorfusion.datasets import find_images

    dst = Path(dst)
    pairs = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            pairs += [(f, dst / f.relative_to(item)) for f in find_images(item)]
        else:
            pairs.append((item, dst / item.name))
    return [(src, out.with_suffix(".png") if out.suffix.lower() == ".gif" else out) for src, out in pairs]


def colorize_folder(inputs, dst, model, batch_size: int = 8, overwrite: bool = False,
                    progress: bool = True, log=None, **colorizer_kwargs) -> FolderReport:
    """Colorize files and folders into `dst`, mirroring the tree.

    Unreadable files are reported (one line each) and skipped; existing
    outputs are kept unless `overwrite`; an output that would replace its own
    input is refused. Outputs are written atomically.

    Returns:
        A `FolderReport`; `report.ok` is False when any file failed.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1. Received: batch_size={batch_size!r}")
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    colorizer = as_colorizer(model, **colorizer_kwargs)
    report = FolderReport()
    todo = []
    for item in inputs:
        if not Path(item).exists():
            report.failed.append((Path(item), "no such file or folder"))
            log(f"error: {item}: no such file or folder")
    for src, out in plan_outputs([i for i in inputs if Path(i).exists()], dst):
        if out.resolve() == src.resolve():
            report.failed.append((src, "output path equals the input; choose another output folder"))
            log(f"error: {src}: output path equals the input; choose another output folder")
        elif out.exists() and not overwrite:
            report.skipped.append(out)
        else:
            todo.append((src, out))
    bar = tqdm(total=len(todo), unit="img", desc="colorize", disable=not progress)
    for start in range(0, len(todo), batch_size):
        _colorize_batch(todo[start:start + batch_size], colorizer, report, log)
        bar.update(len(todo[start:start + batch_size]))
    bar.close()
    return report


def _colorize_batch(pairs, colorizer: Colorizer, report: FolderReport, log) -> None:
    readable = []
    for src, out in pairs:
        try:
            readable.append((src, out, io.read_rgb(src)))
        except io.ImageReadError as e:
            report.failed.append((src, e.reason))
            log(f"error: {e}")
    if not readable:
        return
    results = colorizer.colorize_many([rgb for _, _, rgb in readable])
    for (src, out, _), rgb in zip(readable, results):
        try:
            io.write_image(out, rgb)
            report.written.append(out)
        except (OSError, ValueError) as e:
            report.failed.append((src, f"cannot write {out}: {e}"))
            log(f"error: {src}: cannot write {out}: {e}")
