"""The shop as a real web application (Starlette, served by uvicorn on 127.0.0.1).

Each visitor (a cookie) has its own :class:`~customer_r1.sim.session.ShopSession`. Pages
are the world renderer's pages made interactive, with every name unchanged: a named link
is a real ``<a href="/go/NAME">`` (GET, then a redirect to the new page), a named button
submits a form (``POST /act`` with ``NAME=1``), a select submits its chosen option's value,
and the search box with its button is a search form (pressing Enter searches; the box
alone, submitted without the button, only types, which shows the autocomplete, as on
the recorder's site). After an action the visitor is redirected to the page's
OPeRA-like address: ``/``, ``/s?k=QUERY``, ``/dp/ASIN``, ``/product-reviews/ASIN``,
``/cart``, ``/stores/BRAND/page``, and a purchase ends the visit on ``/order/ID``, which
records the order. Typing one of those addresses navigates there, as on a real shop.

Every served page embeds, as a JSON data block (``<script type="application/json"
id="recorder">``, never executed), what OPeRA's recorder would have captured: the
simplified page, its URL, kind and names with their click types. The HTTP environment
(``http_env.py``) reads its observation from there, so both environments observe the
identical page.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from customer_r1.actions import Action
from customer_r1.errors import PortInUse
from customer_r1.sim.session import ORDER_KIND, PageView, ShopSession
from customer_r1.world.shop import Effect, ShopState, apply_effect

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from customer_r1.world.generate import World
    from customer_r1.world.variants import SiteVariant

COOKIE = "shop_sid"
RECORDER_ID = "recorder"
_NAMED_TAG = re.compile(r"<(a|button|input|option|select)\b([^>]*?)(/?)>")
_NAME_ATTR = re.compile(r'\sname="([^"]*)"')
_HREF_ATTR = re.compile(r'\shref="[^"]*"')


# --------------------------------------------------------------------------- pages


def canonical_path(session: ShopSession) -> str:
    """The address of the visitor's current page."""
    s = session.state
    if s.ended == "purchase":
        return f"/order/{session.order_id}"
    if s.page == "search":
        return f"/s?k={quote(s.query)}"
    if s.page == "product":
        return f"/dp/{s.product}"
    if s.page == "reviews":
        return f"/product-reviews/{s.product}"
    if s.page == "cart":
        return "/cart"
    if s.page == "store":
        return f"/stores/{quote(s.store_brand)}/page"
    return "/"


def web_html(session: ShopSession, view: PageView, error: tuple[str, str] = ("", "")) -> str:
    """The interactive page: the simplified page with each named element wired to a link
    or a form (names untouched), plus the recorder's JSON block."""
    body = view.html
    if view.kind != ORDER_KIND:
        body = _wire(session, body)
    record = {"view": view.to_dict(), "error_kind": error[0], "error": error[1]}
    data = json.dumps(record, ensure_ascii=False).replace("</", "<\\/")
    block = f'<script type="application/json" id="{RECORDER_ID}">{data}</script>'
    i = body.rfind("</body>")
    return body[:i] + block + body[i:] if i >= 0 else body + block


def _wire(session: ShopSession, html: str) -> str:
    elements = session.page.elements
    selects: list[str] = []
    current_select = ""

    def sub(m: re.Match[str]) -> str:
        nonlocal current_select
        tag, attrs, slash = m.group(1), m.group(2), m.group(3)
        nm = _NAME_ATTR.search(attrs)
        if nm is None:
            return m.group(0)
        name = html_lib.unescape(nm.group(1))
        if tag == "select":
            current_select = name
            selects.append(name)
            form = f"sel-{len(selects) - 1}"
            return f'<select{attrs} form="{form}" onchange="this.form.requestSubmit()"{slash}>'
        el = elements.get(name)
        if el is None:
            return m.group(0)
        if tag == "a":
            href = f' href="/go/{html_lib.escape(quote(name, safe=""))}"'
            return f"<a{_HREF_ATTR.sub('', attrs)}{href}{slash}>"
        if tag == "button":
            form = "search" if el.effect.kind == "search" else "act"
            return f'<button{attrs} type="submit" form="{form}" value="1"{slash}>'
        if tag == "input":
            extra = "" if ' type="' in attrs else ' type="text"'
            return f'<input{attrs}{extra} form="search"{slash}>'
        if tag == "option":
            if ' value="' in attrs or not current_select or not name.startswith(current_select + "."):
                return m.group(0)
            value = name[len(current_select) + 1:]
            return f'<option{attrs} value="{html_lib.escape(value)}"{slash}>'
        return m.group(0)

    out = _NAMED_TAG.sub(sub, html)
    forms = '<form id="act" method="post" action="/act"></form>' \
            '<form id="search" method="post" action="/act"></form>' + "".join(
                f'<form id="sel-{i}" method="post" action="/act"></form>' for i in range(len(selects)))
    i = out.rfind("</body>")
    return out[:i] + forms + out[i:] if i >= 0 else out + forms


