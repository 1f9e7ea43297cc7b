"""Tests for colorfusion.bins: fitting, prior, weights, soft-encoding, files."""

import json

import numpy as np
import pytest
import skimage.data
from keras import ops

from colorfusion import color, io
from colorfusion.bins import ABBins, in_srgb_gamut, rebalancing_weights


@pytest.fixture(scope="module")
def default_bins():
    return ABBins.default()


def _near_srgb_colour(lab, tol=1.0):
    """Oracle via OpenCV: Lab survives a clipped round trip through sRGB."""
    back = color.rgb_to_lab(color.lab_to_rgb(lab))
    return np.abs(back - lab).max(-1) < tol


def _soft_encode_bruteforce(ab, centers, k=5, sigma=5.0):
    d2 = np.sum((ab[:, None, :] - centers[None]) ** 2, axis=-1)
    out = np.zeros_like(d2)
    for i, row in enumerate(d2):
        nearest = np.argsort(row)[:k]
        w = np.exp(-row[nearest] / (2 * sigma**2))
        out[i, nearest] = w / w.sum()
    return out


def _image_of_colours(rgb_colours, counts):
    pixels = np.concatenate([np.tile(np.asarray(c, np.uint8), (n, 1)) for c, n in zip(rgb_colours, counts)])
    return pixels.reshape(1, -1, 3)


# === Gamut and fitting ===


def test_every_bin_center_is_in_srgb_gamut(default_bins):
    # An in-gamut centre is (to 1 ab unit) the ab of a real sRGB colour.
    lightness = np.linspace(0, 100, 1001, dtype=np.float32)
    for a, b in default_bins.centers:
        lab = np.stack([lightness, np.full_like(lightness, a), np.full_like(lightness, b)], -1)
        assert np.any(_near_srgb_colour(lab)), (a, b)
    # ...and the oracle can fail: a point just outside the gamut.
    assert not np.any(_near_srgb_colour(np.stack([lightness, np.full_like(lightness, 100.0),
                                                  np.full_like(lightness, -110.0)], -1)))


def test_in_srgb_gamut_accepts_real_colours_and_rejects_impossible_ones():
    rgb = np.random.default_rng(0).integers(0, 256, (2000, 3), dtype=np.uint8)
    ab = color.rgb_to_lab(rgb)[:, 1:]
    # Real sRGB colours are in gamut (with a small slack for OpenCV rounding).
    assert np.mean(in_srgb_gamut(ab, tol=1e-2)) > 0.99
    assert not np.any(in_srgb_gamut(np.array([[120.0, -120.0], [-120.0, 120.0], [0.0, -125.0]])))


def test_fit_keeps_num_bins_grid_points_most_frequent_first(default_bins):
    assert default_bins.centers.shape == (200, 2)
    assert np.all(np.mod(default_bins.centers, 10) == 0)
    assert len(np.unique(default_bins.centers, axis=0)) == 200
    bins = ABBins.fit([skimage.data.chelsea()], num_bins=30)
    # Every occupied grid cell of the photo that is a kept bin carries mass,
    # and the kept bins are the most frequent cells.
    ab = color.rgb_to_lab(skimage.data.chelsea())[..., 1:].reshape(-1, 2)
    cells, counts = np.unique(np.rint(ab / 10) * 10, axis=0, return_counts=True)
    top = {tuple(c) for c in cells[np.argsort(-counts)[:10]]}
    assert top <= {tuple(c) for c in bins.centers}


