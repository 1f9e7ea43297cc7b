"""colorfusion studio: the package calls under the page, and the server's safety.

The server runs for real (uvicorn on a free port, in a thread) with the
shipped model; requests go over sockets, so Host headers, limits and
disconnects are those a browser would meet. The page itself is tested in
Chromium by test_studio_browser.py.
"""

import http.client
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from photos import make_photo

from colorfusion import io
from colorfusion.errors import HintError
from colorfusion.hints import hints_for_photo
from colorfusion.inference.colorizer import Colorizer
from colorfusion.inference.suggest import (
    HintSession,
    colour_modes,
    gamut_plane,
    hint_network,
    suggest_colours,
)
from colorfusion.studio import CACHE_PHOTOS, DEFAULT_HOST, MAX_MEGAPIXELS, MAX_UPLOAD_MB, MAX_WAITING
from colorfusion.studio.serving import running
from colorfusion.studio.state import Photo, PhotoCache, Studio

REPO = Path(__file__).resolve().parents[1]


# === Fixtures ===


@pytest.fixture(scope="module")
def colorizer():
    return Colorizer.pretrained()


@pytest.fixture(scope="module")
def photo_rgb():
    return make_photo(np.random.default_rng(3), 96, 128)


@pytest.fixture
def photo_file(tmp_path, photo_rgb):
    return io.write_image(tmp_path / "photo.png", photo_rgb)


@pytest.fixture(scope="module")
def server(colorizer):
    studio = Studio(colorizer)
    with running(studio) as url:
        yield Client(url), studio
    studio.close()


