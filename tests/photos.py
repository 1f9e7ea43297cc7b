"""Tiny generated colour photos for tests: smooth gradients with random hues."""

from pathlib import Path

import numpy as np

from colorfusion import io


def make_photo(rng, height, width) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    base = rng.integers(0, 256, 3)
    slope = rng.integers(60, 200, 3)
    channels = [(base[0] + x * slope[0] // width), (base[1] + y * slope[1] // height),
                (base[2] + (x + y) * slope[2] // (width + height))]
    return (np.stack(channels, -1) % 256).astype(np.uint8)


def write_photos(folder, count=16, seed=0, sizes=(40, 80)) -> list[Path]:
    """`count` PNG photos of random sizes in `folder`; returns their paths, sorted."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    paths = []
    for i in range(count):
        height, width = (int(v) for v in rng.integers(sizes[0], sizes[1], 2))
        paths.append(io.write_image(folder / f"photo_{i:02d}.png", make_photo(rng, height, width)))
    return paths
