"""`colorfusion.damage`: old-print damage on L, each operation doing what it says; the generator damages L only."""

import cv2
import numpy as np
import pytest

from colorfusion import io
from colorfusion.config import TrainConfig
from colorfusion.damage import OLD_PRINT, OPERATIONS, Damage, damage_lightness
from colorfusion.generator import ColorizationGenerator


def smooth_lightness(size=128, seed=0) -> np.ndarray:
    """A smooth photo's L in [10, 90]: no edge, no speck, no block of its own."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 12)
    return (10 + 80 * (noise - noise.min()) / np.ptp(noise)).astype(np.float32)


def only(name: str) -> Damage:
    return Damage(probability=1.0, **{op: float(op == name) for op in OPERATIONS})


def high_frequency(l: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(l, cv2.CV_32F)).mean())


def test_same_seed_same_damage_another_seed_another():
    l = smooth_lightness()
    first, again = damage_lightness(l, [3, 1], OLD_PRINT), damage_lightness(l, [3, 1], OLD_PRINT)
    assert np.array_equal(first, again) and first.dtype == np.float32 and first.shape == l.shape
    assert not np.array_equal(first, damage_lightness(l, [3, 2], OLD_PRINT))
    assert 0 <= first.min() and first.max() <= 100
    assert not np.shares_memory(first, l)


def test_probability_zero_leaves_the_lightness_exactly_as_it_was():
    l = smooth_lightness()
    assert np.array_equal(damage_lightness(l, 5, OLD_PRINT.with_probability(0.0)), l)


def test_grain_adds_fine_noise_and_keeps_the_mean():
    l = smooth_lightness()
    grainy = damage_lightness(l, 1, only("grain"))
    assert high_frequency(grainy) > 5 * high_frequency(l)
    assert abs(float(grainy.mean() - l.mean())) < 1.0


def test_blur_removes_fine_detail():
    rng = np.random.default_rng(0)
    detailed = (50 + 20 * rng.standard_normal((128, 128))).clip(0, 100).astype(np.float32)
    assert high_frequency(damage_lightness(detailed, 1, only("blur"))) < 0.7 * high_frequency(detailed)


@pytest.mark.parametrize("seed", range(4))
def test_fading_lifts_blacks_dims_whites_and_keeps_the_order_of_tones(seed):
    ramp = np.tile(np.linspace(0, 100, 256, dtype=np.float32), (8, 1))
    faded = damage_lightness(ramp, seed, only("fading"))
    assert np.ptp(faded) < np.ptp(ramp)  # less contrast
    assert np.all(np.diff(faded[0]) >= 0)  # a tone curve: darker stays darker


def test_scratches_and_dust_are_thin_marks_on_an_untouched_photo():
    l = smooth_lightness()
    for name, at_most in (("scratches", 0.25), ("dust", 0.1)):
        changed = np.abs(damage_lightness(l, 2, only(name)) - l) > 2
        assert 0 < changed.mean() < at_most, name  # marks, not a new photo
        assert (np.abs(damage_lightness(l, 2, only(name)) - l) > 20).any(), name  # clearly bright or dark


def test_jpeg_leaves_block_artefacts():
    l = smooth_lightness(seed=1) + np.tile(np.linspace(0, 9, 128, dtype=np.float32), (128, 1))
    compressed = damage_lightness(l.clip(0, 100), 4, only("jpeg"))
    error = np.abs(compressed - l.clip(0, 100))
    assert 0.05 < error.mean() < 5


def test_damage_settings_are_probabilities():
    with pytest.raises(ValueError, match="Received: dust=1.5"):
        Damage(dust=1.5)
    with pytest.raises(ValueError, match="damage"):
        TrainConfig(damage=-0.1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    return [io.write_image(folder / f"p{i}.png", cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), np.uint8),
                                                                   (0, 0), 3)) for i in range(6)]


def test_the_generator_damages_the_input_lightness_and_keeps_the_clean_colour_target(files):
    common = dict(batch_size=3, image_size=32, augment=True, shuffle=True, seed=1)
    (x_clean, y_clean), (x_old, y_old) = ColorizationGenerator(files, **common)[0], \
        ColorizationGenerator(files, damage=1.0, **common)[0]
    assert np.array_equal(y_old, y_clean)  # the colour to learn is the clean photo's
    assert all(not np.array_equal(x_old["L"][i], x_clean["L"][i]) for i in range(3))
    # Seeded with the crop: the same batch again is damaged the same way.
    assert np.array_equal(ColorizationGenerator(files, damage=1.0, **common)[0][0]["L"], x_old["L"])


def test_validation_batches_stay_clean(files):
    common = dict(batch_size=3, image_size=32, augment=False)
    assert np.array_equal(ColorizationGenerator(files, damage=1.0, **common)[0][0]["L"],
                          ColorizationGenerator(files, **common)[0][0]["L"])
