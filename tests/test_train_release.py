"""benchmarks/train_release.py: the README's results command on a machine that never trained the release."""

import json

import pytest
from photos import write_photos
from scripts import load_script


@pytest.mark.slow
def test_evaluate_only_without_a_run_folder_scores_the_shipped_model(tmp_path, capsys):
    from colorfusion import presets

    if not presets.pretrained_available():
        pytest.skip("this installation lacks the shipped model")
    paths = write_photos(tmp_path / "photos", count=4, sizes=(64, 96))
    split = tmp_path / "split.tsv"
    split.write_text("".join(f"{p.name}\t{'val' if i < 2 else 'train'}\n" for i, p in enumerate(paths)))
    out = tmp_path / "runs" / "release"  # no run folder: only the shipped model is there to score
    args = ["--data", str(tmp_path / "photos"), "--split-file", str(split), "--out", str(out),
            "--variant", "release_joint_lite0", "--evaluate-only", "--model-file", str(presets.PRETRAINED_FILE)]
    assert load_script("benchmarks/train_release.py").main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "release_report.json").read_text())
    assert report == json.loads(printed.strip().splitlines()[-1])
    assert list(report["rows"]) == ["packed (float16)"] and "the packed model alone" in printed
    assert report["sha256"] == presets.file_sha256(presets.PRETRAINED_FILE)
    assert set(report["hints"]) == {"0", "1", "2", "5", "10", "20"}  # a hint release scored with points too


def test_the_release_hint_recipe_needs_the_model_it_starts_from(tmp_path, capsys):
    # release_hints_lite0 trains hint layers on release_auto_lite0's model: without --init it would train
    # hint layers on a fresh, untrained decoder for an hour.
    with pytest.raises(SystemExit) as exited:
        load_script("benchmarks/train_release.py").main(["--variant", "release_hints_lite0",
                                                         "--out", str(tmp_path / "run")])
    assert exited.value.code == 2
    assert "--init MODEL" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_every_release_recipe_is_a_valid_training_recipe():
    from colorfusion import presets
    from colorfusion.training import TrainConfig

    for name in presets.RELEASE_RECIPES:
        settings = presets.release_settings(name)
        settings.pop("init", None)  # a model file or "pretrained": resolved when training starts
        TrainConfig(**settings)  # an unknown or misspelt setting raises here, not an hour into a run
