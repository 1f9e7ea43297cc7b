"""The semantic branch: a frozen keras.applications backbone and an embedding cache.

`Embedder` turns a batch of L channels into one vector per image. The gray
image a backbone sees is `color.gray_rgb_from_l(L) * 255` (the package's only
notion of gray), resized to the backbone's input size, then passed through
the backbone's own `preprocess_input`. For InceptionResNetV2 that gives
[-1, 1]; published versions of this architecture fed [0, 1] images, which
`preprocess_input` squeezed into [-1, -0.99], so their semantic branch saw a
nearly constant input. `Embedder.preprocess` returns exactly what the
backbone receives, so a test can check it.

`EmbeddingCache` (defined in `embedding_cache.py`, exported here) computes
each file's vector once and reads it back in later epochs and runs.

Example:

```python
embedder = Embedder("mobilenet", weights="weights/mobilenet_2_5_224_tf_no_top.h5", output="pooled")
cache = EmbeddingCache("cache/embeddings", embedder)
vectors = cache.get(files, image_size=256)        # (len(files), 256) float32
```
"""

from __future__ import annotations

import os
import random
import re
import threading
from pathlib import Path

import cv2
import numpy as np

from colorfusion import color
from colorfusion.embedding_cache import EmbeddingCache, load_l  # noqa: F401 - part of this module's API

# canonical name: (keras.applications class, module with preprocess_input, native input size)
BACKBONES = {
    "inception_resnet_v2": ("InceptionResNetV2", "inception_resnet_v2", 299),
    "inception_v3": ("InceptionV3", "inception_v3", 299),
    "xception": ("Xception", "xception", 299),
    "mobilenet": ("MobileNet", "mobilenet", 224),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", 224),
    "mobilenet_v3_small": ("MobileNetV3Small", "mobilenet_v3", 224),
    "mobilenet_v3_large": ("MobileNetV3Large", "mobilenet_v3", 224),
    "resnet50": ("ResNet50", "resnet50", 224),
    "resnet50_v2": ("ResNet50V2", "resnet_v2", 224),
    "vgg16": ("VGG16", "vgg16", 224),
    "densenet121": ("DenseNet121", "densenet", 224),
    "convnext_tiny": ("ConvNeXtTiny", "convnext", 224),
    **{
        f"efficientnet_b{i}": (f"EfficientNetB{i}", "efficientnet", size)
        for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))
    },
}
OUTPUTS = ("predictions", "pooled")

