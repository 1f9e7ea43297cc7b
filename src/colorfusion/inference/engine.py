"""The engine: one pipeline from a photo to its colours, written once, with the hooks its clients need.

    read -> L at full size, and L of the photo resized for the network (RGB first, then its L, as in training)
         -> runner (`inference.runners`: compiled Keras, ONNX Runtime, LiteRT), with or without a hints map
         -> ab at the network's size -> [a client's step on it]
         -> ab at full size, joined with the full-size L -> RGB

The network sees the photo resized as in training: keeping its aspect
ratio, short side `size` (each side a multiple of 32), for a runner that
takes any size, or squeezed into the one size of a runner that takes one.
The ab it predicts is resized back to the photo's own size and joined with
the photo's full-resolution L (richzhang/colorization's recipe), so the
output has exactly the input's size and every detail of its lightness: only
the colour comes from the network.

`Engine` holds a runner and how a photo reaches it; its steps are methods
(`read_lightness`, `hints_input`, `predict_ab_many`, `join_full_resolution`),
and `colorize_iter` runs them in that order, for every client and nowhere
else:

- a list of photos: `Engine.colorize_many`, `engine(photo)`;
- a stream, a folder's files or a clip's frames: `colorize_stream`, in
  batches (one runner call a shape), an item's failure its own with
  `errors="keep"`, results one at a time, so that memory holds one
  full-resolution RGB;
- video's steadying: `adjust_ab(l_small, ab)`, called on each item in
  order, on the ab at the network's size, where the colour lives;
- the studio: a `Lightness` item skips the read (a photo held between
  clicks), and `HeldPhoto` keeps what the runner computes once for a photo
  (`Runner.session`) and gives the head's probabilities for suggestions;
- confidence: `confidence(photo)`, how sure the model is of each pixel's
  colour, from the head's probabilities (`inference.confidence`);
- evaluation: each `Colorized` carries the ab at the network's size beside
  the RGB, and `rgb=False` skips the full-resolution join;
- a reference photo (`inference.reference`): `reference=` adds, before the
  hints map, the points matched in it to each item's hints (the person's
  win), in the encoder's features (`Engine.features`).

The scaling into and out of the network's units lives here and nowhere else
(`network_inputs`, `ab_from_network`): a runner sees L / 50 - 1 and gives
ab / 128. This module needs no Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from colorfusion import color, io
from colorfusion.errors import HintError
from colorfusion.fastlab import as_pixels, lab_to_rgb_uint8, lightness_pair, small_lightness
from colorfusion.hints import hint_map
from colorfusion.inference.confidence import at_size, confidence_grid, require_probabilities
from colorfusion.inference.reference import as_reference

INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}
# The short side a photo is colorized at by a model that takes any size (docs/experiments.md, "Colour
# at the right resolution": measured on the validation photos and a 12 MP photo).
INFERENCE_SIZE = 256
INPUT_MULTIPLE = 32  # the deepest stride of the pretrained encoders
MAX_ASPECT = 4  # a panorama's long side is capped at 4 short sides (memory)
ERRORS = ("raise", "keep")  # what `colorize_iter` does with an item's failure


def network_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w): the photo's aspect ratio at `short_side`, each side a multiple of 32.

    Example:
        network_shape(3000, 4000, 256) == (256, 352)
    """
    short = max(INPUT_MULTIPLE, round(short_side / INPUT_MULTIPLE) * INPUT_MULTIPLE)
    ratio = min(max(height, width) / max(1, min(height, width)), MAX_ASPECT)
    long = max(short, round(short * ratio / INPUT_MULTIPLE) * INPUT_MULTIPLE)
    return (short, long) if height <= width else (long, short)


class Lightness(NamedTuple):
    """A photo as the pipeline reads it: L (H, W) at full size, and L (h, w, 1) at the network's size, in [0, 100].

    `full` is None when only the network's L was read (`read_lightness(image, full=False)`).
    """

    full: np.ndarray | None
    small: np.ndarray


