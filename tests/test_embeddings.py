import os
import warnings

import keras
import numpy as np
import pytest

from colorfusion import augment, backbones, color, embeddings, io


def _tiny(**kwargs):
    """MobileNet alpha 0.25 at 32x32, random weights: builds in about a second."""
    options = {"weights": None, "output": "pooled", "input_size": 32, "alpha": 0.25, "batch_size": 4}
    return embeddings.Embedder("mobilenet", **{**options, **kwargs})


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


def _l_ramp(n=2, size=48):
    """L from 0 to 100 across the image, a different offset per image."""
    ramp = np.linspace(0, 100, size, dtype=np.float32)
    return np.stack([np.clip(np.tile(ramp, (size, 1)) + 10 * i, 0, 100) for i in range(n)])[..., None]


def _differ(a, b):
    """Random-weight features are tiny (about 1e-18), so compare relatively."""
    return np.abs(a - b).max() > 1e-3 * np.abs(b).max()


def _same(a, b):
    return np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def _photos(folder, n=5, size=40):
    rng = np.random.default_rng(0)
    return [io.write_image(folder / f"p{i}.png", rng.integers(0, 256, (size, size + 8, 3),
                                                              dtype=np.uint8)) for i in range(n)]


# === Embedder ===


def test_inception_input_spans_minus_one_to_one_and_is_not_constant():
    # preprocess() is what the backbone receives; it does not build the model.
    embedder = embeddings.Embedder("inception_resnet_v2", weights=None)
    x = embedder.preprocess(_l_ramp())

    assert x.shape == (2, 299, 299, 3) and x.dtype == np.float32
    assert x.min() == pytest.approx(-1.0, abs=0.02) and x.max() == pytest.approx(1.0, abs=0.02)
    assert x.std() > 0.3
    # The published mistake, [0, 1] images into the same preprocess_input:
    wrong = keras.applications.inception_resnet_v2.preprocess_input(color.gray_rgb_from_l(_l_ramp()))
    assert wrong.max() - wrong.min() < 0.01


def test_preprocess_is_gray_of_l_times_255_then_backbone_preprocess():
    embedder = embeddings.Embedder("efficientnet_b0", weights=None, input_size=48)
    l = _l_ramp()
    x = embedder.preprocess(l)  # EfficientNet's preprocess_input is the identity on [0, 255]
    assert np.allclose(x, color.gray_rgb_from_l(l) * 255, atol=1e-3)


@pytest.mark.parametrize(
    "name, canonical",
    [("InceptionResNetV2", "inception_resnet_v2"), ("mobilenet", "mobilenet"), ("MobileNetV2", "mobilenet_v2"),
     ("EfficientNetB0", "efficientnet_b0"), ("efficientnet-b3", "efficientnet_b3")],
)
def test_backbones_are_found_by_name(name, canonical):
    embedder = embeddings.Embedder(name, weights=None)
    assert embedder.backbone == canonical
    assert embedder.input_size == backbones.BACKBONES[canonical].native_size


