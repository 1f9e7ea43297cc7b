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
from colorfusion.inference.engine import colorize_stream
from colorfusion.inference.video import OUTPUT_SUFFIX as VIDEO_SUFFIX
from colorfusion.inference.video import colorize_video, find_videos, is_video_file

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

    @property
    def ok(self) -> bool:
        return not self.failed


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


def refused_outputs(pairs) -> dict[Path, str]:
    """{input: reason} for pairs whose output would replace an input or another pair's output."""
    inputs = {src.resolve() for src, _ in pairs}
    claimed, refused = {}, {}
    for src, out in pairs:
        target = out.resolve()
        if target in inputs:
            refused[src] = f"output {out} would replace an input; choose another output folder"
        elif target in claimed:
            refused[src] = f"output {out} is already the output of {claimed[target]}"
        else:
            claimed[target] = src
    return refused


def colorize_folder(inputs, dst, model, batch_size: int = 8, overwrite: bool = False,
                    progress: bool = True, log=None, hints=None, temporal: str = "flow",
                    **colorizer_kwargs) -> FolderReport:
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

    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    colorizer = as_colorizer(model, **colorizer_kwargs)
    report = FolderReport()
    for item in map(Path, inputs):
        if not item.exists():
            _fail(report, log, item, "no such file or folder")
    pairs = plan_outputs(inputs, dst)
    refused = refused_outputs(pairs)
    hints_of = _hints_by_input(hints, pairs, dst, report, log)
    todo = []
    for src, out in pairs:
        if src in refused:
            _fail(report, log, src, refused[src])
        elif out.exists() and not overwrite:
            report.skipped.append(out)
            report.outputs[src] = out
        else:
            todo.append((src, out))
    clips = [(src, out) for src, out in todo if is_video_file(src)]
    todo = [(src, out) for src, out in todo if not is_video_file(src)]
    if todo:
        with tqdm(total=len(todo), unit="img", desc="colorize", disable=not progress) as bar:
            _colorize_photos(todo, colorizer, report, log, hints_of, batch_size, bar)
    for src, out in clips:  # each clip streams through the network in batches of its frames, with its own bar
        _colorize_clip(src, out, colorizer, report, log, hints_of.get(src), temporal, batch_size, progress)
    return report


def _colorize_clip(src, out, colorizer, report: FolderReport, log, hints, temporal, batch_size, progress) -> None:
    try:
        colorize_video(colorizer, src, out, temporal=temporal, hints=hints, batch_size=batch_size, overwrite=True,
                       progress=progress, log=log)
        report.written.append(out)
        report.outputs[src] = out
    except Exception as e:  # noqa: BLE001 - a batch job never stops for one file
        _fail(report, log, src, reason(e))


def _fail(report: FolderReport, log, src, reason: str) -> None:
    report.failed.append((Path(src), reason))
    log(f"error: {src}: {reason}")


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
            _fail(report, log, key, "hints given for a photo that is not among the inputs")
    return by_input


def _colorize_photos(pairs, colorizer: Colorizer, report: FolderReport, log, hints_of, batch_size, bar) -> None:
    # Any error is about one file (or, for the runner call, its batch): report it and go on.
    photos = colorize_stream(colorizer, pairs, batch_size, read=lambda pair: io.read_rgb(pair[0]),
                             hints_of=lambda pair: hints_of.get(pair[0]), errors="keep")
    for (src, out), done in photos:
        if done.error is not None:
            _fail(report, log, src, f"model failed: {reason(done.error)}" if done.stage == "network"
                  else reason(done.error))
        else:
            try:
                io.write_image(out, done.rgb)
                report.written.append(out)
                report.outputs[src] = out
            except Exception as e:  # noqa: BLE001 - a batch job never stops for one file
                _fail(report, log, src, f"cannot write {out}: {reason(e)}")
        bar.update(1)
