"""Full-resolution pixels fast: a photo's lightness, and L + ab back to RGB, in cache-sized strips on every core.

A 12 MP photo is 144 MB as float32 RGB, and converting it in one piece spends
more time moving memory than converting. OpenCV's float Lab conversion is two
to three times faster on strips of about 64K pixels that stay in the CPU
cache, with buffers allocated once; bands of strips run on one thread per
core (OpenCV and numpy release the GIL). The conversions are
`color.rgb_to_lab` / `color.lab_to_rgb` writing into the strip buffers, so
results are bit for bit those of whole-image calls (`color` stays the one
owner of the Lab constants and formulas; this module only schedules them).

    pixels = as_pixels("photo.jpg")          # uint8 or float32 [0, 1], gray or RGB
    l_full = lightness(pixels)               # (H, W) float32 in [0, 100]
    rgb = lab_to_rgb_uint8(l_full, ab_full)  # (H, W, 3) uint8
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from colorfusion import color, io
from colorfusion.hardware import available_cores

STRIP_PIXELS = 1 << 16  # 64K pixels: 768 KB of float32 RGB, within L2 on most CPUs
_TO_UNIT = np.float32(1.0 / 255.0)


def as_pixels(image) -> np.ndarray:
    """Contiguous uint8 or float32 [0, 1] pixels, (H, W) gray or (H, W, 3) RGB.

    Args:
        image: a path, a PIL image, or an array (H, W), (H, W, 1) or
            (H, W, 3): uint8; uint16 (16-bit scans); other integers within
            [0, 255]; or float in [0, 1].

    Raises:
        io.ImageReadError: a path that cannot be read.
        ValueError: an array of another shape, type or range.
    """
    if isinstance(image, (str, os.PathLike)):
        return io.read_rgb(image)
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        return io.pil_to_rgb(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1) or (H, W, 3). Received: shape={array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"Expected a non-empty image. Received: shape={array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.uint16:
        return array.astype(np.float32) * np.float32(1.0 / 65535.0)
    if np.issubdtype(array.dtype, np.integer) and 0 <= array.min() and array.max() <= 255:
        return array.astype(np.uint8)  # e.g. an array built from Python ints
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"Expected uint8, uint16 or float pixels. Received: dtype={array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)) or low < -0.01 or high > 1.01:
        raise ValueError("Expected float pixels in [0, 1] (divide 0-255 values by 255). "
                         f"Received: min={low:g}, max={high:g}")
    return np.clip(array, 0.0, 1.0) if low < 0 or high > 1 else array


def lightness(pixels: np.ndarray) -> np.ndarray:
    """L (H, W) float32 in [0, 100] of pixels from `as_pixels`; equals `color.rgb_to_l`."""
    height, width = pixels.shape[:2]
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        # 256 gray levels have 256 values of L: a table from the same conversion.
        levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
        return cv2.LUT(pixels, color.rgb_to_l(levels).reshape(1, 256))
    l_full = np.empty((height, width), np.float32)

    def convert(start, stop, rgb, lab):
        source = pixels[start:stop]
        if source.dtype == np.uint8:
            np.multiply(source, _TO_UNIT, out=rgb)  # as color.rgb_to_lab scales uint8
        else:
            rgb[...] = source[..., None] if source.ndim == 2 else source
        l_full[start:stop] = color.rgb_to_lab(rgb, out=lab)[..., 0]

    over_strips(height, width, convert)
    return l_full


def lab_to_rgb_uint8(l_full: np.ndarray, ab_full: np.ndarray, lab_out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of L (H, W) and ab (H, W, 2); equals `color.lab_to_rgb(..., np.uint8)`.

    Args:
        lab_out: optional float32 (H, W, 3) array that receives the joined Lab.
    """
    height, width = l_full.shape
    rgb = np.empty((height, width, 3), np.uint8)

    def convert(start, stop, lab_buffer, rgb_buffer):
        lab = lab_out[start:stop] if lab_out is not None else lab_buffer
        lab[..., 0] = l_full[start:stop]
        lab[..., 1:] = ab_full[start:stop]
        out = color.lab_to_rgb(lab, out=rgb_buffer)  # clipped to [0, 1]
        # Scale and round exactly as color.lab_to_rgb(..., np.uint8) does, in place.
        np.multiply(out, np.float32(255.0), out=out)
        np.add(out, np.float32(0.5), out=out)
        np.copyto(rgb[start:stop], out, casting="unsafe")

    over_strips(height, width, convert)
    return rgb


def over_strips(height: int, width: int, convert) -> None:
    """Call `convert(start, stop, buffer_1, buffer_2)` for every strip of rows.

    Strips hold about `STRIP_PIXELS` pixels; bands of strips run in threads
    (`in_bands`). The two float32 buffers, (stop - start, width, 3) views,
    are allocated once per band, so no strip pays for fresh memory.
    """
    rows = strip_rows(width)

    def band(top, bottom):
        first = np.empty((rows, width, 3), np.float32)
        second = np.empty((rows, width, 3), np.float32)
        for start in range(top, bottom, rows):
            stop = min(start + rows, bottom)
            convert(start, stop, first[: stop - start], second[: stop - start])

    in_bands(height, band)


def strip_rows(width: int) -> int:
    """Rows per strip: about `STRIP_PIXELS` pixels, at least one row."""
    return max(1, STRIP_PIXELS // max(1, width))


def in_bands(height: int, work) -> None:
    """Call `work(top, bottom)` on one band of rows per available core, in threads."""
    workers = max(1, min(available_cores(), cv2.getNumThreads() or 1, height // 64))  # small images: one thread
    if workers == 1:
        work(0, height)
        return
    edges = np.linspace(0, height, workers + 1).round().astype(int)
    with ThreadPoolExecutor(workers) as pool:
        # list() re-raises the first error of any band.
        list(pool.map(work, edges[:-1].tolist(), edges[1:].tolist()))
