"""Colours to suggest at a point, the colours that exist at a lightness, and a photo being fixed with hints.

What a person needs to give a hint well, after ideepcolor (Zhang et al.,
"Real-Time User-Guided Image Colorization with Learned Deep Priors", 2017):

- `suggest_colours(colorizer, image, x, y)`: the colours the model itself
  finds likely at a point: the modes of the classification head's
  distribution over the ab bins there (the model's "ab_probs"), each shown at
  that point's own lightness, most likely first, with its probability;
- `gamut_plane(lightness)`: the ab plane at a lightness, the colours a pixel
  of that lightness can take (ideepcolor's gamut panel), as an RGBA image;
- `HintSession`: one photo being fixed: its lightness at full, network and
  display size kept between edits, the part of the network that sees only
  the photo (the encoder) run once, so that each new set of hints costs only
  the part that sees them (`HintNetwork`); `full_resolution(hints)` is the
  same code path as `colorfusion colorize PHOTO --hints FILE`, pixel for pixel.

The studio's server translates HTTP into these calls; notebooks call them
directly:

    colorizer = Colorizer.pretrained()
    for s in suggest_colours(colorizer, "car.jpg", 320, 140):
        print(s.hex, f"{s.probability:.0%}")
    session = HintSession(colorizer, io.read_rgb("car.jpg"))
    preview = session.result([(320, 140, "#c0392b")])          # display size, fast
    rgb = session.full_resolution([(320, 140, "#c0392b")])     # = colorize --hints, full size
"""

from __future__ import annotations

import functools
import weakref
from typing import NamedTuple

import keras
import numpy as np

from colorfusion import color, io
from colorfusion import model as model_lib
from colorfusion.fastlab import as_pixels, lab_to_rgb_uint8, lightness

SUGGESTIONS = 8  # colours suggested at a point
MODE_RADIUS = 20.0  # ab units: two suggested colours are at least this far apart (bins lie on a grid of 10)
MIN_PROBABILITY = 0.005  # a mode with less mass than this is not worth a swatch
DISPLAY_SIDE = 1024  # long side of what a page shows (the full resolution is for the download)
GAMUT_SIZE = 128  # pixels of the ab plane's side in `gamut_plane`
GAMUT_EXTENT = 110.0  # the plane shows a and b in [-110, 110]: every sRGB colour's ab
_GAMUT_TOLERANCE = 1.5  # ab units a round trip through sRGB may move an in-gamut colour


class Suggestion(NamedTuple):
    """A colour the model finds likely at a point."""

    hex: str  # "#rrggbb": the colour at the point's lightness, what a hint would give
    rgb: tuple  # (r, g, b), 0-255
    ab: tuple  # (a, b) of the bin, Lab units
    probability: float  # the distribution's mass around this mode


# === Modes of a distribution over ab bins ===


def colour_modes(probs, centers, k: int = SUGGESTIONS, radius: float = MODE_RADIUS,
                 min_probability: float = MIN_PROBABILITY) -> list[tuple[np.ndarray, float]]:
    """The `k` most likely distinct colours of a distribution over ab bins, most likely first.

    Bins are taken greedily from the most probable, skipping any closer than
    `radius` to one already taken (the peaks of the distribution, not the
    shoulders of one peak); every bin then counts towards its nearest taken
    bin, and each mode's probability is that mass.

    Args:
        probs: (Q,) probabilities over the bins.
        centers: (Q, 2) bin centres in ab units (`ABBins.centers`).

    Returns:
        [(ab (2,), probability), ...], at most `k`, by probability.
    """
    probs = np.asarray(probs, np.float64).reshape(-1)
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    if len(probs) != len(centers):
        raise ValueError(f"probs and centers must have one entry per bin. Received: {len(probs)} and {len(centers)}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer. Received: k={k!r}")
    taken = []
    for index in np.argsort(-probs, kind="stable"):
        if len(taken) == k:
            break
        if all(np.hypot(*(centers[index] - centers[t])) >= radius for t in taken):
            taken.append(int(index))
    nearest = np.argmin(((centers[:, None] - centers[taken][None]) ** 2).sum(-1), axis=1)
    mass = np.bincount(nearest, weights=probs, minlength=len(taken)) / max(probs.sum(), 1e-12)
    modes = sorted(zip(taken, mass), key=lambda item: -item[1])
    kept = [(centers[index].astype(np.float32), float(p)) for index, p in modes if p >= min_probability]
    return kept or [(centers[modes[0][0]].astype(np.float32), float(modes[0][1]))]


