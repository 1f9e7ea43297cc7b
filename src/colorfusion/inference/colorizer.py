"""The colorization engine: one photo, an array or a batch at full resolution, with or without colour hints.

The model sees the photo resized as in training (RGB resized, then its L):
keeping its aspect ratio, short side `INFERENCE_SIZE` (each side a multiple
of 32), for a model that takes any size (a pretrained encoder), or squeezed
into the square of a model with a fixed input. The ab it predicts is resized
back to the photo's own size and joined with the photo's full-resolution L
(richzhang/colorization's recipe). The output therefore has exactly the
input's size and every detail of its lightness: only the colour comes from
the network.

    colorizer = Colorizer.pretrained()                     # the model that ships in the package
    colorizer = Colorizer.from_path("runs/exp1")          # or a run folder, or a .keras file
    rgb = colorizer("old_photo.jpg")                        # uint8 RGB, same size as the photo
    rgb = colorizer("car.jpg", hints=[(320, 140, "#c0392b")])  # this point is red (a hint model)

Models of either head work: `model.inference_model` decodes a
classification model (annealed mean by default), so nothing here asks which
head a model has. Folders of files: `inference.batch.colorize_folder`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

import cv2
import keras
import numpy as np

from colorfusion import color, io
from colorfusion import model as model_lib
from colorfusion.errors import HintError
from colorfusion.fastlab import as_pixels, lab_to_rgb_uint8, lightness
from colorfusion.hints import hint_map
from colorfusion.hints.layers import ChooseByHints, HintAffinityBlend, HintBlend, is_hint_layer, no_hints
from colorfusion.loading import load_embedder, load_model
from colorfusion.presets import PRETRAINED

INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}
# The short side a photo is colorized at by a model that takes any size (docs/experiments.md, "Colour
# at the right resolution": measured on the validation photos and a 12 MP photo).
INFERENCE_SIZE = 256
INPUT_MULTIPLE = 32  # the deepest stride of the pretrained encoders
MAX_ASPECT = 4  # a panorama's long side is capped at 4 short sides (memory)
MAX_COMPILED_SHAPES = 16  # input shapes a Colorizer keeps a compiled network for (least recently used dropped)


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

    def __init__(self, model, decode="annealed_mean", temperature=None, embedder=None,
                 interpolation="bicubic", size=None, hint_temperature=None):
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
        self.hint_temperature = model_lib.HINT_TEMPERATURE if hint_temperature is None else float(hint_temperature)
        if not self.hint_temperature > 0:
            raise ValueError(f"hint_temperature must be positive. Received: hint_temperature={hint_temperature!r}")
        self.inference = model_lib.inference_model(model, decode=decode, temperature=self.temperature,
                                                   hint_temperature=self.hint_temperature)
        # Compiled networks, one per input shape (`predict_ab`); `traces` counts the compilations.
        self._compiled = OrderedDict()
        self._compiled_lock = threading.Lock()
        self._automatic = None  # the inference network without its hint layers (`without_hint_layers`)
        self.traces = 0

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
        model = load_model(path)
        info = model_lib.model_info(model)
        if embedder is None and info["embedding_dim"]:
            embedder = load_embedder(path, info, weights=weights)
        return cls(model, decode=decode, temperature=temperature, embedder=embedder, **kwargs)

    @classmethod
    def pretrained(cls, decode="annealed_mean", temperature=None, **kwargs) -> Colorizer:
        """The model that ships in the package: colorize with no training and no network.

        Example:
            rgb = Colorizer.pretrained()("old_photo.jpg")
        """
        return cls.from_path(PRETRAINED, decode=decode, temperature=temperature, **kwargs)

    def with_decoding(self, decode="annealed_mean", temperature=None, hint_temperature=None) -> Colorizer:
        """The same model and embedder with another decoding of a classification head."""
        return Colorizer(self.model, decode=decode, temperature=temperature, embedder=self.embedder,
                         interpolation=self.interpolation, size=self.size, hint_temperature=hint_temperature)

    def with_size(self, size) -> Colorizer:
        """The same model, decoding and embedder, run at another short side (any-size models)."""
        return Colorizer(self.model, decode=self.decode, temperature=self.temperature, embedder=self.embedder,
                         interpolation=self.interpolation, size=size, hint_temperature=self.hint_temperature)

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
        lightnesses = [self.read_lightness(image) for image in images]
        maps = None
        if hints is not None and any(hints):
            maps = [self.hints_input(points or [], l_full, l_input.shape[:2])
                    for (l_full, l_input), points in zip(lightnesses, hints)]
        ab_small = self.predict_ab_many([l_input for _, l_input in lightnesses], maps)
        return [self.join_full_resolution(l_full, ab, return_lab) for (l_full, _), ab in zip(lightnesses, ab_small)]

    def colorize_video(self, src, dst, temporal="flow", hints=None, batch_size=8, overwrite=False, progress=True):
        """Colorize a clip into an MP4 (same size, exact frame rate, audio copied); `inference.video.colorize_video`.

        Example:
            Colorizer.pretrained().colorize_video("film.mp4", "film_colour.mp4", hints=[(320, 140, "#c0392b", 48)])
        """
        from colorfusion.inference.video import colorize_video

        return colorize_video(self, src, dst, temporal=temporal, hints=hints, batch_size=batch_size,
                              overwrite=overwrite, progress=progress)

    def hints_input(self, hints, l_full: np.ndarray, shape) -> np.ndarray:
        """The "hints" input (h, w, 3) for `hints` on a photo of lightness `l_full` (`hints.hint_map`).

        Raises:
            ValueError: the model takes no hints, or a hint is malformed or outside the photo.
        """
        if hints and not self.takes_hints:
            raise HintError("this model takes no colour hints (it was trained without hints=True); use the "
                             "shipped model or a run trained with hints")
        return hint_map(hints, l_full, shape)

    # The three steps, public so that folder mode can batch and report per file.

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the network input for a photo of `height` x `width`."""
        if self.image_size is not None:
            return self.image_size, self.image_size
        return network_shape(height, width, self.size)

    def read_lightness(self, image) -> tuple[np.ndarray, np.ndarray]:
        """(full-resolution L (H, W), L at the network's input size (h, w, 1)), float32 in [0, 100]."""
        pixels = as_pixels(image)
        height, width = self.input_shape(*pixels.shape[:2])
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
        l_small = np.asarray(l_small, np.float32)
        inputs = {"L": color.l_to_model(l_small)}
        if self.embedding_dim:
            inputs["embedding"] = np.asarray(self.embedder.embed_l(l_small), np.float32)
        if self.takes_hints and hint_maps is not None:
            hint_maps = np.asarray(hint_maps, np.float32)
            if hint_maps.any():  # an empty map goes to the network without hint layers: the same colours
                inputs["hints"] = hint_maps
        return color.ab_from_model(np.asarray(self.run_network(inputs)))

    @property
    def automatic_network(self):
        """The inference network for photos given no hints: a hint model's without its hint layers
        (`without_hint_layers`, built once), any other model's as it is."""
        if not self.takes_hints:
            return self.inference
        if self._automatic is None:
            self._automatic = without_hint_layers(self.inference)
        return self._automatic

    def run_network(self, inputs: dict):
        """The inference network's output (ab / 128) for model inputs (numpy, by input name), compiled per shape.

        Eager Keras calls cost about 7x a compiled one on this network; `predict_on_batch` would
        trace with the photo's sides unknown, which Keras' bilinear upsampling refuses. So each
        input shape (h, w; any batch size, so no padding of odd batches) gets its own
        `tf.function` with that signature, traced once (about a second) and kept (the
        `MAX_COMPILED_SHAPES` most recently used). Without "hints" a hint model runs as
        `without_hint_layers`: with an empty map its hint layers add exactly zero. Backends other
        than TensorFlow call the network eagerly.
        """
        network = self.automatic_network if self.takes_hints and "hints" not in inputs else self.inference
        if keras.backend.backend() != "tensorflow":
            feed = dict(inputs, hints=no_hints(inputs["L"])) if self.takes_hints and "hints" not in inputs else inputs
            return network(feed, training=False)
        key = tuple((name, value.shape[1:]) for name, value in sorted(inputs.items()))  # any batch size
        with self._compiled_lock:
            function = self._compiled.pop(key, None)
            if function is None:
                function = self._compile(network, dict(key))
            self._compiled[key] = function
            while len(self._compiled) > MAX_COMPILED_SHAPES:
                self._compiled.popitem(last=False)
        return function(*(inputs[name] for name in sorted(inputs)))

    def _compile(self, network, shapes: dict):
        import tensorflow as tf

        names = sorted(shapes)  # each input's shape without its batch axis
        specs = [tf.TensorSpec((None, *shapes[name]), tf.float32, name=name) for name in names]
        takes_hints = self.takes_hints

        def network_at_one_shape(*tensors):
            self.traces += 1  # Python runs here only while tracing
            feed = dict(zip(names, tensors))
            if takes_hints and "hints" not in feed:  # read by no layer of `network`: pruned from the graph
                feed["hints"] = tf.zeros(tf.concat([tf.shape(feed["L"])[:-1], [3]], axis=0))
            return network(feed, training=False)

        _drop_retracing_advice(tf.get_logger())
        return tf.function(network_at_one_shape, input_signature=specs)

    def join_full_resolution(self, l_full: np.ndarray, ab_small: np.ndarray, return_lab: bool = False):
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

    def suggest_colours(self, image, x: float, y: float, k: int = 8, hints=None) -> list:
        """The colours the model finds likely at pixel (x, y), most likely first (`inference.suggest`).

        The modes of the classification head's distribution there, each shown
        at the pixel's own lightness, with its probability; `hints`: other
        points `(x, y, colour)` already given. A classification model only.

        Example:
            [(s.hex, s.probability) for s in colorizer.suggest_colours("car.jpg", 320, 140)]
        """
        from colorfusion.inference.suggest import suggest_colours

        return suggest_colours(self, image, x, y, k=k, hints=hints)