def action_of_form(session: ShopSession, fields: list[tuple[str, str]]) -> tuple[Action | None, str]:
    """The action a submitted form stands for, and the text typed with it (a search)."""
    elements = session.page.elements
    typed = ""
    buttons: list[str] = []
    inputs: list[tuple[str, str]] = []
    options: list[str] = []
    for key, value in fields:
        el = elements.get(key)
        if el is not None and el.is_input:
            inputs.append((key, value))
        elif el is not None:
            buttons.append(key)
        elif f"{key}.{value}" in elements:
            options.append(f"{key}.{value}")
    if len(buttons) + len(options) > 1:
        return None, ""
    if buttons:
        typed = inputs[0][1] if inputs else ""
        return Action.click(buttons[0]), typed
    if options:
        return Action.click(options[0]), ""
    if len(inputs) == 1:
        return Action.input(inputs[0][0], inputs[0][1]), ""
    return None, ""


def _navigate(session: ShopSession, path: str, query: dict[str, str]) -> None:
    """Typing an address: move the visitor to that page if it is not already there."""
    s = session.state
    if s.ended or path.startswith("/order/"):
        return
    parts = [p for p in path.split("/") if p]
    target: Effect | None = None
    if not parts:
        target = None if s.page == "home" else Effect("home")
    elif parts[0] == "s":
        k = query.get("k", s.query)
        if s.page != "search" or k != s.query:
            target = session.shop.search_effect(k)
    elif parts[0] == "dp" and len(parts) > 1:
        if s.page != "product" or s.product != parts[1]:
            target = Effect("product", parts[1]) if parts[1] in session.shop.catalog.products else None
    elif parts[0] == "product-reviews" and len(parts) > 1:
        if parts[1] in session.shop.catalog.products and not (s.page == "reviews" and s.product == parts[1]):
            session.state = apply_effect(_on_product(s, parts[1]), Effect("reviews", "top"))
            session._page = None
        return
    elif parts[0] == "cart":
        target = None if s.page == "cart" else Effect("cart")
    if target is not None:
        session.state = apply_effect(s, target)
        session._page = None


def _on_product(s: ShopState, pid: str) -> ShopState:
    from dataclasses import replace

    return s if s.product == pid else replace(s, product=pid, option="", qty=1)


# --------------------------------------------------------------------------- app


