"""Benchmark: full-resolution colorization of a 12 MP photo: the engine, the path before it, and scikit-image.

One 4000 x 3000 photo (scikit-image's astronaut, upscaled) is colorized end
to end in memory: L of the full image, the model on the photo resized to its
aspect ratio (short side 256: 256 x 352), ab upsampled to 4000 x 3000
(bicubic), Lab -> uint8 RGB. Model loading and file encoding are excluded.
Every variant uses the same model, called the same way (`Colorizer.predict_ab`,
warmed up before timing): `--model pretrained` (default) the model that
ships in the package; `--model random` a width-1.0 regression colorizer with
a fixed 256 x 256 input and random weights (the figure of earlier releases).

- ours: the engine's steps (`Colorizer.read_lightness`, `predict_ab`,
  `join_full_resolution`): L at full size and the photo resized for the
  network on the same threads, a gray photo's L looked up, channels moved by
  OpenCV in cache-sized strips on every core (`fastlab`);
- before: the same steps as colorfusion 0.3.0 ran them, kept here to measure
  against (`before_steps`): L at full size in strips with numpy's channel
  copies, then the resize and its L one after the other; ab upsampled, then
  joined in strips with numpy's channel copies;
- skimage (colour photo only): the same steps with `skimage.color.rgb2lab`,
  `skimage.transform.resize` (anti-aliased down, order 3 up) and
  `skimage.color.lab2rgb`.

Each photo is run twice: in colour, and as a B&W photo (its gray, three equal
channels, as a grayscale file reads), the input colorization is for.

Each variant runs in its own subprocess, so its peak resident memory
(`ru_maxrss`, the kernel's high-water mark of the whole process: Python,
TensorFlow and the model included) is its own; "step" is that peak minus the
resident memory just before the first timed call. The subprocesses of ours
and before alternate for `--rounds` rounds, so that both meet the same load;
times are the median of all their runs (minimum in brackets) and CPU the
median process time of a run (all threads), which a shared machine's load
moves less than the wall time. The load average is printed. "diff" is the
largest difference, in levels, between ours and before's RGB.

Prints a table, then as its last line a JSON object with the figures,
`ratio` = skimage median / ours median and `speedup` = before / ours by photo.

    python benchmarks/bench_colorize.py [--repeats 5] [--rounds 2] [--no-skimage]
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


def make_photo(kind: str = "colour"):
    import cv2
    from skimage import data

    rgb = cv2.resize(data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    if kind == "gray":
        return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return rgb


def timed_steps(read, predict, join):
    """A run function of the three steps, and the stages' seconds it records."""
    stages = {}

    def run(rgb):
        start = time.perf_counter()
        l_full, l_small = read(rgb)
        t1 = time.perf_counter()
        ab = predict(l_small[None])[0]
        t2 = time.perf_counter()
        out = join(l_full, ab)
        t3 = time.perf_counter()
        for name, seconds in (("L (full + small)", t1 - start), ("model", t2 - t1), ("ab up + Lab->RGB", t3 - t2)):
            stages.setdefault(name, []).append(seconds)
        return out

    return run, stages


def ours(colorizer):
    return timed_steps(colorizer.read_lightness, colorizer.predict_ab, colorizer.join_full_resolution)


def before_steps(colorizer):
    """The read and the join as colorfusion 0.3.0 ran them (its `fastlab` strips, its order), the same model."""
    import cv2
    import numpy as np

    from colorfusion import color, io
    from colorfusion.fastlab import over_strips

    to_unit = np.float32(1.0 / 255.0)

    def lightness(pixels):
        height, width = pixels.shape[:2]
        l_full = np.empty((height, width), np.float32)

        def convert(start, stop, rgb, lab):
            np.multiply(pixels[start:stop], to_unit, out=rgb)
            l_full[start:stop] = color.rgb_to_lab(rgb, out=lab)[..., 0]

        over_strips(height, width, convert)
        return l_full

    def read(rgb):
        height, width = colorizer.input_shape(*rgb.shape[:2])
        return lightness(rgb), lightness(io.resize(rgb, width, height))[..., None]

    def join(l_full, ab_small):
        height, width = l_full.shape
        ab_full = cv2.resize(ab_small, (width, height), interpolation=cv2.INTER_CUBIC)
        out = np.empty((height, width, 3), np.uint8)

        def convert(start, stop, lab, rgb):
            lab[..., 0] = l_full[start:stop]
            lab[..., 1:] = ab_full[start:stop]
            rgb = color.lab_to_rgb(lab, out=rgb)
            np.multiply(rgb, np.float32(255.0), out=rgb)
            np.add(rgb, np.float32(0.5), out=rgb)
            np.copyto(out[start:stop], rgb, casting="unsafe")

        over_strips(height, width, convert)
        return out

    return timed_steps(read, colorizer.predict_ab, join)


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


VARIANTS = {"ours": ours, "before": before_steps, "skimage": skimage_steps}


