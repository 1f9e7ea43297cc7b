"""The colorization network: encoder, fusion, decoder and the two heads.

An encoder-fusion-decoder network in the style of Baldassarre et al.'s "Deep
Koalarization" (2017), with the classification head of Zhang et al.'s
"Colorful Image Colorization" (2016) as an alternative:

```
L (S x S x 1) --encoder--> S/8 x S/8 x 256
embedding (D) --repeat over the S/8 grid--> concat --1x1 conv--> 256
--decoder: conv 128, up, conv 64, conv 64 --> S/4 x S/4 x 64
   classification: 1x1 conv over Q bins, softmax          (S/4 x S/4 x Q)
   regression:     up, conv 32, conv 16, conv 2 tanh, up  (S x S x 2)
```

Model inputs are named "L" (`color.l_to_model(L)`, in [-1, 1]) and, unless
`embedding_dim` is None, "embedding"; dicts with these keys work everywhere.
A model built with `hints=True` also takes "hints" (Zhang et al. 2017,
"Real-Time User-Guided Image Colorization"): at the size of L, the hinted
ab / 128 where a user (or training) gives a colour and 0 elsewhere, and a
mask channel, 1 where a hint is. `HintPool` brings that map to the
bottleneck and to every decoder stride, so a point steers the colours around
it at each scale; an all-zero map means no hints (automatic colorization).
The hint layers live in `colorfusion.hints.layers`, and so does the bilinear
upsampling (`BilinearUpSampling2D`, Keras' numbers with the sides free, so
that an exported file takes any size), which `HintPool` uses too.
Outputs are ab / 128 for the regression head and bin probabilities for the
classification head. `inference_model` turns either into one model whose
output is ab / 128 at S x S, and `model_info` describes any of them, so that
code downstream never asks which head a model has.

With `encoder=NAME` a pretrained keras.applications backbone (`backbones`)
replaces the scratch encoder: its features at strides 2 to 32 feed a U-Net
decoder through skip connections (Larsson et al.'s hypercolumns, the
pretrained-ResNet U-Net of most colorization notebooks).

The network is built from module-level blocks (`Convs`, `HintMaps`,
`scratch_encoder`, `pretrained_encoder`, `fusion`, `unet_decoder`, the two
heads), one function per architecture (`_scratch_network`,
`_pretrained_network`), and `build_colorizer`, which checks its arguments
and picks the architecture (the layers, the blocks and the builders are one
idea, the network, hence the module's length). Layer names and the order of the weights are
part of the saved models (the shipped model stores its weights in
`model.get_weights()` order): keep them when changing a block.

The other custom layers live here, each registered for `.keras` files and
written with `keras.ops` only (TensorFlow, JAX, PyTorch), computing in
float32 even under mixed precision:

- `BinSoftmax`: the classification head's softmax; it carries the `ABBins`
  in its config, so a saved model knows its colours;
- `DecodeAB`: bin probabilities to ab / 128 by the expectation, the annealed
  mean (Zhang et al.: the expectation of the distribution sharpened with a
  temperature T) or the mode;
- `GrayToBackbone`: the L input to the gray image a pretrained encoder
  expects, through the same path as the semantic branch
  (`color.gray_rgb_from_l(L) * 255`, then the backbone's own
  `preprocess_input`), so a saved model needs nothing else at inference.

Why one file of over 700 lines: the network is one idea read top to bottom
(blocks, the builder of each architecture, the decode layer, `ModelInfo`);
split, every builder would import every block module back.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from colorfusion import backbones
from colorfusion.bins import ABBins
from colorfusion.color import AB_SCALE, L_MODEL_CENTER
from colorfusion.config import HEADS, HINT_BLENDS
from colorfusion.hints.layers import (
    BilinearUpSampling2D,
    ChooseByHints,
    HintAffinityBlend,
    HintBlend,
    HintPool,
    is_hint_layer,
)

HINTS_NAME = "hints"  # the optional input: (H, W, 3) = hinted a / 128, b / 128 (0 elsewhere), mask
OUTPUT_NAME = "ab"  # the layer giving ab / 128 at S x S (regression or decoded)
PROBS_NAME = "ab_probs"  # the classification head's softmax
ENCODER_NAME = "encoder_backbone"  # the pretrained encoder, one nested model (frozen / fine-tuned as a whole)
SCRATCH_FEATURES = "encoder_conv8"  # the scratch encoder's last convolution (its features at stride 8)
_UNET_FILTERS = {16: 256, 8: 128, 4: 64, 2: 32}  # decoder filters at each stride (times width)
DECODE_METHODS = ("expectation", "annealed_mean", "mode")
# The annealed-mean temperature everything decodes with unless told otherwise. Zhang et
# al. use 0.38; on held-out photos 0.7 scores a higher rebalanced AuC for a little less
# colourfulness (benchmarks/bench_quality.py, docs/experiments.md).
TEMPERATURE = 0.7
# A hint model's temperature when it is given hints: with points of the true colours, a sharper
# decoding gains PSNR at every count (the shipped model at 10 points: +4.22 dB at 0.5 against +3.78
# at 0.7; benchmarks/bench_test_time.py, docs/experiments.md), where without hints 0.7 stays best.
HINT_TEMPERATURE = 0.5


# === Layers ===


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

    def __init__(self, centers, method="annealed_mean", temperature=TEMPERATURE, **kwargs):
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


@keras.saving.register_keras_serializable(package="colorfusion")
class BroadcastToGrid(keras.layers.Layer):
    """A vector per example (B, D) repeated over the grid of a feature map (B, H, W, C) -> (B, H, W, D).

    Fuses a global vector (an embedding, the pooled encoder features) at
    every position of a feature map whose size is only known at run time, so
    that the network runs on photos of any shape (`RepeatVector` + `Reshape`
    fix the grid when the model is built).

    Example:
        tiled = BroadcastToGrid(name="global_grid")([vector, feature_map])
    """

    def call(self, inputs):
        vector, grid = inputs
        ones = ops.ones_like(ops.cast(grid[..., :1], vector.dtype))  # (B, H, W, 1)
        return vector[:, None, None, :] * ones

    def compute_output_shape(self, input_shapes):
        vector_shape, grid_shape = input_shapes
        return tuple(grid_shape[:-1]) + (vector_shape[-1],)


# === The network's blocks ===


@dataclass(frozen=True)
class Convs:
    """The network's own convolutions: filter counts times `width`, with or without BatchNorm.

    `conv(x, n, name)` is a `Conv2D` named `name` with `n * width` filters,
    then BatchNorm (`{name}_bn`) when `batchnorm`, then ReLU. Given
    `hint_maps`, a convolution of the hints (`{name}_hints`, zero at first)
    is added to its output before the normalisation and ReLU: a separate
    layer, so that a hint model holds every weight of the automatic model
    unchanged and can train the hint layers alone.
    """

    width: float = 1.0
    batchnorm: bool = False

    def filters(self, n: int) -> int:
        return max(1, int(round(n * self.width)))

    def __call__(self, x, n, name, strides=1, kernel=3, hint_maps=None, normalize=None):
        normalize = self.batchnorm if normalize is None else normalize
        x = layers.Conv2D(self.filters(n), kernel, strides=strides, padding="same", use_bias=not normalize,
                          activation="relu" if hint_maps is None and not normalize else None, name=name)(x)
        if hint_maps is not None:
            steer = layers.Conv2D(self.filters(n), kernel, padding="same", use_bias=False,
                                  kernel_initializer="zeros", name=f"{name}_hints")(hint_maps)
            x = layers.Add(name=f"{name}_plus_hints")([x, steer])
        if normalize:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
        if normalize or hint_maps is not None:
            x = layers.Activation("relu", name=f"{name}_relu")(x)
        return x


class HintMaps:
    """A hint model's "hints" input at each stride of the network, for the layers that read it.

    `at(stride)` is the map pooled to that stride, exact and spread from the
    bottleneck's grid (`HintPool`), built once per stride however many
    layers read it; `blend` moves a head's prediction toward the hints
    (`HintBlend`). For a model without hints (`hint_map` None) `at` gives
    None and `blend` the prediction unchanged.
    """

    def __init__(self, hint_map, l_input, bottleneck: int, blend: str = "lightness"):
        self.hint_map, self.l_input, self.bottleneck, self.blend_kind = hint_map, l_input, bottleneck, blend
        self._pooled = {}

    def at(self, stride: int):
        if self.hint_map is None:
            return None
        if stride not in self._pooled:
            # With the affinity blend carrying colour over objects, the decoder reads the points alone.
            self._pooled[stride] = HintPool(stride, spread_factor=self.bottleneck, spread=self.blend_kind != "affinity",
                                            name=f"hints_s{stride}")([self.hint_map, self.l_input])
        return self._pooled[stride]

    def blend(self, prediction, features, stride: int, centers=None):
        """`prediction` moved toward the hints' colour where the gate trusts it.

        "lightness" (`HintBlend`): toward the hints' spread colour, stopped at
        a change of lightness; "affinity" (`HintAffinityBlend`): toward the
        colour of the hints whose features and place are most like each
        cell's. The learnt gate starts open (sigmoid(2) = 0.88), i.e. at the
        untrained blend, and learns where a hint's colour ends.
        """
        if self.hint_map is None:
            return prediction
        maps = self.at(stride)
        gate = layers.Concatenate(name="hint_gate_inputs")([features, maps])
        gate = layers.Conv2D(1, 1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(2.0),
                             dtype="float32", name="hint_gate")(gate)
        if self.blend_kind == "affinity":
            return HintAffinityBlend(stride, centers, name="hint_affinity")([prediction, self.hint_map, features, gate])
        return HintBlend(centers, name="hint_blend")([prediction, maps, gate])


def model_inputs(side, embedding_dim=None, hints=False) -> dict:
    """The model's inputs by name, in order: "L", then "embedding" and "hints" when asked for."""
    inputs = {"L": keras.Input((side, side, 1), name="L")}
    if embedding_dim is not None:
        inputs["embedding"] = keras.Input((embedding_dim,), name="embedding")
    if hints:
        inputs[HINTS_NAME] = keras.Input((side, side, 3), name=HINTS_NAME)
    return inputs


