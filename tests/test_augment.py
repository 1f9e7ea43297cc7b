import albumentations as A
import cv2
import numpy as np
import pytest

from colorfusion import augment, color


def _photo(height=48, width=64, seed=0):
    """A smooth colour image: blurred noise, so resampling error is small."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def _colour_histogram(rgb, bins=8):
    lab = color.rgb_to_lab(rgb).reshape(-1, 3)
    hist, _ = np.histogramdd(lab, bins=bins, range=[(0, 100), (-128, 128), (-128, 128)])
    return hist / hist.sum()


def test_validation_has_no_pipeline_and_fit_square_takes_the_centre():
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 10:50] = 200  # the centred 40x40 square, the rest black

    assert augment.build_transform(32, train=False) is None
    square = augment.fit_square(rgb, 40)
    assert square.shape == (40, 40, 3) and (square == 200).all()
    assert augment.augment_image(None, rgb, seed=0, size=20).shape == (20, 20, 3)


@pytest.mark.parametrize("shape", [(48, 64, 3), (100, 30, 3), (12, 20, 3)])
def test_training_output_is_square_at_size_and_keeps_dtype(shape):
    transform = augment.build_transform(32, train=True)
    out = augment.augment_image(transform, _photo(*shape[:2]), seed=1)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_pipeline_is_geometric_only():
    transform = augment.build_transform(32, train=True, rotate=10)
    kinds = [type(t) for t in transform.transforms]
    assert A.RandomResizedCrop in kinds and A.HorizontalFlip in kinds and A.Affine in kinds
    # DualTransform = geometric (applies to masks too); colour transforms are ImageOnlyTransform.
    assert all(isinstance(t, A.DualTransform) for t in transform.transforms)


def test_augmentation_changes_geometry():
    rgb = _photo()
    transform = augment.build_transform(32, train=True)
    plain = augment.fit_square(rgb, 32)
    outs = [augment.augment_image(transform, rgb, seed=s) for s in range(6)]
    assert all(not np.array_equal(o, plain) for o in outs)
    assert len({o.tobytes() for o in outs}) == 6


def test_same_seed_same_result_whatever_came_before():
    rgb = _photo()
    a = augment.build_transform(32, train=True, rotate=15)
    b = augment.build_transform(32, train=True, rotate=15)
    first = augment.augment_image(a, rgb, seed=42)
    for s in range(5):  # move b's random state along
        augment.augment_image(b, rgb, seed=s)
    assert np.array_equal(first, augment.augment_image(b, rgb, seed=42))
    assert not np.array_equal(first, augment.augment_image(a, rgb, seed=43))


def test_flip_of_the_whole_image_keeps_every_pixel_colour():
    rgb = _photo(32, 32)
    transform = augment.build_transform(32, train=True, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=1.0)
    out = augment.augment_image(transform, rgb, seed=0)
    assert np.array_equal(out, rgb[:, ::-1])


def test_resized_crop_keeps_the_colour_histogram_within_resampling_error():
    rgb = _photo(64, 64, seed=3)
    # Uncropped (scale 1), unflipped, but resampled to another size.
    transform = augment.build_transform(48, train=True, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0)
    out = augment.augment_image(transform, rgb, seed=0)
    resampled = cv2.resize(rgb, (48, 48), interpolation=cv2.INTER_LINEAR)

    assert np.abs(out.astype(int) - resampled).max() <= 1  # nothing but the resampling
    distance = np.abs(_colour_histogram(out) - _colour_histogram(rgb)).sum() / 2
    assert distance < 0.05
    mean_shift = np.abs(color.rgb_to_lab(out).mean((0, 1)) - color.rgb_to_lab(rgb).mean((0, 1)))
    assert mean_shift.max() < 1.0


def test_rotation_reflects_borders_instead_of_adding_black():
    rgb = np.full((40, 40, 3), (200, 60, 30), np.uint8)  # a single colour
    transform = augment.build_transform(32, train=True, rotate=30)
    outs = [augment.augment_image(transform, rgb, seed=s) for s in range(5)]
    for out in outs:
        assert (np.abs(out.astype(int) - (200, 60, 30)) <= 1).all()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"size": 0}, "size"),
        ({"size": 32, "scale": (0.0, 1.0)}, "scale"),
        ({"size": 32, "scale": (0.8, 0.5)}, "scale"),
        ({"size": 32, "hflip": 1.5}, "hflip"),
        ({"size": 32, "rotate": -5}, "rotate"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        augment.build_transform(**kwargs)
