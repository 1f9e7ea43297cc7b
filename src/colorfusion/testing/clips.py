"""Clips made from colour photos with known motion: every frame's true colour, and the true motion between frames.

A clip is a photo (or two) seen through a moving camera, drawn frame by frame
on demand (nothing is held but the photos): a slow pan, a zoom, an object
moving across a still background, a cut between two photos, camera shake.
Because each frame is the photo resampled by a known transform, the true
correspondence of every pixel between two frames is known too
(`MotionClip.motion`), which is what the warping error of a colorized clip
needs. `benchmarks/bench_video.py`, the video notebook (08_video) and
tests/test_video.py use them: fixture code, not part of colorizing.

    clip = pan_clip(photo, (480, 854), frames=48)
    rgb = clip.frame(10)                       # uint8 (480, 854, 3), the true colours
    map_x, map_y, valid = clip.motion(10)      # where frame 9's pixels are in frame 10
    write_clip("pan.mp4", (color.gray_version(clip.frame(t)) for t in range(len(clip))), rate=Fraction(30000, 1001))

`write_clip` still has an encoder of its own, not `inference.video.VideoWriter`:
a test clip needs what that writer does not offer (yet): its own x264 options
(crf 12, ultrafast: no B-frames, large intra frames, so that the first 60 % of
a file still decodes in the truncation test; the writer's crf 17 veryfast
leaves none), the index at the start of the file (movflags=faststart, as
streaming sites write it), and a generated audio track (the writer copies a
source's packets). Its pixel format follows the writer's rule: 4:2:0 needs
even sides, an odd-sized clip is 4:4:4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

KINDS = ("pan", "zoom", "object", "cut", "shake")


def _cover(photo: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """The photo resized to cover (height, width) x margin, keeping its aspect ratio."""
    scale = margin * max(height / photo.shape[0], width / photo.shape[1])
    size = (max(width, round(photo.shape[1] * scale)), max(height, round(photo.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(photo, size, interpolation=interpolation)


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.float64([[1, 0, dx], [0, 1, dy]])


def _invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def _apply(matrix: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    return (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2],
            matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2])


@dataclass(eq=False)  # layers are compared by identity
class Layer:
    """A photo drawn through per-frame transforms (frame pixel -> photo pixel); an optional mask of its shape."""

    photo: np.ndarray
    transforms: list  # (2, 3) affine per frame: frame pixel -> photo pixel
    mask: np.ndarray | None = None  # uint8 (h, w) of the photo: 1 where the layer is opaque
    frames: range | None = None  # the frames it appears in (None: all)


@dataclass
class MotionClip:
    """Frames of layers drawn through known transforms; see the module docstring."""

    name: str
    size: tuple  # (height, width)
    length: int
    layers: list = field(default_factory=list)  # bottom first

    def __len__(self) -> int:
        return self.length

    def _visible(self, t: int):
        return [layer for layer in self.layers if layer.frames is None or t in layer.frames]

    def frame(self, t: int) -> np.ndarray:
        """The true colour frame t, uint8 (H, W, 3)."""
        height, width = self.size
        out = np.zeros((height, width, 3), np.uint8)
        for layer in self._visible(t):
            drawn = cv2.warpAffine(layer.photo, layer.transforms[t], (width, height),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
            if layer.mask is None:
                out = drawn
            else:
                mask = cv2.warpAffine(layer.mask, layer.transforms[t], (width, height),
                                      flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
                out[mask > 0] = drawn[mask > 0]
        return out

    def _top(self, t: int, xs, ys):
        """Index (into the frame's visible layers) of the top layer at each pixel, and those layers."""
        visible = self._visible(t)
        top = np.zeros(xs.shape, np.int32)
        for i, layer in enumerate(visible):
            if layer.mask is not None:
                px, py = _apply(layer.transforms[t], xs, ys)
                px, py = np.rint(px).astype(int), np.rint(py).astype(int)
                inside = (px >= 0) & (px < layer.mask.shape[1]) & (py >= 0) & (py < layer.mask.shape[0])
                on = np.zeros(xs.shape, bool)
                on[inside] = layer.mask[py[inside], px[inside]] > 0
                top[on] = i
        return top, visible

    def motion(self, t: int):
        """Where each pixel of frame t - 1 is in frame t: (map_x, map_y, valid), float32 (H, W) and bool (H, W).

        `valid`: the point is visible in both frames (not covered, not out of
        the picture, not across a cut). `cv2.remap(frame_t, map_x, map_y, ...)`
        is frame t warped onto frame t - 1.
        """
        if not 1 <= t < self.length:
            raise ValueError(f"t must be in [1, {self.length}). Received: t={t}")
        height, width = self.size
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        before, layers_before = self._top(t - 1, xs, ys)
        map_x = np.zeros((height, width), np.float64)
        map_y = np.zeros((height, width), np.float64)
        valid = np.zeros((height, width), bool)
        layers_now = self._visible(t)
        for i, layer in enumerate(layers_before):
            if layer not in layers_now:  # a cut: that layer is gone
                continue
            here = before == i
            px, py = _apply(layer.transforms[t - 1], xs[here], ys[here])
            qx, qy = _apply(_invert(layer.transforms[t]), px, py)
            map_x[here], map_y[here] = qx, qy
            valid[here] = True
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        valid &= inside
        # Still the same layer on top there in frame t (not covered by another)?
        now, _ = self._top(t, np.clip(np.rint(map_x), 0, width - 1), np.clip(np.rint(map_y), 0, height - 1))
        same = np.array([layers_now.index(layers_before[i]) if layers_before[i] in layers_now else -1
                         for i in range(len(layers_before))])[before]
        valid &= now == same
        return map_x.astype(np.float32), map_y.astype(np.float32), valid


def pan_clip(photo, size, frames: int = 48, speed: float = 3.0) -> MotionClip:
    """A slow horizontal pan across the photo, `speed` pixels a frame."""
    height, width = size
    big = _cover(photo, height, width, margin=1.0 + (speed * frames + 8) / width)
    top = (big.shape[0] - height) / 2
    return MotionClip("pan", size, frames, [Layer(big, [_translation(4 + speed * t, top) for t in range(frames)])])


def zoom_clip(photo, size, frames: int = 48, zoom: float = 1.3) -> MotionClip:
    """A zoom into the photo's centre, to `zoom` x at the last frame."""
    height, width = size
    big = _cover(photo, height, width, margin=1.02)
    cy, cx = big.shape[0] / 2, big.shape[1] / 2
    transforms = []
    for t in range(frames):
        s = 1.0 / zoom ** (t / max(1, frames - 1))  # frame pixel -> photo pixel scale
        transforms.append(np.float64([[s, 0, cx - s * width / 2], [0, s, cy - s * height / 2]]))
    return MotionClip("zoom", size, frames, [Layer(big, transforms)])


def object_clip(background, thing, size, frames: int = 48, speed: float = 5.0) -> MotionClip:
    """A disc cut from `thing` moving left to right across the still `background`."""
    height, width = size
    back = _cover(background, height, width, margin=1.0)
    side = max(16, min(height, width) // 3)
    disc = cv2.resize(_cover(thing, side, side, margin=1.0)[:side, :side], (side, side))
    mask = np.zeros((side, side), np.uint8)
    cv2.circle(mask, (side // 2, side // 2), side // 2 - 1, 1, -1)
    top = (height - side) / 2
    start = max(0.0, (width - side - speed * (frames - 1)) / 2)
    moving = [_translation(-(start + speed * t), -top) for t in range(frames)]
    still = [_translation((back.shape[1] - width) / 2, (back.shape[0] - height) / 2)] * frames
    return MotionClip("object", size, frames, [Layer(back, still), Layer(disc, moving, mask)])


def cut_clip(first, second, size, frames: int = 48, speed: float = 2.0) -> MotionClip:
    """Half the frames panning over `first`, then a cut to a pan over `second`."""
    half = frames // 2
    a, b = pan_clip(first, size, frames, speed).layers[0], pan_clip(second, size, frames, speed).layers[0]
    a.frames, b.frames = range(0, half), range(half, frames)
    return MotionClip("cut", size, frames, [a, b])


def shake_clip(photo, size, frames: int = 48, amplitude: int = 6, seed: int = 0) -> MotionClip:
    """Camera shake: the photo jumps by whole pixels (up to `amplitude`) from frame to frame."""
    height, width = size
    big = _cover(photo, height, width, margin=1.0 + (2 * amplitude + 4) / min(height, width))
    rng = np.random.default_rng(seed)
    x0, y0 = (big.shape[1] - width) / 2, (big.shape[0] - height) / 2
    offsets = rng.integers(-amplitude, amplitude + 1, (frames, 2))
    return MotionClip("shake", size, frames, [Layer(big, [_translation(x0 + dx, y0 + dy) for dx, dy in offsets])])


def standard_clips(photos, size, frames: int = 48) -> list[MotionClip]:
    """The five clips of the benchmark from a list of at least two photos (pan, zoom, object, cut, shake)."""
    if len(photos) < 2:
        raise ValueError(f"standard_clips needs at least two photos. Received: {len(photos)}")
    p = [np.asarray(photo) for photo in photos]
    pick = lambda i: p[i % len(p)]  # noqa: E731
    return [pan_clip(pick(0), size, frames), zoom_clip(pick(1), size, frames), object_clip(pick(2), pick(3), size,
            frames), cut_clip(pick(4), pick(5), size, frames), shake_clip(pick(6), size, frames)]


def write_clip(path, frames, rate=Fraction(30000, 1001), audio: bool = False, codec: str = "libx264",
               crf: int = 12, time_base=None, pts=None, faststart: bool = False):
    """Encode uint8 RGB frames (an iterable) into a clip; optional test tone as AAC audio. Returns the path.

    Args:
        rate: the frame rate, exact (a Fraction).
        pts: each frame's timestamp in `time_base` (a variable frame rate); None: one frame every 1 / rate.
        faststart: the index (moov) at the start of an MP4, as streaming sites write it.
    """
    import av

    options = {"movflags": "faststart"} if faststart else {}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(path), "w", options=options)
    video = out.add_stream(codec, rate=Fraction(rate))
    if time_base is not None:
        video.codec_context.time_base = Fraction(time_base)
    if codec == "libx264":
        video.options = {"crf": str(crf), "preset": "ultrafast"}
    sound = out.add_stream("aac", rate=16000) if audio else None
    count = 0
    for i, rgb in enumerate(frames):
        if i == 0:
            video.height, video.width = rgb.shape[:2]
            video.pix_fmt = "yuv420p" if rgb.shape[0] % 2 == 0 and rgb.shape[1] % 2 == 0 else "yuv444p"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = i if pts is None else int(pts[i])
        if time_base is not None:
            frame.time_base = Fraction(time_base)
        out.mux(video.encode(frame))
        count += 1
    out.mux(video.encode(None))
    if sound is not None:
        seconds = count / Fraction(rate) if pts is None else Fraction(int(pts[-1]) + 1) * Fraction(time_base)
        samples, step = int(seconds * 16000), 1024
        channels = sound.layout.nb_channels
        for start in range(0, samples, step):
            tone = 0.3 * np.sin(2 * np.pi * 440 * (np.arange(step) + start) / 16000)
            chunk = av.AudioFrame.from_ndarray(np.repeat(tone.astype(np.float32)[None], channels, 0), format="fltp",
                                               layout=sound.layout.name)
            chunk.sample_rate, chunk.pts = 16000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    out.close()
    return path
