import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from forcing import PoisonWeights
from keras import ops
from photos import write_photos
from PIL import Image

from colorfusion import model as model_lib
from colorfusion.training import TrainingError, train

PHOTO_COUNT = 16  # the module's `photos` folder (conftest)
TINY = dict(image_size=32, epochs=2, batch_size=4, width=0.125, encoder="scratch", weights=None, learning_rate=2e-3)


@pytest.fixture(autouse=True)
def embedding_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))


def history_rows(run):
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_regression_run_writes_every_file_and_best_model_predicts(photos, tmp_path):
    run = tmp_path / "run"
    result = train(photos, run, head="regression", embedding=None, hardware="cpu", verbose=0, **TINY)
    for name in ("config.json", "state.json", "best.keras", "last.keras", "history.csv", "curves.png"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert result.epochs_done == 2 and result.stopped_reason is None
    rows = history_rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(np.isfinite(float(r["val_loss"])) for r in rows)
    assert json.loads((run / "config.json").read_text())["head"] == "regression"
    best = keras.saving.load_model(run / "best.keras")
    ab = model_lib.inference_model(best).predict({"L": np.zeros((2, 32, 32, 1), np.float32)}, verbose=0)
    assert ab.shape == (2, 32, 32, 2) and np.abs(ab).max() <= 1.0
    assert not [p for p in run.rglob("*") if p.name.startswith(".")], "temporary files left behind"


def tiny_mobilenet_file(folder) -> Path:
    """Random MobileNet weights whose Keras file name says alpha 0.25 at 32 px: a tiny embedder for 32 px photos."""
    path = Path(folder) / "mobilenet_2_5_32_tf_no_top.weights.h5"
    keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False,
                                 weights=None).save_weights(path)
    return path


def test_classification_run_with_cached_embeddings_saves_bins_with_the_model(photos, tmp_path):
    run = tmp_path / "run"
    settings = {**TINY, "weights": str(tiny_mobilenet_file(tmp_path))}  # not a 224 px backbone for 32 px photos
    train(photos, run, head="classification", embedding="cache", backbone="mobilenet", num_bins=40,
          hardware="cpu", verbose=0, **settings)
    assert (run / "bins.json").is_file()
    best = keras.saving.load_model(run / "best.keras")
    info = model_lib.model_info(best)
    # The no-top file gives its pooled features: 1024 x alpha 0.25 = 256 per photo.
    assert info["head"] == "classification" and info["num_bins"] == 40 and info["embedding_dim"] == 256
    inputs = {"L": np.zeros((1, 32, 32, 1), np.float32), "embedding": np.zeros((1, 256), np.float32)}
    assert model_lib.inference_model(best).predict(inputs, verbose=0).shape == (1, 32, 32, 2)
    # The preview grid: one row per preview sample (2 validation photos), three columns.
    with Image.open(run / "previews" / "epoch_002.png") as preview:
        width, height = preview.size
    assert width > height  # 2 rows x 3 columns


class FailMidEpoch(keras.callbacks.Callback):
    """Raise in the middle of epoch `epoch` (0-based), as a crash would."""

    def __init__(self, epoch, batch=1):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise RuntimeError("simulated crash")


def test_resume_after_a_crash_mid_epoch_continues_from_the_last_finished_epoch(photos, tmp_path):
    run = tmp_path / "run"
    settings = dict(TINY, epochs=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(photos, run, embedding=None, hardware="cpu", verbose=0, callbacks=[FailMidEpoch(epoch=1)], **settings)
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    epochs_seen = []
    recorder = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs_seen.append(epoch))
    result = train(photos, run, resume=True, hardware="cpu", verbose=0, callbacks=[recorder], epochs=3)
    assert epochs_seen == [1, 2]
    assert result.epochs_done == 3
    assert [r["epoch"] for r in history_rows(run)] == ["1", "2", "3"]
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(photos, tmp_path):
    run = tmp_path / "run"
    result = train(photos, run, embedding=None, hardware="cpu", verbose=0, callbacks=[PoisonWeights(epoch=1)],
                   **dict(TINY, epochs=4))
    assert result.stopped_reason is not None and "non-finite" in result.stopped_reason
    assert result.epochs_done == 1
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    last = keras.saving.load_model(run / "last.keras")
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in last.weights)
    assert len(history_rows(run)) == 1


