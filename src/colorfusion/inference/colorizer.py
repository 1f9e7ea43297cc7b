"""`Colorizer`: the engine with a trained model behind it, and the package's conveniences above its clients.

    colorizer = Colorizer.pretrained()                     # the model that ships in the package
    colorizer = Colorizer.from_path("runs/exp1")          # or a run folder, a .keras file, an exported .onnx
    rgb = colorizer("old_photo.jpg")                        # uint8 RGB, same size as the photo
    rgb = colorizer("car.jpg", hints=[(320, 140, "#c0392b")])  # this point is red (a hint model)
    colorizer.colorize_video("film.mp4", "film_colour.mp4")  # = inference.video.colorize_video(colorizer, ...)

A `Colorizer` is an `inference.engine.Engine` (the pipeline: read, L,
runner, ab, RGB) whose runner is a Keras model (`inference.runners.KerasRunner`,
built here from the model and its decoding) or an exported file
(`ExportedModel`, `inference.exported`). Models of either head work: a
classification head is decoded inside the runner (annealed mean by default),
so nothing asks which head a model has.

This module sits above the engine's clients: `colorize_video` and
`suggest_colours` are the package's one-call conveniences for
`inference.video.colorize_video(colorizer, ...)` and
`inference.suggest.suggest_colours(colorizer, ...)`; neither client imports
it. Folders of files: `inference.batch.colorize_folder`.
"""

from __future__ import annotations

import os

from colorfusion.inference import suggest, video
from colorfusion.inference.engine import (
    INFERENCE_SIZE,
    INPUT_MULTIPLE,
    INTERPOLATIONS,
    MAX_ASPECT,
    Engine,
    network_shape,
)
from colorfusion.inference.exported import is_exported, open_exported
from colorfusion.inference.runners import KerasRunner, Runner, without_hint_layers
from colorfusion.loading import load_embedder, load_model, model_file
from colorfusion.model import model_info
from colorfusion.presets import PRETRAINED

__all__ = ["Colorizer", "ExportedModel", "as_colorizer", "network_shape", "without_hint_layers", "INFERENCE_SIZE",
           "INPUT_MULTIPLE", "INTERPOLATIONS", "MAX_ASPECT"]


