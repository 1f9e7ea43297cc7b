"""Colour photos that ship inside installed packages, for demos without a dataset.

scikit-image bundles a few colour photos in its wheel (others are downloaded
on first use through pooch, which fails offline, and are not used here);
matplotlib bundles `grace_hopper.jpg`. `sample_photos()` writes them once to
a folder and returns their paths, so notebooks and the demo always have real
photos to show.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np

from colorfusion import io
from colorfusion.cache import cache_root

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
        dest: folder; default `cache.cache_root() / "sample_photos"`
            (`$XDG_CACHE_HOME` is honoured).

    Returns:
        Sorted paths of the photos written (or already there).
    """
    dest = Path(dest) if dest is not None else cache_root() / "sample_photos"
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
