"""The runner interface: what the engine asks of a network, and a photo's session with it (no Keras).

The engine (`inference.engine`) hands a runner the network's inputs in the
network's own units and gets ab / 128 back (`Runner.forward`); what a runner
takes is said by its attributes. The runners themselves: `inference.runners`
(a Keras model), `inference.exported` (ONNX Runtime, LiteRT). This module
needs neither Keras nor TensorFlow, so a process that runs an exported file
never starts them (a cluster's TensorFlow-free worker, `colorfusion.distributed`).
"""

from __future__ import annotations

import numpy as np


class Runner:
    """What the engine asks of a network: `forward` in the network's units, and what it takes.

    A subclass sets the attributes that differ from these defaults and
    implements `forward`; `session` runs the whole network at each new hints
    map unless the subclass can do better.
    """

    takes_hints = False  # whether `forward` reads a "hints" map
    fixed_shape: tuple[int, int] | None = None  # the one (h, w) it takes; None: any multiple of 32
    short_side: int | None = None  # the short side its photos must be fed at, where the runner fixes it
    embedding_dim: int | None = None  # the length of its "embedding" input (the engine's embedder fills it)
    centers: np.ndarray | None = None  # (Q, 2) the ab bins of a session's probabilities; None: it gives none
    decode = temperature = hint_temperature = None  # the decoding of a classification head, where it has one
    split = False  # whether a session keeps the part of the network that the hints do not change
    gives_features = False  # whether `features` gives the encoder's maps (a reference photo is matched in them)
    hints_refusal = "this model takes no colour hints"  # the line for hints given to a runner that takes none
    probabilities_refusal = "this model gives no colour probabilities"  # for suggestions and confidence it cannot give
    features_refusal = ("a reference photo is matched in the network's own features, which this model does not "
                        "give; use the Keras model (--model pretrained, a run folder or a .keras file)")

    def forward(self, inputs: dict) -> np.ndarray:
        """ab / 128 (N, h, w, 2) for the network's inputs (numpy float32, by input name), batch of any size."""
        raise NotImplementedError

    def session(self, inputs: dict) -> Session:
        """A `Session` for one photo's inputs that do not change with the hints (batch of one)."""
        return Session(self, inputs)

    def features(self, inputs: dict) -> dict:
        """{stride: (N, h/stride, w/stride, C)}: the encoder's feature maps of "L" (reference matching).

        Raises:
            ValueError: the runner gives none (`features_refusal` says why).
        """
        raise ValueError(self.features_refusal)


class Session:
    """One photo's inputs held for a runner: each hints map runs the whole network again.

    `forward(hint_map)` -> (probabilities (1, h/4, w/4, Q) or None, ab / 128 (1, h, w, 2)).
    """

    def __init__(self, runner: Runner, inputs: dict):
        self.runner = runner
        self.inputs = inputs

    def forward(self, hint_map: np.ndarray | None = None):
        feeds = dict(self.inputs)
        if hint_map is not None and self.runner.takes_hints:
            feeds["hints"] = hint_map
        return None, self.runner.forward(feeds)

    @property
    def nbytes(self) -> int:
        """Memory it holds (what a bounded cache of sessions counts)."""
        return int(sum(np.asarray(value).nbytes for value in self.inputs.values()))
