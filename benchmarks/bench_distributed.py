"""Benchmark: the ray engine against the local engine on the same photos with the same model.

The same folder of photos (scikit-image's photos at 640 x 480, repeated to
`--photos`) is colorized by the shipped model (or `--model`) three ways, each
into a fresh folder:

- local: `colorize_folder` in this process (the model loaded inside the
  timed call, as `colorfusion colorize` does), on every core;
- ray x 1: `colorize_dataset` on a local Ray cluster of this machine's cores
  (`ray.init(num_cpus=...)`, started once before, its start-up timed apart),
  one worker holding all of them (`threads_per_worker` = the cores): the
  same cores as local, so the difference is Ray's overhead;
- ray x N: `--workers` workers (default: one a core), one thread each.

For each: the wall time of the whole job, photos/s over it, the time to the
first photo (the first output file on disk: starting the workers and loading
the model is in it), and the steady rate once the first batch is out (the
outputs watched as they appear; start-up excluded). The overhead of ray x 1 is its time over
local's, end to end and steady (the target: within 15 %). The load average
is printed: on a shared machine the figures move with it.

Prints a table, then as its last line a JSON object with the figures.

    python benchmarks/bench_distributed.py [--photos 96] [--workers 2] [--model pretrained] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def write_photos(folder: Path, count: int) -> list[Path]:
    """`count` photos of 640 x 480 from scikit-image's colour photos, cycled."""
    from skimage import data

    from colorfusion import io

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    photos = [io.resize(photo, 640, 480) for photo in sources]
    return [io.write_image(folder / f"photo_{i:03d}.jpg", photos[i % len(photos)]) for i in range(count)]


class Appearances(threading.Thread):
    """Watches `outputs` appear on disk (every 20 ms): `.times`, when each was first seen (perf_counter)."""

    def __init__(self, outputs):
        super().__init__(daemon=True)
        self.waiting, self.times, self.stop = list(outputs), [], threading.Event()

    def run(self):
        while self.waiting and not self.stop.is_set():
            now = time.perf_counter()
            self.times += [now for path in self.waiting if path.exists()]
            self.waiting = [path for path in self.waiting if not path.exists()]
            time.sleep(0.02)


def timed(job, outputs, batch_size) -> dict:
    """The job timed: seconds, photos/s, the first photo's time, the steady rate after the first batch."""
    watcher = Appearances(outputs)
    start = time.perf_counter()
    watcher.start()
    report = job()
    end = time.perf_counter()
    watcher.stop.set()
    watcher.join()
    times = sorted(watcher.times)
    count = len(report.written)
    first = (times[0] if times else end) - start
    # After the first batch (its photos appear together): the rate once the workers run, start-up excluded.
    after = times[batch_size - 1:] if len(times) > batch_size else []
    steady = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 and after[-1] > after[0] else float("nan")
    return {"photos": count, "failed": len(report.failed), "seconds": end - start,
            "photos_per_s": count / (end - start), "first_photo_s": first, "steady_photos_per_s": steady,
            "workers": report.workers}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--workers", type=int, default=None, help="workers of the last run (default: one a core)")
    parser.add_argument("--model", default="pretrained")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    from colorfusion.startup import import_backend_quietly

    import_backend_quietly()  # before anything imports Keras: none of TensorFlow's start-up lines
    import ray

    from colorfusion.distributed import colorize_dataset
    from colorfusion.hardware import available_cores
    from colorfusion.inference.batch import colorize_folder, plan_outputs
    from colorfusion.inference.colorizer import Colorizer

    cores = available_cores()
    workers = args.workers or cores
    root = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    try:
        write_photos(root / "photos", args.photos)
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - start

        def outputs(name):
            return [out for _, out in plan_outputs([root / "photos"], root / name)]

        runs = {
            "local": timed(lambda: colorize_folder([root / "photos"], root / "local",
                                                   Colorizer.from_path(args.model), batch_size=args.batch_size,
                                                   progress=False), outputs("local"), args.batch_size),
            "ray x 1": timed(lambda: colorize_dataset([root / "photos"], root / "ray1", args.model, workers=1,
                                                      threads_per_worker=cores, batch_size=args.batch_size,
                                                      progress=False), outputs("ray1"), args.batch_size),
            f"ray x {workers}": timed(lambda: colorize_dataset([root / "photos"], root / "rayn", args.model,
                                                               workers=workers,
                                                               threads_per_worker=max(1, cores // workers),
                                                               batch_size=args.batch_size, progress=False),
                                      outputs("rayn"), args.batch_size),
        }
        ray.shutdown()
        load_after = os.getloadavg()[0]
        same = all((root / "ray1" / path.name).read_bytes() == path.read_bytes()
                   for path in (root / "local").iterdir())
    finally:
        shutil.rmtree(root, ignore_errors=True)

    local = runs["local"]
    print(f"{args.photos} photos of 640 x 480, model {args.model}, batch {args.batch_size}, {cores} cores; "
          f"Ray's local cluster started in {ray_start:.1f} s (not in the runs); load average {load_before:.1f} "
          f"before, {load_after:.1f} after")
    print(f"{'engine':<10} {'seconds':>8} {'photos/s':>9} {'first photo s':>14} {'steady photos/s':>16} "
          f"{'time / local':>13}")
    for name, run in runs.items():
        print(f"{name:<10} {run['seconds']:>8.1f} {run['photos_per_s']:>9.2f} {run['first_photo_s']:>14.1f} "
              f"{run['steady_photos_per_s']:>16.2f} {run['seconds'] / local['seconds']:>13.2f}")
    one = runs["ray x 1"]
    overhead = one["seconds"] / local["seconds"] - 1
    steady_overhead = local["steady_photos_per_s"] / one["steady_photos_per_s"] - 1
    print(f"ray x 1 against local: {overhead:+.0%} end to end, {steady_overhead:+.0%} after the first photo "
          f"(target: within 15 %); ray x 1's outputs byte-identical to local's: {same}")
    print(json.dumps({"photos": args.photos, "cores": cores, "ray_start_s": ray_start,
                      "load": [load_before, load_after],
                      "runs": {name: {k: v for k, v in run.items() if k != "workers"} for name, run in runs.items()},
                      "overhead_end_to_end": overhead, "overhead_steady": steady_overhead, "identical": same}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
