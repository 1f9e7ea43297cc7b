import json
import re

import pytest
from photos import write_photos

from colorfusion import cli

TINY = ["--image-size", "32", "--epochs", "1", "--batch-size", "4", "--width", "0.125",
        "--encoder", "scratch", "--weights", "none", "--embedding", "none"]


@pytest.fixture(autouse=True)
def embedding_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_writes_a_run_folder_and_prints_a_one_line_summary(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_photos(photos, count=10)
    code, out, _ = run_cli(["train", "--data", str(photos), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 0
    summary = [line for line in out.splitlines() if line.startswith("done:")]
    assert len(summary) == 1 and "1 epochs" in summary[0] and str(tmp_path / "run") in summary[0]
    assert (tmp_path / "run" / "best.keras").is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["weights"] is None and config["embedding"] is None and config["image_size"] == 32

    # --resume with only --epochs continues the same configuration.
    code, out, _ = run_cli(["train", "--data", str(photos), "--out", str(tmp_path / "run"), "--epochs", "2",
                            "--resume"], capsys)
    assert code == 0 and "2 epochs" in out
    # The same folder with another head is refused in one line.
    code, _, err = run_cli(["train", "--data", str(photos), "--out", str(tmp_path / "run"), "--resume",
                            "--head", "regression"], capsys)
    assert code == 1
    assert err.strip().startswith("error:") and "another configuration" in err and len(err.strip().splitlines()) == 1


def test_train_on_an_empty_folder_fails_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 1
    assert err.strip() == (f"error: {tmp_path / 'empty'}: no images found "
                           f"(looked for .jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp, .gif)")
    assert not (tmp_path / "run").exists()


def test_train_with_too_few_photos_for_validation_fails(tmp_path, capsys):
    write_photos(tmp_path / "one", count=1)
    code, _, err = run_cli(["train", "--data", str(tmp_path / "one"), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 1 and "too few" in err and len(err.strip().splitlines()) == 1


def test_resume_without_a_run_says_there_is_nothing_to_resume(tmp_path, capsys):
    write_photos(tmp_path / "photos", count=4)
    code, _, err = run_cli(["train", "--data", str(tmp_path / "photos"), "--out", str(tmp_path / "run"), "--resume"],
                           capsys)
    assert code == 1 and "nothing to resume" in err


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--data", "x", "--out", "y", "--colour", "blue"], "unrecognized arguments: --colour"),
    (["train", "--data", "x", "--out", "y", "--head", "segmentation"], "invalid choice: 'segmentation'"),
    (["train", "--data", "x", "--out", "y", "--epochs", "0"], "expected a positive integer"),
    (["train", "--data", "x", "--out", "y", "--weights", "missing.h5"], "expected 'imagenet', 'none' or an existing"),
    (["train", "--out", "y"], "the following arguments are required: --data"),
    (["paint"], "invalid choice: 'paint'"),
])
def test_bad_usage_exits_2_with_the_reason(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_train_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data", "--out", "--head", "--image-size", "--epochs", "--batch-size", "--weights",
                   "--embedding", "--resume", "--learning-rate", "--seed"):
        assert option in text


def test_train_help_states_the_defaults_train_uses():
    """Every "(default X)" in `colorfusion train --help` is TrainConfig's default for that option."""
    from colorfusion.training import TrainConfig

    parser = cli.build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    defaults = TrainConfig()
    checked = 0
    for action in train._actions:
        found = re.search(r"\(default (\S+?)[,)]", action.help or "")
        if not found or action.dest not in TrainConfig.__dataclass_fields__:
            continue
        stated, actual = found.group(1), getattr(defaults, action.dest)
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            assert float(stated) == actual, action.dest
        else:
            assert stated == str(actual), action.dest
        checked += 1
    assert checked >= 10


def test_every_train_config_field_is_a_train_option_or_left_to_python():
    """`train`'s options are made from TrainConfig: each field has one, or is named as set from Python only."""
    from colorfusion.training import TrainConfig

    parser = cli.build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    dests = {action.dest for action in train._actions}
    fields = set(TrainConfig.__dataclass_fields__)
    assert fields - dests == set(cli.TRAIN_PYTHON_ONLY)
    assert {option.field for option in cli.TRAIN_OPTIONS} == fields & dests
