"""Running an exported file (`colorfusion export`: ONNX or LiteRT, with its JSON beside it) as a runner.

An exported file is the network alone, decoding included: L scaled as
`color.l_to_model` in, and for a file exported with `--hints` the hints map,
ab / 128 out. Its JSON (`FILE.json` for `FILE.onnx`, written by
`colorfusion.export`) says how to feed it. `open_exported(path)` reads both
and gives the `inference.runners.Runner` of the file's runtime:
`OnnxRunner` (ONNX Runtime) or `LiteRTRunner` (the LiteRT interpreter, one
photo a call). The engine does the rest as for a Keras model, so the same
photo gives the same pixels (`inference.colorizer.ExportedModel`).

An exported file keeps the decoded colours only, not the classification
head's distribution: its sessions give no probabilities, so suggested
colours need the Keras model (`probabilities_refusal`).

The runtimes are optional (`pip install colorfusion[export]`); each is
imported when a file is opened, and a missing one is one line saying what to
install.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from colorfusion.errors import ModelLoadError, first_line
from colorfusion.hardware import available_cores
from colorfusion.inference.interface import Runner

FORMATS = {"onnx": ".onnx", "litert": ".tflite"}  # format -> file suffix
EXPORT_FORMAT = "colorfusion-export"  # the "format" of the JSON beside an exported file
# 2: "size" may be null (an ONNX file of any size, photos fed at "short_side"); version 1's files are read as ever.
EXPORT_VERSION = 2
INSTALL_HINT = "pip install 'colorfusion[export]'"


def sidecar_path(path) -> Path:
    """The JSON beside an exported file: `colorizer.onnx` -> `colorizer.onnx.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def is_exported(path) -> bool:
    """Whether `path` names an exported file (by its suffix: `.onnx`, `.tflite`)."""
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() in FORMATS.values()


def open_exported(path, threads: int | None = None) -> ExportedRunner:
    """The runner of an exported file: `OnnxRunner` or `LiteRTRunner`, by the runtime its JSON names.

    Args:
        threads: CPU threads of the runtime; None: the cores available (`hardware.available_cores`).

    Raises:
        ModelLoadError: a missing or damaged file or JSON, a JSON describing
            another file, or a runtime that is not installed; one line.
    """
    path = Path(path)
    record = read_record(path)
    runner = OnnxRunner if record["runtime"] == "onnx" else LiteRTRunner
    return runner(path, record, threads)


def read_record(path: Path) -> dict:
    """The JSON beside an exported file, checked against the file (its format, version, runtime, SHA-256)."""
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


class ExportedRunner(Runner):
    """What an exported file's runners share: the JSON's description, the check of L's shape, the hints default.

    `forward` feeds the file "L" and, for a file exported with hints, the
    map (all zeros for none); its runtime's `_run(feeds)` gives ab / 128.
    """

    def __init__(self, path: Path, record: dict, threads: int | None = None):
        self.path = Path(path)
        self.record = record
        self.runtime = record["runtime"]
        # None: any height and width that are multiples of `multiple` (a version-1 record always has a size).
        self.fixed_shape = None if record["size"] is None else tuple(int(side) for side in record["size"])
        self.multiple = record.get("multiple")
        self.short_side = int(record["short_side"]) if self.fixed_shape is None else min(self.fixed_shape)
        self.input_names = [item["name"] for item in record["inputs"]]
        self.takes_hints = "hints" in self.input_names
        decode = record.get("decode") or {}
        self.decode = decode.get("method", "annealed_mean")
        self.temperature = decode.get("temperature")
        self.hint_temperature = decode.get("hint_temperature")
        self.threads = threads or available_cores()
        self.hints_refusal = (f"{self.path.name} was exported without the hints input; export a hint model with "
                              f"--hints (hints=True)")
        self.probabilities_refusal = (f"{self.path.name} holds the decoded colours only, not the colour "
                                      "probabilities suggestions and confidence need; run the Keras model it was "
                                      "exported from (a .keras file, a run folder or the shipped model)")

    def forward(self, inputs: dict) -> np.ndarray:
        l_scaled = np.asarray(inputs["L"], np.float32)
        if self.fixed_shape is None:
            fits = (l_scaled.ndim == 4 and l_scaled.shape[-1] == 1
                    and not any(side % self.multiple for side in l_scaled.shape[1:3]))
            expected = f"(N, h, w, 1), h and w multiples of {self.multiple}"
        else:
            fits = l_scaled.ndim == 4 and tuple(l_scaled.shape[1:]) == (*self.fixed_shape, 1)
            expected = f"(N, {self.fixed_shape[0]}, {self.fixed_shape[1]}, 1)"
        if not fits:
            raise ValueError(f"{self.path.name} takes L of shape {expected}. Received: shape={l_scaled.shape}")
        feeds = {"L": l_scaled}
        if self.takes_hints:
            hints = inputs.get("hints")
            feeds["hints"] = (np.zeros(l_scaled.shape[:3] + (3,), np.float32) if hints is None
                              else np.asarray(hints, np.float32))
        return self._run(feeds)

    def _run(self, feeds: dict) -> np.ndarray:
        raise NotImplementedError

    def _check_inputs(self, found) -> None:
        if sorted(found) != sorted(self.input_names):
            raise ModelLoadError(f"{self.path}: its inputs {sorted(found)} are not those its JSON describes "
                                 f"{self.input_names}")


class OnnxRunner(ExportedRunner):
    """An ONNX file run by ONNX Runtime on the CPU: any batch, any size its JSON allows."""

    def __init__(self, path: Path, record: dict, threads: int | None = None):
        super().__init__(path, record, threads)
        ort = require("onnxruntime", "running an ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        # Idle threads sleep instead of spinning: on a machine whose cores are shared, spinning
        # threads took a third more wall time per call (339 ms against 218 ms, 2 cores, load 5).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise ModelLoadError(f"{self.path}: not a loadable ONNX file ({first_line(e)})") from None
        self._check_inputs([item.name for item in self._session.get_inputs()])

    def _run(self, feeds: dict) -> np.ndarray:
        return self._session.run(["ab"], feeds)[0]


class LiteRTRunner(ExportedRunner):
    """A LiteRT file run by its interpreter: one photo a call (the file's batch is 1), one call at a time."""

    def __init__(self, path: Path, record: dict, threads: int | None = None):
        super().__init__(path, record, threads)
        Interpreter = litert_interpreter()
        try:
            with quiet_fd2():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
                self._interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"{self.path}: not a loadable LiteRT file ({first_line(e)})") from None
        self._inputs = {tensor_name(item["name"]): item["index"] for item in self._interpreter.get_input_details()}
        self._check_inputs(list(self._inputs))
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()  # an interpreter runs one call at a time

    def _run(self, feeds: dict) -> np.ndarray:
        results = []
        with self._lock:
            for index in range(len(feeds["L"])):
                for name, value in feeds.items():
                    self._interpreter.set_tensor(self._inputs[name], value[index:index + 1])
                self._interpreter.invoke()
                results.append(self._interpreter.get_tensor(self._output)[0].copy())
        return np.stack(results) if results else np.zeros((0, *self.fixed_shape, 2), np.float32)


# === The runtimes ===


def require(module: str, purpose: str, error=ModelLoadError):
    """Import an optional module, or raise `error` in one line saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise error(f"{purpose} needs {module}, which is not installed: {INSTALL_HINT}") from None


def litert_interpreter():
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


def tensor_name(name: str) -> str:
    """A LiteRT tensor's name as the model names it: "serving_default_L:0" -> "L"."""
    return name.removeprefix("serving_default_").split(":")[0]


@contextlib.contextmanager
def quiet_fd2():
    """Drop what C++ libraries write to file descriptor 2 meanwhile (converters' MLIR pages, LiteRT's lines)."""
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
