"""What the studio holds: its photos, each one's hint session, the bounded cache, the model's queue.

`Studio` is the state of one running studio, with no HTTP in it: `routes`
turns requests into its calls and `serving` puts it on a socket. Everything
the model computes runs on one worker thread, at most `max_waiting` requests
waiting for it (then `StudioError` 503, busy). Photos are held in a cache
bounded in count and bytes; a folder's photos are read only by the names it
listed (no path from a request is ever opened); uploads go to the studio's
own temporary folder, removed by `close()`.

    studio = Studio(Colorizer.pretrained(), "photos/")
    photo = studio.open_photo(studio.folder.path("a.jpg"), "a.jpg", from_folder=True)
    jpeg = encode(photo.session.result([(40, 30, "#c0392b")]))
    studio.close()
"""

from __future__ import annotations

import asyncio
import base64
import io as bytes_io
import os
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from colorfusion import color, io
from colorfusion.errors import HintError, ImageReadError
from colorfusion.hints import match_hints, parse_hint
from colorfusion.inference.reference import Reference
from colorfusion.inference.suggest import DISPLAY_SIDE, HintSession, hint_network
from colorfusion.io import ImageTooLargeError
from colorfusion.provenance import Mark, Source, write_image
from colorfusion.studio import CACHE_PHOTOS, MAX_MEGAPIXELS, MAX_UPLOAD_MB, MAX_WAITING

CACHE_BYTES = 1 << 30  # about 1 GB of photos held at once (a 12 MP photo holds about 60 MB)
MAX_FOLDER_PHOTOS = 10_000  # photos listed from a folder
THUMB_SIDE = 160
THUMBS_KEPT = 512  # thumbnails held (the page asks again as the list scrolls)
PREVIEW_QUALITY = 90  # JPEG quality of the display-size images (the download is the CLI's own file)
UNSURE_SHADE = (24, 24, 40)  # the shading of unsure regions (dark, a little blue) ...
UNSURE_BELOW = 0.8  # ... from a confidence below this (sure above) ...
UNSURE_OPACITY = 0.75  # ... to this opacity at confidence 0
RETRY_AFTER_S = 1  # a busy studio's answer: a click takes about a tenth of a second, a full queue about one


class StudioError(Exception):
    """A request the studio answers with an error on purpose (never a bug): its status, one line, any headers."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def user_error_status(error: Exception) -> int:
    """The HTTP status of a user's error: 413 a file too large, 415 another unreadable file, else 400."""
    if isinstance(error, ImageTooLargeError):
        return 413
    return 415 if isinstance(error, ImageReadError) else 400


def unreadable(name: str, error: ImageReadError) -> StudioError:
    """The answer for a photo that could not be read, named as the user knows it (not a temporary file)."""
    return StudioError(user_error_status(error), f"{name}: {error.reason}")


