"""Read any image file into uint8 RGB, resize it, write files atomically; the cache folder.

`read_rgb` is the single entry point for pixels coming from disk. It accepts
JPEG, PNG, BMP, TIFF, WebP and GIF (first frame), applies the EXIF
orientation, and turns every PIL mode a photo can have (L, LA, P, RGBA, CMYK,
I;16, I, F, 1, ...) into uint8 RGB. Every failure raises `ImageReadError`,
whose message names the file and the reason, so a caller processing many
files can report one line and go on.

Writers (`write_image`, `atomic_write`) put the bytes in a temporary file in
the destination folder and rename it over the target only when complete: a
crash or an exception never leaves a partial file or a damaged previous one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from colorfusion.errors import ImageReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")

# PIL raises DecompressionBombError above twice its MAX_IMAGE_PIXELS
# (about 179 MP); we use the same figure as our default limit, checked from
# the header before any pixel is decoded.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

_WHITE = (255, 255, 255)


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than allowed (a decompression bomb, perhaps), refused before decoding."""


def read_rgb(path, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 RGB of shape (H, W, 3), upright.

    Args:
        path: file to read.
        max_side: if given, the longer side of the result is at most this
            many pixels (area-downscaled; JPEGs are first decoded at a reduced
            scale with PIL's draft mode, which is several times faster).
        max_pixels: refuse images with more pixels than this (decompression
            bombs), judged from the header before decoding.

    Raises:
        ImageReadError: the file is missing, empty, not an image, truncated or
            zero-sized; its subclass `ImageTooLargeError` when larger than `max_pixels`.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive integer. Received: max_side={max_side!r}")
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageReadError(path, f"zero-sized image ({width}x{height})")
                if width * height > max_pixels:
                    raise ImageTooLargeError(
                        path, f"too large: {width}x{height} = {width * height:,} pixels "
                        f"exceeds the limit of {max_pixels:,} (possible decompression bomb)"
                    )
                if max_side is not None and im.format == "JPEG" and max(width, height) > max_side:
                    scale = max_side / max(width, height)
                    im.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb = _to_rgb_array(im)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        if _png_header_size(path) == "zero":
            raise ImageReadError(path, "zero-sized image (0 pixels wide or high)") from None
        raise ImageReadError(path, "not an image (unrecognised format)") from None
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(path, f"too large (possible decompression bomb): {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = str(e) or type(e).__name__
        if "truncated" in reason.lower() or isinstance(e, EOFError):
            reason = f"truncated or damaged file ({reason})"
        raise ImageReadError(path, reason) from None
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageReadError(path, "zero-sized image")
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        rgb = resize_to_max_side(rgb, max_side)
    return rgb


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageReadError(path, f"cannot access: {e.strerror or e}") from None
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")


def _png_header_size(path: Path):
    """'zero' when the file is a PNG whose header declares a zero width or height.

    PIL refuses such files as unidentified; this tells the user the real reason.
    """
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return "zero" if width == 0 or height == 0 else (width, height)


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image of any mode to uint8 RGB."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit gray (PNG / TIFF): full 16-bit range onto 8 bits.
        gray = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
        gray8 = np.clip(gray * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray8[..., None], 3, axis=-1)
    if mode == "F":
        # Float images carry no range in the file: [0, 1] if they fit, else [0, 255].
        gray = np.nan_to_num(np.asarray(im, dtype=np.float64))
        scale = 255.0 if gray.max(initial=0) <= 1.0 else 1.0
        gray8 = np.clip(gray * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray8[..., None], 3, axis=-1)
    # L, 1, CMYK, YCbCr, LAB, HSV, RGBX, ...: PIL knows how.
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an in-memory PIL image of any mode, EXIF-upright."""
    image.load()
    return _to_rgb_array(ImageOps.exif_transpose(image))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with the package's one interpolation rule (training, inference, embeddings).

    Area averaging when shrinking below half size (it avoids aliasing, and
    only pays off there), bilinear otherwise: several times faster, as good
    down to half size, and what the random resized crop of training uses.
    """
    source_height, source_width = image.shape[:2]
    scale = min(width / source_width, height / source_height)
    interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(image, (int(width), int(height)), interpolation=interpolation)


def resize_to_max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so that the longer side is `max_side` (`resize`); smaller images are returned as they are."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    return resize(rgb, max(1, round(width * scale)), max(1, round(height * scale)))


def is_image_file(path) -> bool:
    """True when the file name has one of `IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# === Atomic writes ===


@functools.lru_cache(maxsize=1)
def _default_file_mode() -> int:
    """0o666 less the umask: what a plain open() would give (mkstemp gives 0o600).

    Reading the umask means setting it; doing it once keeps writer threads
    from racing on the process-wide value.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temporary file beside `path`; rename it over `path` on success.

    On any exception the temporary file is removed and `path` is untouched.

    Example:
        with atomic_write("out/config.json", "w") as f:
            json.dump(config, f)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path):
    """Context manager giving a temporary path beside `path` to write to.

    For writers that need a file name rather than a file object (e.g.
    `model.save`); the temporary keeps the suffix so format detection works.
    """
    return _AtomicPath(Path(path))


def atomic_leftovers(folder, names) -> list[Path]:
    """The temporary files a killed writer left in `folder` for the files called `names`.

    A writer killed outright (SIGKILL, a machine lost) between `atomic_write`'s
    (or `atomic_path`'s) temporary file and its rename leaves that file; the
    final name never holds a partial file. A job that knows which names it
    writes sweeps these when it ends (`colorfusion.distributed`).
    """
    folder, names = Path(folder), set(names)
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None:
            continue
        # atomic_write's: ".NAME.XXXXXXXX.tmp"; atomic_path's: ".STEM.XXXXXXXX.SUFFIX"
        name, suffix = match.group("name"), match.group("suffix") or ""
        if (suffix == ".tmp" and name in names) or name + suffix in names:
            found.append(Path(entry.path))
    return found


# mkstemp's names: the prefix, 8 characters of its alphabet, the suffix.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]+)?")


class _AtomicPath:
    def __init__(self, path: Path):
        self.path = path
        self.tmp = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=self.path.suffix)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.tmp.exists() and self.tmp.stat().st_size > 0:
            os.chmod(self.tmp, _default_file_mode())
            os.replace(self.tmp, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
            if exc_type is None:
                raise OSError(f"{self.path}: nothing was written")
        return False


_PIL_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".gif": "GIF",
}


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, hex (read in 1 MB blocks): the shipped model's card, provenance marks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_format(path) -> str:
    """The format `write_image` writes for a file name: PIL's name of it ("JPEG", "PNG", ...), from the suffix.

    Raises:
        ValueError: a suffix `write_image` does not write.
    """
    fmt = _PIL_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Unsupported image suffix; use one of {sorted(_PIL_FORMATS)}. Received: path={str(path)!r}"
        )
    return fmt


