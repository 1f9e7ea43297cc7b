"""The studio's local web server: HTTP in, package calls out.

Starlette routes each request to a package call and sends its answer back;
no colour is decided here. The page (`static/`) asks for:

    GET  /                           the page; /static/... its script and style
    GET  /api/info                   the model, the limits, the folder (if any)
    GET  /api/folder                 the photos of the folder given on the command line
    GET  /api/folder/thumb?path=P    a thumbnail of one of them
    POST /api/folder/open?path=P     open one of them           -> the photo's record
    POST /api/photos?name=N          open an uploaded file (the request body)
    GET  /api/photos/ID/gray.jpg     the photo as the model sees it (its L), display size
    GET  /api/photos/ID/original.jpg the photo itself, display size
    POST /api/photos/ID/result       {"hints": [[x, y, "#rrggbb"], ...]}  -> JPEG, display size
    POST /api/photos/ID/suggest      {"x", "y", "k", "hints"}  -> likely colours at (x, y)
    POST /api/photos/ID/download     {"hints"} -> the full-resolution file (= colorize --hints)
    GET  /api/gamut?l=L              the ab plane at lightness L (PNG with alpha)

Safe by default: it binds 127.0.0.1; `guard.GuardedApp` lets through only
requests of its own page (Host and Origin with its port, Sec-Fetch-Site) and
puts Cross-Origin-Resource-Policy and the other security headers on every
answer; uploads are limited in bytes and pixels and go to its own temporary
folder, deleted once read and at exit; a folder's photos are served only by
the names it listed (no path from a request is ever opened); photos are held
in a cache bounded in count and bytes; one model, one worker thread, at most
`max_waiting` requests waiting for it (then 503, busy). A user's error (a bad
request, an unreadable file: `StudioError`, the package's `USER_ERRORS`) gets
a 4xx and its one line; anything else is the studio's own failure: 500 and
"studio failed: Type: first line", and the server goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import io as bytes_io
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import webbrowser
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from colorfusion import io
from colorfusion.errors import USER_ERRORS, ImageReadError, first_line, reason
from colorfusion.inference.suggest import DISPLAY_SIDE, SUGGESTIONS, HintSession, gamut_plane, hint_network
from colorfusion.io import ImageTooLargeError
from colorfusion.studio import CACHE_PHOTOS, DEFAULT_HOST, DEFAULT_PORT, MAX_MEGAPIXELS, MAX_UPLOAD_MB, MAX_WAITING
from colorfusion.studio.guard import LOOPBACK_NAMES as LOOPBACK_NAMES  # still importable from here
from colorfusion.studio.guard import GuardedApp, allowed_hosts, is_loopback

STATIC_DIR = Path(__file__).resolve().parent / "static"
CACHE_BYTES = 1 << 30  # about 1 GB of photos held at once (a 12 MP photo holds about 60 MB)
MAX_JSON_BYTES = 1 << 20  # a request's JSON body
MAX_HINTS = 1000  # hints in one request
MAX_FOLDER_PHOTOS = 10_000  # photos listed from a folder
THUMB_SIDE = 160
PREVIEW_QUALITY = 90  # JPEG quality of the display-size images (the download is the CLI's own file)
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


# === What the server holds ===


@dataclass
class Photo:
    id: str
    name: str  # the file name (upload) or the path inside the folder: the hints file's key
    session: HintSession
    from_folder: bool = False

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
                if name.startswith(".") or path.suffix.lower() not in io.IMAGE_EXTENSIONS:
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

    def open_photo(self, path: Path, name: str, from_folder: bool = False) -> Photo:
        """Read a file as `colorize` does (`io.read_rgb`) into a new photo of the cache. Model thread."""
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
        photo = Photo(secrets.token_urlsafe(9), name, session, from_folder)
        self.cache.add(photo)
        return photo

    def thumbnail(self, name: str) -> bytes:
        """A small JPEG of a folder's photo (kept: the page asks again as the list scrolls). Any thread."""
        with self._thumbs_lock:
            if name in self._thumbs:
                return self._thumbs[name]
        rgb = io.read_rgb(self.folder.path(name), max_side=THUMB_SIDE, max_pixels=self.max_pixels)
        data = encode(rgb, "JPEG")
        with self._thumbs_lock:
            self._thumbs[name] = data
            while len(self._thumbs) > 512:
                self._thumbs.popitem(last=False)
        return data

    def close(self) -> None:
        self._model.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def encode(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    buffer = bytes_io.BytesIO()
    options = {"quality": PREVIEW_QUALITY} if fmt == "JPEG" else {"compress_level": 1}
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def download_name(name: str) -> str:
    """The file the page downloads for photo `name`: its stem + "_colorized", in the format `colorize` writes."""
    path = PurePosixPath(name)
    suffix = path.suffix.lower()
    suffix = ".png" if suffix == ".gif" or suffix not in io.IMAGE_EXTENSIONS else path.suffix
    return f"{path.stem}_colorized{suffix}"


# === Requests ===


async def read_json(request: Request) -> dict:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise StudioError(413, f"request too large (more than {MAX_JSON_BYTES // 1024} KB of JSON)")
    try:
        data = json.loads(body or b"{}")
    except ValueError as e:
        raise StudioError(400, f"malformed request: not JSON ({first_line(e)})") from None
    if not isinstance(data, dict):
        raise StudioError(400, "malformed request: expected a JSON object")
    return data


def hints_of(data: dict) -> list:
    hints = data.get("hints", [])
    if not isinstance(hints, list) or not all(isinstance(h, list) and len(h) == 3 for h in hints):
        raise StudioError(400, 'malformed request: "hints" must be a list of [x, y, "#rrggbb"]')
    if len(hints) > MAX_HINTS:
        raise StudioError(400, f"too many hints ({len(hints)}; at most {MAX_HINTS})")
    return hints


def number_of(data: dict, key: str, low=None, high=None) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise StudioError(400, f"malformed request: {key!r} must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise StudioError(400, f"malformed request: {key!r} must be in [{low}, {high}]")
    return value


def upload_name(request: Request) -> str:
    name = PurePosixPath(request.query_params.get("name", "").replace("\\", "/")).name.strip()
    return name[:200] or "photo.png"


def build_app(studio: Studio, port: int, host: str = DEFAULT_HOST) -> GuardedApp:
    """The application of a `Studio` served on host:port (the port it listens on), behind its guard."""

    async def index(request):
        return FileResponse(STATIC_DIR / "index.html")

    async def info(request):
        model = studio.colorizer
        folder = studio.folder
        return JSONResponse({
            "takes_hints": bool(model.takes_hints),
            "limits": {"upload_bytes": studio.max_upload_bytes, "pixels": studio.max_pixels},
            "folder": None if folder is None else {"name": folder.root.name, "single": folder.single},
            "suggestions": SUGGESTIONS,
        })

    async def folder_list(request):
        if studio.folder is None:
            raise StudioError(404, "no folder: start the studio with `colorfusion studio FOLDER`")
        return JSONResponse({"name": studio.folder.root.name, "photos": list(studio.folder.photos)})

    def folder_name(request) -> str:
        if studio.folder is None:
            raise StudioError(404, "no folder: start the studio with `colorfusion studio FOLDER`")
        return request.query_params.get("path", "")

    async def folder_thumb(request):
        name = folder_name(request)
        studio.folder.path(name)  # 404 before any work for a name not listed
        try:
            data = await asyncio.get_running_loop().run_in_executor(None, studio.thumbnail, name)
        except ImageReadError as e:
            raise unreadable(name, e) from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})

    async def folder_open(request):
        name = folder_name(request)
        path = studio.folder.path(name)
        photo = await studio.work(studio.open_photo, path, name, True)
        return JSONResponse(photo.record())

    async def upload(request):
        name = upload_name(request)
        limit = studio.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise StudioError(413, f"{name}: too large ({_megabytes(declared)}; the studio takes files up to "
                                   f"{limit // 1_000_000} MB)")
        path = studio.workdir / f"upload-{secrets.token_hex(8)}"
        try:
            size = 0
            with open(path, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise StudioError(413, f"{name}: too large (the studio takes files up to "
                                               f"{limit // 1_000_000} MB)")
                    f.write(chunk)
            if size == 0:
                raise StudioError(400, f"{name}: empty file (0 bytes)")
            photo = await studio.work(studio.open_photo, path, name)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; the file is gone below
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse(photo.record())

    async def gray(request):
        photo = studio.cache.get(request.path_params["id"])
        return Response(encode(photo.session.gray), media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def original(request):
        photo = studio.cache.get(request.path_params["id"])
        return Response(encode(photo.session.original), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})

    async def result(request):
        photo = studio.cache.get(request.path_params["id"])
        hints = hints_of(await read_json(request))
        started = time.perf_counter()
        rgb = await studio.work(photo.session.result, hints)
        data = encode(rgb)
        return Response(data, media_type="image/jpeg", headers={
            "Cache-Control": "no-store", "Server-Timing": f"colorize;dur={(time.perf_counter() - started) * 1e3:.1f}"})

    async def suggest(request):
        photo = studio.cache.get(request.path_params["id"])
        data = await read_json(request)
        hints = hints_of(data)
        x = number_of(data, "x", 0, photo.session.width - 1)
        y = number_of(data, "y", 0, photo.session.height - 1)
        k = int(number_of(data, "k", 1, 32)) if "k" in data else SUGGESTIONS

        def work():
            if hint_network(studio.colorizer).centers is None:  # no colour probabilities to read suggestions from
                raise StudioError(400, "this model suggests no colours (it is a regression model; suggested "
                                       "colours need a classification one): pick a colour yourself")
            return photo.session.suggest(x, y, k=k, hints=hints), photo.session.lightness_at(x, y)

        found, level = await studio.work(work)
        return JSONResponse({"x": x, "y": y, "lightness": round(level, 2), "gamut": f"/api/gamut?l={level:.1f}",
                             "colours": [{"hex": s.hex, "probability": s.probability} for s in found]})

    async def download(request):
        photo = studio.cache.get(request.path_params["id"])
        hints = hints_of(await read_json(request))
        out = studio.workdir / f"download-{secrets.token_hex(8)}-{download_name(photo.name)}"

        def work():
            # The CLI's own writer, so that the file is the one `colorize --hints` writes.
            io.write_image(out, photo.session.full_resolution(hints))
            data = out.read_bytes()
            out.unlink()
            return data

        try:
            data = await studio.work(work)
        finally:
            out.unlink(missing_ok=True)
        media = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                 ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff"}
        filename = download_name(photo.name).replace('"', "")
        return Response(data, media_type=media.get(out.suffix.lower(), "application/octet-stream"), headers={
            "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})

    async def gamut(request):
        try:
            level = float(request.query_params.get("l", "nan"))
        except ValueError:
            level = float("nan")
        if not np.isfinite(level):
            raise StudioError(400, "malformed request: l must be a lightness in [0, 100]")
        return Response(encode(gamut_plane(level), "PNG"), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    async def studio_error(request, error: StudioError):
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    async def user_error(request, error: Exception):
        return JSONResponse({"error": reason(error)}, status_code=user_error_status(error))

    async def server_error(request, error: Exception):
        # Not the user's doing (a bug, a library's bare ValueError): said so, with the type. Starlette then
        # re-raises it for uvicorn to log, and the server goes on.
        return JSONResponse({"error": f"studio failed: {first_line(error)}"}, status_code=500)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/folder", folder_list),
        Route("/api/folder/thumb", folder_thumb),
        Route("/api/folder/open", folder_open, methods=["POST"]),
        Route("/api/photos", upload, methods=["POST"]),
        Route("/api/photos/{id}/gray.jpg", gray),
        Route("/api/photos/{id}/original.jpg", original),
        Route("/api/photos/{id}/result", result, methods=["POST"]),
        Route("/api/photos/{id}/suggest", suggest, methods=["POST"]),
        Route("/api/photos/{id}/download", download, methods=["POST"]),
        Route("/api/gamut", gamut),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    # Only errors meant for the user are 4xx; ValueError is not among them (HintError, a ValueError, is).
    handlers = {StudioError: studio_error, Exception: server_error}
    handlers.update({error_type: user_error for error_type in USER_ERRORS})
    app = Starlette(routes=routes, exception_handlers=handlers)
    return GuardedApp(app, allowed_hosts(host), port)


def _megabytes(declared) -> str:
    return f"{int(declared) / 1e6:.0f} MB" if str(declared).isdigit() else "unknown size"


# === Serving ===


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port; port None: `DEFAULT_PORT` when free, else any free port."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    candidates = [DEFAULT_PORT, 0] if port is None else [port]
    for index, candidate in enumerate(candidates):
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so (else each small
        # answer waits 40 ms for the browser's delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), candidate))
        except OSError as e:
            sock.close()
            if index + 1 < len(candidates):
                continue
            raise OSError(f"cannot listen on {host}:{candidate} ({e.strerror or e}); choose another --port") from None
        sock.listen(128)
        return sock
    raise AssertionError("unreachable")


def uvicorn_server(studio: Studio, host: str, sock: socket.socket):
    """The uvicorn server of `studio` for the listening socket `sock` (bound to `host`): its port is the guard's."""
    import uvicorn

    app = build_app(studio, port=sock.getsockname()[1], host=host)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/"


def serve(colorizer, target=None, host: str = DEFAULT_HOST, port: int | None = None, open_browser: bool = True,
          out=None, **studio_options) -> None:
    """Serve the studio until Ctrl-C (which raises KeyboardInterrupt after a clean shutdown).

    Prints the URL on one line (and a warning line first when `host` is not
    a loopback address); opens the browser unless `open_browser` is False.
    The temporary folder is removed on the way out, whatever the reason.
    """
    out = out or sys.stdout
    studio = Studio(colorizer, target, **studio_options)
    try:
        sock = bind(host, port)
        url = url_of(host, sock.getsockname()[1])
        if not is_loopback(host):
            print(f"warning: serving on {host}: anyone who can reach this machine can use the studio "
                  f"(and its photos); the default --host 127.0.0.1 keeps it local", file=out, flush=True)
        server = uvicorn_server(studio, host, sock)
        print(f"colorfusion studio: {url}  (Ctrl-C stops it)", file=out, flush=True)
        if open_browser:
            threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
        server.run(sockets=[sock])
        sock.close()
        if not server.started:
            raise OSError(f"the studio's server did not start on {url}")
        # Only a signal stops it. uvicorn raises the signal again once it has shut down, which makes
        # Ctrl-C a KeyboardInterrupt here; once in a loaded test run it returned instead (exit 0, not 130).
        raise KeyboardInterrupt
    finally:
        studio.close()


@contextlib.contextmanager
def running(studio: Studio, host: str = DEFAULT_HOST, port: int = 0):
    """Serve `studio` from a background thread while the block runs; yields its URL.

    For notebooks, tests and benchmarks: the same application as `serve`, on
    a free port by default. The studio itself is left open (`studio.close()`).

    Example:
        with running(Studio(Colorizer.pretrained(), "photos/")) as url:
            print(url)  # open it; the block's end stops the server
    """
    sock = bind(host, port)
    server = uvicorn_server(studio, host, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="colorfusion-studio", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio's server did not start")
            time.sleep(0.02)
        yield url_of(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _open_when_started(server, url: str) -> None:
    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)
