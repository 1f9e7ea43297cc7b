"""Benchmark: full-resolution colorization of a 12 MP photo, ours against scikit-image.

One 4000 x 3000 photo (scikit-image's astronaut, upscaled) is colorized end
to end in memory: L of the full image, the model on the photo resized to its
aspect ratio (short side 256: 256 x 352), ab upsampled to 4000 x 3000
(bicubic), Lab -> uint8 RGB. Model loading and file encoding are excluded.
Both variants use the same model, called the same way (`Colorizer.predict_ab`,
warmed up before timing): `--model pretrained` (default) the model that
ships in the package; `--model random` a width-1.0 regression colorizer with
a fixed 256 x 256 input and random weights (the figure of earlier releases).

- ours: `Colorizer` (OpenCV in cache-sized strips on every core);
- skimage: the same steps with `skimage.color.rgb2lab`, `skimage.transform.resize`
  (anti-aliased down, order 3 up) and `skimage.color.lab2rgb`.

Each variant runs in its own subprocess, so its peak resident memory
(`ru_maxrss`, the kernel's high-water mark of the whole process: Python,
TensorFlow and the model included) is its own; "step" is that peak minus the
resident memory just before the first timed call. Times are the median of
`--repeats` runs (minimum in brackets); the machine may be shared, so the
load average is printed.

Prints a table, then as its last line a JSON object with the figures and
`ratio` = skimage median / ours median.

    python benchmarks/bench_colorize.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

HEIGHT, WIDTH, MODEL_SIZE = 3000, 4000, 256


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_photo():
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def ours(colorizer):
    stages = {}

    def run(rgb):
        start = time.perf_counter()
        l_full, l_small = colorizer.read_lightness(rgb)
        t1 = time.perf_counter()
        ab = colorizer.predict_ab(l_small[None])[0]
        t2 = time.perf_counter()
        out = colorizer.join_full_resolution(l_full, ab)
        t3 = time.perf_counter()
        for name, seconds in (("L (full + small)", t1 - start), ("model", t2 - t1), ("ab up + Lab->RGB", t3 - t2)):
            stages.setdefault(name, []).append(seconds)
        return out

    return run, stages


def skimage_steps(colorizer):
    import numpy as np
    from skimage import color as skcolor
    from skimage import transform

    def run(rgb):
        l_full = skcolor.rgb2lab(rgb)[..., 0]
        shape = colorizer.input_shape(HEIGHT, WIDTH)
        l_small = transform.resize(l_full, shape, order=1, anti_aliasing=True)
        ab = colorizer.predict_ab(l_small[None, ..., None].astype(np.float32))[0]
        ab_full = transform.resize(ab, (HEIGHT, WIDTH, 2), order=3)
        lab = np.concatenate([l_full[..., None], ab_full], axis=-1)
        return (np.clip(skcolor.lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8)

    return run, {}


def make_colorizer(model: str):
    from colorfusion import model as model_lib
    from colorfusion.inference.colorizer import Colorizer

    if model == "pretrained":
        return Colorizer.pretrained(size=MODEL_SIZE)
    return Colorizer(model_lib.build_colorizer(image_size=MODEL_SIZE, head="regression", embedding_dim=None, width=1.0))


def child(variant: str, repeats: int, model: str) -> dict:
    import numpy as np

    colorizer = make_colorizer(model)
    rgb = make_photo()
    colorizer(rgb[:300, :400])  # warm up the model call: part of loading, not of colorizing
    colorizer(rgb[:30, :40])
    run, stages = ours(colorizer) if variant == "ours" else skimage_steps(colorizer)
    before = rss_mb()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run(rgb)
        times.append(time.perf_counter() - start)
    assert out.shape == (HEIGHT, WIDTH, 3) and out.dtype == np.uint8
    return {"times": times, "rss_before_mb": before, "peak_rss_mb": peak_rss_mb(), "checksum": int(out.sum()),
            "stages": {k: float(np.median(v)) for k, v in stages.items()}, "out_mean": float(out.mean())}


def measure(variant: str, repeats: int, model: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", variant, "--repeats", str(repeats), "--model", model],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours (skimage: max(2, repeats // 2))")
    parser.add_argument("--model", choices=("pretrained", "random"), default="pretrained",
                        help="the shipped model (default), or a random width-1.0 regression model at 256 x 256")
    parser.add_argument("--child", choices=("ours", "skimage"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats, args.model)))
        return

    load_before = os.getloadavg()[0]
    results = {"ours": measure("ours", args.repeats, args.model),
               "skimage": measure("skimage", max(2, args.repeats // 2), args.model)}
    load_after = os.getloadavg()[0]
    described = (f"the shipped model at short side {MODEL_SIZE}" if args.model == "pretrained" else
                 f"random regression model, width 1.0, input {MODEL_SIZE} x {MODEL_SIZE}")
    print(f"colorize a {WIDTH}x{HEIGHT} photo in memory: {described}; {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    print(f"{'variant':<10}{'median s':>10}{'(min s)':>10}{'peak RSS MB':>13}{'step MB':>10}")
    for name, r in results.items():
        step = r["peak_rss_mb"] - r["rss_before_mb"]
        print(f"{name:<10}{median(r['times']):>10.3f}{min(r['times']):>10.3f}{r['peak_rss_mb']:>13.0f}{step:>10.0f}")
    print("ours by stage (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in results["ours"]["stages"].items()))
    difference = abs(results["ours"]["out_mean"] - results["skimage"]["out_mean"])
    print(f"mean output level: ours {results['ours']['out_mean']:.2f}, skimage {results['skimage']['out_mean']:.2f}")
    figures = {
        "image": f"{WIDTH}x{HEIGHT}", "model": described,
        "ours_s": round(median(results["ours"]["times"]), 4), "ours_min_s": round(min(results["ours"]["times"]), 4),
        "skimage_s": round(median(results["skimage"]["times"]), 4),
        "skimage_min_s": round(min(results["skimage"]["times"]), 4),
        "ours_peak_rss_mb": round(results["ours"]["peak_rss_mb"]),
        "skimage_peak_rss_mb": round(results["skimage"]["peak_rss_mb"]),
        "ours_step_mb": round(results["ours"]["peak_rss_mb"] - results["ours"]["rss_before_mb"]),
        "skimage_step_mb": round(results["skimage"]["peak_rss_mb"] - results["skimage"]["rss_before_mb"]),
        "ours_stages_s": {k: round(v, 4) for k, v in results["ours"]["stages"].items()},
        "mean_level_difference": round(difference, 3), "memory": "ru_maxrss per subprocess",
        "load_average": [round(load_before, 2), round(load_after, 2)], "cpus": os.cpu_count(),
        "ratio": round(median(results["skimage"]["times"]) / median(results["ours"]["times"]), 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
