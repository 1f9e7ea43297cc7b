"""Callbacks that make a training run fail on purpose, for tests of what a run does then."""

import keras
import numpy as np


class PoisonWeights(keras.callbacks.Callback):
    """Set every trainable weight to NaN at the start of epoch `epoch` (0-based): its loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for variable in self.model.trainable_variables:
                variable.assign(np.full(variable.shape, np.nan, np.float32))