@dataclass
class Colorized:
    """One item through the pipeline: its lightness, the ab the network gave, the RGB, or what failed."""

    lightness: Lightness | None = None
    ab: np.ndarray | None = None  # (h, w, 2) Lab units at the network's size, after `adjust_ab`
    rgb: np.ndarray | None = None  # uint8 (H, W, 3) at full size
    lab: np.ndarray | None = None  # float32 (H, W, 3), with `return_lab`
    error: BaseException | None = None  # with errors="keep": why this item has no result
    stage: str | None = None  # where it failed: "read" (reading, hints) or "network"


class Engine:
    """A runner and the way of a photo to it and back: the pipeline's steps, and the pipeline.

    Args:
        runner: an `inference.runners.Runner` (a Keras model's, an exported
            file's).
        size: for a runner that takes any size, the short side a photo is
            resized to for the network, keeping its aspect ratio (each side a
            multiple of 32). None: the runner's own (an exported file's), else
            `INFERENCE_SIZE`.
        interpolation: "bicubic" (default) or "bilinear", to resize ab to the
            photo's size.
        embedder: an `embeddings.Embedder`; required exactly when the runner
            has an "embedding" input.

    The runner's description is read once here: `takes_hints`, `image_size`
    (the side of a fixed square input, else None), `embedding_dim`.
    """

    def __init__(self, runner, size=None, interpolation="bicubic", embedder=None):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}. "
                             f"Received: interpolation={interpolation!r}")
        size = (runner.short_side or INFERENCE_SIZE) if size is None else size
        if not isinstance(size, int) or size < INPUT_MULTIPLE:
            raise ValueError(f"size must be an integer of at least {INPUT_MULTIPLE}. Received: size={size!r}")
        self.runner = runner
        self.size = size
        self.interpolation = interpolation
        self.embedder = embedder
        self.takes_hints = bool(runner.takes_hints)
        fixed = runner.fixed_shape
        self.image_size = fixed[0] if fixed is not None and fixed[0] == fixed[1] else None
        self.embedding_dim = runner.embedding_dim
        if self.embedding_dim and embedder is None:
            raise ValueError("This model has a semantic input: pass embedder=Embedder(...) with the backbone "
                             "it was trained with (Colorizer.from_path reads it from the run folder).")

    # === The pipeline ===

    def __call__(self, image, return_lab: bool = False, hints=None, reference=None):
        """Colorize one image (path, PIL image or array) at its full resolution.

        Args:
            hints: for a model that takes hints, points `(x, y, colour)` in
                the photo's pixels whose colour the user knows, the colour
                "#rrggbb" or (r, g, b); e.g. `[(320, 140, "#c0392b")]`.
            reference: a colour photo (path, PIL image, array, or a
                `reference.Reference`) whose colours to take where it shows
                the same things (`inference.reference`); `hints` win.
        """
        return self.colorize_many([image], return_lab=return_lab, hints=None if hints is None else [hints],
                                  reference=reference)[0]

    def colorize_many(self, images, return_lab: bool = False, hints=None, reference=None) -> list:
        """Colorize several images (any sizes) with one model call a shape; `hints`: one list (or None) per image.

        `reference`: one colour photo for all (`__call__`), read once.
        """
        if hints is not None and len(hints) != len(images):
            raise ValueError(f"hints must hold one list per image ({len(images)}). Received: {len(hints)} lists")
        return [(done.rgb, done.lab) if return_lab else done.rgb
                for done in colorize_iter(self, images, hints, return_lab=return_lab,
                                          reference=as_reference(self, reference))]

    def confidence(self, image, hints=None) -> np.ndarray:
        """float32 (H, W) in [0, 1], at the photo's size: how sure the model is of each pixel's colour (1 = sure).

        The probability the classification head puts near the colour it
        shows (`inference.confidence`); with `hints`, of the colours those
        hints give. One more run of the network (a photo held: of its head).

        Raises:
            UsageError: the model gives no colour probabilities (a regression
                model, an exported file): the runner's one line says why.
        """
        require_probabilities(self.runner)
        held = image if isinstance(image, HeldPhoto) else self.hold(image)
        return held.confidence(hints)

    def hold(self, image) -> HeldPhoto:
        """`image` read once and held for runs with one hints map after another (the studio's clicks)."""
        return HeldPhoto(self, image)

    # === The steps, in the pipeline's order ===

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the network input for a photo of `height` x `width`."""
        fixed = self.runner.fixed_shape
        return tuple(fixed) if fixed is not None else network_shape(height, width, self.size)

    def read_lightness(self, image, full: bool = True) -> Lightness:
        """The photo's `Lightness`: L at full size and at the network's input size, float32 in [0, 100].

        The photo is decoded once; its L and the small photo's are computed
        together, on every core (`fastlab.lightness_pair`). `full=False` reads
        the network's L alone (a pass that only tracks motion).
        """
        pixels = as_pixels(image)
        height, width = self.input_shape(*pixels.shape[:2])
        if not full:
            return Lightness(None, small_lightness(pixels, width, height)[..., None])
        l_full, l_small = lightness_pair(pixels, width, height)
        return Lightness(l_full, l_small[..., None])

    def hints_input(self, hints, l_full: np.ndarray, shape) -> np.ndarray:
        """The "hints" input (h, w, 3) for `hints` on a photo of lightness `l_full` (`hints.hint_map`).

        Raises:
            HintError: the runner takes no hints, or a hint is malformed or outside the photo.
        """
        if hints and not self.takes_hints:
            raise HintError(self.runner.hints_refusal)
        return hint_map(hints, l_full, shape)

    def features(self, l_small: np.ndarray) -> dict:
        """{stride: (N, h/s, w/s, C)}: the encoder's features of L (N, h, w, 1) in [0, 100] (`Runner.features`)."""
        return self.runner.features(self.network_inputs(np.asarray(l_small, np.float32)))

    def predict_ab_many(self, l_smalls, hint_maps=None) -> list[np.ndarray]:
        """`predict_ab` of L maps of several shapes: one runner call per shape, results in input order.

        `hint_maps`: None, or one "hints" input (h, w, 3) or None per L map.
        """
        by_shape = {}
        for index, l_small in enumerate(l_smalls):
            by_shape.setdefault(np.shape(l_small), []).append(index)
        results = [None] * len(l_smalls)
        for indices in by_shape.values():
            maps = None
            if hint_maps is not None and any(hint_maps[i] is not None for i in indices):
                maps = np.stack([np.zeros(np.shape(l_smalls[i])[:2] + (3,), np.float32) if hint_maps[i] is None
                                 else hint_maps[i] for i in indices])
            for index, ab in zip(indices, self.predict_ab(np.stack([l_smalls[i] for i in indices]), maps)):
                results[index] = ab
        return results

    def predict_ab(self, l_small: np.ndarray, hint_maps=None) -> np.ndarray:
        """ab in Lab units (N, h, w, 2) for a batch of L (N, h, w, 1) in [0, 100].

        Args:
            hint_maps: for a model that takes hints, its "hints" input
                (N, h, w, 3) (`hint_map`); None, or all zeros: no hints (the
                runner then runs without its hint layers: the same colours).
        """
        l_small = np.asarray(l_small, np.float32)
        inputs = self.network_inputs(l_small)
        if self.takes_hints and hint_maps is not None:
            hint_maps = np.asarray(hint_maps, np.float32)
            if hint_maps.any():
                inputs["hints"] = hint_maps
        return self.ab_from_network(self.run_network(inputs))

    def network_inputs(self, l_small: np.ndarray) -> dict:
        """The runner's inputs for L (N, h, w, 1) in [0, 100]: "L" scaled (`color.l_to_model`), any "embedding"."""
        inputs = {"L": color.l_to_model(l_small)}
        if self.embedding_dim:
            inputs["embedding"] = np.asarray(self.embedder.embed_l(l_small), np.float32)
        return inputs

    def run_network(self, inputs: dict) -> np.ndarray:
        """The runner's output, ab / 128, for its inputs in its own units (`Runner.forward`)."""
        return self.runner.forward(inputs)

    @staticmethod
    def ab_from_network(ab_scaled) -> np.ndarray:
        """The runner's ab / 128 in Lab units (`color.ab_from_model`)."""
        return color.ab_from_model(np.asarray(ab_scaled))

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


