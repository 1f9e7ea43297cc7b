"""A quiet start of the Keras backend, for the commands (`cli`, `demo`, the studio).

TensorFlow's C++ start-up lines (absl / oneDNN / "no CUDA") come from TF 2.21
whatever TF_CPP_MIN_LOG_LEVEL says: `import_backend_quietly` imports Keras
with file descriptor 2 captured and writes back only what a user should see
(`filter_startup_lines`); a GPU that is present but unusable becomes one
warning line. Nothing here imports Keras at module level: a command's
`--help` stays fast.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
import tempfile

# TensorFlow's C++ start-up lines. From TF 2.21 they come whatever TF_CPP_MIN_LOG_LEVEL
# says (absl logs them before TensorFlow reads it), so the CLI filters them itself.
_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"TF-TRT Warning: Could not find TensorRT",
    r"oneDNN supports DT_INT32 only on platforms with AVX-512",
]))
# Expected where there is no GPU; where there is one, they say why it cannot be used.
_GPU_PROBLEM = re.compile("|".join([
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"Cannot dlopen some GPU libraries",
]))
_GLOG_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ")


def nvidia_gpu_present() -> bool:
    """An NVIDIA device node or nvidia-smi: a GPU that the backend should be able to use.

    Not when CUDA_VISIBLE_DEVICES hides every GPU ("" or "-1"): then no GPU is meant to be used.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia*")) or shutil.which("nvidia-smi") is not None


def filter_startup_lines(lines, gpu_present: bool) -> list[str]:
    """What a user should see of the backend's start-up output.

    Known start-up noise is dropped; so are the "no CUDA" lines when there is
    no GPU. With a GPU present, the first such line becomes one warning line
    (the rest are its echoes). Anything else is kept as it is.
    """
    kept, gpu_problem = [], None
    for line in lines:
        if not line.strip() or _NOISE.search(line):
            continue
        if _GPU_PROBLEM.search(line):
            gpu_problem = gpu_problem or _GLOG_PREFIX.sub("", line).strip()
            continue
        kept.append(line)
    if gpu_present and gpu_problem:
        kept.append(f"warning: a GPU is present but the backend cannot use it, running on the CPU: {gpu_problem}")
    return kept


def import_backend_quietly(training: bool = False) -> None:
    """Import Keras and start its backend's devices without the backend's start-up noise.

    The noise is written by C++ straight to file descriptor 2, so fd 2 (not
    just `sys.stderr`) goes to a temporary file meanwhile; what
    `filter_startup_lines` keeps is written back to stderr afterwards, also
    when the import fails. `training=True` also takes one step on a toy model
    meanwhile (`_first_training_step`), for the line TensorFlow logs there.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to keep quiet
        import keras
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.config.list_physical_devices("GPU")  # CUDA start-up (cuInit) logs here, not at import
                if training:
                    _first_training_step()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", errors="replace").splitlines()
            for line in filter_startup_lines(lines, nvidia_gpu_present()):
                print(line, file=sys.stderr)


def _first_training_step() -> None:
    """One training step of a toy Conv2D + UpSampling2D model, then a clean Keras session.

    On a CPU without AVX-512, TensorFlow's oneDNN graph pass logs "E0000 ...
    oneDNN supports DT_INT32 only on platforms with AVX-512" once per process,
    at the first training step with an upsampling gradient: harmless (it falls
    back to Eigen) but it reads as an error in the middle of training. Taking
    that step here, while fd 2 is captured, spends it; about a second.
    """
    import keras
    import numpy as np

    toy = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 3, padding="same"),
                            keras.layers.UpSampling2D()])
    toy.compile(optimizer="sgd", loss="mse")
    toy.fit(np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 8, 8, 1), np.float32), epochs=1, verbose=0)
    keras.utils.clear_session()
