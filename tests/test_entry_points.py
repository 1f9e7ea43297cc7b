"""Every entry point run the way the docs show it: a subprocess, its exit code, only its own lines on the terminal.

The README's first command is `make demo` (`python -m colorfusion.demo`); the
rest are the `colorfusion` console script's commands. Each must exit 0 and
print no traceback and none of the backend's start-up or retracing lines.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from photos import make_photo

from colorfusion import io

COMMANDS = ("train", "colorize", "evaluate", "fit-bins", "export", "studio")
# What must never reach a user: a traceback, a backend log line (absl / glog: I0000, W0000, E0000),
# TensorFlow's Python warnings (retracing advice among them).
NOISE = re.compile(r"^(Traceback|[IWEF]\d{4} |WARNING:tensorflow|WARNING: All log messages before absl)", re.M)


def console_script() -> Path:
    script = Path(sys.executable).with_name("colorfusion")
    assert script.is_file(), f"no `colorfusion` console script beside {sys.executable}: install the package"
    return script


def run(args, cwd, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a GPU's own start-up lines are test_cli_startup's
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)


def assert_quiet(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    for stream in (done.stdout, done.stderr):
        found = NOISE.search(stream)
        assert found is None, f"{found.group(0)!r} on the terminal:\n{stream[-3000:]}"


def test_help_of_the_command_and_of_each_subcommand(tmp_path):
    done = run([console_script(), "--help"], tmp_path)
    assert_quiet(done)
    assert done.stdout.startswith("usage: colorfusion") and done.stderr == ""
    for command in COMMANDS:
        done = run([console_script(), command, "--help"], tmp_path)
        assert_quiet(done)
        assert done.stdout.startswith(f"usage: colorfusion {command}") and done.stderr == "", command


@pytest.mark.slow
def test_the_demo_as_make_demo_runs_it_exits_0_and_writes_its_grid(tmp_path):
    out = tmp_path / "demo_out"
    done = run([sys.executable, "-m", "colorfusion.demo", "--out", out, "--count", "3"], tmp_path)
    assert_quiet(done)
    assert done.stderr == ""
    assert (out / "before_after.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "colorized").iterdir())) == 3
    assert "colorfusion demo done" in done.stdout and str(out / "before_after.png") in done.stdout


@pytest.mark.slow
def test_export_prints_its_own_line_only(tmp_path):
    pytest.importorskip("tf2onnx", reason="the export extra is not installed")
    done = run([console_script(), "export", "-o", tmp_path / "colorizer.onnx"], tmp_path)
    assert_quiet(done)
    assert done.stderr == ""
    assert done.stdout.startswith(f"done: {tmp_path / 'colorizer.onnx'}") and len(done.stdout.splitlines()) == 1
    assert (tmp_path / "colorizer.onnx.json").is_file()


@pytest.mark.slow
def test_a_folder_of_many_shapes_prints_the_progress_bar_and_the_summary_only(tmp_path):
    # 20 photos in 6 shapes: six compiled networks, which TensorFlow's retracing detector counts as one
    # function traced six times unless told otherwise.
    rng = np.random.default_rng(0)
    shapes = [(60, 90), (90, 60), (70, 70), (50, 120), (120, 50), (40, 160)]
    for index in range(20):
        io.write_image(tmp_path / "photos" / f"photo_{index:02d}.png", make_photo(rng, *shapes[index % 6]))
    done = run([console_script(), "colorize", tmp_path / "photos", "-o", tmp_path / "out"], tmp_path)
    assert_quiet(done)
    assert done.stdout.splitlines() == [f"done: 20 written, 0 skipped (exist; --overwrite replaces), 0 failed -> "
                                        f"{tmp_path / 'out'}"]
    bar = [part for part in re.split(r"[\r\n]", done.stderr) if part.strip()]
    assert bar and all(part.startswith("colorize:") for part in bar), done.stderr[-2000:]
    assert "20/20" in bar[-1]


@pytest.mark.slow
def test_evaluate_and_fit_bins_print_their_own_lines_only(tmp_path):
    rng = np.random.default_rng(1)
    for index in range(4):
        io.write_image(tmp_path / "photos" / f"photo_{index}.png", make_photo(rng, 64, 80))
    done = run([console_script(), "evaluate", "--data", tmp_path / "photos", "--out", tmp_path / "report",
                "--quiet"], tmp_path)
    assert_quiet(done)
    assert done.stderr == "" and "4 photos at 256x256" in done.stdout
    done = run([console_script(), "fit-bins", "--data", tmp_path / "photos", "--out", tmp_path / "bins.json",
                "--num-bins", "8"], tmp_path)
    assert_quiet(done)
    assert done.stdout.startswith("done: ") and (tmp_path / "bins.json").is_file()


@pytest.mark.slow
def test_colorize_with_confidence_prints_its_own_lines_only_and_writes_both_files_marked(tmp_path):
    from PIL import Image

    io.write_image(tmp_path / "photo.jpg", make_photo(np.random.default_rng(2), 64, 96))
    done = run([console_script(), "colorize", tmp_path / "photo.jpg", "-o", tmp_path / "out", "--confidence",
                "--quiet"], tmp_path)
    assert_quiet(done)
    assert done.stderr == "" and done.stdout.startswith("done: 1 written")
    assert io.read_rgb(tmp_path / "out" / "photo.confidence.png").shape == (64, 96, 3)
    with Image.open(tmp_path / "out" / "photo.jpg") as image:
        assert image.getexif()[0x0131].startswith("colorized by colorfusion ")