def image_mime_type(path) -> str:
    """The media type of the file `write_image` writes for a file name ("image/jpeg", ...): from `image_format`."""
    Image.init()  # PIL fills its table of media types as its format plugins load
    return Image.MIME[image_format(path)]


def output_suffix(path) -> str:
    """The suffix of the colorized file written for the photo `path` (`colorize`, the studio's download).

    The photo's own, except GIF (its palette of 256 colours would throw the
    colorization away) and a suffix `write_image` cannot write: those become ".png".
    """
    suffix = Path(path).suffix
    return ".png" if suffix.lower() == ".gif" or suffix.lower() not in _PIL_FORMATS else suffix


def write_image(path, rgb: np.ndarray, quality: int = 95, options: dict | None = None) -> Path:
    """Write uint8 RGB (or gray) to `path` atomically; the format follows the suffix (`image_format`).

    Args:
        options: more PIL save options: the metadata of `provenance.save_options`.

    Returns:
        The path written.
    """
    path = Path(path)
    fmt = image_format(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError(f"write_image expects uint8 pixels. Received: dtype={rgb.dtype}")
    image = Image.fromarray(rgb)
    options = {**({"quality": quality} if fmt in ("JPEG", "WEBP") else {}), **(options or {})}
    with atomic_write(path, "wb") as f:
        image.save(f, format=fmt, **options)
    return path


# === The cache folder ===


def cache_root() -> Path:
    """Where colorfusion keeps what it can recompute (embeddings, sample photos).

    $COLORFUSION_CACHE, else $XDG_CACHE_HOME/colorfusion, else ~/.cache/colorfusion.
    """
    if os.environ.get("COLORFUSION_CACHE"):
        return Path(os.environ["COLORFUSION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "colorfusion"
