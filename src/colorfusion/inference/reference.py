"""Colours from a reference photo: points matched in the network's own features, given to it as hints.

    colorizer("old.jpg", reference="colour_photo_of_the_same_car.jpg")
    ref = Reference(colorizer, "colour.jpg")          # read and described once, for many photos or frames
    points = ref.points(colorizer, colorizer.read_lightness(io.read_rgb("old.jpg")))

A colour photo of the same place, the same dress, the same car says which
colours the gray photo had. As in UniColor (Huang et al. 2022), the
condition reaches the network as hint points, so the hint layers that ship
serve it with no training:

1. Features: the photo's lightness and the reference's lightness (its colour
   left out: both are seen as the network sees a gray photo) go through the
   colorizer's own encoder (`Runner.features`: its maps at strides 8 and 16,
   each L2-normalised per position), brought to cells of `STRIDE` (16)
   pixels at the network's size (the stride-8 map averaged over each cell),
   joined and normalised: each cell is a unit vector.
2. Correspondences: for each cell of the photo, its most similar cell of the
   reference (cosine); kept when it is mutual (that cell's most similar photo
   cell lies within one cell of it), similar enough (`MIN_SIMILARITY`),
   distinctive (Lowe's ratio test, `RATIO`: its distance against the best
   match outside `EXCLUDE` cells of the first, so a repeated texture, whose
   second match is as good, gives no point) and of about the same lightness
   (`MAX_LIGHTNESS`: much lighter or darker is another material).
3. Weight: from 0 at `MIN_SIMILARITY` to 1 at `FULL_SIMILARITY`, times
   (1 - the lightness difference / `MAX_LIGHTNESS`).
4. Spread: strongest first, at most one point per square of `SPACING` x
   `SPACING` cells and at most `MAX_POINTS`; none within `USER_RADIUS` cells
   of a point the person gave (theirs win).
5. Colour: the reference's ab at the matched cell, averaged over `PATCH`
   pixels. The hint layers read a point as there or not (a hint map's mask
   counts presence, `HintPool`), so a weight cannot scale a point's pull;
   instead a point's colour is the automatic colour there moved toward the
   reference's by its weight (an exact, unique match gives the reference's
   colour; a doubtful one nudges). This costs one automatic run of the
   network per photo, and it is what keeps a poor reference from making a
   photo much worse (docs/reference.md). The hint map then takes the colour
   at the photo's own lightness (`hints.hint_map`), as any hint.

Regions with no match keep the automatic colour: the hint layers carry a
point's colour over its own object only. This module runs no network
itself: it is handed an engine (`inference.engine.Engine`: `input_shape`,
`features`, `predict_ab`, `takes_hints`), and the engine runs it as the step
before the hints map (`colorize_iter(..., reference=)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from colorfusion import color, io
from colorfusion.errors import HintError, ImageReadError
from colorfusion.fastlab import as_pixels
from colorfusion.hints import parse_hint

# Tuned on training photos (`benchmarks/bench_reference.py --tune`), never on the validation photos.
MIN_SIMILARITY = 0.85  # cosine of the joined features: below it, no correspondence
FULL_SIMILARITY = 0.9  # and from it, a match of full weight
RATIO = 0.9  # Lowe's ratio: the best match's distance / the best one's outside EXCLUDE cells
EXCLUDE = 2  # cells around the best match where the second best is not looked for (its own neighbours)
MAX_POINTS = 32  # points given at most
MIN_POINTS = 7  # fewer places matched: not the same scene, and no point is given (hints cost a photo something)
SPACING = 3  # feature cells a side of the grid cell that holds at most one point
MAX_LIGHTNESS = 10.0  # L units two matched cells' mean lightness may differ by (more: another material)
USER_RADIUS = 2  # feature cells around a person's hint where no reference point is given
PATCH = 15  # pixels (at the network's size) the reference's ab is averaged over at a point
MIN_CHROMA = 2.0  # mean ab distance from gray below which a reference has no colour to give
NO_COLOUR = "cannot use as a reference photo: it has no colour (black and white)"
STRIDE = 16  # a matched cell, pixels at the network's size (the stride-8 map averaged over it)


class ReferencePoint(NamedTuple):
    """A matched point: a hint `(x, y, hex)` in the photo's pixels, and how good its match is."""

    x: int
    y: int
    hex: str
    weight: float  # in [0, 1]: 1 an exact, unique match

    @property
    def hint(self) -> tuple:
        return self.x, self.y, self.hex


