"""colorfusion studio: its gate (`studio.guard`), which requests reach the studio and the headers on every answer.

The guard is called as the server calls it (an ASGI scope, receive, send),
around a stand-in application that answers 200: no model, no sockets. The
real server's answers through it are tested in test_studio.py.
"""

import asyncio
import socket

import pytest

pytest.importorskip("starlette")

from colorfusion.studio.guard import (
    SECURITY_HEADERS,
    GuardedApp,
    allowed_hosts,
    split_authority,
)

PORT = 8765


async def _answer_ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"max-age=60")]})
    await send({"type": "http.response.body", "body": b"ok"})


def guard(host="127.0.0.1", port=PORT) -> GuardedApp:
    return GuardedApp(_answer_ok, allowed_hosts(host), port)


def call(app, method="GET", path="/api/info", headers=None, host=f"127.0.0.1:{PORT}"):
    """(status, headers, body) of one request through `app`."""
    headers = {"Host": host, **(headers or {})} if host is not None else dict(headers or {})
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "scheme": "http", "root_path": "",
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", PORT)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    answer_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], answer_headers, b"".join(m.get("body", b"") for m in sent[1:]).decode()


def test_host_must_name_this_studio_with_its_port():
    app = guard()
    for host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LOCALHOST:{PORT}", f"[::1]:{PORT}"):
        assert call(app, host=host)[0] == 200, host
    refused = [f"127.0.0.1:{PORT + 1}", "127.0.0.1:8888", "127.0.0.1",  # another port (none: 80)
               f"evil.example:{PORT}", f"127.0.0.1.evil.example:{PORT}", f"evil.example@127.0.0.1:{PORT}",
               f"127.0.0.1:{PORT}@evil.example", f"127.0.0.1:{PORT}/x", f"::1:{PORT}", "", None]
    for host in refused:
        status, headers, body = call(app, host=host)
        assert status == 400 and "DNS rebinding" in body and "\n" not in body, (host, status, body)
    assert GuardedApp(_answer_ok, allowed_hosts("127.0.0.1"), 80).host_allowed("127.0.0.1")  # port 80: may be left out
    assert split_authority("[::1]:8765") == ("::1", 8765) and split_authority("a b:1") is None


def test_a_non_local_host_keeps_this_machines_names_with_the_port():
    hostname = socket.gethostname()
    every_interface = guard("0.0.0.0")
    assert every_interface.host_allowed(f"{hostname}:{PORT}") and every_interface.host_allowed(f"127.0.0.1:{PORT}")
    assert not every_interface.host_allowed(f"{hostname}:{PORT + 1}")
    one_address = guard("192.168.1.5")
    assert one_address.host_allowed(f"192.168.1.5:{PORT}") and not one_address.host_allowed("192.168.1.5:8888")
    assert one_address.origin_allowed(f"http://192.168.1.5:{PORT}")


def test_a_post_from_a_page_of_another_port_or_site_is_refused():
    app = guard()
    for origin in ("http://127.0.0.1:8888", f"http://127.0.0.1:{PORT + 1}", "http://127.0.0.1", "http://localhost",
                   f"https://127.0.0.1:{PORT}", f"http://evil.example:{PORT}", "null", f"127.0.0.1:{PORT}"):
        status, _, body = call(app, "POST", "/api/photos", {"Origin": origin})
        assert status == 403 and "another site or port" in body and "\n" not in body, (origin, status, body)
    for origin in (f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}", f"http://[::1]:{PORT}"):
        assert call(app, "POST", "/api/photos", {"Origin": origin})[0] == 200, origin
    assert call(app, "POST", "/api/photos")[0] == 200  # no Origin: not a browser's page


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
def test_requests_another_page_sent_are_refused_whatever_the_method(site):
    app = guard()
    for method, path in (("GET", "/api/folder/thumb"), ("GET", "/api/photos/x/original.jpg"), ("GET", "/"),
                         ("POST", "/api/photos/x/download"), ("GET", "/static/studio.js")):
        status, headers, body = call(app, method, path, {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors",
                                                         "Sec-Fetch-Dest": "image"})
        assert status == 403 and "another site" in body and "\n" not in body, (method, path, status, body)
        assert headers["cross-origin-resource-policy"] == "same-origin"
    # A link to the page from another page (a notebook's output) opens it; a link to anything else does not.
    navigate = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert call(app, "GET", "/", navigate)[0] == 200
    assert call(app, "GET", "/api/photos/x/original.jpg", navigate)[0] == 403
    assert call(app, "POST", "/", navigate)[0] == 403
    assert call(app, "GET", "/", {**navigate, "Sec-Fetch-Dest": "iframe"})[0] == 403


def test_requests_of_the_page_itself_pass():
    app = guard()
    for site in ("same-origin", "none", None):  # its own fetches; the address typed or opened by the command
        headers = {"Sec-Fetch-Site": site} if site else {}
        assert call(app, "GET", "/api/info", headers)[0] == 200, site
        assert call(app, "POST", "/api/photos", {**headers, "Origin": f"http://127.0.0.1:{PORT}"})[0] == 200, site


def test_every_answer_carries_the_security_headers_refusals_included():
    app = guard()
    answers = [call(app), call(app, host="evil.example"), call(app, headers={"Sec-Fetch-Site": "cross-site"}),
               call(app, "POST", headers={"Origin": "http://127.0.0.1:8888"})]
    assert [status for status, _, _ in answers] == [200, 400, 403, 403]
    for _, headers, _ in answers:
        assert headers["cross-origin-resource-policy"] == "same-origin"
        assert headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert answers[0][1]["cache-control"] == "max-age=60"  # a route's own header is kept
    assert SECURITY_HEADERS["Cross-Origin-Resource-Policy"] == "same-origin"


def test_a_websocket_is_closed():
    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"host", f"127.0.0.1:{PORT}".encode())]}
    asyncio.run(guard()(scope, receive, send))
    assert sent and sent[0]["type"] == "websocket.close"
