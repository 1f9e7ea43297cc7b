"""The ray engine (`colorfusion.distributed`) on a real local cluster: the folder job's plan, each photo written once.

A worker is killed with SIGKILL in the middle of a batch (tests/ray_hooks.py, run in every worker of the
module's cluster): after its temporary file holds a photo and before the rename. Not in the Kaggle suite:
Ray is not installed there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from photos import make_photo  # noqa: E402 - after the skip: nothing to set up without Ray

from colorfusion import io  # noqa: E402
from colorfusion.distributed import colorize_dataset  # noqa: E402
from colorfusion.inference.batch import colorize_folder, plan_outputs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning:ray.*")

TESTS = Path(__file__).resolve().parent
BATCH = 8


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local cluster of 2 CPUs whose workers obey tests/ray_hooks.py; yields the hook's control file."""
    control = tmp_path_factory.mktemp("kill") / "control.json"
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"worker_process_setup_hook": "ray_hooks.kill_on_write",
                          "env_vars": {"PYTHONPATH": path, "COLORFUSION_TEST_KILL": str(control)}})
    yield control
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model, tmp_path_factory):
    """The tiny colorizer (seed 0) exported to ONNX: a worker without TensorFlow, which starts again in a second."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    from colorfusion.export import export_model

    return export_model(tiny_model(seed=0), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def kill_at(control, output, marker, every=False):
    control.write_text(json.dumps({"output": str(output), "marker": str(marker), "every": every}))


def write_archive(root, count=200):
    """`count` files in nested folders: photos of two shapes (PNG and JPEG), a GIF and a corrupt file."""
    rng = np.random.default_rng(0)
    folders = ["", "1900s", "1900s/weddings", "1950s/harbour"]
    for i in range(count - 2):
        height, width = (48, 64) if i % 2 else (64, 40)
        io.write_image(root / folders[i % 4] / f"scan_{i:03d}{'.jpg' if i % 3 == 0 else '.png'}",
                       make_photo(rng, height, width))
    Image.fromarray(make_photo(rng, 40, 56)).convert("P").save(root / "1950s" / "postcard.gif")
    (root / "1900s" / "torn.jpg").write_bytes(b"\xff\xd8\xff\xe0 torn in half")
    return root


def journal_lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()] if Path(path).exists() else []


def test_a_killed_worker_rewrites_only_its_batch_and_every_photo_ends_written_once(cluster, tiny_onnx, tmp_path):
    archive = write_archive(tmp_path / "scans")
    out, journal, marker = tmp_path / "out", tmp_path / "journal.jsonl", tmp_path / "killed"
    pairs = plan_outputs([archive], out)
    assert len(pairs) == 200
    killed_batch = pairs[12 * BATCH: 13 * BATCH]
    kill_at(cluster, killed_batch[3][1], marker)  # the 4th photo of the 13th batch: three are written by then
    model = tiny_onnx

    report = colorize_dataset([archive], out, model=model, workers=2, batch_size=BATCH, journal=journal,
                              progress=False, log=lambda line: None)
    cluster.unlink()

    assert len(marker.read_text().splitlines()) == 1  # one worker was killed, once
    local = colorize_folder([archive], tmp_path / "local", str(model), batch_size=BATCH, progress=False,
                            log=lambda line: None)
    assert report.failed == local.failed and [src.name for src, _ in report.failed] == ["torn.jpg"]
    assert report.written == [out / path.relative_to(tmp_path / "local") for path in local.written]
    assert len(report.written) == 199 and report.outputs == {src: o for src, o in pairs if src.name != "torn.jpg"}
    for path in local.written:  # the same pixels, the same bytes
        assert (out / path.relative_to(tmp_path / "local")).read_bytes() == path.read_bytes(), path
    assert not [p for p in out.rglob(".*")], "a temporary file was left"
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(report.written)  # no second name

    writes = journal_lines(journal)
    written = [Path(line["output"]) for line in writes]
    assert set(written) == set(report.written)  # no photo missing from the log, nothing else in it
    twice = {path for path in written if written.count(path) > 1}
    assert twice == {o for _, o in killed_batch[:3]}  # only the killed batch was rewritten: what it had written
    assert all(written.count(path) <= 2 for path in written)
    assert sum(w["photos"] for w in report.workers.values()) == 200
    assert all(w["runtime"] == "onnx" and w["photos_per_s"] > 0 for w in report.workers.values())

    again = colorize_dataset([archive], out, model=model, workers=2, batch_size=BATCH, journal=journal,
                             progress=False, log=lambda line: None)
    assert again.written == [] and len(again.skipped) == 199 and again.failed == local.failed
    assert len(journal_lines(journal)) == len(writes)  # the rerun wrote nothing


def test_a_batch_that_comes_back_twice_counts_once_and_a_photo_that_never_came_back_fails(tmp_path):
    from colorfusion.distributed import _collect
    from colorfusion.inference.batch import FolderReport

    photos = [(tmp_path / f"{i}.png", tmp_path / "out" / f"{i}.png") for i in range(4)]

    def outcome(worker, *done):
        return {"worker": worker, "runtime": "onnx", "seconds": 1.0,
                "photos": [[str(photos[i][0]), str(photos[i][1]), failure] for i, failure in done]}

    first = outcome("a:1", (1, None), (0, "not an image"))
    report, lines = FolderReport(), []
    _collect([outcome("b:2", (2, None)), first, dict(first, worker="c:3")], photos, report, lines.append)
    assert report.written == [photos[1][1], photos[2][1]]  # the plan's order, each once
    assert report.failed == [(photos[0][0], "not an image"), (photos[3][0], "no result came back from the cluster")]
    assert lines == [f"error: {photos[0][0]}: not an image",
                     f"error: {photos[3][0]}: no result came back from the cluster"]
    assert report.workers["c:3"]["photos"] == 2  # the work it did, though its batch counted once


def test_a_memory_budget_cuts_a_batch_of_huge_scans_into_smaller_network_calls(tmp_path):
    from colorfusion.distributed import HELD_BYTES_PER_PIXEL, PEAK_BYTES_PER_PIXEL, _within_budget

    sizes = [(100, 100), (100, 100), (400, 300), (100, 100)]
    rows = [[str(io.write_image(tmp_path / f"{i}.png", np.zeros((h, w, 3), np.uint8))), "out", None]
            for i, (h, w) in enumerate(sizes)]
    assert _within_budget(rows, None) == [rows]  # no budget: the batch as it is
    two_small = 2 * 10_000 * HELD_BYTES_PER_PIXEL + 10_000 * PEAK_BYTES_PER_PIXEL
    parts = _within_budget(rows, two_small)
    assert parts == [rows[:2], [rows[2]], [rows[3]]]  # the huge scan alone; never an empty call
    assert _within_budget(rows, 1) == [[row] for row in rows]  # less than one photo: one at a time


def test_the_shipped_model_on_workers_gives_the_bytes_of_colorize_folder(cluster, tmp_path):
    from photos import write_photos

    write_photos(tmp_path / "photos", count=3, sizes=(60, 100))
    report = colorize_dataset([tmp_path / "photos"], tmp_path / "ray", workers=1, batch_size=2, progress=False)
    local = colorize_folder([tmp_path / "photos"], tmp_path / "local", "pretrained", batch_size=2, progress=False)
    assert report.ok and len(report.written) == 3
    for path in local.written:
        assert (tmp_path / "ray" / path.name).read_bytes() == path.read_bytes()
    [(worker, entry)] = report.workers.items()
    assert entry["photos"] == 3 and entry["runtime"] == "tensorflow"  # the workers' Keras path, threads pinned


def test_an_exported_file_runs_without_tensorflow_and_a_photo_that_kills_every_worker_fails_after_max_tries(
        cluster, tiny_onnx, tmp_path):
    from photos import write_photos

    model = tiny_onnx
    photos = write_photos(tmp_path / "photos", count=6)
    out, marker = tmp_path / "out", tmp_path / "killed"
    kill_at(cluster, out / photos[1].name, marker, every=True)
    lines = []
    report = colorize_dataset([tmp_path / "photos"], out, model=model, workers=1, batch_size=4, max_tries=2,
                              progress=False, log=lines.append)
    cluster.unlink()

    kills = journal_lines(marker)
    assert len(kills) == 2 and not any(kill["tensorflow"] for kill in kills)  # each try killed a TF-free worker
    assert len(report.failed) == 1, report.failed
    [(src, reason)] = report.failed
    assert src == photos[1] and "died each of the 2 times" in reason
    assert lines == [f"error: {photos[1]}: {reason}"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in photos if p != photos[1])
    assert {w["runtime"] for w in report.workers.values()} == {"onnx"}


def test_a_model_no_worker_can_load_stops_the_job_with_its_one_line(cluster, tmp_path):
    from photos import write_photos

    from colorfusion.errors import ModelLoadError

    write_photos(tmp_path / "photos", count=2)
    (tmp_path / "broken.onnx").write_bytes(b"not an ONNX file")  # and no JSON beside it
    with pytest.raises(ModelLoadError, match=r"broken\.onnx") as raised:
        colorize_dataset([tmp_path / "photos"], tmp_path / "out", model=tmp_path / "broken.onnx", workers=1,
                         progress=False)
    assert "\n" not in str(raised.value) and "Actor" not in str(raised.value)
    assert not list((tmp_path / "out").rglob("*.png"))


def test_a_clip_given_to_the_ray_engine_goes_to_the_local_engine_and_a_line_says_so(cluster, tiny_onnx, tmp_path):
    pytest.importorskip("av")
    from fractions import Fraction

    from photos import write_photos

    from colorfusion.testing import clips

    write_photos(tmp_path / "in", count=2)
    clips.write_clip(tmp_path / "in" / "film.mp4", [make_photo(np.random.default_rng(i), 48, 64) for i in range(6)],
                     rate=Fraction(25))
    lines = []
    report = colorize_dataset([tmp_path / "in"], tmp_path / "out", model=tiny_onnx, workers=1, progress=False,
                              log=lines.append)
    assert report.ok and sorted(p.name for p in report.written) == ["film.mp4", "photo_00.png", "photo_01.png"]
    assert lines == ["note: 1 clip colorized on this machine, not on the cluster (the ray engine takes photos; "
                     "a clip is one long task)"]
    assert sum(w["photos"] for w in report.workers.values()) == 2  # the photos went to the workers


def test_a_keras_worker_sets_tensorflow_thread_pools_to_its_cpus():
    code = ("import tensorflow as tf; from colorfusion.distributed import _configure_tensorflow; "
            "_configure_tensorflow(3, 0); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["3", "3"], done.stderr


def test_the_command_with_the_ray_engine_prints_its_own_lines_only(tiny_model_file, tmp_path):
    from photos import write_photos

    write_photos(tmp_path / "photos" / "sub", count=3)
    (tmp_path / "photos" / "torn.jpg").write_bytes(b"\xff\xd8\xff\xe0 torn")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own local cluster
    done = subprocess.run([sys.executable, "-m", "colorfusion.cli", "colorize", str(tmp_path / "photos"), "-o",
                           str(tmp_path / "out"), "--model", str(tiny_model_file()), "--engine", "ray",
                           "--workers", "1", "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()  # no Ray, no TensorFlow line, no bar (--quiet): the one failure
    assert line.startswith(f"error: {tmp_path / 'photos' / 'torn.jpg'}: "), done.stderr
    assert done.stdout.splitlines() == [f"done: 3 written, 0 skipped (exist; --overwrite replaces), 1 failed -> "
                                        f"{tmp_path / 'out'}"]
    assert sorted(p.name for p in (tmp_path / "out" / "sub").iterdir()) == [f"photo_{i:02d}.png" for i in range(3)]
