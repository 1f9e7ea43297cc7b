"""The Keras data generator: files in, (L, embedding) -> ab batches out.

One batch: read each photo (decoding big JPEGs at a reduced scale), crop it
to `S x S` (random resized crop and flip when augmenting, the centred square
otherwise; small photos are upscaled), convert the whole batch to Lab in one
call, and split it into the network input `L / 50 - 1` and the target
`ab / 128`, at full resolution or area-averaged to `S / target_scale` for the
classification head.

The semantic input is, per `embedding`:

- `"cache"`: the file's vector from an `EmbeddingCache` (computed once from
  the un-augmented centred square; global semantics do not depend on a flip
  or a crop), all looked up when the generator is made;
- `"exact"`: the embedder applied to the augmented batch, every batch;
- `None`: no `"embedding"` input.

Reproducibility: the order of an epoch is a permutation drawn from
`(seed, epoch)`, and each image's augmentation is seeded from
`(seed, epoch, position)`, so two generators with the same arguments give the
same batches whatever the number of workers.

With `hints=True` (a model built with hints) each example also gets the
input "hints", colour points simulated from its own true ab as Zhang et al.
(2017) train their user-guided network: none for a share
`hint_free_fraction` of the examples (so automatic colorization keeps being
trained), else a number of points drawn from a geometric distribution
(p = 1/8, mean 8), each a square patch of 1 to 9 pixels at a uniformly
random place, whose mean ab is the hint (`hints.simulation`). Training draws
new points with every crop (seeded like the augmentation); without
augmentation (validation) a photo gets the same points every epoch.

With `damage` > 0, that share of the training crops (augmented ones only)
has its L damaged as an old print's scan would be (`damage.damage_lightness`:
grain, fading, blur, scratches, dust, JPEG; seeded like the augmentation)
while the target ab stays the clean photo's: the model learns to colour
through the damage. Validation stays clean.

A file that cannot be read is replaced by the next readable file of the list
and reported once (a warning naming it and the reason); an epoch never
crashes on one bad file.

Example:

```python
train = ColorizationGenerator(train_files, batch_size=16, augment=True, shuffle=True,
                              embedding="cache", cache=EmbeddingCache("cache", embedder))
x, y = train[0]      # x["L"] (16, 256, 256, 1), x["embedding"] (16, 1000), y (16, 256, 256, 2)
model.fit(train, epochs=10)
```
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import cv2
import keras
import numpy as np

from colorfusion import augment as augment_lib
from colorfusion import color, datasets, io
from colorfusion import damage as damage_lib
from colorfusion.config import HINT_FREE_FRACTION
from colorfusion.hints.simulation import simulate_hints

EMBEDDING_MODES = (None, "cache", "exact")


def _split_scaled(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(color.l_to_model(L), color.ab_to_model(ab))` of a Lab batch, contiguous.

    Done with OpenCV channel copies and in-place scaling because numpy's
    strided slices and temporaries cost more than the Lab conversion itself.
    The tests check the result equals `color.l_to_model` / `color.ab_to_model`.
    """
    b, s = lab.shape[:2]
    flat = lab.reshape(b * s, s, 3)
    l_scaled = cv2.extractChannel(flat, 0)
    l_scaled *= np.float32(1.0 / color.L_MODEL_CENTER)
    l_scaled -= np.float32(1.0)
    ab_scaled = np.empty((b * s, s, 2), np.float32)
    cv2.mixChannels([flat], [ab_scaled], [1, 0, 2, 1])
    ab_scaled *= np.float32(1.0 / color.AB_SCALE)
    return l_scaled.reshape(b, s, s, 1), ab_scaled.reshape(b, s, s, 2)


