"""Files that say they were colorized: each field read back (PIL for photos, PyAV for clips), input metadata kept."""

import hashlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from colorfusion import __version__, cli, io, provenance
from colorfusion.provenance import SOURCE_TYPE, Mark, Source

CAMERA = {0x010F: "Kodak", 0x0110: "Brownie Hawkeye"}  # EXIF Make, Model
TAKEN = "1952:07:04 10:30:00"  # EXIF DateTimeOriginal (in the Exif sub-IFD)
MARK = Mark("9.9.9", "sha256:" + "ab" * 32, 2)


def old_photo(path, rotated=True, profile="sRGB"):
    """A B&W JPEG as a scanner or camera writes it: camera, date, Orientation 6 (turned), an ICC profile."""
    gray = np.tile(np.linspace(30, 220, 48, dtype=np.uint8), (32, 1))
    exif = Image.Exif()
    exif.update(CAMERA)
    exif[provenance.ORIENTATION] = 6 if rotated else 1
    exif.get_ifd(0x8769)[0x9003] = TAKEN
    options = {"exif": exif}
    if profile:
        options["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile(profile)).tobytes()
    Image.fromarray(gray).convert("RGB" if profile == "sRGB" else "L").save(path, **options)
    return path


def xmp_of(image) -> bytes:
    """The raw XMP packet of an opened file, in each format's own place."""
    for key in ("xmp", "XML:com.adobe.xmp"):
        if image.info.get(key):
            value = image.info[key]
            return value.encode() if isinstance(value, str) else value
    return bytes(image.tag_v2.get(provenance.XMP_TAG, b"")) if hasattr(image, "tag_v2") else b""


def written(tmp_path, suffix, mark=MARK, source=None):
    rgb = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    return provenance.write_image(tmp_path / f"out{suffix}", rgb, mark, source)


# === The mark, format by format ===


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".tif"])
def test_exif_and_xmp_carry_the_mark(tmp_path, suffix):
    with Image.open(written(tmp_path, suffix)) as image:
        exif = image.getexif()
        assert exif[provenance.SOFTWARE] == "colorized by colorfusion 9.9.9"
        assert exif[provenance.DESCRIPTION] == f"colorized by colorfusion 9.9.9; model {MARK.model}; 2 colour hints"
        xmp = xmp_of(image).decode()
    assert f'Iptc4xmpExt:DigitalSourceType="{SOURCE_TYPE}"' in xmp
    assert MARK.model in xmp and 'colorfusion:hints="2"' in xmp


def test_png_text_chunks_and_xmp_carry_the_mark(tmp_path):
    with Image.open(written(tmp_path, ".png")) as image:
        text = image.text
        xmp = xmp_of(image).decode()
    assert text["Software"] == "colorized by colorfusion 9.9.9"
    assert text["Description"] == MARK.description
    assert text["colorfusion:model-sha256"] == MARK.model and text["colorfusion:hints"] == "2"
    assert SOURCE_TYPE in xmp


def test_no_mark_writes_no_mark(tmp_path):
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        with Image.open(written(tmp_path, suffix, mark=None)) as image:
            assert provenance.SOFTWARE not in image.getexif() and not xmp_of(image)
            assert "Software" not in getattr(image, "text", {})


# === The input's own metadata ===


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("mark", [MARK, None])
def test_the_inputs_camera_date_and_profile_are_kept_and_it_is_upright(tmp_path, suffix, mark):
    source = Source.of(old_photo(tmp_path / "scan.jpg"))
    with Image.open(written(tmp_path, suffix, mark, source)) as image:
        exif = image.getexif()
        assert {tag: exif.get(tag) for tag in CAMERA} == CAMERA
        assert exif.get_ifd(0x8769).get(0x9003) == TAKEN
        assert exif[provenance.ORIENTATION] == 1  # the pixels are upright: a viewer must not turn them again
        assert image.info.get("icc_profile") == source.icc_profile and source.icc_profile
        assert (exif.get(provenance.SOFTWARE) is not None) == (mark is not None)


def test_a_tiff_keeps_the_camera_but_not_the_exif_date(tmp_path):
    source = Source.of(old_photo(tmp_path / "scan.jpg"))
    with Image.open(written(tmp_path, ".tif", MARK, source)) as image:
        exif = image.getexif()
        assert {tag: exif.get(tag) for tag in CAMERA} == CAMERA and exif[provenance.ORIENTATION] == 1


def test_a_gray_icc_profile_is_not_put_on_colour_pixels(tmp_path):
    assert Source.of(old_photo(tmp_path / "scan.jpg", profile=None)).icc_profile is None
    gray = Image.new("L", (8, 8))
    gray.save(tmp_path / "gray.png", icc_profile=b"\0" * 16 + b"GRAY" + b"\0" * 108)
    assert Source.of(tmp_path / "gray.png").icc_profile is None


def test_an_unreadable_input_gives_nothing_to_keep(tmp_path):
    (tmp_path / "notes.jpg").write_bytes(b"not a photo")
    assert Source.of(tmp_path / "notes.jpg") == Source() and Source.of(tmp_path / "missing.jpg") == Source()


# === The model's sha256 ===


