"""Tests for colorfusion.metrics: AuC (raw, rebalanced), PSNR, SSIM, colorfulness."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorfusion import color, metrics

N_THRESHOLDS = 151  # t = 0, 1, ..., 150


class FakeBins:
    """The duck-typed interface metrics needs: `.nearest(ab)` and `.prior`."""

    def __init__(self, centers, prior):
        self.centers = np.asarray(centers, np.float64)
        self.prior = np.asarray(prior, np.float64)

    def nearest(self, ab):
        ab = np.asarray(ab, np.float64)
        d = ((ab[..., None, :] - self.centers) ** 2).sum(-1)
        return d.argmin(-1)


def random_ab(shape, seed=0):
    return np.random.default_rng(seed).uniform(-100, 100, size=shape + (2,))


def smooth_rgb(size=48, seed=0):
    """A smooth colourful uint8 image (gradients + blobs), not pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(2 * np.pi * (f * x + g * y) + p) for f, g, p in rng.uniform(0.5, 2, (3, 3))]
    return (127.5 + 120 * np.stack(channels, -1)).astype(np.uint8)


# === AuC ===


def test_auc_of_perfect_prediction_is_one():
    ab = random_ab((16, 16))
    assert metrics.auc(ab, ab.copy()) == 1.0
    np.testing.assert_array_equal(metrics.accuracy_curve(ab, ab), np.ones(N_THRESHOLDS))


@pytest.mark.parametrize(
    "error, expected",
    [
        # error e everywhere: the pixel counts at t = ceil(e), ..., 150, i.e.
        # at 150 - ceil(e) + 1 of the 151 thresholds; AuC = that / 151.
        (10.0, 141 / 151),  # (6, 8) offset: sqrt(36 + 64) = 10 exactly
        (10.5, 140 / 151),  # counts from t = 11
        (0.5, 150 / 151),  # misses only t = 0
        (150.0, 1 / 151),  # counts only at t = 150
        (150.5, 0.0),  # never within 150
    ],
)
def test_auc_of_constant_error_matches_hand_count(error, expected):
    ab_true = np.zeros((4, 5, 2))
    # Offset along the direction (0.6, 0.8) so the distance is exactly `error`.
    ab_pred = ab_true + np.array([0.6, 0.8]) * error
    assert metrics.auc(ab_true, ab_pred) == pytest.approx(expected, abs=1e-12)


def test_auc_of_half_right_half_far_is_one_half():
    # Half the pixels exact (counted at all 151 thresholds), half 200 away
    # (never counted): the curve is 0.5 everywhere, its mean 0.5.
    ab_true = np.zeros((2, 4, 2))
    ab_pred = ab_true.copy()
    ab_pred[1] = [200.0, 0.0]
    assert metrics.auc(ab_true, ab_pred) == pytest.approx(0.5)


def test_accuracy_curve_matches_brute_force_definition():
    ab_true = random_ab((12, 10), seed=1)
    ab_pred = random_ab((12, 10), seed=2)
    err = np.linalg.norm(ab_true - ab_pred, axis=-1)
    brute = (err[..., None] <= np.arange(N_THRESHOLDS)).mean(axis=(0, 1))
    curve = metrics.accuracy_curve(ab_true, ab_pred)
    np.testing.assert_allclose(curve, brute, atol=1e-12)
    assert np.all(np.diff(curve) >= 0)
    assert metrics.auc(ab_true, ab_pred) == pytest.approx(brute.mean())


def test_accuracy_curve_respects_max_threshold():
    ab = np.zeros((2, 2, 2))
    assert metrics.accuracy_curve(ab, ab + [3.0, 4.0], max_threshold=10).shape == (11,)
    # error 5: counted at t = 5..10, 6 of 11 thresholds.
    assert metrics.auc(ab, ab + [3.0, 4.0], max_threshold=10) == pytest.approx(6 / 11)


