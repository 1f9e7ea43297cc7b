"""The hint layers: how the network reads the "hints" input, and training them alone.

A hint model (`build_colorizer(..., hints=True)`) takes, besides L, the
"hints" input (`model.HINTS_NAME`): at the size of L, the hinted ab / 128
where a user (or training) gives a colour and 0 elsewhere, and a mask
channel, 1 where a hint is (Zhang et al. 2017, "Real-Time User-Guided Image
Colorization"). Its layers:

- `HintPool` brings that map to the bottleneck and to every decoder stride,
  exact and spread over the hints' surroundings;
- `HintBlend` moves the network's output toward the hints' spread colours
  where hints are close and alike.

`BilinearUpSampling2D`, the network's upsampling wherever its sides are free,
lives here too: `HintPool` needs it, and `colorfusion.model` (which imports
this module) uses it for the decoder and the output.

The layers every hint model adds are named so `is_hint_layer` knows them
(`*_hints`, `hint_*`), and `set_only_hints_trainable` trains them alone.
They are registered for `.keras` files under `colorfusion>HintPool` and
`colorfusion>HintBlend`, so saved models and the shipped model load.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from colorfusion.color import AB_SCALE


def no_hints(l_scaled) -> np.ndarray:
    """The empty hint map (N, H, W, 3) for model inputs L (N, H, W, 1): automatic colorization."""
    return np.zeros(np.shape(l_scaled)[:-1] + (3,), np.float32)


@keras.saving.register_keras_serializable(package="colorfusion")
class ChooseByHints(keras.layers.Layer):
    """`[automatic, hinted, hints] -> hinted` for each example given a hint, `automatic` for the others.

    A hint model's inference network decodes its colours at one annealed-mean temperature
    without hints and at another with them (`model.inference_model`'s `hint_temperature`); an
    example's own hints map (its mask channel) says which applies, so a batch may mix both and
    an exported file keeps the choice.
    """

    def call(self, inputs):
        automatic, hinted, hints = inputs
        given = ops.max(ops.cast(hints[..., 2:3], "float32"), axis=(1, 2), keepdims=True) > 0
        return ops.where(given, hinted, automatic)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


def is_hint_layer(name: str) -> bool:
    """Whether a layer of a colorizer exists only for the hints (its weights steer by them)."""
    return name.endswith("_hints") or name.startswith("hint_")


def set_only_hints_trainable(model) -> None:
    """Freeze every layer but the hint layers: the automatic colorization stays exactly as it is.

    Frozen BatchNormalization layers run in inference mode (Keras 3), so
    their statistics stay too. Recompile the model afterwards.
    """
    for layer in model.layers:
        layer.trainable = is_hint_layer(layer.name)


# === Layers ===


@keras.saving.register_keras_serializable(package="colorfusion")
class BilinearUpSampling2D(keras.layers.Layer):
    """Keras' `UpSampling2D(factor, interpolation="bilinear")` (the same numbers) for sides known only at run time.

    Keras' layer computes its output size from the input's, but `ops.image.resize` checks that
    size's sign in Python, which a graph traced with free height and width cannot answer; so an
    ONNX file that takes any size could not be traced through it. On TensorFlow this calls
    `tf.image.resize`, what that op runs, with the size as a tensor. No weights: a model built with
    it loads the weights of one built with Keras' layer.

    Example:
        x = BilinearUpSampling2D(2, name="decoder_up8")(x)  # (B, H, W, C) -> (B, 2H, 2W, C)
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a positive integer. Received: factor={factor!r}")
        self.factor = int(factor)

    def call(self, inputs):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.image.resize(inputs, tf.shape(inputs)[1:3] * self.factor, method="bilinear")
        # JAX and PyTorch trace with the sides known.
        height, width = ops.shape(inputs)[1:3]
        return ops.image.resize(inputs, (height * self.factor, width * self.factor), interpolation="bilinear")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, *(None if side is None else side * self.factor for side in (height, width)), channels)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="colorfusion")
