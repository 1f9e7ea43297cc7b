import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from photos import write_photos
from PIL import Image

from colorfusion import color, datasets, io


def _image(path, shape=(8, 12, 3), value=0):
    rgb = np.full(shape, value, np.uint8)
    return io.write_image(path, rgb)


# === find_images ===


def test_find_images_is_recursive_sorted_and_case_insensitive(tmp_path):
    _image(tmp_path / "b" / "z.JPG")
    _image(tmp_path / "a.png")
    _image(tmp_path / "b" / "c" / "y.Jpeg")
    (tmp_path / "notes.txt").write_text("not an image")
    _image(tmp_path / ".hidden" / "x.png")
    _image(tmp_path / ".dot.png")

    found = datasets.find_images(tmp_path)

    assert found == [tmp_path / "a.png", tmp_path / "b" / "c" / "y.Jpeg", tmp_path / "b" / "z.JPG"]


def test_find_images_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        datasets.find_images(tmp_path / "missing")


# === splits ===


def test_split_files_is_reproducible_disjoint_and_complete():
    files = [Path(f"img{i:03d}.jpg") for i in range(50)]

    train, val = datasets.split_files(files, val_fraction=0.2, seed=3)
    again = datasets.split_files(list(reversed(files)), val_fraction=0.2, seed=3)
    other = datasets.split_files(files, val_fraction=0.2, seed=4)

    assert (train, val) == again
    assert len(val) == 10 and len(train) == 40
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(files)
    assert train == sorted(train) and val == sorted(val)
    assert other[1] != val


def test_split_files_keeps_one_validation_file_for_tiny_sets():
    train, val = datasets.split_files(["a.png", "b.png", "c.png"], val_fraction=0.1, seed=0)
    assert len(val) == 1 and len(train) == 2


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_files_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        datasets.split_files(["a.png"], val_fraction=fraction)