class Colorizer(Engine):
    """A colorization model ready for full-resolution inference.

    Args:
        model: a trained colorizer of either head, a model from
            `model.inference_model`, or a `Runner` (an exported file's:
            `ExportedModel`), whose decoding is its own.
        decode: "annealed_mean" (default), "expectation" or "mode"; how a
            classification head turns bin probabilities into ab.
        temperature: annealed-mean temperature; None: `model.TEMPERATURE`.
        hint_temperature: for a hint model, the annealed-mean temperature of
            a photo given hints; None: `model.HINT_TEMPERATURE` (sharper than
            without hints: the points say which colour is right).
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

    model_file = None  # the file the model came from (`from_path`); None: built in memory

    def __init__(self, model, decode="annealed_mean", temperature=None, embedder=None,
                 interpolation="bicubic", size=None, hint_temperature=None):
        if isinstance(model, Runner):
            if (decode, temperature, hint_temperature) != ("annealed_mean", None, None):
                raise ValueError("a runner's decoding is its own: pass decode, temperature and hint_temperature "
                                 "to the model's runner, not with it")
            runner = model
        else:
            runner = KerasRunner(model, decode=decode, temperature=temperature, hint_temperature=hint_temperature)
        super().__init__(runner, size=size, interpolation=interpolation, embedder=embedder)

    # --- What the runner is (a Keras model's; an exported file has no Keras model) ---

    @property
    def model(self):
        """The Keras model (None for an exported file)."""
        return getattr(self.runner, "model", None)

    @property
    def inference(self):
        """The Keras inference network, decoding included (None for an exported file)."""
        return getattr(self.runner, "inference", None)

    @property
    def automatic_network(self):
        """The inference network a photo given no hints runs (`runners.without_hint_layers` of a hint model)."""
        return getattr(self.runner, "automatic_network", None)

    @property
    def traces(self) -> int:
        """How many times the Keras runner compiled its network for a new input shape (0 for an exported file)."""
        return getattr(self.runner, "traces", 0)

    @property
    def decode(self):
        return self.runner.decode

    @property
    def temperature(self):
        return self.runner.temperature

    @property
    def hint_temperature(self):
        return self.runner.hint_temperature

    # --- Making one ---

    @classmethod
    def from_path(cls, path, decode="annealed_mean", temperature=None, embedder=None, weights=None, **kwargs):
        """Load a `.keras` file or run folder, with the embedder its run used; or an exported file (`ExportedModel`).

        Args:
            weights: backbone weights of the semantic branch when the run's
                cannot be used here: "imagenet", "none" or a file. None keeps
                the run's.

        Raises:
            ModelLoadError: one line naming the file and the reason.
            ValueError: a decoding or size given for an exported file, which fixed them.
        """
        if is_exported(path):
            fixed = [name for name, given in (("decode", decode != "annealed_mean"),
                                              ("temperature", temperature is not None),
                                              ("hint_temperature", kwargs.get("hint_temperature") is not None),
                                              ("size", kwargs.get("size") is not None),
                                              ("embedder", embedder is not None), ("weights", weights is not None))
                     if given]
            if fixed:
                raise ValueError(f"{path}: an exported file's decoding and size were fixed when it was exported. "
                                 f"Received: {', '.join(fixed)}")
            return ExportedModel(path, interpolation=kwargs.get("interpolation", "bicubic"))
        model = load_model(path)
        info = model_info(model)
        if embedder is None and info.embedding_dim:
            embedder = load_embedder(path, info, weights=weights)
        colorizer = cls(model, decode=decode, temperature=temperature, embedder=embedder, **kwargs)
        colorizer.model_file = model_file(path)  # the file a written photo's mark hashes (`provenance`)
        return colorizer

    @classmethod
    def pretrained(cls, decode="annealed_mean", temperature=None, **kwargs) -> Colorizer:
        """The model that ships in the package: colorize with no training and no network.

        Example:
            rgb = Colorizer.pretrained()("old_photo.jpg")
        """
        return cls.from_path(PRETRAINED, decode=decode, temperature=temperature, **kwargs)

    def with_decoding(self, decode="annealed_mean", temperature=None, hint_temperature=None) -> Colorizer:
        """The same model and embedder with another decoding of a classification head."""
        other = Colorizer(self.model, decode=decode, temperature=temperature, embedder=self.embedder,
                          interpolation=self.interpolation, size=self.size, hint_temperature=hint_temperature)
        other.model_file = self.model_file
        return other

    def with_size(self, size) -> Colorizer:
        """The same runner (its compiled networks shared) and embedder, run at another short side (any-size models)."""
        other = Colorizer(self.runner, embedder=self.embedder, interpolation=self.interpolation, size=size)
        other.model_file = self.model_file
        return other

    # --- Conveniences: the clients above the engine, in one call ---

    def colorize_video(self, src, dst, temporal="flow", hints=None, batch_size=8, overwrite=False, progress=True,
                       reference=None, provenance=True):
        """Colorize a clip into an MP4 (same size, exact frame rate, audio copied): `inference.video.colorize_video`.

        Example:
            Colorizer.pretrained().colorize_video("film.mp4", "film_colour.mp4", hints=[(320, 140, "#c0392b", 48)])
        """
        return video.colorize_video(self, src, dst, temporal=temporal, hints=hints, batch_size=batch_size,
                                    overwrite=overwrite, progress=progress, reference=reference,
                                    provenance=provenance)

    def suggest_colours(self, image, x: float, y: float, k: int = suggest.SUGGESTIONS, hints=None) -> list:
        """The colours the model finds likely at pixel (x, y), most likely first: `inference.suggest.suggest_colours`.

        The modes of the classification head's distribution there, each shown
        at the pixel's own lightness, with its probability; `hints`: other
        points `(x, y, colour)` already given. A classification Keras model
        only (an exported file keeps no probabilities: one-line ValueError).

        Example:
            [(s.hex, s.probability) for s in colorizer.suggest_colours("car.jpg", 320, 140)]
        """
        return suggest.suggest_colours(self, image, x, y, k=k, hints=hints)


class ExportedModel(Colorizer):
    """An exported file (`.onnx` or `.tflite`, with its JSON) as a `Colorizer`: same photos in, same pixels out.

    Only the runner changes (`inference.exported.open_exported`: ONNX Runtime
    or the LiteRT interpreter instead of Keras): photos are read, resized for
    the network and joined back at full resolution by the engine, so a folder,
    a clip and the studio (automatic colours and hints) work with one. A file
    of any size gets each photo at its aspect ratio, short side the JSON's
    `short_side` (the shape `Colorizer` gives it); a file of one size gets
    every photo resized to that size. Suggested colours need the Keras model:
    the file keeps no probabilities.

    Args:
        path: the `.onnx` or `.tflite` file; its JSON (`FILE.json`) must be
            beside it.
        interpolation: "bicubic" (default) or "bilinear", to resize ab to
            the photo's size.
        threads: CPU threads of the runtime; None: the cores available.

    Raises:
        ModelLoadError: a missing or damaged file or JSON, a JSON describing
            another file, or a runtime that is not installed; one line.

    Example:
        rgb = ExportedModel("colorizer.onnx")("old_photo.jpg")
    """

    def __init__(self, path, interpolation="bicubic", threads=None):
        super().__init__(open_exported(path, threads=threads), interpolation=interpolation)

    # The file's own description, from its runner.
    path = property(lambda self: self.runner.path)
    record = property(lambda self: self.runner.record)
    runtime = property(lambda self: self.runner.runtime)
    shape = property(lambda self: self.runner.fixed_shape)  # None: any size (multiples of `multiple`)
    multiple = property(lambda self: self.runner.multiple)
    threads = property(lambda self: self.runner.threads)

    def __repr__(self) -> str:
        size = f"any, short side {self.size}" if self.shape is None else f"{self.shape[0]}x{self.shape[1]}"
        return f"ExportedModel({str(self.path)!r}, runtime={self.runtime!r}, size={size})"

    def with_decoding(self, decode="annealed_mean", temperature=None, hint_temperature=None):
        raise ValueError(f"{self.path}: an exported file's decoding was fixed when it was exported")

    def with_size(self, size):
        takes = f"photos at short side {self.size}" if self.shape is None else f"{self.shape[0]}x{self.shape[1]} inputs"
        raise ValueError(f"{self.path}: an exported file takes {takes} only; export another size")


def as_colorizer(model, **kwargs) -> Colorizer:
    """A `Colorizer` from a Colorizer (returned as is), a Keras model, a `Runner`, or a path (exported files too)."""
    if isinstance(model, Engine):
        return model
    if isinstance(model, (str, os.PathLike)):
        return Colorizer.from_path(model, **kwargs)
    return Colorizer(model, **kwargs)
