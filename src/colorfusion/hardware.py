"""Choose how to train on this machine: precision, XLA, data parallelism; the CPU cores it may use.

On a GPU: mixed precision (float16 compute, float32 variables; the model's
last layers stay float32) and XLA where the backend supports it. With more
than one GPU (Kaggle's T4 x2): data-parallel training, through
`tf.distribute.MirroredStrategy` on TensorFlow or
`keras.distribution.DataParallel` on JAX. On a CPU: float32, no distribution.
Everything is chosen automatically and each choice can be overridden.

`environment_line()` says in one line what a notebook runs on (Python,
backend, Keras, colorfusion, GPUs), for its setup cell to print.
`available_cores()` is the one count of CPU cores the package's threads use.

Keras is imported inside the functions that use it: `fastlab` (numpy and
OpenCV only) reads `available_cores()` without starting a backend.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
from dataclasses import dataclass


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system has one, as in a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def count_gpus(backend: str | None = None) -> int:
    """Number of GPUs the active Keras backend can use."""
    import keras

    backend = backend or keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return len(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return sum(1 for d in jax.devices() if d.platform == "gpu")
        if backend == "torch":
            import torch

            return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - a broken CUDA install must not stop CPU training
        return 0
    return 0


def gpu_names(backend: str | None = None) -> list[str]:
    """Names of the GPUs the active Keras backend can use (e.g. ["Tesla T4", "Tesla T4"])."""
    import keras

    backend = backend or keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                    for gpu in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken CUDA install: no usable GPU, as count_gpus says
        return []
    return []


def environment_line() -> str:
    """One line: Python, the Keras backend and its version, Keras, colorfusion, the GPUs.

    Example: `Python 3.12.12 | tensorflow 2.20.0 | keras 3.13.2 | colorfusion 0.1.0 | 2 GPUs: Tesla T4, Tesla T4`
    """
    import keras

    from colorfusion import __version__

    backend = keras.backend.backend()
    try:
        backend_version = importlib.import_module(backend).__version__
    except Exception:  # noqa: BLE001 - a backend without __version__ still gets named
        backend_version = "(version unknown)"
    names = gpu_names(backend)
    gpus = f"{len(names)} GPU{'s' if len(names) > 1 else ''}: {', '.join(names)}" if names else "no GPU"
    return (f"Python {platform.python_version()} | {backend} {backend_version} | keras {keras.__version__} | "
            f"colorfusion {__version__} | {gpus}")


@dataclass
class HardwarePlan:
    """What `train` does with the hardware; `describe()` is logged in the run."""

    backend: str
    gpus: int
    mixed_precision: bool
    jit_compile: bool | str
    data_parallel: bool

    @contextlib.contextmanager
    def applied(self):
        """Within the block: this plan's global dtype policy and (JAX) distribution; the previous ones after.

        Models built inside keep their layers' dtypes, so a model trained in
        mixed precision stays so, while a `build_colorizer` after the block
        is float32 again.
        """
        import keras

        policy = keras.config.dtype_policy()
        distribution = keras.distribution.distribution()
        keras.config.set_dtype_policy("mixed_float16" if self.mixed_precision else "float32")
        if self.data_parallel and self.backend == "jax":
            keras.distribution.set_distribution(keras.distribution.DataParallel())
        try:
            yield self
        finally:
            keras.config.set_dtype_policy(policy)
            keras.distribution.set_distribution(distribution)

    def scope(self):
        """Context in which the model is built and compiled (TensorFlow multi-GPU)."""
        if self.data_parallel and self.backend == "tensorflow":
            import tensorflow as tf

            return tf.distribute.MirroredStrategy().scope()
        return contextlib.nullcontext()

    def describe(self) -> dict:
        return {
            "backend": self.backend, "gpus": self.gpus, "mixed_precision": self.mixed_precision,
            "jit_compile": self.jit_compile, "data_parallel": self.data_parallel,
        }


def plan_hardware(mode: str = "auto", mixed_precision: bool | None = None, jit_compile: bool | str | None = None,
                  data_parallel: bool | None = None) -> HardwarePlan:
    """Decide precision, XLA and distribution.

    Args:
        mode: "auto" (use the GPUs the backend sees) or "cpu" (float32, no
            distribution, whatever is installed).
        mixed_precision, jit_compile, data_parallel: overrides; None keeps
            the automatic choice.
    """
    if mode not in ("auto", "cpu"):
        raise ValueError(f"hardware must be 'auto' or 'cpu'. Received: hardware={mode!r}")
    import keras

    backend = keras.backend.backend()
    gpus = 0 if mode == "cpu" else count_gpus(backend)
    return HardwarePlan(
        backend=backend,
        gpus=gpus,
        mixed_precision=(gpus > 0) if mixed_precision is None else bool(mixed_precision),
        # "auto" lets Keras use XLA where the model and backend allow it; torch has no XLA path.
        jit_compile=("auto" if backend != "torch" else False) if jit_compile is None else jit_compile,
        data_parallel=(gpus > 1) if data_parallel is None else bool(data_parallel),
    )
