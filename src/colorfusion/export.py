"""A colorizer as a file that runs without Keras: ONNX (ONNX Runtime) or LiteRT (TensorFlow Lite).

`export_model` writes the network, decoding included (a classification
head's annealed mean), as one file, and a small JSON file beside it
(`FILE.json` for `FILE.onnx`) that says how to feed it: the input names and
shapes, how L is scaled, the layout of the hints map, the output's units,
the decoding, and the model's card. `ExportedModel` runs such
a file as a `Colorizer` does (same photo in, same pixels out), so
`colorfusion colorize --model colorizer.onnx` and `colorize_folder` work with
one.

    export_model("pretrained", "colorizer.onnx")                        # + colorizer.onnx.json
    export_model("runs/exp1", "colorizer.tflite", format="litert", hints=True)
    rgb = ExportedModel("colorizer.onnx")("old_photo.jpg")             # as Colorizer.pretrained() does

The network is traced by a `tf.function`. An ONNX file takes any batch, and
by default any height and width (multiples of 32, the network's upsampling
being `BilinearUpSampling2D`): `ExportedModel` feeds it each photo at the
shape `Colorizer` would (its aspect ratio at the short side the JSON
records), so it gives the Keras model's pixels for photos of every shape. A
LiteRT file takes one photo a call at one size (256 x 352 by default), as
does an ONNX file given a size: a photo of another shape is then resized to
the file's size for the network (as a fixed-size Keras model squeezes it
into its square), and the colour joined back at the photo's own resolution.

The exporters and runtimes are optional (`pip install colorfusion[export]`:
tf2onnx, onnx, onnxruntime, ai-edge-litert); each is imported when needed and
a missing one is one line saying what to install. `docs/export.md` shows how
to run a file from plain onnxruntime and numpy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np

from colorfusion import color, io
from colorfusion.errors import HintError, ModelLoadError, first_line
from colorfusion.inference.colorizer import (
    INFERENCE_SIZE,
    INPUT_MULTIPLE,
    INTERPOLATIONS,
    Colorizer,
    as_colorizer,
    network_shape,
)

FORMATS = {"onnx": ".onnx", "litert": ".tflite"}  # format -> file suffix
ONNX_OPSET = 17
# A LiteRT file's size unless told: a 4:3 landscape photo, as Colorizer runs it. An ONNX file takes any size.
DEFAULT_SIZE = network_shape(3000, 4000, INFERENCE_SIZE)  # (256, 352)
EXPORT_FORMAT = "colorfusion-export"  # the "format" of the JSON beside an exported file
# 2: "size" may be null (an ONNX file of any size, photos fed at "short_side"); version 1's files are read as ever.
EXPORT_VERSION = 2
INSTALL_HINT = "pip install 'colorfusion[export]'"
_REQUIREMENTS = {"onnx": ("tf2onnx", "onnx"), "litert": ()}  # exporters beyond TensorFlow
_RUNTIMES = {"onnx": "onnxruntime", "litert": "ai_edge_litert"}


class ExportError(Exception):
    """A model could not be exported (a missing exporter, a size it cannot take); the message is one line."""


def sidecar_path(path) -> Path:
    """The JSON beside an exported file: `colorizer.onnx` -> `colorizer.onnx.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def is_exported(path) -> bool:
    """Whether `path` names an exported file (by its suffix: `.onnx`, `.tflite`)."""
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() in FORMATS.values()


def parse_size(size) -> tuple[int, int]:
    """(height, width) from "256x352", (256, 352) or 256 (a square).

    Raises:
        ValueError: not two positive integers.
    """
    try:
        if isinstance(size, str):
            parts = size.lower().replace(" ", "").split("x")
            sides = tuple(int(part) for part in parts) * (2 if len(parts) == 1 else 1)
        elif isinstance(size, (int, np.integer)):
            sides = (int(size), int(size))
        else:
            sides = tuple(int(side) for side in size)
    except (TypeError, ValueError):
        sides = ()
    if len(sides) != 2 or min(sides) < 1:
        raise ValueError(f"size must be HEIGHTxWIDTH in pixels, e.g. 256x352. Received: size={size!r}")
    return sides


def export_model(model="pretrained", path="colorizer.onnx", format=None, size=None, hints=False,
                 decode="annealed_mean", temperature=None) -> Path:
    """Write `model` as an ONNX or LiteRT file, and its JSON beside it (atomically).

    The file maps L (scaled as `color.l_to_model`) and, with `hints`, the
    hints map, to ab / 128 at the input size: a classification head is
    decoded inside (`model.inference_model`: annealed mean at
    `model.TEMPERATURE` by default, and for a hints map holding a point at
    `model.HINT_TEMPERATURE`).

    Args:
        model: "pretrained" (the shipped model), a `.keras` file or run
            folder, a Keras model, or a `Colorizer` (its decoding is kept).
        path: the file to write; its JSON goes to `path + ".json"`.
        format: "onnx" or "litert"; None: from the suffix of `path`
            (`.tflite` is LiteRT), else ONNX.
        size: (height, width) of the network's input, or "HxW": the file
            takes that size only; multiples of 32. None: for ONNX any height
            and width (multiples of 32; `ExportedModel` feeds a photo at
            its aspect ratio, short side the colorizer's `size`, as
            `Colorizer` does), for LiteRT 256 x 352 (a 4:3 landscape photo at
            short side 256). A model with a fixed square input takes only its
            own size (the default then).
        hints: keep the "hints" input of a hint model (the file then takes
            a hints map, all zeros for none). False: the file colorizes
            automatically and takes L alone.
        decode, temperature: the decoding of a classification head when
            `model` is not a `Colorizer`.

    Returns:
        The path written.

    Raises:
        ModelLoadError: the model cannot be loaded.
        ExportError: a missing exporter, a model or size that cannot be
            exported; one line.
        ValueError: a bad argument.

    Example:
        export_model("pretrained", "colorizer.onnx")  # any size
    """
    path = Path(path)
    if format is None:
        format = "litert" if path.suffix.lower() == FORMATS["litert"] else "onnx"
    if format not in FORMATS:
        raise ValueError(f"format must be one of {tuple(FORMATS)}. Received: format={format!r}")
    if path.suffix.lower() != FORMATS[format]:  # the runtime that reads a file is told by its suffix
        raise ValueError(f"{path}: {format} files end in {FORMATS[format]}")
    colorizer = model if isinstance(model, Colorizer) else as_colorizer(model, decode=decode, temperature=temperature)
    if isinstance(colorizer, ExportedModel):
        raise ExportError(f"{colorizer.path}: already an exported file; export the Keras model it came from")
    sides = _check_size(colorizer, size, format)
    if colorizer.embedding_dim:
        raise ExportError("this model has a semantic input (an embedding from a separate backbone), which an "
                          "exported file cannot compute; export a model without one (the shipped model, or a run "
                          "trained with --embedding encoder or none)")
    if hints and not colorizer.takes_hints:
        raise ExportError("this model takes no colour hints (it was trained without hints=True); export it "
                          "without --hints")
    hints = bool(hints and colorizer.takes_hints)
    if sides is None:
        _check_free_sides(colorizer)
    for module in _REQUIREMENTS[format]:
        _require(module, "exporting to " + format)
    height, width = sides or (None, None)
    function, specs = network_function(colorizer, height, width, hints, batch=None if format == "onnx" else 1)
    try:
        with _quiet_fd2():
            data = _to_onnx(function, specs) if format == "onnx" else _to_litert(function)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - the converters raise many types
        at = "any size" if sides is None else f"{height}x{width}"
        raise ExportError(f"cannot export to {format} at {at} ({first_line(e)})") from None
    with io.atomic_write(path, "wb") as f:
        f.write(data)
    record = describe(colorizer, model, format, sides, hints, path.name, hashlib.sha256(data).hexdigest())
    if format == "litert":  # the interpreter's own tensor names ("L", "Identity"), for a plain LiteRT caller
        names = _litert_tensor_names(data)
        for item, name in zip(record["inputs"] + record["outputs"], names["inputs"] + names["outputs"]):
            item["tensor"] = name
    with io.atomic_write(sidecar_path(path), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    return path


def _check_size(colorizer: Colorizer, size, format: str) -> tuple[int, int] | None:
    """The file's (height, width), or None: any size (an ONNX file of a model that takes any size)."""
    if colorizer.image_size is not None:  # a fixed square input
        square = (colorizer.image_size, colorizer.image_size)
        sides = square if size is None else parse_size(size)
        if sides != square:
            raise ExportError(f"this model takes a fixed {square[0]}x{square[1]} input; it cannot be exported at "
                              f"{sides[0]}x{sides[1]}")
        return sides
    if size is None:
        return None if format == "onnx" else DEFAULT_SIZE
    height, width = parse_size(size)
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ValueError(f"size must be multiples of {INPUT_MULTIPLE} (the encoder's deepest stride), e.g. 256x352. "
                         f"Received: size={height}x{width}")
    return height, width


def _check_free_sides(colorizer: Colorizer) -> None:
    """Refuse, in one line, a model that cannot be traced with free sides: one loaded from a `.keras` file saved
    before `BilinearUpSampling2D` holds Keras' bilinear `UpSampling2D`, which takes one size only."""
    fixed = [layer.name for layer in colorizer.inference.layers
             if isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "bilinear"]
    if fixed:
        raise ExportError(f"this model's upsampling ({fixed[0]}: Keras' UpSampling2D, saved by an older colorfusion) "
                          f"takes one input size only; export it at one size with --size HxW, e.g. "
                          f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}")


def network_function(colorizer: Colorizer, height: int | None, width: int | None, hints: bool, batch=None):
    """(a `tf.function` of the inference network at this input shape, its input signature); None: a free side.

    Its inputs are "L" (batch, h, w, 1), scaled as `color.l_to_model`, and
    with `hints` the "hints" map (batch, h, w, 3); without, a hint model runs
    without its hint layers (`Colorizer.automatic_network`: the same colours as
    an empty map, and none of the hint branch's constants in the file). Its
    output is {"ab": ab / 128}.
    """
    import tensorflow as tf

    takes_hints = colorizer.takes_hints
    inference = colorizer.inference if hints else colorizer.automatic_network
    specs = [tf.TensorSpec((batch, height, width, 1), tf.float32, name="L")]
    if hints:
        specs.append(tf.TensorSpec((batch, height, width, 3), tf.float32, name="hints"))

        def network(l_scaled, hint_map):
            return {"ab": inference({"L": l_scaled, "hints": hint_map}, training=False)}
    else:
        def network(l_scaled):
            inputs = {"L": l_scaled}
            if takes_hints:  # read by no layer left: pruned from the graph
                inputs["hints"] = tf.zeros_like(tf.concat([l_scaled] * 3, axis=-1))
            return {"ab": inference(inputs, training=False)}

    return tf.function(network, input_signature=specs), specs


def _to_onnx(function, specs) -> bytes:
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=ONNX_OPSET)
    # TensorFlow lower-cases argument names ("L" becomes "l"): give the inputs the model's names back.
    for graph_input, spec in zip(proto.graph.input, specs):
        old, new = graph_input.name, spec.name
        if old != new:
            graph_input.name = new
            for node in proto.graph.node:
                for index, name in enumerate(node.input):
                    if name == old:
                        node.input[index] = new
    return proto.SerializeToString()


def _to_litert(function) -> bytes:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # The weights frozen into constants first: given the Keras model as `trackable_obj` instead, the
    # converter keeps some as resource variables that the interpreter then cannot read (READ_VARIABLE).
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # "consider providing the trackable_obj": not for a frozen graph
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    finally:
        absl.setLevel(level)


def _litert_tensor_names(data: bytes) -> dict:
    """{"inputs": [...], "outputs": [...]}: the tensor names of a LiteRT file, inputs in the order L, hints."""
    with _quiet_fd2():
        interpreter = _litert_interpreter()(model_content=data)
    inputs = sorted((item["name"] for item in interpreter.get_input_details()),
                    key=lambda name: _tensor_name(name) != "L")
    return {"inputs": inputs, "outputs": [item["name"] for item in interpreter.get_output_details()]}


def describe(colorizer: Colorizer, source, format: str, size, hints: bool, file_name: str, sha256: str) -> dict:
    """The JSON written beside an exported file: how to feed it, what comes out, and where it came from.

    `size`: the file's (height, width), or None for any (multiples of `INPUT_MULTIPLE`).
    """
    from colorfusion import __version__
    from colorfusion import model as model_lib
    from colorfusion.hints import HINT_PATCH
    from colorfusion.presets import MODEL_CARD, PRETRAINED_FILE, file_sha256, is_pretrained

    height, width = size or (None, None)
    # The short side as the network sees it (a multiple of 32), so a caller needs no rounding of its own.
    short_side = min(network_shape(1, 1, colorizer.size)) if size is None else min(size)
    resized_to = "the input size" if size is not None else (
        f"its own aspect ratio at short side {short_side}, each side a multiple of {INPUT_MULTIPLE} "
        "(colorfusion.inference.colorizer.network_shape)")
    batch = None if format == "onnx" else 1
    info = model_lib.model_info(colorizer.model)
    inputs = [{"name": "L", "shape": [batch, height, width, 1], "dtype": "float32",
               "scaling": f"L / {color.L_MODEL_CENTER:g} - 1",
               "meaning": f"CIE L* (D65) in [0, 100] of the photo resized (RGB first, then its L) to {resized_to}, "
                          "scaled to [-1, 1] (colorfusion.color.l_to_model)"}]
    if hints:
        inputs.append({"name": "hints", "shape": [batch, height, width, 3], "dtype": "float32",
                       "meaning": "the hints map (colorfusion.hints.hint_map): all zeros for no hints; around each "
                                  f"hinted point a square of {HINT_PATCH} pixels holding a / {color.AB_SCALE:g}, "
                                  f"b / {color.AB_SCALE:g} of the colour at the photo's lightness there and a "
                                  "mask of 1",
                       "channels": [f"a / {color.AB_SCALE:g}", f"b / {color.AB_SCALE:g}", "mask (1 where hinted)"],
                       "patch": HINT_PATCH})
    shipped = isinstance(source, (str, os.PathLike)) and is_pretrained(source)
    card = MODEL_CARD.read_text(encoding="utf-8") if shipped and MODEL_CARD.is_file() else None
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "runtime": format,
        "file": file_name,
        "sha256": sha256,
        "opset": ONNX_OPSET if format == "onnx" else None,
        "size": None if size is None else [height, width],  # None: any height and width, multiples of "multiple"
        "multiple": INPUT_MULTIPLE if size is None else None,
        "short_side": short_side,  # a photo's short side at the network (`ExportedModel`, as `Colorizer`)
        "batch": batch,
        "inputs": inputs,
        "outputs": [{"name": "ab", "shape": [batch, height, width, 2], "dtype": "float32",
                     "scaling": f"ab / {color.AB_SCALE:g}",
                     "meaning": f"the predicted a, b of CIE Lab divided by {color.AB_SCALE:g} "
                                f"(colorfusion.color.ab_from_model multiplies back) at the input size; resize "
                                "them to the photo's size and join them with its own full-resolution L"}],
        "l_scale": {"divide": color.L_MODEL_CENTER, "subtract": 1.0},
        "ab_scale": color.AB_SCALE,
        "decode": ({"method": colorizer.decode, "temperature": colorizer.temperature,
                    **({"hint_temperature": colorizer.hint_temperature} if info["hints"] else {})}
                   if info["head"] == "classification" else None),
        "model": {
            "source": "pretrained" if shipped else (str(source) if isinstance(source, (str, os.PathLike)) else None),
            "sha256": file_sha256(PRETRAINED_FILE) if shipped and PRETRAINED_FILE.is_file() else None,
            "head": info["head"], "encoder": info["encoder"], "num_bins": info["num_bins"],
            "takes_hints": info["hints"], "colorfusion": __version__,
        },
        "model_card": card,
    }


# === Running an exported file ===


class ExportedModel(Colorizer):
    """An exported file (`.onnx` or `.tflite`, with its JSON) run as a `Colorizer`: same photos in, same pixels out.

    Only the network changes: ONNX Runtime or the LiteRT interpreter runs it
    instead of Keras. Photos are read, resized for the network and joined
    back at full resolution by the `Colorizer` steps, so
    `colorize_folder(..., ExportedModel("colorizer.onnx"))` works too. A file
    of any size gets each photo at its aspect ratio, short side the JSON's
    `short_side` (the shape `Colorizer` gives it); a file of one size gets
    every photo resized to that size.

    Args:
        path: the `.onnx` or `.tflite` file; its JSON (`FILE.json`) must be
            beside it.
        interpolation: "bicubic" (default) or "bilinear", to resize ab to
            the photo's size.
        threads: CPU threads of the runtime; None: the cores available.

    Raises:
        ModelLoadError: a missing or damaged file or JSON, a JSON describing
            another file, or a runtime that is not installed; one line.

    Example:
        rgb = ExportedModel("colorizer.onnx")("old_photo.jpg")
    """

    def __init__(self, path, interpolation="bicubic", threads=None):  # Colorizer's attributes, no Keras model
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}. "
                             f"Received: interpolation={interpolation!r}")
        self.path = Path(path)
        self.record = _read_record(self.path)
        self.runtime = self.record["runtime"]
        # None: any height and width that are multiples of `multiple` (a version-1 record always has a size).
        self.shape = None if self.record["size"] is None else tuple(int(side) for side in self.record["size"])
        self.multiple = self.record.get("multiple")
        names = [item["name"] for item in self.record["inputs"]]
        self.takes_hints = "hints" in names
        decode = self.record.get("decode") or {}
        # The Colorizer's attributes: no Keras model, no embedder; the file fixes size and decoding.
        self.model = self.inference = self.embedder = None
        self.embedding_dim = None
        self.image_size = None
        self.size = int(self.record["short_side"]) if self.shape is None else min(self.shape)
        self.interpolation = interpolation
        self.decode = decode.get("method", "annealed_mean")
        self.temperature = decode.get("temperature")
        self.hint_temperature = decode.get("hint_temperature")
        self.threads = threads or _available_cores()
        self._run = (self._onnx_runner if self.runtime == "onnx" else self._litert_runner)(names)

    def __repr__(self) -> str:
        size = f"any, short side {self.size}" if self.shape is None else f"{self.shape[0]}x{self.shape[1]}"
        return f"ExportedModel({str(self.path)!r}, runtime={self.runtime!r}, size={size})"

    def with_decoding(self, decode="annealed_mean", temperature=None, hint_temperature=None):
        raise ValueError(f"{self.path}: an exported file's decoding was fixed when it was exported")

    def with_size(self, size):
        takes = f"photos at short side {self.size}" if self.shape is None else f"{self.shape[0]}x{self.shape[1]} inputs"
        raise ValueError(f"{self.path}: an exported file takes {takes} only; export another size")

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """The file's input size, whatever the photo's; for a file of any size, the photo's as `Colorizer` has it."""
        return super().input_shape(height, width) if self.shape is None else self.shape

    def hints_input(self, hints, l_full: np.ndarray, shape) -> np.ndarray:
        if hints and not self.takes_hints:
            raise HintError(f"{self.path.name} was exported without the hints input; export a hint model with "
                            f"--hints (hints=True)")
        return super().hints_input(hints, l_full, shape)

    def predict_ab(self, l_small: np.ndarray, hint_maps=None) -> np.ndarray:
        """ab in Lab units (N, h, w, 2) for a batch of L (N, h, w, 1) in [0, 100], as `Colorizer.predict_ab`."""
        l_small = np.asarray(l_small, np.float32)
        if self.shape is None:
            fits = (l_small.ndim == 4 and l_small.shape[-1] == 1
                    and not any(side % self.multiple for side in l_small.shape[1:3]))
            expected = f"(N, h, w, 1), h and w multiples of {self.multiple}"
        else:
            fits = l_small.ndim == 4 and tuple(l_small.shape[1:]) == (*self.shape, 1)
            expected = f"(N, {self.shape[0]}, {self.shape[1]}, 1)"
        if not fits:
            raise ValueError(f"{self.path.name} takes L of shape {expected}. Received: shape={l_small.shape}")
        feeds = {"L": color.l_to_model(l_small)}
        if self.takes_hints:
            feeds["hints"] = (np.zeros(l_small.shape[:3] + (3,), np.float32) if hint_maps is None
                              else np.asarray(hint_maps, np.float32))
        return color.ab_from_model(self._run(feeds))

    def _onnx_runner(self, names):
        ort = _require("onnxruntime", "running an ONNX file", ModelLoadError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        # Idle threads sleep instead of spinning: on a machine whose cores are shared, spinning
        # threads took a third more wall time per call (339 ms against 218 ms, 2 cores, load 5).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise ModelLoadError(f"{self.path}: not a loadable ONNX file ({first_line(e)})") from None
        found = [item.name for item in session.get_inputs()]
        if sorted(found) != sorted(names):
            raise ModelLoadError(f"{self.path}: its inputs {found} are not those its JSON describes {names}")
        return lambda feeds: session.run(["ab"], feeds)[0]

    def _litert_runner(self, names):
        Interpreter = _litert_interpreter()
        try:
            with _quiet_fd2():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
                interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"{self.path}: not a loadable LiteRT file ({first_line(e)})") from None
        inputs = {_tensor_name(item["name"]): item["index"] for item in interpreter.get_input_details()}
        if sorted(inputs) != sorted(names):
            raise ModelLoadError(f"{self.path}: its inputs {sorted(inputs)} are not those its JSON describes {names}")
        output = interpreter.get_output_details()[0]["index"]
        lock = threading.Lock()  # an interpreter runs one call at a time

        def run(feeds):
            # One photo a call (the file's batch is 1).
            count = len(feeds["L"])
            results = []
            with lock:
                for index in range(count):
                    for name, value in feeds.items():
                        interpreter.set_tensor(inputs[name], value[index:index + 1])
                    interpreter.invoke()
                    results.append(interpreter.get_tensor(output)[0].copy())
            return np.stack(results) if results else np.zeros((0, *self.shape, 2), np.float32)

        return run


def _litert_interpreter():
    """The LiteRT interpreter class: ai-edge-litert's, else TensorFlow's own (it runs the same files)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            import tensorflow as tf
        except ImportError:
            raise ModelLoadError(f"running a LiteRT file needs ai-edge-litert or tensorflow: {INSTALL_HINT}") from None
        Interpreter = tf.lite.Interpreter
    return Interpreter


def _tensor_name(name: str) -> str:
    """A LiteRT tensor's name as the model names it: "serving_default_L:0" -> "L"."""
    return name.removeprefix("serving_default_").split(":")[0]


def _read_record(path: Path) -> dict:
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such exported model file")
    if path.suffix.lower() not in FORMATS.values():
        raise ModelLoadError(f"{path}: not an exported model (expected a .onnx or .tflite file)")
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise ModelLoadError(f"{path}: no {sidecar.name} beside it (colorfusion export writes one; it says how "
                             f"to feed the file)")
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{sidecar}: damaged ({first_line(e)})") from None
    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        raise ModelLoadError(f"{sidecar}: not a colorfusion export record (no '{EXPORT_FORMAT}' format)")
    if record.get("version", 0) > EXPORT_VERSION:
        raise ModelLoadError(f"{sidecar}: written by a newer colorfusion (version {record['version']}); upgrade")
    if record.get("runtime") not in FORMATS or FORMATS[record["runtime"]] != path.suffix.lower():
        raise ModelLoadError(f"{sidecar}: describes a {record.get('runtime')!r} file, not {path.name}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != record.get("sha256"):
        raise ModelLoadError(f"{path}: its {sidecar.name} describes another file (SHA-256 differs): export again")
    return record


def _require(module: str, purpose: str, error=ExportError):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise error(f"{purpose} needs {module}, which is not installed: {INSTALL_HINT}") from None


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _quiet_fd2():
    """Drop what the converters' C++ writes to file descriptor 2 meanwhile (pages of MLIR and absl lines)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
