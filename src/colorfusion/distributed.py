"""Colorize an archive on a Ray cluster: the folder job's plan, its photos on long-lived workers, each written once.

    report = colorize_dataset(["scans/"], "colorized/", address="auto", workers=8)
    colorfusion colorize scans/ -o colorized/ --engine ray --address auto

The driver (this process) plans exactly as `colorize_folder` does
(`inference.batch.plan_folder`: the output tree, refusals, existing outputs
skipped, hints matched, one line a failure), cuts the photos into the folder
job's batches and sends them through Ray Data (`map_batches` over a pool of
actors, one batch a task). Each worker loads the model itself, once: the
shipped one, a path on storage every machine sees, or an exported `.onnx` /
`.tflite` file, which makes a worker without TensorFlow; never a copy pickled
from the driver. It runs the folder job's own step on a batch
(`inference.batch.colorize_photos`: the engine's pipeline, then an atomic
write), so the pixels are the local engine's. Clips stay on this machine
(one clip is one long task): they go to the local engine, and a line says so.

Exactly once: each photo has one fixed output path (the plan) and is written
atomically (`io.atomic_write`), so a batch that Ray retries after its worker
died rewrites the same bytes under the same name; the temporary files of a
killed writer are swept (`io.atomic_leftovers`); the report holds each input
once. Ray retries a dead worker's batch without end, so a ledger (a small
actor) counts each photo's tries that never finished: a batch is tried whole
twice (the same batch, the same pixels), then one photo at a time, and a
photo whose worker died on it `max_tries` times is reported failed, not
tried again. Rerunning the same command skips what exists (a resume).

Ray is imported here only, and only when a job starts
(`pip install 'colorfusion[distributed]'`). Its own output (progress bars,
log lines, the C++ core's) goes to a log file unless `ray_output=True`: the
terminal shows the job's bar, its one-line errors and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
import uuid
import warnings
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from colorfusion import io
from colorfusion.errors import USER_ERRORS, ModelLoadError, UsageError, message_line
from colorfusion.inference.batch import FolderReport, colorize_clips, colorize_photos, default_log, plan_folder

MAX_TRIES = 3  # tries of a photo whose worker dies on it before it is reported failed
WHOLE_TRIES = 2  # tries of a batch as a whole (the same pixels as the local engine) before one photo at a time
HELD_BYTES_PER_PIXEL = 4  # a photo waiting for its batch's network call holds its full-size L (float32)
PEAK_BYTES_PER_PIXEL = 32  # the photo being read or joined: its pixels, L, ab at full size, RGB (roughly)
INSTALL_HINT = "pip install 'colorfusion[distributed]'"


def colorize_dataset(inputs, dst, model="pretrained", *, address=None, workers=None, threads_per_worker: int = 1,
                     gpus_per_worker: float = 0, batch_size: int = 8, overwrite: bool = False, progress: bool = True,
                     hints=None, log=None, temporal: str = "flow", max_tries: int = MAX_TRIES,
                     memory_per_worker: int | None = None, journal=None, ray_output: bool = False,
                     **colorizer_kwargs) -> FolderReport:
    """Colorize files and folders into `dst` on a Ray cluster: `colorize_folder`'s job, its photos on workers.

    Args:
        inputs, dst, batch_size, overwrite, progress, hints, log, temporal:
            as `inference.batch.colorize_folder` (the same plan, the same
            report, the same lines).
        model: "pretrained" (the shipped model), or the path of a `.keras`
            file, a run folder or an exported `.onnx` / `.tflite` file that
            every worker can read (shared storage, the same path). Each
            worker loads it itself.
        address: the cluster: None (this process's `ray.init` if it made
            one, else $RAY_ADDRESS, else the one `ray start` runs on this
            machine, else a new local cluster), "auto" (the one `ray start`
            runs here), or "HOST:PORT".
        workers: workers in the pool; None: as many as the cluster's CPUs
            (or GPUs) allow at `threads_per_worker` (`gpus_per_worker`) each.
        threads_per_worker: CPUs a worker reserves; its TensorFlow, OpenCV
            and ONNX Runtime thread pools are set to it (Ray does not).
        gpus_per_worker: GPUs a worker reserves (e.g. 1); its GPU memory
            grows as needed instead of all taken at start.
        max_tries: a photo whose worker dies on it this many times is
            reported failed (`MAX_TRIES`).
        memory_per_worker: bytes a worker may hold (reserved with Ray); a
            batch of huge scans is cut into smaller network calls to fit.
            None: no budget, the batch as it is.
        journal: a file (on shared storage) that each worker appends one
            JSON line to for every output it writes: input, output, worker,
            time. An audit of the job, append-only.
        ray_output: show Ray's own progress bars and log lines.
        **colorizer_kwargs: `decode`, `temperature`, `size`, ... for each
            worker's `Colorizer.from_path` (none for an exported file).

    Returns:
        The `FolderReport` of `colorize_folder`; `report.workers` holds each
        worker's photos, seconds busy, photos per second and runtime.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    _check_settings(batch_size, workers, threads_per_worker, gpus_per_worker, max_tries, memory_per_worker)
    model = _model_for_workers(model, colorizer_kwargs)
    log = log or default_log
    report = FolderReport()
    plan = plan_folder(inputs, dst, report, log, hints=hints, overwrite=overwrite)
    if plan.photos:
        settings = dict(model=model, options=colorizer_kwargs, threads=threads_per_worker, gpus=gpus_per_worker,
                        memory=memory_per_worker, max_tries=max_tries, cwd=os.getcwd(),
                        journal=None if journal is None else str(Path(journal).resolve()))
        _on_ray(plan, report, log, settings, address=address, workers=workers, batch_size=batch_size,
                progress=progress, ray_output=ray_output)
    if plan.clips:
        log(f"note: {len(plan.clips)} clip{'s' * (len(plan.clips) > 1)} colorized on this machine, not on the "
            f"cluster (the ray engine takes photos; a clip is one long task)")
        from colorfusion.inference.colorizer import as_colorizer  # Keras, on this machine only for clips
        from colorfusion.startup import import_backend_quietly

        import_backend_quietly()
        colorize_clips(plan.clips, as_colorizer(model, **colorizer_kwargs), report, log, plan.hints_of, temporal,
                       batch_size, progress)
    return report