@pytest.mark.parametrize(
    "kwargs, name",
    [({"backbone": "alexnet"}, "backbone"), ({"output": "logits"}, "output"),
     ({"weights": "/no/such/file.h5"}, "weights"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        embeddings.Embedder(**{"weights": None, **kwargs})


def test_embed_l_returns_float32_vectors_of_dim(tiny):
    vectors = tiny.embed_l(_l_ramp(n=5))  # 5 images, batch_size 4: two forward passes
    assert vectors.shape == (5, tiny.dim) and vectors.dtype == np.float32
    assert tiny.dim == 256  # MobileNet alpha 0.25 pooled features
    assert np.isfinite(vectors).all()
    assert np.abs(vectors).max() > 0 and _differ(vectors[0], vectors[4])  # different images, different vectors
    assert tiny.embed_l(np.zeros((0, 48, 48, 1), np.float32)).shape == (0, 256)


def test_predictions_output_is_the_1000_class_softmax():
    embedder = embeddings.Embedder("mobilenet", weights=None, input_size=32, alpha=0.25)
    assert embedder.dim == 1000  # known before building
    vectors = embedder.embed_l(_l_ramp())
    assert vectors.shape == (2, 1000)
    assert np.allclose(vectors.sum(axis=1), 1.0, atol=1e-4)


def test_random_weights_are_reproducible_from_the_seed(tiny):
    l = _l_ramp()
    assert np.array_equal(tiny.embed_l(l), _tiny().embed_l(l))
    assert _differ(tiny.embed_l(l), _tiny(seed=1).embed_l(l))


def test_threads_asking_for_the_model_at_once_share_one_model():
    from concurrent.futures import ThreadPoolExecutor

    embedder = _tiny()
    builds = []
    build = embedder._build
    embedder._build = lambda: builds.append(1) or build()
    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda _: embedder.model, range(4)))
    assert len(builds) == 1 and all(m is models[0] for m in models)


def test_local_weights_file_is_loaded(tiny, tmp_path):
    path = tmp_path / "tiny.weights.h5"
    tiny.model.save_weights(path)
    loaded = _tiny(weights=path, seed=7)  # another seed: only the file can make them equal
    l = _l_ramp()
    assert _same(loaded.embed_l(l), tiny.embed_l(l)) and _differ(_tiny(seed=7).embed_l(l), tiny.embed_l(l))
    assert loaded.identity != tiny.identity


def test_keras_mobilenet_file_names_set_alpha_and_size(tmp_path):
    path = tmp_path / "mobilenet_2_5_224_tf_no_top.h5"
    path.write_bytes(b"placeholder: never loaded in this test")
    embedder = embeddings.Embedder("mobilenet", weights=path, output="pooled")
    assert embedder.backbone_kwargs["alpha"] == 0.25 and embedder.input_size == 224
    with pytest.raises(ValueError, match="output='pooled'"):
        embeddings.Embedder("mobilenet", weights=path, output="predictions")


def test_imagenet_download_failure_says_what_to_do(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.applications, "MobileNet", offline)
    with pytest.raises(RuntimeError, match="weights=None"):
        embeddings.Embedder("mobilenet", weights="imagenet").embed_l(_l_ramp())


@pytest.mark.slow
def test_inception_resnet_v2_builds_offline_and_embeds():
    embedder = embeddings.Embedder(weights=None, batch_size=2)
    vectors = embedder.embed_l(_l_ramp(n=2, size=64))
    assert embedder.model.input_shape == (None, 299, 299, 3)
    assert vectors.shape == (2, 1000) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


# === EmbeddingCache ===


def test_cache_second_run_computes_nothing(tiny, tmp_path):
    files = _photos(tmp_path / "photos")
    cache = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)

    first = cache.get(files, image_size=32)
    assert cache.computed == 5 and first.shape == (5, 256) and first.dtype == np.float32
    again = cache.get(files, image_size=32)
    assert cache.computed == 0 and np.array_equal(first, again)

    # A new run (new cache object, same folder) reads the vectors back.
    later = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)
    assert np.array_equal(later.get(files[::-1], image_size=32), first[::-1])
    assert later.computed == 0


def test_cache_vectors_are_those_of_the_unaugmented_centred_square(tiny, tmp_path):
    files = _photos(tmp_path / "photos", n=2)
    vectors = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False).get(files, image_size=32)
    l = np.stack([color.rgb_to_l(augment.fit_square(io.read_rgb(f), 32)) for f in files])
    assert _same(vectors, tiny.embed_l(l))


def test_cache_recomputes_a_touched_file_only(tiny, tmp_path):
    files = _photos(tmp_path / "photos")
    cache = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)
    first = cache.get(files, image_size=32)

    io.write_image(files[2], np.full((40, 48, 3), 90, np.uint8))  # new content
    stat = files[2].stat()
    os.utime(files[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)
    vectors = second.get(files, image_size=32)

    assert second.computed == 1
    assert np.array_equal(np.delete(vectors, 2, 0), np.delete(first, 2, 0))
    assert _differ(vectors[2], first[2])


def test_cache_rebuilds_a_damaged_file_with_a_warning(tiny, tmp_path):
    files = _photos(tmp_path / "photos")
    first = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False).get(files, image_size=32)
    (shard,) = list((tmp_path / "cache").rglob("*.npz"))
    shard.write_bytes(shard.read_bytes()[:100])  # truncated

    cache = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)
    with pytest.warns(UserWarning, match=f"{shard.name}.*damaged"):
        vectors = cache.get(files, image_size=32)

    assert cache.computed == 5 and _same(vectors, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: no warning any more
        again = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)
        again.get(files, image_size=32)
    assert again.computed == 0


def test_cache_keeps_embedders_and_image_sizes_apart(tiny, tmp_path):
    files = _photos(tmp_path / "photos", n=2)
    embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False).get(files, image_size=32)

    other = embeddings.EmbeddingCache(tmp_path / "cache", _tiny(seed=1), progress=False)
    other.get(files, image_size=32)
    assert other.computed == 2
    resized = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)
    resized.get(files, image_size=40)
    assert resized.computed == 2
    assert len(list((tmp_path / "cache").iterdir())) == 3


def test_cache_reports_unreadable_files_and_stores_nothing_for_them(tiny, tmp_path):
    files = _photos(tmp_path / "photos", n=2)
    bad = tmp_path / "photos" / "bad.jpg"
    bad.write_bytes(b"garbage")
    cache = embeddings.EmbeddingCache(tmp_path / "cache", tiny, progress=False)

    with pytest.warns(UserWarning) as record:
        vectors = cache.get([files[0], bad, files[1], tmp_path / "missing.png"], image_size=32)

    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert any("bad.jpg: not an image" in m for m in messages)
    assert any("missing.png: cannot access" in m for m in messages)

    assert vectors.shape == (4, 256)
    assert (vectors[1] == 0).all() and (vectors[3] == 0).all() and np.abs(vectors[0]).max() > 0
    assert set(cache.errors) == {str(bad), str(tmp_path / "missing.png")}
    assert cache.computed == 2
