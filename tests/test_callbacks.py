"""Tests for colorfusion.callbacks: previews, preview metrics, training curves."""

import gc
import sys
import types
import weakref

import keras
import numpy as np
import pytest
from PIL import Image

from colorfusion import callbacks, color, figures, metrics

SIZE = 16


def tiny_regression_model(size=SIZE, embedding_dim=None):
    """L (S, S, 1) [+ embedding (D,)] -> Conv2D(2, tanh): ab / 128, like a regression head."""
    l_in = keras.Input((size, size, 1), name="L")
    inputs, features = [l_in], l_in
    if embedding_dim:
        emb = keras.Input((embedding_dim,), name="embedding")
        inputs.append(emb)
        tiled = keras.layers.Reshape((1, 1, embedding_dim), name="emb_reshape")(emb)
        tiled = keras.layers.UpSampling2D(size, name="emb_tile")(tiled)
        features = keras.layers.Concatenate(name="fuse")([l_in, tiled])
    ab = keras.layers.Conv2D(2, 3, padding="same", activation="tanh", name="ab")(features)
    model = keras.Model(inputs if embedding_dim else l_in, ab, name="tiny")
    model.compile(optimizer="adam", loss="mse")
    return model


def colourful_images(n, size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        f = rng.uniform(0.5, 2, (3, 2))
        images.append(np.stack([127 + 120 * np.sin(3 * (a * x + b * y)) for a, b in f], -1).astype(np.uint8))
    return images


def training_data(n=8, size=SIZE):
    rgb = np.stack(colourful_images(n, size, seed=1))
    lab = color.rgb_to_lab(rgb)
    return color.l_to_model(lab[..., :1]), color.ab_to_model(lab[..., 1:])


@pytest.fixture
def samples():
    return callbacks.samples_from_images(colourful_images(2, seed=3), image_size=SIZE)


@pytest.fixture
def no_display(monkeypatch):
    shown = []
    monkeypatch.setattr(figures, "show_png", shown.append)
    return shown


# === Samples ===


def test_samples_from_images_crops_resizes_and_splits_l():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = [200, 40, 40]  # the centre square is all red
    samples = callbacks.samples_from_images([wide, colourful_images(1, 32)[0]], image_size=SIZE)
    assert samples["rgb"].shape == (2, SIZE, SIZE, 3) and samples["rgb"].dtype == np.uint8
    assert np.all(samples["rgb"][0] == [200, 40, 40])
    expected_l = color.l_to_model(color.rgb_to_l(samples["rgb"]))
    np.testing.assert_array_equal(samples["x"]["L"], expected_l)
    assert samples["x"]["L"].dtype == np.float32 and "embedding" not in samples["x"]


def test_samples_from_images_embeds_l_with_an_embedder_or_a_callable():
    seen = []

    class FakeEmbedder:  # the interface of embeddings.Embedder
        def embed_l(self, l):
            seen.append(l)
            return np.ones((len(l), 5))

    images = colourful_images(3, seed=4)
    samples = callbacks.samples_from_images(images, image_size=SIZE, embedder=FakeEmbedder())
    l = seen[0]
    assert l.shape == (3, SIZE, SIZE, 1)
    np.testing.assert_array_equal(l, color.rgb_to_l(samples["rgb"]))  # L in [0, 100], not model-scaled
    assert samples["x"]["embedding"].shape == (3, 5) and samples["x"]["embedding"].dtype == np.float32
    by_callable = callbacks.samples_from_images(images, image_size=SIZE, embedder=lambda l: l.mean((1, 2)))
    np.testing.assert_allclose(by_callable["x"]["embedding"], l.mean((1, 2)), rtol=1e-6)


def test_samples_from_files_skips_unreadable_files(tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(colourful_images(1, 24)[0]).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    samples = callbacks.samples_from_files([bad, good], image_size=SIZE)
    assert samples["rgb"].shape == (1, SIZE, SIZE, 3)
    assert "bad.jpg" in capsys.readouterr().err


def test_preview_rejects_bad_arguments(samples):
    with pytest.raises(ValueError, match="every_n_epochs"):
        callbacks.ColorizationPreview(samples, every_n_epochs=0)
    with pytest.raises(ValueError, match="show"):
        callbacks.ColorizationPreview(samples, show="yes")
    with pytest.raises(ValueError, match="samples"):
        callbacks.ColorizationPreview({"rgb": samples["rgb"], "x": {"L": samples["x"]["L"][:, :8]}})
    with pytest.raises(ValueError, match="every_n_epochs"):
        callbacks.TrainingCurves(every_n_epochs=1.5)


# === ColorizationPreview ===


def test_preview_during_fit_honours_every_n_epochs_and_last_epoch(tmp_path, samples, no_display):
    x, y = training_data()
    preview = callbacks.ColorizationPreview(samples, every_n_epochs=2, out_dir=tmp_path / "previews")
    tiny_regression_model().fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[preview])
    # Epoch 2 (every 2) and epoch 3 (the last); nothing else, no temporary files.
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == ["epoch_002.png", "epoch_003.png"]
    assert [p.name for p in preview.written] == ["epoch_002.png", "epoch_003.png"]
    assert no_display == []  # show="auto" outside a notebook shows nothing


def test_preview_png_has_one_row_per_sample_and_three_columns(tmp_path, no_display):
    model = tiny_regression_model()
    for n in (1, 3):
        samples = callbacks.samples_from_images(colourful_images(n, seed=5), image_size=SIZE)
        preview = callbacks.ColorizationPreview(samples, out_dir=tmp_path / str(n))
        preview.set_model(model)
        fig = preview.render(epoch=7)
        assert len(fig.axes) == 3 * n
        assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (n, 3)
        assert fig.get_suptitle() == "epoch 7"
        for row in range(n):
            title = fig.axes[3 * row + 2].get_title()
            score = preview.last_scores[row]
            assert f"AuC {score['auc']:.3f}" in title and "PSNR" in title
        path = preview.preview(epoch=7)
        width, height = Image.open(path).size
        # 3 square cells across, n down (plus a strip for the suptitle).
        assert width / height == pytest.approx(3 * 2.6 / (n * 2.6 + 0.4), rel=0.02)


def test_preview_shows_grayscale_input_and_colorization(tmp_path, samples, no_display):
    preview = callbacks.ColorizationPreview(samples, out_dir=tmp_path)
    preview.set_model(tiny_regression_model())
    fig = preview.render(epoch=1)
    original, gray, colorized = (ax.get_images()[0].get_array() for ax in fig.axes[:3])
    np.testing.assert_array_equal(original, samples["rgb"][0])
    np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-5)  # no colour in the input
    expected = callbacks.colorize_samples(preview.model, samples)[0]
    np.testing.assert_array_equal(colorized, expected)
    # A model predicting ab = 0 gives back the gray image of the samples' own L.
    model = preview.model
    model.get_layer("ab").set_weights([np.zeros_like(w) for w in model.get_layer("ab").get_weights()])
    colorized = preview.render(epoch=2).axes[2].get_images()[0].get_array()
    np.testing.assert_array_equal(colorized, np.round(gray * 255).astype(np.uint8))


