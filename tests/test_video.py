"""Video: exact frame rate, audio copied, frame count, streaming memory, steady colour, cuts, hints carried, bad input.

The clips are made here, from generated textures with known motion
(`colorfusion.testing.clips`), a few dozen frames of 64 to 160
pixels. Most tests use a stand-in colorizer (`StandIn`: gray plus a random
colour cast per frame, i.e. flicker, and each hint's colour painted around
its point) so that they test the video machinery, not a network; the CLI and
API tests use a tiny real model (weights=None).
"""

import os
import tracemalloc
from fractions import Fraction

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

from colorfusion import fastlab  # noqa: E402
from colorfusion.errors import HintError  # noqa: E402
from colorfusion.hints import hint_map  # noqa: E402
from colorfusion.inference import motion, video  # noqa: E402
from colorfusion.inference.video import VideoError, colorize_video  # noqa: E402
from colorfusion.testing import clips  # noqa: E402

NTSC = Fraction(30000, 1001)


class StandIn:
    """A colorizer for tests: network size = the frame's size; gray with a random cast per frame; hints painted."""

    takes_hints = True

    def __init__(self, flicker=12.0, seed=0):
        self.rng = np.random.default_rng(seed)
        self.flicker = flicker

    def read_lightness(self, image, full=True):  # the engine's step; `full=False` may skip the full L
        l_full = fastlab.lightness(fastlab.as_pixels(image))
        return l_full, l_full[..., None]

    def hints_input(self, hints, l_full, shape):
        return hint_map(hints, l_full, shape)

    def predict_ab_many(self, l_inputs, hint_maps=None):
        out = []
        for i, l_input in enumerate(l_inputs):
            ab = np.zeros(l_input.shape[:2] + (2,), np.float32) + self.rng.normal(0, self.flicker, 2).astype(np.float32)
            if hint_maps is not None and hint_maps[i] is not None:
                marked = hint_maps[i][..., 2] > 0
                around = cv2.dilate(marked.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
                ab[around] = hint_maps[i][..., :2][marked].mean(0) * 128
            out.append(ab)
        return out

    def join_full_resolution(self, l_full, ab_small):
        return fastlab.lab_to_rgb_uint8(l_full, cv2.resize(ab_small, l_full.shape[::-1]))


def texture(seed, height, width, blur=2.0):
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (height, width, 3)).astype(np.float32), (0, 0), blur)
    return ((noise - noise.min()) / (np.ptp(noise) + 1e-6) * 190 + 30).astype(np.uint8)


def gray(rgb):
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def pan_frames(count=24, size=(48, 64), seed=0):
    clip = clips.pan_clip(texture(seed, 96, 128), size, count, speed=2)
    return [gray(clip.frame(t)) for t in range(count)]


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def timestamps(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [f.pts * stream.time_base for f in container.decode(video=0)]


def audio_packets(path):
    with av.open(str(path)) as container:
        return [(p.pts * p.time_base, bytes(p)) for p in container.demux(audio=0) if p.size]


def chroma(frames):
    return np.stack([cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:] for f in frames])


@pytest.fixture(scope="module")
def ntsc_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "ntsc.mp4"
    return clips.write_clip(path, pan_frames(24), rate=NTSC, audio=True)


# === The file: rate, size, count, timestamps, audio ===


