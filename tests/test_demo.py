"""`colorfusion.sources` (where photos and weights come from) and `colorfusion.demo` (`make demo`)."""

import numpy as np
import pytest

from colorfusion import color, datasets, demo, io, sources
from photos import write_photos


@pytest.fixture
def no_kaggle(tmp_path, monkeypatch):
    """No Kaggle credentials anywhere, no Kaggle mount, Keras cache in tmp."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "no-kaggle-input"


def kaggle_layout(root, train=6, test=3):
    data = root / "data"
    write_photos(data / "train_color", count=train, seed=1)
    test_files = write_photos(data / "test_color", count=test, seed=2)
    sources.write_bw_copies(test_files, data / "test_black")
    return data


# === data_source ===


def test_data_source_splits_a_plain_folder_and_says_so(tmp_path):
    write_photos(tmp_path / "photos", count=10)
    lines = []
    source = sources.data_source(tmp_path / "photos", min_test=3, log=lines.append)
    assert source.kind == "folder" and len(source.test) == 3 and len(source.train) == 7
    assert not set(source.train) & set(source.test) and source.test_pairs == []
    assert len(lines) == 1 and str(tmp_path / "photos") in lines[0] and "7 training and 3 held-out" in lines[0]


def test_data_source_uses_the_kaggle_layout_of_a_given_folder_with_its_bw_pairs(tmp_path):
    data = kaggle_layout(tmp_path / "dataset")
    source = sources.data_source(tmp_path / "dataset", log=lambda line: None)
    assert source.root == data and len(source.train) == 6 and len(source.test) == 3
    assert [(bw.parent.name, rgb.parent.name) for bw, rgb in source.test_pairs] == [("test_black", "test_color")] * 3


def test_data_source_finds_the_kaggle_mount_first(tmp_path, no_kaggle):
    kaggle_layout(tmp_path / "input" / "image-colorization-dataset")
    lines = []
    source = sources.data_source(kaggle_root=tmp_path / "input", log=lines.append)
    assert source.kind == "kaggle" and "aayush9753/image-colorization-dataset" in lines[0]


def test_data_source_falls_back_to_the_package_photos_without_kaggle(tmp_path, no_kaggle):
    lines = []
    source = sources.data_source(kaggle_root=no_kaggle, sample_dir=tmp_path / "samples", log=lines.append)
    assert source.kind == "sample_photos" and source.root == tmp_path / "samples"
    assert len(source.train) + len(source.test) >= 6 and len(source.test) >= 2
    assert "shipped with scikit-image and matplotlib" in lines[0] and "no Kaggle credentials" in lines[0]


def test_data_source_downloads_with_credentials_and_falls_back_when_that_fails(tmp_path, no_kaggle, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    kaggle_layout(tmp_path / "downloaded")
    monkeypatch.setattr(datasets, "download_kaggle_dataset", lambda slug, dest=None: tmp_path / "downloaded")
    assert sources.data_source(kaggle_root=no_kaggle, log=lambda line: None).kind == "kagglehub"

    def fail(slug, dest=None):
        raise datasets.DatasetDownloadError("Could not download: no network.\nmore help")

    monkeypatch.setattr(datasets, "download_kaggle_dataset", fail)
    lines = []
    source = sources.data_source(kaggle_root=no_kaggle, sample_dir=tmp_path / "samples", log=lines.append)
    assert source.kind == "sample_photos" and "download failed (Could not download: no network.)" in lines[0]


def test_data_source_rejects_a_missing_folder_and_too_few_photos(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        sources.data_source(tmp_path / "missing")
    write_photos(tmp_path / "two", count=2)
    with pytest.raises(ValueError, match="2 photo"):
        sources.data_source(tmp_path / "two")


def test_kaggle_credentials_come_from_the_environment_or_a_token_file(tmp_path, no_kaggle, monkeypatch):
    assert not sources.has_kaggle_credentials()
    monkeypatch.setenv("KAGGLE_USERNAME", "me")
    assert not sources.has_kaggle_credentials()  # a user name alone is no credential
    monkeypatch.setenv("KAGGLE_KEY", "key")
    assert sources.has_kaggle_credentials()
    monkeypatch.delenv("KAGGLE_USERNAME")
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text("{}")
    assert sources.has_kaggle_credentials()


def test_subset_is_reproducible_sorted_and_at_most_count():
    files = [f"f{i:02d}.png" for i in range(20)]
    picked = sources.subset(files[::-1], 5, seed=3)
    assert picked == sorted(picked) and len(set(picked)) == 5 and picked == sources.subset(files, 5, seed=3)
    assert picked != sources.subset(files, 5, seed=4)
    assert sources.subset(files, None) == files and sources.subset(files, 50) == files


# === Inputs for colorizing ===


def test_bw_inputs_writes_colourless_copies_of_held_out_photos(tmp_path):
    write_photos(tmp_path / "photos", count=8)
    source = sources.data_source(tmp_path / "photos", min_test=3, log=lambda line: None)
    inputs = sources.bw_inputs(source, tmp_path / "bw", count=2)
    assert [rgb for _, rgb in inputs] == source.test[:2]
    for bw, rgb in inputs:
        lab = color.rgb_to_lab(io.read_rgb(bw))
        assert np.abs(lab[..., 1:]).max() < 1.0  # no colour left
        # the same lightness the network would see
        assert np.abs(lab[..., 0] - color.rgb_to_lab(io.read_rgb(rgb))[..., 0]).max() < 1.0


def test_bw_inputs_leave_out_an_unreadable_photo_and_keep_pairs_aligned(tmp_path):
    files = write_photos(tmp_path / "a", count=2) + write_photos(tmp_path / "b", count=2)
    broken = tmp_path / "c" / "broken.png"
    broken.parent.mkdir()
    broken.write_text("not a picture")
    source = sources.DataSource("folder", tmp_path, [], [files[0], broken, files[2]])
    lines = []
    inputs = sources.bw_inputs(source, tmp_path / "bw", count=3, log=lines.append)
    assert [rgb for _, rgb in inputs] == [files[0], files[2]]
    assert len({bw for bw, _ in inputs}) == 2  # the same file name from two folders: two copies
    for bw, rgb in inputs:
        assert np.abs(color.rgb_to_l(io.read_rgb(bw)) - color.rgb_to_l(io.read_rgb(rgb))).max() < 1.0
    assert len(lines) == 1 and "broken.png" in lines[0]


def test_bw_inputs_prefers_the_datasets_own_bw_photos(tmp_path):
    kaggle_layout(tmp_path / "dataset")
    source = sources.data_source(tmp_path / "dataset", log=lambda line: None)
    inputs = sources.bw_inputs(source, tmp_path / "bw", count=5)
    assert inputs == source.test_pairs and not (tmp_path / "bw").exists()


def test_colorized_rows_leave_out_inputs_without_an_output(tmp_path):
    inputs = [(tmp_path / "a.png", None), (tmp_path / "b.gif", tmp_path / "b_colour.png"), (tmp_path / "c.png", None)]
    for bw, _ in inputs[:2]:
        bw.write_bytes(b"x")  # c.png does not exist at all
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.png").write_bytes(b"x")  # a GIF input is colorized to PNG
    rows, names = sources.colorized_rows(inputs, tmp_path / "out")
    assert rows == [(tmp_path / "b.gif", tmp_path / "out" / "b.png", tmp_path / "b_colour.png")] and names == ["b"]


# === Weights ===


def test_choose_weights_keeps_imagenet_only_where_it_can_be_had(tmp_path, no_kaggle, monkeypatch):
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout: False)
    lines = []
    assert sources.choose_weights("imagenet", "mobilenet", log=lines.append) is None
    assert "cannot be downloaded" in lines[0] and "weights=None" in lines[0]
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / "mobilenet_1_0_224_tf.h5").write_bytes(b"")
    assert sources.choose_weights("imagenet", "mobilenet") == "imagenet"  # cached by Keras
    assert sources.choose_weights("imagenet", "inception_resnet_v2", log=lambda line: None) is None
    monkeypatch.setattr(sources, "_reachable", lambda host, timeout: True)
    assert sources.choose_weights("imagenet", "inception_resnet_v2") == "imagenet"


def test_choose_weights_passes_other_values_through():
    assert sources.choose_weights(None) is None and sources.choose_weights("none") is None
    assert sources.choose_weights("weights/my.h5") == "weights/my.h5"


# === make demo ===


def test_plan_epochs_repeats_a_few_photos_and_keeps_the_budget():
    repeat, epochs = demo.plan_epochs(5, batch_size=16, images=1440)
    assert 5 * repeat >= 48 and abs(epochs * 5 * repeat - 1440) <= 5 * repeat
    assert demo.plan_epochs(1000, batch_size=16, images=1440) == (1, 3)  # big folder: no repeat, a few epochs


@pytest.mark.slow
def test_run_demo_trains_colorizes_held_out_photos_and_writes_the_grid(tmp_path, no_kaggle, monkeypatch):
    monkeypatch.setenv("COLORFUSION_CACHE", str(tmp_path / "cache"))
    write_photos(tmp_path / "photos", count=8, sizes=(40, 64))
    lines = []
    result = demo.run_demo(tmp_path / "photos", tmp_path / "out", image_size=32, width=0.125, epochs=2,
                           weights="none", log=lines.append)
    assert result.grid == tmp_path / "out" / "before_after.png" and result.grid.read_bytes()[:4] == b"\x89PNG"
    assert (result.run_dir / "best.keras").is_file() and (result.run_dir / "previews").is_dir()
    assert len(result.heldout) == 3 and not set(result.heldout) & set(result.train_files)
    assert sorted(p.name for p in result.colorized) == sorted(f"{p.stem}.png" for p in result.heldout)
    assert result.weights is None and result.embedding is None
    text = "\n".join(lines)
    assert "No semantic branch" in text and str(result.grid) in text and str(result.run_dir) in text
    # A second demo replaces the first run instead of refusing to overwrite it.
    demo.run_demo(tmp_path / "photos", tmp_path / "out", image_size=32, width=0.125, epochs=1,
                  weights="none", log=lines.append)
    assert any("Replacing the previous demo run" in line for line in lines)


def test_demo_command_reports_a_missing_data_folder(tmp_path, capsys):
    assert demo.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 1
    assert "error:" in capsys.readouterr().err and not (tmp_path / "out" / "run").exists()