class ColorizationGenerator(keras.utils.PyDataset):
    """Batches of `({"L", "embedding"}, ab / 128)` from a list of photo files.

    Args:
        files: image paths.
        batch_size: images per batch; the last batch holds the remainder.
        image_size: side S of the square crops.
        augment: random resized crop + horizontal flip (geometry only).
        shuffle: a new order every epoch, drawn from `(seed, epoch)`.
        seed: seed of the order and of the augmentation.
        target_scale: 1 for ab at S x S (regression head), or an integer
            factor (4 for the classification head) dividing S: ab is
            area-averaged to (S / factor) x (S / factor).
        embedding: None, "cache" or "exact" (see the module docstring).
        embedder: an `embeddings.Embedder`; needed for "exact" (defaults to
            `cache.embedder`).
        cache: an `embeddings.EmbeddingCache`; needed for "cache".
        augment_options: keyword arguments of `augment.build_transform`
            (`scale`, `ratio`, `hflip`, `rotate`).
        hints: add x["hints"], colour points simulated from each example's
            true ab (see the module docstring), for a model built with hints.
        hint_free_fraction: the share of examples given no hints.
        damage: the share of training crops whose L gets old-photo damage
            (`damage.TRAINING`); 0: none. Ignored without `augment`.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size`, passed
            to `keras.utils.PyDataset`.
    """

    def __init__(
        self,
        files,
        batch_size: int = 16,
        image_size: int = 256,
        augment: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        target_scale: int = 1,
        embedding: str | None = None,
        embedder=None,
        cache=None,
        augment_options: dict | None = None,
        hints: bool = False,
        hint_free_fraction: float = HINT_FREE_FRACTION,
        damage: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("files must not be empty. Received: files=[]")
        for name, value in (("batch_size", batch_size), ("image_size", image_size), ("target_scale", target_scale)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        if image_size % target_scale:
            raise ValueError(
                f"target_scale must divide image_size ({image_size}). Received: target_scale={target_scale!r}"
            )
        if embedding not in EMBEDDING_MODES:
            raise ValueError(f"embedding must be one of {EMBEDDING_MODES}. Received: embedding={embedding!r}")
        if embedding == "cache" and cache is None:
            raise ValueError("embedding='cache' needs an EmbeddingCache. Received: cache=None")
        if embedding == "exact":
            embedder = embedder if embedder is not None else getattr(cache, "embedder", None)
            if embedder is None:
                raise ValueError("embedding='exact' needs an Embedder. Received: embedder=None")
            if self.use_multiprocessing:
                raise ValueError(
                    "embedding='exact' runs a Keras model in the workers: use threads. "
                    "Received: use_multiprocessing=True"
                )
        if not 0 <= hint_free_fraction <= 1:
            raise ValueError(
                f"hint_free_fraction must be in [0, 1]. Received: hint_free_fraction={hint_free_fraction!r}")
        self.hints = bool(hints)
        self.hint_free_fraction = float(hint_free_fraction)
        self.damage = damage_lib.TRAINING.with_probability(damage)  # checks it is a probability
        self.batch_size = int(batch_size)
        self.image_size = int(image_size)
        self.augment = bool(augment)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.target_scale = int(target_scale)
        self.embedding = embedding
        self.embedder = embedder if embedding == "exact" else None
        self.augment_options = dict(augment_options or {})
        # Fail now on bad options rather than in a worker.
        augment_lib.build_transform(self.image_size, train=self.augment, **self.augment_options)
        self.errors: dict[str, str] = {}
        self._bad: set[int] = set()
        self._local = threading.local()
        self._epoch = 0
        self._order = self._make_order()
        self._embeddings = None
        if embedding == "cache":
            self._embeddings = cache.get(self.files, self.image_size)
            by_name = {str(f): i for i, f in enumerate(self.files)}
            for path, reason in cache.errors.items():
                if path in by_name:
                    self._bad.add(by_name[path])
                    self.errors.setdefault(path, reason)

    # === Epochs and order ===

    def __len__(self) -> int:
        return -(-len(self.files) // self.batch_size)

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Jump to an epoch (e.g. when resuming training): its order and augmentation."""
        self._epoch = int(epoch)
        self._order = self._make_order()

    def on_epoch_end(self) -> None:
        self.set_epoch(self._epoch + 1)

    def _make_order(self) -> np.ndarray:
        # One augmentation seed per position of the epoch, drawn with the order.
        self._seeds = np.random.SeedSequence([self.seed, self._epoch]).generate_state(len(self.files))
        if not self.shuffle:
            return np.arange(len(self.files))
        return np.random.default_rng([self.seed, self._epoch]).permutation(len(self.files))

    # === Batches ===

    def __getitem__(self, index: int):
        rgb, used = self.rgb_batch(index, dtype=np.float32)
        lab = color.rgb_to_lab(rgb)
        if self.augment and self.damage.probability:
            self._damage_lightness(index, lab)
        l_scaled, ab_scaled = _split_scaled(lab)
        x = {"L": l_scaled}
        if self.embedding == "cache":
            x["embedding"] = self._embeddings[used]
        elif self.embedding == "exact":
            x["embedding"] = self.embedder.embed_l(color.l_from_model(l_scaled))
        if self.hints:
            x["hints"] = self._hints(index, ab_scaled)
        return x, self._targets(ab_scaled)

    def _damage_lightness(self, index: int, lab: np.ndarray) -> None:
        """Old-photo damage on the L of each crop of batch `index`, in place; ab stays the clean photo's."""
        first = index * self.batch_size
        for i in range(len(lab)):
            key = [int(self._seeds[first + i]), 3]  # the crop's own seed, a stream apart from its hints'
            lab[i, ..., 0] = damage_lib.damage_lightness(lab[i, ..., 0], key, self.damage)

    def _hints(self, index: int, ab_scaled: np.ndarray) -> np.ndarray:
        first = index * self.batch_size
        maps = []
        for i, ab in enumerate(ab_scaled):
            position = first + i
            # Training: new points with every crop. Validation (no augmentation): the same points
            # for the same photo every epoch, so val_loss compares epochs on equal terms.
            key = [int(self._seeds[position]), 1] if self.augment else [self.seed, int(self._order[position]), 2]
            maps.append(simulate_hints(ab, np.random.default_rng(key), hint_free_fraction=self.hint_free_fraction))
        return np.stack(maps)

    def rgb_batch(self, index: int, dtype=np.uint8) -> tuple[np.ndarray, np.ndarray]:
        """The RGB crops (B, S, S, 3) of batch `index`, before Lab.

        Args:
            index: batch index.
            dtype: `np.uint8` for [0, 255], or `np.float32` for [0, 1].

        Returns:
            `(rgb, used)`: the crops, and the index in `files` of the photo
            each came from (a replacement where a file was unreadable).
        """
        if not 0 <= index < len(self):
            raise IndexError(f"batch index out of range [0, {len(self)}). Received: index={index!r}")
        positions = range(index * self.batch_size, min((index + 1) * self.batch_size, len(self.files)))
        transform = self._transform()
        size = self.image_size
        batch = np.empty((len(positions), size, size, 3), dtype=dtype)
        used = np.empty(len(positions), dtype=np.int64)
        for i, position in enumerate(positions):
            used[i], rgb = self._read(int(self._order[position]))
            batch[i] = augment_lib.augment_image(transform, rgb, int(self._seeds[position]), size=size)
        if batch.dtype != np.uint8:
            batch *= np.float32(1.0 / 255.0)
        return batch, used

    def _targets(self, ab_scaled: np.ndarray) -> np.ndarray:
        f = self.target_scale
        if f == 1:
            return ab_scaled
        # Area average over f x f blocks (exact for a factor dividing S).
        b, s = ab_scaled.shape[0], self.image_size // f
        return ab_scaled.reshape(b, s, f, s, f, 2).mean(axis=(2, 4), dtype=np.float32)

    def _transform(self):
        # One albumentations pipeline per thread: a shared one would let two
        # worker threads reseed each other's random state.
        if not hasattr(self._local, "transform"):
            self._local.transform = augment_lib.build_transform(self.image_size, train=self.augment,
                                                                **self.augment_options)
        return self._local.transform

    def _read(self, file_index: int) -> tuple[int, np.ndarray]:
        """Read file `file_index`, or the next readable one after it."""
        n = len(self.files)
        for step in range(n):
            candidate = (file_index + step) % n
            if candidate in self._bad:
                continue
            try:
                return candidate, datasets.load_image(self.files[candidate], self.image_size)
            except io.ImageReadError as e:
                self._bad.add(candidate)
                self._report(self.files[candidate], e.reason)
        raise RuntimeError(f"None of the {n} files could be read; first error: {next(iter(self.errors.items()))}")

    def _report(self, path: Path, reason: str) -> None:
        if str(path) not in self.errors:
            self.errors[str(path)] = reason
            warnings.warn(f"{path}: {reason}; replaced by another photo", stacklevel=2)

    # === Pickling (multiprocessing workers) ===

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_local"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()
