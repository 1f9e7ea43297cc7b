"""Runners: a colorizer's network behind one small interface, where the engine hands over (ideepcolor's `net_forward`).

A runner runs the network on inputs in the network's own units and returns
its output in them:

    runner.forward({"L": L / 50 - 1 (N, h, w, 1), ["embedding": (N, D)], ["hints": (N, h, w, 3)]})
        -> ab / 128 (N, h, w, 2)

The engine (`inference.engine`) scales into and out of those units, once,
whatever the runner (`color.l_to_model`, `color.ab_from_model`); a runner never
sees Lab units. Besides `forward`, a runner says what it takes (`takes_hints`,
`fixed_shape`, `embedding_dim`, `short_side`) and opens a `session` for one
photo being fixed with hints (the studio): that photo's inputs held, each new
hints map run against them, with the classification head's distribution over
its bins (`centers`) where the runner can give it.

The interface (`Runner`, `Session`) lives in `inference.interface`, which
needs no Keras, so that an exported file runs without it (a cluster's
TensorFlow-free worker); it is importable from here too.

Runners: `KerasRunner` here, a Keras model compiled once per input shape
(`CompiledFunctions`, bounded), with its hint layers or, for a photo given
none, without them (`without_hint_layers`); `inference.exported` runs an
exported file (ONNX Runtime, LiteRT) behind the same interface.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import keras
import numpy as np
from keras import ops

from colorfusion import model as model_lib
from colorfusion.hints.layers import ChooseByHints, HintAffinityBlend, HintBlend, is_hint_layer
from colorfusion.inference.interface import Runner, Session  # noqa: F401 - re-exported: the runners' base

MAX_COMPILED_SHAPES = 16  # input shapes a runner keeps compiled functions for (least recently used dropped)


# === A Keras model ===


class KerasRunner(Runner):
    """A colorizer of either head as a runner: decoded (`model.inference_model`), compiled once per input shape.

    Args:
        model: a trained colorizer (`build_colorizer`, a `.keras` file), or
            a model from `model.inference_model`.
        decode, temperature, hint_temperature: how a classification head
            decodes (`model.inference_model`); None: `model.TEMPERATURE`,
            `model.HINT_TEMPERATURE`.

    Inputs without "hints" run a hint model without its hint layers
    (`automatic_network`: the same colours as an empty map, about half the
    compiled call). A session of a hint model holds what its encoder makes
    of the photo and runs only the part that sees the hints at each click
    (`cut_at_hints`), returning the head's probabilities too.
    """

    hints_refusal = ("this model takes no colour hints (it was trained without hints=True); use the shipped model "
                     "or a run trained with hints")
    probabilities_refusal = ("suggested colours and confidence need a classification model (its colour "
                             "probabilities); this one is a regression model")
    gives_features = True

    def __init__(self, model, decode="annealed_mean", temperature=None, hint_temperature=None):
        info = model_lib.model_info(model)
        self.model = model
        self.info = info
        self.decode = decode
        self.temperature = model_lib.TEMPERATURE if temperature is None else float(temperature)
        self.hint_temperature = model_lib.HINT_TEMPERATURE if hint_temperature is None else float(hint_temperature)
        if not self.hint_temperature > 0:
            raise ValueError(f"hint_temperature must be positive. Received: hint_temperature={hint_temperature!r}")
        self.inference = model_lib.inference_model(model, decode=decode, temperature=self.temperature,
                                                   hint_temperature=self.hint_temperature)
        self.takes_hints = info.hints
        self.fixed_shape = None if info.image_size is None else (int(info.image_size), int(info.image_size))
        self.embedding_dim = info.embedding_dim
        if info.head == "classification" and not info.decoded:
            self.centers = np.asarray(info.bins.centers, np.float32)
        self.compiled = CompiledFunctions()
        self._automatic = None  # `automatic_network`, built at its first use
        self._session_networks = None  # `_SessionNetworks`, built at the first session
        self._features = None  # `feature_network`, built at its first use
        self._lock = threading.Lock()

    @property
    def traces(self) -> int:
        """How many times a network was compiled (traced) for a new input shape."""
        return self.compiled.traces

    @property
    def automatic_network(self):
        """The inference network for photos given no hints: a hint model's without its hint layers
        (`without_hint_layers`, built once), any other model's as it is."""
        if not self.takes_hints:
            return self.inference
        with self._lock:
            if self._automatic is None:
                self._automatic = without_hint_layers(self.inference)
        return self._automatic

    def forward(self, inputs: dict) -> np.ndarray:
        """ab / 128 for inputs by name; without "hints" a hint model runs `automatic_network`.

        Eager Keras calls cost about 7x a compiled one on this network, and
        each input shape (h, w; any batch size, so no padding of odd batches)
        gets its own compiled function, traced once (about a second) and kept
        (`CompiledFunctions`). One function with free sides (possible since
        `BilinearUpSampling2D`) was measured: the same numbers and the same
        speed for the shipped model (35.0 against 34.8 ms CPU a call at
        256 x 352, 2-core CPU), one tracing instead of one a shape; per-shape
        functions stay, for models saved with Keras' `UpSampling2D`, which
        traces at one size only.
        """
        network = self.inference if "hints" in inputs or not self.takes_hints else self.automatic_network
        names = sorted(inputs)
        fill_hints = self.takes_hints and "hints" not in inputs

        def call(*tensors):
            feed = dict(zip(names, tensors))
            if fill_hints:  # read by no layer of `network`: pruned from the graph
                feed["hints"] = ops.zeros_like(ops.concatenate([feed["L"]] * 3, axis=-1))
            return network(feed, training=False)

        return self.compiled.run(("forward", *names), call, [inputs[name] for name in names])

    def session(self, inputs: dict) -> KerasSession:
        return KerasSession(self, self.session_networks(), inputs)

    def features(self, inputs: dict) -> dict:
        """The encoder's feature maps of "L" at `FEATURE_STRIDES` (`feature_network`), compiled once per shape."""
        with self._lock:
            if self._features is None:
                self._features = feature_network(self.model)
        network = self._features
        found = self.compiled.run("features", lambda l_scaled: network(l_scaled, training=False), [inputs["L"]])
        found = found if isinstance(found, list) else [found]
        return dict(zip(network.strides, found))

    @property
    def split(self) -> bool:
        """Whether a session runs only the part of the network that sees the hints (the encoder once a photo)."""
        return self.takes_hints and self.session_networks().split

    def session_networks(self) -> _SessionNetworks:
        """The network sessions run (decoded ab and probabilities, cut at the hints), built once."""
        with self._lock:
            if self._session_networks is None:
                self._session_networks = _SessionNetworks(self)
        return self._session_networks


