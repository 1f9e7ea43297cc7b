"""Resume fidelity: `train(..., resume=True)` goes on with the model of `last.keras`, not a fresh one, and
an interrupted-then-resumed run ends where an uninterrupted one of the same seed does."""

import json

import keras
import numpy as np
import pytest
from forcing import forcing_val_loss

from colorfusion.training import train

PHOTO_COUNT = 10  # the module's `photos` (conftest): 9 train photos, 3 batches an epoch, the last one short

# Regression head, no semantic branch: the smallest run that still has everything resume must restore.
# lr_patience=1 with a val_loss that worsens every epoch (see `worsening_val_loss`) halves the learning
# rate after each epoch from the second on, so the schedule's counters and the optimizer's own
# learning rate both matter to where the run ends.
SETTINGS = dict(head="regression", image_size=32, batch_size=4, width=0.125, encoder="scratch", weights=None,
                embedding=None, learning_rate=2e-3, lr_patience=1, epochs=3, preview_every=100)
CRASH_EPOCH = 2  # 0-based: epochs 1 and 2 are finished and saved, the third crashes at its first batch


@pytest.fixture(scope="module")
def worsening_val_loss():
    """val_loss = 1 + epoch."""
    with forcing_val_loss(lambda epoch: 1.0 + epoch):
        yield


class CrashAt(keras.callbacks.Callback):
    """Raise at the first batch of epoch `epoch` (0-based), as a crash would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise RuntimeError("simulated crash")


class StartOfFit(keras.callbacks.Callback):
    """What the model and its optimizer hold when `fit` starts."""

    def on_train_begin(self, logs=None):
        self.weights = {w.path: keras.ops.convert_to_numpy(w) for w in self.model.weights}
        self.optimizer = {v.path: keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables}
        self.iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def state_of(model):
    return ({w.path: keras.ops.convert_to_numpy(w) for w in model.weights},
            {v.path: keras.ops.convert_to_numpy(v) for v in model.optimizer.variables})


@pytest.fixture(scope="module")
def uninterrupted(photos, worsening_val_loss, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    return train(photos, run, hardware="cpu", verbose=0, **SETTINGS)


def run_state(result):
    state = json.loads(result.paths["state"].read_text())
    return state, float(keras.ops.convert_to_numpy(result.model.optimizer.learning_rate))


@pytest.fixture(scope="module")
def interrupted(photos, worsening_val_loss, tmp_path_factory):
    """A run that crashes in its third epoch, what `last.keras` held then, and the resumed run."""
    run = tmp_path_factory.mktemp("interrupted") / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(photos, run, hardware="cpu", verbose=0, callbacks=[CrashAt(CRASH_EPOCH)], **SETTINGS)
    saved = keras.saving.load_model(run / "last.keras")  # before the resume overwrites it
    start = StartOfFit()
    resumed = train(photos, run, resume=True, hardware="cpu", verbose=0, callbacks=[start])
    return {"saved": saved, "start": start, "resumed": resumed}


def test_resume_starts_from_the_weights_and_optimizer_state_of_last_keras(interrupted):
    saved, start = interrupted["saved"], interrupted["start"]
    weights, optimizer = state_of(saved)
    # Two finished epochs of three steps each: Adam's step count and moments go on from there.
    assert start.iterations == int(keras.ops.convert_to_numpy(saved.optimizer.iterations)) == 2 * 3
    assert start.learning_rate == pytest.approx(1e-3)  # halved after epoch 2 (no improvement), not 2e-3
    assert sorted(start.weights) == sorted(weights)
    for path, value in weights.items():
        np.testing.assert_array_equal(start.weights[path], value, err_msg=path)
    assert sorted(start.optimizer) == sorted(optimizer)
    for path, value in optimizer.items():
        np.testing.assert_array_equal(start.optimizer[path], value, err_msg=path)


def test_an_interrupted_and_resumed_run_ends_where_an_uninterrupted_one_does(uninterrupted, interrupted):
    resumed = interrupted["resumed"]
    assert resumed.epochs_done == uninterrupted.epochs_done == SETTINGS["epochs"]
    expected, got = uninterrupted.history, resumed.history
    assert sorted(got) == sorted(expected)
    # The learning rate of each epoch: 2e-3, halved after every epoch without improvement (2, 3, ...).
    assert got["learning_rate"] == pytest.approx([2e-3, 2e-3, 1e-3])
    assert got["learning_rate"] == pytest.approx(expected["learning_rate"])
    # The same schedule counters, and the same rate for an epoch to come.
    (state, rate), (expected_state, expected_rate) = run_state(resumed), run_state(uninterrupted)
    assert state == expected_state and rate == pytest.approx(expected_rate) == 5e-4
    # The real training losses of every epoch: a wrong data order or augmentation after the resume,
    # another learning rate or a fresh optimizer moves them by far more than this.
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-4)
    np.testing.assert_allclose(got["preview_psnr"], expected["preview_psnr"], rtol=1e-4)
    final = {w.path: keras.ops.convert_to_numpy(w) for w in uninterrupted.model.weights}
    for w in resumed.model.weights:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(w), final[w.path], rtol=1e-4, atol=1e-6,
                                   err_msg=w.path)
    iterations = [int(keras.ops.convert_to_numpy(r.model.optimizer.iterations)) for r in (resumed, uninterrupted)]
    assert iterations == [3 * 3, 3 * 3]
