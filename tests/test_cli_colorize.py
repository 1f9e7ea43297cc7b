"""The `colorize` and `evaluate` subcommands, run in-process through `cli.main`."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from colorfusion import cli, io


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_help_explains_every_option(command, subparser, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in subparser(command)._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.dest
        assert all(option in text for option in action.option_strings), action.option_strings
    for phrase in ("--model PATH", "--decode", "--temperature T"):
        assert phrase in text


def test_colorize_mirrors_folders_and_exits_1_when_a_file_failed(tiny_model_file, photo_tree, tmp_path, capsys):
    (photo_tree / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    code = cli.main(["colorize", str(photo_tree), "-o", str(out), "--model", str(tiny_model_file()),
                     "--batch-size", "2", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        f"sub/photo_{i:02d}.png" for i in range(3)]
    [line] = error_lines(captured.err)
    assert "broken.jpg" in line
    assert "3 written" in captured.out and "1 failed" in captured.out


def test_colorize_skips_existing_outputs_unless_overwrite(tiny_model_file, photo_tree, tmp_path, capsys):
    args = ["colorize", str(photo_tree / "sub" / "photo_00.png"), "-o", str(tmp_path / "out"),
            "--model", str(tiny_model_file()), "--quiet"]
    assert cli.main(args) == 0
    target = tmp_path / "out" / "photo_00.png"
    target.write_bytes(b"old")
    assert cli.main(args) == 0 and target.read_bytes() == b"old"
    assert "1 skipped" in capsys.readouterr().out
    assert cli.main(args + ["--overwrite"]) == 0 and io.read_rgb(target).ndim == 3


def test_colorize_refuses_an_output_folder_that_would_replace_inputs(tiny_model_file, photo_tree, capsys):
    before = {p: p.read_bytes() for p in photo_tree.rglob("*.png")}
    code = cli.main(["colorize", str(photo_tree), "-o", str(photo_tree), "--model", str(tiny_model_file()),
                     "--overwrite", "--quiet"])
    assert code == 1 and len(error_lines(capsys.readouterr().err)) == 3
    assert all(p.read_bytes() == data for p, data in before.items())


def test_colorize_accepts_a_run_folder_and_classification_options(photo_tree, tiny_model, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    tiny_model(head="classification", num_bins=30).save(run / "best.keras")
    code = cli.main(["colorize", str(photo_tree), "-o", str(tmp_path / "out"), "--model", str(run),
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
def test_a_wrong_model_file_is_one_error_line_naming_it_and_exit_code_1(command, kind, photo_tree, tmp_path, capsys):
    path = _bad_model(tmp_path, kind)
    args = {"colorize": ["colorize", str(photo_tree), "-o", str(tmp_path / "out")],
            "evaluate": ["evaluate", "--data", str(photo_tree), "--out", str(tmp_path / "report")]}[command]
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


def test_evaluate_prints_the_table_and_writes_the_report(tiny_model_file, photo_tree, tmp_path, capsys):
    report = tmp_path / "report"
    code = cli.main(["evaluate", "--model", str(tiny_model_file()), "--data", str(photo_tree), "--out", str(report),
                     "--size", "24", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert all(method in out for method in ("model", "grayscale", "ground_truth")) and "3 photos at 24x24" in out
    assert sorted(p.name for p in report.iterdir()) == ["per_image.csv", "summary.json", "worst_best.png"]
    assert json.loads((report / "summary.json").read_text())["size"] == 24


def test_evaluate_on_a_missing_or_empty_folder_is_one_error_line(tiny_model_file, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for data, reason in ((tmp_path / "nowhere", "no such folder"), (tmp_path / "empty", "no images found")):
        code = cli.main(["evaluate", "--model", str(tiny_model_file()), "--data", str(data),
                         "--out", str(tmp_path / "r")])
        assert code == 1 and capsys.readouterr().err.strip() == f"error: {data}: {reason}"


def test_a_users_mistake_is_one_error_line_and_a_bug_says_the_command_failed(tiny_model_file, photo_tree, tmp_path,
                                                                              monkeypatch, capsys):
    args = ["colorize", str(photo_tree), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file()), "--quiet"]
    assert cli.main([*args, "--hint", "1,1,#ff0000", "--hints", str(tmp_path / "h.json")]) == 1
    assert capsys.readouterr().err.splitlines() == ["error: give hints with --hint or with --hints, not both"]
    assert cli.main([*args, "--inference-size", "16"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: --inference-size must be at least 32 (the encoder's deepest stride). Received: 16"]

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("colorfusion.inference.batch.colorize_folder", bug)
    assert cli.main(args) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: colorize failed: ValueError: operands could not be broadcast together (COLORFUSION_DEBUG=1 shows "
        "the traceback)"]


@pytest.mark.slow
def test_the_console_script_returns_1_for_a_wrong_model_file(photo_tree, tmp_path):
    script = Path(sys.executable).with_name("colorfusion")
    if not script.exists():
        pytest.skip(f"no `colorfusion` console script beside {sys.executable}: the package is not installed "
                    f"in this environment (pip install -e .), so there is no script to test")
    bad = _bad_model(tmp_path, "text_named_keras")
    done = subprocess.run([str(script), "colorize", str(photo_tree), "-o", str(tmp_path / "out"), "--model", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert error_lines(done.stderr) == [line for line in done.stderr.splitlines() if str(bad) in line]
    assert len(error_lines(done.stderr)) == 1