def _check_settings(batch_size, workers, threads_per_worker, gpus_per_worker, max_tries, memory_per_worker) -> None:
    for name, value, least in (("batch_size", batch_size, 1), ("threads_per_worker", threads_per_worker, 1),
                               ("max_tries", max_tries, 1)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be None or a positive integer. Received: workers={workers!r}")
    if not gpus_per_worker >= 0:
        raise ValueError(f"gpus_per_worker must be 0 or more. Received: gpus_per_worker={gpus_per_worker!r}")
    if memory_per_worker is not None and not memory_per_worker > 0:
        raise ValueError(f"memory_per_worker must be None or bytes. Received: memory_per_worker={memory_per_worker!r}")


def _model_for_workers(model, options: dict) -> str:
    """The model as each worker will load it: "pretrained" or an absolute path (checked here, in one line)."""
    from colorfusion.inference.exported import is_exported
    from colorfusion.presets import PRETRAINED  # Keras, on the driver only: a worker never imports it for a file

    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model must be 'pretrained' or a path every worker can read: each worker loads the model "
                         f"itself (a model object would be pickled from the driver). Received: {type(model).__name__}")
    if str(model).lower() == PRETRAINED:
        return PRETRAINED
    if not Path(model).exists():
        raise ModelLoadError(f"{model}: no such model file or run folder")
    fixed = sorted(set(options) - {"interpolation"})
    if is_exported(model) and fixed:
        raise ValueError(f"{model}: an exported file's decoding and size were fixed when it was exported. "
                         f"Received: {', '.join(fixed)}")
    return str(Path(model).resolve())


# === The driver ===