def test_preview_on_train_end_writes_the_epoch_training_stopped_at(tmp_path, samples, no_display):
    preview = callbacks.ColorizationPreview(samples, every_n_epochs=5, out_dir=tmp_path)
    preview.set_model(tiny_regression_model())
    preview.set_params({"epochs": 20})
    for epoch in range(7):  # as if EarlyStopping ended the run after epoch 7
        preview.on_epoch_end(epoch, {})
    preview.on_train_end()
    preview.on_train_end()  # a second call writes nothing new
    assert [p.name for p in preview.written] == ["epoch_005.png", "epoch_007.png"]


def test_preview_feeds_embedding_to_models_that_take_it(tmp_path, no_display):
    samples = callbacks.samples_from_images(
        colourful_images(2), image_size=SIZE, embedder=lambda g: np.full((len(g), 4), 0.5))
    preview = callbacks.ColorizationPreview(samples, out_dir=tmp_path)
    preview.set_model(tiny_regression_model(embedding_dim=4))
    assert preview.preview(epoch=1).exists()
    # A model without the embedding input ignores it.
    preview.set_model(tiny_regression_model())
    assert preview.preview(epoch=2).exists()


def test_preview_show_true_displays_the_png_and_auto_follows_the_notebook(
        tmp_path, samples, no_display, monkeypatch):
    model = tiny_regression_model()
    forced = callbacks.ColorizationPreview(samples, out_dir=tmp_path, show=True)
    forced.set_model(model)
    forced.preview(epoch=1)
    assert len(no_display) == 1 and no_display[0].startswith(b"\x89PNG")
    assert no_display[0] == (tmp_path / "epoch_001.png").read_bytes()
    monkeypatch.setattr(figures, "in_notebook", lambda: True)
    auto = callbacks.ColorizationPreview(samples, out_dir=tmp_path, show="auto")
    auto.set_model(model)
    auto.preview(epoch=2)
    never = callbacks.ColorizationPreview(samples, out_dir=tmp_path, show=False)
    never.set_model(model)
    never.preview(epoch=3)
    assert len(no_display) == 2