class Client:
    """HTTP over a socket, Host header and all under the test's control."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port

    def call(self, method, path, body=None, headers=None, host=None, timeout=120):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Host": host or f"127.0.0.1:{self.port}", **(headers or {})}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), data

    def error(self, *args, **kwargs):
        status, _, data = self.call(*args, **kwargs)
        try:
            return status, json.loads(data)["error"]
        except (ValueError, KeyError):
            return status, data.decode("utf-8", "replace")

    def upload(self, data: bytes, name="photo.png"):
        status, _, body = self.call("POST", f"/api/photos?name={quote(name)}", body=data)
        return status, json.loads(body)


# === The package: suggested colours, the gamut, a photo being fixed ===


def test_colour_modes_finds_separate_peaks_most_likely_first():
    centers = np.array([[0, 0], [10, 0], [60, 60], [70, 60], [-50, 40]], np.float32)
    probs = np.array([0.30, 0.20, 0.25, 0.20, 0.05])
    modes = colour_modes(probs, centers, k=8)
    assert [tuple(ab) for ab, _ in modes] == [(0, 0), (60, 60), (-50, 40)]  # neighbours join their peak
    assert [round(p, 2) for _, p in modes] == [0.5, 0.45, 0.05]
    assert len(colour_modes(probs, centers, k=1)) == 1


def test_gamut_plane_holds_the_colours_of_that_lightness():
    plane = gamut_plane(50)
    assert plane.shape == (128, 128, 4) and plane.dtype == np.uint8
    assert plane[64, 64, 3] == 255  # the gray in the middle exists at any lightness
    assert plane[0, 0, 3] == 0  # a = -110, b = +110 does not exist in sRGB
    from colorfusion import color

    inside = plane[..., 3] == 255
    lab = color.rgb_to_lab(plane[..., :3][inside][None])
    assert abs(np.median(lab[0, :, 0]) - 50) < 1.0  # shown at the lightness asked for
    assert (gamut_plane(97)[..., 3] > 0).mean() < inside.mean()  # near white, few colours exist


def test_suggest_colours_are_likely_colours_at_the_point_lightness(colorizer, photo_rgb):
    found = colorizer.suggest_colours(photo_rgb, 40, 30, k=5)
    assert found == suggest_colours(colorizer, photo_rgb, 40, 30, k=5)
    assert 1 <= len(found) <= 5
    probabilities = [s.probability for s in found]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    from colorfusion import color

    l_point = HintSession(colorizer, photo_rgb).lightness_at(40, 30)
    for s in found:
        assert len(s.hex) == 7 and s.hex.startswith("#")
        shown = color.rgb_to_lab(np.array([[s.rgb]], np.uint8))[0, 0, 0]
        assert abs(shown - l_point) < 3  # at the point's own lightness (clipping aside)
    with pytest.raises(HintError, match="outside the photo"):
        suggest_colours(colorizer, photo_rgb, 500, 30)


def test_hint_session_reuses_the_encoder_and_matches_colorizer(colorizer, photo_rgb):
    assert hint_network(colorizer).split  # the shipped model: the encoder runs once per photo
    session = HintSession(colorizer, photo_rgb)
    hints = [(40, 30, "#c0392b"), (100, 80, "#2e86c1")]
    _, _, ab = session._run(hints)
    expected = colorizer.predict_ab(session.l_input[None], colorizer.hints_input(hints, session.l_full,
                                                                                  session.l_input.shape[:2])[None])[0]
    assert np.abs(ab - expected).max() < 0.05  # Lab units: the same network, cut in two
    # The download is Colorizer's own path: equal to the bit.
    assert np.array_equal(session.full_resolution(hints), colorizer(photo_rgb, hints=hints))
    assert np.array_equal(session.full_resolution([]), colorizer(photo_rgb))
    assert session.result(hints).shape == (96, 128, 3)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_hint_session_works_for_any_hint_model(head, photo_rgb, tiny_model):
    small = Colorizer(tiny_model(head, hints=True))
    session = HintSession(small, photo_rgb)
    hints = [(40, 30, "#c0392b")]
    assert np.array_equal(session.full_resolution(hints), small(photo_rgb, hints=hints))
    expected = small.predict_ab(session.l_input[None], small.hints_input(hints, session.l_full, (32, 32))[None])[0]
    assert np.abs(session._run(hints)[2] - expected).max() < 0.05
    if head == "regression":  # colours without probabilities: nothing to suggest
        with pytest.raises(ValueError, match="classification"):
            session.suggest(10, 10)
    else:
        assert session.suggest(10, 10, hints=hints)


# === The server ===


def test_defaults_are_local_and_limited():
    assert DEFAULT_HOST == "127.0.0.1"
    assert (MAX_UPLOAD_MB, MAX_MEGAPIXELS, MAX_WAITING) == (50, 100, 8)
    from colorfusion.cli import build_parser

    args = build_parser().parse_args(["studio"])
    assert args.host == "127.0.0.1" and args.target is None and not args.no_browser


def test_page_and_its_files_are_served_with_no_network(server):
    client, _ = server
    status, headers, page = client.call("GET", "/")
    assert status == 200 and b"studio.js" in page
    assert "default-src 'self'" in headers["content-security-policy"]
    static = REPO / "src" / "colorfusion" / "studio" / "static"
    for name in ("studio.js", "studio.css"):
        status, _, data = client.call("GET", f"/static/{name}")
        assert status == 200 and data == (static / name).read_bytes()
    for path in static.iterdir():  # no CDN, no font service: works offline
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"studio/static/*"' in pyproject  # package data: in the wheel


def test_refuses_other_host_headers_dns_rebinding(server):
    client, _ = server
    assert client.call("GET", "/api/info")[0] == 200
    assert client.call("GET", "/api/info", host=f"localhost:{client.port}")[0] == 200
    status, message = client.error("GET", "/api/info", host=f"evil.example:{client.port}")
    assert status == 400 and "DNS rebinding" in message
    assert client.call("GET", "/", host="127.0.0.1.evil.example")[0] == 400
    status, message = client.error("POST", "/api/photos?name=a.png", body=b"x",
                                   headers={"Origin": "http://evil.example"})
    assert status == 403 and "another site" in message


def test_only_its_own_port_passes_the_one_the_system_chose(server):
    client, _ = server  # served by `running` on port 0: the guard knows the port it was given
    other = client.port + 1
    status, message = client.error("GET", "/api/info", host=f"127.0.0.1:{other}")
    assert status == 400 and "DNS rebinding" in message
    # A page of another server of this machine (a notebook on :8888) cannot post to the studio.
    for origin in (f"http://127.0.0.1:{other}", "http://localhost:8888", "http://127.0.0.1"):
        status, message = client.error("POST", "/api/photos?name=a.png", body=b"x", headers={"Origin": origin})
        assert status == 403 and "another site or port" in message and "\n" not in message, origin
    # Its own page can: past the guard, the upload is read (and refused for what it is).
    status, message = client.error("POST", "/api/photos?name=a.png", body=b"x",
                                   headers={"Origin": f"http://127.0.0.1:{client.port}"})
    assert status == 415 and "not an image" in message


def test_other_sites_cannot_embed_its_photos(server, photo_file):
    client, _ = server
    record = client.upload(photo_file.read_bytes())[1]
    image = {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    for site in ("cross-site", "same-site"):  # an <img> of another site, or of another port of this machine
        for path in (record["original"], record["gray"], "/api/gamut?l=50", "/api/info"):
            status, message = client.error("GET", path, headers={**image, "Sec-Fetch-Site": site})
            assert status == 403 and "another site" in message, (site, path, status, message)
    assert client.call("GET", record["original"], headers={**image, "Sec-Fetch-Site": "same-origin"})[0] == 200
    # And what a browser would fetch anyway is not handed to another origin: CORP on every answer.
    answers = [client.call("GET", "/"), client.call("GET", record["original"]), client.call("GET", "/static/studio.js"),
               client.call("GET", "/api/photos/nope/gray.jpg"), client.call("GET", "/api/info", host="evil.example"),
               client.call("POST", f"/api/photos/{record['id']}/download", body={"hints": []})]
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 400, 200]
    for status, headers, _ in answers:
        assert headers["cross-origin-resource-policy"] == "same-origin", status


def test_upload_opens_photo_and_bad_files_get_clear_messages(server, photo_file, tmp_path):
    client, studio = server
    status, record = client.upload(photo_file.read_bytes(), "photo.png")
    assert status == 200, record
    assert (record["width"], record["height"], record["name"]) == (128, 96, "photo.png")
    assert client.call("GET", record["gray"])[0] == 200
    truncated = tmp_path / "cut.jpg"
    io.write_image(truncated, make_photo(np.random.default_rng(1), 200, 200))
    cases = {
        "notes.png": (b"this is not an image", 415, "not an image"),
        "cut.jpg": (truncated.read_bytes()[:600], 415, "truncated"),
        "empty.png": (b"", 400, "empty file"),
        "huge.png": (_png_header(12_000, 10_000), 413, "too large"),  # 120 MP, from the header alone
    }
    for name, (data, expected, words) in cases.items():
        status, body = client.upload(data, name)
        assert status == expected and words in body["error"] and body["error"].startswith(name), (name, body)
    assert not list(studio.workdir.iterdir())  # uploads are deleted once read


def test_upload_size_limit(colorizer, photo_file):
    studio = Studio(colorizer, max_upload_bytes=2_000)
    try:
        with running(studio) as url:
            client = Client(url)
            status, body = client.upload(photo_file.read_bytes() + b"\0" * 3_000)
            assert status == 413 and "too large" in body["error"] and "0 MB" in body["error"]
            # Declared too large: refused before a byte is read.
            status, message = client.error("POST", "/api/photos?name=big.jpg", body=b"x" * 10,
                                           headers={"Content-Length": "60000000"})
            assert status == 413 and "60 MB" in message
    finally:
        studio.close()
    assert Studio(colorizer).max_upload_bytes == 50_000_000


def test_malformed_requests_get_4xx_and_the_server_goes_on(server, photo_file):
    client, _ = server
    status, record = client.upload(photo_file.read_bytes())
    base = f"/api/photos/{record['id']}"
    cases = [
        ("POST", f"{base}/result", b"{not json", 400, "not JSON"),
        ("POST", f"{base}/result", [1, 2], 400, "JSON object"),
        ("POST", f"{base}/result", {"hints": "red"}, 400, "hints"),
        ("POST", f"{base}/result", {"hints": [[5, 5]]}, 400, "hints"),
        ("POST", f"{base}/result", {"hints": [[500, 5, "#ff0000"]]}, 400, "outside the photo"),
        ("POST", f"{base}/result", {"hints": [[5, 5, "#ff00"]]}, 400, "#rrggbb"),
        ("POST", f"{base}/suggest", {"x": "a", "y": 1}, 400, "'x' must be a number"),
        ("POST", f"{base}/suggest", {"x": 1, "y": 96}, 400, "'y' must be in"),
        ("POST", "/api/photos/nope/result", {"hints": []}, 404, "no longer open"),
        ("GET", "/api/gamut?l=abc", None, 400, "lightness"),
        ("GET", "/api/folder", None, 404, "no folder"),
        ("GET", f"{base}/result", None, 405, ""),
        ("GET", "/nowhere", None, 404, ""),
    ]
    for method, path, body, expected, words in cases:
        status, message = client.error(method, path, body=body)
        assert status == expected and words in message, (path, body, status, message)
    status, headers, data = client.call("POST", f"{base}/result", body={"hints": [[5, 5, "#ff0000"]]})
    assert status == 200 and headers["content-type"] == "image/jpeg" and data[:2] == b"\xff\xd8"
    status, _, data = client.call("POST", f"{base}/suggest", body={"x": 10, "y": 20, "hints": []})
    found = json.loads(data)
    assert status == 200 and found["colours"] and found["gamut"].startswith("/api/gamut?l=")


def test_client_disconnecting_mid_upload_leaves_nothing(server, photo_file):
    client, studio = server
    with socket.create_connection((client.host, client.port)) as raw:
        raw.sendall(f"POST /api/photos?name=a.png HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
                    f"Content-Length: 100000\r\n\r\n".encode() + photo_file.read_bytes()[:500])
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while list(studio.workdir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(studio.workdir.iterdir())
    assert client.upload(photo_file.read_bytes())[0] == 200  # and it goes on


def test_a_bug_is_a_500_not_the_users_fault_and_the_server_goes_on(server, photo_file, monkeypatch, capfd,
                                                                  request):
    client, _ = server
    uvicorn_errors = []
    handler = logging.Handler()
    handler.emit = uvicorn_errors.append
    logging.getLogger("uvicorn.error").addHandler(handler)
    request.addfinalizer(lambda: logging.getLogger("uvicorn.error").removeHandler(handler))
    record = client.upload(photo_file.read_bytes())[1]
    path = f"/api/photos/{record['id']}/result"
    original = HintSession.result
    for error in (ValueError("operands could not be broadcast together\nshapes (3,) (4,)"), KeyError("ab"),
                  RuntimeError("")):
        def failing(self, hints=(), error=error):
            raise error

        monkeypatch.setattr(HintSession, "result", failing)
        status, message = client.error("POST", path, body={"hints": []})
        expected = "studio failed: " + {ValueError: "ValueError: operands could not be broadcast together",
                                        KeyError: "KeyError: 'ab'", RuntimeError: "RuntimeError"}[type(error)]
        assert status == 500 and message == expected, (status, message)
        # The terminal gets the same line, not a traceback (uvicorn logs one for an exception that reaches it).
        terminal = capfd.readouterr().err
        assert f"{expected} (POST {path};" in terminal, terminal
        assert not [record for record in uvicorn_errors if record.exc_info], "uvicorn logged a traceback"
        monkeypatch.setattr(HintSession, "result", original)
        assert client.call("POST", path, body={"hints": []})[0] == 200  # the next request works
    # The user's own mistakes stay 4xx: a hint outside the photo is a HintError (a ValueError).
    assert client.error("POST", path, body={"hints": [[500, 5, "#ff0000"]]})[0] == 400


def test_too_large_and_unreadable_come_from_the_error_type_not_its_words(server, photo_file, monkeypatch):
    from colorfusion.errors import ImageReadError
    from colorfusion.io import ImageTooLargeError

    client, _ = server
    cases = [(ImageTooLargeError, "12000x10000 = 120,000,000 pixels is over the limit", 413),
             (ImageReadError, "truncated or damaged file (iCCP chunk too large)", 415)]
    for error_type, words, expected in cases:
        def read_rgb(path, *args, error_type=error_type, words=words, **kwargs):
            raise error_type(path, words)

        monkeypatch.setattr(io, "read_rgb", read_rgb)
        status, body = client.upload(photo_file.read_bytes(), "photo.png")
        assert status == expected and body["error"] == f"photo.png: {words}", (error_type, status, body)


def test_suggestions_from_a_regression_model_are_refused_in_one_line(photo_file, tiny_model):
    studio = Studio(Colorizer(tiny_model("regression", hints=True)))
    try:
        with running(studio) as url:
            client = Client(url)
            record = client.upload(photo_file.read_bytes())[1]
            status, message = client.error("POST", f"/api/photos/{record['id']}/suggest", body={"x": 5, "y": 5})
            assert status == 400 and "regression model" in message, (status, message)
            assert client.call("POST", f"/api/photos/{record['id']}/result", body={"hints": [[5, 5, "#ff0000"]]}
                               )[0] == 200
    finally:
        studio.close()


def test_a_full_model_queue_answers_busy_and_the_server_goes_on(colorizer, photo_file, monkeypatch):
    studio = Studio(colorizer, max_waiting=2)
    try:
        with running(studio) as url:
            client = Client(url)
            record = client.upload(photo_file.read_bytes())[1]
            path = f"/api/photos/{record['id']}/result"
            entered, release = threading.Event(), threading.Event()
            original = HintSession.result

            def blocked(self, hints=()):
                entered.set()
                assert release.wait(60)
                return original(self, hints)

            monkeypatch.setattr(HintSession, "result", blocked)
            results = []
            threads = [threading.Thread(target=lambda: results.append(client.call("POST", path, body={"hints": []})[0]))
                       for _ in range(3)]  # one runs, two wait: the queue is full
            try:
                threads[0].start()
                assert entered.wait(30)
                for thread in threads[1:]:
                    thread.start()
                deadline = time.monotonic() + 30
                while studio.model_jobs < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert studio.model_jobs == 3
                status, headers, data = client.call("POST", path, body={"hints": []}, timeout=10)  # at once
                message = json.loads(data)["error"]
                assert status == 503 and "busy" in message and "retry in a moment" in message, (status, message)
                assert headers["retry-after"] == "1"
                assert client.call("GET", "/api/info")[0] == 200  # what needs no model is served meanwhile
            finally:
                release.set()
                for thread in threads:
                    thread.join(60)
            assert results == [200] * 3 and studio.model_jobs == 0
            assert client.call("POST", path, body={"hints": []})[0] == 200
    finally:
        studio.close()


def test_requests_to_the_model_are_serialized(server, photo_file, monkeypatch):
    client, _ = server
    record = client.upload(photo_file.read_bytes())[1]
    active, most = [0], [0]
    original = HintSession.result

    def counting(self, hints=()):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.05)
        try:
            return original(self, hints)
        finally:
            active[0] -= 1

    monkeypatch.setattr(HintSession, "result", counting)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(client.call(
        "POST", f"/api/photos/{record['id']}/result", body={"hints": [[i, i, "#00ff00"]]})[0])) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 6 and most[0] == 1


def test_download_equals_colorize_hints_on_the_command_line(server, photo_file, tmp_path, capsys):
    client, _ = server
    record = client.upload(photo_file.read_bytes(), "photo.png")[1]
    hints = [[30, 40, "#c0392b"], [100, 20, "#1f77b4"]]
    status, headers, data = client.call("POST", f"/api/photos/{record['id']}/download", body={"hints": hints})
    assert status == 200 and 'filename="photo_colorized.png"' in headers["content-disposition"]
    hints_file = tmp_path / "hints.json"
    hints_file.write_text(json.dumps({"photo.png": hints}))  # what the page's "Save hints" writes
    from colorfusion.cli import main

    assert main(["colorize", str(photo_file), "--hints", str(hints_file), "-o", str(tmp_path / "out"),
                 "--quiet"]) == 0
    written = tmp_path / "out" / "photo.png"
    downloaded = tmp_path / "downloaded.png"
    downloaded.write_bytes(data)
    assert np.array_equal(io.read_rgb(downloaded), io.read_rgb(written))
    assert data == written.read_bytes()


def test_the_download_is_named_and_typed_as_colorize_writes_it(server, photo_rgb, tmp_path):
    from colorfusion.inference.batch import plan_outputs
    from colorfusion.studio.state import download_name

    for name in ("scan.gif", "Photo.JPG", "notes.heic", "old.tiff"):  # the rule of `colorize`: io.output_suffix
        [(_, out)] = plan_outputs([_write(tmp_path / name, b"x")], tmp_path / "out")
        assert download_name(name) == f"{out.stem}_colorized{out.suffix}", name
    client, _ = server
    record = client.upload(io.write_image(tmp_path / "anim.gif", photo_rgb).read_bytes(), "anim.gif")[1]
    status, headers, data = client.call("POST", f"/api/photos/{record['id']}/download", body={"hints": []})
    assert status == 200 and 'filename="anim_colorized.png"' in headers["content-disposition"]
    assert headers["content-type"] == "image/png" and data[:4] == b"\x89PNG"


def test_a_loaded_hints_file_gives_the_open_photo_the_points_colorize_would(server, photo_file):
    client, _ = server
    record = client.upload(photo_file.read_bytes(), "photo.png")[1]
    path = f"/api/photos/{record['id']}/hints-file?name=hints.json"
    red = [[3, 4, "#c0392b"]]
    cases = [  # (the file, the points the open photo takes)
        ({"photo.png": [[3, 4, "#C0392B"]], "other.png": [["5", 6, "#00ff00"]]}, red),  # its own name
        ({"renamed.png": red}, red),  # one entry saved under another name: still its own
        ({"a.png": red, "b.png": []}, None),  # two entries, neither for it
    ]
    for mapping, expected in cases:
        status, _, data = client.call("POST", path, body=json.dumps(mapping).encode())
        found = json.loads(data)
        assert status == 200 and found["hints"] == expected, (mapping, found)
        # The rule of `colorize photo.png --hints`, for the same file:
        assert (hints_for_photo(mapping, "photo.png") is None) == (expected is None)
    assert found["missing"] == "hints.json: no hints for photo.png in this file (it has a.png, b.png)"
    assert json.loads(client.call("POST", path, body=json.dumps(cases[0][0]).encode())[2])["others"] == {
        "other.png": [[5, 6, "#00ff00"]]}  # kept, for the page to save back
    for body, words in ((b"not json", "cannot read hints"), (b"[1]", "JSON object"),
                        (b'{"photo.png": [[1, 2]]}', "expected (x, y, colour)")):
        status, message = client.error("POST", path, body=body)
        assert status == 400 and message.startswith("hints.json: ") and words in message, (body, message)


def test_a_hints_file_names_the_photos_of_a_folder_by_the_same_rule(tmp_path, photo_rgb):
    folder = tmp_path / "photos"
    io.write_image(folder / "a.png", photo_rgb)
    io.write_image(folder / "sub" / "b.png", photo_rgb)
    studio = Studio(None, folder)  # no model needed: the file is only read and matched
    try:
        a = Photo("id", "a.png", None, from_folder=True)
        red, green = [[1, 2, "#ff0000"]], [[3, 4, "#00ff00"]]
        found = studio.hints_from_file(a, {"b.png": red, "a.png": green, "gone.png": red}, "hints.json")
        assert found["hints"] == green and found["by_photo"] == {"a.png": green, "sub/b.png": red}
        assert found["others"] == {"gone.png": red}
        # A folder of two photos: one entry under another name is for neither (as `colorize FOLDER --hints`).
        found = studio.hints_from_file(a, {"renamed.png": red}, "hints.json")
        assert found["hints"] is None and found["others"] == {"renamed.png": red}
    finally:
        studio.close()


def test_folder_mode_serves_only_the_folder(colorizer, tmp_path, photo_rgb):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    io.write_image(folder / "a.png", photo_rgb)
    io.write_image(folder / "sub" / "b.png", photo_rgb)
    io.write_image(tmp_path / "secret.png", photo_rgb)
    (tmp_path / "outside").mkdir()
    io.write_image(tmp_path / "outside" / "c.png", photo_rgb)
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    (folder / "linked_folder").symlink_to(tmp_path / "outside", target_is_directory=True)
    (folder / "inner_link.png").symlink_to(folder / "a.png")  # a link inside the folder is fine
    studio = Studio(colorizer, folder)
    try:
        with running(studio) as url:
            client = Client(url)
            status, _, data = client.call("GET", "/api/folder")
            assert status == 200 and json.loads(data)["photos"] == ["a.png", "inner_link.png", "sub/b.png"]
            status, _, data = client.call("POST", "/api/folder/open?path=sub%2Fb.png")  # an encoded slash, inside
            assert status == 200 and json.loads(data)["name"] == "sub/b.png"
            again = json.loads(client.call("POST", "/api/folder/open?path=sub/b.png")[2])
            assert again["id"] == json.loads(data)["id"] and len(studio.cache) == 1  # held, not read twice
            assert client.call("GET", "/api/folder/thumb?path=a.png")[0] == 200
            refused = ["../secret.png", "..%2Fsecret.png", "sub/../../secret.png", "sub%2F..%2F..%2Fsecret.png",
                       quote(str(tmp_path / "secret.png"), safe=""), "/etc/passwd", "%2Fetc%2Fpasswd",
                       "link.png", "linked_folder/c.png", "..", ".", "", "a.png%00.txt", "sub\\..\\..\\secret.png"]
            for path in refused:
                for method, route in (("POST", "open"), ("GET", "thumb")):
                    status, message = client.error(method, f"/api/folder/{route}?path={path}")
                    assert status == 404 and "not a photo of this folder" in message, (path, status, message)
            # The page's own routes cannot be walked out of either.
            for path in ("/static/../routes.py", "/static/%2e%2e/routes.py", "/static/..%2Froutes.py"):
                assert client.call("GET", path)[0] == 404, path
    finally:
        studio.close()


def test_photo_cache_is_bounded_by_count_and_bytes():
    class Fake:
        def __init__(self, nbytes):
            self.nbytes = nbytes

    cache = PhotoCache(max_photos=3, max_bytes=1000)
    for index in range(10):
        cache.add(Photo(str(index), "p.png", Fake(100)))
    assert len(cache) == 3 and cache.get("9") and cache.get("7")
    cache.add(Photo("big", "p.png", Fake(5000)))  # the newest stays, whatever its size
    assert len(cache) == 1 and cache.get("big")
    assert CACHE_PHOTOS == 8


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_photos_opened(colorizer, tmp_path):
    studio = Studio(colorizer.with_size(32), max_photos=4)
    rng = np.random.default_rng(0)
    files = [io.write_image(tmp_path / f"p{i}.png", make_photo(rng, 384, 384)).read_bytes() for i in range(10)]
    try:
        with running(studio) as url:
            client = Client(url)
            rss = []
            for index in range(200):
                status, record = client.upload(files[index % 10], f"p{index}.png")
                assert status == 200, record
                if index in (49, 199):
                    rss.append(_rss_mb())
            assert len(studio.cache) == 4 and not list(studio.workdir.iterdir())
            assert client.call("POST", f"/api/photos/{record['id']}/result", body={"hints": []})[0] == 200
    finally:
        studio.close()
    assert rss[1] - rss[0] < 60, rss  # 150 more photos opened: no growth beyond noise


# === The command ===


def test_cli_hint_with_a_negative_coordinate_is_one_line_outside_the_photo(tmp_path, photo_file, capsys):
    from colorfusion.cli import main

    code = main(["colorize", str(photo_file), "-o", str(tmp_path / "out"), "--hint", "-5,10,#00ff00", "--quiet"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and "usage:" not in err
    assert len(errors) == 1 and "outside the photo" in errors[0], err


@pytest.mark.slow
def test_studio_imports_neither_cli_nor_training():
    code = ("import sys, colorfusion.studio.serving, colorfusion.inference.suggest; "
            "bad = [m for m in ('colorfusion.cli', 'colorfusion.training') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow
def test_command_warns_off_loopback_and_ctrl_c_leaves_nothing(tmp_path, photo_file):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "colorfusion.cli", "studio", str(photo_file), "--host",
                                "0.0.0.0", "--port", "0", "--no-browser"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert lines[0].startswith("warning: serving on 0.0.0.0"), lines
        url = lines[1].split()[2]
        assert lines[1].startswith("colorfusion studio: http://127.0.0.1:"), lines
        client = Client(url)
        status, _, data = client.call("GET", "/api/folder")
        assert status == 200 and json.loads(data)["photos"] == ["photo.png"]
        assert list(tmp_path.glob("colorfusion-studio-*"))  # its temporary folder, while it runs
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
    finally:
        if process.poll() is None:
            process.kill()
    assert not list(tmp_path.glob("colorfusion-studio-*"))  # nothing left behind
    assert "Traceback" not in process.stderr.read()


# === Helpers ===


def _png_header(width: int, height: int) -> bytes:
    """A PNG file whose header declares width x height pixels (and holds none): a decompression bomb's front."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
