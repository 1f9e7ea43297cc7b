import io as pyio
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from colorfusion import io
from colorfusion.io import ImageReadError


def gradient_rgb(height=24, width=32):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 128)], -1).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".tif", ".webp", ".gif"])
def test_read_rgb_reads_every_supported_format(tmp_path, suffix):
    rgb = gradient_rgb()
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path)
    out = io.read_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    lossy = suffix in (".jpg", ".webp", ".gif")  # gif quantises to a palette
    assert np.abs(out.astype(int) - rgb).mean() < (12 if lossy else 0.01)


def test_read_rgb_upper_case_suffix(tmp_path):
    path = tmp_path / "PHOTO.JPEG"
    Image.fromarray(gradient_rgb()).save(path, format="JPEG")
    assert io.read_rgb(path).shape == (24, 32, 3)
    assert io.is_image_file(path) and not io.is_image_file(tmp_path / "notes.txt")


def test_gif_first_frame_is_read(tmp_path):
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    blue = Image.new("RGB", (8, 8), (0, 0, 255))
    path = tmp_path / "anim.gif"
    red.save(path, save_all=True, append_images=[blue])
    out = io.read_rgb(path)
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def test_exif_rotated_jpeg_comes_back_upright(tmp_path):
    # Upright image: top half white, bottom half black; stored rotated 90 degrees
    # with EXIF orientation 6 ("rotate 90 CW to display").
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:20] = 255
    stored = np.rot90(upright, k=1)  # what a camera writes before tagging orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif.tobytes(), quality=95)
    out = io.read_rgb(path)
    assert out.shape == (40, 20, 3)
    assert out[:15].mean() > 230 and out[25:].mean() < 25


def test_grayscale_l_mode(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    out = io.read_rgb(path)
    assert out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out[..., 0], np.arange(64).reshape(8, 8))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_la_mode_composites_on_white(tmp_path):
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 0] = 0
    la[..., 1] = 0  # fully transparent black -> white
    la[0, 0, 1] = 255  # one opaque black pixel
    path = tmp_path / "la.png"
    Image.fromarray(la).save(path)
    out = io.read_rgb(path)
    assert tuple(out[1, 1]) == (255, 255, 255) and tuple(out[0, 0]) == (0, 0, 0)


def test_rgba_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[..., 3] = 128  # half transparent
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    out = io.read_rgb(path)
    # red over white at alpha 0.5: R stays 255, G and B become about 127
    assert out[0, 0, 0] == 255 and 120 < out[0, 0, 1] < 135 and out[0, 0, 1] == out[0, 0, 2]


def test_palette_mode(tmp_path):
    path = tmp_path / "palette.png"
    Image.fromarray(gradient_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)
    out = io.read_rgb(path)
    assert out.shape == (24, 32, 3) and np.abs(out.astype(int) - gradient_rgb()).mean() < 20


def test_palette_with_transparency_composites_on_white(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 1)
    path = tmp_path / "ptrans.png"
    im.save(path, transparency=0)
    out = io.read_rgb(path)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[2, 2]) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(gradient_rgb()).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    out = io.read_rgb(path)
    assert out.shape == (24, 32, 3) and np.abs(out.astype(int) - gradient_rgb()).mean() < 12


def test_16_bit_png_uses_full_range(tmp_path):
    gray16 = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    path = tmp_path / "gray16.png"
    Image.fromarray(gray16).save(path)
    assert Image.open(path).mode.startswith("I")
    out = io.read_rgb(path)
    assert out.dtype == np.uint8 and out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    np.testing.assert_allclose(out[..., 0], gray16 / 257.0, atol=1)


def test_float_tiff_in_unit_range(tmp_path):
    gray = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    path = tmp_path / "float.tif"
    Image.fromarray(gray).save(path)
    out = io.read_rgb(path)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_bilevel_mode(tmp_path):
    path = tmp_path / "bw.png"
    Image.fromarray(np.eye(8, dtype=bool)).save(path)
    out = io.read_rgb(path)
    assert out[0, 0, 0] == 255 and out[0, 1, 0] == 0


def test_max_side_downscales_and_keeps_aspect(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((1000, 1600, 3), 90, np.uint8)).save(path)
    out = io.read_rgb(path, max_side=200)
    assert out.shape == (125, 200, 3)
    assert abs(int(out.mean()) - 90) <= 2
    small = io.read_rgb(path, max_side=5000)
    assert small.shape == (1000, 1600, 3)


def test_max_side_draft_matches_full_decode(tmp_path):
    rgb = np.kron(gradient_rgb(30, 40), np.ones((20, 20, 1), np.uint8))  # 600 x 800
    path = tmp_path / "smooth.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    fast = io.read_rgb(path, max_side=200).astype(int)
    exact = io.resize_to_max_side(io.read_rgb(path), 200).astype(int)
    assert fast.shape == exact.shape == (150, 200, 3)
    assert np.abs(fast - exact).mean() < 3


def test_invalid_max_side_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="max_side"):
        io.read_rgb(tmp_path / "x.jpg", max_side=0)


# === Bad files: one ImageReadError each, naming the file and the reason ===


def assert_read_error(path, reason_fragment):
    with pytest.raises(ImageReadError) as info:
        io.read_rgb(path)
    message = str(info.value)
    assert str(path) in message
    assert reason_fragment in message.lower()
    assert "\n" not in message
    return info.value