def test_in_notebook_needs_an_ipython_kernel(monkeypatch):
    assert figures.in_notebook() is False  # pytest is not a kernel
    shell = types.SimpleNamespace(kernel=None)
    fake_ipython = types.SimpleNamespace(get_ipython=lambda: shell)
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert figures.in_notebook() is False  # a terminal IPython has no kernel
    shell.kernel = object()
    assert figures.in_notebook() is True


def test_preview_keeps_no_figure_alive(tmp_path, samples, no_display, monkeypatch):
    import matplotlib.pyplot as plt

    refs = []
    render = callbacks.ColorizationPreview.render

    def tracking_render(self, epoch, pred=None):
        fig = render(self, epoch, pred)
        refs.append(weakref.ref(fig))
        return fig

    monkeypatch.setattr(callbacks.ColorizationPreview, "render", tracking_render)
    preview = callbacks.ColorizationPreview(samples, out_dir=tmp_path)
    preview.set_model(tiny_regression_model())
    for epoch in range(3):
        preview.on_epoch_end(epoch, {})
    gc.collect()
    assert len(refs) == 3 and all(ref() is None for ref in refs)
    assert plt.get_fignums() == []  # nothing registered with pyplot


def test_failed_write_leaves_no_file_behind(tmp_path, samples, no_display, monkeypatch):
    preview = callbacks.ColorizationPreview(samples, out_dir=tmp_path)
    preview.set_model(tiny_regression_model())
    preview.preview(epoch=1)
    before = (tmp_path / "epoch_001.png").read_bytes()

    class Boom:
        def __init__(self, *args, **kwargs):
            raise OSError("disk full")

    monkeypatch.setattr(figures.io, "atomic_write", Boom)
    with pytest.raises(OSError):
        preview.preview(epoch=1)
    assert (tmp_path / "epoch_001.png").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_001.png"]


def test_preview_with_show_displays_each_preview_once_during_fit(tmp_path, samples, no_display):
    x, y = training_data()
    preview = callbacks.ColorizationPreview(samples, every_n_epochs=2, out_dir=tmp_path, show=True)
    tiny_regression_model().fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[preview])
    assert no_display == [p.read_bytes() for p in preview.written]  # epochs 2 and 3, each once
    assert len(no_display) == 2


# === Preview metrics and TrainingCurves ===


def test_curves_during_fit_plot_loss_val_loss_and_preview_metrics(tmp_path, samples, no_display):
    x, y = training_data()
    curves = callbacks.TrainingCurves(out_path=tmp_path / "curves.png")
    history = tiny_regression_model().fit(
        x, y, validation_data=(x[:4], y[:4]), epochs=3, batch_size=4, verbose=0,
        callbacks=[callbacks.ColorizationPreview(samples, every_n_epochs=10, out_dir=tmp_path / "p"), curves])
    assert (tmp_path / "curves.png").is_file() and [p.name for p in (tmp_path / "p").iterdir()] == ["epoch_003.png"]
    assert Image.open(tmp_path / "curves.png").size[0] > 100
    assert curves.epochs == [1, 2, 3]
    np.testing.assert_allclose(curves.history["loss"], history.history["loss"])
    # The preview's scores went into the shared logs every epoch: History saw them too.
    assert len(history.history["preview_auc"]) == 3 and 0 < history.history["preview_auc"][0] <= 1
    panels = curves.panels()
    assert list(panels)[0] == "loss" and panels["loss"] == ["loss", "val_loss"]
    assert panels["auc"] == ["preview_auc"] and panels["psnr"] == ["preview_psnr"]
    fig = curves.render()
    assert fig.axes[0].get_title() == "loss"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["loss", "val_loss"]


