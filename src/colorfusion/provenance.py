"""Files that say they were colorized: the mark every photo and clip colorfusion writes, and the input's own metadata.

The mark (`Mark`): "colorized by colorfusion VERSION", the sha256 of the
model (`model_sha256`), the number of colour hints, and IPTC's digital
source type for media edited by a trained model
(`compositeWithTrainedAlgorithmicMedia`), in the fields tools read:

- PNG: text chunks `Software`, `Description`, `colorfusion:model-sha256`,
  `colorfusion:hints`, and the XMP packet (an iTXt `XML:com.adobe.xmp`);
- JPEG, WebP: EXIF `Software` and `ImageDescription`, and XMP (APP1 / the XMP chunk);
- TIFF: the same tags (TIFF's own), and XMP in tag 700;
- BMP: nothing (the format holds no metadata);
- MP4 (`clip_tags`): container tags `comment`, `description`, `encoded_by` and
  `colorfusion_*` keys (written with `movflags=use_metadata_tags`).

The input's own metadata is kept (`Source`, read from the input file): its
EXIF (date, camera, ...) with Orientation set to 1, since the pixels written
are already upright (`io.read_rgb` turned them), and its ICC profile when it
is an RGB one (a gray profile cannot describe colour pixels). `mark=None`
(`provenance=False`, `--no-provenance`) leaves the mark out and still keeps
the input's metadata.

One owner: the folder job (`inference.batch`), the studio's download and the
video writer all call `save_options` / `clip_tags` here; `io.write_image`
takes the options.

    mark = Mark.of(colorizer, hints=2)
    io.write_image("out/car.jpg", rgb, options=save_options("out/car.jpg", mark, Source.of("car.jpg")))
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, PngImagePlugin

from colorfusion import io

SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
IN_MEMORY = "in-memory"  # what `model_sha256` hashes for a model that came from no file: its weights
SOFTWARE = 0x0131  # EXIF tags (IFD0)
DESCRIPTION = 0x010E
ORIENTATION = 0x0112
XMP_TAG = 700  # TIFF's XMP tag
EXIF_POINTERS = (0x8769, 0x8825, 0xA005)  # EXIF's sub-IFDs (Exif, GPS, interoperability): not in a TIFF
UPRIGHT = 1
PNG_KEYS = {"model": "colorfusion:model-sha256", "hints": "colorfusion:hints"}


@dataclass(frozen=True)
class Mark:
    """What a written file says about itself: the version, the model's sha256 and the number of hints.

    `model` is "sha256:HEX" of the model file (the shipped model's
    `presets.file_sha256`, a `.keras` file's, a run folder's checkpoint's, an
    exported file's), or "weights-sha256:HEX" for a model held in memory
    only (the sha256 of its weights, in order, as float32).
    """

    version: str
    model: str
    hints: int = 0

    @classmethod
    def of(cls, colorizer, hints: int = 0) -> Mark:
        from colorfusion import __version__

        return cls(__version__, model_sha256(colorizer), int(hints))

    @property
    def software(self) -> str:
        return f"colorized by colorfusion {self.version}"

    @property
    def description(self) -> str:
        return f"{self.software}; model {self.model}; {self.hints} colour hint{'' if self.hints == 1 else 's'}"

    def with_hints(self, hints: int) -> Mark:
        return Mark(self.version, self.model, int(hints))

    def xmp(self) -> bytes:
        """An XMP packet: IPTC's digital source type, the tool, and the description."""
        return (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:colorfusion="https://github.com/colorfusion/ns/1.0/" '
            f'Iptc4xmpExt:DigitalSourceType="{SOURCE_TYPE}" xmp:CreatorTool="{escape(self.software)}" '
            f'colorfusion:model="{escape(self.model)}" colorfusion:hints="{self.hints}">'
            f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(self.description)}</rdf:li></rdf:Alt>'
            '</dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
        ).encode()


# === The model's sha256 ===