def child(variant: str, repeats: int, model: str, photo_kind: str) -> dict:
    import numpy as np

    colorizer = make_colorizer(model)
    rgb = make_photo(photo_kind)
    colorizer(rgb[:300, :400])  # warm up the model call: part of loading, not of colorizing
    colorizer(rgb[:30, :40])
    run, stages = VARIANTS[variant](colorizer)
    before = rss_mb()
    times, cpu, out = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = run(rgb)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = peak_rss_mb()
    assert out.shape == (HEIGHT, WIDTH, 3) and out.dtype == np.uint8
    difference = None
    if variant == "ours":  # same pixels as before (measured after the peak was read)
        difference = int(np.abs(out.astype(np.int16) - before_steps(colorizer)[0](rgb)).max())
    return {"times": times, "cpu": cpu, "rss_before_mb": before, "peak_rss_mb": peak, "checksum": int(out.sum()),
            "stages": {k: float(np.median(v)) for k, v in stages.items()}, "out_mean": float(out.mean()),
            "difference": difference}


def measure(variant: str, repeats: int, model: str, photo_kind: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", variant, "--repeats", str(repeats), "--model", model,
                           "--photo", photo_kind], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def merged(runs: list[dict]) -> dict:
    """Rounds of one variant as one: all times, the highest peak, the stages' medians over rounds."""
    first = runs[0]
    return {**first, "times": [t for r in runs for t in r["times"]], "cpu": [c for r in runs for c in r["cpu"]],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "rss_before_mb": min(r["rss_before_mb"] for r in runs),
            "stages": {k: median([r["stages"][k] for r in runs]) for k in first["stages"]}}


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs a subprocess (skimage: max(2, repeats // 2))")
    parser.add_argument("--rounds", type=int, default=2, help="alternating subprocesses of ours and before")
    parser.add_argument("--model", choices=("pretrained", "random"), default="pretrained",
                        help="the shipped model (default), or a random width-1.0 regression model at 256 x 256")
    parser.add_argument("--no-skimage", action="store_true", help="leave out the (slow) scikit-image baseline")
    parser.add_argument("--child", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--photo", choices=("colour", "gray"), default="colour", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats, args.model, args.photo)))
        return

    load_before = os.getloadavg()[0]
    results = {}
    for photo_kind in ("colour", "gray"):
        rounds = {"ours": [], "before": []}
        for _ in range(args.rounds):
            for variant in rounds:
                rounds[variant].append(measure(variant, args.repeats, args.model, photo_kind))
        for variant, runs in rounds.items():
            results[variant, photo_kind] = merged(runs)
    if not args.no_skimage:
        results["skimage", "colour"] = measure("skimage", max(2, args.repeats // 2), args.model, "colour")
    load_after = os.getloadavg()[0]
    described = (f"the shipped model at short side {MODEL_SIZE}" if args.model == "pretrained" else
                 f"random regression model, width 1.0, input {MODEL_SIZE} x {MODEL_SIZE}")
    print(f"colorize a {WIDTH}x{HEIGHT} photo in memory: {described}; {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    print(f"{'variant':<9}{'photo':<8}{'median s':>10}{'(min s)':>9}{'CPU s':>8}{'peak RSS MB':>13}{'step MB':>9}"
          f"{'diff':>6}")
    for (name, photo_kind), r in results.items():
        step = r["peak_rss_mb"] - r["rss_before_mb"]
        diff = "" if r.get("difference") is None else str(r["difference"])
        print(f"{name:<9}{photo_kind:<8}{median(r['times']):>10.3f}{min(r['times']):>9.3f}"
              f"{median(r.get('cpu', [float('nan')])):>8.3f}{r['peak_rss_mb']:>13.0f}{step:>9.0f}{diff:>6}")
    for (name, photo_kind), r in results.items():
        if name != "skimage":
            print(f"{name} {photo_kind} by stage (median s): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["stages"].items()))
    speedup = {kind: round(median(results["before", kind]["times"]) / median(results["ours", kind]["times"]), 2)
               for kind in ("colour", "gray")}
    cpu_speedup = {kind: round(median(results["before", kind]["cpu"]) / median(results["ours", kind]["cpu"]), 2)
                   for kind in ("colour", "gray")}
    print(f"before / ours, median wall time: colour {speedup['colour']}x, gray {speedup['gray']}x; "
          f"CPU time: colour {cpu_speedup['colour']}x, gray {cpu_speedup['gray']}x")
    figures = {
        "image": f"{WIDTH}x{HEIGHT}", "model": described, "memory": "ru_maxrss per subprocess",
        "load_average": [round(load_before, 2), round(load_after, 2)], "cpus": os.cpu_count(),
        "speedup": speedup, "cpu_speedup": cpu_speedup,
        "variants": {f"{name}/{kind}": {
            "median_s": round(median(r["times"]), 4), "min_s": round(min(r["times"]), 4),
            "cpu_s": round(median(r["cpu"]), 4) if r.get("cpu") else None,
            "peak_rss_mb": round(r["peak_rss_mb"]), "step_mb": round(r["peak_rss_mb"] - r["rss_before_mb"]),
            "stages_s": {k: round(v, 4) for k, v in r["stages"].items()}, "max_difference": r.get("difference"),
        } for (name, kind), r in results.items()},
    }
    if ("skimage", "colour") in results:
        figures["ratio"] = round(median(results["skimage", "colour"]["times"]) /
                                 median(results["ours", "colour"]["times"]), 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