def test_the_shipped_model_a_file_and_a_model_in_memory_each_have_their_sha256(tiny_model, tiny_model_file):
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.presets import file_sha256

    assert provenance.model_sha256(Colorizer.pretrained()) == f"sha256:{file_sha256()}"
    path = tiny_model_file()
    from_file = Colorizer.from_path(path)
    assert provenance.model_sha256(from_file) == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    assert provenance.model_sha256(from_file.with_size(64)) == provenance.model_sha256(from_file)
    model = tiny_model(seed=3)
    in_memory = provenance.model_sha256(Colorizer(model))
    assert in_memory.startswith("weights-sha256:")
    model.set_weights([w + 1 for w in model.get_weights()])
    assert provenance.model_sha256(Colorizer(model)) != in_memory


# === Through the command line, and the studio's download ===


@pytest.mark.parametrize("no_provenance", [False, True])
def test_colorize_marks_each_file_and_keeps_the_inputs_metadata(tiny_model_file, tmp_path, capsys, no_provenance):
    scan = old_photo(tmp_path / "scan.jpg")
    args = ["colorize", str(scan), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file("regression", True)),
            "--hint", "3,4,#c0392b", "--quiet"] + (["--no-provenance"] if no_provenance else [])
    assert cli.main(args) == 0, capsys.readouterr().err
    with Image.open(tmp_path / "out" / "scan.jpg") as image:
        exif = image.getexif()
        assert image.size == (32, 48)  # turned upright from 48 x 32
        assert exif[provenance.ORIENTATION] == 1 and exif[0x010F] == "Kodak"
        assert exif.get_ifd(0x8769).get(0x9003) == TAKEN and image.info.get("icc_profile")
        if no_provenance:
            assert provenance.SOFTWARE not in exif and not xmp_of(image)
        else:
            sha = hashlib.sha256(tiny_model_file("regression", True).read_bytes()).hexdigest()
            assert exif[provenance.SOFTWARE] == f"colorized by colorfusion {__version__}"
            assert exif[provenance.DESCRIPTION] == (f"colorized by colorfusion {__version__}; model sha256:{sha}; "
                                                    "1 colour hint")
            assert SOURCE_TYPE in xmp_of(image).decode()


def test_the_studios_download_is_marked_with_its_hints(tiny_model, tmp_path):
    pytest.importorskip("starlette")
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.studio.state import Studio

    studio = Studio(Colorizer(tiny_model("classification", hints=True, seed=2)))
    try:
        photo = studio.open_photo(old_photo(tmp_path / "scan.jpg"), "scan.jpg")
        (tmp_path / "download.jpg").write_bytes(studio.download(photo, [[3, 4, "#c0392b"], [10, 20, "#2980b9"]]))
    finally:
        studio.close()
    with Image.open(tmp_path / "download.jpg") as image:
        exif = image.getexif()
        assert exif[provenance.DESCRIPTION].endswith("; 2 colour hints")
        assert exif[provenance.DESCRIPTION].split("; ")[1].startswith("model weights-sha256:")
        assert exif[0x010F] == "Kodak" and exif[provenance.ORIENTATION] == 1


# === Clips ===


def test_a_clip_is_tagged_and_keeps_its_own_tags(tmp_path):
    av = pytest.importorskip("av")
    from colorfusion.inference.video import colorize_video
    from colorfusion.testing import clips

    frames = [np.full((32, 48, 3), 40 + 8 * t, np.uint8) for t in range(6)]
    source = clips.write_clip(tmp_path / "film.mp4", frames)
    with av.open(str(source)) as container:  # write_clip sets no tags of its own
        assert "comment" not in container.metadata
    tagged = tmp_path / "tagged.mp4"
    with av.open(str(source)) as src, av.open(str(tagged), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update({"creation_time": "1961-05-01T12:00:00.000000Z", "location": "+48.85+002.35/"})
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)

    class Gray:  # a stand-in colorizer: a model in memory it is not; its sha256 says so
        takes_hints = True

        def read_lightness(self, image, full=True):
            from colorfusion import fastlab

            l_full = fastlab.lightness(fastlab.as_pixels(image))
            return l_full, l_full[..., None]

        def predict_ab_many(self, l_inputs, hint_maps=None):
            return [np.zeros(l.shape[:2] + (2,), np.float32) for l in l_inputs]

        def join_full_resolution(self, l_full, ab):
            from colorfusion import fastlab

            return fastlab.lab_to_rgb_uint8(l_full, ab)

    for mark in (True, False):
        out = colorize_video(Gray(), tagged, tmp_path / f"out_{mark}.mp4", temporal="none", progress=False,
                             provenance=mark).output
        with av.open(str(out)) as container:
            tags = dict(container.metadata)
        assert tags["creation_time"].startswith("1961-05-01") and tags["location"].startswith("+48.85")
        if mark:
            assert tags["comment"] == tags["description"] == (f"colorized by colorfusion {__version__}; "
                                                              "model in-memory:unknown; 0 colour hints")
            assert tags["encoded_by"] == f"colorized by colorfusion {__version__}"
            assert tags["digital_source_type"] == SOURCE_TYPE and tags["colorfusion_hints"] == "0"
        else:
            assert not any(key.startswith("colorfusion") or key == "comment" for key in tags)


def test_write_image_passes_its_options_to_pil(tmp_path):
    path = io.write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8), options=provenance.save_options(
        tmp_path / "a.png", MARK))
    with Image.open(path) as image:
        assert image.text["colorfusion:hints"] == "2"