def scratch_encoder(l_input, conv: Convs):
    """The Koalarization encoder, trained from zero: L to S/8 x S/8 x 256."""
    x = l_input
    for block, n in enumerate((64, 128, 256), start=1):
        x = conv(x, n, f"encoder_block{block}_conv1", strides=2)
        x = conv(x, n, f"encoder_block{block}_conv2")
    x = conv(x, 512, "encoder_conv7")
    return conv(x, 256, SCRATCH_FEATURES)


def pretrained_encoder(l_input, encoder, image_size, weights, seed, any_size) -> dict:
    """{stride: features} of a pretrained backbone (one nested model, `ENCODER_NAME`) at strides 2 to 32."""
    canonical = backbones.canonical_name(encoder)
    extractor = backbones.feature_extractor(canonical, image_size, weights=weights, seed=seed,
                                            name=ENCODER_NAME, any_size=any_size)
    rgb = GrayToBackbone(canonical, name="encoder_gray")(l_input)
    return {int(stride): tensor for stride, tensor in extractor(rgb).items()}


def fusion(x, embedding, global_features: bool, conv: Convs, hints: HintMaps):
    """The bottleneck with the embedding and / or the pooled features beside it, joined by a 1x1 convolution.

    The fusion convolution takes the bottleneck's hints. Returns `(x,
    fused)`: fused is False when there was nothing to fuse (x unchanged).
    """
    fused = [x]
    if embedding is not None:
        fused.append(BroadcastToGrid(name="fusion_grid")([embedding, x]))
    if global_features:
        g = layers.GlobalAveragePooling2D(name="global_pool")(x)
        g = layers.Dense(conv.filters(256), activation="relu", name="global_dense")(g)
        fused.append(BroadcastToGrid(name="global_grid")([g, x]))
    if len(fused) == 1:
        return x, False
    x = layers.Concatenate(name="fusion_concat")(fused)
    return conv(x, 256, "fusion_conv", kernel=1, hint_maps=hints.at(hints.bottleneck), normalize=False), True