# Keras' own file names for MobileNet weights carry alpha and input size.
_MOBILENET_FILE = re.compile(r"^mobilenet_(\d_\d)_(\d+)_tf(_no_top)?\.h5$")
_MOBILENET_V2_FILE = re.compile(r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_([\d.]+)_(\d+)(_no_top)?\.h5$")


def _canonical(name: str) -> str:
    def norm(s):
        return re.sub(r"[^a-z0-9]", "", s.lower())

    table = {norm(k): k for k in BACKBONES} | {norm(v[0]): k for k, v in BACKBONES.items()}
    if not isinstance(name, str) or norm(name) not in table:
        raise ValueError(f"Unknown backbone; use one of {sorted(BACKBONES)}. Received: backbone={name!r}")
    return table[norm(name)]


class Embedder:
    """A frozen keras.applications backbone applied to L channels.

    The model is built on first use, so an embedder whose vectors are all
    cached never builds it.

    Args:
        backbone: a name of `BACKBONES` (any case, with or without
            underscores, or the keras class name: "InceptionResNetV2").
        weights: "imagenet" (downloads; needs network), None (random,
            reproducible from `seed`), or a path to a local `.h5` file. Keras
            MobileNet file names (`mobilenet_2_5_224_tf_no_top.h5`) set
            `alpha` and the input size.
        output: "predictions" (the classifier's softmax, 1000-d) or "pooled"
            (global-average-pooled features without the classifier, so a
            no-top weights file works).
        input_size: side of the backbone input; default the backbone's own.
        batch_size: images per forward pass.
        seed: seed of the random initialisation when `weights=None`.
        **backbone_kwargs: passed to the keras.applications constructor
            (e.g. `alpha=0.25` for MobileNet).

    Example:

    >>> embedder = Embedder("mobilenet", weights=None, input_size=32, alpha=0.25)
    >>> embedder.embed_l(np.full((2, 64, 64, 1), 50.0, np.float32)).shape
    (2, 1000)
    """

    def __init__(
        self,
        backbone: str = "inception_resnet_v2",
        weights: str | os.PathLike | None = "imagenet",
        output: str = "predictions",
        input_size: int | None = None,
        batch_size: int = 32,
        seed: int = 0,
        **backbone_kwargs,
    ):
        self.backbone = _canonical(backbone)
        class_name, module, native = BACKBONES[self.backbone]
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}. Received: output={output!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
        self.output = output
        self.batch_size = batch_size
        self.seed = int(seed)
        self.backbone_kwargs = dict(backbone_kwargs)
        if weights is None or weights == "imagenet":
            self.weights = weights
            self._weights_id = f"random(seed={self.seed})" if weights is None else "imagenet"
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise ValueError(f"weights must be 'imagenet', None or an existing file. Received: weights={str(weights)!r}")
            self.weights = str(path.resolve())
            stat = path.stat()
            self._weights_id = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
            if "no_top" in path.name and output == "predictions":
                raise ValueError(
                    "A no-top weights file has no classifier; use output='pooled'. "
                    f"Received: weights={path.name!r}, output={output!r}"
                )
            native = self._kwargs_from_file_name(path.name, native)
        self.input_size = int(input_size or native)
        self._class_name, self._module = class_name, module
        self._model = None
        # Generator worker threads ("exact" embeddings) may all ask for the model first.
        self._build_lock = threading.Lock()

    def _kwargs_from_file_name(self, name: str, native: int) -> int:
        pattern = {"mobilenet": _MOBILENET_FILE, "mobilenet_v2": _MOBILENET_V2_FILE}.get(self.backbone)
        match = pattern.search(name) if pattern else None
        if match is None:
            return native
        if self.backbone == "mobilenet_v2":
            alpha = float(match.group(1))
        else:
            alpha = {"1_0": 1.0, "7_5": 0.75, "5_0": 0.5, "2_5": 0.25}.get(match.group(1), 1.0)
        self.backbone_kwargs.setdefault("alpha", alpha)
        return int(match.group(2))

    # === Identity ===

    @property
    def identity(self) -> dict:
        """What determines the vectors: a cache never mixes two identities."""
        return {
            "backbone": self.backbone,
            "weights": self._weights_id,
            "output": self.output,
            "input_size": self.input_size,
            "kwargs": {k: repr(v) for k, v in sorted(self.backbone_kwargs.items())},
        }

    @property
    def dim(self) -> int:
        """Length of one vector (builds the model unless it is the 1000-class softmax)."""
        if self.output == "predictions" and self._model is None:
            return int(self.backbone_kwargs.get("classes", 1000))
        return int(self.model.output_shape[-1])

    # === Model ===

    @property
    def model(self):
        """The keras.applications model (built on first access)."""
        if self._model is None:
            with self._build_lock:
                if self._model is None:
                    self._model = self._build()
        return self._model

    def _build(self):
        import keras

        constructor = getattr(keras.applications, self._class_name)
        kwargs = {"input_shape": (self.input_size, self.input_size, 3), **self.backbone_kwargs}
        kwargs["include_top"] = self.output == "predictions"
        if self.output == "pooled":
            kwargs["pooling"] = "avg"
        # Keras draws unseeded initialiser seeds from Python's `random`:
        # seeding it here (and restoring it) makes weights=None reproducible.
        state = random.getstate()
        random.seed(self.seed)
        try:
            model = constructor(weights=self.weights, **kwargs)
        except Exception as e:
            if self.weights == "imagenet":
                raise RuntimeError(
                    f"Could not get the ImageNet weights of {self._class_name} ({type(e).__name__}: {e}). "
                    "They are downloaded on first use, which needs network access: pass weights=None "
                    "(random features) or the path of a local .h5 weights file."
                ) from e
            raise
        finally:
            random.setstate(state)
        model.trainable = False
        return model

    def _preprocess_input(self, x: np.ndarray) -> np.ndarray:
        import keras

        return getattr(keras.applications, self._module).preprocess_input(x)

    def preprocess(self, l_batch: np.ndarray) -> np.ndarray:
        """Exactly what the backbone receives for a batch of L channels.

        Args:
            l_batch: L in [0, 100], shape (N, H, W, 1) or (N, H, W).

        Returns:
            float32 (N, input_size, input_size, 3): `gray_rgb_from_l(L) * 255`,
            resized, then the backbone's `preprocess_input`.
        """
        l_batch = np.asarray(l_batch, np.float32)
        if l_batch.ndim == 3:
            l_batch = l_batch[..., None]
        if l_batch.ndim != 4 or l_batch.shape[-1] != 1:
            raise ValueError(f"Expected L of shape (N, H, W, 1). Received: shape={l_batch.shape}")
        gray = color.gray_rgb_from_l(l_batch) * np.float32(255.0)
        size = self.input_size
        if gray.shape[1:3] != (size, size):
            scale = size / max(gray.shape[1:3])
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            gray = np.stack([cv2.resize(g, (size, size), interpolation=interpolation) for g in gray])
        return np.asarray(self._preprocess_input(gray), dtype=np.float32)

    def embed_l(self, l_batch: np.ndarray) -> np.ndarray:
        """Vectors (N, dim) float32 for a batch of L channels in [0, 100]."""
        l_batch = np.asarray(l_batch, np.float32)
        if len(l_batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        chunks = []
        for start in range(0, len(l_batch), self.batch_size):
            x = self.preprocess(l_batch[start : start + self.batch_size])
            n = len(x)
            if start > 0 and n < self.batch_size:
                # Pad a short last chunk: a new input shape would retrace the
                # predict function, which costs seconds for a big backbone.
                x = np.concatenate([x, np.repeat(x[-1:], self.batch_size - n, axis=0)])
            chunks.append(np.asarray(self.model.predict_on_batch(x), dtype=np.float32)[:n])
        return np.concatenate(chunks).reshape(len(l_batch), -1)

    def __repr__(self) -> str:
        return f"Embedder({self.backbone!r}, weights={self._weights_id!r}, output={self.output!r}, input_size={self.input_size})"
