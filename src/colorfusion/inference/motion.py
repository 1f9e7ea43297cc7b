"""Colour and points carried along the motion of a clip: optical flow, scene cuts, steady colour, hints.

Everything here works on each frame's lightness at the network's size and
needs no video file (`inference.video` decodes and encodes the clip):

- `MotionEstimator`: dense optical flow (OpenCV's DIS) between two frames,
  both ways, how well the previous frame explains each pixel (forward-
  backward consistency, agreement of lightness), and scene cuts;
- `SteadyColour`: each frame's predicted ab blended with the previous
  output's, carried along the flow where it is reliable, afresh at cuts;
- `parse_video_hints` / `track_hints`: points `[x, y, colour, frame]` carried
  forward and backward through their shot.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import cv2
import numpy as np

from colorfusion.errors import HintError, VideoError

# Steady colour (SteadyColour), all at the network's input size.
CARRY = 0.85  # weight of the carried colour where it is fully reliable: a memory of about 1 / (1 - 0.85) frames
# Flow on the lightness at the network's size shrunk to this short side: at 128 the benchmark's steadiness and
# PSNR are those at 256 (to 0.01), at half the cost.
FLOW_MAX_SIDE = 128
CONSISTENCY_PX = 1.0  # forward-backward flow disagreement (pixels) at which the carried colour's weight is e^-1/2
LIGHTNESS_TOLERANCE = 6.0  # L units of disagreement at which it is e^-1/2
CUT_HISTOGRAM = 0.4  # total-variation distance of two frames' 64-bin L histograms above which it is a cut
CUT_INCONSISTENT = 0.3  # share of pixels whose two flows disagree by over a pixel above which it is a cut
BACKWARD_FRAMES = 300  # hints reach back at most this many frames (10 s at 30 frames/s)


# === Motion: flow, reliability, cuts ===


def flow_gray(l_input: np.ndarray) -> np.ndarray:
    """uint8 lightness (h, w) for the flow, from L (h, w) or (h, w, 1) in [0, 100], short side <= FLOW_MAX_SIDE."""
    l_input = np.asarray(l_input, np.float32)
    l_input = l_input[..., 0] if l_input.ndim == 3 else l_input
    gray = np.clip(l_input * 2.55 + 0.5, 0, 255).astype(np.uint8)
    short = min(gray.shape)
    if short > FLOW_MAX_SIDE:
        scale = FLOW_MAX_SIDE / short
        gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    return gray


def histogram_distance(gray_a: np.ndarray, gray_b: np.ndarray, bins: int = 64) -> float:
    """Total-variation distance (0: same, 1: disjoint) of two images' lightness histograms."""
    ha = np.bincount((gray_a.ravel() >> 2).astype(np.intp), minlength=bins) / gray_a.size
    hb = np.bincount((gray_b.ravel() >> 2).astype(np.intp), minlength=bins) / gray_b.size
    return 0.5 * float(np.abs(ha - hb).sum())


@dataclass
class Motion:
    """The motion from the previous frame to this one, at the flow's size.

    Attributes:
        cut: a scene cut between them (nothing carries over).
        backward: (h, w, 2) flow from this frame to the previous (where each pixel was).
        forward: (h, w, 2) flow from the previous frame to this one.
        reliability: (h, w) in [0, 1]: how well the previous frame explains each pixel
            (forward-backward consistency x lightness agreement; 0 where it comes from outside).
    """

    cut: bool
    backward: np.ndarray | None = None
    forward: np.ndarray | None = None
    reliability: np.ndarray | None = None


