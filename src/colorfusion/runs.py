"""The run folder: the files a training run writes, their names, and reading and writing them.

`train(..., out)` makes one folder per run; `RunFolder(out)` knows its files:

    config.json            the configuration (`TrainConfig` as a dict; checked on resume)
    state.json             the last finished epoch, the best val_loss, the schedule's counters
    best.keras             the model with the best validation loss
    last.keras             the model after the last finished epoch (optimizer included)
    history.csv            one row per epoch: loss, val_loss, preview AuC / PSNR, learning rate
    bins.json              the ab bins (classification head)
    previews/epoch_NNN.png original / grayscale / colorized rows of fixed validation photos
    curves.png             training curves

Every file is written to a temporary name and renamed (`io.atomic_write`,
`io.atomic_path`), so a run killed at any moment keeps its previous files
whole; `state.json` is written last and names the epoch whose files are
complete. Nothing here imports Keras: a model is saved through its own
`save` method.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from colorfusion import io
from colorfusion.errors import first_line

CONFIG = "config.json"
STATE = "state.json"
HISTORY = "history.csv"
BINS = "bins.json"
BEST = "best.keras"
LAST = "last.keras"
PREVIEWS = "previews"
CURVES = "curves.png"
# The checkpoints a run writes; a folder holding config.json and one of them is a run folder.
CHECKPOINTS = (BEST, LAST)
# The model a folder stands for, in order of preference: a run's checkpoints, then a bare saved model.
MODEL_FILES = (*CHECKPOINTS, "model.keras")


class RunFolder:
    """A training run's folder: the paths of its files, and reading and writing them.

    Args:
        path: the folder (it need not exist yet).

    Attributes:
        path: the folder.
        config_file, state_file, history_file, bins_file: its JSON / CSV files.
        best, last: its checkpoints (`.keras`).
        previews: the folder of preview figures.
        curves: the training curves figure.

    Example:
        run = RunFolder("runs/exp1")
        if run.can_resume():
            state = run.read_state()  # {"epoch", "best_val_loss", "schedule"}
        run.best  # runs/exp1/best.keras
    """

    def __init__(self, path):
        self.path = Path(path)
        self.config_file = self.path / CONFIG
        self.state_file = self.path / STATE
        self.history_file = self.path / HISTORY
        self.bins_file = self.path / BINS
        self.best = self.path / BEST
        self.last = self.path / LAST
        self.previews = self.path / PREVIEWS
        self.curves = self.path / CURVES

    @classmethod
    def holding(cls, path) -> RunFolder:
        """The run folder of `path`: the folder itself, or the folder a model file lies in."""
        path = Path(path)
        return cls(path if path.is_dir() else path.parent)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def files(self) -> dict:
        """{"config", "state", "best", "last", "history", "bins", "previews", "curves"}: name -> path."""
        return {"config": self.config_file, "state": self.state_file, "best": self.best, "last": self.last,
                "history": self.history_file, "bins": self.bins_file, "previews": self.previews,
                "curves": self.curves}

    # === What the folder holds ===

    def is_run(self) -> bool:
        """Whether the folder holds a run: its `config.json` and a checkpoint."""
        return self.config_file.is_file() and any(path.is_file() for path in self.checkpoints())

    def can_resume(self) -> bool:
        """Whether `train(..., resume=True)` can continue it: config, state and last checkpoint are there."""
        return self.config_file.is_file() and self.state_file.is_file() and self.last.is_file()

    def checkpoints(self) -> list[Path]:
        """The paths of its checkpoints (best, last), whether they exist or not."""
        return [self.path / name for name in CHECKPOINTS]

    def has_checkpoint(self) -> bool:
        return any(path.exists() for path in self.checkpoints())

    def newest_checkpoint_time(self) -> int:
        """The modification time (ns) of its most recently written checkpoint; the folder must hold one."""
        return max(path.stat().st_mtime_ns for path in self.checkpoints() if path.is_file())

    def model_file(self) -> Path | None:
        """The model the folder stands for (the first of `MODEL_FILES` there), or None."""
        return next((self.path / name for name in MODEL_FILES if (self.path / name).is_file()), None)

    # === Reading and writing its files ===

    def read_config(self) -> dict | None:
        """The saved configuration; None when there is none.

        Raises:
            ValueError: a damaged `config.json` (the message names it).
        """
        if not self.config_file.is_file():
            return None
        try:
            config = json.loads(self.config_file.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{self.config_file}: damaged run configuration ({first_line(e)})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{self.config_file}: damaged run configuration (not a JSON object)")
        return config

    def write_config(self, config: dict) -> None:
        with io.atomic_write(self.config_file, "w") as f:
            json.dump(config, f, indent=2)

    def read_state(self) -> dict:
        """{"epoch", "best_val_loss", "schedule"} of the last finished epoch.

        Raises:
            ValueError: a missing or damaged `state.json` (the message names it).
        """
        try:
            state = json.loads(self.state_file.read_text())
            return {"epoch": int(state["epoch"]), "best_val_loss": state.get("best_val_loss"),
                    "schedule": state.get("schedule")}
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{self.state_file}: damaged run state ({e})") from None

    def write_state(self, epoch: int, best_val_loss: float | None, schedule: dict | None) -> None:
        """Write `state.json`; write it last, once the epoch's other files are complete."""
        with io.atomic_write(self.state_file, "w") as f:
            json.dump({"epoch": epoch, "best_val_loss": best_val_loss, "schedule": schedule}, f)

    def read_history(self) -> dict:
        """{key: per-epoch values (NaN where a row has none)} from `history.csv`; {} when there is none."""
        if not self.history_file.exists():
            return {}
        with open(self.history_file, newline="") as f:
            rows = list(csv.DictReader(f))
        history = {}
        for row in rows:
            for key, value in row.items():
                if key != "epoch":
                    history.setdefault(key, []).append(float(value) if value not in ("", None) else math.nan)
        return history

    def write_history(self, history: dict) -> None:
        """Write `history.csv`: an epoch column (from 1), then one column per key, sorted."""
        keys = sorted(history)
        with io.atomic_write(self.history_file, "w") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *keys])
            for i in range(len(history[keys[0]]) if keys else 0):
                writer.writerow([i + 1, *(history[k][i] if i < len(history[k]) else "" for k in keys)])

    def save_best(self, model) -> None:
        """Save `model` (a Keras model) as the best checkpoint, atomically."""
        _save(model, self.best)

    def save_last(self, model) -> None:
        """Save `model` (a Keras model, optimizer included) as the last checkpoint, atomically."""
        _save(model, self.last)


def _save(model, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        model.save(tmp)