def _as_suggestions(modes, l_point: float) -> list[Suggestion]:
    lab = np.array([[[l_point, *ab] for ab, _ in modes]], np.float32)
    rgb = color.lab_to_rgb(lab, np.uint8)[0]
    found = []
    for value, (ab, p) in zip(rgb, modes):
        r, g, b = (int(v) for v in value)
        found.append(Suggestion(f"#{r:02x}{g:02x}{b:02x}", (r, g, b), (round(float(ab[0]), 1), round(float(ab[1]), 1)),
                                round(p, 4)))
    return found


def lightness_at(l_full: np.ndarray, x: float, y: float) -> float:
    """The mean L of the 3 x 3 pixels around (x, y), as a hint there reads it (`hints.hint_map`)."""
    height, width = l_full.shape
    _check_point(x, y, width, height)
    row, col = int(y), int(x)
    return float(l_full[max(0, row - 1):row + 2, max(0, col - 1):col + 2].mean())


def _check_point(x, y, width, height) -> None:
    from colorfusion.errors import HintError

    if not (isinstance(x, (int, float, np.number)) and isinstance(y, (int, float, np.number))):
        raise HintError(f"point ({x!r}, {y!r}): x and y must be numbers (pixels of the photo)")
    if not (0 <= x < width and 0 <= y < height):
        raise HintError(f"point ({x:g}, {y:g}) is outside the photo ({width} x {height} pixels)")


def _cell(x, y, width, height, grid_shape) -> tuple[int, int]:
    """The cell of a (rows, cols) grid over the photo that holds pixel (x, y)."""
    rows, cols = grid_shape
    return min(rows - 1, int((y + 0.5) * rows / height)), min(cols - 1, int((x + 0.5) * cols / width))


# === The displayable ab plane ===


@functools.lru_cache(maxsize=128)
def _gamut_plane(level: float, size: int, extent: float) -> np.ndarray:
    steps = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 * extent - extent
    a, b = np.meshgrid(steps, steps[::-1])  # a to the right, b up
    lab = np.stack([np.full_like(a, level), a, b], -1)
    rgb = color.lab_to_rgb(lab)  # clipped into [0, 1]
    back = color.rgb_to_lab(rgb)
    inside = np.hypot(back[..., 1] - a, back[..., 2] - b) <= _GAMUT_TOLERANCE
    out = np.zeros((size, size, 4), np.uint8)
    out[..., :3] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = np.where(inside, 255, 0)
    out.setflags(write=False)
    return out


def gamut_plane(level: float, size: int = GAMUT_SIZE, extent: float = GAMUT_EXTENT) -> np.ndarray:
    """The ab plane at lightness `level`: RGBA uint8 (size, size, 4), a to the right, b up.

    A pixel is the colour (level, a, b) where that is an sRGB colour (alpha
    255) and transparent where it is not: the colours a hint at a point of
    that lightness can give. Pixel (row, col) is a = (col + 0.5) / size *
    2 extent - extent, b = extent - (row + 0.5) / size * 2 extent.
    Read-only (cached by level, rounded to 0.5).
    """
    if not isinstance(size, int) or not 8 <= size <= 1024:
        raise ValueError(f"size must be an integer in [8, 1024]. Received: size={size!r}")
    level = float(np.clip(round(float(level) * 2) / 2, 0.0, color.L_MAX))
    return _gamut_plane(level, size, float(extent))