class MotionEstimator:
    """Dense optical flow between consecutive frames, and cut detection.

    OpenCV's DIS, "medium" preset ("fast" misses objects under about 30 pixels).
    """

    def __init__(self):
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._grid = None

    def grid(self, height: int, width: int) -> np.ndarray:
        if self._grid is None or self._grid.shape[:2] != (height, width):
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
            self._grid = np.stack([xs, ys], -1)
        return self._grid

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> Motion:
        """The `Motion` from `previous` to `current`, both `flow_gray` images."""
        if previous.shape != current.shape or histogram_distance(previous, current) > CUT_HISTOGRAM:
            return Motion(cut=True)
        backward = self.dis.calc(current, previous, None)
        forward = self.dis.calc(previous, current, None)
        height, width = current.shape
        where = self.grid(height, width) + backward  # where each pixel of `current` was in `previous`
        map_x, map_y = where[..., 0], where[..., 1]
        # Consistency: going back then forward again should land where it started.
        round_trip = backward + cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mismatch = (round_trip * round_trip).sum(-1)
        carried_l = cv2.remap(previous.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        l_error = (current.astype(np.float32) - carried_l) / np.float32(2.55)
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        reliability = np.exp(-0.5 * mismatch / CONSISTENCY_PX ** 2 - 0.5 * (l_error / LIGHTNESS_TOLERANCE) ** 2)
        reliability = (reliability * inside).astype(np.float32)
        # Measured on the benchmark's clips: at most 6 % of pixels in pans, zooms, shakes; 99 % at the cut.
        if float((mismatch > 1.0).mean()) > CUT_INCONSISTENT:
            return Motion(cut=True)
        return Motion(cut=False, backward=backward, forward=forward, reliability=reliability)


def sample(field: np.ndarray, xs, ys) -> np.ndarray:
    """Bilinear values (n, C) of `field` (h, w, C) at points (xs, ys) (pixels, edges replicated)."""
    xs = np.asarray(xs, np.float32).reshape(1, -1)
    ys = np.asarray(ys, np.float32).reshape(1, -1)
    return cv2.remap(field, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(xs.shape[1], -1)


class SteadyColour:
    """Carries colour along the motion: each frame's ab blended with the previous output's, moved by the flow.

    `step(l_input, ab)` takes a frame's network-size L (h, w, 1) and its own
    predicted ab (h, w, 2), and returns the ab to show: the frame's own ab
    where the previous frame says nothing (the first frame, a cut, content
    coming into view or from behind an occluder), else
    `own + w (carried - own)` with `w = CARRY x reliability`.

    Example:
        steady = SteadyColour()
        for l_input, ab in frames:
            ab_shown = steady.step(l_input, ab)
    """

    def __init__(self, carry: float = CARRY, motion: MotionEstimator | None = None):
        if not 0 <= carry < 1:
            raise ValueError(f"carry must be in [0, 1). Received: carry={carry!r}")
        self.carry = carry
        self.motion = motion or MotionEstimator()
        self.previous_gray = None
        self.previous_ab = None
        self.cuts = 0

    def reset(self) -> None:
        self.previous_gray = self.previous_ab = None

    def step(self, l_input: np.ndarray, ab: np.ndarray) -> np.ndarray:
        ab = np.asarray(ab, np.float32)
        gray = flow_gray(l_input)
        out = ab
        if self.previous_gray is not None:
            motion = self.motion(self.previous_gray, gray)
            if motion.cut:
                self.cuts += 1
            else:
                out = self._blend(motion, ab)
        self.previous_gray, self.previous_ab = gray, out
        return out

    def _blend(self, motion: Motion, ab: np.ndarray) -> np.ndarray:
        height, width = ab.shape[:2]
        backward, weight = motion.backward, motion.reliability * np.float32(self.carry)
        if backward.shape[:2] != (height, width):  # flow on a smaller image than the colour
            scale_x, scale_y = width / backward.shape[1], height / backward.shape[0]
            backward = cv2.resize(backward, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(
                [scale_x, scale_y])
            weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        where = self.motion.grid(height, width) + backward
        carried = cv2.remap(self.previous_ab, where[..., 0], where[..., 1], cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        return ab + weight[..., None] * (carried - ab)


# === Hints on keyframes ===


def parse_video_hints(hints) -> list[tuple[int, tuple]]:
    """[(frame, (x, y, (r, g, b))), ...] of points `[x, y, colour, frame]` (or `(x, y, colour)`: frame 0).

    The text form is "X,Y,#RRGGBB" (frame 0) or "X,Y,#RRGGBB,FRAME".

    Raises:
        HintError: one line naming the point and what is wrong with it.
    """
    from colorfusion.hints import parse_hint

    parsed = []
    for hint in hints or []:
        point, frame = hint, 0
        if isinstance(hint, str) and hint.count(",") == 3:
            *point, frame = hint.rsplit(",", 1)
            point = point[0]
        elif not isinstance(hint, str) and isinstance(hint, (list, tuple)) and len(hint) == 4:
            *point, frame = hint
        try:
            frame_number = float(frame)
        except (TypeError, ValueError):
            frame_number = -1.0
        if frame_number < 0 or frame_number != int(frame_number):
            raise HintError(f"hint {hint!r}: the frame must be a whole number from 0 (the first frame)")
        try:
            x, y, rgb = parse_hint(point)
        except HintError as e:
            raise HintError(f"{e} (a video's points are [x, y, colour, frame])") from None
        parsed.append((int(frame_number), (x, y, rgb)))
    return parsed


def track_hints(frames, hints, width: int, height: int, src="clip", shot_points=None) -> dict[int, list]:
    """Carry each hint through its shot; {frame: [(x, y, rgb), ...]} for every frame some hint reaches.

    Args:
        frames: an iterable of each frame's network-size L (h, w, 1), in order.
        hints: `parse_video_hints` output.
        width, height: the clip's size (the points' pixels).
        src: the clip, named in errors.
        shot_points: `shot_points(frame, l_input)` -> points `(x, y, rgb)`
            given at the first frame of each shot (a reference photo's, matched
            there) and carried through the shot like the others; a hint of the
            same frame or carried back onto it comes after them (it wins where
            their patches overlap).

    Forward, each point moves with the flow from frame to frame until a cut
    or until it leaves the picture. Backward, from its frame through the
    shot's buffered lightness (at most `BACKWARD_FRAMES` frames back) to the
    shot's first frame. Raises `VideoError` for a point on a frame past the end.
    """
    by_frame = collections.defaultdict(list)
    for frame, point in hints:
        x, y, _ = point
        if not (0 <= x < width and 0 <= y < height):
            raise HintError(f"hint {[x, y, frame]!r} is outside the picture ({width} x {height} pixels)")
        by_frame[frame].append(point)
    reached = collections.defaultdict(list)
    motion = MotionEstimator()
    shot = collections.deque(maxlen=BACKWARD_FRAMES + 1)  # (frame, gray) of the current shot, newest last
    active = []  # [x, y, rgb] in the flow image's pixels
    scale = None
    count = 0
    for index, l_input in enumerate(frames):
        count = index + 1
        gray = flow_gray(l_input)
        if scale is None:
            scale = (gray.shape[1] / width, gray.shape[0] / height)
        if shot:
            step = motion(shot[-1][1], gray)
            if step.cut:
                shot.clear()
                active = []
            else:
                active = _move(active, step.forward, gray.shape)
        if not shot and shot_points is not None:  # a new shot: its own points first
            active += [[(x + 0.5) * scale[0] - 0.5, (y + 0.5) * scale[1] - 0.5, rgb]
                       for x, y, rgb in shot_points(index, l_input)]
        shot.append((index, gray))
        for x, y, rgb in by_frame.get(index, []):
            fx, fy = (x + 0.5) * scale[0] - 0.5, (y + 0.5) * scale[1] - 0.5
            active.append([fx, fy, rgb])
            _carry_back(reached, shot, [fx, fy, rgb], motion, scale)
        reached[index] += [_to_clip(point, scale, width, height) for point in active]
    late = [frame for frame in by_frame if frame >= count]
    if late:
        raise VideoError(src, f"a hint is on frame {min(late)}, past the end of the clip (frames 0 to {count - 1})")
    return {frame: points for frame, points in reached.items() if points}


def _move(points, flow: np.ndarray, shape) -> list:
    """Points moved by `flow` (h, w, 2) from their frame to the next; those that leave the picture dropped."""
    if not points:
        return points
    xs = np.float32([p[0] for p in points])
    ys = np.float32([p[1] for p in points])
    moved = sample(flow, xs, ys)
    height, width = shape
    kept = []
    for (x, y, rgb), (dx, dy) in zip(points, moved):
        x, y = x + float(dx), y + float(dy)
        if -0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5:
            kept.append([x, y, rgb])
    return kept


def _carry_back(reached, shot, point, motion: MotionEstimator, scale) -> None:
    """Carry one point from the newest frame of `shot` back to its first, recording it on each frame."""
    frames = list(shot)
    points = [point]
    height, width = frames[-1][1].shape
    clip_width, clip_height = width / scale[0], height / scale[1]
    for (index, gray), (_, newer) in zip(frames[-2::-1], frames[:0:-1]):
        points = _move(points, motion.dis.calc(newer, gray, None), gray.shape)
        if not points:
            return
        reached[index].append(_to_clip(points[0], scale, clip_width, clip_height))


def _to_clip(point, scale, width, height) -> tuple:
    x, y, rgb = point
    x = min(max((x + 0.5) / scale[0] - 0.5, 0.0), width - 1.0)
    y = min(max((y + 0.5) / scale[1] - 0.5, 0.0), height - 1.0)
    return x, y, rgb
