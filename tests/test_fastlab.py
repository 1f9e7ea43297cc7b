"""`fastlab`: lightness and L + ab -> RGB in strips on threads, bit for bit the `color` module's whole-image results."""

import numpy as np
import pytest
from PIL import Image

from colorfusion import color, fastlab, io

# Shapes covering one strip, many strips, several thread bands, 1-pixel sides.
SHAPES = [(1, 1), (1, 300), (300, 1), (7, 9), (130, 70), (400, 333)]


@pytest.mark.parametrize("shape", SHAPES)
def test_lightness_of_uint8_colour_equals_color_module_bit_for_bit(shape):
    rgb = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    l = fastlab.lightness(rgb)
    assert l.dtype == np.float32 and l.shape == shape
    np.testing.assert_array_equal(l, color.rgb_to_l(rgb)[..., 0])


@pytest.mark.parametrize("shape", SHAPES)
def test_lightness_of_gray_and_float_inputs_equals_color_module(shape):
    gray = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    as_rgb = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_array_equal(fastlab.lightness(gray), color.rgb_to_l(as_rgb)[..., 0])
    as_float = as_rgb.astype(np.float32) / 255
    np.testing.assert_array_equal(fastlab.lightness(as_float), color.rgb_to_l(as_float)[..., 0])
    np.testing.assert_array_equal(fastlab.lightness(gray.astype(np.float32) / 255), color.rgb_to_l(as_float)[..., 0])


@pytest.mark.parametrize("shape", SHAPES)
def test_lab_to_rgb_uint8_equals_color_module_and_fills_lab_out(shape):
    rng = np.random.default_rng(2)
    l = rng.uniform(0, 100, shape).astype(np.float32)
    ab = rng.uniform(-110, 110, shape + (2,)).astype(np.float32)  # much of it out of gamut: clipping matters
    lab_out = np.zeros(shape + (3,), np.float32)
    rgb = fastlab.lab_to_rgb_uint8(l, ab, lab_out=lab_out)
    lab = np.concatenate([l[..., None], ab], axis=-1)
    np.testing.assert_array_equal(lab_out, lab)
    np.testing.assert_array_equal(rgb, color.lab_to_rgb(lab, dtype=np.uint8))


def test_in_bands_covers_every_row_once():
    seen = np.zeros(1000, int)

    def work(top, bottom):
        seen[top:bottom] += 1

    fastlab.in_bands(1000, work)
    assert (seen == 1).all()


def test_in_bands_uses_the_cores_hardware_counts(monkeypatch):
    bands = []
    monkeypatch.setattr(fastlab, "available_cores", lambda: 1)  # one core: one band, whatever OpenCV has
    fastlab.in_bands(1000, lambda top, bottom: bands.append((top, bottom)))
    assert bands == [(0, 1000)]
    monkeypatch.setattr(fastlab, "available_cores", lambda: 3)
    monkeypatch.setattr(fastlab.cv2, "getNumThreads", lambda: 8)
    bands.clear()
    fastlab.in_bands(1000, lambda top, bottom: bands.append((top, bottom)))
    assert sorted(bands) == [(0, 333), (333, 667), (667, 1000)]


def test_in_bands_reraises_a_band_error():
    def work(top, bottom):
        raise RuntimeError(f"band {top}")

    with pytest.raises(RuntimeError, match="band"):
        fastlab.in_bands(1000, work)


@pytest.mark.parametrize("array, expected_dtype, expected_shape", [
    (np.zeros((4, 5), np.uint8), np.uint8, (4, 5)),
    (np.zeros((4, 5, 1), np.uint8), np.uint8, (4, 5)),
    (np.zeros((4, 5, 3), np.float64), np.float32, (4, 5, 3)),
    (np.full((4, 5), 65535, np.uint16), np.float32, (4, 5)),
    (np.full((4, 5, 3), 200, np.int64), np.uint8, (4, 5, 3)),
])
def test_as_pixels_accepts_gray_colour_and_common_dtypes(array, expected_dtype, expected_shape):
    pixels = fastlab.as_pixels(array)
    assert pixels.dtype == expected_dtype and pixels.shape == expected_shape
    assert pixels.flags.c_contiguous


