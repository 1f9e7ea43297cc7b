"""sRGB <-> CIE Lab (D65) with OpenCV, and the model-facing scalings.

This module is the one place for Lab constants. Everything else in the
package converts colour through it, so training inputs, targets, previews and
full-resolution colorization agree on what "L" and "ab" mean.

Conventions:

- RGB arrays are sRGB, either uint8 in [0, 255] or float in [0, 1].
- Lab arrays are float32 with L in [0, 100] and a, b roughly in [-128, 127]
  (the sRGB gamut reaches about a in [-86, 98], b in [-108, 95]).
- Any leading shape is accepted: (H, W, 3) for one image, (N, H, W, 3) for a
  batch, (..., 3) in general.

OpenCV's float32 `cvtColor` (with the sRGB transfer curve and D65 white) is
about 14x faster than `skimage.color.rgb2lab` and agrees with it to under 0.5
Lab units (see `tests/test_color.py` and `benchmarks/bench_color.py`).

Model-facing scalings:

- the network input is `l_to_model(L) = L / 50 - 1`, in [-1, 1];
- the regression target is `ab_to_model(ab) = ab / 128`, in about [-1, 1],
  which is what a `tanh` output times 128 reproduces.
"""

from __future__ import annotations

import cv2
import numpy as np

# === Lab constants ===
L_MAX = 100.0
L_MODEL_CENTER = 50.0  # L / 50 - 1 maps [0, 100] onto [-1, 1]
AB_SCALE = 128.0  # ab / 128 is the regression target; tanh x 128 gives ab back


def _as_float_rgb(rgb: np.ndarray) -> np.ndarray:
    """Return float32 RGB in [0, 1] from uint8 [0, 255] or float [0, 1]."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"Expected an RGB array with a last axis of 3. Received: shape={rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(rgb.dtype, np.integer) or rgb.dtype == bool:
        raise ValueError(
            "Expected uint8 RGB in [0, 255] or float RGB in [0, 1]. "
            f"Received: dtype={rgb.dtype}"
        )
    return np.asarray(rgb, dtype=np.float32)


def _check_out(out: np.ndarray, shape: tuple) -> None:
    if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float32
            and out.flags.c_contiguous and out.flags.writeable):
        got = (getattr(out, "shape", None), getattr(out, "dtype", None))
        raise ValueError(
            f"out must be a writeable C-contiguous float32 array of shape {shape}. Received: out shape, dtype={got}"
        )


def _convert(image: np.ndarray, code: int, out: np.ndarray | None = None) -> np.ndarray:
    """Apply `cv2.cvtColor` to an array of any leading shape (..., 3), into `out` if given."""
    shape = image.shape
    if out is not None:
        _check_out(out, shape)
    if image.size == 0:
        return np.zeros(shape, dtype=np.float32) if out is None else out
    # cvtColor wants a 2-D image: fold every leading axis into the rows.
    width = shape[-2] if image.ndim >= 2 else 1
    flat = np.ascontiguousarray(image.reshape(-1, width, 3))
    if out is None:
        return cv2.cvtColor(flat, code).reshape(shape)
    # A contiguous `out` reshapes to a view: OpenCV writes straight into it.
    cv2.cvtColor(flat, code, dst=out.reshape(flat.shape))
    return out


def rgb_to_lab(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sRGB (uint8 or float in [0, 1]) to CIE Lab (D65), float32.

    Args:
        rgb: array of shape (..., 3).
        out: optional C-contiguous float32 array of the same shape that
            receives the result (no allocation for float32 input; used by
            `colorize` to convert big photos strip by strip).

    Returns:
        float32 array of the same shape (`out` when given): L in [0, 100],
        a and b in about [-128, 127].
    """
    return _convert(_as_float_rgb(rgb), cv2.COLOR_RGB2Lab, out)


def lab_to_rgb(lab: np.ndarray, dtype=np.float32, out: np.ndarray | None = None) -> np.ndarray:
    """CIE Lab (D65) to sRGB, clipped to the displayable range.

    Args:
        lab: float array of shape (..., 3), L in [0, 100].
        dtype: `np.float32` for RGB in [0, 1], or `np.uint8` for [0, 255]
            (rounded).
        out: optional C-contiguous float32 array of the same shape that
            receives the float32 result (with `dtype=np.float32` only).

    Returns:
        RGB array of the same shape (`out` when given).
    """
    lab = np.asarray(lab, dtype=np.float32)
    if lab.shape[-1:] != (3,):
        raise ValueError(f"Expected a Lab array with a last axis of 3. Received: shape={lab.shape}")
    if np.dtype(dtype) not in (np.float32, np.uint8):
        raise ValueError(f"dtype must be np.float32 or np.uint8. Received: dtype={dtype!r}")
    if out is not None and np.dtype(dtype) != np.float32:
        raise ValueError(f"out is only supported with dtype=np.float32. Received: dtype={dtype!r}")
    rgb = _convert(lab, cv2.COLOR_Lab2RGB, out)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    if np.dtype(dtype) == np.uint8:
        return (rgb * 255.0 + 0.5).astype(np.uint8)
    return rgb