def test_missing_file(tmp_path):
    assert_read_error(tmp_path / "nope.jpg", "no such file")


def test_folder_instead_of_file(tmp_path):
    assert_read_error(tmp_path, "folder")


def test_zero_byte_png(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert_read_error(path, "empty")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n")
    assert_read_error(path, "not an image")


def test_truncated_jpeg(tmp_path):
    buffer = pyio.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert_read_error(path, "truncated")


def test_truncated_png(tmp_path):
    buffer = pyio.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
    path = tmp_path / "truncated.png"
    path.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(ImageReadError) as info:
        io.read_rgb(path)
    assert str(path) in str(info.value)


def _png_header_only(width, height):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(100_000, 100_000))  # 10 G pixels claimed, a few bytes on disk
    assert_read_error(path, "too large")


def test_custom_pixel_limit(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(gradient_rgb()).save(path)
    with pytest.raises(ImageReadError, match="too large"):
        io.read_rgb(path, max_pixels=100)


def test_zero_sized_image(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(_png_header_only(0, 10))
    assert_read_error(path, "zero-sized")


# === Atomic writes ===


def test_write_image_round_trip_png(tmp_path):
    rgb = gradient_rgb()
    path = io.write_image(tmp_path / "sub" / "out.png", rgb)
    np.testing.assert_array_equal(io.read_rgb(path), rgb)
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]


def test_write_image_rejects_unknown_suffix_and_dtype(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        io.write_image(tmp_path / "out.xyz", gradient_rgb())
    with pytest.raises(ValueError, match="uint8"):
        io.write_image(tmp_path / "out.png", gradient_rgb().astype(np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_colorized_photo_keeps_its_format_but_a_gif_or_an_unwritable_suffix_becomes_png():
    names = ("a.jpg", "b.JPEG", "c.tif", "d.webp", "e.gif", "f.GIF", "g.heic", "h")
    assert [io.output_suffix(name) for name in names] == [".jpg", ".JPEG", ".tif", ".webp", ".png", ".png", ".png",
                                                          ".png"]
    assert [io.image_format(name) for name in names[:6]] == ["JPEG", "JPEG", "TIFF", "WEBP", "GIF", "GIF"]
    assert io.image_mime_type("x.JPG") == "image/jpeg" and io.image_mime_type("x.tiff") == "image/tiff"
    with pytest.raises(ValueError, match="Unsupported image suffix"):
        io.image_format("g.heic")


def test_failed_write_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    io.write_image(path, gradient_rgb())
    before = path.read_bytes()

    def failing_save(self, fp, format=None, **kwargs):
        fp.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        io.write_image(path, np.zeros((4, 4, 3), np.uint8))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_failed_write_leaves_no_partial_new_file(tmp_path):
    target = tmp_path / "new.json"
    with pytest.raises(RuntimeError):
        with io.atomic_write(target, "w") as f:
            f.write('{"half": ')
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "model.bin"
    with io.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin" and tmp != target
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights"
    with pytest.raises(KeyError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyError("boom")
    assert target.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_atomic_writes_get_the_usual_file_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    expected = 0o666 & ~umask
    written = io.write_image(tmp_path / "out.png", gradient_rgb())
    with io.atomic_path(tmp_path / "model.bin") as tmp:
        tmp.write_bytes(b"weights")
    for path in (written, tmp_path / "model.bin"):
        assert path.stat().st_mode & 0o777 == expected


# === The one resize rule ===


def test_resize_averages_areas_below_half_size_and_is_bilinear_otherwise():
    import cv2

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cases = [((29, 19), cv2.INTER_AREA), ((31, 21), cv2.INTER_LINEAR), ((90, 60), cv2.INTER_LINEAR)]
    for (width, height), flag in cases:
        out = io.resize(image, width, height)
        assert out.shape == (height, width, 3)
        np.testing.assert_array_equal(out, cv2.resize(image, (width, height), interpolation=flag))
    # The rule decides on the stronger of the two scales: a squash to a square shrinks a wide photo by 1/3.
    np.testing.assert_array_equal(io.resize(image, 20, 20), cv2.resize(image, (20, 20), interpolation=cv2.INTER_AREA))


def test_atomic_leftovers_finds_a_killed_writers_temporary_files_of_the_named_files_only(tmp_path):
    import tempfile
    from pathlib import Path

    from colorfusion.io import atomic_leftovers

    # What atomic_write and atomic_path create, left behind as a writer killed mid-write leaves them.
    written = tempfile.mkstemp(dir=tmp_path, prefix=".photo.png.", suffix=".tmp")[1]
    path_style = tempfile.mkstemp(dir=tmp_path, prefix=".model.", suffix=".keras")[1]
    other = tempfile.mkstemp(dir=tmp_path, prefix=".notes.txt.", suffix=".tmp")[1]
    for name in ("photo.png", ".hidden.png", ".photo.png.backup.tmp"):
        (tmp_path / name).write_bytes(b"mine")
    found = atomic_leftovers(tmp_path, ["photo.png", "model.keras"])
    assert sorted(found) == sorted(map(Path, [written, path_style]))
    assert Path(other).exists() and atomic_leftovers(tmp_path / "missing", ["photo.png"]) == []