def test_auc_decreases_as_prediction_gets_worse():
    ab_true = random_ab((16, 16), seed=3)
    noise = np.random.default_rng(4).normal(size=ab_true.shape)
    values = [metrics.auc(ab_true, ab_true + scale * noise) for scale in (0, 2, 8, 20, 60)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_auc_of_batch_is_per_image():
    ab_true = random_ab((3, 8, 8), seed=5)
    ab_pred = random_ab((3, 8, 8), seed=6) * np.array([0.1, 0.5, 1.0])[:, None, None, None]
    batch = metrics.auc(ab_true, ab_pred)
    assert batch.shape == (3,)
    for i in range(3):
        assert batch[i] == pytest.approx(metrics.auc(ab_true[i], ab_pred[i]))
    assert metrics.accuracy_curve(ab_true, ab_pred).shape == (3, N_THRESHOLDS)


def test_auc_weights_weight_the_pixels():
    # Pixel 0 exact with weight 3, pixel 1 far with weight 1: curve 3/4.
    ab_true = np.zeros((1, 2, 2))
    ab_pred = np.array([[[0.0, 0.0], [200.0, 0.0]]])
    assert metrics.auc(ab_true, ab_pred, weights=np.array([[3.0, 1.0]])) == pytest.approx(0.75)


def test_auc_rejects_mismatched_shapes_and_bad_weights():
    with pytest.raises(ValueError, match="same shape"):
        metrics.auc(np.zeros((4, 4, 2)), np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match="weights"):
        metrics.auc(np.zeros((4, 4, 2)), np.zeros((4, 4, 2)), weights=np.ones((4, 5)))
    with pytest.raises(ValueError, match="weights"):
        metrics.auc(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), weights=np.array([[1.0, -1.0]]))


# === Rebalanced AuC ===

TWO_BINS = dict(centers=[[0.0, 0.0], [50.0, 50.0]], prior=[0.75, 0.25])


def test_rebalanced_auc_of_perfect_prediction_is_one():
    bins = FakeBins(**TWO_BINS)
    ab = random_ab((8, 8), seed=7)
    assert metrics.rebalanced_auc(ab, ab, bins) == 1.0


def test_rebalanced_auc_weights_pixels_by_inverse_prior():
    bins = FakeBins(**TWO_BINS)
    # Three pixels of the common bin (prior 0.75) predicted 200 away, one
    # pixel of the rare bin (prior 0.25) predicted exactly.
    ab_true = np.array([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [50.0, 50.0]]])
    ab_pred = np.array([[[200.0, 0.0], [200.0, 0.0], [200.0, 0.0], [50.0, 50.0]]])
    # Raw: 1 of 4 pixels right -> 0.25.
    assert metrics.auc(ab_true, ab_pred) == pytest.approx(0.25)
    # Rebalanced: weights 3 x 1/0.75 = 4 (wrong) against 1/0.25 = 4 (right) -> 0.5.
    assert metrics.rebalanced_auc(ab_true, ab_pred, bins) == pytest.approx(0.5)


def test_rebalanced_auc_with_zero_prior_bin_is_finite_and_uses_rarest_seen_weight():
    bins = FakeBins(centers=[[0.0, 0.0], [50.0, 50.0], [-50.0, -50.0]], prior=[0.8, 0.2, 0.0])
    # One pixel of bin 0 wrong (weight 1/0.8 = 1.25), one pixel of the
    # never-seen bin 2 right: it takes the rarest seen weight, 1/0.2 = 5.
    ab_true = np.array([[[0.0, 0.0], [-50.0, -50.0]]])
    ab_pred = np.array([[[200.0, 0.0], [-50.0, -50.0]]])
    value = metrics.rebalanced_auc(ab_true, ab_pred, bins)
    assert np.isfinite(value)
    assert value == pytest.approx(5.0 / (5.0 + 1.25))
    np.testing.assert_allclose(metrics.rebalanced_weights(ab_true, bins), [[1.25, 5.0]])


def test_rebalanced_auc_rejects_prior_without_positive_entry():
    bins = FakeBins(centers=[[0.0, 0.0]], prior=[0.0])
    with pytest.raises(ValueError, match="prior"):
        metrics.rebalanced_auc(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), bins)