def unet_decoder(x, skips: dict, stride: int, last: int, conv: Convs, hints: HintMaps):
    """Up x2 from `stride` to `last`, joining the encoder's features at each stride, two convolutions each."""
    while stride > last:
        stride //= 2
        x = BilinearUpSampling2D(2, name=f"decoder_up{stride}")(x)
        if stride in skips:
            x = layers.Concatenate(name=f"decoder_skip{stride}")([x, skips[stride]])
        n = _UNET_FILTERS[stride]
        x = conv(x, n, f"decoder_s{stride}_conv1", hint_maps=hints.at(stride))
        x = conv(x, n, f"decoder_s{stride}_conv2")
    return x


# The heads' last layers compute in float32 so mixed precision stays stable.


def classification_head(x, bins: ABBins, hints: HintMaps):
    """Bin probabilities at S/4 from decoder features at stride 4 (blended toward the hints)."""
    logits = layers.Conv2D(bins.num_bins, 1, dtype="float32", name="ab_logits")(x)
    probs = BinSoftmax(bins, name=PROBS_NAME)(logits)
    return hints.blend(probs, x, 4, bins.centers)


def regression_head(x, hints: HintMaps):
    """ab / 128 at S from decoder features at stride 2: tanh (blended toward the hints), then bilinear x2."""
    ab = layers.Conv2D(2, 3, padding="same", activation="tanh", dtype="float32", name="ab_tanh")(x)
    ab = hints.blend(ab, x, 2)
    return BilinearUpSampling2D(2, dtype="float32", name=OUTPUT_NAME)(ab)


