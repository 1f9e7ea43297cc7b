"""A quiet command line: the backend's start-up noise is dropped, a GPU problem is one line."""

import os
import subprocess
import sys
import textwrap

import pytest
from photos import write_photos

from colorfusion import startup

# What TensorFlow 2.21 prints on a machine without a GPU, whatever TF_CPP_MIN_LOG_LEVEL says.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795381771.078934    5908 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1795381771.079408    5908 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "E0000 00:00:1795381787.696940    6005 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
]
CUINIT = "failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"
WARNING = "warning: a GPU is present but the backend cannot use it, running on the CPU: "
# Python run first in a subprocess: a machine without an NVIDIA GPU, staged on any machine (no /dev/nvidia*
# device node, no nvidia-smi), so that the same exact assertions hold on a machine with a GPU too.
NO_GPU = textwrap.dedent("""
    import glob, shutil
    _glob, _which = glob.glob, shutil.which
    glob.glob = lambda pattern, *a, **k: [] if pattern.startswith("/dev/nvidia") else _glob(pattern, *a, **k)
    shutil.which = lambda name, *a, **k: None if name == "nvidia-smi" else _which(name, *a, **k)
""")
CLI = "import sys\nfrom colorfusion.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def test_without_a_gpu_the_start_up_noise_is_dropped_and_other_lines_kept():
    lines = NOISE[:2] + ["/site-packages/x.py:3: UserWarning: something real", ""] + NOISE[2:] + NOISE
    assert startup.filter_startup_lines(lines,
                                        gpu_present=False) == ["/site-packages/x.py:3: UserWarning: something real"]


def test_with_a_gpu_a_cuda_failure_is_one_warning_line():
    kept = startup.filter_startup_lines(NOISE[:1] + NOISE[3:] + NOISE[2:3], gpu_present=True)
    assert kept == [WARNING + CUINIT]  # the first CUDA line says why; the rest are its echoes
    assert startup.filter_startup_lines(NOISE[:2], gpu_present=True) == []  # a working GPU: nothing to say


def run_python(code, env_extra, tmp_path, args=(), timeout=120):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **env_extra}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)


@pytest.fixture
def noisy_keras(tmp_path):
    """A stand-in `keras` whose import writes TensorFlow's start-up noise to fd 2, plus one real line."""
    package = tmp_path / "fake" / "keras"
    package.mkdir(parents=True)
    noise = "\n".join(NOISE + ["a real problem"]) + "\n"
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        import os, types
        os.write(2, {noise.encode()!r})
        backend = types.SimpleNamespace(backend=lambda: "jax")
    """))
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), *sys.path])}


@pytest.mark.parametrize("gpu", [False, True, "hidden"])
def test_import_backend_quietly_filters_what_the_import_writes_to_fd_2(noisy_keras, tmp_path, gpu):
    env = dict(noisy_keras)
    prelude = ""
    if gpu:  # nvidia-smi on the PATH: a GPU is there, so the CUDA failure is news...
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        # ...unless CUDA_VISIBLE_DEVICES hides it on purpose (run_python's default, as in the tests' conftest).
        env["CUDA_VISIBLE_DEVICES"] = "" if gpu == "hidden" else "0"
    else:
        prelude = NO_GPU  # also on a machine that has one
    done = run_python(prelude + "from colorfusion.startup import import_backend_quietly; import_backend_quietly(); "
                      "import sys; print('after', file=sys.stderr)", env, tmp_path)
    assert done.returncode == 0, done.stderr
    expected = ["a real problem"]
    if gpu is True:
        expected.append(WARNING + "Could not find cuda drivers on your machine, GPU will not be used.")
    assert done.stderr.splitlines() == expected + ["after"]


def test_help_prints_no_backend_noise(tmp_path):
    done = run_python("import sys; from colorfusion.cli import main; sys.argv[0] = 'colorfusion'; main(['--help'])",
                      {}, tmp_path)
    assert done.returncode == 0 and done.stderr == "" and done.stdout.startswith("usage: colorfusion")


@pytest.mark.slow
def test_a_command_that_starts_the_backend_prints_only_its_own_line(tmp_path):
    # Without a GPU (staged): a machine with one adds its one warning line, tested above with a staged GPU.
    photo = write_photos(tmp_path / "photos", count=1)[0]
    missing = tmp_path / "missing.keras"
    done = run_python(NO_GPU + CLI, {}, tmp_path,
                      args=["colorize", photo, "-o", tmp_path / "out", "--model", missing])
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [f"error: {missing}: no such model file or run folder"]


@pytest.mark.slow
def test_train_prints_no_backend_log_line_mid_training(tmp_path):
    # TensorFlow logs an E0000 oneDNN line at the first training step on CPUs without AVX-512.
    # Without a GPU (staged), whatever this machine has: a GPU's start-up lines are another matter.
    write_photos(tmp_path / "photos", count=8)
    done = run_python(NO_GPU + CLI, {"COLORFUSION_CACHE": str(tmp_path / "cache")}, tmp_path, timeout=300,
                      args=["train", "--data", tmp_path / "photos", "--out", tmp_path / "run", "--image-size", "32",
                            "--epochs", "1", "--batch-size", "4", "--width", "0.125", "--encoder", "scratch",
                            "--weights", "none", "--embedding", "none", "--head", "regression"])
    assert done.returncode == 0, done.stderr[-2000:]
    backend_lines = [line for line in done.stderr.splitlines() if startup._GLOG_PREFIX.match(line)]
    assert backend_lines == []
    assert "done: 1 epochs" in done.stdout
