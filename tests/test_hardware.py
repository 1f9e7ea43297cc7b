import platform

import keras
import numpy as np
import pytest

import colorfusion
from colorfusion import hardware


@pytest.fixture(autouse=True)
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def plan_with(monkeypatch, gpus, **overrides):
    monkeypatch.setattr(hardware, "count_gpus", lambda backend=None: gpus)
    return hardware.plan_hardware("auto", **overrides)


def test_cpu_trains_in_float32_without_distribution(monkeypatch):
    plan = plan_with(monkeypatch, 0)
    assert (plan.mixed_precision, plan.data_parallel, plan.gpus) == (False, False, 0)
    with plan.applied():
        assert keras.mixed_precision.global_policy().name == "float32"


def test_one_gpu_uses_mixed_precision_and_no_distribution(monkeypatch):
    plan = plan_with(monkeypatch, 1)
    assert plan.mixed_precision and not plan.data_parallel
    assert plan.jit_compile == "auto"


def test_two_gpus_train_data_parallel(monkeypatch):
    plan = plan_with(monkeypatch, 2)
    assert plan.mixed_precision and plan.data_parallel
    assert plan.describe()["gpus"] == 2


def test_every_choice_can_be_overridden(monkeypatch):
    plan = plan_with(monkeypatch, 2, mixed_precision=False, jit_compile=False, data_parallel=False)
    assert (plan.mixed_precision, plan.jit_compile, plan.data_parallel) == (False, False, False)
    assert hardware.plan_hardware("cpu").gpus == 0
    with pytest.raises(ValueError, match="hardware"):
        hardware.plan_hardware("tpu-pod")


def test_mixed_precision_model_computes_in_float16_and_outputs_float32(monkeypatch, tiny_model):
    plan = plan_with(monkeypatch, 1)
    with plan.applied():
        model = tiny_model()
    assert model.get_layer("encoder_block1_conv1").compute_dtype == "float16"
    out = model.predict({"L": np.zeros((1, 32, 32, 1), np.float32)}, verbose=0)
    assert out.dtype == np.float32


def test_applied_restores_the_previous_policy_and_distribution(monkeypatch):
    keras.config.set_dtype_policy("float32")
    plan = plan_with(monkeypatch, 2)  # mixed precision and data parallel
    with plan.applied():
        assert keras.config.dtype_policy().name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"
    assert keras.distribution.distribution() is None
    with pytest.raises(RuntimeError, match="inside"):
        with plan.applied():
            raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == "float32"  # restored after an error too


def test_environment_line_names_python_backend_keras_colorfusion_and_no_gpu_here():
    line = hardware.environment_line()
    backend = keras.backend.backend()
    version = __import__(backend).__version__
    assert "\n" not in line
    assert line == (f"Python {platform.python_version()} | {backend} {version} | keras {keras.__version__} | "
                     f"colorfusion {colorfusion.__version__} | no GPU")  # tests hide the GPUs (conftest)


@pytest.mark.parametrize("names, expected", [
    (["Tesla T4", "Tesla T4"], "2 GPUs: Tesla T4, Tesla T4"),
    (["NVIDIA L4"], "1 GPU: NVIDIA L4"),
])
def test_environment_line_counts_and_names_the_gpus(monkeypatch, names, expected):
    monkeypatch.setattr(hardware, "gpu_names", lambda backend=None: names)
    assert hardware.environment_line().endswith(f"| {expected}")


def test_available_cores_are_those_this_process_may_run_on_not_all_the_machine_has(monkeypatch):
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)  # a container's share
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: 64)
    assert hardware.available_cores() == 2
    monkeypatch.delattr(hardware.os, "sched_getaffinity")  # a system without affinity (macOS, Windows)
    assert hardware.available_cores() == 64