def test_a_new_run_refuses_a_folder_holding_another_configuration(photos, tmp_path):
    run = tmp_path / "run"
    train(photos, run, head="regression", embedding=None, hardware="cpu", verbose=0, **dict(TINY, epochs=1))
    with pytest.raises(TrainingError, match="another configuration"):
        train(photos, run, head="classification", embedding=None, hardware="cpu", verbose=0, **dict(TINY, epochs=1))
    with pytest.raises(TrainingError, match="another configuration"):
        train(photos, run, resume=True, image_size=64, hardware="cpu", verbose=0)
    with pytest.raises(TrainingError, match="--resume"):
        train(photos, run, head="regression", embedding=None, hardware="cpu", verbose=0, **dict(TINY, epochs=1))


def test_bad_data_folders_raise_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainingError, match="no images found"):
        train(empty, tmp_path / "run", embedding=None, verbose=0, **TINY)
    single = tmp_path / "single"
    write_photos(single, count=1)
    with pytest.raises(TrainingError, match="too few"):
        train(single, tmp_path / "run", embedding=None, verbose=0, **TINY)
    with pytest.raises(TrainingError, match="no such folder"):
        train(tmp_path / "missing", tmp_path / "run", embedding=None, verbose=0, **TINY)
    with pytest.raises(TypeError, match="Unknown training settings: colour"):
        train(single, tmp_path / "run", colour="blue")
    with pytest.raises(ValueError, match="head"):
        train(single, tmp_path / "run", head="segmentation")


_KILL_SCRIPT = """
import sys, time, keras
sys.path.insert(0, {tests!r})
from colorfusion.training import train

class Slow(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.3)

train({photos!r}, {run!r}, embedding=None, hardware="cpu", verbose=0, callbacks=[Slow()],
      image_size=32, epochs=50, batch_size=4, width=0.125, encoder="scratch", weights=None)
"""


@pytest.mark.slow
def test_resume_after_kill_9_mid_epoch(photos, tmp_path):
    run = tmp_path / "run"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), photos=str(photos), run=str(run))
    log = tmp_path / "training.log"
    process = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            state = run / "state.json"
            if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
                break
            assert process.poll() is None, "training process died on its own:\n" + log.read_text()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("training never finished two epochs")
        time.sleep(0.5)  # now inside the next epoch (each batch sleeps 0.3 s)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    done = json.loads((run / "state.json").read_text())["epoch"]
    assert done >= 2
    result = train(photos, run, resume=True, epochs=done + 1, hardware="cpu", verbose=0)
    assert result.epochs_done == done + 1
    assert len(history_rows(run)) == done + 1


# === Pretrained encoder, phases, schedule ===

ENCODER = dict(TINY, image_size=64, encoder="mobilenet", encoder_weights=None, embedding="encoder")


def test_a_pretrained_encoder_is_frozen_then_fine_tuned_at_the_lower_rate(photos, tmp_path):
    run = tmp_path / "run"
    trainable = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: trainable.append(model_lib.encoder_layer(recorder.model).trainable))
    result = train(photos, run, head="classification", num_bins=40, hardware="cpu", verbose=0, callbacks=[recorder],
                   freeze_epochs=1, finetune_learning_rate=2e-4, **dict(ENCODER, epochs=3))
    assert trainable == [False, True, True]
    rates = [float(r["learning_rate"]) for r in history_rows(run)]
    assert rates == pytest.approx([2e-3, 2e-4, 2e-4])
    best = keras.saving.load_model(run / "best.keras")
    info = model_lib.model_info(best)
    assert info["encoder"] == "mobilenet" and info["embedding_dim"] is None and info["head"] == "classification"
    assert result.epochs_done == 3
    # Resumed inside the fine-tuning phase: no refreeze, the same rate.
    trainable.clear()
    train(photos, run, resume=True, epochs=4, hardware="cpu", verbose=0, callbacks=[recorder])
    assert trainable == [True]
    assert float(history_rows(run)[-1]["learning_rate"]) == pytest.approx(2e-4)


def test_a_run_fine_tuning_the_encoder_from_a_stride_keeps_the_lower_blocks_as_they_started(photos, tmp_path):
    run = tmp_path / "run"
    result = train(photos, run, head="classification", num_bins=40, hardware="cpu", verbose=0, freeze_epochs=0,
                   encoder_finetune_stride=16, **dict(ENCODER, epochs=1))
    start = model_lib.build_colorizer(64, head="classification", embedding_dim=None, width=TINY["width"],
                                      encoder="mobilenet", encoder_weights=None, global_features=True,
                                      bins=model_lib.model_bins(result.model))
    encoder, start_encoder = model_lib.encoder_layer(result.model), model_lib.encoder_layer(start)
    # weights=None starts the encoder from the run's seed: the same start as `start`'s. MobileNet's
    # stride-8 features are conv_pw_5_relu: the layers up to it stay, some after it move.
    names = [layer.name for layer in encoder.layers]
    moved = {layer.name for layer, begun in zip(encoder.layers, start_encoder.layers) if layer.weights and not all(
        np.array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b)) for a, b in zip(layer.weights, begun.weights))}
    assert moved and all(names.index(name) > names.index("conv_pw_5_relu") for name in moved)