class _SessionNetworks:
    """A Keras runner's network for sessions: decoded ab and the probabilities, cut at the hints when it can be."""

    def __init__(self, runner: KerasRunner):
        outputs = [runner.inference.outputs[0]]
        if runner.centers is not None:
            outputs.append(runner.model.get_layer(model_lib.PROBS_NAME).output)
        self.whole = keras.Model(runner.inference.inputs, outputs, name="studio_network")
        self.names = [tensor.name for tensor in self.whole.inputs]
        self.split = False
        if runner.takes_hints:
            try:
                self.encoder, self.head, self.fixed_names, self.head_fixed = cut_at_hints(self.whole)
                self.split = True
            except Exception:  # noqa: BLE001 - a graph that cannot be cut still runs whole
                self.split = False


class KerasSession:
    """One photo's inputs for a Keras runner: the encoder's features computed once, the head run each click."""

    def __init__(self, runner: KerasRunner, networks: _SessionNetworks, inputs: dict):
        self.runner = runner
        self.networks = networks
        self.inputs = inputs
        self.features = []
        if networks.split:
            fixed = [inputs[name] for name in networks.fixed_names]
            found = runner.compiled.run("encoder", _caller(networks.encoder), fixed)
            self.features = found if isinstance(found, list) else [found]  # one feature map: not a list

    def forward(self, hint_map: np.ndarray | None = None):
        networks, runner = self.networks, self.runner
        if hint_map is None:
            hint_map = np.zeros(np.shape(self.inputs["L"])[:-1] + (3,), np.float32)
        if networks.split:
            held = [self.inputs[name] for name in networks.head_fixed]
            found = runner.compiled.run("head", _caller(networks.head), [*held, *self.features, hint_map])
        else:
            feeds = dict(self.inputs, hints=hint_map)
            found = runner.compiled.run("whole", _caller(networks.whole), [feeds[name] for name in networks.names])
        found = found if isinstance(found, list) else [found]
        return (found[1] if len(found) > 1 else None), found[0]

    @property
    def nbytes(self) -> int:
        return int(sum(np.asarray(value).nbytes for value in [*self.inputs.values(), *self.features]))