# === The network cut in two at the hints ===


class HintNetwork:
    """A hint model split into what sees only the photo and what sees the hints.

    The encoder (and anything else fed only by the L and embedding inputs)
    gives the same features whatever the hints, so a photo being fixed runs it
    once (`features`) and each edit runs the rest (`run`), which returns the
    decoded ab (as `Colorizer.predict_ab`) with, for a classification model,
    the head's bin probabilities (`model.PROBS_NAME`, for `suggest_colours`).

    Built with `hint_network(colorizer)` (one per colorizer, cached). A model
    whose graph cannot be cut (or without hints) runs whole in `run`.
    """

    def __init__(self, colorizer):
        info = model_lib.model_info(colorizer.model)
        self.colorizer = colorizer
        model = colorizer.model
        decoded = model_lib.inference_model(model, decode=colorizer.decode, temperature=colorizer.temperature,
                                            hint_temperature=colorizer.hint_temperature)
        outputs = [decoded.outputs[0]]
        self.centers = None  # the bins of the probabilities; None: a model without them (regression, decoded)
        if info["head"] == "classification" and not info["decoded"]:
            self.centers = np.asarray(info["bins"].centers, np.float32)
            outputs.append(model.get_layer(model_lib.PROBS_NAME).output)
        self._whole = _call_compiled(keras.Model(model.inputs, outputs, name="studio_network"))
        self._fixed_names = [t.name for t in model.inputs if t.name != model_lib.HINTS_NAME]
        self._encoder = self._head = None
        if info["hints"]:
            try:
                self._encoder, self._head, self._head_fixed = _cut_at_hints(model, outputs)
            except Exception:  # noqa: BLE001 - a graph that cannot be cut still runs whole
                self._encoder = self._head = None

    @property
    def split(self) -> bool:
        """Whether the photo's features are reused between edits (False: the whole network runs each time)."""
        return self._head is not None

    def fixed_inputs(self, l_input: np.ndarray) -> dict:
        """The inputs that do not change with the hints: L (1, h, w, 1) scaled, the embedding if any."""
        l_input = np.asarray(l_input, np.float32)[None]
        inputs = {"L": color.l_to_model(l_input)}
        if self.colorizer.embedding_dim:
            inputs["embedding"] = np.asarray(self.colorizer.embedder.embed_l(l_input), np.float32)
        return inputs

    def features(self, l_input: np.ndarray):
        """What the hints do not change, for one photo's L (h, w, 1) at the network's size."""
        inputs = self.fixed_inputs(l_input)
        if not self.split:
            return {"inputs": inputs, "features": []}
        found = self._encoder([inputs[name] for name in self._fixed_names])
        found = list(found) if isinstance(found, (list, tuple)) else [found]  # one feature map: not a list
        return {"inputs": [inputs[name] for name in self._head_fixed], "features": found}

    def run(self, features, hint_map) -> tuple[np.ndarray | None, np.ndarray]:
        """(probabilities (h/4, w/4, Q) or None, ab (h, w, 2) in Lab units) for one photo's features and hints."""
        if self.split:
            hints = np.asarray(hint_map, np.float32)[None]
            found = self._head([*features["inputs"], *features["features"], hints])
        else:
            inputs = dict(features["inputs"])
            if self.colorizer.takes_hints:
                inputs["hints"] = np.asarray(hint_map, np.float32)[None]
            found = self._whole([inputs[t] for t in self._input_order()])
        found = found if isinstance(found, (list, tuple)) else [found]
        probs = np.asarray(found[1])[0] if len(found) > 1 else None
        return probs, color.ab_from_model(np.asarray(found[0])[0])

    def _input_order(self):
        return [t.name for t in self.colorizer.model.inputs]