def test_read_split_file_resolves_paths_and_split_names(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        _image(tmp_path / "photos" / name)
    split = tmp_path / "photos" / "SPLIT.tsv"
    split.write_text("path\tsplit\n# comment\na.jpg\ttrain\nb.jpg\tval\n\nc.jpg\tTest\nd.jpg\ttrain\n")

    train, val = datasets.read_split_file(split)

    assert train == [tmp_path / "photos" / "a.jpg", tmp_path / "photos" / "d.jpg"]
    assert val == [tmp_path / "photos" / "b.jpg", tmp_path / "photos" / "c.jpg"]


def test_read_split_file_with_root_and_missing_files_warns(tmp_path):
    split = tmp_path / "split.tsv"
    split.write_text("x/a.jpg\ttrain\nx/b.jpg\tval\n")
    with pytest.warns(UserWarning, match="2 listed file"):
        train, val = datasets.read_split_file(split, root=tmp_path / "elsewhere")
    assert train == [tmp_path / "elsewhere" / "x" / "a.jpg"]
    assert val == [tmp_path / "elsewhere" / "x" / "b.jpg"]


@pytest.mark.parametrize("line", ["a.jpg\tholdout\n", "a.jpg train\n"])
def test_read_split_file_rejects_bad_lines(tmp_path, line):
    split = tmp_path / "split.tsv"
    split.write_text(line)
    with pytest.raises(ValueError, match=r"split\.tsv:1"):
        datasets.read_split_file(split)


# === Kaggle layout ===


def _fake_kaggle_tree(root):
    data = root / "image-colorization-dataset" / "data"
    for split in ("train", "test"):
        for i in range(3):
            _image(data / f"{split}_color" / f"image{i}.jpg", value=10 * i)
        for i in range(2):  # gray folder with one file fewer: pairs by name
            _image(data / f"{split}_black" / f"image{i}.jpg", value=10 * i)
    _image(data / "test_black" / "orphan.jpg")
    (root / "other-dataset" / "deep" / "er").mkdir(parents=True)
    return data


def test_find_kaggle_dataset_detects_the_layout(tmp_path):
    data = _fake_kaggle_tree(tmp_path / "input")

    layout = datasets.find_kaggle_dataset(tmp_path / "input")

    assert layout["root"] == data
    assert layout["train"] == [data / "train_color" / f"image{i}.jpg" for i in range(3)]
    assert layout["test"] == [data / "test_color" / f"image{i}.jpg" for i in range(3)]
    assert layout["test_pairs"] == [
        (data / "test_black" / f"image{i}.jpg", data / "test_color" / f"image{i}.jpg") for i in range(2)
    ]
    assert len(layout["train_pairs"]) == 2


def test_find_kaggle_dataset_returns_none_without_the_layout(tmp_path):
    (tmp_path / "a" / "train_color").mkdir(parents=True)  # no test_color beside it
    assert datasets.find_kaggle_dataset(tmp_path) is None
    assert datasets.find_kaggle_dataset(tmp_path / "does-not-exist") is None



# The dataset as Kaggle mounts it: data/{train,test}_{color,black}/imageNNNN.jpg, the
# same name in the colour and black folders, square 400 x 400 photos (here 40 x 40),
# some black images single-channel (mode L). The real one has 5000 + 739 pairs.
_SLUG_OWNER, _SLUG_NAME = datasets.KAGGLE_SLUG.split("/")


def _real_layout(data, train_numbers=(1, 2, 3), test_numbers=(5001, 5002), side=40):
    rng = np.random.default_rng(0)
    for split, numbers in (("train", train_numbers), ("test", test_numbers)):
        for k, number in enumerate(numbers):
            name = f"image{number:04d}.jpg"
            rgb = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            io.write_image(data / f"{split}_color" / name, rgb)
            gray = np.repeat(rgb.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
            black = data / f"{split}_black" / name
            black.parent.mkdir(parents=True, exist_ok=True)
            if k % 2 == 0:  # single channel, as some of the real black images are
                Image.fromarray(gray[..., 0]).save(black)
            else:
                Image.fromarray(gray).save(black)
    return data


@pytest.mark.parametrize("mount", [
    ("datasets", _SLUG_OWNER, _SLUG_NAME),  # notebooks of 2026
    (_SLUG_NAME,),                          # older notebooks
    ("datasets", _SLUG_OWNER, _SLUG_NAME, "versions", "3"),
])
def test_find_kaggle_dataset_finds_both_kaggle_mounts_and_pairs_by_name(tmp_path, mount):
    kaggle_input = tmp_path / "input"
    data = _real_layout(kaggle_input.joinpath(*mount) / "data")
    (kaggle_input / "datasets" / "other" / "photos" / "a" / "b").mkdir(parents=True)

    layout = datasets.find_kaggle_dataset(kaggle_input)

    assert layout["root"] == data
    assert [f.name for f in layout["train"]] == ["image0001.jpg", "image0002.jpg", "image0003.jpg"]
    assert [(g.name, c.name) for g, c in layout["test_pairs"]] == [
        ("image5001.jpg", "image5001.jpg"), ("image5002.jpg", "image5002.jpg")]
    assert all(g.parent.name == "train_black" and c.parent.name == "train_color" for g, c in layout["train_pairs"])
    modes = {Image.open(g).mode for g, _ in layout["train_pairs"]}
    assert modes == {"L", "RGB"}
    for gray, colour in layout["train_pairs"]:  # single-channel or not, both read as RGB of the same size
        assert io.read_rgb(gray).shape == io.read_rgb(colour).shape == (40, 40, 3)


def test_find_kaggle_dataset_stops_at_its_depth(tmp_path):
    _real_layout(tmp_path.joinpath(*"abcdefg") / "data")  # 8 levels below the root
    assert datasets.find_kaggle_dataset(tmp_path) is None
    assert datasets.find_kaggle_dataset(tmp_path / "a" / "b") is not None


# === run folders ===


def _run_folder(folder, checkpoint="best.keras", mtime=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / checkpoint).write_bytes(b"PK")
    (folder / "previews").mkdir()
    if mtime is not None:
        os.utime(folder / checkpoint, (mtime, mtime))
    return folder


def test_find_run_folders_finds_runs_of_attached_notebooks_newest_first(tmp_path):
    kaggle_input = tmp_path / "input"
    new = _run_folder(kaggle_input / "notebooks" / "me" / "colorfusion-train-classification" / "runs"
                      / "classification", mtime=3_000_000)
    old_layout = _run_folder(kaggle_input / "colorfusion-train-regression" / "runs" / "regression",
                             checkpoint="last.keras", mtime=1_000_000)
    middle = _run_folder(kaggle_input / "notebooks" / "me" / "colorfusion-train-regression" / "runs" / "regression",
                         mtime=2_000_000)
    # Not runs: a config without a checkpoint, a checkpoint without a config, the dataset.
    (kaggle_input / "notebooks" / "me" / "explore" / "runs" / "explore").mkdir(parents=True)
    (kaggle_input / "notebooks" / "me" / "explore" / "runs" / "explore" / "config.json").write_text("{}")
    (kaggle_input / "notebooks" / "me" / "bare").mkdir(parents=True)
    (kaggle_input / "notebooks" / "me" / "bare" / "best.keras").write_bytes(b"PK")
    _real_layout(kaggle_input / "datasets" / _SLUG_OWNER / _SLUG_NAME / "data")

    assert datasets.find_run_folders(kaggle_input) == [new, middle, old_layout]


def test_find_run_folders_does_not_look_inside_a_run_and_is_empty_elsewhere(tmp_path):
    outer = _run_folder(tmp_path / "run", mtime=1_000_000)
    _run_folder(outer / "previews" / "nested", mtime=2_000_000)  # inside a run: not a separate run
    assert datasets.find_run_folders(tmp_path) == [outer]
    assert datasets.find_run_folders(tmp_path / "missing") == []
    (tmp_path / "empty").mkdir()
    assert datasets.find_run_folders(tmp_path / "empty") == []


# === download ===


def _block_clients(monkeypatch):
    for name in ("kagglehub", "kaggle", "kaggle.api", "kaggle.api.kaggle_api_extended"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_download_without_any_client_says_how_to_get_the_data(monkeypatch, tmp_path):
    _block_clients(monkeypatch)
    with pytest.raises(RuntimeError) as info:
        datasets.download_kaggle_dataset(dest=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, datasets.DatasetDownloadError)
    for needle in (
        "https://www.kaggle.com/datasets/aayush9753/image-colorization-dataset",
        "pip install kagglehub",
        "~/.kaggle/kaggle.json",
        "KAGGLE_USERNAME",
        "--data DIR",
    ):
        assert needle in message


def test_download_network_failure_becomes_one_clear_error(monkeypatch, tmp_path):
    _block_clients(monkeypatch)

    def dataset_download(handle):
        raise ConnectionError("no route to host")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=dataset_download))
    with pytest.raises(datasets.DatasetDownloadError, match="no route to host") as info:
        datasets.download_kaggle_dataset("owner/name", dest=tmp_path)
    assert "https://www.kaggle.com/datasets/owner/name" in str(info.value)


def test_download_with_kagglehub_copies_into_dest(monkeypatch, tmp_path):
    _block_clients(monkeypatch)
    cached = _fake_kaggle_tree(tmp_path / "kagglehub-cache").parent.parent

    def dataset_download(handle):
        assert handle == datasets.KAGGLE_SLUG
        return str(cached)

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=dataset_download))
    dest = datasets.download_kaggle_dataset(dest=tmp_path / "dest")
    layout = datasets.find_kaggle_dataset(dest)
    assert dest == tmp_path / "dest" and layout is not None and len(layout["train"]) == 3


