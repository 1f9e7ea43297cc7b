"""Where the model is unsure: a confidence map from its colour distribution, and the places a click helps most.

A classification model predicts, at each cell of a grid a quarter of the
network's input size, a distribution `p` over the ab bins; the colour shown is
decoded from it (the annealed mean). Its confidence there is how much of
that distribution lies near the colour shown:

    confidence = sum of p over the bins whose centre is within MASS_RADIUS (ab units) of the decoded ab

1 when the model puts all its probability on the colour it shows; near 0
when the probability is spread over colours far from it (a bimodal "red or
blue" gives a colour in between that neither mode is near). Measured against
`1 - entropy / log(Q)` on the validation photos (`benchmarks/bench_confidence.py`,
docs/confidence.md): the mass ranks the pixels whose colour is wrong better.

The grid's confidence is resized (bilinear) to the photo's size, in [0, 1].
`unsure_places` picks the places where a hint helps most: the centres of the
largest, least sure regions, most unsure first; the studio marks them and
the benchmark gives them true colours. Numpy and OpenCV only.

    confidence = colorizer.confidence("old_photo.jpg")       # float32 (H, W), 1 = sure
    places = unsure_places(confidence)                      # [UnsurePlace(x, y, score), ...]
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from colorfusion.errors import UsageError

MASS_RADIUS = 20.0  # ab units: "near the colour shown" (the bins lie on a grid of 10)
MEASURES = ("mass", "entropy")  # what `confidence_grid` can compute; "mass" is the package's
MEASURE = "mass"
PLACES_MOST = 5  # "click here" places marked at most ...
PLACES_LEAST = 3  # ... and at least (when the photo has room for them)
PLACE_SCALE = 1 / 8  # a region's scale as a share of the photo's short side (the blur's sigma)
PLACE_SPACING = 4  # places are at least this many scales apart (half the short side)
PLACE_GRID = 256  # the places are chosen on the map shrunk to this long side
MIN_SCORE = 0.02  # a region this sure has nothing to mark: a photo the model is sure of gets no place
PLACE_SHARE = 0.5  # a place past the least is kept while its score is at least this share of the first's


class UnsurePlace(NamedTuple):
    """A place where the model is unsure: pixel (x, y) of the photo, and how unsure its region is (0 to 1)."""

    x: int
    y: int
    score: float  # the mean unsureness (1 - confidence) of the region around it


def require_probabilities(runner) -> None:
    """Raise `UsageError` with the runner's own reason when it gives no colour probabilities.

    A regression model has none; an exported file keeps the decoded colours
    only (`Runner.probabilities_refusal` says which, as for suggested colours).
    """
    if runner.centers is None:
        raise UsageError(runner.probabilities_refusal)


def confidence_grid(probs, centers, ab, measure: str = MEASURE, radius: float = MASS_RADIUS) -> np.ndarray:
    """float32 (h4, w4) in [0, 1]: how concentrated each cell's distribution is around its decoded colour.

    Args:
        probs: (h4, w4, Q) the classification head's probabilities over its bins.
        centers: (Q, 2) the bins' ab centres (`Runner.centers`).
        ab: the decoded ab in Lab units, at the grid's size or any multiple of
            it (the network's output, (h, w, 2)): area-averaged onto the grid.
        measure: "mass" (the probability within `radius` of the decoded ab) or
            "entropy" (1 - the entropy / log Q).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}. Received: measure={measure!r}")
    probs = np.asarray(probs, np.float32)
    rows, cols, bins = probs.shape
    flat = probs.reshape(-1, bins)
    flat = flat / np.maximum(flat.sum(-1, keepdims=True), 1e-12)
    if measure == "entropy":
        entropy = -(flat * np.log(np.maximum(flat, 1e-12))).sum(-1)
        found = 1.0 - entropy / np.log(bins)
    else:
        ab = np.asarray(ab, np.float32)
        if ab.shape[:2] != (rows, cols):
            ab = cv2.resize(ab, (cols, rows), interpolation=cv2.INTER_AREA)
        centers = np.asarray(centers, np.float32).reshape(bins, 2)
        distance2 = ((ab.reshape(-1, 1, 2) - centers[None]) ** 2).sum(-1)
        found = (flat * (distance2 <= radius * radius)).sum(-1)
    return np.clip(found, 0.0, 1.0).reshape(rows, cols).astype(np.float32)


def at_size(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """A confidence grid resized (bilinear) to (height, width), float32 in [0, 1]."""
    resized = cv2.resize(np.asarray(grid, np.float32), (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)


def as_gray(confidence: np.ndarray) -> np.ndarray:
    """uint8 (H, W): the map as a gray image, 255 = sure, 0 = unsure (what `colorize --confidence` writes)."""
    return np.clip(np.asarray(confidence, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def unsure_places(confidence, most: int = PLACES_MOST, least: int = PLACES_LEAST) -> list[UnsurePlace]:
    """Where a hint helps most: the centres of the largest, least sure regions, most unsure first.

    The unsureness (1 - confidence) is averaged over a region of about
    `PLACE_SCALE` of the photo's short side (a Gaussian blur, outside the
    photo counting as sure): a large unsure region scores high, a thin
    unsure edge or a speck does not, and a place is never on the border. The best
    place is taken, a disc of `PLACE_SPACING` scales (half the short side)
    around it is left out, and so on: at most `most` places, and
    past `least` only those scoring at least `PLACE_SHARE` of the first's;
    none where the region is sure (`MIN_SCORE`). The scale and the spacing
    are those whose places gained the most PSNR with true-colour hints
    (docs/confidence.md); leaving out whole regions (one place a region)
    gained less.

    Args:
        confidence: (H, W) in [0, 1], the photo's map (`Colorizer.confidence`).

    Returns:
        [`UnsurePlace`(x, y, score), ...] in the photo's pixels, most unsure first.
    """
    if not (isinstance(most, int) and isinstance(least, int) and 0 <= least <= most):
        raise ValueError(f"least and most must be integers with 0 <= least <= most. Received: {least!r}, {most!r}")
    unsure = 1.0 - np.asarray(confidence, np.float32)
    height, width = unsure.shape
    # Chosen on a small copy (a 12 MP photo's regions are as clear at 256 px), then scaled back.
    shrink = min(1.0, PLACE_GRID / max(height, width))
    small = cv2.resize(unsure, (max(1, round(width * shrink)), max(1, round(height * shrink))),
                       interpolation=cv2.INTER_AREA) if shrink < 1 else unsure
    rows_small, cols_small = small.shape
    scale = max(1.0, PLACE_SCALE * min(rows_small, cols_small))
    # Outside the photo counts as sure: a region cut by the border is smaller, its centre inside the photo.
    score = cv2.GaussianBlur(small, (0, 0), sigmaX=scale, borderType=cv2.BORDER_CONSTANT)
    rows, cols = np.mgrid[0:rows_small, 0:cols_small]
    places = []
    while len(places) < most:
        row, col = divmod(int(np.argmax(score)), cols_small)
        value = float(score[row, col])
        if not value > MIN_SCORE or (len(places) >= least and value < PLACE_SHARE * places[0].score):
            break
        x = min(width - 1, int((col + 0.5) * width / cols_small))
        y = min(height - 1, int((row + 0.5) * height / rows_small))
        places.append(UnsurePlace(x, y, round(value, 4)))
        score[(rows - row) ** 2 + (cols - col) ** 2 <= (PLACE_SPACING * scale) ** 2] = -np.inf
    return places