# === The network ===


def build_colorizer(image_size=256, head="regression", embedding_dim=1000, num_bins=None,
                    width=1.0, bins=None, encoder="scratch", encoder_weights="imagenet",
                    global_features=False, batchnorm=None, seed=0, any_size=None, hints=False, hint_blend="lightness",
                    name="colorizer"):
    """Build the colorization network (a functional Keras model).

    Args:
        image_size: S, the side of the square input; a multiple of 8 (of 32
            with a pretrained encoder).
        head: "regression" (tanh ab / 128 at S x S, trained with MSE) or
            "classification" (softmax over ab bins at S/4 x S/4, trained with
            `losses.RebalancedCrossEntropy`).
        embedding_dim: D, the size of the semantic embedding fused at the
            bottleneck (1000 for InceptionResNetV2 logits), or None for a
            model with the L input only.
        num_bins: Q for the classification head; default 200, or the number
            of `bins` when given.
        width: multiplier of every filter count of the network's own layers
            (not of a pretrained encoder).
        bins: `ABBins` for the classification head; default
            `ABBins.default(num_bins)`. Stored in the model's config.
        encoder: "scratch" (the Koalarization encoder, trained from zero) or
            a backbone of `backbones.ENCODER_BACKBONES` ("mobilenet",
            "mobilenet_v2", "vgg16", "resnet50", "efficientnet_b0", ...): a
            pretrained network whose features at strides 2 to 32 feed a U-Net
            decoder through skip connections.
        encoder_weights: weights of a pretrained encoder: "imagenet", None
            (random) or a local `.h5` file (`backbones.resolve_weights`).
        global_features: also fuse the global average of the deepest encoder
            features at the bottleneck (the photo's gist, from the same
            encoder: no separate semantic backbone needed).
        batchnorm: BatchNorm after the network's own convolutions; None
            means on with a pretrained encoder, off for "scratch" (as in the
            paper).
        seed: seed of a randomly initialised pretrained encoder.
        any_size: build for inputs of any height and width (multiples of
            32): the network is convolutional, so a photo can be colorized
            at its own aspect ratio instead of squeezed into the training
            square. None means on with a pretrained encoder and off for
            "scratch" (whose models keep the fixed S x S input). `image_size`
            stays the size the model is trained at.
        hints: add the input "hints" (`HINTS_NAME`, at the size of L: hinted
            ab / 128 and a mask), pooled (`HintPool`) and added, through a
            convolution of its own, to the first convolution at the
            bottleneck and at every decoder stride, and blended into the
            output (`HintBlend`). The hint layers are separate, so
            `expand_weights` starts a hint model from an automatic one that
            colorizes exactly like it when given no hints.
        hint_blend: how a hint model's output follows the hints (`HINT_BLENDS`):
            "lightness" (`HintBlend`, release 0.2.0's) or "affinity"
            (`HintAffinityBlend`: the colour of the hints alike in features
            and near, so it stops at object edges; the decoder's hint
            convolutions then read the points only, `HintPool(spread=False)`).
        name: model name.

    Example:
        model = build_colorizer(64, head="classification", embedding_dim=None, width=0.25)
        probs = model.predict({"L": l_batch})  # (B, 16, 16, 200)
        unet = build_colorizer(128, head="classification", embedding_dim=None, encoder="mobilenet",
                               encoder_weights="mobilenet_2_5_224_tf_no_top.h5", global_features=True)
    """
    # === Arguments ===
    if not isinstance(image_size, int) or image_size < 8 or image_size % 8:
        raise ValueError(f"image_size must be a positive multiple of 8. Received: image_size={image_size!r}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}. Received: head={head!r}")
    if hint_blend not in HINT_BLENDS:
        raise ValueError(f"hint_blend must be one of {HINT_BLENDS}. Received: hint_blend={hint_blend!r}")
    if embedding_dim is not None and (not isinstance(embedding_dim, int) or embedding_dim < 1):
        raise ValueError(f"embedding_dim must be a positive integer or None. Received: embedding_dim={embedding_dim!r}")
    if not width > 0:
        raise ValueError(f"width must be positive. Received: width={width!r}")
    if num_bins is not None and (not isinstance(num_bins, int) or num_bins < 2):
        raise ValueError(f"num_bins must be an integer of at least 2. Received: num_bins={num_bins!r}")
    if encoder != "scratch" and backbones.canonical_name(encoder) not in backbones.ENCODER_BACKBONES:
        raise ValueError(
            f"encoder must be 'scratch' or one of {backbones.ENCODER_BACKBONES}. Received: encoder={encoder!r}")
    if head == "classification":
        if bins is None:
            bins = ABBins.default(num_bins or 200)
        elif num_bins is not None and num_bins != bins.num_bins:
            raise ValueError(f"num_bins must match bins ({bins.num_bins}). Received: num_bins={num_bins!r}")
    scratch = encoder == "scratch"
    conv = Convs(width, batchnorm=not scratch if batchnorm is None else batchnorm)
    any_size = not scratch if any_size is None else any_size
    inputs = model_inputs(None if any_size else image_size, embedding_dim, hints)

    # === Functional Model ===
    if scratch:
        outputs = _scratch_network(inputs, head, bins, conv, global_features, hint_blend)
    else:
        outputs = _pretrained_network(inputs, head, bins, conv, global_features, encoder, encoder_weights,
                                      image_size, any_size, seed, hint_blend)
    return keras.Model(list(inputs.values()), outputs, name=name)


