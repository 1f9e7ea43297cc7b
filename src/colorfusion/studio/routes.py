"""The studio's HTTP routes: each request becomes one call of its `Studio` (or of the package), and back.

No colour is decided here. The page (`static/`) asks for:

    GET  /                           the page; /static/... its scripts and style
    GET  /api/info                   the model, the limits, the folder (if any)
    GET  /api/folder                 the photos of the folder given on the command line
    GET  /api/folder/thumb?path=P    a thumbnail of one of them
    POST /api/folder/open?path=P     open one of them           -> the photo's record
    POST /api/photos?name=N          open an uploaded file (the request body)
    GET  /api/photos/ID/gray.jpg     the photo as the model sees it (its L), display size
    GET  /api/photos/ID/original.jpg the photo itself, display size
    POST /api/photos/ID/result       {"hints": [[x, y, "#rrggbb"], ...]}  -> JPEG, display size
    POST /api/photos/ID/suggest      {"x", "y", "k", "hints"}  -> likely colours at (x, y)
    POST /api/photos/ID/confidence   {"hints"} -> where the model is unsure: a shading, the places to click
    POST /api/photos/ID/download     {"hints"} -> the full-resolution file (= colorize --hints), marked
    POST /api/photos/ID/hints-file?name=N  a hints file (the body) -> the points it gives each photo
    POST /api/photos/ID/reference?name=N   a colour photo (the body) + {"hints"} in ?hints= -> its matched points
    GET  /api/gamut?l=L              the ab plane at lightness L (PNG with alpha)

Each handler is a plain function of the request; the `Studio` it serves is
`request.app.state.studio`. A user's error (a bad request, an unreadable
file: `StudioError`, the package's `USER_ERRORS`) gets a 4xx and its one
line; anything else is the studio's own failure: 500 and "studio failed:
Type: first line", and the server goes on. `build_app` puts the routes
behind `guard.GuardedApp`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from colorfusion import io
from colorfusion.errors import DEBUG_VARIABLE, USER_ERRORS, ImageReadError, first_line, reason
from colorfusion.hints import parse_hints_file
from colorfusion.inference.suggest import SUGGESTIONS, gamut_plane
from colorfusion.studio import DEFAULT_HOST
from colorfusion.studio.guard import GuardedApp, allowed_hosts
from colorfusion.studio.state import Studio, StudioError, download_name, encode, unreadable, user_error_status

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_JSON_BYTES = 1 << 20  # a request's JSON body (a hints file included)
MAX_HINTS = 1000  # hints in one request
NO_FOLDER = "no folder: start the studio with `colorfusion studio FOLDER`"
NOT_CACHED = {"Cache-Control": "no-store"}


# === Reading a request ===


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


async def read_body(request: Request) -> bytes:
    """The request's body, at most `MAX_JSON_BYTES` (413 beyond)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise StudioError(413, f"request too large (more than {MAX_JSON_BYTES // 1024} KB of JSON)")
    return body


async def read_json(request: Request) -> dict:
    try:
        data = json.loads(await read_body(request) or b"{}")
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


def file_name(request: Request, default: str) -> str:
    """The name the page gives a file it sends (?name=): its last part only, never a path."""
    name = PurePosixPath(request.query_params.get("name", "").replace("\\", "/")).name.strip()
    return name[:200] or default


def folder_name(request: Request) -> str:
    if studio_of(request).folder is None:
        raise StudioError(404, NO_FOLDER)
    return request.query_params.get("path", "")


def open_photo_of(request: Request):
    return studio_of(request).cache.get(request.path_params["id"])


def _megabytes(declared) -> str:
    return f"{int(declared) / 1e6:.0f} MB" if str(declared).isdigit() else "unknown size"


# === The page and the studio ===


async def index(request):
    return FileResponse(STATIC_DIR / "index.html")


async def info(request):
    studio = studio_of(request)
    folder = studio.folder
    return JSONResponse({
        "takes_hints": bool(studio.colorizer.takes_hints),
        "limits": {"upload_bytes": studio.max_upload_bytes, "pixels": studio.max_pixels},
        "folder": None if folder is None else {"name": folder.root.name, "single": folder.single},
        "suggestions": SUGGESTIONS,
    })


async def gamut(request):
    try:
        level = float(request.query_params.get("l", "nan"))
    except ValueError:
        level = float("nan")
    if not np.isfinite(level):
        raise StudioError(400, "malformed request: l must be a lightness in [0, 100]")
    return Response(encode(gamut_plane(level), "PNG"), media_type="image/png",
                    headers={"Cache-Control": "max-age=3600"})


# === Opening photos ===


async def folder_list(request):
    folder = studio_of(request).folder
    if folder is None:
        raise StudioError(404, NO_FOLDER)
    return JSONResponse({"name": folder.root.name, "photos": list(folder.photos)})


async def folder_thumb(request):
    studio, name = studio_of(request), folder_name(request)
    studio.folder.path(name)  # 404 before any work for a name not listed
    try:
        data = await asyncio.get_running_loop().run_in_executor(None, studio.thumbnail, name)
    except ImageReadError as e:
        raise unreadable(name, e) from None
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})


async def folder_open(request):
    studio, name = studio_of(request), folder_name(request)
    photo = await studio.work(studio.open_photo, studio.folder.path(name), name, True)
    return JSONResponse(photo.record())


