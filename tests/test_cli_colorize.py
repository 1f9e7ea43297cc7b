"""The `colorize` and `evaluate` subcommands, run in-process through `cli.main`."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from photos import write_photos

from colorfusion import cli, io
from colorfusion import model as model_lib


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model_lib.build_colorizer(image_size=32, width=0.125, embedding_dim=None).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    write_photos(tmp_path / "photos" / "sub", count=3)
    return tmp_path / "photos"


def subparser(name) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in subparser(command)._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.dest
        assert all(option in text for option in action.option_strings), action.option_strings
    for phrase in ("--model PATH", "--decode", "--temperature T"):
        assert phrase in text


def test_colorize_mirrors_folders_and_exits_1_when_a_file_failed(model_file, photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    code = cli.main(["colorize", str(photos), "-o", str(out), "--model", str(model_file), "--batch-size", "2",
                     "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        f"sub/photo_{i:02d}.png" for i in range(3)]
    [line] = error_lines(captured.err)
    assert "broken.jpg" in line
    assert "3 written" in captured.out and "1 failed" in captured.out


def test_colorize_skips_existing_outputs_unless_overwrite(model_file, photos, tmp_path, capsys):
    args = ["colorize", str(photos / "sub" / "photo_00.png"), "-o", str(tmp_path / "out"),
            "--model", str(model_file), "--quiet"]
    assert cli.main(args) == 0
    target = tmp_path / "out" / "photo_00.png"
    target.write_bytes(b"old")
    assert cli.main(args) == 0 and target.read_bytes() == b"old"
    assert "1 skipped" in capsys.readouterr().out
    assert cli.main(args + ["--overwrite"]) == 0 and io.read_rgb(target).ndim == 3


def test_colorize_refuses_an_output_folder_that_would_replace_inputs(model_file, photos, capsys):
    before = {p: p.read_bytes() for p in photos.rglob("*.png")}
    code = cli.main(["colorize", str(photos), "-o", str(photos), "--model", str(model_file), "--overwrite",
                     "--quiet"])
    assert code == 1 and len(error_lines(capsys.readouterr().err)) == 3
    assert all(p.read_bytes() == data for p, data in before.items())


def test_colorize_accepts_a_run_folder_and_classification_options(photos, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model_lib.build_colorizer(image_size=32, head="classification", num_bins=30, width=0.125,
                              embedding_dim=None).save(run / "best.keras")
    code = cli.main(["colorize", str(photos), "-o", str(tmp_path / "out"), "--model", str(run),
                     "--decode", "mode", "--quiet"])
    assert code == 0 and len(list((tmp_path / "out").rglob("*.png"))) == 3


def _bad_model(tmp_path, kind) -> Path:
    if kind == "text_named_keras":
        (tmp_path / "model.keras").write_text("hello")
        return tmp_path / "model.keras"
    if kind == "h5":
        (tmp_path / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
        return tmp_path / "weights.h5"
    if kind == "missing":
        return tmp_path / "missing.keras"
    inputs = keras.Input((3,), name="x")
    keras.Model(inputs, keras.layers.Dense(1, name="d")(inputs)).save(tmp_path / "other.keras")
    return tmp_path / "other.keras"


@pytest.mark.parametrize("kind", ["text_named_keras", "h5", "missing", "not_colorfusion"])
@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_a_wrong_model_file_is_one_error_line_naming_it_and_exit_code_1(command, kind, photos, tmp_path, capsys):
    path = _bad_model(tmp_path, kind)
    args = {"colorize": ["colorize", str(photos), "-o", str(tmp_path / "out")],
            "evaluate": ["evaluate", "--data", str(photos), "--out", str(tmp_path / "report")]}[command]
    assert cli.main(args + ["--model", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: ")
    assert not (tmp_path / "out").exists() and not (tmp_path / "report").exists()


def test_colorize_with_nothing_to_do_is_one_error_line_and_exit_code_1_before_loading_the_model(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    # The model path does not exist: had it been loaded, the error would name it.
    args = ["-o", str(tmp_path / "out"), "--model", str(tmp_path / "missing.keras"), "--quiet"]

    assert cli.main(["colorize", str(tmp_path / "empty")] + args) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: no images found in {tmp_path / 'empty'}"]
    assert captured.out == "" and not (tmp_path / "out").exists()

    assert cli.main(["colorize", str(tmp_path / "nowhere"), str(tmp_path / "empty")] + args) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path / 'nowhere'}: no such file or folder",
                                                    f"error: no images found in {tmp_path / 'empty'}"]


def test_evaluate_prints_the_table_and_writes_the_report(model_file, photos, tmp_path, capsys):
    report = tmp_path / "report"
    code = cli.main(["evaluate", "--model", str(model_file), "--data", str(photos), "--out", str(report),
                     "--size", "24", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert all(method in out for method in ("model", "grayscale", "ground_truth")) and "3 photos at 24x24" in out
    assert sorted(p.name for p in report.iterdir()) == ["per_image.csv", "summary.json", "worst_best.png"]
    assert json.loads((report / "summary.json").read_text())["size"] == 24


def test_evaluate_on_a_missing_or_empty_folder_is_one_error_line(model_file, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for data, reason in ((tmp_path / "nowhere", "no such folder"), (tmp_path / "empty", "no images found")):
        code = cli.main(["evaluate", "--model", str(model_file), "--data", str(data), "--out", str(tmp_path / "r")])
        assert code == 1 and capsys.readouterr().err.strip() == f"error: {data}: {reason}"


@pytest.mark.slow
def test_the_console_script_returns_1_for_a_wrong_model_file(photos, tmp_path):
    script = Path(sys.executable).with_name("colorfusion")
    if not script.exists():
        pytest.skip(f"no `colorfusion` console script beside {sys.executable}: the package is not installed "
                    f"in this environment (pip install -e .), so there is no script to test")
    bad = _bad_model(tmp_path, "text_named_keras")
    done = subprocess.run([str(script), "colorize", str(photos), "-o", str(tmp_path / "out"), "--model", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert error_lines(done.stderr) == [line for line in done.stderr.splitlines() if str(bad) in line]
    assert len(error_lines(done.stderr)) == 1