def _caller(network):
    return lambda *tensors: network(list(tensors), training=False)


def cut_at_hints(network):
    """(encoder, head, the encoder's input names, the fixed input names the head reads): `network` cut at the hints.

    The encoder is everything fed only by the inputs other than "hints" (L,
    the embedding) that an operation reading the hints uses; the head takes
    those tensors, the fixed inputs it reads directly, and the hints. The
    graph is walked by cloning it with its own layers (weights shared),
    watching each call (`keras.models.clone_model`'s `call_function`).

    Raises:
        StopIteration: the network has no "hints" input; ValueError: Keras
            cannot build one of the two halves.
    """
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in network.inputs]
    hints = next(t for t in inputs if t.name == model_lib.HINTS_NAME)
    fixed = [t for t in inputs if t is not hints]
    seen = {id(hints)}  # tensors the hints change
    crossing = {}  # tensors the hints do not change that a hint-dependent operation reads

    def watch(operation, *args, **kwargs):
        outputs = operation(*args, **kwargs)
        read = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        if any(id(t) in seen for t in read):
            seen.update(id(t) for t in keras.tree.flatten(outputs))
            crossing.update((id(t), t) for t in read if id(t) not in seen)
        return outputs

    clone = keras.models.clone_model(network, input_tensors=inputs, clone_function=lambda layer: layer,
                                     call_function=watch)
    head_fixed = [t for t in fixed if id(t) in crossing]
    cut = [t for key, t in crossing.items() if all(key != id(f) for f in fixed)]
    encoder = keras.Model(fixed, cut, name="studio_encoder")
    head = keras.Model([*head_fixed, *cut, hints], clone.outputs, name="studio_head")
    return encoder, head, [t.name for t in fixed], [t.name for t in head_fixed]


# === The encoder's features ===

FEATURE_STRIDES = (8, 16)  # the encoder's maps a reference photo is matched in: parts of objects, and objects


def feature_network(model):
    """L / 50 - 1 (N, h, w, 1) -> the encoder's features at `FEATURE_STRIDES` (those it has), weights shared.

    A pretrained encoder (`model.encoder_layer`, whatever its backbone) gives
    its taps, fed as the colorizer feeds it (`GrayToBackbone`); a scratch
    encoder its deepest map (stride 8). `strides` on the result says which
    stride each output is.

    Raises:
        ValueError: the model has no encoder to read (not a colorizer).
    """
    l_input = next(t for t in model.inputs if t.name == "L")
    inputs = keras.Input(batch_shape=l_input.shape, dtype=l_input.dtype, name="L")
    encoder = model_lib.encoder_layer(model)
    if encoder is not None:
        gray = next(layer for layer in model.layers if isinstance(layer, model_lib.GrayToBackbone))
        taps = {int(stride): tensor for stride, tensor in encoder(gray(inputs)).items()}
        strides = tuple(s for s in FEATURE_STRIDES if s in taps)
        outputs = [taps[s] for s in strides]
    else:
        deepest = [layer for layer in model.layers if layer.name.startswith(model_lib.SCRATCH_FEATURES)]
        if not deepest:
            raise ValueError("this model has no encoder whose features a reference photo can be matched in")
        strides, outputs = (8,), [keras.Model(l_input, deepest[-1].output)(inputs)]
    network = keras.Model(inputs, outputs, name="reference_features")
    network.strides = strides
    return network