# === The pipeline, for every client ===


def colorize_iter(engine, items, hints=None, *, hint_maps=None, read=None, adjust_ab=None, rgb: bool = True,
                  return_lab: bool = False, errors: str = "raise", reference=None):
    """Each item through the pipeline, in order, one `Colorized` at a time; one runner call a shape for all.

    Args:
        engine: an `Engine` (or any object with its four steps
            `read_lightness`, `hints_input`, `predict_ab_many`,
            `join_full_resolution` and `takes_hints`: a test's stand-in).
        items: photos (paths, PIL images, arrays), anything `read` turns
            into one, or `Lightness` read before (not read again).
        hints: one list of points `(x, y, colour)` (or None) per item.
        hint_maps: one ready "hints" input (h, w, 3) (or None) per item
            (simulated points); it wins over `hints`.
        read: item -> image (e.g. `io.read_rgb` for a path); None: the item is one.
        adjust_ab: `adjust_ab(l_small, ab) -> ab`, called on each item in
            order on the network's ab before the join (video's steadying).
        rgb: join at full resolution (False: the ab at the network's size only).
        return_lab: keep the joined Lab too (`Colorized.lab`).
        errors: "raise", or "keep": an item that cannot be read (or whose
            hints are bad) and, when the runner fails, the items it held come
            out with `error` and `stage` set; the others go on.
        reference: a `reference.Reference`: its points matched on each item
            are added after the item's own hints (which win), before the map.

    Yields:
        `Colorized`, one per item, in order. Reading and the runner call
        happen at the first; each full-resolution join when its item is asked
        for, so a consumer that writes each RGB and drops it holds one.
    """
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {ERRORS}. Received: errors={errors!r}")
    items = list(items)
    count = len(items)
    hints = [None] * count if hints is None else list(hints)
    hint_maps = [None] * count if hint_maps is None else list(hint_maps)
    if len(hints) != count or len(hint_maps) != count:
        raise ValueError(f"hints and hint_maps must hold one entry per item ({count}). "
                         f"Received: {len(hints)} and {len(hint_maps)}")
    results = [Colorized() for _ in items]
    maps = [None] * count
    for index, item in enumerate(items):
        done = results[index]
        try:
            if isinstance(item, Lightness):
                done.lightness = item
            else:
                done.lightness = Lightness(*engine.read_lightness(item if read is None else read(item)))
            given = hints[index]
            if reference is not None and hint_maps[index] is None:  # the reference's points, after the person's
                given = reference.hints_for(engine, done.lightness, given)
            if hint_maps[index] is not None:
                maps[index] = hint_maps[index]
            elif given:
                maps[index] = engine.hints_input(list(given), done.lightness.full, done.lightness.small.shape[:2])
        except Exception as e:  # kept for the item when asked to; raised otherwise
            if errors == "raise":
                raise
            done.error, done.stage = e, "read"
    ready = [index for index in range(count) if results[index].error is None]
    predicted = {}
    if ready:
        given = [maps[index] for index in ready]
        try:
            found = engine.predict_ab_many([results[index].lightness.small for index in ready],
                                           given if any(m is not None for m in given) else None)
            predicted = dict(zip(ready, found))
        except Exception as e:
            if errors == "raise":
                raise
            for index in ready:
                results[index].error, results[index].stage = e, "network"
    for index in range(count):
        done, results[index] = results[index], None  # the consumer holds it now, and may drop it
        if done.error is None:
            ab = predicted.pop(index)
            done.ab = ab if adjust_ab is None else adjust_ab(done.lightness.small, ab)
            if rgb and return_lab:
                done.rgb, done.lab = engine.join_full_resolution(done.lightness.full, done.ab, return_lab=True)
            elif rgb:
                done.rgb = engine.join_full_resolution(done.lightness.full, done.ab)
        yield done