def encode(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    """An image the page shows (not the download, which is `io.write_image`'s file): JPEG, or PNG for alpha."""
    buffer = bytes_io.BytesIO()
    options = {"quality": PREVIEW_QUALITY} if fmt == "JPEG" else {"compress_level": 1}
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def download_name(name: str) -> str:
    """The file the page downloads for photo `name`: its stem + "_colorized", with the suffix `colorize` writes."""
    path = PurePosixPath(name)
    return f"{path.stem}_colorized{io.output_suffix(path)}"


# === The photos ===


@dataclass
class Photo:
    id: str
    name: str  # the file name (upload) or the path inside the folder: the hints file's key
    session: HintSession
    from_folder: bool = False
    source: Source | None = None  # the file's own metadata, kept in the download

    def record(self) -> dict:
        s = self.session
        height, width = s.l_display.shape
        return {"id": self.id, "name": self.name, "width": s.width, "height": s.height,
                "display_width": width, "display_height": height, "is_colour": s.is_colour,
                "gray": f"/api/photos/{self.id}/gray.jpg", "original": f"/api/photos/{self.id}/original.jpg"}


class PhotoCache:
    """Photos being fixed, the least recently used dropped first: at most `max_photos` and about `max_bytes`.

    The newest photo always stays, whatever its size.
    """

    def __init__(self, max_photos: int = CACHE_PHOTOS, max_bytes: int = CACHE_BYTES):
        if max_photos < 1:
            raise ValueError(f"max_photos must be at least 1. Received: max_photos={max_photos!r}")
        self.max_photos = max_photos
        self.max_bytes = max_bytes
        self._photos: OrderedDict[str, Photo] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, photo: Photo) -> None:
        with self._lock:
            self._photos[photo.id] = photo
            while len(self._photos) > 1 and (len(self._photos) > self.max_photos or self.nbytes > self.max_bytes):
                self._photos.popitem(last=False)

    def get(self, photo_id: str) -> Photo:
        with self._lock:
            photo = self._photos.get(photo_id)
            if photo is None:
                raise StudioError(404, "this photo is no longer open (the studio keeps the latest "
                                       f"{self.max_photos}); open it again")
            self._photos.move_to_end(photo_id)
            return photo

    def find_folder_photo(self, name: str) -> Photo | None:
        """The open photo of the folder named `name`, if it is still held."""
        with self._lock:
            for photo in self._photos.values():
                if photo.from_folder and photo.name == name:
                    self._photos.move_to_end(photo.id)
                    return photo
        return None

    def __len__(self) -> int:
        return len(self._photos)

    @property
    def nbytes(self) -> int:
        return sum(photo.session.nbytes for photo in list(self._photos.values()))


class PhotoFolder:
    """The photos of one folder (or one photo given alone): the only files the studio reads from disk.

    They are listed once, by their path inside the folder; a request names one
    of those and nothing else is opened: not `..`, not an absolute path, not a
    symbolic link whose target lies outside the folder.
    """

    def __init__(self, target):
        target = Path(target)
        if not target.exists():
            raise ImageReadError(target, "no such file or folder")
        if target.is_dir():
            self.root = target.resolve()
            self.single = None
            self.photos = self._scan()
            if not self.photos:
                raise ImageReadError(target, f"no photos in this folder ({', '.join(io.IMAGE_EXTENSIONS)})")
        else:
            self.root = target.resolve().parent
            self.single = target.name
            self.photos = {target.name: target.resolve()} if self._inside(target.resolve()) else {}

    def _inside(self, path: Path) -> bool:
        return path.is_file() and path.is_relative_to(self.root)

    def _scan(self) -> dict[str, Path]:
        found = {}
        for folder, subfolders, names in os.walk(self.root):  # symbolic links to folders are not followed
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for name in sorted(names):
                path = Path(folder) / name
                if name.startswith(".") or not io.is_image_file(path):
                    continue
                resolved = path.resolve()
                if self._inside(resolved):
                    found[path.relative_to(self.root).as_posix()] = resolved
                if len(found) >= MAX_FOLDER_PHOTOS:
                    return found
        return found

    def path(self, name) -> Path:
        """The file of a listed photo; StudioError 404 for anything else."""
        listed = self.photos.get(name) if isinstance(name, str) else None
        # Checked again now: a link could have been changed since the folder was listed.
        if listed is None or (self.root / name).resolve() != listed or not self._inside(listed):
            raise StudioError(404, f"{str(name)[:100]!r} is not a photo of this folder")
        return listed


# === The studio ===


