"""A colorizer as a file that runs without Keras: ONNX (ONNX Runtime) or LiteRT (TensorFlow Lite).

`export_model` writes the network, decoding included (a classification
head's annealed mean), as one file, and a small JSON file beside it
(`FILE.json` for `FILE.onnx`) that says how to feed it: the input names and
shapes, how L is scaled, the layout of the hints map, the output's units,
the decoding, and the model's card. Running such a file is the engine's
(`inference.exported`: a runner of ONNX Runtime or LiteRT behind the same
`Colorizer`, `ExportedModel`; same photo in, same pixels out), so
`colorfusion colorize --model colorizer.onnx`, `colorize_folder`, a clip and
the studio work with one.

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

import hashlib
import json
import logging
import os
from pathlib import Path

import keras
import numpy as np

from colorfusion import color, io
from colorfusion.errors import UsageError, first_line
from colorfusion.inference.colorizer import Colorizer, ExportedModel, as_colorizer
from colorfusion.inference.engine import INFERENCE_SIZE, INPUT_MULTIPLE, network_shape
from colorfusion.inference.exported import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    FORMATS,
    INSTALL_HINT,
    is_exported,
    litert_interpreter,
    quiet_fd2,
    require,
    sidecar_path,
    tensor_name,
)

# Read with the exporter, defined with the runner (`inference.exported`): a file's JSON and how it is found.
__all__ = ["export_model", "ExportError", "ExportedModel", "describe", "network_function", "parse_size",
           "sidecar_path", "is_exported", "FORMATS", "EXPORT_FORMAT", "EXPORT_VERSION", "INSTALL_HINT"]

ONNX_OPSET = 17
# A LiteRT file's size unless told: a 4:3 landscape photo, as Colorizer runs it. An ONNX file takes any size.
DEFAULT_SIZE = network_shape(3000, 4000, INFERENCE_SIZE)  # (256, 352)
_REQUIREMENTS = {"onnx": ("tf2onnx", "onnx"), "litert": ()}  # exporters beyond TensorFlow


class ExportError(UsageError):
    """A model could not be exported (a missing exporter, a size it cannot take); the message is one line.

    A user error (`errors.USER_ERRORS`): what was asked cannot be exported, which the command reports as such.
    """


def parse_size(size) -> tuple[int, int]:
    """(height, width) from "256x352", (256, 352) or 256 (a square).

    Raises:
        UsageError: not two positive integers (a `ValueError`).
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
        raise UsageError(f"size must be HEIGHTxWIDTH in pixels, e.g. 256x352. Received: size={size!r}")
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
        raise UsageError(f"format must be one of {tuple(FORMATS)}. Received: format={format!r}")
    if path.suffix.lower() != FORMATS[format]:  # the runtime that reads a file is told by its suffix
        raise UsageError(f"{path}: {format} files end in {FORMATS[format]}")
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
        require(module, "exporting to " + format, ExportError)
    height, width = sides or (None, None)
    function, specs = network_function(colorizer, height, width, hints, batch=None if format == "onnx" else 1)
    try:
        with quiet_fd2():
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
        raise UsageError(f"size must be multiples of {INPUT_MULTIPLE} (the encoder's deepest stride), e.g. 256x352. "
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
    with quiet_fd2():
        interpreter = litert_interpreter()(model_content=data)
    inputs = sorted((item["name"] for item in interpreter.get_input_details()),
                    key=lambda name: tensor_name(name) != "L")
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
                    **({"hint_temperature": colorizer.hint_temperature} if info.hints else {})}
                   if info.head == "classification" else None),
        "model": {
            "source": "pretrained" if shipped else (str(source) if isinstance(source, (str, os.PathLike)) else None),
            "sha256": file_sha256(PRETRAINED_FILE) if shipped and PRETRAINED_FILE.is_file() else None,
            "head": info.head, "encoder": info.encoder, "num_bins": info.num_bins,
            "takes_hints": info.hints, "colorfusion": __version__,
        },
        "model_card": card,
    }