def colorize_stream(engine, sources, batch_size: int, *, read=None, hints_of=None, adjust_ab=None,
                    errors: str = "raise", reference=None):
    """`colorize_iter` over an iterable of any length, `batch_size` items at a time: (source, `Colorized`) pairs.

    Args:
        sources: items (frames of a clip, files of a folder), pulled as
            needed: memory holds one batch.
        hints_of: source -> its points, or None.
        read, adjust_ab, errors, reference: as `colorize_iter`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    batch = []
    for source in sources:
        batch.append(source)
        if len(batch) == batch_size:
            yield from _one_batch(engine, batch, read, hints_of, adjust_ab, errors, reference)
            batch = []
    if batch:
        yield from _one_batch(engine, batch, read, hints_of, adjust_ab, errors, reference)


def _one_batch(engine, batch, read, hints_of, adjust_ab, errors, reference):
    hints = None if hints_of is None else [hints_of(source) for source in batch]
    yield from zip(batch, colorize_iter(engine, batch, hints, read=read, adjust_ab=adjust_ab, errors=errors,
                                        reference=reference))


# === A photo held between runs ===


class HeldPhoto:
    """One photo read once and held between runs of the network (the studio's next click).

    It keeps the photo's `lightness` and the runner's session (`Runner.session`:
    for a Keras hint model, what the encoder makes of the photo), so that a new
    hints map runs only what the hints change.

    Example:
        held = engine.hold(io.read_rgb("car.jpg"))
        probs, ab = held.run(engine.hints_input(points, held.lightness.full, held.lightness.small.shape[:2]))
        rgb = held.colorize(points)  # = engine("car.jpg", hints=points), pixel for pixel
    """

    def __init__(self, engine: Engine, image):
        self.engine = engine
        self.lightness = image if isinstance(image, Lightness) else engine.read_lightness(image)
        self._session = None

    def run(self, hint_map: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(probabilities (h/4, w/4, Q) or None, ab (h, w, 2) in Lab units) of the photo with this hints map."""
        if self._session is None:
            self._session = self.engine.runner.session(self.engine.network_inputs(self.lightness.small[None]))
        probs, ab = self._session.forward(None if hint_map is None else np.asarray(hint_map, np.float32)[None])
        return (None if probs is None else np.asarray(probs)[0]), self.engine.ab_from_network(ab)[0]

    def confidence(self, hints=None) -> np.ndarray:
        """`Engine.confidence` of the held photo with `hints`: float32 (H, W) in [0, 1] at its full size."""
        runner = self.engine.runner
        require_probabilities(runner)
        l_full, l_small = self.lightness
        hint_map = self.engine.hints_input(list(hints), l_full, l_small.shape[:2]) if hints else None
        probs, ab = self.run(hint_map)
        return at_size(confidence_grid(probs, runner.centers, ab), *l_full.shape)

    def colorize(self, hints=None) -> np.ndarray:
        """uint8 RGB (H, W, 3) at full resolution with `hints`: the pipeline itself on the held lightness."""
        return next(colorize_iter(self.engine, [self.lightness], [list(hints) if hints else None])).rgb

    @property
    def nbytes(self) -> int:
        """Memory it holds, roughly (what a bounded cache counts)."""
        held = sum(array.nbytes for array in self.lightness if array is not None)
        return int(held + (self._session.nbytes if self._session is not None else 0))