async def _receive(request, path: Path, name: str, limit: int) -> None:
    """The request's body (a file the page sends) written to `path`: 413 beyond `limit` bytes, 400 when empty."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise StudioError(413, f"{name}: too large ({_megabytes(declared)}; the studio takes files up to "
                               f"{limit // 1_000_000} MB)")
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


async def upload(request):
    studio, name = studio_of(request), file_name(request, "photo.png")
    path = studio.workdir / f"upload-{secrets.token_hex(8)}"
    try:
        await _receive(request, path, name, studio.max_upload_bytes)
        photo = await studio.work(studio.open_photo, path, name)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening; the file is gone below
    finally:
        path.unlink(missing_ok=True)
    return JSONResponse(photo.record())


# === One photo ===


async def gray(request):
    return Response(encode(open_photo_of(request).session.gray), media_type="image/jpeg", headers=NOT_CACHED)


async def original(request):
    return Response(encode(open_photo_of(request).session.original), media_type="image/jpeg", headers=NOT_CACHED)


async def result(request):
    photo = open_photo_of(request)
    hints = hints_of(await read_json(request))
    started = time.perf_counter()
    rgb = await studio_of(request).work(photo.session.result, hints)
    timing = f"colorize;dur={(time.perf_counter() - started) * 1e3:.1f}"
    return Response(encode(rgb), media_type="image/jpeg", headers={**NOT_CACHED, "Server-Timing": timing})


async def suggest(request):
    studio, photo = studio_of(request), open_photo_of(request)
    data = await read_json(request)
    hints = hints_of(data)
    x = number_of(data, "x", 0, photo.session.width - 1)
    y = number_of(data, "y", 0, photo.session.height - 1)
    k = int(number_of(data, "k", 1, 32)) if "k" in data else SUGGESTIONS
    found, level = await studio.work(studio.suggest, photo, x, y, k, hints)
    return JSONResponse({"x": x, "y": y, "lightness": round(level, 2), "gamut": f"/api/gamut?l={level:.1f}",
                         "colours": [{"hex": s.hex, "probability": s.probability} for s in found]})


async def confidence(request):
    studio, photo = studio_of(request), open_photo_of(request)
    hints = hints_of(await read_json(request))
    return JSONResponse(await studio.work(studio.confidence, photo, hints), headers=NOT_CACHED)


async def download(request):
    studio, photo = studio_of(request), open_photo_of(request)
    hints = hints_of(await read_json(request))
    data = await studio.work(studio.download, photo, hints)
    filename = download_name(photo.name).replace('"', "")
    return Response(data, media_type=io.image_mime_type(filename), headers={
        **NOT_CACHED, "Content-Disposition": f'attachment; filename="{filename}"'})


async def reference(request):
    studio, photo = studio_of(request), open_photo_of(request)
    name = file_name(request, "reference.jpg")
    try:
        given = json.loads(request.query_params.get("hints", "[]"))
    except ValueError:
        given = None
    hints = hints_of({"hints": given})
    path = studio.workdir / f"reference-{secrets.token_hex(8)}"
    try:
        await _receive(request, path, name, studio.max_upload_bytes)
        points = await studio.work(studio.reference_points, photo, path, name, hints)
    except ClientDisconnect:
        return Response(status_code=400)
    finally:
        path.unlink(missing_ok=True)
    return JSONResponse({"name": name, "points": points})


async def hints_file(request):
    studio, photo = studio_of(request), open_photo_of(request)
    name = file_name(request, "hints.json")
    mapping = parse_hints_file(await read_body(request), name)
    return JSONResponse(studio.hints_from_file(photo, mapping, name))


# === Errors ===


async def studio_error(request, error: StudioError):
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)


async def user_error(request, error: Exception):
    return JSONResponse({"error": reason(error)}, status_code=user_error_status(error))


async def server_error(request, error: Exception):
    # Not the user's doing (a bug, a library's bare ValueError): said so, with the type, to the page and
    # in one line on the terminal. Starlette then re-raises it; the guard ends it there (`GuardedApp`).
    line = f"studio failed: {first_line(error)}"
    print(f"{line} ({request.method} {request.url.path}; {DEBUG_VARIABLE}=1 shows the traceback)", file=sys.stderr,
          flush=True)
    return JSONResponse({"error": line}, status_code=500)


ROUTES = [
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
    Route("/api/photos/{id}/confidence", confidence, methods=["POST"]),
    Route("/api/photos/{id}/download", download, methods=["POST"]),
    Route("/api/photos/{id}/hints-file", hints_file, methods=["POST"]),
    Route("/api/photos/{id}/reference", reference, methods=["POST"]),
    Route("/api/gamut", gamut),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]


def build_app(studio: Studio, port: int, host: str = DEFAULT_HOST) -> GuardedApp:
    """The application of a `Studio` served on host:port (the port it listens on), behind its guard."""
    # Only errors meant for the user are 4xx; ValueError is not among them (HintError, a ValueError, is).
    handlers = {StudioError: studio_error, Exception: server_error}
    handlers.update({error_type: user_error for error_type in USER_ERRORS})
    app = Starlette(routes=ROUTES, exception_handlers=handlers)
    app.state.studio = studio
    return GuardedApp(app, allowed_hosts(host), port)
