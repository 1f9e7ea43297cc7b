"""Colour hints: points whose colour a user knows, and the "hints" input they become.

Everything about hints lives in this package:

- here (the user's side, no Keras): a point `(x, y, colour)` in a photo's
  pixels (`parse_hint`), the hint model's "hints" input for a photo
  (`hint_map`), the JSON file the CLI and the studio read and write
  (`read_hints_file`, `parse_hints_file`) and the one rule that gives each
  photo its entry of such a file (`match_hints`, `hints_for_photo`), which
  `colorize --hints` and the studio's "Load hints" both follow;
- `hints.simulation`: points simulated from a photo's true colours, for
  training and for the benchmark;
- `hints.layers`: the network's side, the layers that spread the hints
  (`HintPool`, `HintBlend`, `HintAffinityBlend`) and the helpers that train them alone.

    points = [(320, 140, "#c0392b"), "40,200,#2e86c1"]
    rgb = Colorizer.pretrained()("car.jpg", hints=points)
"""

from __future__ import annotations

import json
from pathlib import Path, PurePath

import numpy as np

from colorfusion import color
from colorfusion.errors import HintError, first_line

__all__ = ["HINT_PATCH", "HintError", "parse_hint", "hint_map", "read_hints_file", "parse_hints_file",
           "match_hints", "hints_for_photo"]

HINT_PATCH = 5  # a user's point marks a square of this side at the network's input size


def parse_hint(hint) -> tuple[float, float, tuple[int, int, int]]:
    """(x, y, (r, g, b)) of a hint given as `(x, y, colour)` or the text "X,Y,#rrggbb".

    x and y are pixels of the photo (x to the right, y down, from its top
    left corner); the colour is "#rrggbb" or an (r, g, b) triple of 0-255.

    Raises:
        HintError: one line saying what is wrong with it.
    """
    parts = hint.split(",", 2) if isinstance(hint, str) else hint
    try:
        x, y, colour = parts
    except (TypeError, ValueError):
        raise HintError(f"hint {hint!r}: expected (x, y, colour), e.g. '320,140,#c0392b'") from None
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        raise HintError(f"hint {hint!r}: x and y must be numbers (pixels of the photo)") from None
    try:
        return x, y, color.parse_color(colour)
    except ValueError as e:
        raise HintError(f"hint {hint!r}: {e}") from None


def hint_map(hints, l_full: np.ndarray, shape) -> np.ndarray:
    """A hint model's "hints" input (h, w, 3) for user hints on a photo.

    Args:
        hints: `(x, y, colour)` points (`parse_hint`) in the photo's pixels.
        l_full: the photo's lightness (H, W), in [0, 100].
        shape: (h, w), the network's input size for the photo.

    Returns:
        float32 (h, w, 3): around each point, a square of `HINT_PATCH` pixels
        holding the colour's ab / 128 at the photo's lightness there
        (`color.ab_at_lightness`) and a mask of 1; zeros elsewhere.

    Raises:
        ValueError: a hint is malformed or outside the photo.
    """
    height, width = l_full.shape
    h, w = shape
    out = np.zeros((h, w, 3), np.float32)
    for hint in hints:
        x, y, rgb = parse_hint(hint)
        if not (0 <= x < width and 0 <= y < height):
            raise HintError(f"hint {hint!r} is outside the photo ({width} x {height} pixels)")
        # Lightness around the point, in the photo's own pixels.
        row, col = int(y), int(x)
        around = l_full[max(0, row - 1):row + 2, max(0, col - 1):col + 2]
        ab = color.ab_at_lightness(rgb, float(around.mean())) / color.AB_SCALE
        # The point on the network's grid, with its patch clipped to the map.
        top = min(max(0, int((y + 0.5) * h / height) - HINT_PATCH // 2), max(0, h - HINT_PATCH))
        left = min(max(0, int((x + 0.5) * w / width) - HINT_PATCH // 2), max(0, w - HINT_PATCH))
        out[top:top + HINT_PATCH, left:left + HINT_PATCH] = (ab[0], ab[1], 1.0)
    return out


def read_hints_file(path) -> dict[str, list]:
    """{photo: [hint, ...]} from a JSON file such as `{"car.jpg": [[320, 140, "#c0392b"]]}`.

    Which photo a key names: `match_hints`.

    Raises:
        HintError: one line naming the file and what is wrong with it.
    """
    try:
        text = Path(path).read_text()
    except (OSError, ValueError) as e:
        raise HintError(f"{path}: cannot read hints ({first_line(e)})") from None
    return parse_hints_file(text, path)


def parse_hints_file(text, source) -> dict[str, list]:
    """{photo: [hint, ...]} from the text of a hints file (`read_hints_file`); `source` names it in errors.

    Raises:
        HintError: not JSON, or not an object of lists; one line naming `source`.
    """
    try:
        hints = json.loads(text)
    except ValueError as e:
        raise HintError(f"{source}: cannot read hints ({first_line(e)})") from None
    if not isinstance(hints, dict) or not all(isinstance(v, list) for v in hints.values()):
        raise HintError(f'{source}: hints must be a JSON object {{"photo.jpg": [[x, y, "#rrggbb"], ...], ...}}')
    return hints


def match_hints(mapping, photos) -> dict:
    """Which key of a hints file names each photo: {photo: key} for the photos that have one.

    The one rule of `colorize --hints` and of the studio's "Load hints". A key
    names a photo by, in this order:

    1. its path as given (on the command line; in the studio, its name);
    2. its path inside its input folder ("sub/door.png");
    3. its file name ("door.png");
    4. anything at all, when the file has one key and there is one photo:
       a file saved for one photo under another name still applies to it.

    Args:
        mapping: a hints file's {key: hints} (`read_hints_file`).
        photos: each photo as its path, or a pair (path, its path inside its
            input folder); a path given alone is also its path inside.

    Returns:
        {photo as given in `photos`: the key of `mapping` that names it};
        a key named by no photo is left out (the caller says so).
    """
    photos = list(photos)
    found = {}
    for photo in photos:
        path, inside = photo if isinstance(photo, tuple) else (photo, photo)
        path, inside = PurePath(path), PurePath(inside)
        for key in (str(path), inside.as_posix(), path.name):
            if key in mapping:
                found[photo] = key
                break
    if not found and len(photos) == 1 and len(mapping) == 1:
        found[photos[0]] = next(iter(mapping))
    return found


def hints_for_photo(mapping, photo, inside=None):
    """The hints a file gives one photo opened alone (`match_hints`, rule 4 included); None when it has none.

    Args:
        mapping: a hints file's {key: hints}.
        photo: the photo's path as given.
        inside: its path inside its input folder, when it was found in one.
    """
    key = match_hints(mapping, [photo if inside is None else (photo, inside)])
    return mapping[next(iter(key.values()))] if key else None
