"""Benchmark: how long the studio makes a person wait, measured through its running server.

`colorfusion studio --no-browser` runs in its own process with the shipped
model (as a user starts it); this script is the page: it opens photos of 1,
3 and 12 megapixels (JPEG, colorized at the default short side 256) over
HTTP, then clicks as the page does: a point's suggested colours
(`/suggest`), then the new result with that point added (`/result`, a JPEG
at display size). Click-to-result is the two together, what a person waits
between a click and the new colours. The download is the 12 MP photo's
full-resolution file with those hints (`/download`: the same pixels as
`colorize --hints`). Medians of `--clicks` clicks (each one a new point, so
nothing is answered from a cache) and `--downloads` downloads.

Baseline, measured in the same run in this process: what a click would cost
without the studio's cache, one `Colorizer(photo, hints=...)` call at full
resolution on the decoded photo (the photo's L and the encoder recomputed
every time).

Targets (issue 24, a 2-core CPU): click-to-result <= 300 ms, download <= 1.5 s.

    python benchmarks/bench_studio.py
    python benchmarks/bench_studio.py --clicks 11 --sizes 1 12

Prints a table and, as its last line, JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

TARGET_CLICK_MS = 300
TARGET_DOWNLOAD_MS = 1500
SHAPES = {1: (864, 1152), 3: (1500, 2000), 12: (3000, 4000)}  # megapixels -> (height, width), 4:3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(SHAPES), choices=sorted(SHAPES),
                        help="photo sizes in megapixels (default 1 3 12)")
    parser.add_argument("--clicks", type=int, default=9, help="clicks per photo (default 9)")
    parser.add_argument("--downloads", type=int, default=3, help="downloads of the 12 MP photo (default 3)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="baseline calls per photo (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-studio-") as tmp:
        photos = {mp: make_photo(Path(tmp) / f"photo_{mp}mp.jpg", *SHAPES[mp]) for mp in args.sizes}
        server, url = start_server(tmp)
        try:
            client = Client(url)
            rows = {mp: measure_clicks(client, photos[mp], args.clicks) for mp in args.sizes}
            download = measure_download(client, photos[max(args.sizes)], args.downloads)
        finally:
            server.terminate()
            server.wait(30)
        baseline = measure_baseline(photos, args.baseline_runs)

    print(f"\nstudio through its server, medians ({args.clicks} clicks a photo; short side 256; "
          f"{os.cpu_count()} CPUs)\n")
    print(f"{'photo':>7} {'open ms':>8} {'suggest ms':>11} {'result ms':>10} {'click->result ms':>17} "
          f"{'baseline ms':>12} {'x faster':>9} {'target':>7}")
    for mp, row in rows.items():
        click = row["click_ms"]
        print(f"{mp:>4} MP {row['open_ms']:>8.0f} {row['suggest_ms']:>11.0f} {row['result_ms']:>10.0f} "
              f"{click:>17.0f} {baseline[mp]:>12.0f} {baseline[mp] / click:>9.1f} "
              f"{'ok' if click <= TARGET_CLICK_MS else 'MISSED':>7}")
    biggest = max(args.sizes)
    print(f"\nfull-resolution download of the {biggest} MP photo: {download['download_ms']:.0f} ms median "
          f"({download['bytes'] / 1e6:.1f} MB JPEG; target {TARGET_DOWNLOAD_MS} ms: "
          f"{'ok' if download['download_ms'] <= TARGET_DOWNLOAD_MS else 'MISSED'})")
    summary = {"clicks": {f"{mp}mp": rows[mp] for mp in rows}, "download": download,
               "baseline_ms": {f"{mp}mp": baseline[mp] for mp in baseline},
               "targets_ms": {"click": TARGET_CLICK_MS, "download": TARGET_DOWNLOAD_MS}}
    print(json.dumps(summary))
    ok = all(row["click_ms"] <= TARGET_CLICK_MS for row in rows.values()) and \
        download["download_ms"] <= TARGET_DOWNLOAD_MS
    return 0 if ok else 1


# === The photos ===


def make_photo(path: Path, height: int, width: int) -> Path:
    """A real photo (scikit-image's coffee, shipped offline) enlarged to height x width, as a JPEG."""
    from PIL import Image
    from skimage import data

    Image.fromarray(data.coffee()).resize((width, height), Image.BICUBIC).save(path, quality=92)
    return path


# === The server, as a user starts it ===


def start_server(workdir) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(workdir)}
    process = subprocess.Popen([sys.executable, "-m", "colorfusion.cli", "studio", "--no-browser", "--port", "0"],
                               stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    if not line.startswith("colorfusion studio: "):
        process.kill()
        raise RuntimeError(f"the studio did not start: {line!r}")
    return process, line.split()[2]


class Client:
    def __init__(self, url):
        host, port = url.split("//", 1)[1].strip("/").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=600)  # kept alive, as a browser does
        self.connection.connect()
        # As browsers do: without it, Nagle's algorithm meets the server's delayed ACK (40 ms a request).
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"{host}:{port}"

    def post(self, path, body) -> tuple[float, bytes]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        started = time.perf_counter()
        self.connection.request("POST", path, body=data, headers={"Host": self.host})
        response = self.connection.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1e3
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {payload[:200]!r}")
        return elapsed, payload