class ShopSite:
    """The visitors, the orders and the routes of one served shop."""

    def __init__(self, world: World, variant: SiteVariant | None = None, max_visitors: int = 10_000) -> None:
        self.world = world
        self.variant = variant
        self.max_visitors = max_visitors
        self.visitors: dict[str, ShopSession] = {}
        self.errors: dict[str, tuple[str, str]] = {}
        self.pending: dict[str, PageView] = {}
        self.users: dict[str, str] = {}
        self.orders: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def new_visitor(self, user: str, seed: int, variant: SiteVariant | None,
                    deals: tuple[str, ...] | None = None) -> str:
        sid = secrets.token_urlsafe(12)
        order_id = f"{seed:016x}"[-16:]
        session = ShopSession.start(self.world.shop, self.world.page_size, seed,
                                    self.world.config.deals, variant or self.variant, order_id=order_id,
                                    deals=deals)
        with self._lock:
            while len(self.visitors) >= self.max_visitors:  # forget the oldest visit
                old = next(iter(self.visitors))
                for table in (self.visitors, self.users, self.errors, self.pending):
                    table.pop(old, None)
            self.visitors[sid] = session
            self.users[sid] = user
        return sid

    def act(self, sid: str, action: Action | None, typed: str = "") -> None:
        session = self.visitors[sid]
        if action is None:
            self.errors[sid] = ("malformed", "the request names no single element of this page")
            return
        was_ended = session.ended
        if typed and action.type == "click":
            el = session.page.elements.get(action.name or "")
            if el is not None and el.effect.kind == "search":
                from dataclasses import replace

                session.state = replace(session.state, typed=typed)
                session._page = None
        kind, msg, before = session.act(action)
        self.errors[sid] = (kind, msg)
        if not kind:  # the next page shown describes this action (products, element meta)
            self.pending[sid] = session.view(action, before)
        if not was_ended and session.ended == "purchase":
            with self._lock:
                self.orders.append({"order_id": session.order_id, "user": self.users.get(sid, ""),
                                    "lines": session.order_lines, "time": time.time()})

    def app(self) -> Starlette:
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
        from starlette.routing import Route

        site = self

        def visitor(request: Request) -> str | None:
            sid = request.cookies.get(COOKIE)
            return sid if sid in site.visitors else None

        def redirect(sid: str, fresh: bool = False) -> Response:
            resp = RedirectResponse(canonical_path(site.visitors[sid]), status_code=303)
            if fresh:
                resp.set_cookie(COOKIE, sid, httponly=True, samesite="lax")
            return resp

        async def page(request: Request) -> Response:
            sid = visitor(request)
            fresh = sid is None
            if sid is None:  # a browser arriving without a session: a new visit
                sid = site.new_visitor("anonymous", secrets.randbits(32), None)
            session = site.visitors[sid]
            path = request.url.path
            _navigate(session, path, dict(request.query_params))
            if unquote(canonical_path(session).split("?")[0]) != path:
                return redirect(sid, fresh)
            err = site.errors.pop(sid, ("", ""))
            view = site.pending.pop(sid, None) or session.view()
            resp = HTMLResponse(web_html(session, view, err))
            if fresh:
                resp.set_cookie(COOKIE, sid, httponly=True, samesite="lax")
            return resp

        async def go(request: Request) -> Response:
            sid = visitor(request)
            if sid is None:
                return RedirectResponse("/", status_code=303)
            site.act(sid, Action.click(request.path_params["name"]))
            return redirect(sid)

        async def act(request: Request) -> Response:
            sid = visitor(request)
            if sid is None:
                return RedirectResponse("/", status_code=303)
            form = await request.form()
            action, typed = action_of_form(site.visitors[sid], [(k, str(v)) for k, v in form.multi_items()])
            site.act(sid, action, typed)
            return redirect(sid)

        async def start(request: Request) -> Response:
            body = await request.json()
            variant = None
            if body.get("variant"):
                from customer_r1.world.variants import SiteVariant

                variant = SiteVariant.from_dict(body["variant"])
            deals = tuple(str(d) for d in body["deals"]) if body.get("deals") else None
            try:
                sid = site.new_visitor(str(body.get("user", "")), int(body["seed"]), variant, deals)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return redirect(sid, fresh=True)

        async def leave(request: Request) -> Response:
            sid = visitor(request)
            if sid is not None:
                with site._lock:
                    site.visitors.pop(sid, None)
                    site.users.pop(sid, None)
                    site.errors.pop(sid, None)
                    site.pending.pop(sid, None)
            return JSONResponse({"left": sid is not None})

        async def orders(request: Request) -> Response:
            return JSONResponse({"orders": site.orders})

        async def health(request: Request) -> Response:
            return JSONResponse({"ok": True, "visitors": len(site.visitors)})

        routes = [
            Route("/", page), Route("/s", page), Route("/dp/{asin}", page),
            Route("/product-reviews/{asin}", page), Route("/cart", page),
            Route("/stores/{brand}/page", page), Route("/order/{oid}", page),
            Route("/go/{name:path}", go), Route("/act", act, methods=["POST"]),
            Route("/_sim/start", start, methods=["POST"]), Route("/_sim/leave", leave, methods=["POST"]),
            Route("/_sim/orders", orders), Route("/_sim/health", health),
        ]
        return Starlette(routes=routes)


def create_app(world: World, variant: SiteVariant | None = None) -> Starlette:
    """The ASGI app of the shop (see the module doc)."""
    return ShopSite(world, variant).app()


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Raise :class:`PortInUse` if ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"port {port} is busy", f"{host}:{port}",
                            "stop what is using it or pass --port with another number") from exc


@contextmanager
def serve_in_thread(app: Any, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL (loopback)."""
    import uvicorn

    if port:
        check_port(port, host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the shop server did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