def test_training_phases_follow_the_config():
    from colorfusion.training import TrainConfig

    assert TrainConfig(epochs=5, encoder="scratch").phases() == [(0, 5, True, 1e-3)]  # scratch: one phase
    phases = TrainConfig(epochs=5, encoder="mobilenet", freeze_epochs=2, learning_rate=1e-3).phases()
    assert phases == [(0, 2, False, 1e-3), (2, 5, True, pytest.approx(1e-4))]
    assert TrainConfig(epochs=2, encoder="vgg16", freeze_epochs=5).phases() == [(0, 2, False, 1e-3)]
    assert TrainConfig(epochs=2, encoder="resnet50", freeze_epochs=0).phases() == [(0, 2, True, pytest.approx(1e-4))]
    for bad in (dict(encoder="inception_resnet_v2"), dict(freeze_epochs=-1), dict(early_stopping_patience=0),
                dict(rebalance_lambda=1.5), dict(time_limit_minutes=0), dict(embedding="everything")):
        with pytest.raises(ValueError, match=f"Received: {next(iter(bad))}="):
            TrainConfig(**bad)


def test_early_stopping_ends_the_run_and_a_resume_has_nothing_to_do(photos, tmp_path):
    run = tmp_path / "run"
    # The worsening val_loss must reach the schedule: run it before the run's own callbacks.
    from colorfusion import callbacks as callbacks_lib

    original = callbacks_lib.ColorizationPreview.on_epoch_end

    def worse(self, epoch, logs=None):
        logs["val_loss"] = 1.0 + epoch
        original(self, epoch, logs)

    callbacks_lib.ColorizationPreview.on_epoch_end = worse
    try:
        result = train(photos, run, embedding=None, hardware="cpu", verbose=0, early_stopping_patience=2,
                       lr_patience=1, **dict(TINY, epochs=10))
    finally:
        callbacks_lib.ColorizationPreview.on_epoch_end = original
    assert result.epochs_done == 3  # best at epoch 1, two epochs without improvement
    state = json.loads((run / "state.json").read_text())
    assert state["schedule"] == {"best": 1.0, "lr_wait": 0, "stop_wait": 2}
    rates = [float(r["learning_rate"]) for r in history_rows(run)]
    assert rates == pytest.approx([2e-3, 2e-3, 1e-3])  # halved after each epoch without improvement
    again = train(photos, run, resume=True, hardware="cpu", verbose=0)
    assert again.epochs_done == 3 and len(history_rows(run)) == 3


def test_resume_auto_starts_a_new_run_then_continues_it(photos, tmp_path):
    run = tmp_path / "run"
    first = train(photos, run, resume="auto", embedding=None, hardware="cpu", verbose=0, **dict(TINY, epochs=1))
    assert first.epochs_done == 1
    second = train(photos, run, resume="auto", embedding=None, hardware="cpu", verbose=0, **dict(TINY, epochs=2))
    assert second.epochs_done == 2 and len(history_rows(run)) == 2
    with pytest.raises(ValueError, match="resume"):
        train(photos, run, resume="yes")


def test_train_leaves_the_dtype_policy_as_it_found_it(photos, tiny_model, tmp_path):
    from colorfusion.hardware import plan_hardware

    keras.config.set_dtype_policy("float32")
    forced = plan_hardware("cpu", mixed_precision=True)
    result = train(photos, tmp_path / "run", embedding=None, hardware=forced, verbose=0, **dict(TINY, epochs=1))
    assert result.hardware["mixed_precision"]
    assert result.model.get_layer("encoder_conv8").compute_dtype == "float16"  # trained in mixed precision
    assert keras.config.dtype_policy().name == "float32"
    fresh = tiny_model()
    assert fresh.get_layer("encoder_conv8").compute_dtype == "float32"


def test_a_time_limit_ends_the_run_after_the_epoch_that_reaches_it(photos, tmp_path):
    # 0.001 minutes: spent within the first epoch, which still finishes and is saved.
    result = train(photos, tmp_path / "run", embedding=None, hardware="cpu", verbose=0, time_limit_minutes=0.001,
                   **dict(TINY, epochs=20))
    assert result.epochs_done == 1 and len(history_rows(tmp_path / "run")) == 1
    assert (tmp_path / "run" / "best.keras").is_file()


