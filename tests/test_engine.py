"""The engine: one pipeline (read -> L -> runner -> ab -> RGB), its clients' hooks, the runner interface, its layers.

Most tests run the engine on a stand-in runner (`Runner` subclasses with no
Keras), which is all a runner is; the Keras runner's session (the network cut
at the hints) and the pixels against the `color` module's whole-image path run
a tiny model.
"""

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest
from photos import make_photo

from colorfusion import color, io
from colorfusion.inference import engine as engine_lib
from colorfusion.inference.engine import Colorized, Engine, Lightness, colorize_iter, colorize_stream
from colorfusion.inference.runners import Runner

INFERENCE = Path(__file__).resolve().parents[1] / "src" / "colorfusion" / "inference"


class GainRunner(Runner):
    """ab / 128 = (`gain`, -`gain` / 2) x the scaled L, and for a hint map its mean colour added: no Keras."""

    takes_hints = True

    def __init__(self, gain=0.2):
        self.gain = gain
        self.calls = []

    def forward(self, inputs):
        self.calls.append({name: np.shape(value) for name, value in inputs.items()})
        l_scaled = np.asarray(inputs["L"])
        ab = np.concatenate([l_scaled * self.gain, l_scaled * -self.gain / 2], axis=-1)
        if "hints" in inputs:
            ab = ab + np.asarray(inputs["hints"])[..., :2].mean(axis=(1, 2), keepdims=True)
        return ab.astype(np.float32)


class Broken(GainRunner):
    def forward(self, inputs):
        raise RuntimeError("the network failed")


