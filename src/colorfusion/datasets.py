"""Where photos come from: image files, splits, the Kaggle dataset, the photos shipped with packages.

Everything here returns plain lists of `pathlib.Path`, sorted, so that a
split or a file list is the same on every machine and every run. It is one
idea, where photos come from, in one file of over 500 lines: its sections
are the sources in the order `data_source` tries them, and none is used
without the others.

`data_source()` is what the notebooks and `make demo` call: it picks the
photos, in this order, and prints one line saying which it uses:

1. a folder you name (`DATA_DIR`, `DATA=DIR make demo`), in the Kaggle
   layout or any folder of colour photos;
2. the Kaggle dataset `aayush9753/image-colorization-dataset` mounted under
   `/kaggle/input` (a Kaggle notebook with the dataset attached);
3. a download of that dataset with kagglehub (or the kaggle client), when
   Kaggle credentials exist on this machine;
4. the colour photos that ship inside scikit-image and matplotlib
   (`sample_photos`, no network needed): enough to see the whole pipeline
   run, not to learn much.

The Kaggle dataset `aayush9753/image-colorization-dataset` has this layout
(the `*_black` folders hold gray versions of the colour photos, same file
names, used as paired inputs for evaluation):

```
data/train_color/  data/train_black/  data/test_color/  data/test_black/
```

On Kaggle an attached dataset is mounted under
`/kaggle/input/datasets/<owner>/<slug>/` (notebooks created before 2026:
`/kaggle/input/<slug>/`), and another notebook's output attached as input
under `/kaggle/input/notebooks/<owner>/<slug>/`. `find_kaggle_dataset` finds
the dataset under either layout (or under any folder) without being told the
exact path; `find_run_folders` finds the training runs of attached notebooks.

Example:

```python
files = find_images("photos/")
train, val = split_files(files, val_fraction=0.1, seed=0)
layout = find_kaggle_dataset()          # None when not on Kaggle
if layout:
    train, val = layout["train"], layout["test"]
runs = find_run_folders()               # [] when no training notebook is attached
```
"""

from __future__ import annotations

import inspect
import math
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from colorfusion import color, io
from colorfusion.errors import UsageError
from colorfusion.runs import RunFolder

KAGGLE_SLUG = "aayush9753/image-colorization-dataset"
KAGGLE_INPUT = "/kaggle/input"

_VAL_NAMES = ("val", "valid", "validation", "test")
# Folder levels searched below the root: /kaggle/input/datasets/<owner>/<slug>/data
# is 4; the margin covers a dataset that nests its data one or two folders deeper.
_SEARCH_DEPTH = 6
# /kaggle/input/notebooks/<owner>/<slug>/runs/<name> is 5; a notebook may write deeper.
_RUN_SEARCH_DEPTH = 8


def find_images(root) -> list[Path]:
    """All image files under `root`, recursively, sorted.

    Extensions are matched case-insensitively (`io.IMAGE_EXTENSIONS`); hidden
    files and folders (such as `.ipynb_checkpoints`) are skipped.

    Args:
        root: a folder (or a single image file, returned as a one-item list).

    Raises:
        FileNotFoundError: `root` does not exist.
    """
    root = Path(root)
    if root.is_file():
        return [root] if io.is_image_file(root) else []
    if not root.is_dir():
        raise FileNotFoundError(f"No such folder: {str(root)!r}")
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder) / n for n in names if not n.startswith(".") and io.is_image_file(n))
    return sorted(found)


def split_files(files, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Split files into (train, val), reproducibly.

    The files are sorted first, so the split depends only on the set of
    files, `val_fraction` and `seed`, not on the order they were listed in.

    Args:
        files: paths.
        val_fraction: share of files for validation, in [0, 1); at least one
            validation file when the fraction is positive and there are two
            files or more.
        seed: seed of the permutation.

    Returns:
        `(train, val)`, each sorted.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction!r}")
    files = sorted(Path(f) for f in files)
    n_val = int(round(len(files) * val_fraction))
    if val_fraction > 0 and len(files) >= 2:
        n_val = min(max(n_val, 1), len(files) - 1)
    order = np.random.default_rng(seed).permutation(len(files))
    val_idx = set(order[:n_val].tolist())
    train = [f for i, f in enumerate(files) if i not in val_idx]
    val = [f for i, f in enumerate(files) if i in val_idx]
    return train, val


