"""The browser backend: simulated shoppers in headless Chromium, fenced at the network layer.

:class:`BrowserShop` is a ``ShopEnv`` backend like the in-process and HTTP shops (``start``
/ ``act`` returning :class:`~customer_r1.sim.session.PageView`s), so ``ShopEnv`` and the
runner are reused unchanged and :class:`BrowserEnv` is ``ShopEnv`` over it. Actions are
real input events on the element the in-page simplifier (``simplify.js``) gave that name:
it is scrolled into view and checked as a person would find it (visible, enabled, the
element at its centre is itself, not an overlay), then clicked with the mouse at that
point (Playwright's own click, slower, inside iframes), typed into (focused, its text
replaced by Chromium's text input) or, for an option, chosen in its select. After each
action the page is given until the step timeout to navigate and load (and, on other
sites, for its network to go quiet; a page still loading then is stopped). Problems of
the page (the element is gone, disabled or covered, the page does not settle) are
reported in ``last_action_error``, never raised.

Two kinds of sites:

* **our shop** (``shop_url``: ``sim serve``, started for the run on loopback): the
  observation is the page's recorder block, so the HTML is byte-identical to the in-process
  shop's and to training prompts, and the world's own policy (which reads the shop's state
  from it) runs through the browser. The simplifier still runs on every page, in its
  *declared* mode (the page's recorder names are kept), to find the elements to act on,
  and its names are checked against the recorder's (``stats['name_mismatches']``).
* **any other site** (``start_url`` on an allowlisted host): the observation is the
  simplifier's output (repeated items named by their title), its kind comes from
  ``pagekind.classify`` (the user's ``--page-kinds`` rules first) and a cart page's
  lines are read into ``page_meta`` (best effort); the no-checkout rule
  (``checkout.py``) ends a session at a purchase intent and refuses typing into
  personal or payment fields. Each start and action notes the site's health in the step
  info (``health``: the page's status, 4xx/5xx answers, JavaScript errors, load time,
  hosts blocked), which ``health.py`` sums for the manifest and the report.

The fence (``fence.py``) never lets a request off the allowlist out, but only a start
page that leaves the list ends a session: a blocked subresource is counted per host, and
an action whose navigation, popup or form would leave the list returns ``off_allowlist``
(checked on the link or form before the click, and below the page after it; the page
goes back if an error page was shown).

One :class:`Browser` owns one Chromium (the distribution's, found on ``PATH``: no
browser is downloaded) and an asyncio loop in a background thread; the sync backend
calls into it, so K sessions are K contexts of one browser, stepped from K threads.
Each session gets a fresh context (cookies and storage start empty), fenced as
``fence.py`` describes. If the page or the browser crashes, the backend raises
:class:`~customer_r1.sim.env.BackendCrashed`; the runner restarts what died and reruns
the session from its seed.

Model output is data here: an action names an element of the page (looked up in the
page's own table, passed to a fixed function as an argument) or is text typed into a
field; it never becomes a URL or code run in the page.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import html as html_lib
import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from customer_r1.actions import Action
from customer_r1.errors import BadOption, UserError
from customer_r1.sim.checkout import intent_click_type, purchase_intent, sensitive_field, unsafe_request
from customer_r1.sim.env import BackendCrashed, EnvConfig, ShopEnv
from customer_r1.sim.fence import Allowlist, Blackhole, Violation, launch_args, parse_host
from customer_r1.sim.pagekind import PageKinds, cart_meta, classify
from customer_r1.sim.session import PageView, validate
from customer_r1.sim.site import COOKIE, RECORDER_ID

if TYPE_CHECKING:
    from playwright.async_api import Browser as PwBrowser
    from playwright.async_api import (
        BrowserContext,
        Frame,
        Page,
        Request,
        Route,
        WebSocketRoute,
    )

    from customer_r1.world.generate import World
    from customer_r1.world.variants import SiteVariant

#: Invalid-action kinds only the browser reports (besides session.ERROR_KINDS).
BROWSER_ERROR_KINDS = ("element_gone", "not_clickable", "timeout", "sensitive_field", "navigation_error",
                       "off_allowlist", "fence_violation")
#: At most this many blocked requests are kept per step in the trace (all are counted).
_MAX_LOGGED = 20
CHROMIUM_ENV = "CUSTOMER_R1_CHROMIUM"
INSTALL_HINT = "install the distribution's Chromium: sudo apt-get install -y chromium (or run `make browser`)"
_SIMPLIFY = "o => window.__cr1 ? window.__cr1.simplify(o) : null"
_PREPARE = "([n, op, f]) => window.__cr1 ? window.__cr1.prepare(n, op, f) : null"
_READ_RECORDER = (f"() => {{ const s = document.getElementById({RECORDER_ID!r}); "
                  "return s ? s.textContent : null; }")
_FRAME_MARK = re.compile(r"<!--cr1-frame:\d+-->")


class BrowserMissing(UserError):
    """No Chromium to drive (the browser backend uses the system's, never a download)."""


def simplifier_source() -> str:
    """The in-page simplifier (``simplify.js``, shipped with the package)."""
    return resources.files("customer_r1.sim").joinpath("simplify.js").read_text(encoding="utf-8")


def find_chromium() -> str:
    """The Chromium executable: ``$CUSTOMER_R1_CHROMIUM`` or ``chromium`` on ``PATH``."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            raise BrowserMissing(f"{given} is not an executable", CHROMIUM_ENV, INSTALL_HINT)
        return given
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise BrowserMissing("Chromium is not installed (no `chromium` on PATH)", "--backend browser",
                         INSTALL_HINT)


def mask_url(url: str) -> str:
    """OPeRA's URL form: the query replaced by ``?URL_MASKED``, no fragment."""
    u = urlsplit(url)
    return urlunsplit((u.scheme, u.netloc, u.path, "URL_MASKED" if u.query else "", ""))


@dataclass(frozen=True, slots=True)
class BrowserConfig:
    """Settings of the browser backend. ``quiet_ms``: how long the network must be idle
    after an action on another site (None: 0 on our shop, whose pages have no scripts
    that fetch, 150 elsewhere); ``screenshots``: a PNG of every page into the step info;
    ``page_source``: on our shop, the observation's HTML is the recorder block's
    (``recorder``, the default: byte-identical to training prompts) or the in-page
    simplifier's (``simplifier``: what the model would see on any other site);
    ``page_kinds``: on other sites, the user's URL -> kind rules, tried before
    ``pagekind.classify``'s own."""

    step_timeout_s: float = 10.0
    screenshots: bool = False
    page_source: str = "recorder"
    quiet_ms: int | None = None
    viewport: tuple[int, int] = (1280, 800)
    page_kinds: PageKinds | None = None  # the user's URL rules (``--page-kinds``), before the classifier

    def __post_init__(self) -> None:
        if self.step_timeout_s <= 0:
            raise BadOption(f"the step timeout must be > 0, got {self.step_timeout_s}", "--step-timeout")
        if self.page_source not in ("recorder", "simplifier"):
            raise ValueError(f"page_source must be recorder or simplifier, got {self.page_source!r}")


class Browser:
    """One headless Chromium and the event loop that drives it (see the module doc).

    Thread-safe: any thread may :meth:`call` a coroutine; :meth:`ensure` restarts a
    browser that died (once, however many sessions notice)."""

    def __init__(self, allow: Allowlist, *, executable: str | None = None,
                 launch_timeout_s: float = 60) -> None:
        self.allow = allow
        self.executable = executable or find_chromium()
        self.launch_timeout_s = launch_timeout_s
        self.generation = 0
        self.restarts = 0
        self._pw: Any = None
        self._browser: PwBrowser | None = None
        self._blackhole = Blackhole()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="customer-r1-browser",
                                        daemon=True)
        self._thread.start()
        try:
            self.call(self._launch(), timeout=launch_timeout_s + 30)
        except BaseException:
            self.close()
            raise

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        """Run ``coro`` on the browser's loop and wait for its result."""
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    async def _launch(self) -> None:
        from playwright.async_api import Error as PwError
        from playwright.async_api import async_playwright

        if self._pw is None:
            self._pw = await async_playwright().start()
        if not self._blackhole.port:
            await self._blackhole.start()
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=self.executable, headless=True, args=launch_args(self.allow),
                proxy={"server": f"http://127.0.0.1:{self._blackhole.port}",
                       "bypass": self.allow.proxy_bypass()},
                timeout=self.launch_timeout_s * 1000, handle_sigint=False, handle_sigterm=False,
                handle_sighup=False)
        except PwError as exc:
            raise BrowserMissing(f"Chromium at {self.executable} does not start: {str(exc).splitlines()[0]}",
                                 "--backend browser", INSTALL_HINT) from exc
        self.generation += 1

    @property
    def connected(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    @property
    def version(self) -> str:
        return self._browser.version if self._browser is not None else ""

    @property
    def blocked(self) -> list[str]:
        """What Chromium itself (outside any session's context) tried to reach off the
        allowlist: refused by the browser-wide blackhole proxy."""
        return list(self._blackhole.hits)

    def ensure(self) -> int:
        """Restart the browser if it is down; the current generation."""
        with self._lock:
            if not self.connected:
                self.call(self._relaunch(), timeout=self.launch_timeout_s + 30)
                self.restarts += 1
            return self.generation

    async def _relaunch(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
        await self._launch()

    async def new_context(self, **kw: Any) -> BrowserContext:
        assert self._browser is not None
        return await self._browser.new_context(**kw)

    async def crash(self) -> None:
        """Crash the whole browser (tests of recovery): Chromium's own crash command."""
        assert self._browser is not None
        cdp = await self._browser.new_browser_cdp_session()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cdp.send("Browser.crash"), 5)

    def close(self) -> None:
        async def shutdown() -> None:
            if self._browser is not None:
                with contextlib.suppress(Exception):
                    await self._browser.close()
            if self._pw is not None:
                with contextlib.suppress(Exception):
                    await self._pw.stop()
            await self._blackhole.stop()

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self.call(shutdown(), timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Simplified:
    html: str
    elements: dict[str, dict[str, Any]]  # name -> {kind, tag, type}
    frames: dict[str, Frame]  # name -> frame holding it
    title: str
    facts: dict[str, Any] | None = None  # what the page-kind classifier reads (other sites)


class BrowserShop:
    """One visitor at a time in a Chromium context (see the module doc)."""

    #: The runner steps the sessions of this backend from threads (each step waits on the browser).
    parallel = True

    def __init__(self, browser: Browser, *, shop_url: str | None = None, start_url: str | None = None,
                 config: BrowserConfig | None = None, allow: Allowlist | None = None,
                 intercept: bool = True) -> None:
        if (shop_url is None) == (start_url is None):
            raise ValueError("give exactly one of shop_url (our shop) or start_url (another site)")
        self.browser = browser
        self.config = config or BrowserConfig()
        self.allow = allow or browser.allow
        self.mode = "shop" if shop_url is not None else "site"
        self.base = (shop_url or "").rstrip("/")
        self.start_url = start_url or ""
        target = self.base + "/" if self.mode == "shop" else self.start_url
        if urlsplit(target).scheme not in ("http", "https"):
            raise BadOption(f"not an http(s) address: {target}", "--start-url" if start_url else "--shop-url")
        if not self.allow.allows(target):
            raise BadOption(f"{target} is not on the allowlist ({self.allow})", "--allow",
                            f"add --allow {urlsplit(target).netloc}")
        self.intercept = intercept  # False only in tests: the layers below interception alone
        self.quiet_s = (self.config.quiet_ms if self.config.quiet_ms is not None
                        else (0 if self.mode == "shop" else 150)) / 1000
        self.view: PageView | None = None
        self.stats: Counter[str] = Counter()
        self.last_names: tuple[set[str], set[str]] = (set(), set())  # (simplifier's, recorder's)
        self._ctx: BrowserContext | None = None
        self._page: Page | None = None
        self._blackhole = Blackhole()
        self._hits_seen = 0
        self._violations: list[Violation] = []  # blocked this step (the trace keeps the first ones)
        self._blocked: dict[str, set[str]] = {}  # host -> distinct URLs blocked this step
        self._offlist_nav: list[str] = []  # top-level navigations off the list this step
        self._opener: Page | None = None  # the page a popup replaced, until the popup is judged
        self._health: dict[str, Any] = {}  # what the site did this step (site mode): status, errors
        self._last_cart: list[dict[str, str]] = []  # the basket as the cart page last showed it
        self._intent: tuple[str, str] = ("", "")
        self._crashed = False
        self._simplified: _Simplified | None = None
        self._info: dict[str, Any] = {}
        self._inflight: dict[Any, float] = {}
        self._last_net = 0.0
        self._mark = self._nav_at = self._load_at = 0.0  # action start, main-frame navigation, load
        self._tasks: set[asyncio.Future[Any]] = set()  # kept alive until the context closes
        self._http: Any = None  # httpx.AsyncClient for our shop's start call

    # ------------------------------------------------------------------ backend API (sync)

    def start(self, user: str, seed: int, variant: SiteVariant | None,
              deals: tuple[str, ...] | None = None) -> PageView:
        body = {"user": user, "seed": seed, "variant": variant.to_dict() if variant is not None else None,
                "deals": list(deals) if deals is not None else None}
        self.view = self._run(self._start(body))
        return self.view

    def act(self, action: Action) -> tuple[PageView, str, str]:
        from playwright.async_api import Error as PwError

        assert self.view is not None, "start() first"
        try:
            view, kind, msg = self._run(self._act(action))
        except PwError as exc:  # the page moved under the action (a crash is raised by _run)
            return self.view, "navigation_error", f"the page changed during the action: {_first_line(exc)}"
        self.view = view
        return view, kind, msg

    def leave(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._close_context(), timeout=30)

    def close(self) -> None:
        self.leave()

        async def stop() -> None:
            await self._blackhole.stop()
            if self._http is not None:
                await self._http.aclose()

        with contextlib.suppress(Exception):
            self.browser.call(stop(), timeout=10)

    def extra_info(self) -> dict[str, Any]:
        """What the last start or action noted beyond the page (taken once): the
        screenshot, fence violations, a purchase intent, a name mismatch."""
        info, self._info = self._info, {}
        return info

    def recover(self) -> None:
        """After a crash: close what is left of the session's context, restart the browser
        if it died."""
        with contextlib.suppress(Exception):
            self.browser.call(self._close_context(), timeout=15)
        self._ctx = self._page = None
        self._crashed = False
        self.browser.ensure()

    def crash_page(self) -> None:
        """Crash this session's page (tests of recovery)."""
        async def crash() -> None:
            assert self._ctx is not None and self._page is not None
            cdp = await self._ctx.new_cdp_session(self._page)
            sent = asyncio.ensure_future(cdp.send("Page.crash"))  # never answered: the page is gone
            for _ in range(250):
                if self._crashed:
                    break
                await asyncio.sleep(0.02)
            sent.cancel()

        self.browser.call(crash(), timeout=30)

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        from playwright.async_api import Error as PwError

        limit = timeout if timeout is not None else 4 * self.config.step_timeout_s + 30
        try:
            return self.browser.call(coro, timeout=limit)
        except concurrent.futures.TimeoutError as exc:
            self._crashed = True
            raise BackendCrashed(f"the browser did not answer within {limit:.0f} s") from exc
        except PwError as exc:
            if self._is_crash(exc):
                raise BackendCrashed(f"the browser crashed: {str(exc).splitlines()[0]}") from exc
            raise

    def _is_crash(self, exc: BaseException) -> bool:
        text = str(exc)
        return (self._crashed or not self.browser.connected or "crash" in text.lower()
                or "has been closed" in text or "Target closed" in text)

    # ------------------------------------------------------------------ context and fence

    async def _close_context(self) -> None:
        ctx, self._ctx, self._page = self._ctx, None, None
        self._tasks.clear()
        if ctx is not None:
            with contextlib.suppress(Exception):
                await ctx.close()

    async def _fresh_context(self) -> None:
        await self._close_context()
        if not self._blackhole.port:
            await self._blackhole.start()
        self._hits_seen = len(self._blackhole.hits)
        self._violations, self._intent, self._crashed = [], ("", ""), False
        self._blocked, self._offlist_nav, self._opener, self._health = {}, [], None, {}
        self._last_cart = []
        self._inflight.clear()
        w, h = self.config.viewport
        ctx = await self.browser.new_context(
            proxy={"server": f"http://127.0.0.1:{self._blackhole.port}", "bypass": self.allow.proxy_bypass()},
            service_workers="block", accept_downloads=False, viewport={"width": w, "height": h},
            locale="en-US", timezone_id="UTC")
        ctx.set_default_timeout(self.config.step_timeout_s * 1000)
        ctx.set_default_navigation_timeout(self.config.step_timeout_s * 1000)
        await ctx.add_init_script(script=simplifier_source())
        if self.intercept:
            await ctx.route("**/*", self._route)
            await ctx.route_web_socket(re.compile(r".*"), self._route_ws)
        ctx.on("request", self._on_request)
        ctx.on("requestfinished", self._on_request_done)
        ctx.on("requestfailed", self._on_request_done)
        ctx.on("page", self._on_page)
        ctx.on("response", self._on_response)
        self._ctx = ctx
        self._page = await ctx.new_page()

    def _violate(self, url: str, layer: str, resource: str, navigation: bool = False) -> None:
        """Note a request the fence stopped: a top-level navigation (the action that
        started it gets ``off_allowlist``) or a subresource (counted per host; the page
        goes on without it)."""
        if len(self._violations) < _MAX_LOGGED:
            self._violations.append(Violation(url, layer, resource))
        if navigation and url not in self._offlist_nav:
            self._offlist_nav.append(url)
        self._blocked.setdefault(_host_of(url), set()).add(url)

    @staticmethod
    def _top_navigation(request: Request) -> bool:
        """A navigation of a page's own frame (the page itself, a popup, a form sent to
        another page), not an iframe's."""
        try:
            if not request.is_navigation_request():
                return False
        except Exception:
            return False
        try:
            return request.frame.parent_frame is None
        except Exception:  # a popup's first navigation comes before its frame exists
            return True

    async def _route(self, route: Route, request: Request) -> None:
        url = request.url
        if not self.allow.allows(url):  # layer 1: nothing off the list leaves
            self._violate(url, "route", request.resource_type, self._top_navigation(request))
            await route.abort("blockedbyclient")
            return
        if request.headers.get("service-worker") == "script":  # layer 3, again below the page
            self.stats["service_workers_blocked"] += 1
            await route.abort("blockedbyclient")
            return
        if self.mode == "site":  # the no-checkout backstop, below the page
            try:
                body = request.post_data
            except Exception:  # a binary body
                body = None
            intent, why = unsafe_request(request.method, url, body)
            if intent:
                if not self._intent[0]:
                    self._intent = (intent, why)
                await route.abort("blockedbyclient")
                return
        await route.fallback()

    async def _route_ws(self, ws: WebSocketRoute) -> None:
        if not self.allow.allows(ws.url):  # layer 2
            self._violate(ws.url, "websocket", "websocket")
            await ws.close(code=1008, reason="blocked by the simulator's fence")
            return
        ws.connect_to_server()

    def _on_request(self, request: Request) -> None:
        self._inflight[request] = self._last_net = time.monotonic()
        if self._page is not None and request.is_navigation_request():
            with contextlib.suppress(Exception):  # a worker's request has no frame
                if request.frame == self._page.main_frame:
                    self._nav_at = self._last_net
        if not self.allow.allows(request.url):  # layer 4: also the hops of redirects
            self._violate(request.url, "request", request.resource_type, self._top_navigation(request))

    def _on_request_done(self, request: Request) -> None:
        self._inflight.pop(request, None)
        self._last_net = time.monotonic()
        if request.failure is not None and request.is_navigation_request():
            self._load_at = self._last_net  # a navigation that failed (blocked) loads nothing more

    def _on_page(self, page: Page) -> None:
        page.on("crash", self._on_crash)
        page.on("load", self._on_load)
        page.on("pageerror", self._on_page_error)
        page.on("dialog", lambda d: self._tasks.add(asyncio.ensure_future(d.dismiss())))
        if self._page is not None and page is not self._page:  # a popup: the shopper follows it
            old, self._page = self._page, page  # (back to the opener if it leaves the list)
            if self._opener is None:
                self._opener = old
            else:
                self._tasks.add(asyncio.ensure_future(old.close()))

    def _on_page_error(self, error: Any) -> None:
        if self.mode == "site":
            errs = self._health.setdefault("js_errors", [])
            if len(errs) < 10:
                errs.append(_first_line(error))

    def _on_response(self, response: Any) -> None:
        """What the site answered (site mode): the page's status, and 4xx/5xx of anything."""
        if self.mode != "site":
            return
        status = response.status
        url = response.url
        if not self.allow.allows(url):
            return  # the blackhole's refusal (interception off), not the site's answer
        with contextlib.suppress(Exception):
            req = response.request
            if self._page is not None and req.is_navigation_request() and req.frame == self._page.main_frame:
                self._health["status"] = status
        if status >= 400:
            errs = self._health.setdefault("http_errors", [])
            if len(errs) < 20:
                errs.append({"status": status, "url": url[:300], "resource": response.request.resource_type})

    def _on_crash(self, page: Page) -> None:
        self._crashed = True

    def _on_load(self, page: Page) -> None:
        if page is self._page:
            self._load_at = time.monotonic()

    def _fence_check(self) -> list[Violation]:
        hits = self._blackhole.hits[self._hits_seen:]
        self._hits_seen += len(hits)
        for h in hits:  # layer 5: whatever reached the blackhole proxy
            # a page's own address here is a navigation (interception off, or a redirect hop)
            nav = self._page is not None and _same_target(h, self._page.url)
            self._violate(h, "proxy", "", nav or h in self._offlist_nav)
        return self._violations

    def _begin_step(self) -> None:
        """Forget what the fence and the site did before this start or action."""
        self._fence_check()
        self._violations, self._blocked, self._offlist_nav = [], {}, []
        self._health = {}

    def _end_step(self, t0: float) -> None:
        """Note what the fence blocked this step (the trace's ``fence``: the first requests
        with their layers; ``health``: blocked hosts, the page's status, errors, load time)."""
        self._fence_check()
        if self._violations:
            self._info["fence"] = [x.to_dict() for x in self._violations]
        if self._blocked:
            self.stats["blocked_requests"] += sum(len(u) for u in self._blocked.values())
        if self.mode == "site":
            health = dict(self._health)
            if self._page is not None:
                health["url"] = mask_url(self._page.url)
            health["load_ms"] = int(1000 * (time.perf_counter() - t0))
            if self._blocked:
                health["blocked"] = {h: len(u) for h, u in sorted(self._blocked.items())}
            self._info["health"] = health

    def _off_message(self) -> str:
        url = self._offlist_nav[0]
        host = _host_of(url)
        return (f"off_allowlist: {url[:160]} is not on the allowlist ({self.allow}), so it was not "
                f"loaded; the shopper stays on this page (to let shoppers go there: --allow {host})")

    def _fence_message(self) -> str:
        v = self._violations
        urls = list(dict.fromkeys(x.url for x in v)) or list(self._offlist_nav) or [self.start_url]
        layers = sorted({x.layer for x in v}) or ["navigation"]
        more = f" and {len(urls) - 1} more" if len(urls) > 1 else ""
        return (f"fence violation: the start page led to {urls[0][:160]}{more}, which is not on the "
                f"allowlist ({self.allow}); blocked ({', '.join(layers)}); the session ends")

    async def _judge_popup(self) -> None:
        """A popup opened by the last action: followed if it shows a page on the list,
        else closed (the shopper stays on the page that opened it)."""
        opener, self._opener = self._opener, None
        if opener is None or self._page is None:
            return
        popup = self._page
        url = popup.url
        ok = self.allow.allows(url) and not url.startswith(("about:", "chrome-error:")) and \
            not self._offlist_nav
        if ok:
            self._tasks.add(asyncio.ensure_future(opener.close()))
            return
        self._page = opener
        self._tasks.add(asyncio.ensure_future(popup.close()))
        if not self._offlist_nav and urlsplit(url).scheme in ("http", "https"):
            self._offlist_nav.append(url)

    async def _back_on_the_list(self, before: str) -> None:
        """After a navigation off the list was stopped: if the page shows an error page
        (or, with interception off, the blackhole's refusal), go back to ``before``."""
        page = self._page
        assert page is not None
        url = page.url
        if self.allow.allows(url) and not url.startswith("chrome-error:"):
            return
        from playwright.async_api import Error as PwError

        with contextlib.suppress(PwError):
            await page.go_back(wait_until="load")
        if (not self.allow.allows(page.url) or page.url.startswith("chrome-error:")) and before:
            with contextlib.suppress(PwError):
                await page.goto(before, wait_until="load")

    # ------------------------------------------------------------------ start and act

    async def _start(self, body: dict[str, Any]) -> PageView:
        await self._fresh_context()
        assert self._ctx is not None and self._page is not None
        self._begin_step()
        t0 = time.perf_counter()
        if self.mode == "shop":  # the simulator's own call: a visit with this seed (a cookie)
            sid, location = await self._shop_visit(body)
            u = urlsplit(self.base)
            await self._ctx.add_cookies([{"name": COOKIE, "value": sid, "domain": u.hostname or "",
                                          "path": "/", "httpOnly": True, "sameSite": "Lax"}])
            await self._goto(urljoin(self.base + "/", location))
        else:
            self._mark = mark = time.monotonic()
            await self._goto(self.start_url)
            await self._settle(mark)  # what the first page fetches as it loads, before it is read
            await self._judge_popup()
        view, _ = await self._observe()
        self._fence_check()
        if self._offlist_nav:  # the start page itself went off the list: nothing to shop on
            self._info["message"] = self._fence_message()
            self._end_step(t0)
            self.stats["fence_violations"] += 1
            return dataclasses.replace(view, ended="fence_violation")
        self._end_step(t0)
        return view

    async def _goto(self, url: str) -> None:
        from playwright.async_api import Error as PwError

        assert self._page is not None
        if not self.allow.allows(url):
            self._violate(url, "navigation", "document", navigation=True)
            return
        try:
            await self._page.goto(url, wait_until="load")
        except PwError as exc:
            if self._is_crash(exc):
                raise
            if not self._offlist_nav:  # rerun by the runner, as a crash is
                raise BackendCrashed(f"{url} did not load: {_first_line(exc)}") from exc

    async def _act(self, action: Action) -> tuple[PageView, str, str]:
        from playwright.async_api import Error as PwError
        from playwright.async_api import TimeoutError as PwTimeout

        view, page, simp = self.view, self._page, self._simplified
        assert view is not None and page is not None
        kind, msg = validate(action, view.elements, bool(view.ended))
        if kind:
            return view, kind, msg
        same = dataclasses.replace(view, products=None, element_meta=None)
        if action.type == "terminate":
            return same, "", ""
        name = action.name or ""
        frame = simp.frames.get(name) if simp is not None else None
        if simp is None or frame is None or frame.is_detached():
            return view, "element_gone", f"{name!r} is no longer on the page"
        tag = simp.elements[name].get("tag", "")
        op = "type" if action.type == "input" else "choose" if tag == "option" else "click"
        # 1. can a person do it (visible, enabled, not covered)? nothing happens yet
        try:
            prep = await frame.evaluate(_PREPARE, [name, op, self.mode == "site"])
        except PwError as exc:
            if self._is_crash(exc):
                raise
            return view, "element_gone", f"{name!r}: the page changed before it could be used"
        if prep is None:
            return view, "element_gone", f"{name!r} is no longer on the page"
        if prep.get("error"):
            return view, prep["error"], prep["why"]
        # 2. on other sites: nothing irreversible, nothing personal
        if self.mode == "site":
            facts = prep.get("facts") or {}
            if op == "type":
                what = sensitive_field(facts.get("field"))
                if what:
                    return view, "sensitive_field", (
                        f"typing into {name!r} is refused: it asks for {what} data, which a simulated "
                        "shopper never enters")
            else:
                intent, why = purchase_intent(facts)
                if intent:
                    return self._purchase_intent(same, intent, f"clicking {name!r}: {why}")
                away = _leads_off(facts, self.allow) if self.intercept else ""
                if away:  # a link or form to another site: not followed (checked again below the page)
                    self._offlist_nav = [away]
                    self.stats["off_allowlist"] += 1
                    return view, "off_allowlist", self._off_message()
        # 3. do it, with real input events, and wait for what it starts
        self._begin_step()
        before_url = page.url
        t0 = time.perf_counter()
        mark = time.monotonic()
        self._mark = mark
        navigates = self.mode == "shop" and (op != "click" or tag in ("a", "button"))
        error = ("", "")
        try:
            async with (page.expect_navigation(wait_until="load") if navigates
                        else contextlib.nullcontext()):
                if op == "type":
                    await frame.evaluate("n => window.__cr1.focusField(n)", name)
                    if action.text:
                        await page.keyboard.insert_text(action.text)
                    else:
                        await page.keyboard.press("Delete")
                    if self.mode == "shop":  # the shop's typing: its search form sent without the button
                        await frame.evaluate("n => window.__cr1.submitField(n)", name)
                elif op == "choose":
                    await frame.evaluate("n => window.__cr1.choose(n)", name)
                elif frame == page.main_frame:
                    await page.mouse.click(prep["x"], prep["y"])
                else:  # inside an iframe: Playwright finds the point across frames
                    handle = await frame.evaluate_handle("n => window.__cr1.get(n)", name)
                    el = handle.as_element()
                    if el is None:
                        return view, "element_gone", f"{name!r} is no longer on the page"
                    await el.click()
        except PwTimeout as exc:
            error = ("timeout", f"after using {name!r} the page did not load within "
                                f"{self.config.step_timeout_s:g} s: {_first_line(exc)}")
        except PwError as exc:
            if self._is_crash(exc):
                raise
            error = ("not_clickable", f"{name!r}: {_first_line(exc)}")
        follows = op == "click" and _may_navigate(prep, page.url)
        settled = navigates or await self._settle(mark, follows)
        if not settled or error[0] == "timeout":
            await self._stop_loading()  # as a person gives up on a page: stay where we are
        await self._judge_popup()
        self._fence_check()
        if self._offlist_nav:  # a navigation, popup or form sent off the list: never loaded
            await self._back_on_the_list(before_url)
        self.stats["act_ms_total"] += int(1000 * (time.perf_counter() - t0))
        if self._intent[0]:  # a script tried to send an order or a form with card data
            return self._purchase_intent(same, *self._intent)
        new, fresh = await self._observe()
        self._end_step(t0)
        if self._offlist_nav:
            self.stats["off_allowlist"] += 1
            return new, "off_allowlist", self._off_message()
        if error[0]:
            return new, *error
        if not settled:
            return new, "timeout", (f"the page did not settle within {self.config.step_timeout_s:g} s "
                                    "after the action")
        if self.mode == "shop" and not fresh:
            return same, "", ""  # nothing was loaded (a text field focused): the same page
        return new, "", ""

    async def _shop_visit(self, body: dict[str, Any]) -> tuple[str, str]:
        """Start a visit on our shop (``POST /_sim/start``, as the HTTP backend does):
        (its cookie, the page to open). The request goes from here, not from the page."""
        import httpx

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.config.step_timeout_s, trust_env=False,
                                           follow_redirects=False)
        resp = await self._http.post(self.base + "/_sim/start", json=body)
        sid = resp.cookies.get(COOKIE)
        if resp.status_code != 303 or not sid:
            raise RuntimeError(f"the shop refused the visit ({resp.status_code}): {resp.text[:200]}")
        return sid, resp.headers["location"]

    def _purchase_intent(self, same: PageView, intent: str, why: str) -> tuple[PageView, str, str]:
        self._info["intent"] = {"intent": intent, "reason": why}
        self._info["click_type"] = intent_click_type(intent)
        self.stats["purchase_intents"] += 1
        meta = {"name": "purchase_intent", "data": json.dumps({"intent": intent, "reason": why})}
        # what the shopper would have bought: the basket as the cart page last showed it
        products = [dict(x, source="cart page (best effort)") for x in self._last_cart] or None
        if products and intent in ("order", "pay", "checkout"):
            self._info["basket"] = products
        bought = products if intent in ("order", "pay", "checkout") else None
        return dataclasses.replace(same, ended="purchase_intent", element_meta=meta, products=bought), "", ""

    async def _stop_loading(self) -> None:
        """Stop a navigation still loading (the browser's stop button), so the page can be
        read now rather than when the slow server answers."""
        assert self._ctx is not None and self._page is not None
        with contextlib.suppress(Exception):
            cdp = await self._ctx.new_cdp_session(self._page)
            await cdp.send("Page.stopLoading")
            await cdp.detach()
        self._load_at = time.monotonic()

    def _nav_pending(self) -> bool:
        """A main-frame navigation started since the action has not loaded (or failed) yet."""
        return self._nav_at >= self._mark and self._nav_at > self._load_at

    async def _settle(self, since: float, expect_nav: bool = False) -> bool:
        """After an action on another site: wait for a navigation it started to load, then
        for the requests started since to end and the network to stay quiet ``quiet_s``;
        False if that takes longer than the step timeout."""
        assert self._page is not None
        deadline = time.monotonic() + self.config.step_timeout_s
        await asyncio.sleep(min(0.03, self.quiet_s))  # what a click starts, it starts at once
        if expect_nav:  # a link to another page: on a busy machine its request may come late
            limit = time.monotonic() + 0.5
            while self._nav_at < since and time.monotonic() < limit:
                await asyncio.sleep(0.02)
        while time.monotonic() < deadline:
            busy = self._nav_pending() or any(t >= since for t in self._inflight.values())
            if not busy and time.monotonic() - self._last_net >= self.quiet_s:
                return True
            await asyncio.sleep(0.02)
        return False

    async def _observe(self) -> tuple[PageView, bool]:
        """The current page as a PageView, and whether it is a new document since the
        last action was prepared."""
        from playwright.async_api import Error as PwError

        for attempt in range(3):  # a page still navigating destroys its context: wait and retry
            try:
                return await self._observe_once()
            except PwError as exc:
                if self._is_crash(exc) or attempt == 2:
                    raise
                assert self._page is not None
                with contextlib.suppress(PwError):
                    await self._page.wait_for_load_state("load")
        raise AssertionError("unreachable")

    async def _observe_once(self) -> tuple[PageView, bool]:
        page = self._page
        assert page is not None
        t0 = time.perf_counter()
        simp, raw, fresh = await self._simplify(declared=self.mode == "shop")
        if self.mode == "shop":
            if raw is None:  # not a shop page (an error page after a blocked request)
                prev = self.view or PageView("<html><body></body></html>", page.url, "other", {}, {}, {})
                view = dataclasses.replace(prev, products=None, element_meta=None)
            else:
                view = PageView.from_dict(json.loads(raw)["view"])
                self._check_names(simp, view)
                if self.config.page_source == "simplifier" and view.kind != "order":
                    view = dataclasses.replace(view, html=simp.html)
        else:
            elements = {n: _click_type(n, e) for n, e in simp.elements.items()}
            meta: dict[str, Any] = {"title": [{"title": simp.title}]} if simp.title else {}
            kind, how = classify(page.url, simp.facts, self.config.page_kinds)
            meta["page_kind"] = [{"kind": kind, "by": how}]
            if kind == "cart":
                meta.update(cart_meta(simp.facts))
                if meta.get("cart_items"):
                    self._last_cart = meta["cart_items"]
            view = PageView(simp.html, mask_url(page.url), kind, meta, elements, {})
        self.stats["pages"] += 1
        self.stats["simplify_ms_total"] += int(1000 * (time.perf_counter() - t0))
        if self.config.screenshots:
            with contextlib.suppress(Exception):
                self._info["screenshot"] = await page.screenshot(type="png")
        return view, fresh

    def _check_names(self, simp: _Simplified, view: PageView) -> None:
        mine, theirs = set(simp.elements), set(view.elements)
        self.last_names = (mine, theirs)
        self.stats["name_checks"] += 1
        if mine != theirs:
            self.stats["name_mismatches"] += 1
            self._info["name_mismatch"] = {"missing": sorted(theirs - mine)[:20],
                                           "extra": sorted(mine - theirs)[:20]}

    async def _simplify(self, declared: bool) -> tuple[_Simplified, str | None, bool]:
        """Run the simplifier in the page and its frames (one call for the main frame, which
        also reads our shop's recorder block): (result, recorder JSON, new document?)."""
        assert self._page is not None
        main = self._page.main_frame
        shop = self.mode == "shop"  # our shop's page comes from its recorder block: no HTML needed
        html = not shop or self.config.page_source == "simplifier"
        opts = {"declared": declared, "prefix": "", "recorder": RECORDER_ID if shop else "", "html": html,
                "facts": not shop}
        res = await main.evaluate(_SIMPLIFY, opts)
        if res is None and not self._page.is_closed():  # a document between navigations: let it load
            from playwright.async_api import Error as PwError

            with contextlib.suppress(PwError):
                await self._page.wait_for_load_state("load", timeout=1000 * self.config.step_timeout_s)
                res = await main.evaluate(_SIMPLIFY, opts)
        if res is None:
            res = {"html": "<html><body></body></html>", "elements": [], "frames": [], "title": "",
                   "recorder": None, "fresh": True}
        html = res["html"]
        elements = {e["name"]: e for e in res["elements"]}
        frames: dict[str, Frame] = dict.fromkeys(elements, main)
        if res["frames"]:
            html = await self._frames(main, res["frames"], declared, html, elements, frames, depth=0)
            html = _FRAME_MARK.sub("", html)
            at = {n: html.find(f' name="{html_lib.escape(n, quote=True)}"') for n in elements}
            elements = {n: elements[n] for n in sorted(elements, key=lambda n: at[n] % (len(html) + 1))}
        self._simplified = _Simplified(html, elements, frames, res.get("title", ""), res.get("page"))
        return self._simplified, res.get("recorder"), bool(res.get("fresh", True))

    async def _frames(self, parent: Frame, placeholders: list[dict[str, Any]], declared: bool, html: str,
                      elements: dict[str, dict[str, Any]], frames: dict[str, Frame], depth: int) -> str:
        """Fill each iframe's placeholder with its own frame's simplified page (names under
        the iframe's region); frames on hosts off the list stay empty."""
        if depth > 3 or not placeholders:
            return html
        regions = {p["id"]: p["region"] for p in placeholders}
        for child in parent.child_frames:
            if child.is_detached() or not self.allow.allows(child.url):
                continue
            try:
                owner = await child.frame_element()
                fid = await owner.evaluate("e => window.__cr1 ? window.__cr1.frameId(e) : null")
                if fid not in regions:
                    continue
                sub = await child.evaluate(_SIMPLIFY, {"declared": declared, "prefix": regions[fid]})
            except Exception as exc:
                from playwright.async_api import Error as PwError

                if not isinstance(exc, PwError) or self._is_crash(exc):
                    raise
                continue  # a frame navigating or gone: shown empty this time
            if sub is None:
                continue
            inner = sub["html"].removeprefix("<html><body>").removesuffix("</body></html>")
            for e in sub["elements"]:
                if e["name"] not in elements:
                    elements[e["name"]] = e
                    frames[e["name"]] = child
            inner = await self._frames(child, sub["frames"], declared, inner, elements, frames, depth + 1)
            html = html.replace(f"<!--cr1-frame:{fid}-->", inner, 1)
        return html


def _host_of(url: str) -> str:
    """``host[:port]`` of a URL (or of a proxy's ``host:port`` target), for counting."""
    try:
        u = urlsplit(url if "://" in url else f"//{url}")
        host = u.hostname or url
        return f"{host}:{u.port}" if u.port else host
    except ValueError:
        return url[:100]


def _same_target(hit: str, url: str) -> bool:
    """A proxy's target (``http://host:port/path`` or ``https://host:port``) is ``url``'s."""
    try:
        a, b = urlsplit(hit), urlsplit(url)
        return bool(a.hostname) and a.hostname == b.hostname and (a.port or 0) in (b.port or 0, 0, 443)
    except ValueError:
        return False


def _leads_off(facts: dict[str, Any], allow: Allowlist) -> str:
    """Where a click would take the page if that is off the allowlist (a link's address,
    the form a submit button sends), else ""."""
    href = str(facts.get("href") or "")
    if href and urlsplit(href).scheme in ("http", "https") and not allow.allows(href):
        return href
    form = facts.get("form") or {}
    if facts.get("submits") and form.get("action") and not allow.allows(str(form["action"])):
        return str(form["action"])
    return ""


def _may_navigate(prep: dict[str, Any], current: str) -> bool:
    """The clicked element loads a document: a link to another page, or to this one again
    (a reload, not a jump to a fragment), or a form's submit button. Its navigation may
    start a while after the click on a busy machine, so the step waits for it."""
    facts = prep.get("facts") or {}
    if facts.get("submits"):
        return True
    href = str(facts.get("href") or "")
    if not href or urlsplit(href).scheme not in ("http", "https"):
        return False
    a, b = urlsplit(href), urlsplit(current)
    return (a.netloc, a.path, a.query) != (b.netloc, b.path, b.query) or not a.fragment


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")[0].split())[:200]


_PURCHASE_NAME = re.compile(r"add_to_(cart|bag|basket)|buy_now|checkout|place_order|subscribe")


def _click_type(name: str, element: dict[str, Any]) -> str | None:
    """A click type (OPeRA's) guessed for an element of another site; None for a text field."""
    if element.get("kind") == "input":
        return None
    if element.get("kind") == "option":
        return "quantity" if re.search(r"qty|quantity", name) else "product_option"
    last = name.rsplit(".", 1)[-1]
    if _PURCHASE_NAME.search(last):
        return "purchase"
    if re.search(r"search", last):
        return "search"
    if re.search(r"review", last):
        return "review"
    return "other"


class BrowserEnv(ShopEnv):
    """``ShopEnv`` over a :class:`BrowserShop`: our shop at ``shop_url`` or another site
    from ``start_url``, in a context of ``browser``."""

    def __init__(self, world: World, config: EnvConfig | None = None, *, browser: Browser,
                 shop_url: str | None = None, start_url: str | None = None,
                 browser_config: BrowserConfig | None = None) -> None:
        super().__init__(world, config, backend=BrowserShop(browser, shop_url=shop_url, start_url=start_url,
                                                            config=browser_config))


def allowlist_for(shop_url: str | None, start_url: str | None,
                  extra: list[str] | tuple[str, ...] = ()) -> Allowlist:
    """The run's allowlist: our shop's (or the start page's) host and port, plus ``extra``."""
    first = [parse_host(u, "--start-url" if start_url else "--shop-url") for u in (shop_url, start_url) if u]
    return Allowlist.of(*first, *(parse_host(e) for e in extra))