def _cut_at_hints(model, outputs):
    """(encoder, head, names of the fixed inputs the head takes): `model` cut where the hints come in."""
    hints = next(t for t in model.inputs if t.name == model_lib.HINTS_NAME)
    fixed = [t for t in model.inputs if t is not hints]
    seen = {id(hints)}
    crossing = {}  # tensors fed only by fixed inputs that a hint-dependent operation reads
    for operation in model.operations:
        for node in operation._inbound_nodes:
            inputs = list(node.input_tensors)
            if any(id(t) in seen for t in inputs):
                seen.update(id(t) for t in node.output_tensors)
                crossing.update((id(t), t) for t in inputs if id(t) not in seen)
    head_fixed = [t for t in fixed if id(t) in crossing]
    cut = [t for key, t in crossing.items() if all(key != id(f) for f in fixed)]
    encoder = keras.Model(fixed, cut, name="studio_encoder")
    head = keras.Model([*head_fixed, *cut, hints], outputs, name="studio_head")
    return _call_compiled(encoder), _call_compiled(head), [t.name for t in head_fixed]


def _call_compiled(network):
    """`network(inputs)` compiled by the backend (one trace per input shape); eager elsewhere."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        function = tf.function(lambda inputs: network(inputs, training=False))
        return lambda inputs: _numpy(function([tf.convert_to_tensor(v) for v in inputs]))
    return lambda inputs: _numpy(network(list(inputs), training=False))


def _numpy(outputs):
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(keras.ops.convert_to_numpy(o)) for o in outputs]
    return np.asarray(keras.ops.convert_to_numpy(outputs))


_NETWORKS = weakref.WeakKeyDictionary()


def hint_network(colorizer) -> HintNetwork:
    """The `HintNetwork` of a colorizer, built once."""
    network = _NETWORKS.get(colorizer)
    if network is None:
        network = _NETWORKS[colorizer] = HintNetwork(colorizer)
    return network


# === One photo being fixed ===


def display_shape(height: int, width: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(h, w) of a photo shown with its long side at most `side` pixels."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


class HintSession:
    """One photo being fixed with hints: what does not change between edits is computed once.

    Args:
        colorizer: a `Colorizer`; hints need a model that takes them,
            suggestions one with a classification head (the shipped one has both).
        image: the photo (a path, a PIL image or an array, as `Colorizer`);
            `io.read_rgb(path)` pixels give `colorize PHOTO`'s exact result.
        display_side: long side of `result`, `gray` and `original`.

    Example:
        session = HintSession(Colorizer.pretrained(), io.read_rgb("car.jpg"))
        session.suggest(320, 140)[0].hex                  # the likeliest colour there
        preview = session.result([(320, 140, "#c0392b")])  # display size
        rgb = session.full_resolution([(320, 140, "#c0392b")])
    """

    def __init__(self, colorizer, image, display_side: int = DISPLAY_SIDE):
        self.colorizer = colorizer
        pixels = as_pixels(image)
        self.l_full, self.l_input = colorizer.read_lightness(pixels)
        self.height, self.width = self.l_full.shape
        dh, dw = display_shape(self.height, self.width, display_side)
        shown = pixels if (dh, dw) == (self.height, self.width) else io.resize(pixels, dw, dh)
        self.l_display = lightness(shown)
        if shown.dtype != np.uint8:
            shown = np.clip(shown * 255.0 + 0.5, 0, 255).astype(np.uint8)
        self.original = np.ascontiguousarray(np.repeat(shown[..., None], 3, -1) if shown.ndim == 2 else shown)
        self.gray = lab_to_rgb_uint8(self.l_display, np.zeros((dh, dw, 2), np.float32))
        # A colour photo (shown as B&W, with its original to compare): any pixel visibly away from gray.
        self.is_colour = bool(np.abs(self.original.astype(np.int16) - self.gray).max() > 12)
        self._network = None
        self._features = None
        self._last = None  # (hints key, probabilities, ab) of the latest run

    @property
    def nbytes(self) -> int:
        """Memory held for this photo, roughly (what a bounded cache counts)."""
        held = [self.l_full, self.l_input, self.l_display, self.original, self.gray]
        if self._features is not None:
            inputs = self._features["inputs"]
            held += [*self._features["features"], *(inputs.values() if isinstance(inputs, dict) else inputs)]
        if self._last is not None:
            held += list(self._last[1:])
        return int(sum(np.asarray(a).nbytes for a in held))

    def _hint_map(self, hints):
        return self.colorizer.hints_input(list(hints or []), self.l_full, self.l_input.shape[:2])

    def _run(self, hints):
        key = _hints_key(hints)
        if self._last is None or self._last[0] != key:
            hint_map = self._hint_map(hints)  # checks the hints before any network runs
            if self._network is None:
                self._network = hint_network(self.colorizer)
            if self._features is None:
                self._features = self._network.features(self.l_input)
            probs, ab = self._network.run(self._features, hint_map)
            self._last = (key, probs, ab)
        return self._last

    def result(self, hints=()) -> np.ndarray:
        """The colorized photo at display size, uint8 (dh, dw, 3), for `hints` in the photo's pixels."""
        _, _, ab = self._run(hints)
        return self.colorizer.join_full_resolution(self.l_display, ab)

    def suggest(self, x: float, y: float, k: int = SUGGESTIONS, hints=()) -> list[Suggestion]:
        """`suggest_colours` at (x, y) of this photo, given the other `hints` (free after `result(hints)`)."""
        l_point = lightness_at(self.l_full, x, y)
        probs, _ = self._run(hints)[1:]
        if probs is None:
            raise ValueError("suggested colours need a classification model (its colour probabilities); "
                             "this one is a regression model")
        row, col = _cell(x, y, self.width, self.height, probs.shape[:2])
        return _as_suggestions(colour_modes(probs[row, col], self._network.centers, k), l_point)

    def lightness_at(self, x: float, y: float) -> float:
        return lightness_at(self.l_full, x, y)

    def full_resolution(self, hints=()) -> np.ndarray:
        """uint8 RGB (H, W, 3): exactly `Colorizer` with these hints, as `colorize PHOTO --hints FILE` runs it."""
        maps = [self._hint_map(hints) if hints else None]
        ab = self.colorizer.predict_ab_many([self.l_input], maps)[0]
        return self.colorizer.join_full_resolution(self.l_full, ab)