class Studio:
    """The server's state: one colorizer (one worker thread), the photo cache, the folder, the limits.

    Args:
        colorizer: a `Colorizer` (the shipped model, or `--model`).
        target: a photo or folder to serve (None: uploads only).
        max_upload_bytes / max_pixels: limits of an opened photo.
        max_photos / max_bytes: the photo cache's bounds.
        display_side: long side of the images the page shows.
        max_waiting: requests that may wait for the model behind the one it
            runs; more are answered 503 (busy) at once.
    """

    def __init__(self, colorizer, target=None, max_upload_bytes: int = MAX_UPLOAD_MB * 1_000_000,
                 max_pixels: int = MAX_MEGAPIXELS * 1_000_000, max_photos: int = CACHE_PHOTOS,
                 max_bytes: int = CACHE_BYTES, display_side: int = DISPLAY_SIDE, max_waiting: int = MAX_WAITING):
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be at least 0. Received: max_waiting={max_waiting!r}")
        self.colorizer = colorizer
        self.folder = None if target is None else PhotoFolder(target)
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.display_side = display_side
        self.cache = PhotoCache(max_photos, max_bytes)
        self.workdir = Path(tempfile.mkdtemp(prefix="colorfusion-studio-"))
        self.max_waiting = max_waiting
        self._model = ThreadPoolExecutor(1, thread_name_prefix="colorfusion-model")  # one model: requests queue
        # Jobs the model holds (the one it runs and those waiting), counted down when a job ends or is
        # cancelled: the executor's own count, also after a client left.
        self._model_jobs = 0
        self._model_jobs_lock = threading.Lock()
        self._thumbs: OrderedDict[str, bytes] = OrderedDict()
        self._thumbs_lock = threading.Lock()

    @property
    def model_jobs(self) -> int:
        """Requests the model holds now: the one it runs and those waiting."""
        return self._model_jobs

    async def work(self, function, *args):
        """Run `function(*args)` on the model's thread, after the requests queued before it.

        Raises StudioError 503 (with Retry-After) when `max_waiting` requests already wait.
        """
        with self._model_jobs_lock:
            if self._model_jobs > self.max_waiting:  # one running, max_waiting waiting
                raise StudioError(503, f"the studio is busy ({self.max_waiting} requests waiting for the model); "
                                       "retry in a moment", {"Retry-After": str(RETRY_AFTER_S)})
            self._model_jobs += 1
        try:
            job = self._model.submit(function, *args)
        except BaseException:
            self._job_ended()
            raise
        job.add_done_callback(self._job_ended)
        return await asyncio.wrap_future(job)

    def _job_ended(self, job=None) -> None:
        with self._model_jobs_lock:
            self._model_jobs -= 1

    # --- On the model's thread (through `work`) ---

    def open_photo(self, path: Path, name: str, from_folder: bool = False) -> Photo:
        """Read a file as `colorize` does (`io.read_rgb`) into a new photo of the cache."""
        if from_folder:
            held = self.cache.find_folder_photo(name)
            if held is not None:
                return held
        try:
            pixels = io.read_rgb(path, max_pixels=self.max_pixels)
        except ImageReadError as e:
            raise unreadable(name, e) from None
        session = HintSession(self.colorizer, pixels, display_side=self.display_side)
        session.result()  # the automatic colorization now: the page shows it at once
        photo = Photo(secrets.token_urlsafe(9), name, session, from_folder, Source.of(path))
        self.cache.add(photo)
        return photo

    def suggest(self, photo: Photo, x: float, y: float, k: int, hints) -> tuple[list, float]:
        """The likely colours at (x, y) given the other hints, and the photo's lightness there."""
        runner = hint_network(self.colorizer)
        if runner.centers is None:  # no colour probabilities to read suggestions from (the runner says why)
            raise StudioError(400, f"this model suggests no colours ({runner.probabilities_refusal}): "
                                   f"pick a colour yourself")
        return photo.session.suggest(x, y, k=k, hints=hints), photo.session.lightness_at(x, y)

    def reference_points(self, photo: Photo, path: Path, name: str, hints) -> list:
        """The points a reference photo (the file at `path`, called `name`) gives `photo`, away from `hints`.

        Each point is [x, y, "#rrggbb", weight] in the photo's pixels, strongest
        first (`inference.reference.Reference.points`): the page adds them as
        points of its own, which the person may move or delete.
        """
        try:
            pixels = io.read_rgb(path, max_pixels=self.max_pixels)
        except ImageReadError as e:
            raise StudioError(user_error_status(e), f"{name}: cannot use as a reference photo: {e.reason}") from None
        reference = Reference(self.colorizer, pixels, name=name)
        found = reference.points(self.colorizer, photo.session.held.lightness, _points(hints, name))
        return [[point.x, point.y, point.hex, point.weight] for point in found]

    def download(self, photo: Photo, hints) -> bytes:
        """The full-resolution file of `photo` with `hints`, written by the CLI's own writer (= `colorize --hints`)."""
        out = self.workdir / f"download-{secrets.token_hex(8)}-{download_name(photo.name)}"
        try:
            write_image(out, photo.session.full_resolution(hints), Mark.of(self.colorizer, hints=len(hints)),
                        photo.source)
            return out.read_bytes()
        finally:
            out.unlink(missing_ok=True)

    def confidence(self, photo: Photo, hints) -> dict:
        """Where the model is unsure with `hints`: a shading (PNG, display size) and the places to click."""
        shown, places = photo.session.confidence(hints)
        shade = np.zeros(shown.shape + (4,), np.uint8)
        shade[..., :3] = UNSURE_SHADE
        shade[..., 3] = np.clip((UNSURE_BELOW - shown) / UNSURE_BELOW * 255 * UNSURE_OPACITY, 0, 255).astype(np.uint8)
        return {"overlay": "data:image/png;base64," + base64.b64encode(encode(shade, "PNG")).decode("ascii"),
                "places": [{"x": p.x, "y": p.y, "score": p.score} for p in places],
                "mean": round(float(shown.mean()), 4)}

    # --- On any thread ---

    def thumbnail(self, name: str) -> bytes:
        """A small JPEG of a folder's photo, kept for when the page asks again."""
        with self._thumbs_lock:
            if name in self._thumbs:
                return self._thumbs[name]
        rgb = io.read_rgb(self.folder.path(name), max_side=THUMB_SIDE, max_pixels=self.max_pixels)
        data = encode(rgb, "JPEG")
        with self._thumbs_lock:
            self._thumbs[name] = data
            while len(self._thumbs) > THUMBS_KEPT:
                self._thumbs.popitem(last=False)
        return data

    def hints_from_file(self, photo: Photo, mapping: dict, source: str) -> dict:
        """What a loaded hints file gives: `photo`'s points, and every other photo's, by `hints.match_hints`.

        The photos matched are this studio's: the folder's (and `photo`) when
        it shows a folder, else the open photo alone, so that a file with one
        entry applies to it whatever name it was saved under, as with
        `colorize PHOTO --hints FILE`.

        Returns:
            {"hints": `photo`'s points or None, "by_photo": {photo name: points}
            for the photos a key names, "others": {key: points} for the keys
            naming none (kept, so that saving writes them back), "missing":
            the line to show when `photo` has none, else None}; points as
            [x, y, "#rrggbb"].

        Raises:
            HintError: a point of the file that is not a hint, named with `source`.
        """
        if self.folder is None or self.folder.single is not None:
            names = [photo.name]
        else:
            names = list(dict.fromkeys([*self.folder.photos, photo.name]))
        matched = match_hints(mapping, names)
        by_photo = {name: _points(mapping[key], source) for name, key in matched.items()}
        named = set(matched.values())
        others = {key: _points(points, source) for key, points in mapping.items() if key not in named}
        found = by_photo.get(photo.name)
        missing = None if found is not None else (
            f"{source}: no hints for {photo.name} in this file (it has {', '.join(mapping) or 'none'})")
        return {"hints": found, "by_photo": by_photo, "others": others, "missing": missing}

    def close(self) -> None:
        self._model.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _points(hints: list, source: str) -> list:
    """A hints file's points as the page holds them, [x, y, "#rrggbb"] (`hints.parse_hint`'s reading)."""
    points = []
    for hint in hints:
        try:
            x, y, rgb = parse_hint(hint)
        except HintError as e:
            raise HintError(f"{source}: {e}") from None
        points.append([int(x) if float(x).is_integer() else x, int(y) if float(y).is_integer() else y,
                       color.hex_color(rgb)])
    return points