def read_split_file(path, root=None) -> tuple[list[Path], list[Path]]:
    """Read a split file of `path<TAB>split` lines into (train, val).

    A header line `path<TAB>split`, blank lines and `#` comments are skipped.
    Splits named val, valid, validation or test count as validation.
    Relative paths are resolved against `root` (by default the folder of the
    split file). Files listed but missing are kept and reported in one
    warning; the generator replaces unreadable files at run time.

    Raises:
        UsageError: a line without a tab or with an unknown split name (a `ValueError`).
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    train, val, missing = [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 2:
            raise UsageError(f"{path}:{number}: expected 'path<TAB>split'. Received: line={line!r}")
        name, split = parts[0].strip(), parts[1].strip().lower()
        if number == 1 and (name.lower(), split) == ("path", "split"):
            continue
        file = Path(name) if Path(name).is_absolute() else root / name
        if split == "train":
            train.append(file)
        elif split in _VAL_NAMES:
            val.append(file)
        else:
            raise UsageError(f"{path}:{number}: split must be train or val. Received: split={parts[1]!r}")
        if not file.exists():
            missing.append(file)
    if missing:
        warnings.warn(
            f"{path}: {len(missing)} listed file(s) do not exist (first: {missing[0]})", stacklevel=2
        )
    return train, val


def load_image(path, min_side: int | None = None) -> np.ndarray:
    """Read a photo as uint8 RGB, decoding no more pixels than needed.

    With `min_side`, a photo much larger than needed (long side over twice
    what a short side of `min_side` requires) is decoded at a reduced scale
    (JPEG draft mode, see `io.read_rgb`); its short side stays >= `min_side`
    up to rounding. Smaller photos are read as they are (upscaling is the
    caller's job).

    Raises:
        io.ImageReadError: the file cannot be read (the message says why).
    """
    if min_side is None:
        return io.read_rgb(path)
    try:
        with Image.open(path) as im:
            width, height = im.size
    except Exception:  # noqa: BLE001 - read_rgb below gives the proper error
        return io.read_rgb(path)
    if min(width, height) <= 0:
        return io.read_rgb(path)
    needed = math.ceil(min_side * max(width, height) / min(width, height))
    if max(width, height) > 2 * needed:
        return io.read_rgb(path, max_side=needed)
    return io.read_rgb(path)


# === The Kaggle dataset ===


def find_kaggle_dataset(root=KAGGLE_INPUT) -> dict | None:
    """Find the `image-colorization-dataset` layout under `root`.

    Looks (breadth first, up to 6 folder levels deep, folders only) for a
    folder holding both `train_color` and `test_color`, so both Kaggle
    mounts are found: `/kaggle/input/datasets/<owner>/<slug>/data` and the
    older `/kaggle/input/<slug>/data`. The shallowest match wins; among
    equally deep ones, the first by name.

    Returns:
        None when not found, else a dict: `root` (the folder holding them),
        `train` and `test` (sorted colour files), `train_pairs` and
        `test_pairs` (lists of `(gray_path, color_path)` for the files of
        `train_black` / `test_black` that have a colour file of the same
        name; empty when those folders are absent).
    """
    data = next((folder for folder, subdirs in _walk_folders(Path(root), _SEARCH_DEPTH)
                 if "train_color" in subdirs and "test_color" in subdirs), None)
    if data is None:
        return None
    layout = {"root": data}
    for split in ("train", "test"):
        color_files = find_images(data / f"{split}_color")
        layout[split] = color_files
        gray_dir = data / f"{split}_black"
        pairs = []
        if gray_dir.is_dir():
            by_name = {f.relative_to(data / f"{split}_color"): f for f in color_files}
            for gray in find_images(gray_dir):
                match = by_name.get(gray.relative_to(gray_dir))
                if match is not None:
                    pairs.append((gray, match))
        layout[f"{split}_pairs"] = pairs
    return layout


def find_run_folders(root=KAGGLE_INPUT) -> list[Path]:
    """Training-run folders under `root`, newest first.

    A run folder holds `config.json` and `best.keras` or `last.keras` (what
    `training.train` writes). On Kaggle, the output of a training notebook
    attached as input is under `/kaggle/input/notebooks/<owner>/<slug>/`
    (older notebooks: `/kaggle/input/<slug>/`); both are found, up to 8
    folder levels below `root`. A run folder's own subfolders (previews/)
    are not searched.

    Returns:
        The folders, the most recently written checkpoint first (ties by
        path); [] when there is none or `root` does not exist.
    """
    runs = []
    for folder, _ in _walk_folders(Path(root), _RUN_SEARCH_DEPTH, stop=_is_run_folder):
        if _is_run_folder(folder):
            runs.append(folder)
    return sorted(runs, key=lambda run: (-RunFolder(run).newest_checkpoint_time(), str(run)))


def _is_run_folder(folder: Path) -> bool:
    return RunFolder(folder).is_run()


def _walk_folders(root: Path, depth: int, stop=None):
    """Yield `(folder, sorted subfolder names)` breadth first, `depth` levels below `root`.

    Hidden folders and the dataset's image folders (`*_color`, `*_black`:
    thousands of files, never a layout or run root) are not entered, nor are
    folders for which `stop(folder)` is true. Unreadable folders are skipped.
    """
    level = [root]
    for remaining in range(depth, -1, -1):
        below = []
        for folder in level:
            try:
                subdirs = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
            except OSError:
                continue
            yield folder, subdirs
            if remaining and not (stop is not None and stop(folder)):
                below.extend(folder / name for name in subdirs if not name.endswith(("_color", "_black")))
        level = below


class DatasetDownloadError(RuntimeError):
    """The dataset could not be downloaded; the message says how to get it."""


def _how_to_get(slug: str, reason: str) -> str:
    return (
        f"Could not download the Kaggle dataset {slug!r}: {reason}.\n"
        f"To get the data, either:\n"
        f"  - run on Kaggle with the dataset attached (https://www.kaggle.com/datasets/{slug}); "
        f"it is then found under {KAGGLE_INPUT};\n"
        f"  - or `pip install kagglehub` (or `kaggle`), put your API token in ~/.kaggle/kaggle.json "
        f"or set KAGGLE_USERNAME and KAGGLE_KEY, and retry with network access;\n"
        f"  - or download it by hand from https://www.kaggle.com/datasets/{slug} and pass --data DIR "
        f"(any folder of colour photos works)."
    )


def download_kaggle_dataset(slug: str = KAGGLE_SLUG, dest=None) -> Path:
    """Download a Kaggle dataset with kagglehub, or else the kaggle client.

    Neither package is required by colorfusion: they are imported here only.

    Args:
        slug: `owner/name` of the dataset.
        dest: folder to put the files in. With kagglehub and no `dest`, the
            files stay in kagglehub's cache.

    Returns:
        The folder holding the downloaded files (`find_kaggle_dataset` on it
        finds the layout).

    Raises:
        DatasetDownloadError: no client installed, no credentials, or no
            network; the message says how to get the data.
    """
    try:
        import kagglehub
    except ImportError:
        kagglehub = None
    if kagglehub is not None:
        try:
            return _download_with_kagglehub(kagglehub, slug, dest)
        except Exception as e:
            raise DatasetDownloadError(_how_to_get(slug, f"kagglehub failed ({type(e).__name__}: {e})")) from e
    try:
        # `import kaggle` authenticates at import time and raises without credentials.
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise DatasetDownloadError(_how_to_get(slug, "neither kagglehub nor kaggle is installed")) from None
    except Exception as e:
        raise DatasetDownloadError(_how_to_get(slug, f"kaggle client failed ({type(e).__name__}: {e})")) from e
    dest = Path(dest) if dest is not None else Path.cwd() / slug.split("/")[-1]
    try:
        api = KaggleApi()
        api.authenticate()
        api.dataset_download_files(slug, path=str(dest), unzip=True, quiet=False)
    except Exception as e:
        raise DatasetDownloadError(_how_to_get(slug, f"kaggle client failed ({type(e).__name__}: {e})")) from e
    return dest


def _download_with_kagglehub(kagglehub, slug: str, dest) -> Path:
    download = kagglehub.dataset_download
    if dest is not None and "output_dir" in inspect.signature(download).parameters:
        return Path(download(slug, output_dir=str(dest)))
    path = Path(download(slug))
    if dest is None:
        return path
    # Older kagglehub versions only download into their cache: copy out.
    dest = Path(dest)
    shutil.copytree(path, dest, dirs_exist_ok=True)
    return dest


# === Photos shipped with packages ===

# skimage.data loaders of colour photos whose files ship with scikit-image
# (others need a download through pooch and are skipped when offline).
_SKIMAGE_PHOTOS = (
    ("astronaut", "astronaut.png"),
    ("chelsea", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("rocket", "rocket.jpg"),
    ("immunohistochemistry", "immunohistochemistry.png"),
    ("retina", "retina.jpg"),
    ("stereo_motorcycle", "motorcycle_left.png"),
)
# hubble_deep_field is left out: mostly black sky, a mean chroma under 3.


def sample_photos(dest=None) -> list[Path]:
    """Write the colour photos that ship inside installed packages; return their paths.

    scikit-image's astronaut, chelsea, coffee, rocket, immunohistochemistry,
    retina and stereo_motorcycle (left image), plus
    matplotlib's grace_hopper.jpg. Files are written once; later calls only
    return the paths. A photo that is not available offline is skipped.

    Args:
        dest: folder; default `cache.io.cache_root() / "sample_photos"`
            (`$XDG_CACHE_HOME` is honoured).

    Returns:
        Sorted paths of the photos written (or already there).
    """
    dest = Path(dest) if dest is not None else io.cache_root() / "sample_photos"
    paths = []
    for loader, name in _SKIMAGE_PHOTOS:
        target = dest / name
        if not target.exists():
            rgb = _load_skimage_photo(loader)
            if rgb is None:
                continue
            io.write_image(target, rgb)
        paths.append(target)
    target = dest / "grace_hopper.jpg"
    if not target.exists():
        try:
            from matplotlib import cbook

            source = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
            with open(source, "rb") as src, io.atomic_write(target) as out:
                shutil.copyfileobj(src, out)
        except (ImportError, OSError, ValueError):
            target = None
    if target is not None:
        paths.append(target)
    return sorted(paths)


def _load_skimage_photo(loader: str):
    try:
        from skimage import data

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = getattr(data, loader)()
    except Exception:  # noqa: BLE001 - missing loader, or a pooch download that fails offline
        return None
    if isinstance(rgb, tuple):  # stereo_motorcycle -> (left, right, disparity)
        rgb = rgb[0]
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        return None
    return rgb


# === Choosing the photos (notebooks, demo) ===


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
        where: where the photos came from, as that line says it.
    """

    kind: str
    root: Path
    train: list
    test: list
    test_pairs: list = field(default_factory=list)
    description: str = ""
    where: str = ""