# === Compiled once per shape ===


class CompiledFunctions:
    """Functions compiled by the backend once per input shape, the `MAX_COMPILED_SHAPES` most recently used kept.

    `run(name, call, arrays)` calls `call(*arrays)` through a `tf.function`
    whose signature is those arrays' shapes (any batch size), traced once and
    kept under (name, shapes); `traces` counts the tracings. Backends other
    than TensorFlow call `call` eagerly. Thread-safe.
    """

    def __init__(self):
        self._functions = OrderedDict()
        self._lock = threading.Lock()
        self.traces = 0

    def __len__(self) -> int:
        return len(self._functions)

    def run(self, name, call, arrays):
        """The outputs of `call(*arrays)` as numpy (a list for several)."""
        arrays = [np.asarray(array, np.float32) for array in arrays]
        if keras.backend.backend() != "tensorflow":
            return _numpy(call(*arrays))
        key = (name, tuple(array.shape[1:] for array in arrays))
        with self._lock:
            function = self._functions.pop(key, None)
            if function is None:
                function = self._compile(call, key[1])
            self._functions[key] = function
            while len(self._functions) > MAX_COMPILED_SHAPES:
                self._functions.popitem(last=False)
        return _numpy(function(*arrays))

    def _compile(self, call, shapes):
        import tensorflow as tf

        specs = [tf.TensorSpec((None, *shape), tf.float32) for shape in shapes]

        def network_at_one_shape(*tensors):
            self.traces += 1  # Python runs here only while tracing
            return call(*tensors)

        _drop_retracing_advice(tf.get_logger())
        return tf.function(network_at_one_shape, input_signature=specs)


def _numpy(outputs):
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(keras.ops.convert_to_numpy(output)) for output in outputs]
    return np.asarray(keras.ops.convert_to_numpy(outputs))


class _PerShapeRetracing(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls ... triggered tf.function retracing" about `CompiledFunctions`.

    TensorFlow counts traces per Python function, not per `tf.function`: the
    per-shape functions share one, so a folder of photos in five shapes reads
    to it as a function retraced five times, and it prints ten lines of
    advice to a library's developer. Each of them is traced exactly once by
    design (`CompiledFunctions.traces` counts it); TensorFlow's other warnings pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and ".network_at_one_shape at " in message)


def _drop_retracing_advice(logger: logging.Logger) -> None:
    """Add `_PerShapeRetracing` to TensorFlow's logger, once per process."""
    if not any(isinstance(existing, _PerShapeRetracing) for existing in logger.filters):
        logger.addFilter(_PerShapeRetracing())


# === Without the hint layers ===


class _FirstInput(keras.layers.Layer):
    """Passes its first input through: a hint layer's stand-in when no hints are given."""

    def call(self, inputs):
        return inputs[0]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


def without_hint_layers(network):
    """The same network, weights shared, with its hint layers skipped: for an empty hints map.

    With no hints, each hint convolution adds zero to the layer it steers
    (`Add` "*_plus_hints") and `HintBlend`'s gate is zero, so passing the
    steered layer's own output through gives exactly the same colours (and
    `ChooseByHints` the colours decoded at the automatic temperature); the
    hint branch (pooling, convolutions, affinity, gate) is left unread, and a
    compiled call or an exported file does not compute it (about half of the
    shipped model's compiled call on a CPU, `bench_inference.py`). The model
    keeps its "hints" input, which nothing reads.
    """
    def clone(layer):
        if isinstance(layer, (HintBlend, HintAffinityBlend, ChooseByHints)) or (
                isinstance(layer, keras.layers.Add) and is_hint_layer(layer.name)):
            return _FirstInput(name=f"{layer.name}_skipped", dtype=layer.dtype_policy)
        return layer  # the same layer: shared weights

    return keras.models.clone_model(network, clone_function=clone)
