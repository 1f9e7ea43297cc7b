"""Every command-line option arrives where it acts: `train`'s in TrainConfig (and `--rebalance-lambda` in the
bins), `--decode` / `--temperature` / `--weights` in what colorize and evaluate produce, `evaluate --limit`,
`fit-bins`; and the exit codes of a diverged run (1) and of Ctrl-C (130)."""

import csv
import inspect
import json
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import keras
import numpy as np
import pytest
from forcing import PoisonWeights
from photos import write_photos

from colorfusion import cli, datasets, io, training
from colorfusion.bins import ABBins, rebalancing_weights
from colorfusion.evaluation import evaluate
from colorfusion.inference.colorizer import Colorizer
from colorfusion.training import TrainConfig, TrainResult

PHOTO_COUNT = 3  # the module's `photos` folder (conftest)
TINY = ["--image-size", "32", "--epochs", "1", "--batch-size", "4", "--width", "0.125", "--encoder", "scratch",
        "--weights", "none", "--embedding", "none", "--workers", "1"]


@pytest.fixture(autouse=True)
def quiet_start(tmp_path, monkeypatch):
    # The backend's quiet start (tested in test_cli_startup) takes a toy training step: not needed here.
    monkeypatch.setattr(cli, "import_backend_quietly", lambda training=False: None)
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))


def model_rows(report_dir):
    with open(Path(report_dir) / "per_image.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["method"] == "model"]


# === train: every option reaches TrainConfig ===

# dest: (the option on the command line, the TrainConfig value it must give). Each value differs from the default.
TRAIN_OPTIONS = {
    "head": (["--head", "regression"], "regression"),
    "image_size": (["--image-size", "48"], 48),
    "epochs": (["--epochs", "7"], 7),
    "batch_size": (["--batch-size", "3"], 3),
    "learning_rate": (["--learning-rate", "0.005"], 0.005),
    "width": (["--width", "0.75"], 0.75),
    "encoder": (["--encoder", "vgg16"], "vgg16"),
    "encoder_weights": (["--encoder-weights", "none"], None),
    "freeze_epochs": (["--freeze-epochs", "4"], 4),
    "finetune_learning_rate": (["--finetune-learning-rate", "0.0002"], 0.0002),
    "encoder_finetune_stride": (["--encoder-finetune-stride", "16"], 16),
    "early_stopping_patience": (["--early-stopping-patience", "3"], 3),
    "time_limit_minutes": (["--time-limit", "2.5"], 2.5),
    "rebalance_lambda": (["--rebalance-lambda", "0.3"], 0.3),
    "backbone": (["--backbone", "mobilenet"], "mobilenet"),
    "weights": (["--weights", "none"], None),
    "embedding": (["--embedding", "cache"], "cache"),
    "val_fraction": (["--val-fraction", "0.25"], 0.25),
    "seed": (["--seed", "5"], 5),
    "preview_every": (["--preview-every", "2"], 2),
    "workers": (["--workers", "1"], 1),
    "init": (["--init", "some/run"], "some/run"),
    "hints": (["--hints"], True),
    "hint_free_fraction": (["--hint-free-fraction", "0.5"], 0.5),
    "train_only_hints": (["--train-only-hints"], True),  # implies hints
    "hint_blend": (["--hint-blend", "affinity"], "affinity"),
    "damage": (["--damage", "0.5"], 0.5),
}
# Options that are arguments of train() itself rather than TrainConfig fields.
TRAIN_ARGUMENTS = {"data", "out", "split_file", "resume"}


@pytest.fixture
def train_calls(monkeypatch):
    """Replace train() by one that records its arguments and the TrainConfig its settings make."""
    calls = []
    own = set(inspect.signature(training.train).parameters) - {"settings"}

    def fake_train(data=None, out="runs/colorfusion", **kwargs):
        settings = {k: v for k, v in kwargs.items() if k not in own}
        calls.append({"data": data, "out": out, "settings": settings, "config": TrainConfig(**settings),
                      **{k: v for k, v in kwargs.items() if k in own}})
        return TrainResult(model=None, history={"val_loss": [0.5]}, paths={}, epochs_done=1)

    monkeypatch.setattr(training, "train", fake_train)
    return calls


def test_the_table_below_covers_every_train_option(subparser):
    dests = {a.dest for a in subparser("train")._actions if a.dest != "help"}
    assert dests == set(TRAIN_OPTIONS) | TRAIN_ARGUMENTS


@pytest.mark.parametrize("dest", sorted(TRAIN_OPTIONS))
def test_every_train_option_reaches_train_config(dest, train_calls, tmp_path, capsys):
    argv, expected = TRAIN_OPTIONS[dest]
    assert expected != getattr(TrainConfig(), dest), "pick a value that differs from the default"
    assert cli.main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *argv]) == 0
    [call] = train_calls
    assert list(call["settings"]) == [dest]  # options left out stay out (so --resume checks only those given)
    value = getattr(call["config"], dest)
    assert value == (pytest.approx(expected) if isinstance(expected, float) else expected)


