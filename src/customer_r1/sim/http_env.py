"""The shop behind HTTP: a ``ShopEnv`` backend that drives the web app of ``site.py``.

Each action is done the way a browser would do it on the served page: a named link is
followed (GET its ``href``), a named button submits its form, an option submits its
select's form with the option's value, typing submits the search box without pressing
search. The element is looked up in the *served* HTML, so a page whose named element is
not a real link or form fails here. The observation is read from the page's recorder
block; the actions are validated with the same function as in process before anything is
sent, so both backends refuse the same actions with the same words.

Only the shop's own origin is ever requested: the base URL is fixed at construction and
every href followed must be a path on it (model output never becomes a URL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import html as html_lib
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlparse

from customer_r1.actions import Action
from customer_r1.errors import EndpointUnreachable
from customer_r1.sim.session import PageView, validate
from customer_r1.sim.site import RECORDER_ID

if TYPE_CHECKING:
    import httpx

    from customer_r1.world.variants import SiteVariant

_RECORDER = re.compile(r'<script type="application/json" id="' + RECORDER_ID + r'">(.*?)</script>', re.S)
_ATTR = re.compile(r'\s([a-zA-Z-]+)="([^"]*)"')


class HttpShop:
    """One visitor of a served shop (its own cookie jar); see the module doc."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, client: httpx.Client | None = None) -> None:
        import httpx

        self.base = base_url.rstrip("/")
        origin = urlparse(self.base)
        if origin.scheme not in ("http", "https") or not origin.netloc:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self._origin = (origin.scheme, origin.netloc)
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.html = ""
        self.view: PageView | None = None

    # ----------------------------------------------------------------- requests

    def _url(self, path: str) -> str:
        url = urljoin(self.base + "/", path)
        u = urlparse(url)
        if (u.scheme, u.netloc) != self._origin:  # never leave the shop
            raise ValueError(f"refusing to request {url}: not on {self.base}")
        return url

    def _send(self, method: str, path: str, **kw: Any) -> tuple[PageView, str, str]:
        import httpx

        try:
            resp = self.client.request(method, self._url(path), **kw)
            for _ in range(5):  # follow the shop's own redirects, on the shop only
                if resp.status_code not in (301, 302, 303, 307, 308):
                    break
                resp = self.client.get(self._url(resp.headers["location"]))
        except httpx.TransportError as exc:
            raise EndpointUnreachable(f"the shop does not answer: {exc}", self.base,
                                      "start it with `customer-r1 sim serve --world DIR`") from exc
        resp.raise_for_status()
        self.html = resp.text
        m = _RECORDER.search(self.html)
        if m is None:
            raise RuntimeError(f"{resp.url} has no recorder block: not a customer-r1 shop page")
        record = json.loads(m.group(1))
        self.view = PageView.from_dict(record["view"])
        return self.view, record.get("error_kind", ""), record.get("error", "")

    # ----------------------------------------------------------------- backend

    def start(self, user: str, seed: int, variant: SiteVariant | None,
              deals: tuple[str, ...] | None = None) -> PageView:
        body = {"user": user, "seed": seed, "variant": variant.to_dict() if variant is not None else None,
                "deals": list(deals) if deals is not None else None}
        self.client.cookies.clear()
        view, _, _ = self._send("POST", "/_sim/start", json=body)
        return view

    def act(self, action: Action) -> tuple[PageView, str, str]:
        assert self.view is not None, "start() first"
        kind, msg = validate(action, self.view.elements, bool(self.view.ended))
        if kind:
            return self.view, kind, msg
        same = dataclasses.replace(self.view, products=None, element_meta=None)
        if action.type == "terminate":
            return same, "", ""
        name = action.name or ""
        tag, attrs, select = self._find(name)
        if action.type == "input":
            return self._send("POST", "/act", data={name: action.text or ""})
        if tag == "input":  # clicking a text field focuses it: no request
            return same, "", ""
        if tag == "a":
            return self._send("GET", html_lib.unescape(attrs["href"]))
        if tag == "button":
            data = {name: attrs.get("value", "1")}
            if attrs.get("form") == "search":  # the search form also sends the box's text
                data.update(self._search_fields())
            return self._send("POST", "/act", data=data)
        if tag == "option" and select:
            return self._send("POST", "/act", data={select: html_lib.unescape(attrs.get("value", ""))})
        raise RuntimeError(f"{name!r} is on the page but is neither a link nor part of a form")

    def leave(self) -> None:
        if self.view is not None and not self.view.ended:
            # Leaving frees the server's memory of this visitor; if the request fails the
            # server evicts it later (it keeps a bounded number of visitors).
            with contextlib.suppress(Exception):
                self.client.post(self._url("/_sim/leave"))

    def close(self) -> None:
        self.client.close()

    # ----------------------------------------------------------------- served HTML

    def _find(self, name: str) -> tuple[str, dict[str, str], str]:
        """(tag, attributes, enclosing select's name) of the element named ``name``."""
        esc = re.escape(html_lib.escape(name, quote=True))
        m = re.search(r'<(a|button|input|option)\b([^>]*\sname="' + esc + r'"[^>]*)>', self.html)
        if m is None:
            raise RuntimeError(f"{name!r} is in the recorder's names but not in the served page")
        attrs = dict(_ATTR.findall(m.group(2)))
        select = ""
        if m.group(1) == "option":
            opens = list(re.finditer(r'<select\b[^>]*\sname="([^"]*)"', self.html[: m.start()]))
            select = html_lib.unescape(opens[-1].group(1)) if opens else ""
        return m.group(1), attrs, select

    def _search_fields(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for m in re.finditer(r'<input\b([^>]*)>', self.html):
            attrs = dict(_ATTR.findall(m.group(1)))
            if attrs.get("form") == "search" and "name" in attrs:
                out[html_lib.unescape(attrs["name"])] = html_lib.unescape(attrs.get("value", ""))
        return out
