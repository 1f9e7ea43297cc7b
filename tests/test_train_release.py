"""benchmarks/train_release.py: the README's results command on a machine that never trained the release."""

import json

import numpy as np
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


@pytest.mark.slow
def test_evaluate_only_tilts_the_float32_checkpoint_as_the_packed_file_records(tmp_path, capsys):
    # A file packed with --rare-colour-shift, evaluated again without the flag: the float32 row must be the
    # same tilted model (it shows float16 changes nothing), not the untilted checkpoint.
    import keras

    from colorfusion import model as model_lib
    from colorfusion import presets
    from colorfusion.bins import ABBins

    keras.utils.set_random_seed(0)
    photos = write_photos(tmp_path / "photos", count=4, sizes=(64, 96))
    build = dict(image_size=64, head="classification", embedding_dim=None, encoder="mobilenet_v2",
                 global_features=True, width=0.125)
    bins = ABBins.fit_files(photos, progress=False, num_bins=16)
    model = model_lib.build_colorizer(**build, encoder_weights=None, bins=bins)
    # A head with something to tilt: logits that vary from bin to bin.
    kernel, bias = model.get_layer("ab_logits").get_weights()
    model.get_layer("ab_logits").set_weights([kernel, np.linspace(-2, 2, bias.size).astype(bias.dtype)])
    out = tmp_path / "run"
    out.mkdir()
    model.save(out / "best.keras")
    packed = model_lib.build_colorizer(**build, encoder_weights=None, bins=bins)
    packed.set_weights(model.get_weights())
    model_lib.shift_toward_rare_colours(packed, 2.0)
    model_file = presets.save_pretrained(packed, tmp_path / "packed.npz", build=build,
                                         training={"rare_colour_shift": 2.0})
    split = tmp_path / "split.tsv"
    split.write_text("".join(f"{p.name}\tval\n" for p in photos))
    args = ["--data", str(tmp_path / "photos"), "--split-file", str(split), "--out", str(out),
            "--variant", "release_auto_lite0", "--evaluate-only", "--model-file", str(model_file)]
    assert load_script("benchmarks/train_release.py").main(args) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    packed_row, checkpoint_row = rows["packed (float16)"], rows["best.keras (float32)"]
    for key in ("rebalanced_auc", "colorfulness", "psnr"):
        assert checkpoint_row[key] == pytest.approx(packed_row[key], rel=2e-3, abs=0.05), key