class _PerShapeRetracing(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls ... triggered tf.function retracing" about `_compile`'s functions.

    TensorFlow counts traces per Python function, not per `tf.function`: the
    per-shape functions share one, so a folder of photos in five shapes reads
    to it as a function retraced five times, and it prints ten lines of
    advice to a library's developer. Each of them is traced exactly once by
    design (`Colorizer.traces` counts it); TensorFlow's other warnings pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and ".network_at_one_shape at " in message)


def _drop_retracing_advice(logger: logging.Logger) -> None:
    """Add `_PerShapeRetracing` to TensorFlow's logger, once per process."""
    if not any(isinstance(existing, _PerShapeRetracing) for existing in logger.filters):
        logger.addFilter(_PerShapeRetracing())


class _FirstInput(keras.layers.Layer):
    """Passes its first input through: a hint layer's stand-in when no hints are given."""

    def call(self, inputs):
        return inputs[0]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


def without_hint_layers(network):
    """The same network, weights shared, with its hint layers skipped: for an empty hints map.

    With no hints, each hint convolution adds zero to the layer it steers
    (`Add` "*_plus_hints") and `HintBlend`'s gate is zero, so passing the
    steered layer's own output through gives exactly the same colours (and
    `ChooseByHints` the colours decoded at the automatic temperature); the
    hint branch (pooling, convolutions, affinity, gate) is left unread, and a
    compiled call or an exported file does not compute it (about half of the
    shipped model's compiled call on a CPU, `bench_inference.py`). The model
    keeps its "hints" input, which nothing reads.
    """
    def clone(layer):
        if isinstance(layer, (HintBlend, HintAffinityBlend, ChooseByHints)) or (
                isinstance(layer, keras.layers.Add) and is_hint_layer(layer.name)):
            return _FirstInput(name=f"{layer.name}_skipped", dtype=layer.dtype_policy)
        return layer  # the same layer: shared weights

    return keras.models.clone_model(network, clone_function=clone)


def as_colorizer(model, **kwargs) -> Colorizer:
    """A `Colorizer` from a Colorizer (returned as is), a Keras model or a path."""
    if isinstance(model, Colorizer):
        return model
    if isinstance(model, (str, os.PathLike)):
        return Colorizer.from_path(model, **kwargs)
    return Colorizer(model, **kwargs)
