"""Colorize trees of files: every photo in the inputs, mirrored into an output folder.

A file that cannot be read or written gets one line and the rest go on;
existing outputs are skipped unless asked; an output that would replace an
input is refused; every output is written atomically. Photos are read and
prepared one by one and go through the network in batches.

    report = colorize_folder(["scans/"], "colorized/", Colorizer.pretrained())
    report.ok, report.written, report.failed
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from colorfusion import io
from colorfusion.datasets import find_images
from colorfusion.errors import reason
from colorfusion.hints import match_hints
from colorfusion.inference.confidence import as_gray, require_probabilities
from colorfusion.inference.engine import colorize_stream
from colorfusion.inference.reference import as_reference
from colorfusion.inference.video import OUTPUT_SUFFIX as VIDEO_SUFFIX
from colorfusion.inference.video import colorize_video, find_videos, is_video_file
from colorfusion.provenance import Mark, Source, write_image

CONFIDENCE_SUFFIX = ".confidence.png"  # `colorize --confidence`: NAME.confidence.png beside NAME.jpg

if TYPE_CHECKING:  # `colorizer` imports Keras: the CLI plans a folder's outputs before Keras starts
    from colorfusion.inference.colorizer import Colorizer


@dataclass
class FolderReport:
    """What `colorize_folder` did: files written, skipped (output exists), failed (with reasons).

    `outputs` maps each input that has an output now (written or skipped) to it.
    """

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, reason)
    outputs: dict = field(default_factory=dict)  # input path -> output path
    workers: dict = field(default_factory=dict)  # a cluster's (`colorfusion.distributed`): worker -> its throughput

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, src, out, failure: str | None, log) -> None:
        """Record one input's outcome: `out` written, or the one-line `failure`."""
        if failure is None:
            self.written.append(Path(out))
            self.outputs[Path(src)] = Path(out)
        else:
            self.fail(src, failure, log)

    def fail(self, src, reason: str, log) -> None:
        """Record that `src` failed, and say so in one line: "error: <src>: <reason>"."""
        self.failed.append((Path(src), reason))
        log(f"error: {src}: {reason}")


@dataclass
class FolderPlan:
    """What a folder job will do (`plan_folder`): photos and clips to colorize, with each input's hints."""

    photos: list  # (input, output) pairs, in the order of `plan_outputs`
    clips: list  # (input, output) pairs of videos
    hints_of: dict  # input -> its points


def plan_outputs(inputs, dst) -> list[tuple[Path, Path]]:
    """Pair every input image with its output path, mirroring folders.

    A file given directly lands in `dst` under its name; a folder's images
    keep their path relative to that folder. GIF outputs become PNG (a
    palette would throw the colours away); videos (`inference.video`) become MP4. When `dst` lies inside an input
    folder, the images under `dst` are not inputs (so `-o photos/colorized`
    can be run twice). Missing inputs are left out (`colorize_folder`
    reports them); see `refused_outputs` for pairs that must not be written.
    """
    dst = Path(dst)
    resolved_dst = dst.resolve()
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(find_images(item) + find_videos(item))  # photos and clips alike
            root = item.resolve()
            if resolved_dst != root and resolved_dst.is_relative_to(root):  # dst inside this input folder
                found = [f for f in found if not f.resolve().is_relative_to(resolved_dst)]
            pairs += [(f, dst / f.relative_to(item)) for f in found]
        elif item.exists():
            pairs.append((item, dst / item.name))
    return [(src, out.with_suffix(VIDEO_SUFFIX) if is_video_file(src) else out.with_suffix(io.output_suffix(out)))
            for src, out in pairs]


def confidence_path(out) -> Path:
    """The confidence map written beside a photo's output `out` (`colorize --confidence`): NAME.confidence.png."""
    out = Path(out)
    return out.with_name(out.stem + CONFIDENCE_SUFFIX)


def files_of(src, out, confidence: bool = False) -> list[Path]:
    """The files a pair writes: its output, and with `confidence` a photo's map beside it (a clip has none)."""
    return [out, confidence_path(out)] if confidence and not is_video_file(src) else [out]


