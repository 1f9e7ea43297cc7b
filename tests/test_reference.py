"""Colours from a reference photo: the matching, the engine's step, the API, the command line, a folder, a clip.

The matching is tested on made-up feature grids whose answer is known; the
pipeline on tiny untrained hint models (`weights=None`), whose features are
random but the same for the same lightness: a photo matched to itself finds
every point in place. The browser side is test_studio_browser_reference.py.
"""

import os
import subprocess

import numpy as np
import pytest
from photos import make_photo

from colorfusion import cli, io
from colorfusion.errors import HintError, ImageReadError
from colorfusion.inference import reference as reference_lib
from colorfusion.inference.batch import colorize_folder
from colorfusion.inference.colorizer import Colorizer
from colorfusion.inference.reference import Reference, match, spread
from colorfusion.inference.runners import Runner, feature_network

SIDE = 128  # the tiny models' input: 8 x 8 matched cells of 16 px, room for `MIN_POINTS`


def unit_grid(rng, rows, cols, depth=32):
    grid = rng.normal(size=(rows, cols, depth)).astype(np.float32)
    return grid / np.linalg.norm(grid, axis=-1, keepdims=True)


# === The matching, on grids with a known answer ===


def test_a_shifted_grid_matches_each_cell_to_where_it_went():
    rng = np.random.default_rng(0)
    reference = unit_grid(rng, 8, 10)
    photo = reference[2:8, 1:9]  # the photo is a crop of the reference: cell (r, c) is reference (r + 2, c + 1)
    cells, found, weights = match(photo, reference, min_similarity=0.5, ratio=0.9)
    assert len(cells) == 6 * 8
    assert np.array_equal(found, cells + (2, 1))
    assert np.all(weights > 0.99) and np.all(np.diff(weights) <= 0)  # strongest first


def test_a_repeated_texture_and_a_dissimilar_cell_give_no_point():
    rng = np.random.default_rng(1)
    reference = unit_grid(rng, 6, 6)
    reference[0, 0] = reference[5, 5]  # one thing twice, far apart: which one is meant cannot be told
    photo = reference.copy()
    photo[3, 3] = -reference[3, 3]  # nothing like it in the reference
    cells, _, _ = match(photo, reference, min_similarity=0.5, ratio=0.9)
    kept = {tuple(c) for c in cells}
    assert (5, 5) not in kept and (0, 0) not in kept and (3, 3) not in kept
    assert len(kept) == 36 - 3


def test_spread_keeps_the_strongest_point_of_each_grid_cell_and_at_most_n():
    cells = np.array([(0, 0), (0, 1), (1, 0), (4, 4), (4, 5), (9, 9)])  # strongest first
    assert spread(cells, spacing=2, max_points=10) == [0, 3, 5]
    assert spread(cells, spacing=2, max_points=2) == [0, 3]
    assert spread(cells, spacing=2, max_points=10, taken=[(4, 6)]) == [0, 5]  # the person's point wins


# === Through the engine, with a tiny hint model ===


@pytest.fixture(scope="module")
def colorizer(tiny_model):
    return Colorizer(tiny_model("classification", hints=True, seed=0, image_size=SIDE))


@pytest.fixture(scope="module")
def photo():
    return make_photo(np.random.default_rng(5), SIDE * 2, SIDE * 3)


