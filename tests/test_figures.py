"""`colorfusion.figures`: the notebook figures draw what they say, and `show` saves / displays them."""

import numpy as np
import pytest
from photos import make_photo

from colorfusion import augment, color, figures, io
from colorfusion.bins import ABBins
from colorfusion.inference.colorizer import Colorizer
from colorfusion.model import build_colorizer


@pytest.fixture
def photo():
    return make_photo(np.random.default_rng(0), 48, 64)


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_lab_channels_figure_shows_the_photo_its_lightness_a_b_and_the_ab_target(photo):
    fig = figures.lab_channels_figure(photo, chroma_l=70.0)
    panels = image_axes(fig)
    assert [ax.get_title().split(":")[0] for ax in panels] == ["RGB photo", "L", "a", "b", "ab at L=70 (target)"]
    lab = color.rgb_to_lab(photo)
    gray = panels[1].images[0].get_array()
    assert np.allclose(gray[..., 0], gray[..., 2], atol=1e-3)  # the input is colourless
    assert np.allclose(panels[2].images[0].get_array(), lab[..., 1])
    target = color.rgb_to_lab(np.asarray(panels[4].images[0].get_array(), np.float32))
    assert np.abs(target[..., 0] - 70).mean() < 3 and np.abs(target[..., 1:] - lab[..., 1:]).mean() < 5


def test_augmentation_grid_has_the_validation_crop_then_seeded_training_crops(photo):
    fig = figures.augmentation_grid(photo, size=32, count=3, seed=5)
    arrays = [np.asarray(ax.images[0].get_array()) for ax in image_axes(fig)]
    assert len(arrays) == 4 and all(a.shape == (32, 32, 3) for a in arrays)
    assert np.array_equal(arrays[0], augment.fit_square(photo, 32))
    transform = augment.build_transform(32, train=True)
    assert np.array_equal(arrays[2], augment.augment_image(transform, photo, seed=6))


def test_ab_histogram_counts_every_pixel_and_skips_unreadable_files(photo, tmp_path, capsys):
    gray = np.full((10, 20, 3), 128, np.uint8)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    hist = figures.ab_histogram([photo, gray, io.write_image(tmp_path / "p.png", photo), bad])
    assert hist.sum() == 2 * photo.shape[0] * photo.shape[1] + 200
    assert hist[64, 64] >= 200  # gray pixels: the cell holding ab = (0, 0)
    assert "bad.jpg" in capsys.readouterr().err


def test_ab_bins_figure_draws_one_marker_per_bin(photo):
    bins = ABBins.fit([photo], num_bins=30)
    fig = figures.ab_bins_figure(figures.ab_histogram([photo]), bins)
    scatters = [ax.collections[0] for ax in fig.axes[1:3]]
    assert all(len(s.get_offsets()) == 30 for s in scatters)
    assert np.allclose(scatters[1].get_offsets()[:, 1], bins.weights)


def test_before_after_figure_has_an_original_column_only_when_known(photo):
    with_original = figures.before_after_figure([(photo, photo, photo), (photo, photo, None)], names=["a", "b"])
    assert len(image_axes(with_original)) == 5 and image_axes(with_original)[0].get_title() == "B&W input: a"
    assert len(image_axes(figures.before_after_figure([(photo, photo, None)]))) == 2
    # More models beside each other (the README's old prints): a column per title.
    titles = ("made old", "0.3.0", "this model", "original")
    four = figures.before_after_figure([(photo, photo, photo, photo)], names=["c"], titles=titles)
    assert [ax.get_title() for ax in image_axes(four)] == ["made old: c", "0.3.0", "this model", "original"]


def test_temperature_changes_a_classification_models_colours_but_not_a_regression_models(photo):
    bins = ABBins.fit([photo], num_bins=20)
    for head, should_differ in (("classification", True), ("regression", False)):
        model = build_colorizer(32, head=head, embedding_dim=None, width=0.125,
                                bins=bins if head != "regression" else None)
        if head == "classification":  # a fresh model is nearly uniform over the bins: give it a clear preference
            kernel, bias = model.get_layer("ab_logits").get_weights()
            model.get_layer("ab_logits").set_weights([kernel, np.random.default_rng(0).normal(0, 2, bias.shape)])
        fig = figures.temperature_figure(Colorizer(model), [photo], temperatures=(1.0, 0.05))
        mean, sharp = (np.asarray(ax.images[0].get_array(), np.float32) for ax in image_axes(fig)[1:])
        assert (np.abs(mean - sharp).max() > 1) == should_differ, head


def test_metrics_figure_leaves_the_ground_truth_out_of_the_psnr_panel():
    methods = {name: {"auc": 0.5, "psnr": 20.0} for name in ("model", "grayscale", "ground_truth")}
    fig = figures.metrics_figure(methods, keys=("auc", "psnr"))
    assert [len(ax.patches) for ax in fig.axes] == [3, 2]


def test_show_saves_the_figure_and_displays_it_only_in_a_notebook(photo, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(figures, "show_png", shown.append)
    monkeypatch.setattr(figures, "in_notebook", lambda: False)
    assert figures.show(figures.photo_grid([photo]), tmp_path / "a.png") is None
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG" and shown == []
    monkeypatch.setattr(figures, "in_notebook", lambda: True)
    figures.show(figures.photo_grid([photo]), tmp_path / "b.png")
    figures.show_image(tmp_path / "a.png")
    assert len(shown) == 2 and shown[1] == (tmp_path / "a.png").read_bytes()
