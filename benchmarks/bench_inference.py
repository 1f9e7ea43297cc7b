"""Benchmark: the shipped model's network called eagerly, compiled, from ONNX Runtime and from LiteRT.

Why: `Colorizer` used to call the network eagerly (about 7x the cost of the same
network compiled), and exported files run without Keras. This script puts the
four side by side in one run, for

- one photo: the network alone on a 256 x 352 input (a 4:3 photo at short
  side 256, what `Colorizer` feeds it), ms per call;
- a batch of 8 such photos, ms per photo;
- a 12 MP photo (4000 x 3000, scikit-image's astronaut upscaled) end to end in
  memory: its L at full resolution and at 256 x 352, the network, ab upsampled
  and joined (`Colorizer.read_lightness`, `predict_ab`, `join_full_resolution`),

and the scikit-image pipeline of `bench_colorize.py` (rgb2lab, resize,
lab2rgb, the compiled network) as the baseline of the 12 MP figure. Also the
hint layers' share of a compiled call with no hints: the network with its hint
layers run on an empty map (release 0.2.0's path) against the same network
with them skipped (`without_hint_layers`, the default now).

The four runners are built first (the exports written to a temporary folder,
each warmed up), then timed in turns, one repeat of each after another, so a
busy spell of a shared machine falls on all of them alike. Times are medians
of `--repeats` (ms of wall time; CPU ms, all threads, in brackets). Model
loading, exporting and file decoding are excluded. Prints a table, then as its
last line a JSON object with the figures.

    python benchmarks/bench_inference.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_colorize import make_photo, skimage_steps

SHAPE = (256, 352)  # network_shape(3000, 4000, 256)
BATCH = 8
TARGETS = {"network_ms": 120.0, "end_to_end_s": 0.55, "ratio": 60.0}


def timed(function, *args):
    """(wall seconds, CPU seconds of the process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def build_runners(colorizer, folder: Path) -> dict:
    """{name: predict_ab-like function (N, h, w, 1) L in [0, 100] -> ab}, and the export times."""
    import numpy as np

    from colorfusion import color
    from colorfusion.export import ExportedModel, export_model

    def eager(l_small):  # release 0.2.0's call: the Keras model eagerly, hints input an empty map
        inputs = {"L": color.l_to_model(l_small)}
        if colorizer.takes_hints:
            inputs["hints"] = np.zeros(l_small.shape[:3] + (3,), np.float32)
        return color.ab_from_model(np.asarray(colorizer.inference(inputs, training=False)))

    runners = {"eager": eager, "compiled": colorizer.predict_ab}
    exported = {}
    for name, suffix in (("onnx", ".onnx"), ("litert", ".tflite")):
        try:
            seconds, _, path = timed(export_model, colorizer, folder / f"colorizer{suffix}", name, SHAPE)
            runners[name] = ExportedModel(path).predict_ab
            exported[name] = {"export_s": round(seconds, 1), "mb": round(path.stat().st_size / 1e6, 1)}
        except Exception as e:  # noqa: BLE001 - a runtime that is not installed is left out, said so
            print(f"{name}: left out ({type(e).__name__}: {str(e).splitlines()[0][:160]})", file=sys.stderr)
    return runners, exported


def end_to_end(colorizer, predict_ab, stages: dict):
    """The 12 MP pipeline with `predict_ab` as its network; each stage's wall seconds appended to `stages`."""
    def run(rgb):
        start = time.perf_counter()
        l_full, l_small = colorizer.read_lightness(rgb)
        t1 = time.perf_counter()
        ab = predict_ab(l_small[None])[0]
        t2 = time.perf_counter()
        out = colorizer.join_full_resolution(l_full, ab)
        t3 = time.perf_counter()
        for name, seconds in (("L", t1 - start), ("network", t2 - t1), ("join", t3 - t2)):
            stages.setdefault(name, []).append(seconds)
        return out

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each runner and case (default 7)")
    parser.add_argument("--skimage-repeats", type=int, default=2, help="timed runs of the skimage pipeline")
    args = parser.parse_args()

    import numpy as np

    from colorfusion import color
    from colorfusion.inference.colorizer import Colorizer

    colorizer = Colorizer.pretrained(size=SHAPE[0])
    rng = np.random.default_rng(0)
    rgb = make_photo()
    one = color.rgb_to_l(rng.integers(0, 256, (1, *SHAPE, 3), dtype=np.uint8)).astype(np.float32)
    batch = np.repeat(one, BATCH, axis=0) + rng.uniform(0, 1, (BATCH, *SHAPE, 1)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        runners, exported = build_runners(colorizer, Path(folder))
        # The hint layers' share, compiled, no hints: run on an empty map, or skipped (the default).
        l_scaled = color.l_to_model(one)
        with_layers = {"L": l_scaled, "hints": np.zeros((1, *SHAPE, 3), np.float32)}
        hint_cases = {"hint layers on an empty map": lambda: colorizer.run_network(with_layers),
                      "hint layers skipped": lambda: colorizer.run_network({"L": l_scaled})}
        stages = {name: {} for name in runners}
        ends = {name: end_to_end(colorizer, predict, stages[name]) for name, predict in runners.items()}
        for name, predict in runners.items():  # warm up: compile / allocate every shape once
            predict(one), predict(batch), ends[name](rgb)
        for case in hint_cases.values():
            case()
        for by_stage in stages.values():
            by_stage.clear()
        outputs = {name: predict(one) for name, predict in runners.items()}
        reference = outputs["compiled"]
        load_before = os.getloadavg()[0]
        times = {}
        for _ in range(args.repeats):
            for name, predict in runners.items():
                for case, call, argument in (("one", predict, one), ("batch", predict, batch),
                                             ("12mp", ends[name], rgb)):
                    wall, cpu, _ = timed(call, argument)
                    times.setdefault((name, case), []).append((wall, cpu))
            for case, call in hint_cases.items():
                wall, cpu, _ = timed(call)
                times.setdefault(("hints", case), []).append((wall, cpu))
        run_skimage, _ = skimage_steps(colorizer)
        skimage = [timed(run_skimage, rgb)[:2] for _ in range(args.skimage_repeats)]
        load_after = os.getloadavg()[0]

    def ms(key, index=0, per=1):
        return median([t[index] for t in times[key]]) * 1e3 / per

    print(f"the shipped model, network input {SHAPE[0]}x{SHAPE[1]}; {os.cpu_count()} CPUs, load average "
          f"{load_before:.1f} -> {load_after:.1f}; median of {args.repeats} (CPU ms of all threads in brackets)")
    skimage_s = median([t[0] for t in skimage])
    print(f"{'runner':<10}{'1 photo, ms':>18}{'batch of 8, ms/photo':>24}{'12 MP end to end, s':>24}"
          f"{'vs skimage':>12}")
    figures = {"shape": list(SHAPE), "cpus": os.cpu_count(), "repeats": args.repeats,
               "load_average": [round(load_before, 2), round(load_after, 2)], "runners": {}}
    for name in runners:
        one_ms, batch_ms = ms((name, "one")), ms((name, "batch"), per=BATCH)
        end_s = ms((name, "12mp")) / 1e3
        difference = float(np.abs(outputs[name] - reference).max())
        print(f"{name:<10}{one_ms:>9.0f} ({ms((name, 'one'), 1):>5.0f})"
              f"{batch_ms:>15.0f} ({ms((name, 'batch'), 1, BATCH):>5.0f})"
              f"{end_s:>15.3f} ({ms((name, '12mp'), 1) / 1e3:>5.2f})"
              f"{skimage_s / end_s:>11.0f}x")
        figures["runners"][name] = {"one_ms": round(one_ms, 1), "batch_ms_per_photo": round(batch_ms, 1),
                                    "end_to_end_s": round(end_s, 3), "ratio": round(skimage_s / end_s, 1),
                                    "stages_s": {k: round(median(v), 4) for k, v in stages[name].items()},
                                    "max_ab_difference_to_compiled": difference, **exported.get(name, {})}
    print(f"{'skimage':<10}{'':>42}{skimage_s:>15.3f} ({median([t[1] for t in skimage]):>5.2f})"
          f"{'1x':>12}   (rgb2lab, resize, lab2rgb; the compiled network)")
    with_ms, without_ms = (ms(("hints", case)) for case in hint_cases)
    with_cpu, without_cpu = (ms(("hints", case), 1) for case in hint_cases)
    share = 1 - without_cpu / with_cpu
    print(f"hint layers, compiled, no hints: run on an empty map {with_ms:.0f} ms ({with_cpu:.0f}), skipped "
          f"{without_ms:.0f} ms ({without_cpu:.0f}): {share:.0%} of the CPU time saved")
    print("12 MP by stage, median s: " + "; ".join(
        f"{name} " + ", ".join(f"{stage} {median(values):.3f}" for stage, values in stages[name].items())
        for name in runners))
    print("max |ab - compiled| (Lab units): " + ", ".join(
        f"{name} {figures['runners'][name]['max_ab_difference_to_compiled']:.1e}" for name in runners))
    compiled = figures["runners"]["compiled"]
    met = {"network_ms": compiled["one_ms"] <= TARGETS["network_ms"],
           "end_to_end_s": compiled["end_to_end_s"] <= TARGETS["end_to_end_s"],
           "ratio": compiled["ratio"] >= TARGETS["ratio"]}
    print("targets (compiled, the default): " + ", ".join(
        f"{key} {'met' if ok else 'MISSED'} ({compiled['one_ms' if key == 'network_ms' else key]} vs "
        f"{TARGETS[key]})" for key, ok in met.items()))
    figures.update({"skimage_s": round(skimage_s, 3), "targets": TARGETS, "met": met,
                    "hint_layers": {"empty_map_ms": round(with_ms, 1), "skipped_ms": round(without_ms, 1),
                                    "empty_map_cpu_ms": round(with_cpu, 1), "skipped_cpu_ms": round(without_cpu, 1),
                                    "cpu_share": round(share, 3)}})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