def _scratch_network(inputs, head, bins, conv, global_features, hint_blend):
    """Koalarization: the scratch encoder to S/8, fusion, a plain decoder to S/4 (to S/2 for regression)."""
    l_input = inputs["L"]
    bottleneck = 8
    hints = HintMaps(inputs.get(HINTS_NAME), l_input, bottleneck, hint_blend)
    x = scratch_encoder(l_input, conv)
    x, fused = fusion(x, inputs.get("embedding"), global_features, conv, hints)
    # Without a fusion convolution the first decoder convolution takes the bottleneck's hints.
    x = conv(x, 128, "decoder_conv1", hint_maps=None if fused else hints.at(bottleneck))
    x = layers.UpSampling2D(2, name="decoder_up1")(x)
    x = conv(x, 64, "decoder_conv2", hint_maps=hints.at(4))
    x = conv(x, 64, "decoder_conv3")
    if head == "classification":
        return classification_head(x, bins, hints)
    x = layers.UpSampling2D(2, name="decoder_up2")(x)
    x = conv(x, 32, "decoder_conv4", hint_maps=hints.at(2))
    x = conv(x, 16, "decoder_conv5")
    return regression_head(x, hints)


def _pretrained_network(inputs, head, bins, conv, global_features, encoder, encoder_weights, image_size,
                        any_size, seed, hint_blend):
    """U-Net: a pretrained encoder to stride 32, fusion, up x2 with a skip at each stride to S/4 or S/2."""
    l_input = inputs["L"]
    features = pretrained_encoder(l_input, encoder, image_size, encoder_weights, seed, any_size)
    bottleneck = max(features)
    skips = {stride: tensor for stride, tensor in features.items() if stride < bottleneck}
    hints = HintMaps(inputs.get(HINTS_NAME), l_input, bottleneck, hint_blend)
    x = conv(features[bottleneck], 256, "encoder_bottleneck", kernel=1)
    x, _ = fusion(x, inputs.get("embedding"), global_features, conv, hints)
    last = 4 if head == "classification" else 2
    x = unet_decoder(x, skips, bottleneck, last, conv, hints)
    if head == "classification":
        return classification_head(x, bins, hints)
    return regression_head(x, hints)


def encoder_layer(model):
    """The pretrained encoder (a nested model) of a colorizer, or None for a scratch encoder."""
    found = [layer for layer in model.layers if layer.name == ENCODER_NAME]
    return found[0] if found else None


