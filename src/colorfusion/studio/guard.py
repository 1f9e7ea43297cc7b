"""The studio's gate: which requests reach it at all, and the headers on every answer.

The studio listens on this computer only, but any web page the browser has
open can send requests to 127.0.0.1. `GuardedApp` wraps the application and
refuses, before any route runs:

- a Host header that is not this studio's own address *and port*
  (400): a page whose name was made to resolve to 127.0.0.1 (DNS rebinding)
  sends its own name; a Host of another port is another server;
- a request whose `Sec-Fetch-Site` says a page of another site sent it
  (`cross-site`, or `same-site`: another port of this machine, such as a
  notebook server, is the same site) (403); browsers send it on every request,
  so an `<img>` or `fetch` of another page is refused whatever its method.
  The one exception is the user following a link to the page itself;
- a request that changes something (not GET or HEAD) whose Origin is not
  this studio's address and port (403), for browsers without Sec-Fetch-Site.

Every answer, refusals included, carries `SECURITY_HEADERS`, among them
`Cross-Origin-Resource-Policy: same-origin`: a browser does not hand a photo,
a thumbnail or a download to a page of any other origin, even as an `<img>`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocketClose

from colorfusion.errors import DEBUG_VARIABLE

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_PATHS = ("/",)  # what a link from another site may open: the page, which then talks to its own origin only
FOREIGN_FETCH_SITES = ("cross-site", "same-site")  # Sec-Fetch-Site values of a request another page sent

# A Host header or an Origin's authority: a name or [IPv6 address], then an optional port. Nothing else
# (no user@, no path): a value the browser would never send is refused, not guessed at.
_AUTHORITY = re.compile(r"(\[[0-9a-f:.]+\]|[^\s:\[\]/@?#]+)(?::([0-9]{1,5}))?")
_HTTP_PORT = 80  # the port of a Host or http:// Origin that names none

REFUSED_HOST = ("refused: the Host header does not name this studio's address and port (DNS rebinding "
                "protection); open the URL the studio printed")
REFUSED_SITE = "refused: a request sent by a page of another site (Sec-Fetch-Site); open the URL the studio printed"
REFUSED_ORIGIN = "refused: a request from a page of another site or port (its Origin is not this studio's address)"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> set[str]:
    """The names a Host header may give for a server bound to `host` (with its port: `GuardedApp`)."""
    names = {*LOOPBACK_NAMES, host.strip("[]").lower()}
    if host in ("0.0.0.0", "::", ""):  # every interface: this machine's names and addresses
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        try:
            names |= {info[4][0] for info in socket.getaddrinfo(hostname, None)}
        except OSError:
            pass
    return names


def split_authority(value: str | None) -> tuple[str, int] | None:
    """(name, port) of a Host header value ("127.0.0.1:8765", "[::1]:8765"); None when malformed."""
    match = _AUTHORITY.fullmatch((value or "").strip().lower())
    if match is None:
        return None
    port = int(match[2]) if match[2] else _HTTP_PORT
    return match[1].strip("[]"), port


class GuardedApp:
    """ASGI wrapper: refuse requests that are not from this studio's own page; security headers on every answer.

    Args:
        app: the application (Starlette).
        names: the host names and addresses that are ours (`allowed_hosts`).
        port: the port the server actually listens on (after binding: a free
            port chosen by the system included). Host and Origin must name it.
    """

    def __init__(self, app, names, port: int):
        self.app = app
        self.names = {name.lower().strip("[]") for name in names}
        self.port = int(port)

    def host_allowed(self, value: str | None) -> bool:
        """Whether a Host header value names this studio: one of its names, with its port."""
        found = split_authority(value)
        return found is not None and found[0] in self.names and found[1] == self.port

    def origin_allowed(self, origin: str) -> bool:
        """Whether an Origin header is this studio's own page (http://name:port)."""
        scheme, separator, authority = origin.strip().partition("://")
        return separator != "" and scheme.lower() == "http" and self.host_allowed(authority)

    def refusal(self, method: str, path: str, headers: dict) -> tuple[int, str] | None:
        """(status, line) when the request must not reach the studio; None when it may."""
        if not self.host_allowed(headers.get("host")):
            return 400, REFUSED_HOST
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in FOREIGN_FETCH_SITES and not _follows_link_to_page(method, path, headers):
            return 403, REFUSED_SITE
        if method not in ("GET", "HEAD") and "origin" in headers and not self.origin_allowed(headers["origin"]):
            return 403, REFUSED_ORIGIN
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            return await WebSocketClose()(scope, receive, send)  # the studio has no websocket
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        answered = False

        async def send_secured(message):
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        problem = self.refusal(scope.get("method", ""), scope.get("path", ""), headers)
        if problem is not None:
            status, line = problem
            return await PlainTextResponse(line, status_code=status)(scope, receive, send_secured)
        try:
            return await self.app(scope, receive, send_secured)
        except Exception:
            # Starlette re-raises a route's bug after answering 500 and saying it in one line
            # (`routes.server_error`): the server goes on, without a traceback on the terminal.
            if not answered or os.environ.get(DEBUG_VARIABLE):
                raise


def _follows_link_to_page(method: str, path: str, headers: dict) -> bool:
    """The user following a link to the page from another page (a notebook's output): a top-level
    navigation, whose answer only the new tab sees; the page then talks to its own origin only."""
    return (method in ("GET", "HEAD") and path in PAGE_PATHS
            and headers.get("sec-fetch-mode") == "navigate" and headers.get("sec-fetch-dest") == "document")