def read_reference(image, name=None) -> np.ndarray:
    """The reference's pixels: a path read by `io.read_rgb`, or an array / PIL image as it is.

    Raises:
        ImageReadError: the file cannot be read, in one line naming it ("cannot use as a reference photo: ...").
    """
    if isinstance(image, (str, Path)):
        try:
            return io.read_rgb(image)
        except ImageReadError as e:
            raise ImageReadError(name or image, f"cannot use as a reference photo: {e.reason}") from None
    return as_pixels(image)


def normalised(features: dict, shape) -> np.ndarray:
    """(rows, cols, D) unit vectors: each map of {stride: (h/s, w/s, C)} L2-normalised per position, brought to
    the grid of `shape` (a finer map averaged over each cell, a coarser one repeated), joined, normalised again."""
    rows, cols = shape
    parts = []
    for stride in sorted(features):
        found = np.asarray(features[stride], np.float32)
        found = found / np.maximum(np.linalg.norm(found, axis=-1, keepdims=True), 1e-6)
        if found.shape[0] > rows:  # finer: the mean of each cell's block
            f = found.shape[0] // rows
            found = found[:rows * f, :cols * f].reshape(rows, f, cols, f, -1).mean((1, 3))
        elif found.shape[0] < rows:  # coarser: each value over the cells it covers
            f = rows // found.shape[0]
            found = np.repeat(np.repeat(found, f, 0), f, 1)[:rows, :cols]
        parts.append(found)
    joined = np.concatenate(parts, axis=-1)
    return joined / np.maximum(np.linalg.norm(joined, axis=-1, keepdims=True), 1e-6)


def match(photo: np.ndarray, reference: np.ndarray, min_similarity: float = MIN_SIMILARITY, ratio: float = RATIO,
          exclude: int = EXCLUDE, full_similarity: float = FULL_SIMILARITY):
    """Correspondences between two grids of unit feature vectors: mutual, similar and distinctive.

    Args:
        photo: (h, w, D) unit vectors; reference: (h', w', D).

    Returns:
        (photo cells (K, 2) row, col; reference cells (K, 2); weights (K,) in [0, 1]), strongest first: a
        weight rises from 0 at `min_similarity` to 1 at `full_similarity`.
    """
    h, w, depth = photo.shape
    hr, wr, _ = reference.shape
    # numpy's own loop, not BLAS: OpenBLAS's threads on a busy CPU made this 1 ms product take 100-400 ms.
    similarity = np.einsum("id,jd->ij", photo.reshape(-1, depth), reference.reshape(-1, depth), optimize=False)
    best = similarity.argmax(1)
    best_value = similarity[np.arange(len(best)), best]
    back = similarity.argmax(0)  # each reference cell's most similar photo cell
    photo_rc = np.stack(np.divmod(np.arange(h * w), w), -1)
    ref_rc = np.stack(np.divmod(best, wr), -1)
    back_rc = np.stack(np.divmod(back[best], w), -1)
    mutual = np.abs(back_rc - photo_rc).max(-1) <= 1
    # The second best outside the first's neighbourhood: the row's maximum with that neighbourhood left out.
    offsets = np.arange(-exclude, exclude + 1)
    near_rows = np.clip(ref_rc[:, :1, None] + offsets[None, :, None], 0, hr - 1)
    near_cols = np.clip(ref_rc[:, 1:, None] + offsets[None, None, :], 0, wr - 1)
    near = (near_rows * wr + near_cols).reshape(len(best), -1)
    rows = np.arange(len(best))[:, None]
    saved = similarity[rows, near]
    similarity[rows, near] = -1.0
    second = similarity.max(1)
    similarity[rows, near] = saved
    distance = np.sqrt(np.maximum(2.0 - 2.0 * best_value, 0.0))
    second_distance = np.sqrt(np.maximum(2.0 - 2.0 * second, 0.0))
    passed = (distance + 1e-2) / (second_distance + 1e-2)  # two equal best matches: 1, never distinctive
    keep = mutual & (best_value >= min_similarity) & (passed < ratio)
    weight = np.clip((best_value - min_similarity) / max(full_similarity - min_similarity, 1e-6), 0.0, 1.0)
    order = np.flatnonzero(keep)[np.argsort(-weight[keep], kind="stable")]
    return photo_rc[order], ref_rc[order], weight[order]


