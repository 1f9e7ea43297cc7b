"""Assemble what one training run needs: embedder, bins, generators, model, preview samples.

`train.train` owns the loop and the run folder; this module turns a
`TrainConfig` and two file lists into ready objects, so each can be read
(and replaced) on its own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import keras

from colorfusion.cache import cache_root


@dataclass
class RunSetup:
    model: keras.Model
    train_gen: object
    val_gen: object
    preview_samples: dict
    embedder: object = None
    bins: object = None


def default_cache_dir() -> Path:
    """Embedding cache shared across runs (see `cache.cache_root`)."""
    return cache_root() / "embeddings"


def make_embedder(config):
    """The semantic branch's backbone, or None when the run has no embedding."""
    if config.embedding in (None, "encoder"):  # "encoder": the model pools its own features
        return None
    from colorfusion.embeddings import Embedder

    return Embedder(backbone=config.backbone, weights=config.weights, output=config.embedding_output,
                    seed=config.seed)


def resolve_bins(config, train_files, paths, bins=None, verbose=1):
    """Bins for the classification head: given, loaded, or fitted on the training photos."""
    if config.head != "classification":
        return None
    from colorfusion.bins import ABBins

    if isinstance(bins, (str, Path)):
        bins = ABBins.load(bins)
    elif bins is None and paths["bins"].exists():
        bins = ABBins.load(paths["bins"])
    elif bins is None:
        if verbose:
            print(f"Fitting {config.num_bins} ab bins on {len(train_files)} training photos", file=sys.stderr)
        bins = ABBins.fit_files(train_files, max_side=config.image_size, num_bins=config.num_bins,
                                lam=config.rebalance_lambda, progress=bool(verbose))
    bins.save(paths["bins"])
    return bins


def make_generators(config, train_files, val_files, embedder, cache_dir):
    from colorfusion.embeddings import EmbeddingCache
    from colorfusion.generator import ColorizationGenerator

    cache = None
    if config.embedding == "cache":
        cache = EmbeddingCache(cache_dir or default_cache_dir(), embedder)
    embedding = None if config.embedding == "encoder" else config.embedding
    common = dict(batch_size=config.batch_size, image_size=config.image_size, seed=config.seed,
                  target_scale=4 if config.head == "classification" else 1, embedding=embedding,
                  embedder=embedder, cache=cache, workers=config.workers,
                  use_multiprocessing=config.use_multiprocessing)
    train_gen = ColorizationGenerator(train_files, augment=config.augment, shuffle=True, **common)
    val_gen = ColorizationGenerator(val_files, augment=False, shuffle=False, **common)
    return train_gen, val_gen


def make_model(config, bins, embedding_dim, plan, last_checkpoint=None):
    """Build and compile the colorizer, or load the last checkpoint (optimizer state included)."""
    from colorfusion import losses
    from colorfusion import model as model_lib

    with plan.scope():
        if last_checkpoint is not None:
            return keras.saving.load_model(last_checkpoint, compile=True)
        model = model_lib.build_colorizer(image_size=config.image_size, head=config.head,
                                          embedding_dim=embedding_dim, width=config.width, bins=bins,
                                          num_bins=config.num_bins if bins is not None else None,
                                          encoder=config.encoder, encoder_weights=config.encoder_weights,
                                          global_features=config.embedding == "encoder",
                                          batchnorm=config.batchnorm, seed=config.seed)
        _, _, trainable, learning_rate = config.phases()[0]
        model_lib.set_encoder_trainable(model, trainable)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=losses.get_loss(config.head, bins=bins), jit_compile=plan.jit_compile)
    return model


def build_run(config, train_files, val_files, paths, bins=None, cache_dir=None, plan=None, resume=False,
              verbose=1) -> RunSetup:
    from colorfusion.callbacks import samples_from_files

    embedder = make_embedder(config)
    bins = resolve_bins(config, train_files, paths, bins, verbose)
    train_gen, val_gen = make_generators(config, train_files, val_files, embedder, cache_dir)
    embedding_dim = embedder.dim if embedder is not None else None
    model = make_model(config, bins, embedding_dim, plan, paths["last"] if resume else None)
    preview = samples_from_files(val_files[: config.preview_samples], config.image_size, embedder)
    return RunSetup(model=model, train_gen=train_gen, val_gen=val_gen, preview_samples=preview,
                    embedder=embedder, bins=bins)
