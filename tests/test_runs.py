"""The run folder: its files' names in one place, and reading back what a run writes."""

import math
import os

import pytest

from colorfusion import runs
from colorfusion.runs import RunFolder


def test_the_paths_of_a_run_folder_are_its_named_files(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.files() == {"config": tmp_path / "run" / "config.json", "state": tmp_path / "run" / "state.json",
                           "best": tmp_path / "run" / "best.keras", "last": tmp_path / "run" / "last.keras",
                           "history": tmp_path / "run" / "history.csv", "bins": tmp_path / "run" / "bins.json",
                           "previews": tmp_path / "run" / "previews", "curves": tmp_path / "run" / "curves.png"}
    assert runs.MODEL_FILES == ("best.keras", "last.keras", "model.keras")  # in order of preference


def test_config_state_and_history_round_trip(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.read_config() is None and run.read_history() == {}
    run.write_config({"head": "classification", "crop_scale": [0.5, 1.0]})
    run.write_state(3, 0.25, {"best": 0.25, "lr_wait": 1, "stop_wait": 1})
    run.write_history({"loss": [1.0, 0.5, 0.25], "val_loss": [2.0, 1.0]})
    assert run.read_config() == {"head": "classification", "crop_scale": [0.5, 1.0]}
    assert run.read_state() == {"epoch": 3, "best_val_loss": 0.25,
                                "schedule": {"best": 0.25, "lr_wait": 1, "stop_wait": 1}}
    history = run.read_history()
    assert history["loss"] == [1.0, 0.5, 0.25]
    assert history["val_loss"][:2] == [2.0, 1.0] and math.isnan(history["val_loss"][2])
    assert not [name for name in os.listdir(run.path) if name.endswith(".tmp")]  # written atomically


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_damaged_config_is_one_line_naming_it(tmp_path, text):
    run = RunFolder(tmp_path)
    run.config_file.write_text(text)
    with pytest.raises(ValueError, match="config.json: damaged run configuration"):
        run.read_config()


def test_a_damaged_state_is_one_line_naming_it(tmp_path):
    run = RunFolder(tmp_path)
    run.state_file.write_text('{"best_val_loss": 1.0}')
    with pytest.raises(ValueError, match="state.json: damaged run state"):
        run.read_state()


def test_what_the_folder_holds_decides_run_resume_and_model(tmp_path):
    run = RunFolder(tmp_path)
    assert not run.is_run() and not run.can_resume() and run.model_file() is None
    (tmp_path / "model.keras").write_bytes(b"x")
    assert run.model_file() == tmp_path / "model.keras" and not run.is_run()
    run.write_config({})
    run.last.write_bytes(b"x")
    assert run.is_run() and run.model_file() == run.last and not run.can_resume()
    run.write_state(1, None, None)
    run.best.write_bytes(b"x")
    assert run.can_resume() and run.model_file() == run.best
    assert run.newest_checkpoint_time() == max(run.best.stat().st_mtime_ns, run.last.stat().st_mtime_ns)
    assert RunFolder.holding(run.best).path == tmp_path and RunFolder.holding(tmp_path).path == tmp_path