# === photos ===


def test_sample_photos_writes_readable_colour_photos_once(tmp_path):
    paths = datasets.sample_photos(tmp_path)

    names = {p.name for p in paths}
    assert {"astronaut.png", "chelsea.png", "coffee.png", "grace_hopper.jpg"} <= names
    assert len(paths) >= 8
    for path in paths:
        lab = color.rgb_to_lab(io.read_rgb(path))
        assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 5, path  # colour, not gray
    mtimes = [p.stat().st_mtime_ns for p in paths]
    assert datasets.sample_photos(tmp_path) == paths
    assert [p.stat().st_mtime_ns for p in paths] == mtimes


def test_load_image_decodes_big_jpegs_smaller_but_not_below_min_side(tmp_path):
    rng = np.random.default_rng(0)
    path = io.write_image(tmp_path / "big.jpg", rng.integers(0, 255, (600, 900, 3), dtype=np.uint8))

    small = datasets.load_image(path, min_side=64)
    full = datasets.load_image(path)

    assert full.shape == (600, 900, 3)
    assert 64 <= min(small.shape[:2]) < 600
    assert abs(small.shape[1] / small.shape[0] - 1.5) < 0.05


def test_load_image_reports_unreadable_files(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(io.ImageReadError, match="bad.jpg"):
        datasets.load_image(bad, min_side=32)


def kaggle_layout(root, train=6, test=3):
    data = root / "data"
    write_photos(data / "train_color", count=train, seed=1)
    test_files = write_photos(data / "test_color", count=test, seed=2)
    for f in test_files:  # the dataset's own B&W versions: same names
        io.write_image(data / "test_black" / f.name, color.gray_version(io.read_rgb(f)))
    return data


# === data_source ===


def test_data_source_splits_a_plain_folder_and_says_so(tmp_path):
    write_photos(tmp_path / "photos", count=10)
    lines = []
    source = datasets.data_source(tmp_path / "photos", min_test=3, log=lines.append)
    assert source.kind == "folder" and len(source.test) == 3 and len(source.train) == 7
    assert not set(source.train) & set(source.test) and source.test_pairs == []
    assert len(lines) == 1 and str(tmp_path / "photos") in lines[0] and "7 training and 3 held-out" in lines[0]


def test_data_source_uses_the_kaggle_layout_of_a_given_folder_with_its_bw_pairs(tmp_path):
    data = kaggle_layout(tmp_path / "dataset")
    source = datasets.data_source(tmp_path / "dataset", log=lambda line: None)
    assert source.root == data and len(source.train) == 6 and len(source.test) == 3
    assert [(bw.parent.name, rgb.parent.name) for bw, rgb in source.test_pairs] == [("test_black", "test_color")] * 3


def test_data_source_finds_the_kaggle_mount_first(tmp_path, no_kaggle):
    kaggle_layout(tmp_path / "input" / "image-colorization-dataset")
    lines = []
    source = datasets.data_source(kaggle_root=tmp_path / "input", log=lines.append)
    assert source.kind == "kaggle" and "aayush9753/image-colorization-dataset" in lines[0]


def test_data_source_falls_back_to_the_package_photos_without_kaggle(tmp_path, no_kaggle):
    lines = []
    source = datasets.data_source(kaggle_root=no_kaggle, sample_dir=tmp_path / "samples", log=lines.append)
    assert source.kind == "sample_photos" and source.root == tmp_path / "samples"
    assert len(source.train) + len(source.test) >= 6 and len(source.test) >= 2
    assert "shipped with scikit-image and matplotlib" in lines[0] and "no Kaggle credentials" in lines[0]


def test_data_source_downloads_with_credentials_and_falls_back_when_that_fails(tmp_path, no_kaggle, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    kaggle_layout(tmp_path / "downloaded")
    monkeypatch.setattr(datasets, "download_kaggle_dataset", lambda slug, dest=None: tmp_path / "downloaded")
    assert datasets.data_source(kaggle_root=no_kaggle, log=lambda line: None).kind == "kagglehub"

    def fail(slug, dest=None):
        raise datasets.DatasetDownloadError("Could not download: no network.\nmore help")

    monkeypatch.setattr(datasets, "download_kaggle_dataset", fail)
    lines = []
    source = datasets.data_source(kaggle_root=no_kaggle, sample_dir=tmp_path / "samples", log=lines.append)
    assert source.kind == "sample_photos" and "download failed (Could not download: no network.)" in lines[0]


def test_data_source_rejects_a_missing_folder_and_too_few_photos(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        datasets.data_source(tmp_path / "missing")
    write_photos(tmp_path / "two", count=2)
    with pytest.raises(ValueError, match="2 photo"):
        datasets.data_source(tmp_path / "two")


def test_kaggle_credentials_come_from_the_environment_or_a_token_file(tmp_path, no_kaggle, monkeypatch):
    assert not datasets.has_kaggle_credentials()
    monkeypatch.setenv("KAGGLE_USERNAME", "me")
    assert not datasets.has_kaggle_credentials()  # a user name alone is no credential
    monkeypatch.setenv("KAGGLE_KEY", "key")
    assert datasets.has_kaggle_credentials()
    monkeypatch.delenv("KAGGLE_USERNAME")
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text("{}")
    assert datasets.has_kaggle_credentials()


def test_subset_is_reproducible_sorted_and_at_most_count():
    files = [f"f{i:02d}.png" for i in range(20)]
    picked = datasets.subset(files[::-1], 5, seed=3)
    assert picked == sorted(picked) and len(set(picked)) == 5 and picked == datasets.subset(files, 5, seed=3)
    assert picked != datasets.subset(files, 5, seed=4)
    assert datasets.subset(files, None) == files and datasets.subset(files, 50) == files


# === Inputs for colorizing ===


def test_bw_inputs_writes_colourless_copies_of_held_out_photos(tmp_path):
    write_photos(tmp_path / "photos", count=8)
    source = datasets.data_source(tmp_path / "photos", min_test=3, log=lambda line: None)
    inputs = datasets.bw_inputs(source, tmp_path / "bw", count=2)
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
    source = datasets.DataSource("folder", tmp_path, [], [files[0], broken, files[2]])
    lines = []
    inputs = datasets.bw_inputs(source, tmp_path / "bw", count=3, log=lines.append)
    assert [rgb for _, rgb in inputs] == [files[0], files[2]]
    assert len({bw for bw, _ in inputs}) == 2  # the same file name from two folders: two copies
    for bw, rgb in inputs:
        assert np.abs(color.rgb_to_l(io.read_rgb(bw)) - color.rgb_to_l(io.read_rgb(rgb))).max() < 1.0
    assert len(lines) == 1 and "broken.png" in lines[0]


def test_bw_inputs_prefers_the_datasets_own_bw_photos(tmp_path):
    kaggle_layout(tmp_path / "dataset")
    source = datasets.data_source(tmp_path / "dataset", log=lambda line: None)
    inputs = datasets.bw_inputs(source, tmp_path / "bw", count=5)
    assert inputs == source.test_pairs and not (tmp_path / "bw").exists()
