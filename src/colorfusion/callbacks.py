"""Training callbacks: sample colorizations, curves, the learning-rate schedule, checkpoints.

- `ColorizationPreview` colorizes a fixed handful of samples after every
  epoch, puts their mean AuC and PSNR into the epoch logs (so the progress
  bar, `History` and `TrainingCurves` see them) and, every N epochs, writes
  `out_dir/epoch_NNN.png`: one row per sample, original | the grayscale
  input | the colorization (titled with its AuC and PSNR). The samples are
  colorized once per epoch for both.
- `TrainingCurves` plots loss / val_loss and any colour metric per epoch.
- `PlateauSchedule` lowers the learning rate when val_loss stalls and stops
  training when it has stalled for long, with counters that survive a resume.
- `TimeBudget` stops before an epoch would end past a deadline.
- `RunCheckpoint` writes a run folder's checkpoints, history and state.

The samples are handed in (`samples_from_images` builds them), never read
from globals. Drawing, atomic saving and inline display in a Jupyter /
Kaggle kernel (`show="auto"`) live in `colorfusion.figures`; nothing here
needs a display.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np

from colorfusion import augment, color, figures, io, metrics
from colorfusion.hints.layers import no_hints
from colorfusion.model import TEMPERATURE, inference_model, model_info
from colorfusion.runs import RunFolder

# === Samples ===


def samples_from_images(rgb_list, image_size: int, embedder=None) -> dict:
    """Build the preview samples from RGB images.

    Each image is centre-cropped to a square and resized to `image_size`
    (`augment.fit_square`, as validation does), then split into the model
    input L the same way training does.

    Args:
        rgb_list: uint8 RGB images (H, W, 3) of any size, or an array
            (N, H, W, 3).
        image_size: side of the model input, e.g. 256.
        embedder: optional `embeddings.Embedder` (anything with
            `embed_l(L) -> (N, D)`, L of shape (N, S, S, 1) in [0, 100]), or
            a callable with that signature; adds x["embedding"].

    Returns:
        {"rgb": uint8 (N, S, S, 3), "x": {"L": float32 (N, S, S, 1)
        [, "embedding": float32 (N, D)]}}.
    """
    if int(image_size) != image_size or image_size < 1:
        raise ValueError(f"image_size must be a positive integer. Received: image_size={image_size!r}")
    rgb = np.stack([_square(np.asarray(im), int(image_size)) for im in rgb_list])
    l = color.rgb_to_l(rgb)
    x = {"L": color.l_to_model(l)}
    if embedder is not None:
        embed = getattr(embedder, "embed_l", embedder)
        x["embedding"] = np.asarray(embed(l), np.float32)
    return {"rgb": rgb, "x": x}


def samples_from_files(paths, image_size: int, embedder=None) -> dict:
    """`samples_from_images` of image files; an unreadable file is reported and skipped.

    Each skipped file gets one line on stderr naming it and the reason.
    Raises ValueError when no file could be read.
    """
    images = []
    for path in paths:
        try:
            images.append(io.read_rgb(path, max_side=4 * int(image_size)))
        except io.ImageReadError as e:
            print(f"preview samples: skipped {e}", file=sys.stderr)
    if not images:
        raise ValueError(f"None of the preview files could be read. Received: paths={list(map(str, paths))!r}")
    return samples_from_images(images, image_size, embedder)


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"Expected uint8 RGB images (H, W, 3). Received: shape={rgb.shape}, dtype={rgb.dtype}")
    # The validation crop, so previews show what validation scores.
    return augment.fit_square(rgb, size)


def _check_samples(samples) -> int:
    if not isinstance(samples, dict) or "rgb" not in samples or "x" not in samples or "L" not in samples["x"]:
        raise ValueError('samples must be {"rgb": uint8 (N, S, S, 3), "x": {"L": (N, S, S, 1), ...}}.')
    rgb, l = np.asarray(samples["rgb"]), np.asarray(samples["x"]["L"])
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8 or len(rgb) == 0:
        raise ValueError(f'samples["rgb"] must be uint8 (N, S, S, 3). Received: shape={rgb.shape}, dtype={rgb.dtype}')
    if l.shape != rgb.shape[:-1] + (1,):
        raise ValueError(f'samples["x"]["L"] must have shape {rgb.shape[:-1] + (1,)}. Received: shape={l.shape}')
    return len(rgb)


def colorize_samples(model, samples, decode="annealed_mean", temperature=TEMPERATURE) -> np.ndarray:
    """Colorize the samples with `model` (either head); uint8 RGB (N, S, S, 3).

    The model's output goes through `colorfusion.model.inference_model`, so a
    regression or a classification model (or an inference model) all give
    ab / 128; it is joined with the samples' own L.
    """
    infer = inference_model(model, decode=decode, temperature=temperature)
    x = dict(samples["x"])
    if model_info(infer).hints and "hints" not in x:
        x["hints"] = no_hints(x["L"])  # previews show automatic colorization
    names = [tensor.name for tensor in infer.inputs]
    missing = [name for name in names if name not in x]
    if missing:
        raise ValueError(f'The model needs inputs {names}; samples["x"] lacks {missing}.')
    # In the model's own input structure (tensor, list or dict): no Keras warning.
    inputs = keras.tree.pack_sequence_as(infer.input, [x[name] for name in names])
    ab = color.ab_from_model(keras.ops.convert_to_numpy(infer(inputs, training=False)))
    l = color.l_from_model(x["L"])
    if ab.shape[1:3] != l.shape[1:3]:  # a model predicting ab smaller than its input
        ab = np.stack([cv2.resize(a, l.shape[2:0:-1], interpolation=cv2.INTER_LINEAR) for a in ab])
    return color.lab_to_rgb(color.join_lab(l, ab), np.uint8)


# === Callbacks ===


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


class ColorizationPreview(keras.callbacks.Callback):
    """Colorize fixed samples after every epoch: log their scores, draw them every N epochs.

    After each epoch the samples are colorized once; their mean AuC and PSNR
    go into the logs as `prefix + "auc"` and `prefix + "psnr"` (put this
    callback before `TrainingCurves` and any checkpoint watching them: Keras
    calls callbacks in order with the same logs, `History` last), and on
    preview epochs the same colorizations are drawn to `out_dir/epoch_NNN.png`
    (1-based epoch, 3 digits): one row per sample with the original, the
    grayscale input the network saw (`color.gray_rgb_from_l` of L) and the
    colorization, titled with its AuC and PSNR (`metrics.image_metrics`).

    Args:
        samples: {"rgb": uint8 (N, S, S, 3), "x": model inputs {"L": ...,
            "embedding": ...}}, e.g. from `samples_from_images`.
        every_n_epochs: preview epochs N, 2N, ...; the last epoch of `fit`
            (or the one training stopped at) is always previewed.
        out_dir: folder for the PNG files (created).
        show: "auto" shows inline in a notebook kernel; True / False force.
        decode, temperature: for a classification head, see
            `colorfusion.model.inference_model`.
        dpi: resolution of the saved figure.
        log_metrics: put the samples' mean scores into the epoch logs.
        prefix: prefix of those log keys.

    Example:
        samples = samples_from_images(val_images[:4], image_size=256)
        model.fit(data, epochs=20, callbacks=[
            ColorizationPreview(samples, every_n_epochs=5, out_dir="previews")])
    """

    def __init__(self, samples, every_n_epochs=1, out_dir="previews", show="auto",
                 decode="annealed_mean", temperature=TEMPERATURE, dpi=100, log_metrics=True, prefix="preview_"):
        super().__init__()
        _check_samples(samples)
        figures.check_show(show)
        self.samples = samples
        self.every_n_epochs = _positive_int("every_n_epochs", every_n_epochs)
        self.out_dir = Path(out_dir)
        self.show = show
        self.decode = decode
        self.temperature = temperature
        self.dpi = dpi
        self.log_metrics = bool(log_metrics)
        self.prefix = prefix
        self.written = []  # paths, in order
        self.last_scores = None  # per-sample image_metrics of the last colorization
        self._last_epoch = None
        self._last_previewed = None
        self._inference = None  # (model, its inference model), built once per model

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch + 1
        last = self.params.get("epochs") if self.params else None
        due = self._last_epoch % self.every_n_epochs == 0 or self._last_epoch == last
        if not (due or (self.log_metrics and logs is not None)):
            return
        pred = self.colorize()
        if self.log_metrics and logs is not None:
            logs[self.prefix + "auc"] = float(np.mean([s["auc"] for s in self.last_scores]))
            logs[self.prefix + "psnr"] = float(np.mean([s["psnr"] for s in self.last_scores]))
        if due:
            self.preview(self._last_epoch, pred)

    def on_train_end(self, logs=None):
        if self._last_epoch is not None and self._last_previewed != self._last_epoch:
            self.preview(self._last_epoch)

    def colorize(self) -> np.ndarray:
        """The samples colorized by the model now (uint8); sets `last_scores`."""
        if self._inference is None or self._inference[0] is not self.model:
            self._inference = (self.model, inference_model(self.model, self.decode, self.temperature))
        pred = colorize_samples(self._inference[1], self.samples)
        self.last_scores = [metrics.image_metrics(t, p) for t, p in zip(self.samples["rgb"], pred)]
        return pred

    def preview(self, epoch: int, pred=None) -> Path:
        """Write `epoch_NNN.png` (colorizing the samples unless `pred` is given), show it; return its path."""
        fig = self.render(epoch, pred)
        path = self.out_dir / f"epoch_{epoch:03d}.png"
        figures.save_figure(fig, path, figures.resolve_show(self.show), self.dpi)
        fig.clear()  # drop the image arrays now rather than at garbage collection
        self.written.append(path)
        self._last_previewed = epoch
        return path

    def render(self, epoch: int, pred=None):
        """The preview figure for `epoch` (a `matplotlib.figure.Figure`)."""
        if pred is None:
            pred = self.colorize()
        gray = color.gray_rgb_from_l(color.l_from_model(self.samples["x"]["L"]))
        return figures.preview_figure(self.samples["rgb"], gray, pred, self.last_scores, f"epoch {epoch}")


class PlateauSchedule(keras.callbacks.Callback):
    """Halve the learning rate when `val_loss` stalls; stop when it has stalled for long.

    Keras' `ReduceLROnPlateau` and `EarlyStopping` do the same but forget
    their counters whenever `fit` starts again, so a resumed run would wait
    from zero. Here the counters are one small dict, `state`, that the run
    saves in `state.json` and hands back on resume.

    Each epoch's learning rate (before any reduction) goes into the logs as
    `learning_rate`.

    Args:
        lr_patience: epochs without improvement before the rate is multiplied by `lr_factor`.
        lr_factor: the reduction factor, in (0, 1).
        min_lr: the rate never goes below this.
        stop_patience: epochs without improvement before training stops;
            None never stops.
        monitor: the log key to watch (lower is better).
        min_delta: an improvement smaller than this does not count.
        state: the `state` of an earlier run to continue from.

    Attributes:
        state: {"best", "lr_wait", "stop_wait"}.
        stopped: True once it stopped training.
    """

    def __init__(self, lr_patience=3, lr_factor=0.5, min_lr=1e-6, stop_patience=None, monitor="val_loss",
                 min_delta=1e-4, state=None):
        super().__init__()
        if not 0 < lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1). Received: lr_factor={lr_factor!r}")
        self.lr_patience = _positive_int("lr_patience", lr_patience)
        self.stop_patience = None if stop_patience is None else _positive_int("stop_patience", stop_patience)
        self.lr_factor, self.min_lr, self.monitor, self.min_delta = lr_factor, min_lr, monitor, min_delta
        self.state = {"best": None, "lr_wait": 0, "stop_wait": 0, **(state or {})}
        self.stopped = False

    @property
    def exhausted(self) -> bool:
        """Whether val_loss has gone `stop_patience` epochs without improving (it stops training then)."""
        return self.stop_patience is not None and self.state["stop_wait"] >= self.stop_patience

    def restart_patience(self) -> None:
        """Start both waits from zero (a new phase of training), keeping the best value."""
        self.state.update(lr_wait=0, stop_wait=0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        logs["learning_rate"] = rate
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        state = self.state
        if state["best"] is None or float(value) < state["best"] - self.min_delta:
            state.update(best=float(value), lr_wait=0, stop_wait=0)
            return
        state["lr_wait"] += 1
        state["stop_wait"] += 1
        if state["lr_wait"] >= self.lr_patience and rate > self.min_lr:
            optimizer.learning_rate = max(rate * self.lr_factor, self.min_lr)
            state["lr_wait"] = 0
        if self.stop_patience is not None and state["stop_wait"] >= self.stop_patience:
            self.stopped = True
            self.model.stop_training = True


class TimeBudget(keras.callbacks.Callback):
    """Stop training before an epoch would end past a deadline.

    After each epoch, training stops when the time left is shorter than the
    longest epoch so far: equal-time comparisons of recipes, or a run that
    must fit a notebook's session.

    Args:
        minutes: the budget, counted from construction (so several `fit`
            calls of one run share it).
        clock: seconds as a float (`time.monotonic`; tests pass their own).

    Attributes:
        stopped: True once it stopped training.
    """

    def __init__(self, minutes: float, clock=time.monotonic):
        super().__init__()
        if not minutes > 0:
            raise ValueError(f"minutes must be positive. Received: minutes={minutes!r}")
        self.clock = clock
        self.deadline = clock() + 60.0 * float(minutes)
        self.longest = 0.0
        self.stopped = False
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        if self._epoch_start is not None:
            self.longest = max(self.longest, now - self._epoch_start)
        if now + self.longest > self.deadline:
            self.stopped = True
            self.model.stop_training = True


class TrainingCurves(keras.callbacks.Callback):
    """Plot the per-epoch logs: loss / val_loss, then one panel per metric.

    Keys are grouped by name without the "val_" / "preview_" prefix, so
    "auc", "val_auc" and "preview_auc" share a panel. A panel's y axis is
    logarithmic when its values are all positive and span a factor of 10 or
    more (typical of a loss). The figure is written atomically to `out_path`.

    Args:
        out_path: PNG file to write, e.g. "curves.png".
        show: "auto" shows inline in a notebook kernel; True / False force.
        every_n_epochs: redraw every N epochs (and at the end of training).
        history: optional {key: list of per-epoch values} from an earlier run
            (e.g. `History.history`) so a resumed run continues the curves;
            shorter lists are padded with NaN at the end. Epochs logged later
            are numbered after it, even if `fit` restarts at epoch 0.
        dpi: resolution of the saved figure.
    """

    def __init__(self, out_path="curves.png", show="auto", every_n_epochs=1, history=None, dpi=100):
        super().__init__()
        figures.check_show(show)
        self.out_path = Path(out_path)
        self.show = show
        self.every_n_epochs = _positive_int("every_n_epochs", every_n_epochs)
        self.dpi = dpi
        history = dict(history or {})
        length = max((len(v) for v in history.values()), default=0)
        self.epochs = list(range(1, length + 1))
        self.history = {k: [float(x) for x in v] + [math.nan] * (length - len(v)) for k, v in history.items()}
        self._drawn = None

    def on_epoch_end(self, epoch, logs=None):
        number = max(epoch + 1, self.epochs[-1] + 1 if self.epochs else 1)
        self.epochs.append(number)
        logs = {k: _number(v) for k, v in (logs or {}).items()}
        for key, value in logs.items():
            if value is not None:  # only scalar numbers can be plotted
                self.history.setdefault(key, [math.nan] * (len(self.epochs) - 1))
        for key, values in self.history.items():
            value = logs.get(key)
            values.append(math.nan if value is None else value)
        if number % self.every_n_epochs == 0:
            self.draw()

    def on_train_end(self, logs=None):
        if self.epochs and self._drawn != len(self.epochs):
            self.draw()

    def draw(self) -> Path:
        """Write (and maybe show) the curves now; return the path."""
        fig = self.render()
        figures.save_figure(fig, self.out_path, figures.resolve_show(self.show), self.dpi)
        fig.clear()
        self._drawn = len(self.epochs)
        return self.out_path

    def panels(self) -> dict:
        """{panel name: [keys]}, "loss" first (see `figures.curve_panels`)."""
        return figures.curve_panels(self.history)

    def render(self):
        """The curves figure (a `matplotlib.figure.Figure`)."""
        return figures.curves_figure(self.epochs, self.history)


class RunCheckpoint(keras.callbacks.Callback):
    """Atomic best / last checkpoints, state and history of a run folder after every finished epoch.

    Keras' `ModelCheckpoint` and `BackupAndRestore` are not used because a run
    needs more than either gives: every file is written to a temporary name
    and renamed (a run killed at any moment, even by `kill -9`, keeps its
    previous checkpoint whole), one small `state.json` written last names
    the epoch whose files are complete (with the best val_loss and the
    `PlateauSchedule` counters), and resuming replays the data order of an
    uninterrupted run (`ColorizationGenerator.set_epoch`).

    A non-finite loss stops training before anything is saved, so the last
    good checkpoint stays as it was.

    Args:
        run: the run folder (`runs.RunFolder`).
        state: {"epoch", "best_val_loss"} to continue from.
        history: {key: per-epoch values} of the epochs already done.
        schedule: the run's `PlateauSchedule`, whose `state` is saved too.
    """

    def __init__(self, run: RunFolder, state: dict, history: dict, schedule=None):
        super().__init__()
        self.run = run
        self.schedule = schedule
        self.epoch = state["epoch"]
        self.best = state.get("best_val_loss")
        self.history = {k: list(v) for k, v in history.items()}
        self.stopped_reason = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_reason = f"non-finite loss ({float(loss)}) at batch {batch + 1}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.stopped_reason or not all(math.isfinite(float(v)) for v in logs.values()):
            self.stopped_reason = self.stopped_reason or f"non-finite value in {logs}"
            self.model.stop_training = True
            return
        logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        val_loss = logs.get("val_loss")
        if val_loss is not None and (self.best is None or val_loss < self.best):
            self.best = float(val_loss)
            self.run.save_best(self.model)
        self.run.save_last(self.model)
        self.epoch = epoch + 1
        self.run.write_history(self.history)
        # state.json last: it names an epoch only once its checkpoint is complete.
        self.run.write_state(self.epoch, self.best, self.schedule.state if self.schedule is not None else None)


def _number(value):
    """A log value as a float, or None when it is not a scalar number."""
    value = np.asarray(value)
    if value.ndim != 0 or not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        return None
    return float(value)
