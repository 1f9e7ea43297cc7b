"""Colours to suggest at a point, the colours that exist at a lightness, and a photo being fixed with hints.

What a person needs to give a hint well, after ideepcolor (Zhang et al.,
"Real-Time User-Guided Image Colorization with Learned Deep Priors", 2017):

- `suggest_colours(colorizer, image, x, y)`: the colours the model itself
  finds likely at a point: the modes of the classification head's
  distribution over the ab bins there (the model's "ab_probs"), each shown at
  that point's own lightness, most likely first, with its probability;
- `gamut_plane(lightness)`: the ab plane at a lightness, the colours a pixel
  of that lightness can take (ideepcolor's gamut panel), as an RGBA image;
- `HintSession`: one photo being fixed: the engine holds it between edits
  (`Engine.hold`: its lightness read once, and for a Keras hint model the
  encoder's features, so that each new set of hints costs only the part of
  the network that sees them); this adds the display-size images, the last
  result for the next click, the suggestions, and `confidence(hints)`
  (where the model is unsure, the places to click); `full_resolution(hints)`
  is the engine's pipeline, as `colorfusion colorize PHOTO --hints FILE`
  runs it, pixel for pixel.

A client of the engine (`inference.engine`): it never runs the network
itself. The studio's server translates HTTP into these calls; notebooks call
them directly:

    colorizer = Colorizer.pretrained()
    for s in suggest_colours(colorizer, "car.jpg", 320, 140):
        print(s.hex, f"{s.probability:.0%}")
    session = HintSession(colorizer, io.read_rgb("car.jpg"))
    preview = session.result([(320, 140, "#c0392b")])          # display size, fast
    rgb = session.full_resolution([(320, 140, "#c0392b")])     # = colorize --hints, full size
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from colorfusion import color, io
from colorfusion.errors import HintError
from colorfusion.fastlab import as_pixels, lab_to_rgb_uint8, lightness
from colorfusion.hints import parse_hint
from colorfusion.inference.confidence import at_size, confidence_grid, require_probabilities, unsure_places

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


# === The network a session runs ===


def hint_network(colorizer):
    """The runner behind a colorizer's sessions (`inference.runners`): `centers` is None when it gives no
    colour probabilities (a regression model, an exported file), `split` whether a click runs only the part
    of the network that sees the hints. The colorizer owns it."""
    return colorizer.runner


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
        self.held = colorizer.hold(pixels)  # the engine's read, and its runner's session, kept between edits
        self.l_full, self.l_input = self.held.lightness
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
        self._last = None  # (hints key, probabilities, ab) of the latest run: the next click's starting point

    @property
    def nbytes(self) -> int:
        """Memory held for this photo, roughly (what a bounded cache counts)."""
        held = [self.l_display, self.original, self.gray, *(self._last[1:] if self._last is not None else ())]
        return self.held.nbytes + int(sum(np.asarray(a).nbytes for a in held if a is not None))

    def _run(self, hints):
        """(hints key, probabilities or None, ab (h, w, 2)) for `hints`: the last run's when they are the same."""
        key = _hints_key(hints)
        if self._last is None or self._last[0] != key:
            # The map checks the hints before any network runs.
            hint_map = self.colorizer.hints_input(list(hints or []), self.l_full, self.l_input.shape[:2])
            self._last = (key, *self.held.run(hint_map))
        return self._last

    def result(self, hints=()) -> np.ndarray:
        """The colorized photo at display size, uint8 (dh, dw, 3), for `hints` in the photo's pixels."""
        _, _, ab = self._run(hints)
        return self.colorizer.join_full_resolution(self.l_display, ab)

    def suggest(self, x: float, y: float, k: int = SUGGESTIONS, hints=()) -> list[Suggestion]:
        """`suggest_colours` at (x, y) of this photo, given the other `hints` (free after `result(hints)`).

        Raises:
            ValueError: the runner gives no colour probabilities (a regression
                model, an exported file): its one line says why.
        """
        l_point = lightness_at(self.l_full, x, y)
        runner = self.colorizer.runner
        if runner.centers is None:
            raise ValueError(runner.probabilities_refusal)
        probs = self._run(hints)[1]
        row, col = _cell(x, y, self.width, self.height, probs.shape[:2])
        return _as_suggestions(colour_modes(probs[row, col], runner.centers, k), l_point)

    def lightness_at(self, x: float, y: float) -> float:
        return lightness_at(self.l_full, x, y)

    def confidence(self, hints=()) -> tuple[np.ndarray, list]:
        """(the confidence map at display size (dh, dw), its `unsure_places` in the photo's pixels) with `hints`.

        Free after `result(hints)` (the same run's probabilities). Raises
        `UsageError` for a runner without colour probabilities.
        """
        runner = self.colorizer.runner
        require_probabilities(runner)
        _, probs, ab = self._run(hints)
        shown = at_size(confidence_grid(probs, runner.centers, ab), *self.l_display.shape)
        rows, cols = shown.shape
        places = [place._replace(x=min(self.width - 1, int((place.x + 0.5) * self.width / cols)),
                                 y=min(self.height - 1, int((place.y + 0.5) * self.height / rows)))
                  for place in unsure_places(shown)]
        return shown, places

    def full_resolution(self, hints=()) -> np.ndarray:
        """uint8 RGB (H, W, 3): exactly `Colorizer` with these hints, as `colorize PHOTO --hints FILE` runs it."""
        return self.held.colorize(hints)


def _hints_key(hints) -> tuple:
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