class HintPool(keras.layers.Layer):
    """`[hints (B, H, W, 3), L (B, H, W, 1)]` at stride `factor`, exact and spread: (B, H/f, W/f, 7).

    Channels 0-2, the points where they are: each cell's mean hinted ab / 128
    (0 where none) and 1 where it holds any hint, so a one-pixel hint stays a
    full-strength colour at stride 32, where an average would dilute it a
    thousandfold.

    Channels 3-5, the points spread over their surroundings: the same map at
    the coarser stride `spread_factor`, smoothed by a normalised Gaussian
    convolution (sigma `SPREAD_SIGMA` cells: each cell gets the distance-
    weighted mean colour of the hints around it, and their closeness, 1 on a
    hint falling to 0 far from all), upsampled bilinearly to stride `factor`.

    Channel 6, how much lighter or darker the cell is than the hints around
    it (model units, L / 50 - 1; 0 where none is near): a hint's colour
    belongs to its own object, and a change of lightness is the first sign
    of another (`HintBlend` uses it as a bilateral filter does).

    Why spread at all: a network that must learn to carry a point's colour
    across a region from the sparse map alone barely did so in three epochs
    (+0.04 dB with 10 points, docs/experiments.md "Colour hints: the design").
    Why not: the spread colour reaches everything near a point, wall and floor
    too, and a decoder that reads it paints them; with `HintAffinityBlend`
    carrying the colour over the object instead, the decoder gets the points
    only (`spread=False`: channels 3-6 are zero, the layout kept so that the
    weights of a model with spread fit).

    Args:
        factor: the stride, a power of two dividing the input's sides.
        spread_factor: the stride the spread is computed at (the model's
            bottleneck, a multiple of `factor`); default `factor`.
        spread: False leaves channels 3-6 at zero (the points where they are only).

    Example:
        maps = HintPool(8, spread_factor=32, name="hints_s8")([hints, l_input])  # (B, H/8, W/8, 7)
    """

    SPREAD_SIGMA = 2.0  # cells of the spread grid; chosen, not measured (the shipped hint layers were trained with it)
    CHANNELS = 7

    def __init__(self, factor, spread_factor=None, spread=True, **kwargs):
        super().__init__(**kwargs)
        self.spread = bool(spread)
        spread_factor = factor if spread_factor is None else spread_factor
        for name, value in (("factor", factor), ("spread_factor", spread_factor)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        if spread_factor % factor:
            raise ValueError(f"spread_factor must be a multiple of factor ({factor}). "
                             f"Received: spread_factor={spread_factor!r}")
        self.factor, self.spread_factor = int(factor), int(spread_factor)
        radius = int(np.ceil(2 * self.SPREAD_SIGMA))
        offsets = np.arange(-radius, radius + 1, dtype=np.float32)
        bell = np.exp(-0.5 * (offsets / self.SPREAD_SIGMA) ** 2)
        kernel = np.outer(bell, bell)  # 1 at the centre: closeness is 1 on a hint
        self._kernel = np.tile(kernel[:, :, None, None], (1, 1, 4, 1)).astype(np.float32)
        ratio = self.spread_factor // self.factor
        self._upsample = BilinearUpSampling2D(ratio, dtype="float32") if ratio > 1 else None

    def build(self, input_shape):
        # Nothing to create: the kernel is fixed and the upsampling has no weights.
        self.built = True

    @staticmethod
    def _pool(x, f):
        return ops.average_pool(x, f, strides=f, padding="valid") if f > 1 else x

    def _cells(self, hints, lightness, f):
        """(mean hinted ab * presence, mean L under the hints * presence, presence) of each f x f cell."""
        pooled = self._pool(ops.concatenate([hints, lightness * hints[..., 2:3]], axis=-1), f)
        count = pooled[..., 2:3] * float(f * f)  # hinted pixels in the cell
        present = ops.minimum(count, 1.0)
        means = ops.concatenate([pooled[..., :2], pooled[..., 3:4]], axis=-1) * float(f * f) / ops.maximum(count, 1e-6)
        return means * present, present

    def call(self, inputs):
        hints, lightness = (ops.cast(t, "float32") for t in inputs)
        local, present = self._cells(hints, lightness, self.factor)
        if not self.spread:  # channels 3-6 stay zero: the points only where they are
            zeros = ops.zeros_like(ops.concatenate([present, present, present, present], axis=-1))
            return ops.cast(ops.concatenate([local[..., :2], present, zeros], axis=-1), self.compute_dtype)
        coarse, coarse_present = self._cells(hints, lightness, self.spread_factor)
        # Normalised convolution: sum G * v * p / sum G * p, with sum G * p the closeness.
        smoothed = ops.depthwise_conv(ops.concatenate([coarse, coarse_present], axis=-1),
                                      ops.convert_to_tensor(self._kernel), strides=1, padding="same")
        weight = smoothed[..., 3:4]
        any_near = ops.minimum(weight * 1e3, 1.0)
        spread = ops.concatenate([smoothed[..., :3] / ops.maximum(weight, 1e-6) * any_near,
                                  ops.minimum(weight, 1.0), any_near], axis=-1)
        if self._upsample is not None:
            spread = self._upsample(spread)
        cell_lightness = self._pool(lightness, self.factor)
        difference = (cell_lightness - spread[..., 2:3]) * spread[..., 4:5]
        return ops.cast(ops.concatenate([local[..., :2], present, spread[..., :2], spread[..., 3:4], difference],
                                        axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        hints_shape = input_shape[0]
        side = [None if d is None else d // self.factor for d in hints_shape[1:3]]
        return (hints_shape[0], *side, self.CHANNELS)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "spread_factor": self.spread_factor,
                "spread": self.spread}


@keras.saving.register_keras_serializable(package="colorfusion")
class HintBlend(keras.layers.Layer):
    """The network's colours, moved toward the hints' spread colours where hints are close and alike.

    `[prediction, maps, gate_logit] -> (1 - g) * prediction + g * hinted`,
    with `g = sqrt(closeness) * similarity * sigmoid(gate_logit)`: the
    closeness of the hints (`HintPool` channel 5) says how near a point is;
    the similarity, `exp(-d^2 / 2 s^2)` of the lightness difference d to
    the hints (channel 6, with s a trained width, 10 L units at first),
    stops the colour at a change of lightness as a bilateral filter does;
    the gate (a convolution of the decoder's features, trained) says where
    else it does not apply. With no hints the closeness is 0 everywhere and
    the output is the network's own.
    `hinted` is the spread ab (channels 3-4) for a regression head, or for
    a classification head that colour soft-encoded over the bins (a Gaussian
    of `sigma` ab units over the bin centres, as the training targets are),
    so the output stays a distribution, trained by the same loss.

    Args:
        centers: (Q, 2) bin centres in ab units for a classification head;
            None for a regression head (ab / 128).
        sigma: the soft-encoding's width in ab units.
    """

    def __init__(self, centers=None, sigma=5.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.centers = None if centers is None else np.asarray(centers, np.float32)
        self.sigma = float(sigma)

    def build(self, input_shapes):
        # The lightness similarity's width, in model units (L / 50 - 1): 0.2 is 10 L units.
        self.log_width = self.add_weight(shape=(), initializer=keras.initializers.Constant(np.log(0.2)),
                                         name="log_width")
        self.built = True

    def call(self, inputs):
        prediction, maps, gate_logit = (ops.cast(t, "float32") for t in inputs)
        closeness = ops.maximum(maps[..., 5:6], 0.0)
        width = ops.exp(self.log_width)
        similarity = ops.exp(-0.5 * ops.square(maps[..., 6:7] / width))
        gate = ops.sqrt(closeness) * similarity * ops.sigmoid(gate_logit)
        spread_ab = maps[..., 3:5]
        hinted = spread_ab if self.centers is None else soft_encode(spread_ab, self.centers, self.sigma)
        return (1.0 - gate) * prediction + gate * hinted

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        centers = None if self.centers is None else self.centers.tolist()
        return {**super().get_config(), "centers": centers, "sigma": self.sigma}


def _hint_cells(hints, factor: int):
    """(mean hinted ab / 128 of each `factor` x `factor` cell, 1 where the cell holds any hint) of a hint map."""
    pooled = ops.average_pool(hints, factor, strides=factor, padding="valid") if factor > 1 else hints
    count = pooled[..., 2:3] * float(factor * factor)
    present = ops.minimum(count, 1.0)
    return pooled[..., :2] * float(factor * factor) / ops.maximum(count, 1e-6) * present, present


def soft_encode(ab_scaled, centers, sigma):
    """ab / 128 (..., 2) as a distribution over bin centres (Q, 2): a Gaussian of `sigma` ab units, normalised."""
    centers = ops.convert_to_tensor(centers, dtype="float32")
    distance2 = ops.sum(ops.square(ab_scaled[..., None, :] * AB_SCALE - centers), axis=-1)
    return ops.softmax(-distance2 / (2.0 * sigma ** 2), axis=-1)


@keras.saving.register_keras_serializable(package="colorfusion")
class HintAffinityBlend(keras.layers.Layer):
    """The network's colours moved toward the hints that belong to the same object: an attention over hints.

    `[prediction, hints, features, gate_logit] -> (1 - g) * prediction + g * hinted`. Every cell of the
    output grid (stride `factor`) looks at the cells holding hints (the hint map pooled to stride
    `2 * factor`) and weighs each by how alike their features are and how near it is:

        logit(i, j) = s * cos(q_i, q_j) - |x_i - x_j|^2 / (2 r^2)

    with q a learnt projection of the decoder's features, s a learnt sharpness and r a learnt
    reach (in cells). `hinted` is the softmax-weighted mean of the hints' colours (soft-encoded
    over the bins for a classification head), so each cell takes the colour of the hint most
    like it rather than the average of all near it; the support `exp(max_j logit - s)` is 1 on a
    hint and falls with distance and with unlikeness, so colour stops at an object's edge where
    the features change, not where the lightness does (`HintBlend`'s rule). The gate is
    `support * sigmoid(gate_logit)`. With no hints the support is 0: the output is the network's.

    Args:
        factor: the stride of `features` and of the output.
        centers: (Q, 2) bin centres in ab units for a classification head; None for regression.
        sigma: the soft-encoding's width in ab units.
        key_dim: the size of the projected features the affinity compares.
    """

    SCALAR_RATE = 10.0  # the sharpness and reach learn this many times faster than the other weights

    def __init__(self, factor, centers=None, sigma=5.0, key_dim=16, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a positive integer. Received: factor={factor!r}")
        if int(key_dim) != key_dim or key_dim < 1:
            raise ValueError(f"key_dim must be a positive integer. Received: key_dim={key_dim!r}")
        self.factor, self.key_dim = int(factor), int(key_dim)
        self.centers = None if centers is None else np.asarray(centers, np.float32)
        self.sigma = float(sigma)

    def build(self, input_shapes):
        channels = input_shapes[2][-1]
        # A random projection keeps the features' cosine similarity roughly (Johnson-Lindenstrauss), so
        # the untrained layer already prefers hints on features like the cell's own.
        self.projection = self.add_weight(shape=(channels, self.key_dim), initializer="glorot_uniform",
                                          name="projection")
        # The two scalars are stored as log(value) / SCALAR_RATE: Adam moves every weight by about the
        # learning rate a step, far too slowly for a log-scale (4 -> 5.5 in 1700 steps at 3e-4 in a first run).
        self.log_sharpness = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(np.log(4.0) / self.SCALAR_RATE), name="log_sharpness")
        # 16 cells at stride 4: 64 px of the network's input, as far as 0.2.0's Gaussian spread reaches.
        self.log_reach = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(np.log(64.0 / self.factor) / self.SCALAR_RATE),
            name="log_reach")
        self.built = True

    def call(self, inputs):
        prediction, hints, features, gate_logit = (ops.cast(t, "float32") for t in inputs)
        batch, height, width = ops.shape(features)[0], ops.shape(features)[1], ops.shape(features)[2]
        query = _unit(ops.matmul(features, ops.cast(self.projection, "float32")))
        # Each cell's place (row, column) in cells, from cumulative sums: no shape needed at build time.
        ones = ops.ones_like(features[..., :1])
        place = ops.concatenate([ops.cumsum(ones, axis=1), ops.cumsum(ones, axis=2)], axis=-1) - 1.0
        hint_ab, present = _hint_cells(hints, 2 * self.factor)
        key = _unit(ops.average_pool(query, 2, strides=2, padding="valid"))
        key_place = ops.average_pool(place, 2, strides=2, padding="valid")

        def flat(t):  # (B, h, w, C) -> (B, h * w, C)
            return ops.reshape(t, (batch, -1, ops.shape(t)[-1]))

        query, place, key, key_place, hint_ab, present = map(flat, (query, place, key, key_place, hint_ab, present))
        sharpness = ops.exp(self.log_sharpness * self.SCALAR_RATE)
        reach = ops.exp(self.log_reach * self.SCALAR_RATE)
        distance2 = (ops.sum(ops.square(place), axis=-1)[:, :, None]
                     + ops.sum(ops.square(key_place), axis=-1)[:, None, :]
                     - 2.0 * ops.matmul(place, ops.transpose(key_place, (0, 2, 1))))
        logits = (sharpness * ops.matmul(query, ops.transpose(key, (0, 2, 1))) - distance2 / (2.0 * reach ** 2)
                  + (ops.transpose(present, (0, 2, 1)) - 1.0) * 1e9)
        weights = ops.softmax(logits, axis=-1)
        hinted_ab = ops.matmul(weights, hint_ab)
        support = ops.exp(ops.minimum(ops.max(logits, axis=-1, keepdims=True) - sharpness, 0.0))
        hinted_ab = ops.reshape(hinted_ab, (batch, height, width, 2))
        support = ops.reshape(support, (batch, height, width, 1))
        hinted = hinted_ab if self.centers is None else soft_encode(hinted_ab, self.centers, self.sigma)
        gate = support * ops.sigmoid(gate_logit)
        return (1.0 - gate) * prediction + gate * hinted

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        centers = None if self.centers is None else self.centers.tolist()
        return {**super().get_config(), "factor": self.factor, "centers": centers, "sigma": self.sigma,
                "key_dim": self.key_dim}


def _unit(x):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))