def _on_ray(plan, report: FolderReport, log, settings: dict, *, address, workers, batch_size, progress,
            ray_output) -> None:
    """The plan's photos through a pool of workers; their outcomes into `report`, in the plan's order."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(f"the ray engine needs Ray: {INSTALL_HINT}") from None
    photos = plan.photos
    _sweep(photos)  # what a writer killed in an earlier run left
    batches = [[[str(src), str(out), plan.hints_of.get(src)] for src, out in photos[start:start + batch_size]]
               for start in range(0, len(photos), batch_size)]
    ray_log = None if ray_output else Path(tempfile.mkstemp(prefix="colorfusion-ray-", suffix=".log")[1])
    with _ray_quiet(ray_log):
        started = not ray.is_initialized()
        try:
            if started:
                ray.init(address=address, log_to_driver=ray_output, include_dashboard=False,
                         logging_level=logging.INFO if ray_output else logging.ERROR)
            count = workers or _workers_available(ray.cluster_resources(), settings["threads"], settings["gpus"])
            ledger = f"colorfusion-ledger-{uuid.uuid4().hex}"
            ledger_actor = ray.remote(num_cpus=0)(_Ledger).options(name=ledger).remote()
            context = ray.data.DataContext.get_current()
            saved = (context.enable_progress_bars, context.print_on_execution_start)
            context.enable_progress_bars = context.print_on_execution_start = ray_output
            try:
                dataset = ray.data.from_items([{"batch": json.dumps(batch)} for batch in batches],
                                              override_num_blocks=len(batches))
                reserve = {"num_gpus": settings["gpus"]} if settings["gpus"] else {}
                reserve.update({"memory": settings["memory"]} if settings["memory"] else {})
                results = dataset.map_batches(
                    _worker_class({**settings, "ledger": ledger}), batch_size=1, batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=count), num_cpus=settings["threads"], **reserve)
                rows = iter(results.iter_rows())
                try:
                    with tqdm(total=len(photos), unit="img", desc="colorize", disable=not progress) as bar:
                        _collect((json.loads(row["outcome"]) for row in rows), photos, report, log, bar.update)
                finally:  # a job stopped early ends its stream now, while Ray runs, not when it is collected
                    getattr(rows, "close", lambda: None)()
            finally:
                context.enable_progress_bars, context.print_on_execution_start = saved
                with contextlib.suppress(Exception):
                    ray.kill(ledger_actor)
        except ModelLoadError:  # its line says it all: Ray's log is not needed
            if ray_log is not None:
                ray_log.unlink(missing_ok=True)
            raise
        except Exception:
            if ray_log is not None:
                log(f"note: Ray's own output is in {ray_log}")
            raise
        finally:
            if started:
                ray.shutdown()
    _sweep(photos)
    if ray_log is not None:
        ray_log.unlink(missing_ok=True)


def _collect(outcomes, photos, report: FolderReport, log, advance=None) -> None:
    """The workers' outcomes into `report`, in the plan's order, each input once.

    A batch that comes back twice (a task Ray ran again) counts once; a
    photo that never came back is failed, not silently missing. `advance(n)`
    moves the progress bar.
    """
    order = {src: index for index, (src, _) in enumerate(photos)}
    planned_failures = len(report.failed)
    done = set()
    for outcome in outcomes:
        if outcome.get("unusable"):
            raise ModelLoadError(outcome["unusable"])
        _add_worker(report.workers, outcome)
        for src, out, failure in outcome["photos"]:
            if Path(src) in done:
                continue
            done.add(Path(src))
            report.add(Path(src), Path(out), failure, log)
            if advance is not None:
                advance(1)
    for src, _ in photos:
        if src not in done:
            report.fail(src, "no result came back from the cluster", log)
    report.failed[planned_failures:] = sorted(report.failed[planned_failures:],
                                              key=lambda item: order.get(item[0], len(order)))
    written = {out: index for index, (_, out) in enumerate(photos)}
    report.written.sort(key=lambda out: written.get(out, len(written)))


def _workers_available(resources: dict, threads: int, gpus: float) -> int:
    count = int(resources.get("CPU", 1) // threads)
    if gpus:
        count = min(count, int(resources.get("GPU", 0) // gpus))
    return max(1, count)


def _add_worker(workers: dict, outcome: dict) -> None:
    """One batch's worker, photos and seconds into `report.workers` (its throughput)."""
    entry = workers.setdefault(outcome["worker"], {"photos": 0, "seconds": 0.0, "runtime": outcome["runtime"]})
    entry["photos"] += len(outcome["photos"])
    entry["seconds"] += outcome["seconds"]
    entry["photos_per_s"] = entry["photos"] / entry["seconds"] if entry["seconds"] else 0.0