def _hints_key(hints) -> tuple:
    from colorfusion.hints import parse_hint

    return tuple((x, y, rgb) for x, y, rgb in map(parse_hint, hints or []))


def suggest_colours(colorizer, image, x: float, y: float, k: int = SUGGESTIONS, hints=None) -> list[Suggestion]:
    """The colours the model finds likely at pixel (x, y) of a photo, most likely first.

    The modes of the classification head's distribution over ab bins at that
    pixel (with `hints` given elsewhere, the distribution they lead to), each
    shown at the pixel's own lightness: the colour a hint of it would give.

    Args:
        colorizer: a `Colorizer` of a classification model (the shipped one).
        image: a path, PIL image or array, as `Colorizer` takes.
        x, y: the pixel, from the photo's top left corner.
        k: at most this many colours (fewer when the rest are unlikely).
        hints: other hints `(x, y, colour)` on the photo.

    Returns:
        [`Suggestion`(hex, rgb, ab, probability), ...].

    Raises:
        HintError: the point is outside the photo, or a hint is malformed.
        ValueError: the model has no classification head.

    Example:
        [s.hex for s in suggest_colours(Colorizer.pretrained(), "car.jpg", 320, 140)]
    """
    return HintSession(colorizer, image, display_side=64).suggest(x, y, k=k, hints=hints or ())
