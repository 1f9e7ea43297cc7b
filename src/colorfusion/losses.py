"""Losses: Zhang et al.'s rebalanced soft-encoded cross-entropy, and MSE.

Both heads train on the same targets, `y_true = ab / 128`:

- regression: mean squared error between `y_true` and the tanh output (at
  S x S);
- classification: `RebalancedCrossEntropy`, which soft-encodes `y_true`
  itself over the 5 nearest ab bins (Gaussian weights, sigma 5) and weights
  each pixel by the rebalancing weight of its nearest bin, so rare saturated
  colours are not drowned by the common desaturated ones. `y_pred` is the
  head's bin probabilities at S/4 x S/4; `y_true` may be given at that size
  or at any integer multiple of it (it is then area-downsampled).

Written with `keras.ops` only (TensorFlow, JAX and PyTorch) and
serializable, bins included.
"""

from __future__ import annotations

import keras
from keras import ops

from colorfusion.bins import ABBins


@keras.saving.register_keras_serializable(package="colorfusion")
class RebalancedCrossEntropy(keras.losses.Loss):
    """Class-rebalanced, soft-encoded multinomial cross-entropy.

    Per pixel: `-w(q*) * sum_q z_q log p_q`, with `z` the soft-encoding of
    the true ab, `q*` its nearest bin and `w` the bins' rebalancing weights.

    Args:
        bins: `ABBins` (or its config dict), the bins `y_pred` is over.
        rebalance: weight pixels by `bins.weights`; False gives the plain
            soft-encoded cross-entropy.
        epsilon: lower clip of the probabilities before the log.
        name: loss name.
        reduction: as for any Keras loss; the default averages over pixels.

    Example:
        model.compile("adam", loss=RebalancedCrossEntropy(model_bins(model)))
    """

    def __init__(self, bins, rebalance=True, epsilon=1e-7, name="rebalanced_cross_entropy",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(bins, dict):
            bins = ABBins.from_config(bins)
        if not isinstance(bins, ABBins):
            raise ValueError(f"bins must be an ABBins or its config dict. Received: bins={bins!r}")
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon must be in (0, 1). Received: epsilon={epsilon!r}")
        self.bins = bins
        self.rebalance = bool(rebalance)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        y_true = _match_size(y_true, y_pred)
        soft, weights = self.bins.encode(y_true)
        loss = -ops.sum(soft * ops.log(ops.clip(y_pred, self.epsilon, 1.0)), axis=-1)
        return loss * weights if self.rebalance else loss

    def get_config(self):
        return {
            **super().get_config(),
            "bins": self.bins.get_config(),
            "rebalance": self.rebalance,
            "epsilon": self.epsilon,
        }


def _match_size(y_true, y_pred):
    """Area-downsample full-size targets to the prediction's grid."""
    true_size, pred_size = y_true.shape[1], y_pred.shape[1]
    if true_size is None or pred_size is None or true_size == pred_size:
        return y_true
    if true_size % pred_size or y_true.shape[2] != y_pred.shape[2] * (true_size // pred_size):
        raise ValueError(
            "y_true must be at the size of y_pred or an integer multiple of it. "
            f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    factor = true_size // pred_size
    return ops.average_pool(y_true, factor, strides=factor, padding="valid")


def get_loss(head, bins=None, rebalance=True):
    """The loss for a head: MSE for "regression", `RebalancedCrossEntropy` for "classification".

    Args:
        head: "regression" or "classification".
        bins: the model's `ABBins` (classification only; see
            `model.model_bins`).
        rebalance: class rebalancing for the classification loss.
    """
    if head == "regression":
        return keras.losses.MeanSquaredError(name="mse")
    if head == "classification":
        if bins is None:
            raise ValueError("The classification loss needs the model's bins. Received: bins=None")
        return RebalancedCrossEntropy(bins, rebalance=rebalance)
    raise ValueError(f"head must be 'regression' or 'classification'. Received: head={head!r}")