def _sweep(photos) -> None:
    """Remove the temporary files that killed writers left beside the planned outputs."""
    names = defaultdict(set)
    for _, out in photos:
        names[Path(out).parent].add(Path(out).name)
    for folder, planned in names.items():
        for leftover in io.atomic_leftovers(folder, planned):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


@contextlib.contextmanager
def _ray_quiet(path: Path | None):
    """Ray's output to `path` (None: left as it is): file descriptors 1 and 2 (its C++ core, its prints), its
    loggers and its warnings.

    `sys.stderr`, where the job's bar and its lines go, stays on the
    terminal when it was file descriptor 2 (a command line); a notebook's or
    a test's own `sys.stderr` is left as it is.
    """
    if path is None:
        yield
        return
    loggers = {name: logging.getLogger(name).level for name in ("ray", "ray.data")}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")  # its deprecations and advice, on the job's stderr
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    stderr = sys.stderr
    try:
        on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # not a real file (a notebook's, a test's capture)
        on_fd2 = False
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1, errors="replace") if on_fd2 else None
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    if terminal is not None:
        sys.stderr = terminal
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stderr = stderr
        if terminal is not None:
            terminal.close()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)
        caught.__exit__(None, None, None)


# === The cluster's side ===


class _Ledger:
    """Each photo's tries that never finished (its worker died on it), for the whole job: a small actor."""

    def __init__(self):
        self.unfinished = {}

    def start(self, keys, whole: int) -> list[int]:
        """The tries of `keys` so far; when all have fewer than `whole`, the batch's try begins for all of them."""
        tries = [self.unfinished.get(key, 0) for key in keys]
        if max(tries) < whole:
            self.begin(keys)
        return tries

    def begin(self, keys) -> None:
        for key in keys:
            self.unfinished[key] = self.unfinished.get(key, 0) + 1

    def finish(self, keys) -> None:
        for key in keys:
            self.unfinished.pop(key, None)


def _worker_class(settings: dict):
    """The workers' class, its settings inside it (not constructor arguments held in Ray's object store)."""

    class ColorizeWorker(_Worker):
        def __init__(self):
            super().__init__(**settings)

    return ColorizeWorker


