"""Where the photos and the backbone weights come from, for the notebooks and `make demo`.

`data_source()` picks the photos, in this order, and prints one line saying
which it uses:

1. a folder you name (`DATA_DIR`, `DATA=DIR make demo`), in the Kaggle
   layout or any folder of colour photos;
2. the Kaggle dataset `aayush9753/image-colorization-dataset` mounted under
   `/kaggle/input` (a Kaggle notebook with the dataset attached);
3. a download of that dataset with kagglehub (or the kaggle client), when
   Kaggle credentials exist on this machine;
4. the colour photos that ship inside scikit-image and matplotlib (no
   network needed): enough to see the whole pipeline run, not to learn much.

`choose_weights()` keeps `weights="imagenet"` only where ImageNet weights
can be had (cached by Keras, or the download host answers), else says so
and gives None.

Example:

```python
source = data_source()                       # prints which photos it uses
inputs = bw_inputs(source, "out/bw", count=6)  # [(bw_path, colour_path)]
weights = choose_weights("imagenet", "mobilenet")
```
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorfusion import datasets, io

WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads weights from


@dataclass
class DataSource:
    """Photos to train and test on, and where they came from.

    Attributes:
        kind: "folder", "kaggle", "kagglehub" or "sample_photos".
        root: the folder the photos are under.
        train: colour photos to train on (sorted).
        test: held-out colour photos (sorted).
        test_pairs: `(bw_path, colour_path)` for held-out photos that come
            with a B&W version (the Kaggle dataset's `test_black`); may be empty.
        description: the line `data_source` printed.
    """

    kind: str
    root: Path
    train: list
    test: list
    test_pairs: list = field(default_factory=list)
    description: str = ""


def data_source(data_dir=None, *, kaggle_root=datasets.KAGGLE_INPUT, download=True, download_dir=None,
                sample_dir=None, test_fraction=0.1, min_test=2, seed=0, log=print) -> DataSource:
    """Find photos to work on (see the module docstring for the order) and say which.

    Args:
        data_dir: a folder of colour photos, or of the Kaggle layout; None
            looks for the Kaggle dataset, then downloads it, then falls back
            to the package-shipped photos.
        kaggle_root: where Kaggle mounts attached datasets.
        download: try a kagglehub download when Kaggle credentials exist.
        download_dir: where to download to (default: kagglehub's cache).
        sample_dir: where to write the package-shipped photos (default
            `~/.cache/colorfusion/sample_photos`).
        test_fraction, min_test: held-out share of a folder without a
            train / test layout, and the least number of held-out photos.
        seed: seed of that split.
        log: called with the one-line description.

    Raises:
        FileNotFoundError: `data_dir` is not a folder.
        ValueError: `data_dir` holds fewer than 3 photos.
    """
    if data_dir is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"DATA_DIR {str(root)!r} is not a folder")
        source = _from_layout("folder", datasets.find_kaggle_dataset(root))
        if source is None:
            source = _split_folder("folder", root, datasets.find_images(root), test_fraction, min_test, seed)
        return _announce(source, f"your folder {root}", log)
    source = _from_layout("kaggle", datasets.find_kaggle_dataset(kaggle_root))
    if source is not None:
        return _announce(source, f"the Kaggle dataset {datasets.KAGGLE_SLUG} under {kaggle_root}", log)
    why = f"no Kaggle dataset under {kaggle_root}"
    if download and has_kaggle_credentials():
        try:
            path = datasets.download_kaggle_dataset(datasets.KAGGLE_SLUG, dest=download_dir)
            source = _from_layout("kagglehub", datasets.find_kaggle_dataset(path))
            if source is not None:
                return _announce(source, f"the Kaggle dataset {datasets.KAGGLE_SLUG}, downloaded to {path}", log)
            why += f"; the download in {path} has no train_color / test_color folders"
        except datasets.DatasetDownloadError as e:
            why += f"; download failed ({str(e).splitlines()[0]})"
    elif download:
        why += "; no Kaggle credentials for a download"
    sample_dir = Path(sample_dir) if sample_dir is not None else None
    photos = datasets.sample_photos(sample_dir)
    source = _split_folder("sample_photos", photos[0].parent, photos, test_fraction, min_test, seed)
    return _announce(source, f"the {len(photos)} colour photos shipped with scikit-image and matplotlib "
                             f"(in {photos[0].parent}; {why})", log)


def _from_layout(kind, layout):
    if layout is None or not layout["train"] or not layout["test"]:
        return None
    return DataSource(kind, layout["root"], layout["train"], layout["test"], layout["test_pairs"])


def _split_folder(kind, root, files, test_fraction, min_test, seed) -> DataSource:
    if len(files) < 3:
        raise ValueError(f"{root}: {len(files)} photo(s) found; at least 3 are needed (train, validation, test)")
    n_test = min(max(min_test, round(len(files) * test_fraction)), len(files) - 2)
    train, test = datasets.split_files(files, val_fraction=n_test / len(files), seed=seed)
    return DataSource(kind, Path(root), train, test)


def _announce(source: DataSource, where: str, log) -> DataSource:
    source.description = f"Data: {where}: {len(source.train)} training and {len(source.test)} held-out photos"
    log(source.description)
    return source


def has_kaggle_credentials() -> bool:
    """Whether a Kaggle API token is set in the environment or in a config file."""
    if os.environ.get("KAGGLE_API_TOKEN") or (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")):
        return True
    home = Path.home()
    folders = [os.environ.get("KAGGLE_CONFIG_DIR"), home / ".kaggle",
               Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    return any((Path(f) / name).is_file() for f in folders if f for name in ("kaggle.json", "access_token"))


def subset(files, count=None, seed=0) -> list:
    """At most `count` of `files`, drawn at random (reproducibly), sorted; all when count is None."""
    files = sorted(files)
    if count is None or count >= len(files):
        return files
    keep = np.random.default_rng(seed).choice(len(files), size=count, replace=False)
    return [files[i] for i in sorted(keep)]


# === Inputs for colorizing ===


def bw_inputs(source: DataSource, dest, count=6, log=None) -> list[tuple[Path, Path | None]]:
    """B&W photos to colorize and their colour originals: `[(bw_path, colour_path)]`.

    The dataset's own B&W versions when it has them (Kaggle `test_black`);
    otherwise the held-out colour photos are turned into B&W (their L, as
    the network sees it) and written to `dest`. An unreadable photo gets one
    line in `log` (default: stderr) and is left out.
    """
    if source.test_pairs:
        return [(Path(bw), Path(rgb)) for bw, rgb in source.test_pairs[:count]]
    log = log or (lambda message: print(message, file=sys.stderr))
    pairs, taken = [], set()
    for original in source.test[:count]:
        try:
            pairs.append((_write_bw_copy(original, Path(dest), taken), original))
            taken.add(pairs[-1][0])
        except io.ImageReadError as e:
            log(f"skipped {e}")
    return pairs


def write_bw_copies(files, dest) -> list[Path]:
    """Write the B&W version (L only) of each colour photo to `dest` as PNG; return the paths."""
    written, taken = [], set()
    for f in files:
        written.append(_write_bw_copy(f, Path(dest), taken))
        taken.add(written[-1])
    return written


def _write_bw_copy(path, dest: Path, taken) -> Path:
    from colorfusion.evaluate import grayscale_baseline

    target = dest / f"{Path(path).stem}.png"
    number = 1
    while target in taken:  # photos of the same name from two folders must not overwrite each other
        number += 1
        target = dest / f"{Path(path).stem}_{number}.png"
    return io.write_image(target, grayscale_baseline(io.read_rgb(path)))


# === Backbone weights ===


def choose_weights(weights="imagenet", backbone="inception_resnet_v2", timeout=3.0, log=print):
    """`weights`, or None when "imagenet" cannot be had here; says so.

    ImageNet weights are usable when Keras already cached them or when the
    download host answers within `timeout` seconds (offline it fails at
    once). Any other value ("none", None, a file) is returned as given,
    "none" as None.
    """
    if weights in (None, "none", "None"):
        return None
    if weights != "imagenet":
        return weights
    if _keras_has_cached(backbone) or _reachable(WEIGHTS_HOST, timeout):
        return "imagenet"
    log(f"ImageNet weights for {backbone} cannot be downloaded here (no network): "
        f"using weights=None, a randomly initialised backbone")
    return None


def _keras_has_cached(backbone: str) -> bool:
    from colorfusion.embeddings import BACKBONES

    module = BACKBONES.get(backbone, (None, backbone))[1]
    models = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"
    return models.is_dir() and any(models.glob(f"{module}*.h5"))


def _reachable(host: str, timeout: float) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def colorized_rows(inputs, colorized_dir) -> tuple[list, list]:
    """Rows for `plots.before_after_figure`: `(bw, colorized, original)` paths, and names.

    Args:
        inputs: `(bw_path, original_path_or_None)` pairs, as `bw_inputs` gives.
        colorized_dir: where `colorize_folder` wrote the outputs; inputs
            without an output (unreadable files) are left out.
    """
    from colorfusion.colorize import plan_outputs

    rows, names = [], []
    for bw, original in inputs:
        planned = plan_outputs([bw], colorized_dir)  # empty for a missing input
        if planned and planned[0][1].is_file():
            rows.append((bw, planned[0][1], original))
            names.append(Path(bw).stem)
    return rows, names