def data_source(data_dir=None, *, kaggle_root=KAGGLE_INPUT, download=True, download_dir=None,
                sample_dir=None, test_fraction=0.1, min_test=2, seed=0, log=print) -> DataSource:
    """Find photos to work on (see the module docstring for the order) and say which.

    Args:
        data_dir: a folder of colour photos, or of the Kaggle layout; None
            looks for the Kaggle dataset, then downloads it, then falls back
            to the package-shipped photos.
        kaggle_root: where Kaggle mounts attached
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
        source = _from_layout("folder", find_kaggle_dataset(root))
        if source is None:
            source = _split_folder("folder", root, find_images(root), test_fraction, min_test, seed)
        return _announce(source, f"your folder {root}", log)
    source = _from_layout("kaggle", find_kaggle_dataset(kaggle_root))
    if source is not None:
        return _announce(source, f"the Kaggle dataset {KAGGLE_SLUG} under {kaggle_root}", log)
    why = f"no Kaggle dataset under {kaggle_root}"
    if download and has_kaggle_credentials():
        try:
            path = download_kaggle_dataset(KAGGLE_SLUG, dest=download_dir)
            source = _from_layout("kagglehub", find_kaggle_dataset(path))
            if source is not None:
                return _announce(source, f"the Kaggle dataset {KAGGLE_SLUG}, downloaded to {path}", log)
            why += f"; the download in {path} has no train_color / test_color folders"
        except DatasetDownloadError as e:
            why += f"; download failed ({str(e).splitlines()[0]})"
    elif download:
        why += "; no Kaggle credentials for a download"
    sample_dir = Path(sample_dir) if sample_dir is not None else None
    photos = sample_photos(sample_dir)
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
    train, test = split_files(files, val_fraction=n_test / len(files), seed=seed)
    return DataSource(kind, Path(root), train, test)


def _announce(source: DataSource, where: str, log) -> DataSource:
    source.where = where
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


def _write_bw_copy(path, dest: Path, taken) -> Path:
    target = dest / f"{Path(path).stem}.png"
    number = 1
    while target in taken:  # photos of the same name from two folders must not overwrite each other
        number += 1
        target = dest / f"{Path(path).stem}_{number}.png"
    return io.write_image(target, color.gray_version(io.read_rgb(path)))
