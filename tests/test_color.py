import numpy as np
import pytest
from skimage import color as skcolor
from skimage import data

from colorfusion import color

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


@pytest.fixture(scope="module")
def srgb_sample():
    """200 k colours drawn from all 16.7 M sRGB colours, plus the cube's corners."""
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, size=(200_000, 3), dtype=np.uint8)
    corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], np.uint8)
    return np.concatenate([colours, corners])


def test_rgb_to_lab_matches_skimage_on_sampled_srgb_cube(srgb_sample):
    ours = color.rgb_to_lab(srgb_sample)
    oracle = skcolor.rgb2lab(srgb_sample[:, None, :]).reshape(-1, 3)
    max_error = np.abs(ours - oracle).max(axis=0)
    assert ours.dtype == np.float32
    assert np.all(max_error < 0.5), f"max |dL|, |da|, |db| = {max_error}"


@pytest.mark.parametrize("name", PHOTOS)
def test_rgb_to_lab_matches_skimage_on_photos(name):
    rgb = getattr(data, name)()
    ours = color.rgb_to_lab(rgb)
    oracle = skcolor.rgb2lab(rgb)
    assert np.abs(ours - oracle).max() < 0.5


def test_lab_to_rgb_matches_skimage_on_photo():
    lab = skcolor.rgb2lab(data.chelsea()).astype(np.float32)
    ours = color.lab_to_rgb(lab)
    oracle = skcolor.lab2rgb(lab)
    assert np.abs(ours - oracle).max() < 1.5 / 255


def test_uint8_round_trip_is_within_one_level(srgb_sample):
    back = color.lab_to_rgb(color.rgb_to_lab(srgb_sample), dtype=np.uint8)
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - srgb_sample.astype(int)).max() <= 1


def test_float_and_uint8_inputs_agree():
    rgb = data.coffee()
    assert np.allclose(color.rgb_to_lab(rgb), color.rgb_to_lab(rgb / 255.0), atol=1e-3)


def test_batches_equal_single_images():
    images = np.stack([data.astronaut()[:64, :64], data.chelsea()[:64, :64], data.coffee()[:64, :64]])
    batch = color.rgb_to_lab(images)
    assert batch.shape == (3, 64, 64, 3)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], color.rgb_to_lab(images[i]))
    np.testing.assert_array_equal(color.lab_to_rgb(batch)[1], color.lab_to_rgb(batch[1]))


def test_white_black_and_primaries_have_known_lab():
    rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8)
    lab = color.rgb_to_lab(rgb)
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.3)  # CIE reference for sRGB red


def test_bad_shapes_and_dtypes_raise_value_error():
    with pytest.raises(ValueError, match="last axis of 3"):
        color.rgb_to_lab(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        color.rgb_to_lab(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="dtype"):
        color.lab_to_rgb(np.zeros((4, 4, 3)), dtype=np.int16)


def test_model_scalings_are_exact_inverses():
    rng = np.random.default_rng(1)
    l = rng.uniform(0, 100, size=(8, 16, 16, 1)).astype(np.float32)
    ab = rng.uniform(-128, 127, size=(8, 16, 16, 2)).astype(np.float32)
    np.testing.assert_allclose(color.l_from_model(color.l_to_model(l)), l, atol=1e-5)
    np.testing.assert_allclose(color.ab_from_model(color.ab_to_model(ab)), ab, atol=1e-5)
    scaled = color.l_to_model(np.array([0.0, 50.0, 100.0]))
    np.testing.assert_allclose(scaled, [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(color.ab_to_model(np.array([-128.0, 64.0])), [-1.0, 0.5])


def test_split_and_join_lab_round_trip():
    lab = color.rgb_to_lab(data.astronaut()[:32, :32])
    l, ab = color.split_lab(lab)
    assert l.shape == (32, 32, 1) and ab.shape == (32, 32, 2)
    np.testing.assert_array_equal(color.join_lab(l, ab), lab)


@pytest.mark.parametrize("name", PHOTOS)
def test_gray_rgb_from_l_keeps_l_and_is_neutral(name):
    l = color.rgb_to_l(getattr(data, name)())
    gray = color.gray_rgb_from_l(l)
    assert gray.shape == l.shape[:-1] + (3,)
    assert gray.dtype == np.float32 and gray.min() >= 0 and gray.max() <= 1
    assert np.ptp(gray, axis=-1).max() < 1e-4  # R == G == B
    lab = color.rgb_to_lab(gray)
    assert np.abs(lab[..., 0:1] - l).max() < 0.5
    assert np.abs(lab[..., 1:]).max() < 0.5


def test_gray_rgb_from_l_accepts_l_without_channel_axis():
    l = np.linspace(0, 100, 11, dtype=np.float32)
    gray = color.gray_rgb_from_l(l)
    assert gray.shape == (11, 3)
    assert gray[0, 0] == pytest.approx(0, abs=1e-3) and gray[-1, 0] == pytest.approx(1, abs=1e-3)
    assert np.all(np.diff(gray[:, 0]) > 0)


def test_conversions_write_into_out_and_equal_the_allocating_ones():
    rgb = np.random.default_rng(4).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    lab_out = np.full(rgb.shape, np.nan, np.float32)
    assert color.rgb_to_lab(rgb, out=lab_out) is lab_out
    np.testing.assert_array_equal(lab_out, color.rgb_to_lab(rgb))
    lab = lab_out + np.float32(30.0)  # some colours outside the gamut: clipped in out too
    rgb_out = np.full(rgb.shape, np.nan, np.float32)
    assert color.lab_to_rgb(lab, out=rgb_out) is rgb_out
    np.testing.assert_array_equal(rgb_out, color.lab_to_rgb(lab))
    assert rgb_out.min() >= 0 and rgb_out.max() <= 1


@pytest.mark.parametrize("out", [np.zeros((4, 4, 3), np.float64), np.zeros((4, 5, 3), np.float32),
                                 np.zeros((4, 8, 3), np.float32)[:, ::2]])
def test_a_wrong_out_array_raises_value_error(out):
    rgb = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="out must be"):
        color.rgb_to_lab(rgb, out=out)
    with pytest.raises(ValueError, match="out must be"):
        color.lab_to_rgb(rgb.astype(np.float32), out=out)
    with pytest.raises(ValueError, match="only supported with dtype=np.float32"):
        color.lab_to_rgb(rgb.astype(np.float32), np.uint8, out=np.zeros((4, 4, 3), np.float32))
