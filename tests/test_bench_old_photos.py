"""benchmarks/bench_old_photos.py: every model sees the same damaged photos, scored against the clean truth."""

import json

import keras
import numpy as np
import pytest
from photos import write_photos
from scripts import load_script

from colorfusion import model as model_lib


def test_the_damage_is_the_same_for_every_model_and_only_on_lightness():
    bench = load_script("benchmarks/bench_old_photos.py")
    rng = np.random.default_rng(0)
    truths = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    first, again = bench.old_versions(truths, seed=0), bench.old_versions(truths, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(np.ptp(old.astype(int), axis=-1).max() == 0 for old in first)  # gray: R = G = B
    assert not any(np.array_equal(a, b) for a, b in zip(first, bench.old_versions(truths, seed=1)))


def test_skin_boxes_lie_inside_the_crop_clear_of_its_edges():
    mask = load_script("benchmarks/bench_old_photos.py").skin_mask(200, 200)
    assert 0.05 < mask.mean() < 0.2 and not mask[:60].any() and not mask[140:].any()


@pytest.mark.slow
def test_two_models_side_by_side_on_scenes_and_faces(tmp_path, capsys):
    names = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        model = model_lib.build_colorizer(head="classification", image_size=32, width=0.125, embedding_dim=None)
        names.append(str(tmp_path / f"tiny_{seed}.keras"))
        model.save(names[-1])
    photos = write_photos(tmp_path / "photos", count=4, sizes=(40, 64))
    faces = write_photos(tmp_path / "faces", count=3, seed=1, sizes=(40, 64))
    for split, files in (("SPLIT.tsv", photos), ("FACES.tsv", faces)):
        (tmp_path / split).write_text("".join(f"{p}\tval\n" for p in files))
    args = ["--model", names[0], "--model", names[1], "--size", "64", "--split-file", str(tmp_path / "SPLIT.tsv"),
            "--data", str(tmp_path), "--faces", str(tmp_path / "FACES.tsv")]
    assert load_script("benchmarks/bench_old_photos.py").main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scenes, face_set = report["sets"]["scenes"], report["sets"]["faces"]
    assert scenes["photos"] == 4 and face_set["photos"] == 3
    assert report["models"] == names and set(names) <= set(scenes) and set(names) <= set(face_set)
    name = names[0]
    for kind in ("clean", "old"):
        assert 0 <= scenes[name][kind]["blotch"] <= 1 and 0 < scenes[name][kind]["rebalanced_auc"] <= 1
        assert {"skin_ab_error", "skin_a", "skin_b", "skin_a_true", "skin_b_true"} <= set(face_set[name][kind])
    # Grayscale's colour does not depend on the damage: its AuC is the same clean and old.
    assert scenes["grayscale"]["clean"]["auc"] == pytest.approx(scenes["grayscale"]["old"]["auc"], abs=1e-3)
    # The model's does: it colorizes another input.
    assert scenes[name]["clean"]["colorfulness"] != scenes[name]["old"]["colorfulness"]
    gains = scenes["gains"][name]
    assert gains["rebalanced_auc_gain_clean"] == pytest.approx(
        100 * (scenes[name]["clean"]["rebalanced_auc"] - scenes["grayscale"]["clean"]["rebalanced_auc"]))