def refused_outputs(pairs, confidence: bool = False) -> dict[Path, str]:
    """{input: reason} for pairs whose output (or confidence map) would replace an input or another pair's file."""
    inputs = {src.resolve() for src, _ in pairs}
    claimed, refused = {}, {}
    for src, out in pairs:
        targets = files_of(src, out, confidence)
        for target in targets:
            if target.resolve() in inputs:
                refused[src] = f"output {target} would replace an input; choose another output folder"
                break
            if target.resolve() in claimed:
                refused[src] = f"output {target} is already the output of {claimed[target.resolve()]}"
                break
        else:
            claimed.update((target.resolve(), src) for target in targets)
    return refused


def plan_folder(inputs, dst, report: FolderReport, log, hints=None, overwrite: bool = False,
                confidence: bool = False) -> FolderPlan:
    """The plan of a folder job: every input's output, what is refused, skipped, and which hints go where.

    The one plan of `colorize_folder` and of a cluster's job
    (`colorfusion.distributed.colorize_dataset`), so both write the same
    tree and refuse, skip and fail the same files with the same lines: a
    missing input, an output that would replace an input or another's
    output, and hints naming no photo are failed in `report` (one line each
    through `log`); an existing output is skipped unless `overwrite`. With
    `confidence`, each photo's map (`confidence_path`) is planned with its
    output: refused alike, and the photo skipped only when both exist.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    for item in map(Path, inputs):
        if not item.exists():
            report.fail(item, "no such file or folder", log)
    pairs = plan_outputs(inputs, dst)
    refused = refused_outputs(pairs, confidence)
    hints_of = _hints_by_input(hints, pairs, dst, report, log)
    todo = []
    for src, out in pairs:
        if src in refused:
            report.fail(src, refused[src], log)
        elif not overwrite and all(path.exists() for path in files_of(src, out, confidence)):
            report.skipped.append(out)
            report.outputs[src] = out
        else:
            todo.append((src, out))
    return FolderPlan(photos=[(src, out) for src, out in todo if not is_video_file(src)],
                      clips=[(src, out) for src, out in todo if is_video_file(src)], hints_of=hints_of)


def colorize_folder(inputs, dst, model, batch_size: int = 8, overwrite: bool = False,
                    progress: bool = True, log=None, hints=None, temporal: str = "flow", reference=None,
                    confidence: bool = False, provenance: bool = True, **colorizer_kwargs) -> FolderReport:
    """Colorize files and folders (recursively) into `dst`, mirroring the tree.

    A file that cannot be read or written gets one line in `log` and the
    rest go on; existing outputs are skipped unless `overwrite`; an output
    that would replace an input is refused. Outputs are written atomically.

    Args:
        inputs: a path or a list of image files and folders.
        dst: output folder (created when needed).
        model: a `Colorizer`, a Keras model, or a `.keras` file / run folder.
        batch_size: photos per model call. Memory grows with it: each photo
            waiting for its batch holds its full-resolution L (4 bytes a pixel).
        log: called with each one-line error (default: stderr, above the bar).
        hints: colour hints for a hint model: a list of `(x, y, colour)`
            points for every photo, or `{photo: points}` naming photos by
            their path as given, their path inside an input folder, or their
            file name (`read_hints_file`). A photo whose hints are bad (or
            given to a model that takes none) fails with one line; a name
            that matches no photo is reported as a failure too.
        temporal: for videos, "flow" (colour carried along the motion) or
            "none" (frame by frame); see `inference.video.colorize_video`.
            A video's hints are points `[x, y, colour, frame]`
            (`(x, y, colour)`: frame 0).
        reference: a colour photo (path, pixels or `inference.reference.Reference`)
            whose colours every photo and clip takes where it matches
            (docs/reference.md); read once. One that cannot be used fails the
            whole job, in one line, before any photo.
        confidence: also write each photo's confidence map beside its
            output, `NAME.confidence.png` (`confidence_path`: gray, 255 =
            sure; `Colorizer.confidence`), skipped and refused as outputs
            are. Needs a model with colour probabilities (`UsageError`).
        provenance: mark each file as colorized (`provenance`: the version,
            the model's sha256, the number of hints); False leaves the mark
            out. The input's own metadata (EXIF, ICC profile) is kept either way.
        **colorizer_kwargs: `decode`, `temperature`, ... for a model not yet
            a `Colorizer`.

    Returns:
        A `FolderReport`; `report.ok` is False when any file failed.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    from colorfusion.inference.colorizer import as_colorizer  # Keras: see the top

    log = log or default_log
    colorizer = as_colorizer(model, **colorizer_kwargs)
    reference = as_reference(colorizer, reference)
    if confidence:
        require_probabilities(colorizer.runner)  # one line, before any file: a regression model, an exported file
    report = FolderReport()
    plan = plan_folder(inputs, dst, report, log, hints=hints, overwrite=overwrite, confidence=confidence)
    if plan.photos:
        with tqdm(total=len(plan.photos), unit="img", desc="colorize", disable=not progress) as bar:
            for src, out, failure in colorize_photos(colorizer, plan.photos, plan.hints_of, batch_size,
                                                      reference=reference, provenance=provenance,
                                                      confidence=confidence, overwrite=overwrite):
                report.add(src, out, failure, log)
                bar.update(1)
    colorize_clips(plan.clips, colorizer, report, log, plan.hints_of, temporal, batch_size, progress,
                   reference=reference, provenance=provenance)
    return report


def default_log(message: str) -> None:
    """A job's one-line errors: on stderr, above its progress bar."""
    tqdm.write(message, file=sys.stderr)


def colorize_clips(clips, colorizer, report: FolderReport, log, hints_of, temporal, batch_size, progress,
                   reference=None, provenance: bool = True) -> None:
    """Colorize the (input, output) pairs of videos; each streams through the network with its own bar."""
    for src, out in clips:
        try:
            colorize_video(colorizer, src, out, temporal=temporal, hints=hints_of.get(src), batch_size=batch_size,
                           overwrite=True, progress=progress, log=log, reference=reference, provenance=provenance)
            report.add(src, out, None, log)
        except Exception as e:  # noqa: BLE001 - a batch job never stops for one file
            report.fail(src, reason(e), log)


def _hints_by_input(hints, pairs, dst, report: FolderReport, log) -> dict:
    """{input: its hints} from one list for all (`--hint`) or a {name: hints} dict (`--hints`)."""
    if not hints:
        return {}
    if not isinstance(hints, dict):
        return {src: list(hints) for src, _ in pairs}
    # Each photo's path inside its input folder is its output's, under its own name (not .gif -> .png).
    keys = match_hints(hints, [(src, Path(out).relative_to(dst).with_name(src.name)) for src, out in pairs])
    by_input = {src: hints[key] for (src, _), key in keys.items()}
    used = set(keys.values())
    for key in hints:
        if key not in used:
            report.fail(key, "hints given for a photo that is not among the inputs", log)
    return by_input


def colorize_photos(engine: Colorizer, pairs, hints_of: dict, batch_size: int, reference=None,
                    provenance: bool = True, confidence: bool = False, overwrite: bool = True):
    """Colorize (input, output) pairs of photos through the engine and write each: (input, output, failure) pairs.

    `failure` is None when the output was written (atomically), else the
    one line saying why not. Any error is about one file (or, for the
    runner call, its batch): it is that file's failure and the rest go on.
    The folder job's photos and a cluster worker's batch both go this way;
    `reference`: an `inference.reference.Reference` matched on each photo.
    Each file is marked as colorized unless not `provenance`
    (`provenance.Mark`) and keeps its input's metadata; with `confidence`
    the photo's map is written beside it (`confidence_path`). Without
    `overwrite`, a file that exists is left as it is (a map planned for an
    output kept).
    """
    mark = Mark.of(engine) if provenance else None
    photos = colorize_stream(engine, pairs, batch_size, read=lambda pair: io.read_rgb(pair[0]),
                             hints_of=lambda pair: hints_of.get(pair[0]), errors="keep", reference=reference)
    for (src, out), done in photos:
        if done.error is not None:
            failure = f"model failed: {reason(done.error)}" if done.stage == "network" else reason(done.error)
        else:
            hints = hints_of.get(src) or []
            marked = mark and mark.with_hints(len(hints))
            target = out
            try:
                if overwrite or not out.exists():
                    write_image(out, done.rgb, marked, Source.of(src))
                if confidence and (overwrite or not confidence_path(out).exists()):
                    target = confidence_path(out)
                    write_image(target, as_gray(engine.confidence(done.lightness, hints=hints)), marked)
                failure = None
            except Exception as e:  # noqa: BLE001 - a batch job never stops for one file
                failure = f"cannot write {target}: {reason(e)}"
        done = None  # its full-resolution RGB is written: let it go before the next
        yield src, out, failure