def test_feature_network_reads_the_encoder_at_strides_8_and_16(tiny_model):
    scratch = feature_network(tiny_model(hints=True, image_size=SIDE))
    assert scratch.strides == (8,) and tuple(scratch.outputs[0].shape[1:3]) == (SIDE // 8, SIDE // 8)
    for encoder in ("mobilenet_v2", "efficientnet_lite0"):  # the shipped encoder, and the next release's
        pretrained = feature_network(tiny_model(hints=True, image_size=SIDE, encoder=encoder, encoder_weights=None))
        assert pretrained.strides == (8, 16), encoder
        l_scaled = np.zeros((1, 64, 128, 1), np.float32)
        assert [tuple(found.shape[1:3]) for found in pretrained(l_scaled)] == [(8, 16), (4, 8)], encoder


def quadrants(height, width, seed=0):
    """A photo of four colours (one ab a quadrant), textured in lightness only, and its ab (h, w, 2)."""
    import cv2

    from colorfusion import color

    rng = np.random.default_rng(seed)
    lightness = 55 + 25 * cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), 3) * 3
    ab = np.zeros((height, width, 2), np.float32)
    for (top, left), value in zip(((0, 0), (0, 1), (1, 0), (1, 1)), ((35, 25), (-35, 25), (15, -40), (-5, -30))):
        ab[top * height // 2:(top + 1) * height // 2, left * width // 2:(left + 1) * width // 2] = value
    lab = np.concatenate([np.clip(lightness, 30, 80)[..., None], ab], -1)
    return color.lab_to_rgb(lab, np.uint8), ab


def test_a_photo_matched_to_itself_takes_its_own_colours_in_place(colorizer):
    from colorfusion import color

    photo, ab = quadrants(SIDE * 2, SIDE * 3)
    points = Reference(colorizer, photo, ratio=1.0).points(colorizer, colorizer.read_lightness(photo))
    assert points, "a photo must match itself"
    assert len(points) <= reference_lib.MAX_POINTS
    height, width = photo.shape[:2]
    for point in points:
        assert 0 <= point.x < width and 0 <= point.y < height and 0 < point.weight <= 1
        given = color.rgb_to_lab(np.array([[[int(point.hex[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8))
        assert np.abs(given[0, 0, 1:] - ab[point.y, point.x]).max() < 8, point  # the colour of its own quadrant


def test_the_reference_is_a_step_of_the_pipeline_its_points_as_hints(colorizer, photo):
    reference = Reference(colorizer, photo, ratio=1.0)
    points = reference.points(colorizer, colorizer.read_lightness(photo))
    with_reference = colorizer(photo, reference=reference)
    assert np.array_equal(with_reference, colorizer(photo, hints=[p.hint for p in points]))
    assert not np.array_equal(with_reference, colorizer(photo))
    assert np.array_equal(colorizer(photo, reference=photo), colorizer(photo, reference=Reference(colorizer, photo)))


def test_a_reference_matching_too_few_places_gives_no_point_at_all(colorizer, photo):
    lightness = colorizer.read_lightness(photo)
    found = len(Reference(colorizer, photo, min_points=1).points(colorizer, lightness))
    assert found >= reference_lib.MIN_POINTS
    assert len(Reference(colorizer, photo, min_points=found).points(colorizer, lightness)) == found
    assert Reference(colorizer, photo, min_points=found + 1).points(colorizer, lightness) == []


def test_the_persons_hints_win_over_the_references_nearby_points(colorizer, photo):
    reference = Reference(colorizer, photo, ratio=1.0)
    lightness = colorizer.read_lightness(photo)
    everywhere = reference.points(colorizer, lightness)
    mine = (everywhere[0].x, everywhere[0].y, "#00ff00")
    kept = reference.points(colorizer, lightness, hints=[mine])
    reach = reference_lib.USER_RADIUS * reference_lib.STRIDE * photo.shape[1] / SIDE
    assert len(kept) < len(everywhere)
    assert all(max(abs(p.x - mine[0]), abs(p.y - mine[1])) > reach / 2 for p in kept)
    given = reference.hints_for(colorizer, lightness, [mine])
    assert given[0] == mine and set(given[1:]) == {p.hint for p in kept}


def test_a_model_without_hints_or_features_is_refused_in_one_line(tiny_model, photo):
    with pytest.raises(HintError, match="reference photo reaches the model as hints: this model takes no colour"):
        Reference(Colorizer(tiny_model(image_size=SIDE)), photo)

    class Exported(Runner):  # an exported file with its hints input: no features to match in
        takes_hints = True

        def forward(self, inputs):
            return np.zeros(inputs["L"].shape[:3] + (2,), np.float32)

    with pytest.raises(HintError) as refused:
        Reference(Colorizer(Exported()), photo)
    assert str(refused.value) == Runner.features_refusal and "\n" not in str(refused.value)


def test_an_unreadable_reference_names_the_file_and_why(colorizer, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"not a photo")
    with pytest.raises(ImageReadError) as unreadable:
        Reference(colorizer, bad)
    assert str(unreadable.value).startswith(f"{bad}: cannot use as a reference photo: ")
    with pytest.raises(ImageReadError, match="missing.jpg: cannot use as a reference photo: "):
        Reference(colorizer, tmp_path / "missing.jpg")
    black_and_white = np.repeat(make_photo(np.random.default_rng(2), 64, 64)[..., :1], 3, -1)
    gray = io.write_image(tmp_path / "gray.png", black_and_white)
    with pytest.raises(ImageReadError) as colourless:
        Reference(colorizer, gray)
    assert str(colourless.value) == f"{gray}: cannot use as a reference photo: it has no colour (black and white)"


# === A folder, a clip, the command line ===


def test_a_folder_job_matches_the_reference_on_each_photo(colorizer, photo, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        io.write_image(photos / f"p{index}.png", np.ascontiguousarray(np.roll(photo, 20 * index, axis=1)))
    ref = io.write_image(tmp_path / "ref.png", photo)
    report = colorize_folder([photos], tmp_path / "out", colorizer, reference=ref, progress=False)
    assert report.ok and len(report.written) == 3
    reference = Reference(colorizer, ref)
    for index in range(3):
        source = io.read_rgb(photos / f"p{index}.png")
        assert np.array_equal(io.read_rgb(tmp_path / "out" / f"p{index}.png"), colorizer(source, reference=reference))


def test_a_clips_reference_is_matched_once_a_shot_and_carried_to_every_frame(colorizer, photo, tmp_path,
                                                                            monkeypatch):
    pytest.importorskip("av")
    from colorfusion.testing import clips

    frames = [np.ascontiguousarray(np.roll(photo, 2 * t, axis=1)) for t in range(6)]
    clip = clips.write_clip(tmp_path / "clip.mp4", frames)
    plain = colorizer.colorize_video(clip, tmp_path / "plain.mp4", temporal="none", progress=False)
    matched = colorizer.colorize_video(clip, tmp_path / "ref.mp4", temporal="none", progress=False, reference=photo)
    assert matched.frames == plain.frames == 6
    from colorfusion.inference.video import read_frames

    for a, b in zip(read_frames(plain.output), read_frames(matched.output)):
        assert np.abs(a.rgb.astype(int) - b.rgb).mean() > 0.5  # every frame took colours from the reference
    calls = []
    original = Reference.points

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Reference, "points", counting)
    colorizer.colorize_video(clip, tmp_path / "again.mp4", progress=False, reference=photo)
    assert len(calls) == 1  # one shot: matched once


def test_colorize_reference_on_the_command_line(tiny_model, photo, tmp_path, capsys):
    model = tmp_path / "hints.keras"
    tiny_model("classification", hints=True, seed=0, image_size=SIDE).save(model)
    source = io.write_image(tmp_path / "old.png", photo)
    ref = io.write_image(tmp_path / "ref.png", photo)
    out = tmp_path / "out"
    assert cli.main(["colorize", str(source), "-o", str(out), "--model", str(model), "--reference", str(ref),
                     "--quiet"]) == 0
    assert np.array_equal(io.read_rgb(out / "old.png"),
                          Colorizer.from_path(model)(io.read_rgb(source), reference=io.read_rgb(ref)))
    capsys.readouterr()

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    assert cli.main(["colorize", str(source), "-o", str(tmp_path / "out2"), "--model", str(model), "--reference",
                     str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: cannot use as a reference photo: "), err
    assert not (tmp_path / "out2").exists()

    assert cli.main(["colorize", str(source), "-o", str(tmp_path / "out2"), "--engine", "ray", "--reference",
                     str(ref), "--quiet"]) == 1
    assert capsys.readouterr().err == ("error: --reference runs with --engine local only (the ray engine's workers "
                                       "take no reference)\n")

    automatic = tmp_path / "automatic.keras"
    tiny_model("classification", seed=0, image_size=SIDE).save(automatic)
    assert cli.main(["colorize", str(source), "-o", str(tmp_path / "out3"), "--model", str(automatic),
                     "--reference", str(ref), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: a reference photo reaches the model as hints: this model takes no colour hints "
                   "(it was trained without hints=True); use the shipped model or a run trained with hints"]


@pytest.mark.slow
def test_colorize_reference_as_the_docs_show_it_prints_its_own_lines_only(photo, tmp_path):
    from test_entry_points import assert_quiet, console_script

    source = io.write_image(tmp_path / "old.jpg", photo)
    ref = io.write_image(tmp_path / "ref.jpg", np.ascontiguousarray(photo[:, ::-1]))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([str(console_script()), "colorize", str(source), "--reference", str(ref), "-o",
                           str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert_quiet(done)
    assert (tmp_path / "out" / "old.jpg").is_file() and "1 written" in done.stdout
    done = subprocess.run([str(console_script()), "colorize", str(source), "--reference", str(tmp_path / "no.jpg"),
                           "-o", str(tmp_path / "out2")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"error: {tmp_path / 'no.jpg'}: cannot use as a reference photo: no such file\n"


# === The studio's route (the page itself: test_studio_browser_reference.py) ===


def test_the_studio_answers_a_references_points_away_from_the_persons(colorizer, tiny_model, tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import json
    from urllib.parse import quote

    from test_studio import Client

    from colorfusion.studio.serving import running
    from colorfusion.studio.state import Studio

    photo, _ = quadrants(SIDE * 2, SIDE * 3)
    data = io.write_image(tmp_path / "photo.png", photo).read_bytes()
    for model, takes_hints in ((colorizer, True), (Colorizer(tiny_model(image_size=SIDE)), False)):
        studio = Studio(model)
        with running(studio) as url:
            client = Client(url)
            status, _, body = client.call("POST", "/api/photos?name=photo.png", body=data)
            assert status == 200
            photo_id = json.loads(body)["id"]

            def ask(body, name="ref.png", hints=(), client=client, photo_id=photo_id):
                return client.call("POST", f"/api/photos/{photo_id}/reference?name={quote(name)}&hints="
                                           f"{quote(json.dumps(list(hints)))}", body=body)

            if not takes_hints:
                assert client.error("POST", f"/api/photos/{photo_id}/reference?name=ref.png", body=data) == (
                    400, "a reference photo reaches the model as hints: this model takes no colour hints (it was "
                         "trained without hints=True); use the shipped model or a run trained with hints")
                continue
            status, _, body = ask(data)
            found = json.loads(body)
            assert status == 200 and found["name"] == "ref.png" and found["points"]
            expected = Reference(colorizer, photo).points(colorizer, colorizer.read_lightness(photo))
            assert found["points"] == [[p.x, p.y, p.hex, p.weight] for p in expected]
            x, y = found["points"][0][:2]
            status, _, body = ask(data, hints=[[x, y, "#00ff00"]])
            assert status == 200 and [x, y] not in [p[:2] for p in json.loads(body)["points"]]
            status, message = client.error("POST", f"/api/photos/{photo_id}/reference?name=notes.jpg",
                                           body=b"not a photo")
            assert status == 415 and message.startswith("notes.jpg: cannot use as a reference photo: not an image")
            assert client.error("POST", f"/api/photos/{photo_id}/reference?name=r.png&hints=%7B", body=data)[0] == 400
        studio.close()