def test_as_pixels_scales_uint16_to_unit_range_and_reads_pil_images():
    assert fastlab.as_pixels(np.full((2, 2), 65535, np.uint16)).max() == pytest.approx(1.0)
    rgba = Image.new("RGBA", (6, 4), (10, 20, 30, 0))  # transparent: composited on white, as io does
    pixels = fastlab.as_pixels(rgba)
    assert pixels.shape == (4, 6, 3) and (pixels == 255).all()


@pytest.mark.parametrize("array, match", [
    (np.zeros((4, 5, 4), np.uint8), "shape"),
    (np.zeros((0, 5, 3), np.uint8), "non-empty"),
    (np.zeros((2, 4, 5, 3), np.uint8), "shape"),
    (np.full((4, 5, 3), 200.0, np.float32), "divide"),
    (np.full((4, 5), np.nan, np.float32), r"\[0, 1\]"),
    (np.full((4, 5), 300, np.int32), "dtype"),
    (np.zeros((4, 5), bool), "dtype"),
])
def test_as_pixels_rejects_other_shapes_types_and_ranges(array, match):
    with pytest.raises(ValueError, match=match):
        fastlab.as_pixels(array)


# === A gray photo's lightness is a table; the engine's read in one go ===


def counting_conversions(monkeypatch):
    """The calls of `color.rgb_to_lab` that fastlab makes from now on (the gray table is one)."""
    calls = []
    convert = color.rgb_to_lab
    monkeypatch.setattr(fastlab.color, "rgb_to_lab", lambda *args, **kw: calls.append(1) or convert(*args, **kw))
    return calls


@pytest.mark.parametrize("shape", SHAPES)
def test_lightness_of_gray_rgb_is_looked_up_and_equals_color_module(shape, monkeypatch):
    gray = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    as_rgb = np.repeat(gray[..., None], 3, axis=-1)
    expected = color.rgb_to_l(as_rgb)[..., 0]
    calls = counting_conversions(monkeypatch)
    np.testing.assert_array_equal(fastlab.lightness(as_rgb), expected)
    assert len(calls) == 1  # the table of the 256 levels, no strip converted


def test_a_coloured_strip_of_a_gray_looking_photo_is_converted_and_only_it(monkeypatch):
    rgb = np.repeat(np.random.default_rng(4).integers(0, 256, (4000, 300, 1), dtype=np.uint8), 3, axis=-1)
    assert fastlab.looks_gray(rgb)
    rgb[3901, 100, 2] ^= 1  # between the rows a photo is told gray from
    assert fastlab.looks_gray(rgb)
    expected = color.rgb_to_l(rgb)[..., 0]
    calls = counting_conversions(monkeypatch)
    np.testing.assert_array_equal(fastlab.lightness(rgb), expected)
    assert len(calls) == 2  # the table, and the one strip holding that pixel
    assert not fastlab.looks_gray(np.random.default_rng(5).integers(0, 256, (50, 60, 3), dtype=np.uint8))


@pytest.mark.parametrize("kind", ["colour", "gray_rgb", "gray", "float"])
@pytest.mark.parametrize("shape, small", [((30, 41), (64, 96)), ((700, 531), (64, 32)), ((1, 300), (32, 32))])
def test_lightness_pair_is_the_lightness_of_the_photo_and_of_it_resized(kind, shape, small):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    pixels = {"colour": rgb, "gray_rgb": np.repeat(rgb[..., :1], 3, axis=-1), "gray": rgb[..., 0],
              "float": rgb.astype(np.float32) / 255}[kind]
    height, width = small
    l_full, l_small = fastlab.lightness_pair(pixels, width, height)
    np.testing.assert_array_equal(l_full, fastlab.lightness(pixels))
    expected = fastlab.lightness(io.resize(pixels, width, height))
    np.testing.assert_array_equal(l_small, expected)
    np.testing.assert_array_equal(fastlab.small_lightness(pixels, width, height), expected)
