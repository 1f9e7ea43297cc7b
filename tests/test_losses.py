"""Tests for colorfusion.losses: rebalanced soft-encoded cross-entropy, MSE."""

import cv2
import keras
import numpy as np
import pytest
import skimage.data
from keras import ops

from colorfusion import color
from colorfusion.bins import ABBins
from colorfusion.losses import RebalancedCrossEntropy, get_loss
from colorfusion.model import build_colorizer, model_bins


@pytest.fixture(scope="module")
def bins():
    return ABBins.fit([skimage.data.chelsea(), skimage.data.astronaut()], num_bins=100)


@pytest.fixture(scope="module")
def batch():
    """Targets ab / 128 of two 16x16 photos and random bin probabilities."""
    photos = [skimage.data.chelsea(), skimage.data.astronaut()]
    ab = np.stack([color.rgb_to_lab(cv2.resize(p, (16, 16), interpolation=cv2.INTER_AREA))[..., 1:] for p in photos])
    rng = np.random.default_rng(0)
    logits = rng.normal(size=ab.shape[:-1] + (100,)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return color.ab_to_model(ab), probs


def _reference_loss(bins, y_true, y_pred, rebalance=True):
    """Zhang et al.'s loss written out in numpy, pixel by pixel."""
    ab = y_true.reshape(-1, 2) * 128.0
    probs = y_pred.reshape(-1, y_pred.shape[-1])
    total = []
    for x, p in zip(ab, probs):
        d2 = np.sum((bins.centers - x) ** 2, axis=-1)
        nearest = np.argsort(d2)[:5]
        z = np.exp(-d2[nearest] / (2 * 5.0**2))
        z /= z.sum()
        ce = -np.sum(z * np.log(p[nearest]))
        total.append(ce * (bins.weights[np.argmin(d2)] if rebalance else 1.0))
    return float(np.mean(total))


@pytest.mark.parametrize("rebalance", [True, False])
def test_cross_entropy_matches_the_written_out_formula(bins, batch, rebalance):
    y_true, y_pred = batch
    loss = RebalancedCrossEntropy(bins, rebalance=rebalance)
    value = float(ops.convert_to_numpy(loss(y_true, y_pred)))
    np.testing.assert_allclose(value, _reference_loss(bins, y_true, y_pred, rebalance), rtol=1e-4)


def test_cross_entropy_is_smallest_at_the_soft_encoding(bins, batch):
    y_true, y_pred = batch
    loss = RebalancedCrossEntropy(bins)
    target = ops.convert_to_numpy(bins.soft_encode(y_true))
    best = float(ops.convert_to_numpy(loss(y_true, target)))
    assert best < float(ops.convert_to_numpy(loss(y_true, y_pred)))
    blurred = 0.9 * target + 0.1 / bins.num_bins
    assert best < float(ops.convert_to_numpy(loss(y_true, blurred)))


def test_rebalancing_weights_rare_colours_more(bins):
    common = np.zeros((1, 1, 1, 2), np.float32)  # gray: the most frequent colour
    rare = bins.centers[np.argmin(bins.prior_smoothed)][None, None, None] / 128.0
    uniform = np.full((1, 1, 1, bins.num_bins), 1.0 / bins.num_bins, np.float32)
    weighted, plain = RebalancedCrossEntropy(bins), RebalancedCrossEntropy(bins, rebalance=False)
    ratio_common = float(ops.convert_to_numpy(weighted(common, uniform) / plain(common, uniform)))
    ratio_rare = float(ops.convert_to_numpy(weighted(rare, uniform) / plain(rare, uniform)))
    assert ratio_rare > 2 * ratio_common


def test_zero_probabilities_give_a_finite_loss(bins, batch):
    y_true, _ = batch
    one_hot = np.zeros(y_true.shape[:-1] + (bins.num_bins,), np.float32)
    one_hot[..., 0] = 1.0
    assert np.isfinite(float(ops.convert_to_numpy(RebalancedCrossEntropy(bins)(y_true, one_hot))))


def test_full_size_targets_are_area_downsampled_to_the_prediction(bins, batch):
    y_true, y_pred = batch
    big = np.stack([cv2.resize(y, (64, 64), interpolation=cv2.INTER_NEAREST) for y in y_true])
    loss = RebalancedCrossEntropy(bins)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(loss(big, y_pred))), float(ops.convert_to_numpy(loss(y_true, y_pred))), rtol=1e-5
    )
    with pytest.raises(ValueError, match="integer multiple"):
        loss(big[:, :60, :60], y_pred)


def test_loss_config_round_trip_keeps_bins_and_value(bins, batch):
    y_true, y_pred = batch
    loss = RebalancedCrossEntropy(bins, rebalance=False, name="ce")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, RebalancedCrossEntropy)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_array_equal(restored.bins.weights, bins.weights)
    np.testing.assert_allclose(ops.convert_to_numpy(restored(y_true, y_pred)), ops.convert_to_numpy(loss(y_true,
                                                                                                         y_pred)))
    again = RebalancedCrossEntropy.from_config(loss.get_config())
    assert again.get_config() == loss.get_config()


def test_compiled_classification_model_reloads_with_its_loss(tmp_path, batch):
    model = build_colorizer(64, head="classification", embedding_dim=None, width=0.125)
    model.compile(optimizer="adam", loss=get_loss("classification", model_bins(model)))
    model.optimizer.build(model.trainable_variables)  # saved and restored alike
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, RebalancedCrossEntropy)
    np.testing.assert_array_equal(loaded.loss.bins.centers, model_bins(model).centers)


def test_get_loss_picks_mse_for_regression_and_needs_bins_for_classification(bins):
    mse = get_loss("regression")
    y_true, y_pred = np.zeros((1, 2, 2, 2), np.float32), np.full((1, 2, 2, 2), 0.5, np.float32)
    np.testing.assert_allclose(float(ops.convert_to_numpy(mse(y_true, y_pred))), 0.25)
    assert isinstance(get_loss("classification", bins), RebalancedCrossEntropy)
    with pytest.raises(ValueError, match="bins"):
        get_loss("classification")
    with pytest.raises(ValueError, match="head"):
        get_loss("segmentation")


def test_bad_constructor_arguments_raise_value_error(bins):
    with pytest.raises(ValueError, match="bins"):
        RebalancedCrossEntropy([[0, 0]])
    with pytest.raises(ValueError, match="epsilon"):
        RebalancedCrossEntropy(bins, epsilon=0)
