import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import keras
import numpy as np
import pytest

from colorfusion import augment, color, embeddings, io
from colorfusion.generator import ColorizationGenerator

S = 32


def _photo(rng, height, width):
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """10 small colour photos of various shapes, one smaller than S."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    shapes = [(40, 56), (48, 48), (64, 40), (20, 28), (36, 60), (50, 44), (40, 40), (56, 72), (33, 47), (45, 38)]
    return [io.write_image(folder / f"p{i}.png", _photo(rng, *shape)) for i, shape in enumerate(shapes)]


@pytest.fixture(scope="module")
def embedder():
    return embeddings.Embedder("mobilenet", weights=None, output="pooled", input_size=32, alpha=0.25, batch_size=4)


def _all(gen):
    return [gen[i] for i in range(len(gen))]


def _equal_batches(a, b):
    return all(
        set(xa) == set(xb) and all(np.array_equal(xa[k], xb[k]) for k in xa) and np.array_equal(ya, yb)
        for (xa, ya), (xb, yb) in zip(a, b)
    ) and len(a) == len(b)


# === Shapes, dtypes, ranges ===


@pytest.mark.parametrize("augment_on", [False, True])
@pytest.mark.parametrize("target_scale", [1, 4])
def test_batches_have_the_agreed_shapes_dtypes_and_ranges(files, augment_on, target_scale):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S, augment=augment_on, shuffle=True,
                                target_scale=target_scale)

    batches = _all(gen)

    assert len(gen) == 3 and [len(x["L"]) for x, _ in batches] == [4, 4, 2]  # last batch: the remainder
    for x, y in batches:
        assert set(x) == {"L"}
        assert x["L"].shape[1:] == (S, S, 1) and x["L"].dtype == np.float32
        assert y.shape == (len(x["L"]), S // target_scale, S // target_scale, 2) and y.dtype == np.float32
        assert -1.0 <= x["L"].min() and x["L"].max() <= 1.0
        assert np.abs(y).max() <= 1.0
    assert np.concatenate([x["L"] for x, _ in batches]).std() > 0.02
    assert np.concatenate([y for _, y in batches]).std() > 0.02  # real colour, not zeros


def test_l_and_ab_reconstruct_the_augmented_photo(files):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, shuffle=True, seed=5)
    for index in range(len(gen)):
        x, y = gen[index]
        rgb, _ = gen.rgb_batch(index)
        lab = color.join_lab(color.l_from_model(x["L"]), color.ab_from_model(y))
        rebuilt = color.lab_to_rgb(lab, dtype=np.uint8)
        assert np.abs(rebuilt.astype(int) - rgb).max() <= 2


def test_inputs_and_targets_are_the_color_module_scalings(files):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True)
    x, y = gen[1]
    lab = color.rgb_to_lab(gen.rgb_batch(1)[0])
    assert np.allclose(x["L"], color.l_to_model(lab[..., :1]), atol=1e-6)
    assert np.allclose(y, color.ab_to_model(lab[..., 1:]), atol=1e-6)


def test_validation_batches_are_the_centred_squares_of_the_files(files):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S)
    rgb, used = gen.rgb_batch(0)
    assert list(used) == [0, 1, 2, 3]
    for crop, index in zip(rgb, used):
        assert np.array_equal(crop, augment.fit_square(io.read_rgb(files[index]), S))


def test_quarter_targets_are_area_averages_of_the_full_targets(files):
    full = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, seed=1)[2][1]
    quarter = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, seed=1, target_scale=4)[2][1]
    expected = cv2.resize(full[0], (S // 4, S // 4), interpolation=cv2.INTER_AREA)
    assert np.allclose(quarter[0], expected, atol=1e-5)


def test_augmentation_changes_the_crops(files):
    plain = ColorizationGenerator(files, batch_size=4, image_size=S).rgb_batch(0)[0]
    augmented = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True).rgb_batch(0)[0]
    assert not np.array_equal(plain, augmented)


# === Embeddings ===


def test_cache_mode_gives_each_file_its_cached_vector(files, embedder, tmp_path):
    cache = embeddings.EmbeddingCache(tmp_path, embedder, progress=False)
    gen = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, shuffle=True, embedding="cache",
                                cache=cache)
    vectors = cache.get(files, image_size=S)

    for index in range(len(gen)):
        x, _ = gen[index]
        _, used = gen.rgb_batch(index)
        assert x["embedding"].shape == (len(used), embedder.dim) and x["embedding"].dtype == np.float32
        assert np.array_equal(x["embedding"], vectors[used])
    assert cache.computed == 0  # all computed when the generator was made


def test_exact_mode_embeds_the_augmented_batch(files, embedder):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, embedding="exact", embedder=embedder)
    x, _ = gen[0]
    expected = embedder.embed_l(color.l_from_model(x["L"]))
    assert x["embedding"].shape == (4, embedder.dim) and x["embedding"].dtype == np.float32
    assert np.abs(x["embedding"] - expected).max() <= 1e-4 * np.abs(expected).max()


# === Determinism ===


def test_same_seed_same_batches_and_a_new_order_each_epoch(files):
    def make(seed):
        return ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, shuffle=True, seed=seed)

    a, b = make(3), make(3)
    epoch0 = _all(a)
    assert _equal_batches(epoch0, _all(b))
    assert not _equal_batches(epoch0, _all(make(4)))

    orders = []
    for gen in (a, b):
        gen.on_epoch_end()
        orders.append(np.concatenate([gen.rgb_batch(i)[1] for i in range(len(gen))]))
    assert np.array_equal(orders[0], orders[1])
    assert sorted(orders[0]) == list(range(len(files)))  # each file once per epoch
    assert not _equal_batches(_all(a), epoch0)
    assert _equal_batches(_all(a), _all(b))


def test_batches_do_not_depend_on_threads_or_order(files):
    gen = ColorizationGenerator(files, batch_size=2, image_size=S, augment=True, shuffle=True, seed=9, workers=4)
    sequential = _all(gen)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(gen.__getitem__, reversed(range(len(gen)))))[::-1]
    assert _equal_batches(sequential, threaded)


def test_pickled_generator_gives_the_same_batches(files):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S, augment=True, shuffle=True,
                                use_multiprocessing=True, workers=2)
    gen.on_epoch_end()
    clone = pickle.loads(pickle.dumps(gen))
    assert clone.epoch == 1 and clone.use_multiprocessing
    assert _equal_batches(_all(gen), _all(clone))


# === Bad files ===


def test_unreadable_file_is_replaced_and_reported_once(files, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    gen = ColorizationGenerator([*files[:3], bad, *files[3:5]], batch_size=4, image_size=S)

    with pytest.warns(UserWarning, match="broken.jpg") as record:
        x, y = gen[0]
    assert len(record) == 1
    assert x["L"].shape == (4, S, S, 1) and y.shape == (4, S, S, 2)
    assert list(gen.rgb_batch(0)[1]) == [0, 1, 2, 4]  # the next readable file stands in
    assert str(bad) in gen.errors
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once only
        _all(gen)


def test_no_readable_file_at_all_raises(tmp_path):
    bad = tmp_path / "a.png"
    bad.write_bytes(b"nothing")
    gen = ColorizationGenerator([bad], batch_size=4, image_size=S)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="None of the 1 files"):
        gen[0]


# === Arguments and Keras ===


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"image_size": 30, "target_scale": 4}, "target_scale"),
        ({"embedding": "pooled"}, "embedding"),
        ({"embedding": "cache"}, "cache"),
        ({"embedding": "exact"}, "embedder"),
        ({"augment": True, "augment_options": {"hflip": 2}}, "hflip"),
    ],
)
def test_bad_arguments_raise(files, kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        ColorizationGenerator(files, **kwargs)


def test_exact_mode_refuses_multiprocessing(files, embedder):
    with pytest.raises(ValueError, match="use_multiprocessing=True"):
        ColorizationGenerator(files, embedding="exact", embedder=embedder, use_multiprocessing=True, workers=2)


def test_index_out_of_range_raises(files):
    gen = ColorizationGenerator(files, batch_size=4, image_size=S)
    with pytest.raises(IndexError):
        gen[len(gen)]


def test_keras_fit_consumes_the_generator_with_workers(files, embedder, tmp_path):
    cache = embeddings.EmbeddingCache(tmp_path, embedder, progress=False)
    gen = ColorizationGenerator(
        files, batch_size=4, image_size=S, augment=True, shuffle=True, target_scale=4,
        embedding="cache", cache=cache, workers=2,
    )
    l_in = keras.Input((S, S, 1), name="L")
    e_in = keras.Input((embedder.dim,), name="embedding")
    h = keras.layers.AveragePooling2D(4, name="pool")(l_in)
    e = keras.layers.Reshape((1, 1, embedder.dim), name="reshape")(e_in)
    h = keras.layers.Concatenate(name="fuse")([h, keras.layers.UpSampling2D(S // 4, name="repeat")(e)])
    out = keras.layers.Conv2D(2, 1, activation="tanh", name="ab")(h)
    model = keras.Model({"L": l_in, "embedding": e_in}, out)
    model.compile(optimizer="adam", loss="mse")

    history = model.fit(gen, epochs=2, verbose=0)

    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert gen.epoch >= 2  # Keras also calls on_epoch_end once before the first epoch