def model_sha256(colorizer) -> str:
    """"sha256:HEX" of the file the colorizer's model came from; "weights-sha256:HEX" for one held in memory.

    The file is `colorizer.model_file` (set by `Colorizer.from_path`) or an
    exported file's own; hashed once per file version (path, size, time).
    """
    path = getattr(colorizer, "model_file", None) or getattr(getattr(colorizer, "runner", None), "path", None)
    if path is not None:
        stat = os.stat(path)
        return f"sha256:{_file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)}"
    model = getattr(colorizer, "model", None)
    if model is None:
        return f"{IN_MEMORY}:unknown"
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight, np.float32).tobytes())
    return f"weights-sha256:{digest.hexdigest()}"


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    # io's digest, not presets': presets imports Keras, and a cluster worker running an exported file never
    # starts TensorFlow (tests/test_distributed.py). Size and time in the key: a rewritten file is hashed again.
    return io.file_sha256(path)


# === The input's own metadata ===


@dataclass(frozen=True)
class Source:
    """The input's metadata to keep: its EXIF (Orientation set to 1) and an RGB ICC profile."""

    exif: Image.Exif | None = None
    icc_profile: bytes | None = None

    @classmethod
    def of(cls, path) -> Source:
        """Read from an image file; an unreadable one (or none) gives nothing to keep."""
        if path is None:
            return cls()
        try:
            with Image.open(path) as image:
                exif = image.getexif()
                icc = image.info.get("icc_profile")
        except (OSError, ValueError, SyntaxError):  # the colorizing step says what is wrong with the file
            return cls()
        if exif and ORIENTATION in exif:
            exif[ORIENTATION] = UPRIGHT  # the pixels written are upright already
        rgb_profile = isinstance(icc, bytes) and len(icc) >= 20 and icc[16:20] == b"RGB "
        return cls(exif if exif else None, icc if rgb_profile else None)


# === Writing ===


def save_options(path, mark: Mark | None, source: Source | None = None) -> dict:
    """PIL save options for `io.write_image(path, ...)`: the mark (None: none) and the input's metadata."""
    fmt = io.image_format(path)
    source = source or Source()
    options = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and source.icc_profile:
        options["icc_profile"] = source.icc_profile
    if fmt == "PNG":
        if mark is not None:
            info = PngImagePlugin.PngInfo()
            info.add_text("Software", mark.software)
            info.add_text("Description", mark.description)
            info.add_text(PNG_KEYS["model"], mark.model)
            info.add_text(PNG_KEYS["hints"], str(mark.hints))
            info.add_itxt("XML:com.adobe.xmp", mark.xmp().decode("utf-8"))
            options["pnginfo"] = info
        exif = _exif(source, mark)
        if exif is not None:
            options["exif"] = exif
    elif fmt in ("JPEG", "WEBP"):
        exif = _exif(source, mark)
        if exif is not None:
            options["exif"] = exif
        if mark is not None:
            options["xmp"] = mark.xmp()
    elif fmt == "TIFF":  # PIL writes TIFF's own tags (IFD0) and the XMP tag, not EXIF's sub-IFDs (their dates)
        exif = _exif(source, mark)
        tags = {tag: value for tag, value in (exif or {}).items() if tag not in EXIF_POINTERS}
        if mark is not None:
            tags[XMP_TAG] = mark.xmp()
        if tags:
            options["tiffinfo"] = tags
    return options


def _exif(source: Source, mark: Mark | None) -> Image.Exif | None:
    exif = Image.Exif()
    if source.exif is not None:
        exif.load(source.exif.tobytes())
    if mark is not None:
        exif[SOFTWARE] = mark.software
        exif[DESCRIPTION] = mark.description
    return exif if len(exif) else None


def write_image(path, rgb, mark: Mark | None, source: Source | None = None, quality: int = 95) -> Path:
    """`io.write_image` with the mark and the input's metadata (`save_options`): atomically."""
    return io.write_image(path, rgb, quality=quality, options=save_options(path, mark, source))


def clip_tags(mark: Mark | None, source_tags: dict | None = None) -> dict:
    """An MP4's container tags: the source clip's own (its dates, place; not the muxer's), and the mark."""
    muxer = {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "vendor_id"}
    tags = {key: value for key, value in (source_tags or {}).items() if key.lower() not in muxer}
    if mark is not None:
        tags.update({"comment": mark.description, "description": mark.description, "encoded_by": mark.software,
                     "colorfusion_model": mark.model, "colorfusion_hints": str(mark.hints),
                     "digital_source_type": SOURCE_TYPE})
    return tags
