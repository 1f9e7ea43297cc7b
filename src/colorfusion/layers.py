"""Custom layers of the colorizer: the classification softmax and the decoder.

- `BinSoftmax` is the classification head's last layer: a softmax over the ab
  bins that also carries the `ABBins` in its config, so a saved model knows
  its colours and `load_model` alone is enough to decode its output.
- `DecodeAB` turns bin probabilities into ab / 128: the expectation, the
  annealed mean (Zhang et al.'s default: the expectation of the
  distribution sharpened with temperature T) or the mode.
- `GrayToBackbone` is the first layer of a pretrained encoder: the model's
  L input becomes the gray image the backbone expects, exactly as the
  semantic branch builds it (`color.gray_rgb_from_l(L) * 255`, then the
  backbone's own `preprocess_input`), so a saved model needs nothing else.

Both use `keras.ops` only, so they run on TensorFlow, JAX and PyTorch, and
compute in float32 even under a mixed-precision policy.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from colorfusion import backbones
from colorfusion.bins import ABBins
from colorfusion.color import AB_SCALE, L_MODEL_CENTER

DECODE_METHODS = ("expectation", "annealed_mean", "mode")


def _as_bins(bins) -> ABBins:
    if isinstance(bins, ABBins):
        return bins
    if isinstance(bins, dict):
        return ABBins.from_config(bins)
    raise ValueError(f"bins must be an ABBins or its config dict. Received: bins={bins!r}")


@keras.saving.register_keras_serializable(package="colorfusion")
class BinSoftmax(keras.layers.Layer):
    """Softmax over the ab bins of the last axis; carries the bins.

    Args:
        bins: `ABBins` (or its config dict) whose bins the probabilities are
            over; the input's last axis must have `bins.num_bins` entries.
        **kwargs: base layer arguments (`name`, `dtype`, ...). The dtype
            defaults to float32 so mixed precision never softmaxes in half.

    Example:
        probs = BinSoftmax(bins, name="ab_probs")(logits)
    """

    def __init__(self, bins, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.bins = _as_bins(bins)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.bins.num_bins:
            raise ValueError(
                f"BinSoftmax expects {self.bins.num_bins} channels (one per bin). "
                f"Received: input_shape={tuple(input_shape)}"
            )

    def call(self, logits):
        return ops.softmax(ops.cast(logits, self.compute_dtype), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "bins": self.bins.get_config()}


@keras.saving.register_keras_serializable(package="colorfusion")
class DecodeAB(keras.layers.Layer):
    """Bin probabilities (..., Q) to ab / 128 (..., 2).

    Args:
        centers: (Q, 2) bin centres in ab units (e.g. `ABBins.centers`).
        method: "expectation" (the mean colour: smooth but desaturated),
            "annealed_mean" (the mean of the distribution sharpened to
            `p ** (1 / T)`: vivid yet spatially consistent) or "mode" (the
            most probable bin: vivid, patchy).
        temperature: T of the annealed mean; T = 1 is the expectation and
            T -> 0 the mode. Zhang et al. use 0.38.
        **kwargs: base layer arguments; dtype defaults to float32.

    Example:
        ab_scaled = DecodeAB(bins.centers, "annealed_mean", 0.38)(probs)
    """

    def __init__(self, centers, method="annealed_mean", temperature=0.38, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        centers = np.asarray(centers, np.float32)
        if centers.ndim != 2 or centers.shape[1] != 2:
            raise ValueError(f"centers must have shape (Q, 2). Received: centers.shape={centers.shape}")
        if method not in DECODE_METHODS:
            raise ValueError(f"method must be one of {DECODE_METHODS}. Received: method={method!r}")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature!r}")
        self.centers = centers
        self.method = method
        self.temperature = float(temperature)

    def call(self, probs):
        probs = ops.cast(probs, "float32")
        centers = ops.convert_to_tensor(self.centers / AB_SCALE, dtype="float32")
        if self.method == "mode":
            return ops.take(centers, ops.argmax(probs, axis=-1), axis=0)
        if self.method == "annealed_mean":
            # f_T(z) = exp(log z / T) / sum exp(log z / T), in log space so a
            # small T cannot overflow.
            probs = ops.softmax(ops.log(ops.maximum(probs, 1e-12)) / self.temperature, axis=-1)
        return ops.matmul(probs, centers)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2,)

    def get_config(self):
        return {
            **super().get_config(),
            "centers": self.centers.tolist(),
            "method": self.method,
            "temperature": self.temperature,
        }


@keras.saving.register_keras_serializable(package="colorfusion")
class GrayToBackbone(keras.layers.Layer):
    """The model input `L / 50 - 1` (..., 1) to a backbone's preprocessed gray RGB (..., 3).

    Computes `color.gray_rgb_from_l(L) * 255` with `keras.ops` (CIE L to
    relative luminance Y, then the sRGB transfer curve; a = b = 0 makes the
    three channels equal), then applies the backbone's own
    `preprocess_input`: [-1, 1] for MobileNet, ImageNet-mean-subtracted BGR
    for VGG16 and ResNet50, [0, 255] for EfficientNet, which rescales
    inside.

    Args:
        backbone: a name of `backbones.BACKBONES`.
        **kwargs: base layer arguments; dtype defaults to float32.

    Example:
        rgb = GrayToBackbone("mobilenet", name="encoder_gray")(l_input)
    """

    def __init__(self, backbone, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.backbone = backbones.canonical_name(backbone)

    def call(self, l_scaled):
        lightness = (ops.cast(l_scaled, "float32") + 1.0) * L_MODEL_CENTER
        # CIE 1976: Y = ((L + 16) / 116) ** 3 above L = 8, L / kappa below (kappa = 24389 / 27).
        f = (lightness + 16.0) / 116.0
        luminance = ops.where(lightness > 8.0, f * f * f, lightness * (27.0 / 24389.0))
        luminance = ops.clip(luminance, 0.0, 1.0)
        # sRGB transfer curve.
        srgb = ops.where(luminance <= 0.0031308, 12.92 * luminance,
                         1.055 * ops.power(ops.maximum(luminance, 0.0031308), 1.0 / 2.4) - 0.055)
        rgb = ops.concatenate([srgb, srgb, srgb], axis=-1) * 255.0
        return backbones.preprocess_input(self.backbone, rgb)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (3,)

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}