def test_train_passes_data_out_split_file_and_resume(train_calls, tmp_path, capsys):
    split = tmp_path / "split.txt"
    assert cli.main(["train", "--data", "photos", "--out", "runs/x", "--split-file", str(split), "--resume"]) == 0
    assert cli.main(["train", "--data", "photos", "--out", "runs/y"]) == 0
    first, second = train_calls
    assert (first["data"], first["out"], first["split_file"], first["resume"]) == ("photos", "runs/x", str(split), True)
    assert (second["split_file"], second["resume"], second["settings"]) == (None, False, {})


def test_a_train_setting_its_run_cannot_use_is_the_users_error_in_one_line_before_training(train_calls, capsys):
    assert cli.main(["train", "--data", "photos", "--out", "runs/x", "--damage", "2"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: --damage: Invalid training setting. Received: damage=2.0"], err
    assert not train_calls


def test_a_bad_split_file_is_the_users_error_and_a_bug_in_train_is_the_commands(monkeypatch, tmp_path, capsys):
    split = tmp_path / "split.tsv"
    split.write_text("a.jpg holdout\n")
    monkeypatch.setattr(training, "train", lambda data, out, split_file=None, **kwargs: datasets.read_split_file(
        split_file))
    assert cli.main(["train", "--data", "photos", "--out", "runs/x", "--split-file", str(split)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {split}:1: expected 'path<TAB>split'. Received: line='a.jpg holdout'"]

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together\nshapes (3,) (4,)")

    monkeypatch.setattr(training, "train", bug)
    assert cli.main(["train", "--data", "photos", "--out", "runs/x"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: train failed: ValueError: operands could not be broadcast together (COLORFUSION_DEBUG=1 shows the "
        "traceback)"]


# === train: a real run (the bins it fits, the exit code when it diverges), Ctrl-C ===


class CtrlC(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        raise KeyboardInterrupt


def with_callback(monkeypatch, callback):
    """The real train(), with `callback` added to the run's callbacks."""
    real = training.train
    monkeypatch.setattr(training, "train", lambda *args, **kwargs: real(*args, callbacks=[callback], **kwargs))


@pytest.fixture(scope="module")
def diverged_run(photos, tmp_path_factory):
    """`colorfusion train --head classification --rebalance-lambda 0.3 ...` whose second epoch's loss is NaN.

    One run for two tests: the bins it fitted before training, and how it ends.
    """
    run = tmp_path_factory.mktemp("diverged") / "run"
    out, err = StringIO(), StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.setattr(cli, "import_backend_quietly", lambda training=False: None)
        patch.setenv("COLORFUSION_CACHE", str(run.parent / "cache"))
        with_callback(patch, PoisonWeights(epoch=1))
        code = cli.main(["train", "--data", str(photos), "--out", str(run), *TINY, "--epochs", "3",
                         "--head", "classification", "--rebalance-lambda", "0.3"])
    return {"run": run, "code": code, "out": out.getvalue(), "err": err.getvalue()}


def test_rebalance_lambda_reaches_the_bins_the_run_trains_with(diverged_run):
    run = diverged_run["run"]
    bins = ABBins.load(run / "bins.json")
    assert bins.lam == pytest.approx(0.3)
    np.testing.assert_allclose(bins.weights, rebalancing_weights(bins.prior, bins.prior_smoothed, 0.3))
    assert not np.allclose(bins.weights, rebalancing_weights(bins.prior, bins.prior_smoothed, 0.75))
    assert json.loads((run / "config.json").read_text())["rebalance_lambda"] == pytest.approx(0.3)


def test_a_run_stopped_by_a_nan_loss_exits_1_naming_the_last_good_checkpoint(diverged_run):
    run, err = diverged_run["run"], diverged_run["err"]
    assert diverged_run["code"] == 1, err
    assert "Training stopped at epoch 2: non-finite loss" in err and str(run / "last.keras") in err
    assert "done: 1 epochs" in diverged_run["out"]
    assert json.loads((run / "state.json").read_text())["epoch"] == 1


def test_a_nan_loss_in_the_first_epoch_exits_1_naming_no_checkpoint_that_does_not_exist(photos, tmp_path, capsys,
                                                                                        monkeypatch):
    with_callback(monkeypatch, PoisonWeights(epoch=0))
    run = tmp_path / "run"
    code = cli.main(["train", "--data", str(photos), "--out", str(run), *TINY, "--head", "regression"])
    captured = capsys.readouterr()
    assert code == 1 and "non-finite loss" in captured.err
    assert not (run / "last.keras").exists() and not (run / "best.keras").exists()
    said = captured.out + captured.err
    assert "last.keras" not in said and "best.keras" not in said, said


def test_ctrl_c_during_training_exits_130(photos, tmp_path, capsys, monkeypatch):
    with_callback(monkeypatch, CtrlC())
    try:
        code = cli.main(["train", "--data", str(photos), "--out", str(tmp_path / "run"), *TINY, "--head", "regression"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped cli.main as KeyboardInterrupt instead of exit code 130")
    captured = capsys.readouterr()
    assert code == 130
    assert captured.err.splitlines()[-1] == "interrupted" and "done:" not in captured.out


# === colorize and evaluate: --decode, --temperature, --weights ===


def tiny_mobilenet_weights(folder, seed) -> Path:
    """A MobileNet (alpha 0.25, 32 px, no top) weights file whose name tells the Embedder its alpha and size.

    Random weights leave the pooled features near zero; the last batch normalisation's offsets, drawn from
    `seed`, make them large, so two such files give clearly different embeddings.
    """
    backbone = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False,
                                            weights=None, pooling="avg")
    beta = backbone.get_layer("conv_pw_13_bn").beta
    beta.assign(np.random.default_rng(seed).uniform(0, 6, beta.shape).astype(np.float32))
    folder.mkdir(parents=True)
    path = folder / "mobilenet_2_5_32_tf_no_top.weights.h5"
    backbone.save_weights(path)
    return path


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    """A classification model in a run folder, and a model with a semantic input whose run used weights A."""
    root = tmp_path_factory.mktemp("runs")
    classification = root / "classification"
    classification.mkdir()
    model = tiny_model(head="classification", seed=0, num_bins=30)
    # Random logits are all near zero (near-uniform bins, whatever the decoding): spread them out.
    logits = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    logits.kernel.assign(logits.kernel * 30.0)
    logits.bias.assign(np.random.default_rng(0).normal(0, 2, logits.bias.shape).astype(np.float32))
    model.save(classification / "best.keras")
    semantic = root / "semantic"
    semantic.mkdir()
    weights_a, weights_b = tiny_mobilenet_weights(root / "a", seed=1), tiny_mobilenet_weights(root / "b", seed=2)
    tiny_model(embedding_dim=256).save(semantic / "best.keras")
    (semantic / "config.json").write_text(json.dumps({"backbone": "mobilenet", "weights": str(weights_a),
                                                      "embedding_output": "pooled", "embedding": "cache", "seed": 0}))
    return {"classification": classification, "semantic": semantic, "weights_b": weights_b}


# option: (run, its value on the command line, the same as Colorizer.from_path arguments)
INFERENCE_OPTIONS = {
    "decode": ("classification", lambda runs: ["--decode", "mode"], lambda runs: {"decode": "mode"}),
    "temperature": ("classification", lambda runs: ["--temperature", "0.05"], lambda runs: {"temperature": 0.05}),
    "weights": ("semantic", lambda runs: ["--weights", str(runs["weights_b"])],
                lambda runs: {"weights": str(runs["weights_b"])}),
}


@pytest.fixture(scope="module")
def colorizers(runs):
    """(default, with the option) Colorizers of each option, through the API."""
    defaults = {run: Colorizer.from_path(runs[run]) for run in ("classification", "semantic")}
    return {option: (defaults[run], Colorizer.from_path(runs[run], **kwargs(runs)))
            for option, (run, _, kwargs) in INFERENCE_OPTIONS.items()}


@pytest.fixture(scope="module")
def api_scores(photos, tmp_path_factory):
    """The model rows' PSNR and AuC of `evaluate` through the API, once per Colorizer."""
    done = {}

    def scores(colorizer):
        if id(colorizer) not in done:
            report = evaluate(colorizer, photos, tmp_path_factory.mktemp("api"), size=24, progress=False)
            done[id(colorizer)] = [(r["psnr"], r["auc"]) for r in report.rows if r["method"] == "model"]
        return done[id(colorizer)]

    return scores


@pytest.mark.parametrize("option", sorted(INFERENCE_OPTIONS))
def test_an_inference_option_changes_what_colorize_writes_as_the_api_does(option, runs, colorizers, photos,
                                                                           tmp_path, capsys):
    run, argv, _ = INFERENCE_OPTIONS[option]
    default, chosen = colorizers[option]
    out = tmp_path / "out"
    assert cli.main(["colorize", str(photos), "-o", str(out), "--model", str(runs[run]), *argv(runs), "--quiet"]) == 0
    differs = []
    for photo in sorted(photos.iterdir()):
        expected = chosen(photo)
        np.testing.assert_array_equal(io.read_rgb(out / photo.name), expected, err_msg=photo.name)
        differs.append(np.abs(expected.astype(int) - default(photo)).max() > 2)
    assert all(differs), f"{option} should change every photo's colours"


@pytest.mark.parametrize("option", sorted(INFERENCE_OPTIONS))
def test_an_inference_option_changes_what_evaluate_scores_as_the_api_does(option, runs, colorizers, api_scores,
                                                                           photos, tmp_path, capsys):
    run, argv, _ = INFERENCE_OPTIONS[option]
    default, chosen = colorizers[option]
    report = tmp_path / "report"
    assert cli.main(["evaluate", "--data", str(photos), "--out", str(report), "--model", str(runs[run]),
                     *argv(runs), "--size", "24", "--quiet"]) == 0
    got = model_rows(report)
    assert [r["file"] for r in got] == [str(p) for p in sorted(photos.iterdir())]
    scores = [(float(r["psnr"]), float(r["auc"])) for r in got]
    assert np.allclose(scores, api_scores(chosen), rtol=1e-6)
    assert not np.allclose(scores, api_scores(default), rtol=1e-3), f"{option} should change the scores"


# === evaluate --limit ===


def test_evaluate_limit_scores_only_the_first_photos_by_path(runs, tmp_path, capsys):
    data = tmp_path / "data"
    write_photos(data / "b", count=2, seed=1)
    write_photos(data / "a", count=2, seed=2)
    report = tmp_path / "report"
    assert cli.main(["evaluate", "--data", str(data), "--out", str(report), "--model", str(runs["classification"]),
                     "--size", "16", "--limit", "3", "--quiet"]) == 0
    expected = [str(data / name) for name in ("a/photo_00.png", "a/photo_01.png", "b/photo_00.png")]
    assert [r["file"] for r in model_rows(report)] == expected
    assert json.loads((report / "summary.json").read_text())["n_images"] == 3
    assert "3 photos at 16x16" in capsys.readouterr().out


# === fit-bins ===


def test_fit_bins_writes_the_bins_of_the_photos(tmp_path, capsys):
    files = write_photos(tmp_path / "photos", count=4)
    out = tmp_path / "bins.json"
    assert cli.main(["fit-bins", "--data", str(tmp_path / "photos"), "--out", str(out), "--num-bins", "30"]) == 0
    assert capsys.readouterr().out.strip() == f"done: 30 bins from 4 photos -> {out}"
    bins = ABBins.load(out)
    # The loss weights of train's default lambda (0.75), not ABBins' own 0.5.
    expected = ABBins.fit_files(files, num_bins=30, progress=False, lam=0.75)
    np.testing.assert_array_equal(bins.centers, expected.centers)
    np.testing.assert_allclose(bins.prior, expected.prior)
    np.testing.assert_allclose(bins.weights, expected.weights)
    other = tmp_path / "bins_0.3.json"
    assert cli.main(["fit-bins", "--data", str(tmp_path / "photos"), "--out", str(other), "--num-bins", "30",
                     "--rebalance-lambda", "0.3"]) == 0
    np.testing.assert_allclose(ABBins.load(other).weights,
                               ABBins.fit_files(files, num_bins=30, progress=False, lam=0.3).weights)
    assert not np.allclose(ABBins.load(other).weights, bins.weights)


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable", "too_many_bins"])
def test_fit_bins_on_bad_input_is_one_error_line_and_exit_code_1(case, tmp_path, capsys):
    data = tmp_path / "data"
    options = []
    if case == "empty":
        data.mkdir()
    elif case == "unreadable":
        data.mkdir()
        for name in ("a.png", "b.jpg"):
            (data / name).write_text("not an image")
    elif case == "too_many_bins":
        write_photos(data, count=2)
        options = ["--num-bins", "100000"]
    out = tmp_path / "bins.json"
    assert cli.main(["fit-bins", "--data", str(data), "--out", str(out), *options]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    if case in ("missing", "empty"):
        assert errors[0] == f"error: {data}: no images found"
    if case == "too_many_bins":
        assert "num_bins" in errors[0]
    assert not out.exists()


def test_fit_bins_refuses_a_bad_number_of_bins_as_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["fit-bins", "--data", str(tmp_path), "--out", str(tmp_path / "b.json"), "--num-bins", "0"])
    assert done.value.code == 2 and "expected a positive integer" in capsys.readouterr().err