def test_prior_is_the_share_of_pixels_nearest_each_bin():
    # Two colours, 3:1; their nearest bins must get 0.75 and 0.25.
    colours = [(200, 60, 40), (40, 90, 200)]
    bins = ABBins.fit([_image_of_colours(colours, [300, 100])], num_bins=20)
    nearest = bins.nearest(color.rgb_to_lab(np.array([colours], np.uint8))[0, :, 1:])
    np.testing.assert_allclose(bins.prior[nearest], [0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(bins.prior.sum(), 1.0, atol=1e-6)
    assert np.count_nonzero(bins.prior) == 2


def test_prior_smoothed_spreads_mass_to_neighbouring_bins(default_bins):
    prior, smoothed = default_bins.prior, default_bins.prior_smoothed
    np.testing.assert_allclose(smoothed.sum(), 1.0, atol=1e-6)
    # Unseen bins next to seen ones receive mass; the peak is flattened.
    unseen = prior == 0
    assert np.any(smoothed[unseen] > 1e-5)
    assert smoothed.max() < prior.max()
    assert np.argmax(smoothed) == np.argmax(prior)


def test_weights_satisfy_sum_prior_times_weights_equals_one(default_bins):
    np.testing.assert_allclose(np.sum(default_bins.prior * default_bins.weights), 1.0, rtol=1e-5)


def test_weights_follow_the_mixed_inverse_prior(default_bins):
    q = default_bins.num_bins
    expected = 1.0 / (0.5 * default_bins.prior_smoothed + 0.5 / q)
    ratio = default_bins.weights / expected
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)


def test_rarer_bins_get_more_weight(default_bins):
    order = np.argsort(default_bins.prior_smoothed)
    assert np.all(np.diff(default_bins.weights[order]) <= 1e-6)
    assert default_bins.weights[np.argmax(default_bins.prior)] < default_bins.weights[np.argmin(default_bins.prior)]
    assert default_bins.weights.max() > 2 * default_bins.weights.min()


def test_lam_one_gives_uniform_weights():
    weights = rebalancing_weights(np.array([0.7, 0.2, 0.1]), np.array([0.6, 0.3, 0.1]), lam=1.0)
    np.testing.assert_allclose(weights, 1.0, rtol=1e-6)


# === Soft-encoding ===


def test_soft_encoding_sums_to_one_and_peaks_at_the_nearest_bin(default_bins):
    ab = np.random.default_rng(1).uniform(-60, 60, (500, 2)).astype(np.float32)
    z = ops.convert_to_numpy(default_bins.soft_encode(ab / 128.0))
    assert z.shape == (500, default_bins.num_bins)
    np.testing.assert_allclose(z.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(z.argmax(-1), default_bins.nearest(ab))
    assert np.all(np.count_nonzero(z > 0, axis=-1) >= 5)


def test_soft_encoding_is_gaussian_over_the_five_nearest_bins(default_bins):
    ab = np.random.default_rng(2).uniform(-50, 50, (200, 2)).astype(np.float32)
    z = ops.convert_to_numpy(default_bins.soft_encode(ab / 128.0))
    np.testing.assert_allclose(z, _soft_encode_bruteforce(ab, default_bins.centers), atol=1e-4)


def test_soft_encoding_keeps_batch_and_spatial_shape(default_bins):
    ab_scaled = np.zeros((2, 4, 3, 2), np.float32)
    z, w = default_bins.encode(ab_scaled)
    assert tuple(z.shape) == (2, 4, 3, default_bins.num_bins)
    assert tuple(w.shape) == (2, 4, 3)
    np.testing.assert_allclose(ops.convert_to_numpy(w), default_bins.weights[default_bins.nearest([0.0, 0.0])])


def test_soft_encoding_of_a_far_off_colour_stays_finite(default_bins):
    z = ops.convert_to_numpy(default_bins.soft_encode(np.array([[1.0, -1.0]], np.float32)))
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z.sum(), 1.0, atol=1e-5)


def test_nearest_matches_brute_force(default_bins):
    ab = np.random.default_rng(3).uniform(-100, 100, (300, 2))
    d2 = np.sum((ab[:, None] - default_bins.centers[None]) ** 2, -1)
    np.testing.assert_array_equal(default_bins.nearest(ab), d2.argmin(-1))


# === Config and files ===


def test_config_round_trip_is_equal(default_bins):
    config = default_bins.get_config()
    restored = ABBins.from_config(json.loads(json.dumps(config)))
    for name in ("centers", "prior", "prior_smoothed", "weights"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(default_bins, name))
    assert restored.get_config() == config


def test_save_and_load_give_the_same_bins_in_one_small_file(default_bins, tmp_path):
    path = default_bins.save(tmp_path / "bins.json")
    assert path.stat().st_size < 64_000
    loaded = ABBins.load(path)
    np.testing.assert_array_equal(loaded.centers, default_bins.centers)
    np.testing.assert_array_equal(loaded.weights, default_bins.weights)
    assert [p.name for p in tmp_path.iterdir()] == ["bins.json"]  # no temporary left


def test_load_rejects_a_json_file_that_is_not_bins(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"centers": [[0, 0]]}))
    with pytest.raises(ValueError, match="Not an ABBins file"):
        ABBins.load(path)


def test_fit_files_skips_unreadable_files_with_a_warning(tmp_path, capsys):
    good = [io.write_image(tmp_path / f"{i}.png", skimage.data.chelsea()[::4, ::4]) for i in range(2)]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    bins = ABBins.fit_files([good[0], bad, good[1]], num_bins=50, progress=False)
    err = capsys.readouterr().err
    assert "broken.jpg" in err and len(err.strip().splitlines()) == 1
    expected = ABBins.fit([skimage.data.chelsea()[::4, ::4]] * 2, num_bins=50)
    np.testing.assert_allclose(bins.prior, expected.prior, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_bins": 0}, "num_bins"),
        ({"num_bins": 10_000}, "num_bins"),
        ({"sigma": 0}, "sigma"),
        ({"grid": -1}, "grid"),
        ({"lam": 1.5}, "lam"),
    ],
)
def test_bad_fit_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ABBins.fit([skimage.data.chelsea()[::8, ::8]], **kwargs)


def test_fit_without_pixels_raises_value_error():
    with pytest.raises(ValueError, match="no pixels"):
        ABBins.fit([])
