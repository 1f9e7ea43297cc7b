"""The studio on a socket: bind, uvicorn's configuration, `serve` (the command) and `running` (notebooks, tests).

Safe by default: it binds 127.0.0.1 (`DEFAULT_HOST`); another address
prints a warning line first. The application is `routes.build_app`, behind
`guard.GuardedApp`, which is told the port actually bound (a free one chosen
by the system included). `serve` removes the studio's temporary folder on
the way out, whatever the reason.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import webbrowser

from colorfusion.studio import DEFAULT_HOST, DEFAULT_PORT
from colorfusion.studio.guard import is_loopback
from colorfusion.studio.routes import build_app
from colorfusion.studio.state import Studio

START_TIMEOUT_S = 30  # `running` waits this long for the server to listen


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
    import uvicorn  # the studio extra: imported when a studio is served, not when its state is built

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
        deadline = time.monotonic() + START_TIMEOUT_S
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