class _Worker:
    """One worker of the pool: the model loaded once, then batch after batch of the plan's photos."""

    def __init__(self, model, options, threads, gpus, memory, max_tries, cwd, journal, ledger):
        import ray

        # The driver's relative paths mean the same here: storage is shared, mounted at the same path.
        os.chdir(cwd)
        try:
            self.engine, self.runtime = _load_engine(model, options, threads, gpus)
            self.unusable = None
        except USER_ERRORS as e:  # a model no worker can use: its one line stops the job on the driver
            self.engine, self.runtime, self.unusable = None, None, message_line(e)
        self.memory, self.max_tries, self.journal = memory, max_tries, journal
        self.ledger = ray.get_actor(ledger)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        outcomes = [json.dumps(self.colorize(json.loads(text))) for text in batch["batch"]]
        return {"outcome": np.array(outcomes, dtype=object)}

    def colorize(self, rows) -> dict:
        """One batch of the plan: [[input, output, hints], ...] -> its outcome, each photo's failure or None.

        A photo's tries are those its worker died in before the photo was
        done. A batch is tried whole while its photos have fewer than
        `whole` (the same batch, so the same pixels as the local engine);
        after that one photo at a time, so that only the photo that kills
        its worker gathers tries, and is failed at `max_tries`.
        """
        import ray

        if self.unusable is not None:
            return {"unusable": self.unusable, "photos": [], "worker": self.name, "runtime": None, "seconds": 0.0}
        start = time.perf_counter()
        keys = [src for src, _, _ in rows]
        whole = max(1, min(WHOLE_TRIES, self.max_tries - 1))
        tries = ray.get(self.ledger.start.remote(keys, whole))  # one call: a batch's try begun where it runs whole
        if max(tries) < whole:
            photos = self._colorize(rows)
        else:
            photos = []
            for row, tried in zip(rows, tries):
                if tried >= self.max_tries:
                    photos.append([row[0], row[1], f"its worker died each of the {tried} times it was tried "
                                                   f"(a crash, or out of memory); not tried again"])
                    ray.get(self.ledger.finish.remote([row[0]]))
                else:
                    ray.get(self.ledger.begin.remote([row[0]]))
                    photos += self._colorize([row])
        return {"photos": photos, "worker": self.name, "runtime": self.runtime,
                "seconds": time.perf_counter() - start}

    def _colorize(self, rows) -> list:
        import ray

        done, finished = [], None
        for part in _within_budget(rows, self.memory):
            pairs = [(Path(src), Path(out)) for src, out, _ in part]
            hints_of = {Path(src): points for src, _, points in part if points}
            for src, out, failure in colorize_photos(self.engine, pairs, hints_of, len(pairs)):
                if failure is None and self.journal:
                    _append_line(self.journal, {"input": str(src), "output": str(out), "worker": self.name,
                                                "time": time.time()})
                # Done: a death from now on is not its doing. Not waited for (a call a photo would cost a
                # round trip each): an actor runs one caller's calls in order, and the last one is waited for.
                finished = self.ledger.finish.remote([str(src)])
                done.append([str(src), str(out), failure])
        if finished is not None:
            ray.get(finished)
        return done


def _within_budget(rows, memory):
    """The batch as network calls that fit a worker's memory: all of it, or cut where huge scans would not fit."""
    if not memory:
        return [rows]
    parts, part, held, largest = [], [], 0, 0
    for row in rows:
        pixels = _pixels(row[0])
        if part and (held + pixels * HELD_BYTES_PER_PIXEL + max(largest, pixels) * PEAK_BYTES_PER_PIXEL > memory):
            parts.append(part)
            part, held, largest = [], 0, 0
        part.append(row)
        held += pixels * HELD_BYTES_PER_PIXEL
        largest = max(largest, pixels)
    return parts + [part]


def _pixels(path) -> int:
    """The photo's pixel count from its header (0 when it cannot be read: reading it will say why)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - any unreadable file: its own read fails with its one line later
        return 0


def _append_line(path, record: dict) -> None:
    # One write of one line to a file opened for appending: lines from many workers do not interleave.
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _load_engine(model: str, options: dict, threads: int, gpus: float):
    """The worker's engine and its runtime's name: an exported file without TensorFlow, else a Keras Colorizer."""
    import cv2

    from colorfusion.inference.exported import is_exported, open_exported

    cv2.setNumThreads(threads)  # OpenCV's pool, which fastlab's bands follow too
    if is_exported(model):
        from colorfusion.inference.engine import Engine

        runner = open_exported(model, threads=threads)
        return Engine(runner, interpolation=options.get("interpolation", "bicubic")), runner.runtime
    import keras

    if keras.backend.backend() == "tensorflow":
        _configure_tensorflow(threads, gpus)
    from colorfusion.inference.colorizer import Colorizer

    return Colorizer.from_path(model, **options), keras.backend.backend()


def _configure_tensorflow(threads: int, gpus: float) -> None:
    """TensorFlow's thread pools at the worker's CPUs (Ray does not set them), GPU memory grown as needed."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already started in this process: its pools stay as they are
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if gpus:
        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
