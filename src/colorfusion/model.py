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
Outputs are ab / 128 for the regression head and bin probabilities for the
classification head. `inference_model` turns either into one model whose
output is ab / 128 at S x S, and `model_info` describes any of them, so that
code downstream never asks which head a model has.
"""

from __future__ import annotations

import keras
from keras import layers

from colorfusion import losses  # noqa: F401  (registers the losses for load_model)
from colorfusion.bins import ABBins
from colorfusion.layers import DECODE_METHODS, BinSoftmax, DecodeAB

HEADS = ("regression", "classification")
OUTPUT_NAME = "ab"  # the layer giving ab / 128 at S x S (regression or decoded)
PROBS_NAME = "ab_probs"  # the classification head's softmax


def build_colorizer(image_size=256, head="regression", embedding_dim=1000, num_bins=None,
                    width=1.0, bins=None, name="colorizer"):
    """Build the colorization network (a functional Keras model).

    Args:
        image_size: S, the side of the square input; a multiple of 8.
        head: "regression" (tanh ab / 128 at S x S, trained with MSE) or
            "classification" (softmax over ab bins at S/4 x S/4, trained with
            `losses.RebalancedCrossEntropy`).
        embedding_dim: D, the size of the semantic embedding fused at the
            bottleneck (1000 for InceptionResNetV2 logits), or None for a
            model with the L input only.
        num_bins: Q for the classification head; default 200, or the number
            of `bins` when given.
        width: multiplier of every filter count (0.125-0.25 for tests and CPU
            runs).
        bins: `ABBins` for the classification head; default
            `ABBins.default(num_bins)`. Stored in the model's config.
        name: model name.

    Example:
        model = build_colorizer(64, head="classification", embedding_dim=None, width=0.25)
        probs = model.predict({"L": l_batch})  # (B, 16, 16, 200)
    """
    # === Arguments ===
    if not isinstance(image_size, int) or image_size < 8 or image_size % 8:
        raise ValueError(f"image_size must be a positive multiple of 8. Received: image_size={image_size!r}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}. Received: head={head!r}")
    if embedding_dim is not None and (not isinstance(embedding_dim, int) or embedding_dim < 1):
        raise ValueError(f"embedding_dim must be a positive integer or None. Received: embedding_dim={embedding_dim!r}")
    if not width > 0:
        raise ValueError(f"width must be positive. Received: width={width!r}")
    if num_bins is not None and (not isinstance(num_bins, int) or num_bins < 2):
        raise ValueError(f"num_bins must be an integer of at least 2. Received: num_bins={num_bins!r}")
    if head == "classification":
        if bins is None:
            bins = ABBins.default(num_bins or 200)
        elif num_bins is not None and num_bins != bins.num_bins:
            raise ValueError(f"num_bins must match bins ({bins.num_bins}). Received: num_bins={num_bins!r}")

    def filters(n):
        return max(1, int(round(n * width)))

    def conv(n, name, strides=1):
        return layers.Conv2D(filters(n), 3, strides=strides, padding="same", activation="relu", name=name)

    # === Inputs ===
    l_input = keras.Input((image_size, image_size, 1), name="L")
    inputs = [l_input]

    # === Encoder ===
    x = l_input
    for block, n in enumerate((64, 128, 256), start=1):
        x = conv(n, f"encoder_block{block}_conv1", strides=2)(x)
        x = conv(n, f"encoder_block{block}_conv2")(x)
    x = conv(512, "encoder_conv7")(x)
    x = conv(256, "encoder_conv8")(x)

    # === Fusion ===
    if embedding_dim is not None:
        embedding = keras.Input((embedding_dim,), name="embedding")
        inputs.append(embedding)
        grid = image_size // 8
        e = layers.RepeatVector(grid * grid, name="fusion_repeat")(embedding)
        e = layers.Reshape((grid, grid, embedding_dim), name="fusion_grid")(e)
        x = layers.Concatenate(name="fusion_concat")([x, e])
        x = layers.Conv2D(filters(256), 1, activation="relu", name="fusion_conv")(x)

    # === Decoder ===
    x = conv(128, "decoder_conv1")(x)
    x = layers.UpSampling2D(2, name="decoder_up1")(x)
    x = conv(64, "decoder_conv2")(x)
    x = conv(64, "decoder_conv3")(x)

    # === Heads === (last layers in float32 so mixed precision stays stable)
    if head == "classification":
        logits = layers.Conv2D(bins.num_bins, 1, dtype="float32", name="ab_logits")(x)
        outputs = BinSoftmax(bins, name=PROBS_NAME)(logits)
    else:
        x = layers.UpSampling2D(2, name="decoder_up2")(x)
        x = conv(32, "decoder_conv4")(x)
        x = conv(16, "decoder_conv5")(x)
        x = layers.Conv2D(2, 3, padding="same", activation="tanh", dtype="float32", name="ab_tanh")(x)
        outputs = layers.UpSampling2D(2, interpolation="bilinear", dtype="float32", name=OUTPUT_NAME)(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name=name)


def _bin_softmax(model):
    found = [layer for layer in model.layers if isinstance(layer, BinSoftmax)]
    return found[0] if found else None


def model_info(model) -> dict:
    """Describe a colorizer, raw or inference, without caring about its head.

    Returns:
        dict with `image_size` (S), `head` ("regression" or
        "classification"), `embedding_dim` (D or None), `num_bins` (Q or
        None), `bins` (`ABBins` or None) and `decoded` (True when the output
        is already ab / 128 at S x S).
    """
    by_name = {tensor.name: tensor for tensor in model.inputs}
    if "L" not in by_name:
        raise ValueError(f"Not a colorfusion model: it has no input named 'L'. Received: inputs={list(by_name)}")
    image_size = by_name["L"].shape[1]
    embedding = by_name.get("embedding")
    softmax = _bin_softmax(model)
    output = model.outputs[0]
    return {
        "image_size": image_size,
        "head": "classification" if softmax is not None else "regression",
        "embedding_dim": None if embedding is None else embedding.shape[-1],
        "num_bins": None if softmax is None else softmax.bins.num_bins,
        "bins": None if softmax is None else softmax.bins,
        "decoded": len(model.outputs) == 1 and output.shape[-1] == 2 and output.shape[1] == image_size,
    }


def model_bins(model):
    """The `ABBins` a classification model carries, or None for regression."""
    return model_info(model)["bins"]


def inference_model(model, decode="annealed_mean", temperature=0.38):
    """A model with the same inputs whose output is ab / 128 at S x S.

    A classification model's bin probabilities are decoded (`layers.DecodeAB`)
    and upsampled x4 (bilinear). A regression model, or a model that is
    already an inference model, is returned unchanged.

    Args:
        model: a model from `build_colorizer`, or an inference model.
        decode: "annealed_mean", "expectation" or "mode".
        temperature: T of the annealed mean.

    Example:
        ab = inference_model(model).predict({"L": l, "embedding": e}) * 128
    """
    if decode not in DECODE_METHODS:
        raise ValueError(f"decode must be one of {DECODE_METHODS}. Received: decode={decode!r}")
    info = model_info(model)
    if info["decoded"]:
        return model
    probs = model.outputs[0]
    ab = DecodeAB(info["bins"].centers, method=decode, temperature=temperature, name="ab_decode")(probs)
    factor = info["image_size"] // probs.shape[1]
    ab = layers.UpSampling2D(factor, interpolation="bilinear", dtype="float32", name=OUTPUT_NAME)(ab)
    return keras.Model(model.inputs, ab, name=f"{model.name}_inference")


def load_colorizer(path, compile=False):
    """Load a `.keras` colorizer (raw or inference) saved by `model.save`.

    Importing this module registers every custom layer and loss, so plain
    `keras.saving.load_model` works as well; this is the one-call version.
    """
    return keras.saving.load_model(path, compile=compile)