def test_rebalanced_auc_of_batch_is_per_image():
    bins = FakeBins(**TWO_BINS)
    ab_true = random_ab((2, 6, 6), seed=8)
    ab_pred = random_ab((2, 6, 6), seed=9)
    batch = metrics.rebalanced_auc(ab_true, ab_pred, bins)
    assert batch.shape == (2,)
    assert batch[1] == pytest.approx(metrics.rebalanced_auc(ab_true[1], ab_pred[1], bins))


# === PSNR ===


def test_psnr_of_identical_images_is_capped_at_100_db_or_inf_on_request():
    rgb = smooth_rgb()
    assert metrics.psnr(rgb, rgb) == 100.0
    assert metrics.psnr(rgb, rgb, max_db=None) == np.inf


def test_psnr_of_off_by_one_everywhere_is_20_log10_255():
    # MSE = 1, so PSNR = 10 log10(255^2 / 1) = 48.1308 dB.
    rgb = np.full((8, 8, 3), 100, np.uint8)
    assert metrics.psnr(rgb, rgb + 1) == pytest.approx(20 * np.log10(255.0))


def test_psnr_matches_skimage_and_works_on_batches():
    a = np.stack([smooth_rgb(seed=s) for s in range(3)])
    b = np.stack([smooth_rgb(seed=s + 10) for s in range(3)])
    batch = metrics.psnr(a, b)
    assert batch.shape == (3,)
    for i in range(3):
        assert batch[i] == pytest.approx(peak_signal_noise_ratio(a[i], b[i], data_range=255))


def test_psnr_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


# === SSIM ===


def test_ssim_equals_skimage():
    a = smooth_rgb(64, seed=1)
    noise = np.random.default_rng(0).integers(-30, 30, a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    expected = structural_similarity(a, b, channel_axis=-1, data_range=255)
    assert metrics.ssim(a, b) == expected
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    batch = metrics.ssim(np.stack([a, a]), np.stack([b, a]))
    np.testing.assert_allclose(batch, [expected, 1.0])


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 9), (3, 4), (6, 6)])
def test_ssim_handles_images_smaller_than_the_window(shape):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    b = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    value = metrics.ssim(a, b)
    assert np.isfinite(value) and -1.0 <= value < 1.0
    assert metrics.ssim(a, a) == pytest.approx(1.0)


def test_ssim_of_small_image_uses_largest_odd_window_like_skimage():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    assert metrics.ssim_window(6, 9) == 5
    expected = structural_similarity(a, b, channel_axis=-1, data_range=255, win_size=5)
    assert metrics.ssim(a, b) == pytest.approx(expected)


# === Colorfulness ===


def test_colorfulness_of_any_gray_image_is_zero():
    gray = np.random.default_rng(3).integers(0, 256, (16, 16, 1), dtype=np.uint8)
    assert metrics.colorfulness(np.repeat(gray, 3, axis=-1)) == 0.0
    # The package's gray (a = b = 0) as uint8: channels exactly equal.
    gray_from_l = color.lab_to_rgb(color.join_lab(np.full((4, 4, 1), 37.0), np.zeros((4, 4, 2))), np.uint8)
    assert metrics.colorfulness(gray_from_l) == 0.0


def test_colorfulness_matches_hand_computation():
    # Pixels (100, 0, 0) and (0, 0, 0): rg = [100, 0], yb = [50, 0];
    # sd = 50 and 25, means = 50 and 25, so
    # M3 = sqrt(50^2 + 25^2) + 0.3 sqrt(50^2 + 25^2) = 1.3 sqrt(3125) = 72.672.
    rgb = np.array([[[100, 0, 0], [0, 0, 0]]], np.uint8)
    assert metrics.colorfulness(rgb) == pytest.approx(1.3 * np.sqrt(3125.0))
    # A flat pure red: no spread, only the mean term 0.3 sqrt(255^2 + 127.5^2).
    red = np.zeros((3, 3, 3), np.uint8)
    red[..., 0] = 255
    assert metrics.colorfulness(red) == pytest.approx(0.3 * np.hypot(255.0, 127.5))


