"""`best.keras` holds the weights of the epoch with the lowest val_loss, across a resume."""

import hashlib

import keras
import numpy as np
import pytest
from forcing import forcing_val_loss

from colorfusion.training import train

PHOTO_COUNT = 6  # the module's `photos` folder (conftest)
SETTINGS = dict(head="regression", image_size=32, batch_size=4, width=0.125, encoder="scratch", weights=None,
                embedding=None, learning_rate=2e-3, preview_every=100)
# val_loss of each epoch (0-based), forced: best at epoch 2, worse at 3 and 4 (the latter after a resume),
# best again at 5.
VAL_LOSS = {0: 1.0, 1: 0.5, 2: 2.0, 3: 3.0, 4: 0.25}


@pytest.fixture(scope="module")
def forced_val_loss():
    """Each epoch's val_loss as `VAL_LOSS` says."""
    with forcing_val_loss(VAL_LOSS.__getitem__):
        yield


class EpochEnds(keras.callbacks.Callback):
    """The weights after each epoch, and the bytes of best.keras then (run after the run's own callbacks)."""

    def __init__(self, best_file):
        super().__init__()
        self.best_file, self.weights, self.best_digest = best_file, {}, {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = weights_of(self.model)
        self.best_digest[epoch] = digest(self.best_file)


def weights_of(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def loaded(path):
    return weights_of(keras.saving.load_model(path))


@pytest.fixture(scope="module")
def run(photos, forced_val_loss, tmp_path_factory):
    """Three epochs, then a resume for two more; what each epoch left."""
    folder = tmp_path_factory.mktemp("best") / "run"
    first = EpochEnds(folder / "best.keras")
    train(photos, folder, hardware="cpu", verbose=0, callbacks=[first], epochs=3, **SETTINGS)
    after_first = {"best": loaded(folder / "best.keras"), "last": loaded(folder / "last.keras"),
                   "digest": digest(folder / "best.keras")}
    second = EpochEnds(folder / "best.keras")
    train(photos, folder, resume=True, hardware="cpu", verbose=0, callbacks=[second], epochs=5)
    return {"folder": folder, "after_first": after_first, "epochs": {**first.weights, **second.weights},
            "best_digest": {**first.best_digest, **second.best_digest}}


def test_best_keras_holds_the_best_epoch_not_the_last(run):
    after, epochs = run["after_first"], run["epochs"]
    assert same(after["best"], epochs[1])  # epoch 2 had the lowest val_loss
    assert same(after["last"], epochs[2])
    assert not same(after["best"], after["last"])


def test_a_worse_epoch_after_a_resume_leaves_best_keras_alone_and_a_better_one_replaces_it(run):
    epochs, digests = run["epochs"], run["best_digest"]
    # Epoch 4, the first after the resume, is worse than epoch 2: best.keras is not even rewritten.
    assert digests[3] == run["after_first"]["digest"]
    # Epoch 5 beats epoch 2: it is the new best.
    assert digests[4] != digests[3]
    assert same(loaded(run["folder"] / "best.keras"), epochs[4])
    assert not same(epochs[4], epochs[1])