def split_lab(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split Lab (..., 3) into L (..., 1) and ab (..., 2)."""
    return lab[..., :1], lab[..., 1:]


def join_lab(l: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Join L (..., 1) and ab (..., 2) into Lab (..., 3), float32."""
    return np.concatenate([np.asarray(l, np.float32), np.asarray(ab, np.float32)], axis=-1)


def rgb_to_l(rgb: np.ndarray) -> np.ndarray:
    """The L channel (..., 1) of sRGB, float32 in [0, 100]."""
    return split_lab(rgb_to_lab(rgb))[0]


def gray_rgb_from_l(l: np.ndarray) -> np.ndarray:
    """The sRGB image of lightness L with a = b = 0, float32 in [0, 1].

    This is the only notion of "grayscale" in the package: the network's input
    is L, the semantic branch sees this image (times 255), and a B&W photo at
    inference time goes through the same path.

    Args:
        l: L of shape (..., 1) or (...) in [0, 100].

    Returns:
        float32 RGB of shape (..., 3) whose three channels are equal.
    """
    l = np.asarray(l, dtype=np.float32)
    if l.shape[-1:] != (1,):
        l = l[..., None]
    lab = np.concatenate([l, np.zeros(l.shape[:-1] + (2,), np.float32)], axis=-1)
    return lab_to_rgb(lab)


def gray_version(rgb: np.ndarray) -> np.ndarray:
    """The uint8 RGB of a photo's own L with a = b = 0: its B&W version, and the grayscale baseline."""
    return (gray_rgb_from_l(rgb_to_l(rgb)) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


# === Model-facing scalings ===


def l_to_model(l: np.ndarray) -> np.ndarray:
    """L in [0, 100] to the network input in [-1, 1]."""
    return np.asarray(l, np.float32) / np.float32(L_MODEL_CENTER) - np.float32(1.0)


def l_from_model(l_scaled: np.ndarray) -> np.ndarray:
    """Network input in [-1, 1] back to L in [0, 100]."""
    return (np.asarray(l_scaled, np.float32) + np.float32(1.0)) * np.float32(L_MODEL_CENTER)


def ab_to_model(ab: np.ndarray) -> np.ndarray:
    """ab in Lab units to the regression target ab / 128."""
    return np.asarray(ab, np.float32) / np.float32(AB_SCALE)


def ab_from_model(ab_scaled: np.ndarray) -> np.ndarray:
    """Regression target / model output ab / 128 back to ab in Lab units."""
    return np.asarray(ab_scaled, np.float32) * np.float32(AB_SCALE)


# === Colours users name (colour hints) ===


def parse_color(colour) -> tuple[int, int, int]:
    """An sRGB colour as a user writes it: "#rrggbb" (or "rrggbb") or an (r, g, b) triple of 0-255.

    Raises:
        ValueError: one line saying what was expected.

    Example:
        parse_color("#c0392b") == (192, 57, 43)
    """
    if isinstance(colour, str):
        text = colour.strip().removeprefix("#")
        if len(text) == 6:
            try:
                return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))
            except ValueError:
                pass
        raise ValueError(f"colour must be '#rrggbb' (six hex digits). Received: {colour!r}")
    try:
        values = [float(v) for v in colour]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3 or not all(0 <= v <= 255 and v == int(v) for v in values):
        raise ValueError(f"colour must be '#rrggbb' or (r, g, b) integers in 0-255. Received: {colour!r}")
    return tuple(int(v) for v in values)


def hex_color(rgb) -> str:
    """The "#rrggbb" of an (r, g, b) triple of 0-255: what `parse_color` reads back, and the studio's page shows."""
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def ab_at_lightness(colour, lightness: float) -> np.ndarray:
    """The ab (2,) of `colour` seen at CIE lightness `lightness`, kept inside the sRGB gamut.

    A hint names a colour, but the photo keeps its own L: dark red at a light
    spot must become the light red that exists there. The colour's ab is
    joined with `lightness`, taken to sRGB and clipped into its gamut, and
    read back.
    """
    rgb = np.asarray(parse_color(colour), np.uint8).reshape(1, 1, 3)
    lab = rgb_to_lab(rgb)
    lab[..., 0] = np.clip(lightness, 0.0, L_MAX)
    return rgb_to_lab(lab_to_rgb(lab))[0, 0, 1:]
