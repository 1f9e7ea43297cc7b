"""Full-resolution pixels fast: a photo's lightness, and L + ab back to RGB, in cache-sized strips on every core.

A 12 MP photo is 144 MB as float32 RGB, and converting it in one piece spends
more time moving memory than converting. OpenCV's float Lab conversion is two
to three times faster on strips of about 64K pixels that stay in the CPU
cache, with buffers allocated once; bands of strips run on one thread per
core (OpenCV and numpy release the GIL). The conversions are
`color.rgb_to_lab` / `color.lab_to_rgb` writing into the strip buffers, so
results are bit for bit those of whole-image calls (`color` stays the one
owner of the Lab constants and formulas; this module only schedules them).

What a strip does is only what its result needs: channels are moved with
OpenCV (`extractChannel`, `merge`), not numpy's strided copies (three to
four times slower); a gray strip (R = G = B, as every B&W file reads) has one
value of L per level, so its lightness is a table lookup, exact; and the
engine's read (`lightness_pair`) computes L at full size while the photo
is resized for the network on the same threads.

    pixels = as_pixels("photo.jpg")          # uint8 or float32 [0, 1], gray or RGB
    l_full = lightness(pixels)               # (H, W) float32 in [0, 100]
    l_full, l_small = lightness_pair(pixels, 352, 256)  # and L of the photo resized for the network
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
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        return cv2.LUT(pixels, _gray_table())  # 256 gray levels have 256 values of L
    l_full = np.empty(pixels.shape[:2], np.float32)
    table = _gray_table() if looks_gray(pixels) else None
    in_parallel([lambda top=top, bottom=bottom: _lightness_bands(pixels, l_full, top, bottom, table)
                 for top, bottom in bands(pixels.shape[0])])
    return l_full


def lightness_pair(pixels: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(L (H, W) of `pixels`, L (height, width) of `pixels` resized by `io.resize`), float32: one photo's read.

    The small L is that of the RGB resized (`io.resize`, then its L), as in
    training; it equals `lightness(io.resize(pixels, width, height))`. The
    resize runs beside the bands of the full-size L, on the same threads.
    """
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        table = _gray_table()
        return cv2.LUT(pixels, table), cv2.LUT(io.resize(pixels, width, height), table)
    l_full = np.empty(pixels.shape[:2], np.float32)
    table = _gray_table() if looks_gray(pixels) else None
    small = []
    edges = bands(pixels.shape[0], per_core=4)  # several bands a core: the resize takes one core's share
    in_parallel([lambda: small.append(io.resize(pixels, width, height))]
                + [lambda top=top, bottom=bottom: _lightness_bands(pixels, l_full, top, bottom, table)
                   for top, bottom in edges])
    return l_full, lightness(small[0])


def small_lightness(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """L (height, width) of `pixels` resized by `io.resize`: `lightness_pair`'s second half alone."""
    return lightness(io.resize(pixels, width, height))


def looks_gray(pixels: np.ndarray) -> bool:
    """Whether uint8 RGB looks gray (R = G = B) on a few rows: then each strip is checked and, gray, looked up.

    A colour photo is told from those rows, so it pays almost nothing; a
    strip of a "gray" photo that is not gray is converted as colour, so the
    result never depends on the guess.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3:
        return False
    probe = np.ascontiguousarray(pixels[:: max(1, pixels.shape[0] // 8)])
    return _gray_of(probe) is not None


def _gray_of(rgb: np.ndarray) -> np.ndarray | None:
    """The one channel of uint8 RGB whose channels are all equal, else None."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # OpenCV's gray of (v, v, v) is v
    # The image equals its gray made RGB again only when R = G = B.
    return gray if cv2.norm(rgb, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), cv2.NORM_INF) == 0 else None


def _gray_table() -> np.ndarray:
    """(1, 256) float32: the L of each gray level, by the same conversion (`color.rgb_to_l`)."""
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    return color.rgb_to_l(levels).reshape(1, 256)


def _lightness_bands(pixels: np.ndarray, l_full: np.ndarray, top: int, bottom: int, table=None) -> None:
    """Fill rows [top, bottom) of `l_full` with the L of `pixels`, strip by strip (`over_strips`' buffers).

    With `table` (`_gray_table`), a strip whose channels are equal is looked up instead of converted.
    """

    def convert(start, stop, rgb, lab):
        source = pixels[start:stop]
        if table is not None:
            gray = _gray_of(source)
            if gray is not None:
                cv2.LUT(gray, table, dst=l_full[start:stop])
                return
        if source.dtype == np.uint8:
            np.multiply(source, _TO_UNIT, out=rgb)  # as color.rgb_to_lab scales uint8
        else:
            rgb[...] = source[..., None] if source.ndim == 2 else source
        cv2.extractChannel(color.rgb_to_lab(rgb, out=lab), 0, dst=l_full[start:stop])

    strips(top, bottom, pixels.shape[1], convert)


def lab_to_rgb_uint8(l_full: np.ndarray, ab_full: np.ndarray, lab_out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of L (H, W) and ab (H, W, 2); equals `color.lab_to_rgb(..., np.uint8)`.

    Args:
        lab_out: optional float32 (H, W, 3) array that receives the joined Lab.
    """
    height, width = l_full.shape
    l_full = np.asarray(l_full, np.float32)
    ab_full = np.asarray(ab_full, np.float32)
    rgb = np.empty((height, width, 3), np.uint8)

    def convert(start, stop, lab_buffer, rgb_buffer):
        lab = lab_out[start:stop] if lab_out is not None else lab_buffer
        cv2.merge([l_full[start:stop], ab_full[start:stop]], dst=lab)
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
    in_bands(height, lambda top, bottom: strips(top, bottom, width, convert))


def strips(top: int, bottom: int, width: int, convert) -> None:
    """`convert(start, stop, buffer_1, buffer_2)` for each strip of rows [top, bottom), on this thread."""
    rows = strip_rows(width)
    first = np.empty((rows, width, 3), np.float32)
    second = np.empty((rows, width, 3), np.float32)
    for start in range(top, bottom, rows):
        stop = min(start + rows, bottom)
        convert(start, stop, first[: stop - start], second[: stop - start])


def strip_rows(width: int) -> int:
    """Rows per strip: about `STRIP_PIXELS` pixels, at least one row."""
    return max(1, STRIP_PIXELS // max(1, width))


def in_bands(height: int, work) -> None:
    """Call `work(top, bottom)` on one band of rows per available core, in threads."""
    edges = bands(height)
    if len(edges) == 1:
        work(0, height)
        return
    in_parallel([lambda top=top, bottom=bottom: work(top, bottom) for top, bottom in edges])


def bands(height: int, per_core: int = 1) -> list[tuple[int, int]]:
    """[(top, bottom), ...]: `height` rows in `per_core` bands for each thread `in_bands` would use."""
    workers = max(1, min(available_cores(), cv2.getNumThreads() or 1, height // 64))  # small images: one thread
    count = 1 if workers == 1 else workers * per_core
    edges = np.linspace(0, height, count + 1).round().astype(int).tolist()
    return [(top, bottom) for top, bottom in zip(edges[:-1], edges[1:]) if bottom > top]


def in_parallel(jobs) -> None:
    """Run the callables `jobs` on one thread per available core (as `in_bands`), the first ones first."""
    workers = max(1, min(available_cores(), cv2.getNumThreads() or 1, len(jobs)))
    if workers == 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(workers) as pool:
        # list() re-raises the first error of any job.
        list(pool.map(lambda job: job(), jobs))
