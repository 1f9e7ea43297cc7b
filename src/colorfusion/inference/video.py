"""Colorize a video clip: streamed, steady from frame to frame, with hints on one frame carried through the shot.

    colorizer = Colorizer.pretrained()
    colorize_video(colorizer, "film.mp4", "film_colour.mp4")                   # steady colour (temporal="flow")
    colorize_video(colorizer, "film.mp4", "out/", hints=[(320, 140, "#c0392b", 48)])  # red at frame 48's point

The clip is decoded and encoded with PyAV (FFmpeg's libraries come in its
wheel: no system FFmpeg), one frame at a time: frames wait only for their
batch (`batch_size` frames through the network at once), so memory does not
grow with the clip's length. The output is an MP4, H.264 (libx264) at the
source's exact frame rate (a `Fraction`: 30000/1001 stays 30000/1001) and
size, every frame keeping its own timestamp (variable frame rates stay as
they are); the audio packets are copied untouched. It is written to a
temporary file beside the output and renamed into place when complete.

Each frame is colorized as a photo by the engine's pipeline
(`inference.engine.colorize_stream`, a batch of frames a runner call); with
`temporal="flow"`, the pipeline's per-item step steadies its colour at the
network's size, where the colour lives, before the join at full size
(`inference.motion.SteadyColour`):

- dense optical flow (OpenCV's DIS) between the lightness of this frame and
  the previous one, both ways;
- the previous frame's *output* colour is carried along the motion onto this
  frame and blended with this frame's own prediction, with a weight that is
  high (`CARRY`) where the carried colour is reliable: the two flows agree
  (forward-backward consistency) and the lightness it comes from matches
  (`lightness agreement`), zero where the motion comes from outside the
  picture or from behind an occluder. The result is a running average of the
  network's predictions along each motion path: flicker averages out, and
  new content takes its own colour at once;
- a scene cut (`MotionEstimator`: the lightness histograms of two frames
  differ, or the flow cannot explain the new frame) starts afresh.

Hints are points `(x, y, colour, frame)` in the clip's pixels
(`parse_video_hints`). Before colorizing, a first pass over the clip at the
flow's size, without the network (`track_hints`) carries each point forward along the flow to
the end of its shot (a cut, or the point leaves the picture), and backward
from its frame to the start of its shot through a buffer of the shot's last
`BACKWARD_FRAMES` small lightness images (28 KB each at 128 x 224): a
point reaches at most that many frames back, so memory stays bounded for
shots of any length. The second pass gives each frame the hints that reached
it.

A little over 500 lines: decoding, the steadying loop and encoding are one
stream; `inference.motion` already holds the flow, cuts and hint tracking.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from colorfusion import io
from colorfusion.errors import HintError, VideoError
from colorfusion.hints import parse_hint
from colorfusion.inference.engine import Lightness, colorize_stream
from colorfusion.inference.motion import SteadyColour, parse_video_hints, track_hints
from colorfusion.inference.reference import as_reference
from colorfusion.provenance import Mark, clip_tags

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".wmv",
                    ".flv", ".3gp", ".ogv", ".y4m")
TEMPORAL = ("flow", "none")  # steady colour along the motion | every frame on its own
BATCH_SIZE = 8  # frames per network call
OUTPUT_SUFFIX = ".mp4"
ENCODERS = ("libx264", "libopenh264", "h264", "mpeg4")  # the first one this PyAV build has is used
X264_OPTIONS = {"crf": "17", "preset": "veryfast"}  # visually lossless for this content; fast on a CPU



# === Reading and writing ===


def is_video_file(path) -> bool:
    """True when the file name has one of `VIDEO_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def find_videos(root) -> list[Path]:
    """All video files under `root` (`VIDEO_EXTENSIONS`), recursively, sorted; hidden files and folders skipped."""
    root = Path(root)
    if root.is_file():
        return [root] if is_video_file(root) else []
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder) / n for n in names if not n.startswith(".") and is_video_file(n))
    return sorted(found)


def _av():
    try:
        import av
    except ImportError:
        raise ImportError('colorizing video needs PyAV: pip install "colorfusion[video]" (or pip install av)') from None
    return av


@dataclass
class VideoInfo:
    """What a clip's header says: size, exact frame rate, time base, frame count (None: unknown), audio codecs.

    `expected`: the frame count, or where the header has none (Matroska, MPEG-TS) its duration x rate (for the
    progress bar's time left).
    """

    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    frames: int | None
    audio: list = field(default_factory=list)
    expected: int | None = None
    tags: dict = field(default_factory=dict)  # the container's own (creation_time, location, ...)


def probe(path) -> VideoInfo:
    """The header of a clip's first video stream.

    Raises:
        VideoError: missing, not a video (or damaged beyond opening), or without a video stream.
    """
    with _open(path) as container:
        return _info(container, path)


def _open(path):
    av = _av()
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "no such file")
    if path.is_dir():
        raise VideoError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as e:
        raise VideoError(path, f"not a video, or damaged ({_av_reason(e)})") from None


def _av_reason(error) -> str:
    return getattr(error, "strerror", None) or str(error).splitlines()[0]


def _info(container, path) -> VideoInfo:
    if not container.streams.video:
        raise VideoError(path, "no video frames in this file (no video stream, or an empty one)")
    stream = container.streams.video[0]
    rate = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25))
    time_base = Fraction(stream.time_base or Fraction(1, 90000))
    expected = stream.frames or None
    if expected is None and stream.duration:
        expected = round(stream.duration * time_base * rate)
    elif expected is None and container.duration:  # microseconds
        expected = round(Fraction(container.duration, 1_000_000) * rate)
    return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height, rate=rate,
                     time_base=time_base, frames=stream.frames or None,
                     audio=[s.codec_context.name for s in container.streams.audio], expected=expected,
                     tags=dict(container.metadata))


@dataclass
class Frame:
    """A decoded frame: its number, RGB pixels, and timestamp (in the stream's time base)."""

    index: int
    rgb: np.ndarray
    pts: int


def read_frames(path, log=None):
    """Yield each frame of a clip's first video stream as a `Frame`, one at a time.

    A clip whose end is damaged or missing yields the frames it has and logs
    a warning. Missing timestamps are counted from the frame rate; they are
    kept strictly increasing.

    Raises:
        VideoError: not a video, no video stream, or not one decodable frame.
    """
    av = _av()
    log = log or _warn
    path = Path(path)
    container = _open(path)
    try:
        info = _info(container, path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = max(1, round(1 / (info.rate * info.time_base)))  # one frame in time-base units
        index, last_pts, damage = 0, None, None
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    pts = frame.pts if frame.pts is not None else (0 if last_pts is None else last_pts + step)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1
                    last_pts = pts
                    yield Frame(index, frame.to_ndarray(format="rgb24"), pts)
                    index += 1
        except av.FFmpegError as e:
            damage = _av_reason(e)
        if index == 0:
            raise VideoError(path, f"no decodable frame ({damage})" if damage else "no video frames in this file")
        if damage or (info.frames and index < info.frames):
            told = f" of the {info.frames} its header announces" if info.frames and index < info.frames else ""
            log(f"warning: {path}: truncated or damaged ({damage or 'ends early'}); "
                f"colorized the {index} decodable frames{told}")
    finally:
        container.close()


def _warn(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def video_encoder() -> str:
    """The encoder this PyAV build offers first among `ENCODERS` (H.264 wherever the wheel has libx264)."""
    av = _av()
    for name in ENCODERS:
        try:
            if av.codec.Codec(name, "w").type == "video":
                return name
        except Exception:  # noqa: BLE001 - av raises UnknownCodecError or ValueError by version
            continue
    raise RuntimeError(f"this PyAV build has none of the video encoders {', '.join(ENCODERS)}")


class VideoWriter:
    """Write frames to an MP4 at the source's rate and time base, copying the source's audio packets.

    The audio is read by a second demuxer over the source, packet by packet,
    and muxed up to the time of each video frame written: no packet is
    decoded or held longer than the frames in flight. An audio codec the
    output container cannot hold is re-encoded to AAC (with a warning).

    `tags`: the container's tags (`provenance.clip_tags`), written as they
    are named (`movflags=use_metadata_tags`: keys of any name).

    Example:
        with VideoWriter("out.mp4", info, source="in.mp4") as writer:
            writer.write(rgb, pts)
    """

    def __init__(self, path, info: VideoInfo, source=None, log=None, tags=None):
        av = _av()
        self.log = log or _warn
        self.info = info
        self.out = av.open(str(path), "w", format="mp4" if Path(path).suffix.lower() in (".mp4", ".m4v") else None,
                           options={"movflags": "use_metadata_tags"} if tags else {})
        self.out.metadata.update(tags or {})
        self.encoder = video_encoder()
        self.video = self.out.add_stream(self.encoder, rate=info.rate)
        self.video.width, self.video.height = info.width, info.height
        # 4:2:0 needs even sides; a clip with an odd side keeps its size in 4:4:4.
        even = info.width % 2 == 0 and info.height % 2 == 0
        self.video.pix_fmt = "yuv420p" if even or self.encoder == "libopenh264" else "yuv444p"
        self.video.time_base = info.time_base
        context = self.video.codec_context
        context.time_base = info.time_base
        context.framerate = info.rate
        context.colorspace, context.color_range = 6, 1  # BT.601 (smpte170m), limited range: what rgb24 -> YUV gives
        if self.encoder == "libx264":
            self.video.options = dict(X264_OPTIONS)
        self._audio_in, self._audio = None, []
        self._pending = None
        if source is not None and info.audio:
            self._open_audio(source)

    def _open_audio(self, source) -> None:
        av = _av()
        self._audio_in = av.open(str(source), "r")
        self._packets = self._audio_in.demux(*self._audio_in.streams.audio)
        for stream in self._audio_in.streams.audio:
            name = stream.codec_context.name
            if name in self.out.supported_codecs:
                self._audio.append((stream, self.out.add_stream_from_template(stream), None))
            else:
                self.log(f"warning: {source}: its {name} audio cannot go in {self.out.format.name}: re-encoded to AAC")
                out = self.out.add_stream("aac", rate=stream.codec_context.sample_rate or 48000)
                self._audio.append((stream, out, av.AudioResampler(format="fltp", layout=out.layout,
                                                                     rate=out.rate)))

    def write(self, rgb: np.ndarray, pts: int) -> None:
        """Encode one uint8 RGB frame (H, W, 3) with its timestamp in the source's time base."""
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = int(pts)
        frame.time_base = self.info.time_base
        self.out.mux(self.video.encode(frame))
        self._mux_audio(float(pts * self.info.time_base))

    def _mux_audio(self, until: float | None) -> None:
        """Copy the source's audio packets up to `until` seconds (None: all that are left)."""
        if self._audio_in is None:
            return
        streams = {stream.index: (out, resampler) for stream, out, resampler in self._audio}
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._audio_in.close()
                self._audio_in = None
                for _, out, resampler in self._audio:
                    if resampler is not None:
                        self.out.mux(out.encode(None))
                return
            if packet.dts is None and packet.pts is None:  # the demuxer's empty flush packet
                continue
            when = packet.pts if packet.pts is not None else packet.dts
            if until is not None and when * packet.time_base > until:
                self._pending = packet
                return
            out, resampler = streams[packet.stream.index]
            if resampler is None:
                packet.stream = out
                self.out.mux(packet)
            else:
                for frame in packet.decode():
                    for piece in resampler.resample(frame):
                        self.out.mux(out.encode(piece))

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio, write the trailer."""
        if self.out is None:
            return
        try:
            self.out.mux(self.video.encode(None))
            self._mux_audio(None)
        finally:
            self._abandon()

    def _abandon(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        if self.out is not None:
            self.out.close()
            self.out = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:  # the file is about to be removed: no flushing
            try:
                self._abandon()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        return False


# === Colorizing a clip ===


@dataclass
class VideoReport:
    """What `colorize_video` did: the output, frames written, cuts found, the encoder, warnings."""

    output: Path
    frames: int = 0
    cuts: int = 0
    encoder: str = ""
    rate: Fraction | None = None
    warnings: list = field(default_factory=list)


def output_path(src, dst) -> Path:
    """The file `dst` names: itself, or, for a folder (existing, or written with a trailing slash), src's name .mp4."""
    dst_text = str(dst)
    dst = Path(dst)
    if dst.is_dir() or dst_text.endswith(("/", "\\")):
        return dst / (Path(src).stem + OUTPUT_SUFFIX)
    return dst


def colorize_video(colorizer, src, dst, temporal: str = "flow", hints=None, batch_size: int = BATCH_SIZE,
                   overwrite: bool = False, progress: bool = True, log=None, reference=None,
                   provenance: bool = True) -> VideoReport:
    """Colorize a clip into an MP4 at the same size, frame rate and timestamps, with its audio.

    Args:
        colorizer: a `Colorizer` (an `inference.engine.Engine`: a Keras
            model or an exported file), or any object with the engine's
            steps (`read_lightness`, `hints_input`, `predict_ab_many`,
            `join_full_resolution`), as a test's stand-in.
        src: the clip (any container and codec FFmpeg reads).
        dst: the output file (.mp4), or a folder to put `<src name>.mp4` in.
        temporal: "flow" (default): colour carried along the motion and
            blended with each frame's own (`SteadyColour`), afresh at cuts;
            "none": every frame on its own.
        hints: for a model that takes hints, points `[x, y, colour, frame]`
            in the clip's pixels (`(x, y, colour)`: frame 0), each carried
            through its shot (`track_hints`).
        batch_size: frames per network call.
        overwrite: replace an existing output (default: refuse).
        progress: a progress bar (frames/s, time left).
        log: called with each warning line (default: stderr, above the bar).
        reference: a colour still of the shot (path, pixels or
            `inference.reference.Reference`), read once, matched on the first
            frame of each shot and its points carried through the shot with
            the hints (`track_hints`); the hints win (docs/reference.md, "Clips").
        provenance: tag the MP4 as colorized (`provenance.clip_tags`: the
            version, the model's sha256, the number of hints); False leaves
            that out. The source's own tags are kept either way.

    Returns:
        A `VideoReport`.

    Raises:
        VideoError: the clip cannot be read (not a video, no frames) or a hint
            is on a frame past its end. HintError: a bad hint.
            FileExistsError: the output exists and `overwrite` is False.
            OSError: the output cannot be written. Nothing is left under the
            output's name by any failure, Ctrl-C included.
    """
    from tqdm.auto import tqdm

    if temporal not in TEMPORAL:
        raise ValueError(f"temporal must be one of {TEMPORAL}. Received: temporal={temporal!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    src = Path(src)
    dst = output_path(src, dst)
    warnings = []

    def warn(message):
        warnings.append(message)
        (log or _warn)(message)

    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst}: exists (overwrite=True replaces it)")
    if dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: the output would replace its input; choose another output")
    info = probe(src)
    points = parse_video_hints(hints)
    reference = as_reference(colorizer, reference)
    shot_points = None
    if reference is not None:  # matched once a shot, on its first frame, then carried along the motion

        def shot_points(index, l_input):
            found = reference.points(colorizer, Lightness(None, l_input), size=(info.height, info.width))
            return [parse_hint(point.hint) for point in found]
    if points and not getattr(colorizer, "takes_hints", True):
        raise HintError("this model takes no colour hints (it was trained without hints=True); use the shipped model "
                        "or a run trained with hints")
    if points and info.frames and max(frame for frame, _ in points) >= info.frames:
        raise VideoError(src, f"a hint is on frame {max(frame for frame, _ in points)}, past the end of the clip "
                              f"(frames 0 to {info.frames - 1})")
    reached = {}
    if points or reference is not None:
        with tqdm(total=info.expected, unit="frame", desc=f"{src.name}: hints", disable=not progress,
                  leave=False) as bar:
            reached = track_hints(_network_lightness(colorizer, read_frames(src, log=lambda message: None), bar),
                                  points, info.width, info.height, src=src, shot_points=shot_points)
    report = VideoReport(output=dst, rate=info.rate)
    steady = SteadyColour() if temporal == "flow" else None
    mark = Mark.of(colorizer, hints=len(points)) if provenance else None
    tags = clip_tags(mark, info.tags)
    with _writable(dst) as tmp, VideoWriter(tmp, info, source=src, log=warn, tags=tags) as writer, \
            tqdm(total=info.expected, unit="frame", desc=src.name, disable=not progress) as bar:
        report.encoder = writer.encoder
        frames = colorize_stream(colorizer, read_frames(src, log=warn), batch_size, read=lambda frame: frame.rgb,
                                 hints_of=lambda frame: reached.get(frame.index),
                                 adjust_ab=None if steady is None else steady.step)
        for frame, done in frames:
            writer.write(done.rgb, frame.pts)
            bar.update(1)
            report.frames += 1
    report.cuts = steady.cuts if steady is not None else 0
    report.warnings = warnings
    return report


@contextlib.contextmanager
def _writable(dst: Path):
    """`io.atomic_path(dst)`, an output folder that cannot be written said in one line naming the output."""
    stack = contextlib.ExitStack()
    try:
        tmp = stack.enter_context(io.atomic_path(dst))
    except OSError as e:
        raise OSError(f"cannot write {dst}: {e.strerror or e}") from None
    with stack:
        yield tmp


def _network_lightness(colorizer, frames, bar):
    """Each frame's L at the network's size alone (the engine's read without the full-size L)."""
    for frame in frames:
        yield colorizer.read_lightness(frame.rgb, full=False)[1]
        bar.update(1)


# === Looking at a result ===


def pick_frames(path, indices) -> list[np.ndarray]:
    """The frames `indices` of a clip, uint8 RGB, read in one streaming pass (for figures)."""
    wanted = sorted(set(int(i) for i in indices))
    found = {}
    for frame in read_frames(path):
        if frame.index in wanted:
            found[frame.index] = frame.rgb
        if len(found) == len(wanted):
            break
    return [found[int(i)] for i in indices if int(i) in found]


def clip_histograms(path) -> np.ndarray:
    """(T, 3, 256): each frame's R, G, B histograms (`metrics.color_histograms`), streaming.

    `metrics.cdc(clip_histograms(path))` is the clip's colour distribution
    consistency; `metrics.js_divergence(h[:-1], h[1:]).mean(-1)` its change from frame to frame.
    """
    from colorfusion import metrics

    return np.stack([metrics.color_histograms(frame.rgb) for frame in read_frames(path)])


__all__ = ["colorize_video", "VideoError", "VideoReport", "VideoWriter", "read_frames", "probe", "pick_frames",
           "clip_histograms", "is_video_file", "find_videos", "output_path"]
