"""On-disk cache of image embeddings, keyed by file and by embedder.

InceptionResNetV2 costs about 150 ms an image on a CPU core. The cache
computes each file's vector once, in batches with a progress bar, and reads
it back in later epochs and later runs, so the semantic branch costs almost
nothing after the first pass.

A vector is stored under a key made of the file's resolved path, size and
mtime (a changed file gets a new key, hence a new vector), inside a folder
named after the embedder's identity (backbone, weights, output, input size)
and the image size: switching backbone never reuses stale vectors. Shards are
written atomically; a damaged one is reported, removed and rebuilt.

Example:

```python
cache = EmbeddingCache("cache/embeddings", embeddings.Embedder(weights=None))
vectors = cache.get(files, image_size=256)        # (len(files), 1000) float32
```
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from colorfusion import augment, color, datasets, io

if TYPE_CHECKING:
    from colorfusion.embeddings import Embedder


def load_l(path, image_size: int) -> np.ndarray:
    """The L channel (S, S, 1) of a photo as the cache embeds it: centred square, resized."""
    return color.rgb_to_l(augment.fit_square(datasets.load_image(path, image_size), image_size))


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
        return np.stack([store.get(k, zeros) if k is not None else zeros for k in keys]) if keys else np.zeros((0, dim), np.float32)

    def _report(self, path, reason: str) -> None:
        if str(path) not in self.errors:
            self.errors[str(path)] = reason
            warnings.warn(f"{path}: {reason}; its embedding is zeros", stacklevel=3)

    def _compute(self, paths, keys, store, image_size) -> None:
        from tqdm.auto import tqdm

        batch = self.embedder.batch_size
        pending: dict[str, np.ndarray] = {}
        with tqdm(total=len(paths), desc=f"embeddings ({self.embedder.backbone})", unit="img", disable=not self.progress) as bar:
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
                warnings.warn(f"embedding cache {shard}: damaged ({type(e).__name__}: {e}); rebuilding its entries", stacklevel=3)
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
