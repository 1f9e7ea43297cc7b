"""Ways to force what a training run sees, for tests of what the run does then."""

from contextlib import contextmanager

import keras
import numpy as np
import pytest

from colorfusion import callbacks as callbacks_lib


class PoisonWeights(keras.callbacks.Callback):
    """Set every trainable weight to NaN at the start of epoch `epoch` (0-based): its loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for variable in self.model.trainable_variables:
                variable.assign(np.full(variable.shape, np.nan, np.float32))


@contextmanager
def forcing_val_loss(value_of_epoch):
    """Each epoch's val_loss is `value_of_epoch(epoch)`, set before the schedule and the checkpoint read it."""
    original = callbacks_lib.ColorizationPreview.on_epoch_end

    def forced(self, epoch, logs=None):
        logs["val_loss"] = value_of_epoch(epoch)
        original(self, epoch, logs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(callbacks_lib.ColorizationPreview, "on_epoch_end", forced)
        yield