def test_colorfulness_of_batch_is_per_image():
    batch = np.stack([smooth_rgb(seed=1), np.full((48, 48, 3), 90, np.uint8)])
    values = metrics.colorfulness(batch)
    assert values.shape == (2,)
    assert values[0] > 10 and values[1] == 0.0


# === image_metrics ===


def test_image_metrics_of_perfect_colorization():
    rgb = smooth_rgb(32)
    result = metrics.image_metrics(rgb, rgb.copy(), bins=FakeBins(**TWO_BINS))
    assert result["auc"] == 1.0
    assert result["rebalanced_auc"] == 1.0
    assert result["psnr"] == 100.0
    assert result["ssim"] == pytest.approx(1.0)
    assert result["colorfulness"] == pytest.approx(result["colorfulness_true"])


def test_image_metrics_of_gray_prediction_is_worse_and_colourless():
    rgb = smooth_rgb(32)
    gray = color.lab_to_rgb(color.join_lab(color.rgb_to_l(rgb), np.zeros((32, 32, 2))), np.uint8)
    result = metrics.image_metrics(rgb, gray)
    assert set(result) == {"auc", "psnr", "ssim", "colorfulness", "colorfulness_true"}
    assert result["auc"] < 1.0 and result["psnr"] < 100.0 and result["ssim"] < 1.0
    assert result["colorfulness"] == pytest.approx(0.0, abs=1.0)
    # The AuC is the one of the ab channels of the two images.
    ab_true = color.rgb_to_lab(rgb)[..., 1:]
    ab_gray = color.rgb_to_lab(gray)[..., 1:]
    assert result["auc"] == pytest.approx(metrics.auc(ab_true, ab_gray))


def test_image_metrics_rejects_batches_and_mismatched_sizes():
    rgb = smooth_rgb(16)
    with pytest.raises(ValueError, match="one image"):
        metrics.image_metrics(rgb[None], rgb[None])
    with pytest.raises(ValueError, match="same shape"):
        metrics.image_metrics(rgb, rgb[:8])


def test_rebalanced_auc_with_real_abbins_weights_by_inverse_prior():
    from colorfusion.bins import ABBins

    rgb = smooth_rgb(32, seed=2)
    bins = ABBins.fit([rgb], num_bins=20)
    ab_true = color.rgb_to_lab(rgb)[..., 1:]
    ab_pred = ab_true * 0.5  # desaturated: saturated (rare) colours miss most
    assert metrics.rebalanced_auc(ab_true, ab_true, bins) == 1.0
    prior = np.asarray(bins.prior, np.float64)
    weights = 1.0 / np.maximum(prior, prior[prior > 0].min())[bins.nearest(ab_true)]
    err = np.linalg.norm(ab_true - ab_pred, axis=-1)
    brute = ((err[..., None] <= np.arange(N_THRESHOLDS)) * weights[..., None]).sum((0, 1)) / weights.sum()
    value = metrics.rebalanced_auc(ab_true, ab_pred, bins)
    assert value == pytest.approx(brute.mean())
    assert value < metrics.auc(ab_true, ab_pred)


# === Blotch: gray truth painted vivid ===


def test_blotch_counts_vivid_paint_on_gray_truth_only():
    from colorfusion.metrics import blotch_counts

    truth = np.full((4, 4, 3), 128, np.uint8)  # gray
    truth[:, 2:] = (200, 40, 40)  # a red half: vivid there is right, never a blotch
    pred = truth.copy()
    pred[0, 0] = (40, 40, 220)  # one gray pixel painted vivid blue
    pred[1, 0] = (135, 128, 122)  # one painted a faint warm tint: not vivid
    pred[:, 3] = (40, 200, 40)  # the red half painted green: wrong, but not a blotch
    assert blotch_counts(truth, pred) == (1, 8)
    assert blotch_counts(np.stack([truth, truth]), np.stack([pred, truth])) == (1, 16)  # pooled over a batch
