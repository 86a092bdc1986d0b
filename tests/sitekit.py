"""Loopback web servers with their own request logs, and the browser, for the browser tests.

:class:`SiteServer` serves the hand-written pages of ``tests/fixtures/sites/`` on
127.0.0.1 (``{{SELF}}`` and ``{{OTHER}}`` in a page become this server's and another
server's origin), answers a few endpoints real sites have (a 302 redirect, form posts,
a WebSocket handshake, a JSON API), and logs every request it receives, WebSocket
upgrades included: the fence tests assert that a forbidden server's log stays empty.

:func:`require_chromium` fails (never skips) when Chromium is missing: CI installs it
(``make test`` runs ``make browser`` first), so a missing browser is a broken setup.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

SITES = Path(__file__).parent / "fixtures" / "sites"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def require_chromium() -> str:
    """Chromium's path; fails the test run (with the command to fix it) if it is missing."""
    from customer_r1.sim.browser import BrowserMissing, find_chromium

    try:
        return find_chromium()
    except BrowserMissing as exc:
        pytest.fail(f"{exc} -- the browser tests need Chromium; `make browser` installs it "
                    "(apt-get install -y chromium)", pytrace=False)


@dataclass(frozen=True)
class Hit:
    """One request a server received."""

    method: str
    path: str
    body: str = ""
    upgrade: str = ""


@dataclass
class SiteServer:
    """A fixture web site on 127.0.0.1 (see the module doc)."""

    other: str = ""  # the other server's origin, substituted for {{OTHER}}
    log: list[Hit] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return self.origin.removeprefix("http://")

    def start(self) -> SiteServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def _body(self) -> str:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n).decode("utf-8", "replace") if n else ""

            def _send(self, code: int, body: str = "", ctype: str = "text/html; charset=utf-8",
                      headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                upgrade = self.headers.get("Upgrade", "")
                server.log.append(Hit("GET", self.path, upgrade=upgrade))
                u = urlsplit(self.path)
                if upgrade.lower() == "websocket":
                    key = self.headers.get("Sec-WebSocket-Key", "")
                    accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
                    self.send_response(101)
                    self.send_header("Upgrade", "websocket")
                    self.send_header("Connection", "Upgrade")
                    self.send_header("Sec-WebSocket-Accept", accept)
                    self.end_headers()
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if u.path == "/redirect":
                    to = parse_qs(u.query).get("to", ["/"])[0].replace("{{OTHER}}", server.other)
                    self._send(302, "", headers={"Location": to})
                    return
                if u.path == "/slow":  # a page that takes its time
                    time.sleep(float(parse_qs(u.query).get("s", ["3"])[0]))
                    self._send(200, "<html><body><h1>Finally</h1></body></html>")
                    return
                if u.path == "/api/ping":
                    self._send(200, '{"ok": true}', "application/json")
                    return
                f = SITES / (u.path.lstrip("/") or "index.html")
                if not f.resolve().is_relative_to(SITES.resolve()) or not f.is_file():
                    self._send(404, "<html><body><p>not found</p></body></html>")
                    return
                text = f.read_text(encoding="utf-8")
                text = text.replace("{{SELF}}", server.origin).replace("{{OTHER}}", server.other)
                ctype = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}.get(
                    f.suffix, "text/html; charset=utf-8")
                self._send(200, text, ctype)

            def do_POST(self) -> None:
                body = self._body()
                server.log.append(Hit("POST", self.path, body))
                self._send(200, "<html><body><h1>Received</h1><p>Thanks.</p></body></html>")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def paths(self, method: str | None = None) -> list[str]:
        return [h.path for h in self.log if method is None or h.method == method]