def smooth_photo(height, width, seed=0, gray=False):
    rng = np.random.default_rng(seed)
    small = rng.uniform(20, 235, (max(2, height // 16), max(2, width // 16), 3)).astype(np.float32)
    rgb = np.clip(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    return np.repeat(rgb[..., :1], 3, axis=-1) if gray else rgb


# === The pipeline's pixels: those of the `color` module's whole-image path ===


def todays_path(engine, photo):
    """The pipeline as the `color` module computes it on whole images: the reference of every fast path."""
    height, width = engine.input_shape(*photo.shape[:2])
    l_full = color.rgb_to_l(photo)[..., 0]
    l_small = color.rgb_to_l(io.resize(photo, width, height))
    ab = engine.predict_ab(l_small[None])[0]
    if photo.shape[0] * photo.shape[1] >= height * width:  # enlarged smoothly; a photo smaller than that, shrunk
        ab_full = cv2.resize(ab, photo.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    else:
        ab_full = io.resize(ab, photo.shape[1], photo.shape[0])
    return l_full, color.lab_to_rgb(np.concatenate([l_full[..., None], ab_full], axis=-1), np.uint8)


@pytest.mark.parametrize("gray", [False, True], ids=["colour", "gray"])
@pytest.mark.parametrize("shape", [(45, 70), (700, 530)])  # one strip; several bands of strips on each core
def test_the_pipeline_gives_the_color_modules_pixels(shape, gray):
    engine = Engine(GainRunner(), size=64)
    photo = smooth_photo(*shape, seed=1, gray=gray)
    l_full, expected = todays_path(engine, photo)
    rgb, lab = engine(photo, return_lab=True)
    np.testing.assert_array_equal(lab[..., 0], l_full)  # the photo's own L, bit for bit
    difference = np.abs(rgb.astype(int) - expected)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.999


# === The hooks of its clients ===


def test_a_stream_keeps_each_items_failure_its_own_and_the_runner_sees_one_batch_a_shape(tmp_path):
    photos = [io.write_image(tmp_path / f"p{i}.png", smooth_photo(40, 60, seed=i)) for i in range(5)]
    (tmp_path / "bad.png").write_text("not a picture")
    sources = [*photos[:2], tmp_path / "bad.png", *photos[2:]]
    runner = GainRunner()
    found = list(colorize_stream(Engine(runner, size=32), sources, 3, read=io.read_rgb, errors="keep"))
    assert [source for source, _ in found] == sources
    failed = [(source.name, done.stage) for source, done in found if done.error is not None]
    assert failed == [("bad.png", "read")] and "not an image" in str(found[2][1].error)
    assert all(done.rgb.shape == (40, 60, 3) for source, done in found if done.error is None)
    assert [call["L"][0] for call in runner.calls] == [2, 3]  # (p0, p1 | bad) then (p2, p3, p4)
    broken = list(colorize_stream(Engine(Broken(), size=32), photos, 2, read=io.read_rgb, errors="keep"))
    assert [done.stage for _, done in broken] == ["network"] * 5
    assert "the network failed" in str(broken[0][1].error)
    with pytest.raises(RuntimeError, match="the network failed"):
        list(colorize_stream(Engine(Broken(), size=32), photos, 2, read=io.read_rgb))


def test_adjust_ab_sees_each_item_in_order_at_the_networks_size_before_the_join():
    engine = Engine(GainRunner(), size=32)
    frames = [smooth_photo(48, 64, seed=i) for i in range(5)]
    seen = []

    def adjust(l_small, ab):
        seen.append((l_small.shape, ab.shape))
        return np.zeros_like(ab) + len(seen)  # each frame's own constant colour: its place in the order

    done = [result for _, result in colorize_stream(engine, frames, 2, adjust_ab=adjust)]
    assert seen == [((32, 32, 1), (32, 32, 2))] * 5
    for index, result in enumerate(done):
        np.testing.assert_allclose(result.ab, index + 1)
        lab = color.rgb_to_lab(result.rgb)
        assert abs(np.median(lab[..., 1]) - (index + 1)) < 1.5  # the join used the adjusted ab


def test_lightness_items_skip_the_read_and_rgb_false_stops_at_the_networks_ab():
    engine = Engine(GainRunner(), size=32)
    photo = smooth_photo(40, 50)
    held = engine.read_lightness(photo)
    assert isinstance(held, Lightness) and held.full.shape == (40, 50) and held.small.shape == (32, 32, 1)

    class NoRead(Engine):
        def read_lightness(self, image, full=True):
            raise AssertionError("read again")

    (scored,) = colorize_iter(NoRead(GainRunner(), size=32), [held], rgb=False)
    assert isinstance(scored, Colorized) and scored.rgb is None and scored.ab.shape == (32, 32, 2)
    np.testing.assert_array_equal(scored.ab, engine.predict_ab(held.small[None])[0])
    assert engine.read_lightness(photo, full=False).full is None


def test_hints_reach_the_runner_only_for_items_given_points():
    runner = GainRunner()
    engine = Engine(runner, size=32)
    photos = [smooth_photo(40, 50, seed=i) for i in range(2)]
    plain, hinted = engine.colorize_many(photos, hints=[None, [(10, 10, "#ff0000")]])
    assert runner.calls[-1]["hints"] == (2, 32, 32, 3)
    engine.colorize_many(photos)
    assert "hints" not in runner.calls[-1]  # no points at all: no map
    np.testing.assert_array_equal(plain, engine(photos[0]))
    assert not np.array_equal(hinted, engine(photos[1]))


def test_a_held_photo_runs_again_with_each_map_and_colorizes_as_the_pipeline():
    engine = Engine(GainRunner(), size=32)
    photo = smooth_photo(40, 50)
    held = engine.hold(photo)
    points = [(5, 5, "#00ff00")]
    probs, ab = held.run(engine.hints_input(points, held.lightness.full, (32, 32)))
    assert probs is None  # a runner without probabilities (the base `Session`)
    np.testing.assert_allclose(ab, engine.predict_ab(held.lightness.small[None],
                                                     engine.hints_input(points, held.lightness.full,
                                                                        (32, 32))[None])[0], atol=1e-5)
    np.testing.assert_array_equal(held.colorize(points), engine(photo, hints=points))


# === The Keras runner: its session, no state of its own outside ===


def test_a_keras_hint_models_session_cuts_at_the_hints_and_gives_probabilities(tiny_model):
    from colorfusion.inference.colorizer import Colorizer

    model = tiny_model("classification", hints=True, seed=5)
    for weight in model.weights:  # hint layers that act
        if "hint" in weight.path and "kernel" in weight.path:
            weight.assign(np.random.default_rng(1).normal(0, 0.3, weight.shape).astype("float32"))
    colorizer, other = Colorizer(model), Colorizer(model)
    assert colorizer.runner.split and colorizer.runner.session_networks() is not other.runner.session_networks()
    photo = make_photo(np.random.default_rng(0), 48, 64)
    held = colorizer.hold(photo)
    shape = held.lightness.small.shape[:2]
    for points in ([], [(30, 20, "#c0392b")]):
        hint_map = colorizer.hints_input(points, held.lightness.full, shape)
        probs, ab = held.run(hint_map)
        assert probs.shape[:2] == (shape[0] // 4, shape[1] // 4) and np.allclose(probs.sum(-1), 1, atol=1e-4)
        expected = colorizer.predict_ab(held.lightness.small[None], hint_map[None])[0]
        assert np.abs(ab - expected).max() < 0.05


def test_model_info_is_typed_and_still_reads_as_the_dict_it_replaced(tiny_model):
    from dataclasses import FrozenInstanceError

    from colorfusion.model import ModelInfo, model_info

    info = model_info(tiny_model("classification", hints=True))
    assert isinstance(info, ModelInfo) and info.hints and info.head == "classification" and info.num_bins
    assert info["hints"] is info.hints and info["image_size"] == 32
    with pytest.raises(KeyError):
        info["nothing"]
    with pytest.raises(FrozenInstanceError):
        info.hints = False


# === Arrows down: the engine imports none of its clients ===

# Each module of inference/ may import only modules on a lower floor.
FLOORS = {"interface": 0, "reference": 0, "confidence": 0, "runners": 1, "exported": 1, "engine": 1, "motion": 2,
          "suggest": 2, "video": 3, "colorizer": 4, "batch": 5}


def inference_imports(module: str) -> set[str]:
    """The inference/ modules `module` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((INFERENCE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("colorfusion.inference"):
            names = [node.module.split(".")[2]] if node.module.count(".") >= 2 else [a.name for a in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("colorfusion.inference."))
    return found


def test_every_inference_module_imports_only_lower_floors():
    assert set(FLOORS) == {path.stem for path in INFERENCE.glob("*.py")} - {"__init__"}
    for module, floor in FLOORS.items():
        upward = sorted(name for name in inference_imports(module) if FLOORS[name] >= floor)
        assert not upward, f"{module} imports {upward}"
    tree = ast.parse((INFERENCE / "engine.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"keras", "tensorflow"}  # the pipeline itself needs no Keras
    from colorfusion.inference import colorizer

    assert colorizer.network_shape is engine_lib.network_shape  # written once, read from the engine