def test_preview_metrics_match_image_metrics(samples, tmp_path):
    model = tiny_regression_model()
    metric = callbacks.ColorizationPreview(samples, every_n_epochs=5, out_dir=tmp_path, prefix="s_")
    metric.set_model(model)
    logs = {"loss": 1.0}
    metric.on_epoch_end(0, logs)
    assert not metric.written  # not a preview epoch: scores only
    pred = callbacks.colorize_samples(model, samples)
    scores = [metrics.image_metrics(t, p) for t, p in zip(samples["rgb"], pred)]
    assert logs["s_auc"] == pytest.approx(np.mean([s["auc"] for s in scores]))
    assert logs["s_psnr"] == pytest.approx(np.mean([s["psnr"] for s in scores]))


def test_curves_continue_a_seeded_history(tmp_path, no_display):
    curves = callbacks.TrainingCurves(tmp_path / "c.png", history={"loss": [2.0, 1.0], "val_loss": [3.0]})
    assert curves.epochs == [1, 2]
    assert curves.history["val_loss"][0] == 3.0 and np.isnan(curves.history["val_loss"][1])
    curves.on_epoch_end(2, {"loss": 0.5, "val_loss": 0.7})  # resumed with initial_epoch=2
    curves.on_epoch_end(0, {"loss": 0.4, "auc": 0.8})  # a restart at epoch 0 continues the numbering
    assert curves.epochs == [1, 2, 3, 4]
    assert curves.history["loss"] == [2.0, 1.0, 0.5, 0.4]
    assert np.isnan(curves.history["val_loss"][3])
    assert np.isnan(curves.history["auc"][:3]).all() and curves.history["auc"][3] == 0.8
    assert (tmp_path / "c.png").exists()


def test_curves_use_log_scale_only_for_wide_positive_ranges(tmp_path):
    curves = callbacks.TrainingCurves(tmp_path / "c.png", history={
        "loss": [10.0, 1.0, 0.1], "auc": [0.5, 0.7, 0.8], "learning_rate": [1e-3, 1e-3, 1e-4]})
    fig = curves.render()
    scales = {ax.get_title(): ax.get_yscale() for ax in fig.axes if ax.get_title()}
    assert scales == {"loss": "log", "auc": "linear", "learning_rate": "log"}


def test_curves_redraw_every_n_epochs_and_at_train_end(tmp_path, monkeypatch):
    drawn = []
    save = figures.save_figure
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, *a: drawn.append(path) or save(fig, path, *a))
    curves = callbacks.TrainingCurves(tmp_path / "c.png", every_n_epochs=2, show=False)
    for epoch in range(3):
        curves.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    assert len(drawn) == 1  # epoch 2
    curves.on_train_end()
    curves.on_train_end()
    assert len(drawn) == 2  # epoch 3, once


def test_curves_ignore_log_values_that_are_not_numbers(tmp_path):
    curves = callbacks.TrainingCurves(tmp_path / "c.png", show=False)
    curves.on_epoch_end(0, {"loss": 1.0, "note": "warmup", "vector": [1.0, 2.0]})
    curves.on_epoch_end(1, {"loss": 0.5, "note": 3})
    assert set(curves.history) == {"loss", "note"}
    assert np.isnan(curves.history["note"][0]) and curves.history["note"][1] == 3.0


# === The package's own models ===


@pytest.mark.parametrize("decode", ["annealed_mean", "mode"])
def test_preview_of_classification_colorizer_decodes_bins(tmp_path, no_display, decode, tiny_model):
    model = tiny_model("classification")
    samples = callbacks.samples_from_images(colourful_images(2, 32, seed=6), image_size=32)
    preview = callbacks.ColorizationPreview(samples, out_dir=tmp_path, decode=decode)
    preview.set_model(model)
    path = preview.preview(epoch=1)
    assert path.name == "epoch_001.png" and len(preview.last_scores) == 2
    pred = callbacks.colorize_samples(model, samples, decode=decode)
    assert pred.shape == (2, 32, 32, 3) and pred.dtype == np.uint8
    # The colorization carries colour from the decoded bins (not gray).
    assert metrics.colorfulness(pred).max() > 1.0


