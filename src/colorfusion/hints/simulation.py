"""Colour points simulated from a photo's true colours: what a hint model trains and is measured with.

Zhang et al. (2017) train their user-guided network with points drawn from
each photo's own ab: none for a share of the examples
(`config.HINT_FREE_FRACTION`, `TrainConfig.hint_free_fraction`: automatic
colorization keeps being trained), else a number of points
drawn from a geometric distribution (p = `HINT_POINTS_P`, mean 8), each a
square patch of `HINT_PATCH_SIDES` pixels at a uniformly random place,
whose mean ab is the hint (`simulate_hints`). The generator draws them for
training, the benchmark and `evaluation.evaluate_hints` for measuring, and
a hint run's previews get `PREVIEW_HINTS` fixed points each
(`preview_hints`).
"""

from __future__ import annotations

import numpy as np

from colorfusion import color

HINT_POINTS_P = 1 / 8  # the number of simulated points ~ geometric(p) (Zhang et al. 2017)
HINT_PATCH_SIDES = (1, 9)  # a point is a square patch of 1 to 9 pixels (side), its mean ab the hint
PREVIEW_HINTS = 5  # points a hint run's preview photos get, simulated from their true colours


def simulate_hints(ab_scaled: np.ndarray, rng: np.random.Generator, count: int | None = None,
                   hint_free_fraction: float = 0.0, places=None) -> np.ndarray:
    """Colour points a user might give, drawn from the true ab of one image.

    Args:
        ab_scaled: the true ab / 128 (H, W, 2).
        rng: the random generator the draw comes from.
        count: the number of points; None draws it: 0 with probability
            `hint_free_fraction`, else geometric(`HINT_POINTS_P`) (1, 2, ...).
        hint_free_fraction: see `count`.
        places: (row, col) of each point's centre on the map's grid, instead
            of random places (`count` is then their number); the patch sides
            are drawn as for random places (the "click here" places of
            `inference.confidence.unsure_places`, measured against random ones).

    Returns:
        float32 (H, W, 3): each point's patch (side 1 to 9 pixels) holds the
        patch's mean ab / 128 and a mask of 1; 0 everywhere else.
    """
    height, width = ab_scaled.shape[:2]
    hints = np.zeros((height, width, 3), np.float32)
    if places is not None:
        count = len(places)
    elif count is None:
        count = 0 if rng.random() < hint_free_fraction else int(min(rng.geometric(HINT_POINTS_P), 64))
    for index in range(count):
        side = int(rng.integers(HINT_PATCH_SIDES[0], HINT_PATCH_SIDES[1] + 1))
        side = min(side, height, width)
        if places is None:
            top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        else:  # the patch centred on the place, inside the map
            row, col = (int(value) for value in places[index])
            top = min(max(0, row - side // 2), height - side)
            left = min(max(0, col - side // 2), width - side)
        patch = (slice(top, top + side), slice(left, left + side))
        hints[patch + (slice(0, 2),)] = ab_scaled[patch].reshape(-1, 2).mean(axis=0)
        hints[patch + (2,)] = 1.0
    return hints


def preview_hints(rgb, seed=0) -> np.ndarray:
    """The "hints" input (N, S, S, 3) of a hint run's preview photos: `PREVIEW_HINTS` points each, fixed."""
    ab = color.ab_to_model(color.split_lab(color.rgb_to_lab(rgb))[1])
    return np.stack([simulate_hints(a, np.random.default_rng([seed, i]), count=PREVIEW_HINTS)
                     for i, a in enumerate(ab)])
