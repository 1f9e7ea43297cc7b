"""Full-resolution colorization of one photo, an array, or whole folders.

The model sees the photo resized to its input size (256 by default), exactly
as in training (RGB resized, then its L); the ab it predicts is resized back
to the photo's own size and joined with the photo's full-resolution L. The
output therefore has exactly the input's size and every detail of its
lightness: only the colour comes from the network.

    colorizer = Colorizer.from_path("runs/exp1")          # a run folder or a .keras file
    rgb = colorizer("old_photo.jpg")                        # uint8 RGB, same size as the photo
    colorize_folder(["scans/"], "colorized/", colorizer)   # mirror a tree, skip bad files

Models of either head work: `model.inference_model` decodes a
classification model (annealed mean by default), so nothing here asks which
head a model has.

The full-resolution pixel work (L, Lab -> RGB) lives in `fullres.py`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from colorfusion import color, io
from colorfusion.fullres import as_pixels, lab_to_rgb_uint8, lightness
from colorfusion.model_files import ModelLoadError, first_line, load_embedder, load_model  # noqa: F401 - API

INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}


# === Colorizer ===


class Colorizer:
    """A colorization model ready for full-resolution inference.

    Args:
        model: a trained colorizer of either head, or a model from
            `model.inference_model`.
        decode: "annealed_mean" (default), "expectation" or "mode"; how a
            classification head turns bin probabilities into ab.
        temperature: annealed-mean temperature (0.38 as in Zhang et al.).
        embedder: an `embeddings.Embedder`; required exactly when the model
            has an "embedding" input (`from_path` builds the run's own).
        interpolation: "bicubic" (default) or "bilinear", to resize ab to the
            photo's size.

    Example:
        colorizer = Colorizer(model)
        rgb = colorizer(photo)                       # uint8 (H, W, 3)
        rgb, lab = colorizer(photo, return_lab=True)  # lab[..., 0] is the photo's own L
    """

    def __init__(self, model, decode="annealed_mean", temperature=0.38, embedder=None,
                 interpolation="bicubic"):
        from colorfusion import model as model_lib

        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}. "
                             f"Received: interpolation={interpolation!r}")
        info = model_lib.model_info(model)
        self.model = model
        self.image_size = int(info["image_size"])
        self.embedding_dim = info["embedding_dim"]
        self.embedder = embedder
        self.interpolation = interpolation
        if self.embedding_dim and embedder is None:
            raise ValueError("This model has a semantic input: pass embedder=Embedder(...) with the backbone "
                             "it was trained with (Colorizer.from_path reads it from the run folder).")
        self.inference = model_lib.inference_model(model, decode=decode, temperature=temperature)

    @classmethod
    def from_path(cls, path, decode="annealed_mean", temperature=0.38, embedder=None, weights=None, **kwargs):
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

    def __call__(self, image, return_lab: bool = False):
        """Colorize one image (path, PIL image or array) at its full resolution."""
        return self.colorize_many([image], return_lab=return_lab)[0]

    def colorize_many(self, images, return_lab: bool = False) -> list:
        """Colorize several images (any sizes) with one model call."""
        if not images:
            return []
        prepared = [self.prepare(image) for image in images]
        ab_small = self.predict_ab(np.stack([l_small for _, l_small in prepared]))
        return [self.finish(l_full, ab, return_lab) for (l_full, _), ab in zip(prepared, ab_small)]

    # The three steps, public so that folder mode can batch and report per file.

    def prepare(self, image) -> tuple[np.ndarray, np.ndarray]:
        """(full-resolution L (H, W), L at model size (S, S, 1)), float32 in [0, 100]."""
        pixels = as_pixels(image)
        size = self.image_size
        # Like training: RGB resized first, then its L.
        small = cv2.resize(pixels, (size, size), interpolation=_interpolation(pixels.shape[:2], (size, size)))
        return lightness(pixels), lightness(small)[..., None]

    def predict_ab(self, l_small: np.ndarray) -> np.ndarray:
        """ab in Lab units (N, S, S, 2) for a batch of L (N, S, S, 1) in [0, 100]."""
        l_small = np.asarray(l_small, np.float32)
        count = len(l_small)
        inputs = {"L": color.l_to_model(l_small)}
        if self.embedding_dim:
            inputs["embedding"] = np.asarray(self.embedder.embed_l(l_small), np.float32)
        # Pad to a power of two: a few batch shapes, so the compiled function is
        # traced a few times, not once per odd-sized last batch.
        padded = 1 << max(0, count - 1).bit_length()
        inputs = {k: np.concatenate([v, np.zeros((padded - count, *v.shape[1:]), v.dtype)]) for k, v in inputs.items()}
        # predict_on_batch: no per-call data pipeline, one compiled function.
        return color.ab_from_model(np.asarray(self.inference.predict_on_batch(inputs))[:count])

    def finish(self, l_full: np.ndarray, ab_small: np.ndarray, return_lab: bool = False):
        """Resize ab (S, S, 2) to L's size (H, W) and join: uint8 RGB, and with `return_lab` the Lab."""
        height, width = l_full.shape
        flag = _interpolation(ab_small.shape[:2], (height, width))
        if flag != cv2.INTER_AREA:
            flag = INTERPOLATIONS[self.interpolation]
        ab = cv2.resize(np.asarray(ab_small, np.float32), (width, height), interpolation=flag)
        lab = np.empty((height, width, 3), np.float32) if return_lab else None
        rgb = lab_to_rgb_uint8(l_full, ab.reshape(height, width, 2), lab_out=lab)
        return (rgb, lab) if return_lab else rgb


def colorize(model, image, decode="annealed_mean", temperature=0.38, embedder=None, return_lab=False):
    """Colorize one photo at its full resolution.

    Given a path, this loads the model on every call: for many photos, make a
    `Colorizer` once (or use `colorize_folder`).

    Args:
        model: a `Colorizer`, a Keras model (either head, or an inference
            model), or a path to a `.keras` file or run folder.
        image: a path, a PIL image or a numpy array (H, W), (H, W, 1) or
            (H, W, 3); uint8, uint16, or float in [0, 1]; any size.
        decode, temperature: decoding of a classification head.
        embedder: for a model with a semantic input given as a Keras model.
        return_lab: also return the float32 Lab (L exactly the input's).

    Returns:
        uint8 RGB (H, W, 3) of the input's size, or (rgb, lab).

    Example:
        rgb = colorize("runs/exp1", "grandma_1932.jpg")
    """
    colorizer = as_colorizer(model, decode=decode, temperature=temperature, embedder=embedder)
    return colorizer(image, return_lab=return_lab)


def as_colorizer(model, **kwargs) -> Colorizer:
    """A `Colorizer` from a Colorizer (returned as is), a Keras model or a path."""
    if isinstance(model, Colorizer):
        return model
    if isinstance(model, (str, os.PathLike)):
        return Colorizer.from_path(model, **kwargs)
    return Colorizer(model, **kwargs)


def _interpolation(source_hw, target_hw) -> int:
    # Area averaging when shrinking (no aliasing), bilinear when enlarging.
    shrinking = target_hw[0] * target_hw[1] < source_hw[0] * source_hw[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


# === Folders ===


@dataclass
class FolderReport:
    """What `colorize_folder` did: files written, skipped (output exists), failed (with reasons)."""

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, reason)

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
                    progress: bool = True, log=None, **colorizer_kwargs) -> FolderReport:
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
    todo = []
    for src, out in pairs:
        if src in refused:
            _fail(report, log, src, refused[src])
        elif out.exists() and not overwrite:
            report.skipped.append(out)
        else:
            todo.append((src, out))
    with tqdm(total=len(todo), unit="img", desc="colorize", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            _colorize_batch(batch, colorizer, report, log)
            bar.update(len(batch))
    return report


def _fail(report: FolderReport, log, src, reason: str) -> None:
    report.failed.append((Path(src), reason))
    log(f"error: {src}: {reason}")


def _reason(error: Exception) -> str:
    # Keras / TensorFlow errors can span pages: the log gets one line per file.
    return error.reason if isinstance(error, io.ImageReadError) else first_line(error)


def _colorize_batch(pairs, colorizer: Colorizer, report: FolderReport, log) -> None:
    # Any error is about one file (or, for the model call, this batch): report it and go on.
    ready = []
    for src, out in pairs:
        try:
            ready.append((src, out, *colorizer.prepare(io.read_rgb(src))))
        except Exception as e:  # noqa: BLE001 - a batch job never stops for one file
            _fail(report, log, src, _reason(e))
    if not ready:
        return
    try:
        ab_small = colorizer.predict_ab(np.stack([l_small for *_, l_small in ready]))
    except Exception as e:  # noqa: BLE001
        for src, *_ in ready:
            _fail(report, log, src, f"model failed: {_reason(e)}")
        return
    for (src, out, l_full, _), ab in zip(ready, ab_small):
        try:
            io.write_image(out, colorizer.finish(l_full, ab))
            report.written.append(out)
        except Exception as e:  # noqa: BLE001
            _fail(report, log, src, f"cannot write {out}: {_reason(e)}")