def test_decode_choice_reaches_the_classification_head(tiny_model):
    model = tiny_model("classification")
    samples = callbacks.samples_from_images(colourful_images(1, 32, seed=7), image_size=32)
    mode = callbacks.colorize_samples(model, samples, decode="mode")
    mean = callbacks.colorize_samples(model, samples, decode="expectation")
    assert not np.array_equal(mode, mean)


def test_colorize_samples_names_a_missing_model_input(samples):
    with pytest.raises(ValueError, match="embedding"):
        callbacks.colorize_samples(tiny_regression_model(embedding_dim=4), samples)


def test_show_png_hands_the_png_to_ipython_display(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(display, "display", shown.append)
    figures.show_png(b"\x89PNG fake")
    assert len(shown) == 1 and isinstance(shown[0], display.Image) and shown[0].data == b"\x89PNG fake"


# === PlateauSchedule and TimeBudget ===


class FakeModel:
    """What the schedule callbacks touch: an optimizer's learning rate and stop_training."""

    def __init__(self, rate=1e-3):
        self.optimizer = keras.optimizers.Adam(rate)
        self.stop_training = False


def run_epochs(callback, values, model=None):
    model = model or FakeModel()
    callback.set_model(model)
    logs = []
    for epoch, value in enumerate(values):
        entry = {"val_loss": value}
        callback.on_epoch_end(epoch, entry)
        logs.append(entry)
    return model, logs


def test_plateau_schedule_halves_the_rate_after_patience_and_stops_after_its_own():
    schedule = callbacks.PlateauSchedule(lr_patience=2, lr_factor=0.5, stop_patience=4)
    model, logs = run_epochs(schedule, [3.0, 2.0, 2.5, 2.4, 2.1, 2.2])
    assert [entry["learning_rate"] for entry in logs] == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4])
    assert schedule.state == {"best": 2.0, "lr_wait": 0, "stop_wait": 4}
    assert schedule.stopped and model.stop_training


def test_plateau_schedule_continues_from_a_saved_state():
    first = callbacks.PlateauSchedule(lr_patience=3, stop_patience=3)
    run_epochs(first, [1.0, 1.5, 1.4])
    resumed = callbacks.PlateauSchedule(lr_patience=3, stop_patience=3, state=dict(first.state))
    model, _ = run_epochs(resumed, [1.2])  # the third epoch without improvement, counted across the resume
    assert resumed.stopped and model.stop_training
    fresh = callbacks.PlateauSchedule(lr_patience=3, stop_patience=3)
    _, _ = run_epochs(fresh, [1.2])
    assert not fresh.stopped
    resumed.restart_patience()
    assert resumed.state == {"best": 1.0, "lr_wait": 0, "stop_wait": 0}


def test_plateau_schedule_ignores_missing_or_non_finite_values_and_checks_arguments():
    schedule = callbacks.PlateauSchedule(lr_patience=1, stop_patience=1)
    model, _ = run_epochs(schedule, [float("nan"), float("inf")])
    assert schedule.state["best"] is None and not model.stop_training
    with pytest.raises(ValueError, match="lr_factor"):
        callbacks.PlateauSchedule(lr_factor=1.0)
    with pytest.raises(ValueError, match="lr_patience"):
        callbacks.PlateauSchedule(lr_patience=0)


def test_time_budget_stops_when_the_longest_epoch_would_end_past_the_deadline():
    now = [0.0]
    budget = callbacks.TimeBudget(minutes=3, clock=lambda: now[0])  # deadline at 180 s
    model = FakeModel()
    budget.set_model(model)
    for start, end in ((0, 50), (50, 110), (110, 130)):
        now[0] = start
        budget.on_epoch_begin(0)
        now[0] = end
        budget.on_epoch_end(0)
        if model.stop_training:
            break
    # After 110 s the longest epoch (60 s) would still end by 170 s; after 130 s it would not.
    assert end == 130 and budget.stopped and budget.longest == 60
    with pytest.raises(ValueError, match="minutes"):
        callbacks.TimeBudget(0)