def spread(cells: np.ndarray, spacing: int = SPACING, max_points: int = MAX_POINTS, taken=()) -> list[int]:
    """Indices of `cells` (strongest first) kept: at most one per grid cell of `spacing`, at most `max_points`.

    `taken`: cells (row, col) near which (`USER_RADIUS`) nothing is kept: the person's own points.
    """
    used = set()
    taken = np.asarray(list(taken), np.float32).reshape(-1, 2)
    kept = []
    for index, (row, col) in enumerate(cells):
        if len(kept) >= max_points:
            break
        box = (int(row) // spacing, int(col) // spacing)
        if box in used:
            continue
        if len(taken) and (np.abs(taken - (row, col)).max(-1) <= USER_RADIUS).any():
            continue
        used.add(box)
        kept.append(index)
    return kept


class Reference:
    """A reference photo read once and described by the network: its features and its colours, cell by cell.

    Args:
        engine: the `Engine` (a `Colorizer`) that will colorize with it: its
            runner must take hints and give its encoder's features.
        image: the reference, a path, PIL image or array (colour).
        name: how errors name it (default: the path).

    Raises:
        HintError: the model takes no hints (`Runner.hints_refusal`) or gives
            no features (`Runner.features_refusal`: an exported file).
        ImageReadError: the reference cannot be read.

    Example:
        ref = Reference(colorizer, "colour.jpg")
        rgb = colorizer("old.jpg", reference=ref)
    """

    def __init__(self, engine, image, name=None, max_points: int = MAX_POINTS, min_similarity: float = MIN_SIMILARITY,
                 ratio: float = RATIO, spacing: int = SPACING, max_lightness: float = MAX_LIGHTNESS,
                 full_similarity: float = FULL_SIMILARITY, blend: bool = True, min_points: int = MIN_POINTS):
        if not engine.takes_hints:
            raise HintError(f"a reference photo reaches the model as hints: {engine.runner.hints_refusal}")
        if not engine.runner.gives_features:
            raise HintError(engine.runner.features_refusal)
        self.name = str(name or (image if isinstance(image, (str, Path)) else "the reference photo"))
        pixels = read_reference(image, name)
        if pixels.ndim == 2 or pixels.shape[-1] != 3:
            raise ImageReadError(self.name, NO_COLOUR)
        self.max_points, self.min_similarity, self.ratio, self.spacing = max_points, min_similarity, ratio, spacing
        self.max_lightness, self.full_similarity, self.blend = max_lightness, full_similarity, blend
        self.min_points = min_points
        height, width = engine.input_shape(*pixels.shape[:2])
        small = io.resize(pixels, width, height)
        lab = color.rgb_to_lab(small.astype(np.float32) / 255.0 if small.dtype == np.uint8 else small)
        if np.hypot(lab[..., 1], lab[..., 2]).mean() < MIN_CHROMA:  # its colours would be gray hints
            raise ImageReadError(self.name, NO_COLOUR)
        self.features = describe(engine, lab[..., :1])
        self.lightness = cell_means(lab[..., 0], self.features.shape[:2])
        self.colours = at_centres(lab, self.features.shape[:2])  # each cell's Lab, averaged over PATCH pixels

    def points(self, engine, lightness, hints=(), size=None) -> list[ReferencePoint]:
        """The matched points on a photo: hints in its pixels, strongest first, away from the person's `hints`.

        Args:
            engine: the engine the reference was made for.
            lightness: the photo's `Lightness` (`Engine.read_lightness`).
            hints: the person's own points `(x, y, colour)`, which win.
            size: (height, width) of the photo, when `lightness.full` is None
                (a clip's first pass reads the network's L alone).
        """
        l_small = lightness.small
        height, width = lightness.full.shape if lightness.full is not None else (size or l_small.shape[:2])
        h, w = l_small.shape[:2]
        photo = describe(engine, l_small)
        cells, found, weights = match(photo, self.features, self.min_similarity, self.ratio,
                                      full_similarity=self.full_similarity)
        # The same material keeps its lightness: a match much lighter or darker is another thing.
        apart = np.abs(cell_means(l_small[..., 0], photo.shape[:2])[cells[:, 0], cells[:, 1]]
                       - self.lightness[found[:, 0], found[:, 1]])
        weights = weights * np.clip(1.0 - apart / self.max_lightness, 0.0, 1.0)
        order = np.flatnonzero((apart <= self.max_lightness) & (weights > 0))
        order = order[np.argsort(-weights[order], kind="stable")]
        cells, found, weights = cells[order], found[order], weights[order]
        taken = []
        for hint in hints or ():
            x, y, _ = parse_hint(hint)
            taken.append(((y + 0.5) * h / height / STRIDE - 0.5, (x + 0.5) * w / width / STRIDE - 0.5))
        if len(spread(cells, self.spacing, self.max_points)) < self.min_points:  # the person's points aside
            return []
        kept = spread(cells, self.spacing, self.max_points, taken=taken)
        if not kept:
            return []
        cells, found, weights = cells[kept], found[kept], weights[kept]
        colours = self.colours[found[:, 0], found[:, 1]]
        if self.blend:  # a point's weight: how far it moves the automatic colour there toward the reference's
            automatic = engine.predict_ab(l_small[None])[0]
            here = at_centres(np.concatenate([l_small, automatic], -1), photo.shape[:2])[cells[:, 0], cells[:, 1]]
            colours = np.concatenate([here[:, :1], here[:, 1:] + weights[:, None] * (colours[:, 1:] - here[:, 1:])],
                                     -1)
        rgb = color.lab_to_rgb(colours[None].astype(np.float32), np.uint8)[0]
        points = []
        for (row, col), weight, (r, g, b) in zip(cells, weights, rgb.tolist()):
            x = min(width - 1, int((col * STRIDE + STRIDE / 2) * width / w))
            y = min(height - 1, int((row * STRIDE + STRIDE / 2) * height / h))
            points.append(ReferencePoint(x, y, f"#{r:02x}{g:02x}{b:02x}", round(float(weight), 3)))
        return points

    def hints_for(self, engine, lightness, hints=None) -> list:
        """The person's `hints` and the reference's points after them: what the engine's hints map is made of."""
        hints = list(hints or [])
        return hints + [point.hint for point in self.points(engine, lightness, hints)]


def at_centres(values: np.ndarray, shape) -> np.ndarray:
    """(rows, cols, C): `values` (h, w, C) averaged over `PATCH` pixels around the centre of each cell."""
    rows, cols = shape
    mean = cv2.blur(np.asarray(values, np.float32), (PATCH, PATCH), borderType=cv2.BORDER_REFLECT)
    return mean[STRIDE // 2::STRIDE, STRIDE // 2::STRIDE][:rows, :cols]


def cell_means(values: np.ndarray, shape) -> np.ndarray:
    """(rows, cols): the mean of `values` (h, w) over each cell of `STRIDE` pixels."""
    rows, cols = shape
    return values[:rows * STRIDE, :cols * STRIDE].reshape(rows, STRIDE, cols, STRIDE).mean((1, 3))


def describe(engine, l_small: np.ndarray) -> np.ndarray:
    """(h/8, w/8, D) unit feature vectors of an L map (h, w, 1) in [0, 100] (`Engine.features`)."""
    features = engine.features(np.asarray(l_small, np.float32)[None])
    h, w = np.shape(l_small)[:2]
    return normalised({stride: found[0] for stride, found in features.items()}, (h // STRIDE, w // STRIDE))


def as_reference(engine, reference, name=None):
    """A `Reference` from one (returned as is), a path, or pixels; None stays None."""
    if reference is None or isinstance(reference, Reference):
        return reference
    return Reference(engine, reference, name=name)