def measure_clicks(client: Client, photo: Path, clicks: int) -> dict:
    open_ms, payload = client.post(f"/api/photos?name={photo.name}", photo.read_bytes())
    record = json.loads(payload)
    base = f"/api/photos/{record['id']}"
    width, height = record["width"], record["height"]
    rng = np.random.default_rng(0)
    client.post(f"{base}/result", {"hints": []})  # the page's first result (answered from the open)
    hints, suggest_ms, result_ms = [], [], []
    for _ in range(clicks + 1):  # the first click warms this photo's shapes up; not counted
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        elapsed, payload = client.post(f"{base}/suggest", {"x": x, "y": y, "hints": hints})
        suggest_ms.append(elapsed)
        hints = [*hints, [x, y, json.loads(payload)["colours"][0]["hex"]]]
        elapsed, _ = client.post(f"{base}/result", {"hints": hints})
        result_ms.append(elapsed)
    suggest_ms, result_ms = suggest_ms[1:], result_ms[1:]
    click_ms = [s + r for s, r in zip(suggest_ms, result_ms)]
    return {"open_ms": round(open_ms, 1), "suggest_ms": round(float(np.median(suggest_ms)), 1),
            "result_ms": round(float(np.median(result_ms)), 1), "click_ms": round(float(np.median(click_ms)), 1),
            "id": record["id"], "hints": hints}


def measure_download(client: Client, photo: Path, runs: int) -> dict:
    open_ms, payload = client.post(f"/api/photos?name={photo.name}", photo.read_bytes())
    base = f"/api/photos/{json.loads(payload)['id']}"
    hints = [[100, 200, "#c0392b"], [1500, 1000, "#2e86c1"]]
    times, size = [], 0
    for index in range(runs):
        elapsed, data = client.post(f"{base}/download", {"hints": hints[: 1 + index % 2]})
        times.append(elapsed)
        size = len(data)
    return {"download_ms": round(float(np.median(times)), 1), "bytes": size}


def measure_baseline(photos: dict, runs: int) -> dict:
    """A click without the studio: one full-resolution `Colorizer` call with the hints, per click."""
    from colorfusion import io
    from colorfusion.inference.colorizer import Colorizer

    colorizer = Colorizer.pretrained()
    found = {}
    for mp, path in photos.items():
        rgb = io.read_rgb(path)
        colorizer(rgb, hints=[(10, 10, "#808080")])  # warm up
        times = []
        for index in range(runs):
            started = time.perf_counter()
            colorizer(rgb, hints=[(10 + index, 10, "#c0392b")])
            times.append((time.perf_counter() - started) * 1e3)
        found[mp] = round(float(np.median(times)), 1)
    return found


if __name__ == "__main__":
    sys.exit(main())
