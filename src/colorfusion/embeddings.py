"""The semantic branch: a frozen keras.applications backbone, and an on-disk cache of its vectors.

`Embedder` turns a batch of L channels into one vector per image. The gray
image a backbone sees is `color.gray_rgb_from_l(L) * 255` (the package's only
notion of gray), resized to the backbone's input size, then passed through
the backbone's own `preprocess_input` (`backbones.preprocess_input`). For
InceptionResNetV2 that gives [-1, 1]; published versions of this
architecture fed [0, 1] images, which `preprocess_input` squeezed into
[-1, -0.99], so their semantic branch saw a nearly constant input.
`Embedder.preprocess` returns exactly what the backbone receives, so a test
can check it.

`EmbeddingCache` computes each file's vector once and reads it back in later
epochs and runs: InceptionResNetV2 costs about 150 ms an image on a CPU core,
so the semantic branch costs almost nothing after the first pass. A vector is
stored under a key made of the file's resolved path, size and mtime (a
changed file gets a new key), inside a folder named after the embedder's
identity (backbone, weights, output, input size) and the image size:
switching backbone never reuses stale vectors. Shards are written atomically;
a damaged one is reported, removed and rebuilt.

Example:

```python
embedder = Embedder("mobilenet", weights="weights/mobilenet_2_5_224_tf_no_top.h5", output="pooled")
cache = EmbeddingCache("cache/embeddings", embedder)
vectors = cache.get(files, image_size=256)        # (len(files), 256) float32
```
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from colorfusion import augment, backbones, color, io

OUTPUTS = ("predictions", "pooled")


def default_cache_dir() -> Path:
    """The embedding cache shared by all runs: `io.cache_root() / "embeddings"`."""
    return io.cache_root() / "embeddings"


def load_l(path, image_size: int) -> np.ndarray:
    """The L channel (S, S, 1) of a photo as the cache embeds it: centred square, resized."""
    return color.rgb_to_l(augment.load_square(path, image_size))


# === Embedder ===

class Embedder:
    """A frozen keras.applications backbone applied to L channels.

    The model is built on first use, so an embedder whose vectors are all
    cached never builds it.

    Args:
        backbone: a name of `backbones.BACKBONES` (any case, with or without
            underscores, or the keras class name: "InceptionResNetV2").
        weights: "imagenet" (downloads; needs network), None or "none" (random,
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
        self.backbone = backbones.canonical_name(backbone)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}. Received: output={output!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
        self.weights = backbones.resolve_weights(weights)
        if backbones.is_no_top_file(self.weights) and output == "predictions":
            raise ValueError(
                "A no-top weights file has no classifier; use output='pooled'. "
                f"Received: weights={Path(self.weights).name!r}, output={output!r}"
            )
        self.output = output
        self.batch_size = batch_size
        self.seed = int(seed)
        implied, native = backbones.kwargs_from_weights_file(self.backbone, self.weights)
        self.backbone_kwargs = {**implied, **backbone_kwargs}
        self.input_size = int(input_size or native or backbones.BACKBONES[self.backbone].native_size)
        self._weights_id = backbones.weights_id(self.weights, self.seed)
        self._model = None
        # Generator worker threads ("exact" embeddings) may all ask for the model first.
        self._build_lock = threading.Lock()

    @classmethod
    def for_run(cls, config: dict, weights=None) -> Embedder:
        """The embedder a training run used, from its `config.json` (a dict).

        Args:
            config: the run's configuration; {} (a bare model file) gives the
                training default, InceptionResNetV2 with ImageNet weights.
            weights: None keeps the run's weights; otherwise "imagenet",
                "none" (random, reproducible from the run's seed) or a
                weights file, for a machine where the run's cannot be had.
        """
        return cls(backbone=config.get("backbone", "inception_resnet_v2"),
                   weights=config.get("weights", "imagenet") if weights is None else weights,
                   output=config.get("embedding_output", "predictions"), seed=int(config.get("seed", 0)))

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
        model = backbones.build_backbone(self.backbone, self.input_size, weights=self.weights,
                                         include_top=self.output == "predictions",
                                         pooling="avg" if self.output == "pooled" else None, seed=self.seed,
                                         **self.backbone_kwargs)
        model.trainable = False
        return model

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
            gray = np.stack([io.resize(g, size, size) for g in gray])
        return np.asarray(backbones.preprocess_input(self.backbone, gray), dtype=np.float32)

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
        return (f"Embedder({self.backbone!r}, weights={self._weights_id!r}, output={self.output!r}, "
                f"input_size={self.input_size})")


# === Cache ===


class EmbeddingCache:
    """Embeddings of image files, computed once and kept on disk.

    Layout: `folder/<backbone>-<output>-<image_size>-<hash>/*.npz`, one folder
    per embedder identity; each `.npz` shard holds `keys` and `vectors`. New
    vectors are written in new shards (atomically), merged into one when
    there are many. A shard that cannot be read is reported with a warning,
    removed, and its entries recomputed.

    Args:
        folder: cache folder (created when needed).
        embedder: an `Embedder`.
        progress: show a tqdm progress bar while computing.
        flush_every: write a shard every this many new vectors, so an
            interrupted run keeps most of its work.

    Attributes:
        computed: how many vectors the last `get` computed.
        errors: `{path: reason}` for files that could not be read (their rows
            are zeros and nothing is stored for them).
    """

    max_shards = 16

    def __init__(self, folder, embedder: Embedder, progress: bool = True, flush_every: int = 1024):
        self.folder = Path(folder)
        self.embedder = embedder
        self.progress = progress
        self.flush_every = int(flush_every)
        self.computed = 0
        self.errors: dict[str, str] = {}
        self._stores: dict[int, dict[str, np.ndarray]] = {}

    def _identity(self, image_size: int) -> dict:
        return {**self.embedder.identity, "image_size": int(image_size)}

    def directory(self, image_size: int) -> Path:
        """The folder holding this embedder's vectors for `image_size`."""
        identity = self._identity(image_size)
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
        return self.folder / f"{self.embedder.backbone}-{self.embedder.output}-{image_size}-{digest}"

    @staticmethod
    def key(path) -> str:
        """Cache key of a file: its resolved path, size and mtime (raises OSError)."""
        path = Path(path).resolve()
        stat = path.stat()
        return hashlib.sha1(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()

    def get(self, paths, image_size: int = 256) -> np.ndarray:
        """Vectors (N, dim) float32 for `paths`, computing the missing ones."""
        paths = [Path(p) for p in paths]
        store = self._load(image_size)
        self.computed = 0
        keys = []
        for path in paths:
            try:
                keys.append(self.key(path))
            except OSError as e:
                keys.append(None)
                self._report(path, f"cannot access: {e.strerror or e}")
        missing = sorted({k: i for i, k in enumerate(keys) if k is not None and k not in store}.values())
        if missing:
            self._compute([paths[i] for i in missing], [keys[i] for i in missing], store, image_size)
        dim = next(iter(store.values())).shape[0] if store else self.embedder.dim
        zeros = np.zeros(dim, np.float32)
        if not keys:
            return np.zeros((0, dim), np.float32)
        return np.stack([store.get(k, zeros) if k is not None else zeros for k in keys])

    def _report(self, path, reason: str) -> None:
        if str(path) not in self.errors:
            self.errors[str(path)] = reason
            warnings.warn(f"{path}: {reason}; its embedding is zeros", stacklevel=3)

    def _compute(self, paths, keys, store, image_size) -> None:
        batch = self.embedder.batch_size
        pending: dict[str, np.ndarray] = {}
        with tqdm(total=len(paths), desc=f"embeddings ({self.embedder.backbone})", unit="img",
                  disable=not self.progress) as bar:
            for start in range(0, len(paths), batch):
                ls, ok = [], []
                for path, key in zip(paths[start : start + batch], keys[start : start + batch]):
                    try:
                        ls.append(load_l(path, image_size))
                        ok.append(key)
                    except io.ImageReadError as e:
                        self._report(path, e.reason)
                if ls:
                    for key, vector in zip(ok, self.embedder.embed_l(np.stack(ls))):
                        store[key] = pending[key] = vector
                    self.computed += len(ok)
                bar.update(len(paths[start : start + batch]))
                if len(pending) >= self.flush_every:
                    self._write(image_size, pending)
                    pending = {}
        if pending:
            self._write(image_size, pending)
        self._compact(image_size, store)

    # === Shards ===

    def _load(self, image_size: int) -> dict[str, np.ndarray]:
        if image_size in self._stores:
            return self._stores[image_size]
        store: dict[str, np.ndarray] = {}
        identity = json.dumps(self._identity(image_size), sort_keys=True)
        dim = None
        for shard in sorted(self.directory(image_size).glob("*.npz")):
            try:
                keys, vectors = self._read_shard(shard, identity, dim)
            except FileNotFoundError:
                continue  # compacted away by another process meanwhile
            except Exception as e:  # noqa: BLE001 - any damage means: rebuild these entries
                warnings.warn(f"embedding cache {shard}: damaged ({type(e).__name__}: {e}); rebuilding its entries",
                              stacklevel=3)
                shard.unlink(missing_ok=True)
                continue
            dim = vectors.shape[1]
            store.update(zip(keys.tolist(), vectors))
        self._stores[image_size] = store
        return store

    @staticmethod
    def _read_shard(shard: Path, identity: str, dim):
        with np.load(shard, allow_pickle=False) as data:
            keys, vectors, stored_identity = data["keys"], data["vectors"], str(data["identity"])
        if stored_identity != identity:
            raise ValueError("written by another embedder")
        if vectors.ndim != 2 or keys.ndim != 1 or len(keys) != len(vectors) or vectors.dtype != np.float32:
            raise ValueError(f"keys {keys.shape} and vectors {vectors.shape} {vectors.dtype} do not match")
        if dim is not None and vectors.shape[1] != dim:
            raise ValueError(f"vectors of length {vectors.shape[1]}, others have {dim}")
        if not np.isfinite(vectors).all():
            raise ValueError("non-finite values")
        return keys, vectors

    def _write(self, image_size: int, entries: dict[str, np.ndarray], name: str | None = None) -> None:
        directory = self.directory(image_size)
        name = name or f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        identity = json.dumps(self._identity(image_size), sort_keys=True)
        keys = np.array(list(entries), dtype="U40")
        vectors = np.stack(list(entries.values())).astype(np.float32)
        with io.atomic_write(directory / name) as f:
            np.savez(f, keys=keys, vectors=vectors, identity=np.array(identity))

    def _compact(self, image_size: int, store) -> None:
        shards = sorted(self.directory(image_size).glob("*.npz"))
        if len(shards) <= self.max_shards or not store:
            return
        self._write(image_size, store, name=f"{time.time_ns()}-merged.npz")
        for shard in shards:
            shard.unlink(missing_ok=True)
