"""Geometric augmentation (albumentations) and the square crops of the pipeline.

Colour never changes here: the target of a colorization model is the colour
itself, so a hue, saturation, brightness or contrast augmentation would teach
the model wrong colours. Only geometry changes: a random resized crop, a
horizontal flip and, optionally, a small rotation with reflected borders
(reflection adds no colour that was not in the photo, unlike a constant fill).

Training crops come straight from the decoded photo to the final size in one
resize (cheaper, and sharper, than resizing then cropping). Validation uses
`fit_square`: the centred square, resized. Neither ever returns anything but
`size x size`, so photos smaller than `size` are upscaled.

Randomness is reproducible: `augment_image(transform, rgb, seed)` reseeds the
pipeline for each image, so the result depends on the seed only, never on
which worker or in which order images are processed.

Example:

```python
transform = build_transform(256, train=True)
crop = augment_image(transform, rgb, seed=1234)     # (256, 256, 3), same dtype
val = fit_square(rgb, 256)
```
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from colorfusion import datasets, io


def fit_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The centred square of an image, resized to `size x size`.

    Args:
        rgb: (H, W, C) image.
        size: side of the result.
    """
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = rgb[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    return io.resize(square, size, size)


def load_square(path, size: int) -> np.ndarray:
    """A photo file as `fit_square` of it (what validation, evaluation and the embedding cache see).

    Big JPEGs are decoded at a reduced scale (`datasets.load_image`).

    Raises:
        io.ImageReadError: the file cannot be read.
    """
    return fit_square(datasets.load_image(path, min_side=size), size)


def build_transform(
    size: int,
    train: bool = True,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: float = 0.5,
    rotate: float = 0.0,
    seed: int | None = None,
) -> A.Compose | None:
    """The training pipeline (geometry only), or None for validation.

    Args:
        size: side of the square output.
        train: False returns None: validation uses `fit_square` only.
        scale: area range of the random crop, as a share of the photo.
        ratio: aspect-ratio range of the random crop.
        hflip: probability of a horizontal flip.
        rotate: maximum rotation in degrees (0 disables it); borders are
            reflected, so no new colour appears.
        seed: initial seed of the pipeline (see `augment_image`).

    Returns:
        An `albumentations.Compose` mapping any (H, W, 3) image to
        (size, size, 3), or None.
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer. Received: size={size!r}")
    if not (0 < scale[0] <= scale[1] <= 1):
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1. Received: scale={scale!r}")
    if not 0 <= hflip <= 1:
        raise ValueError(f"hflip must be a probability in [0, 1]. Received: hflip={hflip!r}")
    if rotate < 0:
        raise ValueError(f"rotate must be >= 0 degrees. Received: rotate={rotate!r}")
    if not train:
        return None
    transforms = []
    if rotate > 0:
        transforms.append(
            A.Affine(rotate=(-rotate, rotate), border_mode=cv2.BORDER_REFLECT_101, p=1.0)
        )
    transforms.append(
        A.RandomResizedCrop(size=(int(size), int(size)), scale=scale, ratio=ratio, interpolation=cv2.INTER_LINEAR,
                            p=1.0)
    )
    if hflip > 0:
        transforms.append(A.HorizontalFlip(p=hflip))
    return A.Compose(transforms, seed=seed)


def augment_image(transform: A.Compose | None, rgb: np.ndarray, seed: int, size: int | None = None) -> np.ndarray:
    """Apply `transform` to one image with its own seed.

    Args:
        transform: from `build_transform`, or None (then `fit_square` to
            `size`).
        rgb: (H, W, 3) image.
        seed: the same seed gives the same crop and flip, whatever was
            processed before.
        size: output side when `transform` is None.
    """
    if transform is None:
        if size is None:
            raise ValueError("size is required when transform is None. Received: size=None")
        return fit_square(rgb, size)
    transform.set_random_seed(int(seed))
    return transform(image=rgb)["image"]