def test_a_frozen_phase_that_stalls_hands_over_to_fine_tuning_also_across_a_resume(photos, tmp_path, monkeypatch):
    from colorfusion import callbacks as callbacks_lib

    original = callbacks_lib.ColorizationPreview.on_epoch_end

    def worse(self, epoch, logs=None):  # val_loss never improves after the first epoch
        logs["val_loss"] = 1.0 + epoch
        original(self, epoch, logs)

    monkeypatch.setattr(callbacks_lib.ColorizationPreview, "on_epoch_end", worse)
    run = tmp_path / "run"
    settings = dict(ENCODER, epochs=10, freeze_epochs=8, early_stopping_patience=1, lr_patience=5)
    trainable = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: trainable.append(model_lib.encoder_layer(recorder.model).trainable))
    # Frozen epochs 1-2 (stalls after 2), then the first fine-tuning epoch crashes.
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(photos, run, head="regression", hardware="cpu", verbose=0,
              callbacks=[recorder, FailMidEpoch(epoch=2, batch=0)], **settings)
    assert trainable == [False, False, True]
    assert json.loads((run / "state.json").read_text())["schedule"]["stop_wait"] == 1
    trainable.clear()
    result = train(photos, run, resume=True, hardware="cpu", verbose=0, callbacks=[recorder])
    assert trainable == [True]  # fine-tuning, not "nothing to do"; it stalls again after one epoch
    assert result.epochs_done == 3


# === Starting from the shipped model (init) and offline defaults ===


def _logits_kernel(model):
    return np.asarray(model.get_layer("ab_logits").kernel)


@pytest.mark.slow
def test_init_pretrained_starts_from_the_shipped_model_with_its_architecture_and_bins(photos, tmp_path):
    from colorfusion.presets import load_pretrained, read_pretrained_config

    shipped = load_pretrained()
    run = tmp_path / "run"
    # A learning rate too small to move anything: after one epoch the weights are still the shipped ones.
    train(photos, run, init="pretrained", image_size=64, epochs=1, batch_size=4, learning_rate=1e-12,
          hardware="cpu", verbose=0)
    config = json.loads((run / "config.json").read_text())
    build = read_pretrained_config()["architecture"]
    assert (config["encoder"], config["width"], config["head"]) == (build["encoder"], build["width"], build["head"])
    best = keras.saving.load_model(run / "best.keras", compile=False)
    np.testing.assert_allclose(_logits_kernel(best), _logits_kernel(shipped), atol=1e-6)
    trained_bins, shipped_bins = model_lib.model_bins(best), model_lib.model_bins(shipped)
    np.testing.assert_array_equal(trained_bins.centers, shipped_bins.centers)


def test_init_refuses_settings_that_contradict_the_model_it_starts_from(photos, tmp_path):
    with pytest.raises(TrainingError, match="width"):
        train(photos, tmp_path / "run", init="pretrained", width=3.0, epochs=1, hardware="cpu", verbose=0)
    with pytest.raises(TrainingError, match="init: .*missing"):
        train(photos, tmp_path / "run2", init=str(tmp_path / "missing"), epochs=1, hardware="cpu", verbose=0)


@pytest.mark.slow
def test_offline_the_default_encoder_starts_from_the_imagenet_weights_inside_the_shipped_model(photos, tmp_path,
                                                                                                 monkeypatch):
    from colorfusion import backbones
    from colorfusion.presets import load_pretrained

    # No network and no colorfusion[lite], whatever this machine has: ImageNet weights cannot be had.
    monkeypatch.setattr(backbones, "missing_imagenet", lambda backbone, timeout=3.0: f"no weights for {backbone}")
    run = tmp_path / "run"
    lines = []
    monkeypatch.setattr("colorfusion.training._say", lambda verbose, message: lines.append(message))
    # Defaults but the size of the work: the shipped model's encoder (efficientnet_lite0), encoder_weights "imagenet".
    train(photos, run, image_size=32, epochs=1, batch_size=4, hardware="cpu", verbose=0)
    assert any("ImageNet weights inside the shipped model" in line for line in lines)
    best = keras.saving.load_model(run / "best.keras", compile=False)
    encoder = model_lib.encoder_layer(best)
    shipped_encoder = model_lib.encoder_layer(load_pretrained())
    assert encoder.trainable is False  # the first epoch trains the decoder only
    for ours, theirs in zip(encoder.weights, shipped_encoder.weights):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-6)


def test_offline_an_encoder_without_shipped_weights_is_one_line_saying_what_to_do(photos, tmp_path, monkeypatch):
    from colorfusion import backbones

    monkeypatch.setattr(backbones, "_reachable", lambda host, timeout: False)
    with pytest.raises(TrainingError, match="cannot be downloaded here.*--encoder efficientnet_lite0") as caught:
        train(photos, tmp_path / "run", encoder="resnet50", image_size=32, epochs=1, hardware="cpu", verbose=0)
    assert "\n" not in str(caught.value)