def test_the_exact_frame_rate_size_frame_count_and_timestamps_are_kept(ntsc_clip, tmp_path):
    report = colorize_video(StandIn(), ntsc_clip, tmp_path / "out.mp4", progress=False)
    out = video.probe(report.output)
    assert out.rate == NTSC and isinstance(out.rate, Fraction)  # not 29.97, not 30
    assert (out.width, out.height) == (64, 48) and report.frames == out.frames == 24
    assert len(decode(report.output)) == 24
    assert timestamps(report.output) == timestamps(ntsc_clip)
    assert report.encoder == "libx264"
    with av.open(str(report.output)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_the_audio_packets_are_copied_untouched(ntsc_clip, tmp_path):
    report = colorize_video(StandIn(), ntsc_clip, tmp_path / "out.mp4", progress=False)
    source, copied = audio_packets(ntsc_clip), audio_packets(report.output)
    assert len(source) > 10 and copied == source


def test_a_clip_without_audio_gets_none_and_a_variable_frame_rate_keeps_each_timestamp(tmp_path):
    pts = np.cumsum([0, 33, 50, 33, 100, 33, 40, 33, 33, 66, 33, 33])  # milliseconds, irregular
    clip = clips.write_clip(tmp_path / "vfr.mp4", pan_frames(len(pts)), rate=30, time_base=Fraction(1, 1000),
                                   pts=pts)
    report = colorize_video(StandIn(), clip, tmp_path / "out.mp4", progress=False)
    assert timestamps(report.output) == timestamps(clip)
    assert [float(t) for t in timestamps(report.output)] == pytest.approx(pts / 1000)
    with av.open(str(report.output)) as container:
        assert not container.streams.audio


def test_memory_does_not_grow_with_the_clips_length(tmp_path):
    frames = pan_frames(8, size=(32, 48))
    clip = clips.write_clip(tmp_path / "long.mp4", (frames[t % 8] for t in range(600)), rate=NTSC, audio=True)
    seen = []
    original = video.VideoWriter.write

    def write(self, rgb, pts):
        original(self, rgb, pts)
        seen.append(tracemalloc.get_traced_memory()[0])

    tracemalloc.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(video.VideoWriter, "write", write)
            colorize_video(StandIn(), clip, tmp_path / "out.mp4", batch_size=4, progress=False)
    finally:
        tracemalloc.stop()
    assert len(seen) == 600
    # What Python holds after 100 frames and after 600: the same, to within a few frames' worth (a frame is ~5 KB).
    assert max(seen[100:]) - max(seen[50:100]) < 60_000, (max(seen[50:100]), max(seen[100:]))


# === Steady colour, cuts ===


def test_flow_carries_colour_along_the_motion_and_steadies_a_flickering_model(ntsc_clip, tmp_path):
    none = decode(colorize_video(StandIn(), ntsc_clip, tmp_path / "none.mp4", temporal="none", progress=False).output)
    flow = decode(colorize_video(StandIn(), ntsc_clip, tmp_path / "flow.mp4", progress=False).output)
    change = {name: np.abs(np.diff(chroma(frames).mean((1, 2)), axis=0)).mean()
              for name, frames in (("none", none), ("flow", flow))}
    assert change["flow"] < 0.35 * change["none"], change


def test_a_cut_is_detected_and_no_colour_is_carried_across_it(tmp_path):
    first = pan_frames(10, seed=1)
    second = [gray(255 - f) for f in pan_frames(10, seed=2)]  # another scene, other lightness
    clip = clips.write_clip(tmp_path / "cut.mp4", first + second, rate=NTSC)
    report = colorize_video(StandIn(), clip, tmp_path / "out.mp4", progress=False)
    assert report.cuts == 1
    # The stand-in's casts, frame by frame: the first frame after the cut shows its own, not a blend.
    expected = StandIn().predict_ab_many([np.zeros((2, 2, 1))] * 20)
    shown = chroma(decode(report.output)).mean((1, 2))
    assert np.abs(shown[10] - expected[10][0, 0]).max() < 2.5
    assert np.abs(shown[11] - expected[11][0, 0]).max() > 2.5  # within a shot, the colour is carried


def test_no_cut_is_found_in_a_pan_a_zoom_or_a_shake():
    photo = texture(3, 120, 160)
    for clip in (clips.pan_clip(photo, (48, 64), 12), clips.zoom_clip(photo, (48, 64), 12),
                 clips.shake_clip(photo, (48, 64), 12, amplitude=3)):
        steady = motion.SteadyColour()
        for t in range(len(clip)):
            l_input = fastlab.lightness(gray(clip.frame(t)))[..., None]
            steady.step(l_input, np.zeros((48, 64, 2), np.float32))
        assert steady.cuts == 0, clip.name


# === Hints on a keyframe ===


def moving_square_frames(count=20, size=(64, 96), side=20, speed=3, seed=4):
    background, thing = texture(seed, *size, blur=3), texture(seed + 1, side, side, blur=1)
    frames, centres = [], []
    for t in range(count):
        frame = background.copy()
        x = 4 + speed * t
        frame[22:22 + side, x:x + side] = thing
        frames.append(gray(frame))
        centres.append((x + side // 2, 22 + side // 2))
    return frames, centres


@pytest.mark.parametrize("temporal", ["flow", "none"])
def test_a_hinted_red_stays_red_on_the_moving_object_before_and_after_its_keyframe(tmp_path, temporal):
    frames, centres = moving_square_frames()
    clip = clips.write_clip(tmp_path / "square.mp4", frames, rate=NTSC)
    key = 8
    x, y = centres[key]
    report = colorize_video(StandIn(flicker=0), clip, tmp_path / "out.mp4", temporal=temporal, progress=False,
                            hints=[[x, y, "#d01010", key]])
    out = decode(report.output)
    for t, (cx, cy) in enumerate(centres):
        r, g, b = (int(v) for v in out[t][cy, cx])
        assert r > g + 60 and r > b + 60, (t, (r, g, b))  # red on the object, in every frame of the shot
    r, g, b = (int(v) for v in out[key][56, 80])  # the still background stays gray
    assert abs(r - g) < 12 and abs(r - b) < 12


def test_a_hint_stops_at_a_cut_and_when_it_leaves_the_picture():
    frames, centres = moving_square_frames(count=12)
    lights = [fastlab.lightness(f)[..., None] for f in frames]
    other = [fastlab.lightness(gray(255 - texture(9, 64, 96)))[..., None]] * 3
    reached = motion.track_hints(lights[:8] + other, motion.parse_video_hints([[*centres[2], "#ff0000", 2]]), 96, 64)
    assert sorted(reached) == list(range(8))  # frames 0-7: the shot; none after the cut
    for t in range(8):
        assert np.hypot(reached[t][0][0] - centres[t][0], reached[t][0][1] - centres[t][1]) < 3
    # A point near the right edge of a pan to the left leaves the picture.
    pan = [fastlab.lightness(f)[..., None] for f in pan_frames(20, seed=5)]
    reached = motion.track_hints(pan, motion.parse_video_hints([[3, 20, "#ff0000", 0]]), 64, 48)
    assert 0 < len(reached) < 20 and sorted(reached) == list(range(len(reached)))


def test_video_hints_take_a_frame_number_and_a_photo_hint_means_frame_0():
    assert motion.parse_video_hints([[3, 4, "#ff0000", 7], (1, 2, (0, 0, 255)), "5,6,#00ff00", "5,6,#00ff00,9"]) == [
        (7, (3.0, 4.0, (255, 0, 0))), (0, (1.0, 2.0, (0, 0, 255))), (0, (5.0, 6.0, (0, 255, 0))),
        (9, (5.0, 6.0, (0, 255, 0)))]
    for bad in ([1, 2, "#ff0000", -1], [1, 2, "#ff0000", 1.5], [1, 2, "nocolour", 0]):
        with pytest.raises(HintError, match="hint"):
            motion.parse_video_hints([bad])


# === Bad input: one line naming the file, nothing partial left ===


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_not_a_video_is_a_one_line_error_naming_it(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match=r"notes\.mp4: not a video") as info:
        colorize_video(StandIn(), bad, tmp_path / "out" / "notes.mp4", progress=False)
    assert "\n" not in str(info.value) and leftovers(tmp_path / "out") == []


def test_a_clip_with_zero_frames_is_an_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(VideoError, match=r"empty\.mp4: no video frames"):
        colorize_video(StandIn(), empty, tmp_path / "out" / "empty.mp4", progress=False)
    assert leftovers(tmp_path / "out") == []


def test_a_truncated_clip_gives_its_decodable_frames_with_a_warning(tmp_path):
    clip = clips.write_clip(tmp_path / "whole.mp4", pan_frames(30), rate=NTSC, faststart=True)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    lines = []
    report = colorize_video(StandIn(), cut, tmp_path / "out.mp4", progress=False, log=lines.append)
    assert 0 < report.frames < 30 and len(decode(report.output)) == report.frames
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "cut.mp4: truncated" in lines[0]


def test_a_hint_past_the_end_is_an_error_and_nothing_is_written(ntsc_clip, tmp_path):
    with pytest.raises(VideoError, match=r"ntsc\.mp4: a hint is on frame 24, past the end"):
        colorize_video(StandIn(), ntsc_clip, tmp_path / "out" / "x.mp4", hints=[[5, 5, "#ff0000", 24]],
                       progress=False)
    assert leftovers(tmp_path / "out") == []


def test_an_output_folder_that_cannot_be_written_is_an_error_and_leaves_nothing(ntsc_clip, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output folder should be")
    with pytest.raises(OSError, match=f"cannot write {blocked / 'out.mp4'}: "):
        colorize_video(StandIn(), ntsc_clip, blocked / "out.mp4", progress=False)
    if os.geteuid() != 0:  # root writes anywhere: only a file in the way stops it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            with pytest.raises(OSError, match="Permission denied"):
                colorize_video(StandIn(), ntsc_clip, locked / "out.mp4", progress=False)
            assert leftovers(locked) == []
        finally:
            locked.chmod(0o700)
    assert leftovers(tmp_path) == ["blocked"]


def test_a_failure_midway_leaves_no_file_and_an_existing_output_is_kept_without_overwrite(ntsc_clip, tmp_path):
    class Failing(StandIn):
        calls = 0

        def predict_ab_many(self, l_inputs, hint_maps=None):
            Failing.calls += 1
            if Failing.calls == 2:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the clip
            return super().predict_ab_many(l_inputs, hint_maps)

    with pytest.raises(KeyboardInterrupt):
        colorize_video(Failing(), ntsc_clip, tmp_path / "out.mp4", batch_size=4, progress=False)
    assert leftovers(tmp_path) == []
    (tmp_path / "out.mp4").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        colorize_video(StandIn(), ntsc_clip, tmp_path / "out.mp4", progress=False)
    assert (tmp_path / "out.mp4").read_bytes() == b"keep me"
    colorize_video(StandIn(), ntsc_clip, tmp_path / "out.mp4", overwrite=True, progress=False)
    assert len(decode(tmp_path / "out.mp4")) == 24


# === The API and the command line, with a tiny real model ===


def test_colorizer_colorize_video_writes_the_clip_with_a_real_model(tiny_model_file, ntsc_clip, tmp_path):
    from colorfusion.inference.colorizer import Colorizer

    colorizer = Colorizer.from_path(tiny_model_file(hints=True))
    report = colorizer.colorize_video(ntsc_clip, tmp_path / "out.mp4", progress=False, hints=[[10, 10, "#ff0000", 3]])
    assert report.frames == 24 and video.probe(report.output).rate == NTSC
    assert audio_packets(report.output) == audio_packets(ntsc_clip)


def test_cli_colorizes_a_folder_of_photos_and_clips_and_a_bad_clip_is_one_line_with_the_rest_done(
        tiny_model_file, ntsc_clip, tmp_path, capsys):
    from colorfusion import cli, io

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mov").write_bytes(ntsc_clip.read_bytes())  # any container FFmpeg reads; the output is MP4
    (folder / "broken.mp4").write_text("not a video")
    io.write_image(folder / "photo.png", texture(1, 40, 56))
    code = cli.main(["colorize", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file(hints=True)),
                     "--temporal", "none", "--hint", "5,5,#ff0000", "--quiet"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.mp4", "photo.png"]
    errors = capsys.readouterr().err.splitlines()
    assert errors == [f"error: {folder / 'broken.mp4'}: not a video, or damaged (Invalid data found when processing "
                      f"input)"]
    assert video.probe(tmp_path / "out" / "clip.mp4").frames == 24


def test_cli_hints_file_gives_a_clip_its_keyframe_points_and_one_past_the_end_fails_only_that_clip(
        tiny_model_file, ntsc_clip, tmp_path, capsys):
    import json

    from colorfusion import cli, io

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("good.mp4", "late.mp4"):
        (folder / name).write_bytes(ntsc_clip.read_bytes())
    io.write_image(folder / "photo.png", texture(1, 40, 56))
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"good.mp4": [[5, 5, "#ff0000", 23]], "late.mp4": [[5, 5, "#ff0000", 24]],
                                 "photo.png": [[1, 1, "#00ff00"]]}))
    code = cli.main(["colorize", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file(hints=True)),
                     "--hints", str(hints), "--quiet"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.mp4", "photo.png"]
    assert capsys.readouterr().err.splitlines() == [
        f"error: {folder / 'late.mp4'}: a hint is on frame 24, past the end of the clip (frames 0 to 23)"]


def test_the_progress_bar_counts_frames_with_their_rate_and_the_time_left(ntsc_clip, tmp_path, capsys):
    colorize_video(StandIn(), ntsc_clip, tmp_path / "out.mp4", progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    assert "ntsc.mp4" in bar and "24/24" in bar and "frame/s" in bar and "<00:00" in bar  # elapsed<left


def test_hints_for_a_model_that_takes_none_are_a_hint_error_before_anything_is_written(ntsc_clip, tmp_path):
    class NoHints(StandIn):
        takes_hints = False

    with pytest.raises(HintError, match="takes no colour hints"):
        colorize_video(NoHints(), ntsc_clip, tmp_path / "out" / "x.mp4", hints=[[1, 1, "#ff0000"]], progress=False)
    assert leftovers(tmp_path / "out") == []


def test_a_clip_with_odd_sides_keeps_its_size(tmp_path):
    frames = [gray(f[:47, :63]) for f in pan_frames(6)]
    clip = clips.write_clip(tmp_path / "odd.mp4", frames, rate=NTSC)
    report = colorize_video(StandIn(), clip, tmp_path / "out.mp4", progress=False)
    assert [f.shape for f in decode(report.output)] == [(47, 63, 3)] * 6


# === Steadiness metrics and clips with known motion ===


def test_cdc_is_zero_for_a_still_clip_grows_with_flicker_and_leaves_out_pairs_across_a_cut():
    from colorfusion import metrics

    still = np.repeat(texture(1, 24, 32)[None], 6, axis=0)
    assert metrics.cdc(still) == 0
    flicker = still.copy()
    flicker[1::2] = np.clip(flicker[1::2].astype(int) + (20, 0, -20), 0, 255).astype(np.uint8)
    assert metrics.cdc(flicker) > 0.01
    cut = np.concatenate([still[:3], np.repeat(texture(2, 24, 32)[None], 3, axis=0)])
    assert metrics.cdc(cut) > 0.01 and metrics.cdc(cut, cuts=[3]) == 0


@pytest.mark.parametrize("kind", clips.KINDS)
def test_the_true_motion_of_each_clip_warps_a_frame_onto_the_previous_one(kind):
    from colorfusion import metrics

    photos = [texture(seed, 90, 120) for seed in range(7)]
    clip = {c.name: c for c in clips.standard_clips(photos, (48, 64), frames=8)}[kind]
    for t in range(1, 8):
        map_x, map_y, valid = clip.motion(t)
        if kind == "cut" and t == 4:
            assert not valid.any()  # nothing carries across the cut
            continue
        assert valid.mean() > 0.6  # a 6-pixel shake of a 64 x 48 frame: a quarter goes out of view
        error = metrics.warping_error(clip.frame(t - 1), clip.frame(t), map_x, map_y, valid)
        assert error < (2e-3 if kind == "zoom" else 1e-6), (kind, t, error)  # the zoom resamples