def set_encoder_trainable(model, trainable: bool, from_stride: int | None = None) -> bool:
    """Freeze or unfreeze a pretrained encoder; False when the model has none.

    Unfreezing leaves the encoder's BatchNormalization layers frozen: they keep
    their ImageNet statistics (a frozen BatchNorm runs in inference mode in
    Keras 3), as Keras' fine-tuning guides advise, so small batches of gray
    photos cannot drag them. With `from_stride` only the upper blocks train:
    the layers after the encoder's features at half that stride (16: the
    blocks that make the stride-16 and stride-32 features), the lower ones
    keep their ImageNet weights. Recompile the model afterwards: Keras fixes
    the trained weights at compile time.
    """
    layer = encoder_layer(model)
    if layer is None:
        return False
    layer.trainable = bool(trainable)
    if trainable:
        frozen_until = -1
        if from_stride is not None:
            backbone = next(g.backbone for g in model.layers if isinstance(g, GrayToBackbone))
            taps = backbones.BACKBONES[backbone].taps
            if from_stride // 2 not in taps:
                raise ValueError(f"from_stride must be twice one of the encoder's strides {sorted(taps)}. "
                                 f"Received: from_stride={from_stride!r}")
            names = [inner.name for inner in layer.layers]
            frozen_until = names.index(taps[from_stride // 2])
        for index, inner in enumerate(layer.layers):
            inner.trainable = index > frozen_until
        for inner in _nested_layers(layer):
            if isinstance(inner, layers.BatchNormalization):
                inner.trainable = False
    return True


def _nested_layers(layer):
    for inner in getattr(layer, "layers", ()):
        yield inner
        yield from _nested_layers(inner)


def _bin_softmax(model):
    found = [layer for layer in model.layers if isinstance(layer, BinSoftmax)]
    return found[0] if found else None


@dataclass(frozen=True)
class ModelInfo:
    """What a colorizer is, raw or inference, read from its graph (`model_info`): any head, any `.keras` file.

    `info["hints"]`, the reading of the dict this replaced, still works (`__getitem__`).
    """

    image_size: int | None  # S of a fixed square input, or None: any size (multiples of 32)
    encoder: str  # "scratch" or the backbone's name
    head: str  # "regression" or "classification"
    embedding_dim: int | None  # D of the "embedding" input, or None: no semantic input
    num_bins: int | None  # Q of a classification head
    bins: ABBins | None  # its bins
    hints: bool  # takes the "hints" input
    decoded: bool  # its output is already ab / 128 at S x S

    def __getitem__(self, key: str):
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


def model_info(model) -> ModelInfo:
    """Describe a colorizer, raw or inference, without caring about its head (`ModelInfo`)."""
    by_name = {tensor.name: tensor for tensor in model.inputs}
    if "L" not in by_name:
        raise ValueError(f"Not a colorfusion model: it has no input named 'L'. Received: inputs={list(by_name)}")
    image_size = by_name["L"].shape[1]  # None: any size (multiples of 32)
    embedding = by_name.get("embedding")
    softmax = _bin_softmax(model)
    output = model.outputs[0]
    gray = [layer for layer in model.layers if isinstance(layer, GrayToBackbone)]
    return ModelInfo(
        image_size=image_size,
        encoder=gray[0].backbone if gray else "scratch",
        head="classification" if softmax is not None else "regression",
        embedding_dim=None if embedding is None else embedding.shape[-1],
        num_bins=None if softmax is None else softmax.bins.num_bins,
        bins=None if softmax is None else softmax.bins,
        hints=HINTS_NAME in by_name,
        decoded=len(model.outputs) == 1 and output.shape[-1] == 2 and (
            softmax is None or any(isinstance(layer, DecodeAB) for layer in model.layers)),
    )


def model_bins(model):
    """The `ABBins` a classification model carries, or None for regression."""
    return model_info(model).bins


def shift_toward_rare_colours(model, strength: float) -> None:
    """Tilt a classification head toward the rare, vivid colours, in place: a logit adjustment.

    Adds `strength * log(w)` to the bias of the head's 1x1 convolution
    ("ab_logits"), with `w` the bins' rebalancing weights, so every
    probability becomes `p(q) * w(q) ** strength`, renormalised (Menon et
    al. 2021, "Long-tail learning via logit adjustment"). Trained to
    convergence, the cross-entropy's most likely colours are the common,
    cautious ones even under rebalancing; this moves the decoded colours
    toward the vivid ones with no training, and with the model it travels
    everywhere (hints, confidence, exports, fine-tuning's starting point).
    Release 0.4.0 is packed with strength 0.3, chosen on the photos that
    pick checkpoints (docs/experiments.md).

    Raises:
        ValueError: a regression model (no bins), or a model without "ab_logits".
    """
    bins = model_bins(model)
    if bins is None:
        raise ValueError("a regression model has no colour classes to shift")
    try:
        head = model.get_layer("ab_logits")
    except ValueError:
        raise ValueError("this model has no 'ab_logits' layer (an inference model? shift the raw one)") from None
    kernel, bias = head.get_weights()
    head.set_weights([kernel, (bias + float(strength) * np.log(bins.weights)).astype(bias.dtype)])


def expand_weights(source, target) -> None:
    """Copy the weights of `source` into `target`: the same network, or the same built with hints.

    Weights are matched by their path (layer and variable name) and copied;
    the hint layers, which only a hint `target` of an automatic `source` has,
    keep their initial values: the convolutions of the hints add zero, and
    the gate of `HintBlend` is open. With no hints the hint model then
    colorizes exactly as `source` does (Zhang et al. 2017 start their
    user-guided network the same way); given hints, it blends toward their
    spread colours until training teaches it better
    (`TrainConfig.train_only_hints` keeps the first promise through
    training). A hint model with another `hint_blend` than the source's
    takes everything but the source's blend layer; its own starts fresh.

    Raises:
        ValueError: the two models differ in more than the hint layers.
    """
    found = {w.path: w for w in source.weights}
    if len(found) != len(source.weights) or len({w.path for w in target.weights}) != len(target.weights):
        raise ValueError("weights share a path, so they cannot be matched by it")
    target_hints = any(is_hint_layer(w.path.split("/")[0]) for w in target.weights)
    # A hint model of another `hint_blend` leaves its own blend's weights behind.
    missing = sorted(path for path in set(found) - {w.path for w in target.weights}
                     if not (target_hints and is_hint_layer(path.split("/")[0])))
    if missing:
        raise ValueError(f"{len(missing)} weights have no place in the other model (first: {missing[0]})")
    for new in target.weights:
        old = found.get(new.path)
        if old is None:
            if not is_hint_layer(new.path.split("/")[0]):
                raise ValueError(f"{new.path}: the other model has no such weight")
        elif tuple(old.shape) != tuple(new.shape):
            raise ValueError(f"{new.path}: shape {tuple(new.shape)} cannot take {tuple(old.shape)}")
        else:
            new.assign(keras.ops.convert_to_numpy(old))


def inference_model(model, decode="annealed_mean", temperature=TEMPERATURE, hint_temperature=HINT_TEMPERATURE):
    """A model with the same inputs whose output is ab / 128 at S x S.

    A classification model's bin probabilities are decoded (`layers.DecodeAB`)
    and upsampled x4 (bilinear). A regression model, or a model that is
    already an inference model, is returned unchanged.

    Args:
        model: a model from `build_colorizer`, or an inference model.
        decode: "annealed_mean", "expectation" or "mode".
        temperature: T of the annealed mean.
        hint_temperature: for a hint model, T of the annealed mean for the
            examples given at least one hint (`ChooseByHints`); None:
            `temperature` for all.

    Example:
        ab = inference_model(model).predict({"L": l, "embedding": e}) * 128
    """
    if decode not in DECODE_METHODS:
        raise ValueError(f"decode must be one of {DECODE_METHODS}. Received: decode={decode!r}")
    info = model_info(model)
    if info.decoded:
        return model
    probs = model.outputs[0]
    ab = DecodeAB(info.bins.centers, method=decode, temperature=temperature, name="ab_decode")(probs)
    if info.hints and decode == "annealed_mean" and hint_temperature not in (None, temperature):
        hinted = DecodeAB(info.bins.centers, method=decode, temperature=hint_temperature,
                          name="ab_decode_hinted")(probs)
        hints = next(t for t in model.inputs if t.name == HINTS_NAME)
        ab = ChooseByHints(name="ab_by_hints")([ab, hinted, hints])
    # The classification head predicts at a quarter of the input size.
    factor = 4 if info.image_size is None else info.image_size // probs.shape[1]
    ab = BilinearUpSampling2D(factor, dtype="float32", name=OUTPUT_NAME)(ab)
    return keras.Model(model.inputs, ab, name=f"{model.name}_inference")
