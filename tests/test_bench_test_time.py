"""benchmarks/bench_test_time.py: flip averaging must mirror the photo, its hints and the result back."""


import keras
import numpy as np
from scripts import load_script

from colorfusion import model as model_lib
from colorfusion.hints.simulation import simulate_hints
from colorfusion.inference.colorizer import Colorizer


def test_flip_averaging_is_mirror_equivariant_with_hints_and_differs_from_one_pass():
    keras.utils.set_random_seed(3)
    model = model_lib.build_colorizer(head="classification", hints=True, hint_blend="affinity", image_size=32,
                                      width=0.125, embedding_dim=None)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # hint layers start at zero: give them weight, so that hints matter
        if "hint" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape).astype(np.float32))
    plain = Colorizer(model)
    averaged = load_script("benchmarks/bench_test_time.py").flip_averaged(plain)
    lightness = rng.uniform(0, 100, (1, 32, 32, 1)).astype(np.float32)
    hints = simulate_hints(rng.uniform(-0.5, 0.5, (32, 32, 2)).astype(np.float32), rng, count=3)[None]
    assert not np.allclose(plain.predict_ab(lightness, hints), plain.predict_ab(lightness), atol=1e-3)

    ab = averaged.predict_ab(lightness, hints)
    mirrored = averaged.predict_ab(lightness[:, :, ::-1], hints[:, :, ::-1])
    np.testing.assert_allclose(ab, mirrored[:, :, ::-1], atol=1e-4)  # the mirror's colours, mirrored back
    assert not np.allclose(ab, plain.predict_ab(lightness, hints), atol=1e-3)
