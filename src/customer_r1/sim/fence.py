"""The browser backend's network fence: deny by default, checked below the page.

A simulated shopper may only reach the hosts of an :class:`Allowlist` (by default the
loopback shop). Browser agents that check the address bar alone leak through redirects,
and request interception alone misses service workers and WebSockets, so the fence is
layered; each layer would stop traffic the others miss:

1. **Request interception** (``BrowserContext.route`` on every URL): navigations,
   subresources, iframes, fetch/XHR and form posts to a host off the list are aborted
   before they leave the browser.
2. **WebSocket interception** (``BrowserContext.route_web_socket``): a socket to a host
   off the list is closed without connecting; allowed ones are passed through.
3. **Service workers blocked** for every context (they could fetch outside layer 1):
   registration is refused in the page (the context option), and a service worker
   script's own fetch (``Service-Worker: script``) is aborted by layer 1.
4. **Every request observed** (the context's ``request`` event, which also sees the hops
   of a redirect that layer 1 does not): any off-list URL is a violation.
5. **A proxy only the allowed hosts bypass**: each context sends all traffic to a local
   :class:`Blackhole` except the allowed ``host:port``s (Chromium's implicit loopback
   bypass is turned off with ``<-loopback>``). Whatever slips past layers 1-2 (a
   redirect's next hop, a preconnect) reaches only the blackhole, which refuses it and
   records it; the browser as a whole is launched behind its own blackhole too.
6. **Launch flags**: host-resolver rules that resolve only the allowed host names, no
   QUIC, no DNS prefetch, no WebRTC outside the proxy, no background networking.

Any of these seeing an off-list request records a :class:`Violation`. Nothing off the
list is ever sent, but the session goes on: the backend counts a blocked subresource per
host (a CDN's script, fonts, analytics: real sites are full of them) and answers an action
whose navigation, popup or form would leave the list with ``off_allowlist``, the shopper
still on its page. Only a start page that leaves the list ends the session
(``fence_violation``). Addresses that cause no network traffic (``data:``, ``blob:``,
``about:``) are allowed; every other scheme is not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from customer_r1.errors import BadOption

#: Schemes that never reach the network.
NETWORKLESS = ("data", "blob", "about")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class HostRule:
    """One allowed host: an exact name or IP (``*.example.com`` also allows subdomains),
    on one port or (``port`` None) on any."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        if self.port is not None and port != self.port:
            return False
        if self.host.startswith("*."):
            return host == self.host[2:] or host.endswith(self.host[1:])
        return host == self.host

    def chromium(self) -> str:
        """The rule as Chromium's proxy bypass list writes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    def __str__(self) -> str:
        return self.chromium()


def parse_host(text: str, where: str = "--allow") -> HostRule:
    """``HOST``, ``HOST:PORT``, ``[IPV6]:PORT`` or ``*.DOMAIN`` (a URL's host is taken too)."""
    raw = text.strip()
    if "://" in raw:
        u = urlsplit(raw)
        if not u.hostname:
            raise BadOption(f"no host in {text!r}", where,
                            "write HOST or HOST:PORT, e.g. staging.example.com")
        return HostRule(u.hostname.lower(), u.port or _DEFAULT_PORTS.get(u.scheme))
    host, port = raw, None
    if raw.startswith("["):
        end = raw.find("]")
        host, rest = raw[1:end], raw[end + 1:]
        if rest.startswith(":"):
            port = rest[1:]
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    host = host.lower()
    label = host[2:] if host.startswith("*.") else host
    ok = bool(label) and all(c.isalnum() or c in "-._:" for c in label)
    if not ok or "*" in label:
        raise BadOption(f"not a host: {text!r}", where, "write HOST, HOST:PORT or *.DOMAIN")
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise BadOption(f"bad port in {text!r}", where, "a port is 1-65535")
        return HostRule(host, int(port))
    return HostRule(host)


@dataclass(frozen=True, slots=True)
class Allowlist:
    """The hosts a session may reach (see the module doc)."""

    rules: tuple[HostRule, ...]

    @classmethod
    def of(cls, *entries: str | HostRule) -> Allowlist:
        rules = tuple(e if isinstance(e, HostRule) else parse_host(e) for e in entries)
        return cls(tuple(dict.fromkeys(rules)))

    def allows(self, url: str) -> bool:
        """True if a request for ``url`` may be sent."""
        try:
            u = urlsplit(url)
            scheme = u.scheme.lower()
            if scheme in NETWORKLESS:
                return True
            if scheme not in _DEFAULT_PORTS or not u.hostname:
                return False
            port = u.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            return False
        return any(r.matches(u.hostname, port) for r in self.rules)

    def proxy_bypass(self) -> str:
        """Chromium's bypass list: only the allowed hosts, loopback included."""
        return ",".join(["<-loopback>", *(r.chromium() for r in self.rules)])

    def resolver_rules(self) -> str:
        """``--host-resolver-rules``: only the allowed hosts resolve (and 127.0.0.1, where
        the blackhole proxy listens); Chromium applies the rules to IP literals too."""
        hosts = dict.fromkeys([*(r.host for r in self.rules), "127.0.0.1"])
        return ", ".join(["MAP * ~NOTFOUND", *(f"EXCLUDE {h}" for h in hosts)])

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.rules)


def launch_args(allow: Allowlist) -> list[str]:
    """Chromium flags of the fence's layer 6, and those that keep Chromium's own
    background traffic (which the sandboxed machines refuse, many at a time) off."""
    return [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
        "--disable-client-side-phishing-detection", "--no-pings", "--dns-prefetch-disable",
        "--disable-features=DnsOverHttps,NetworkPrediction,OptimizationHints,MediaRouter,"
        "AutofillServerCommunication,InterestFeedContentSuggestions,Translate",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        f"--host-resolver-rules={allow.resolver_rules()}",
    ]


@dataclass(frozen=True, slots=True)
class Violation:
    """A request the fence stopped: where it went, which layer saw it, what it was."""

    url: str
    layer: str
    resource: str = ""
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "layer": self.layer, "resource": self.resource}


class Blackhole:
    """A proxy that lets nothing through: it reads the request line, records the target
    and answers 403 (plain HTTP) or refuses the tunnel (CONNECT, for TLS and sockets).
    Runs on the browser's event loop; ``hits`` are the targets it refused."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode("latin-1").split()
            if len(parts) >= 2:
                target = parts[1]
                self.hits.append(f"https://{target}" if parts[0].upper() == "CONNECT" else target)
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
