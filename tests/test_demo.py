"""`colorfusion.demo` (`make demo`)."""

import pytest
from photos import write_photos

from colorfusion import demo

# === make demo ===


def test_plan_epochs_repeats_a_few_photos_and_keeps_the_budget():
    repeat, epochs = demo.plan_epochs(5, batch_size=16, images=1440)
    assert 5 * repeat >= 48 and abs(epochs * 5 * repeat - 1440) <= 5 * repeat
    assert demo.plan_epochs(1000, batch_size=16, images=1440) == (1, 3)  # big folder: no repeat, a few epochs


def test_run_demo_colorizes_the_package_photos_with_the_shipped_model_without_training(tmp_path, no_kaggle,
                                                                                       monkeypatch):
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))
    lines = []
    result = demo.run_demo(out=tmp_path / "out", count=4, log=lines.append)
    assert result.run_dir is None and result.train_files == [] and not (tmp_path / "out" / "run").exists()
    assert result.grid == tmp_path / "out" / "before_after.png" and result.grid.read_bytes()[:4] == b"\x89PNG"
    assert len(result.heldout) == 4 and len(result.colorized) == 4
    assert result.encoder == "efficientnet_lite0"  # release 0.4.0's
    text = "\n".join(lines)
    assert "model that ships in colorfusion" in text and str(result.grid) in text and "--model" not in text


@pytest.mark.slow
def test_run_demo_trains_colorizes_held_out_photos_and_writes_the_grid(tmp_path, no_kaggle, monkeypatch):
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))
    write_photos(tmp_path / "photos", count=8, sizes=(40, 64))
    # A previous demo's run is replaced instead of refusing to overwrite it.
    (tmp_path / "out" / "run").mkdir(parents=True)
    (tmp_path / "out" / "run" / "config.json").write_text("{}")
    lines = []
    result = demo.run_demo(tmp_path / "photos", tmp_path / "out", train=True, init=None, image_size=32,
                           width=0.125, epochs=2, weights="none", count=3, log=lines.append)
    assert result.grid == tmp_path / "out" / "before_after.png" and result.grid.read_bytes()[:4] == b"\x89PNG"
    assert (result.run_dir / "best.keras").is_file() and (result.run_dir / "previews").is_dir()
    assert len(result.heldout) == 3 and not set(result.heldout) & set(result.train_files)
    assert sorted(p.name for p in result.colorized) == sorted(f"{p.stem}.png" for p in result.heldout)
    assert result.weights is None and result.encoder == "scratch"
    text = "\n".join(lines)
    assert "No pretrained weights" in text and str(result.grid) in text and str(result.run_dir) in text
    assert "Replacing the previous demo run" in text


def test_demo_command_reports_a_missing_data_folder(tmp_path, capsys):
    assert demo.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 1
    assert "error:" in capsys.readouterr().err and not (tmp_path / "out" / "run").exists()


@pytest.mark.slow
def test_run_demo_uses_a_local_pretrained_encoder_file(tmp_path, no_kaggle, monkeypatch):
    import keras

    from colorfusion.model import encoder_layer, model_info

    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))
    write_photos(tmp_path / "photos", count=8, sizes=(40, 64))
    # A stand-in for Keras' MobileNet file: its name says alpha 0.25, no classifier.
    weights = tmp_path / "mobilenet_2_5_224_tf_no_top.weights.h5"
    keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False,
                                 weights=None).save_weights(weights)
    lines = []
    result = demo.run_demo(tmp_path / "photos", tmp_path / "out", train=True, init=None, encoder="mobilenet",
                           image_size=32, epochs=2, weights=str(weights), count=3, log=lines.append)
    assert result.encoder == "mobilenet" and result.weights == str(weights.resolve())
    model = keras.saving.load_model(result.run_dir / "best.keras", compile=False)
    assert model_info(model)["encoder"] == "mobilenet" and encoder_layer(model) is not None
    assert any("Encoder: mobilenet" in line for line in lines)
    assert len(result.colorized) == 3
