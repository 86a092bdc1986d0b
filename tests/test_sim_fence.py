"""The browser backend's network fence: deny by default, checked below the page.

Two loopback servers: the allowed site and a forbidden one, each with its own request
log. Pages of the allowed site reach for the forbidden one in every way a page can (a
link, a 302 redirect, an image, a script, an iframe, fetch and XHR, a WebSocket, a
service worker, resource hints and CSS): the forbidden server's log stays empty, and
the session goes on: a subresource is blocked and counted per host, a link or redirect
away is not followed (``off_allowlist`` in ``last_action_error``), recorded with the
layers that saw it. The same pages with the forbidden server allowed do reach it (the vectors are
real), and with request interception switched off the proxy and resolver layers alone
still keep the forbidden log empty. A run through ``sim run`` counts the violations in
its manifest.
"""

from __future__ import annotations

import json

import pytest
from sitekit import SiteServer, require_chromium

from customer_r1.actions import Action
from customer_r1.errors import BadOption
from customer_r1.sim.browser import Browser, BrowserShop, allowlist_for
from customer_r1.sim.env import EnvConfig, ShopEnv
from customer_r1.sim.fence import Allowlist, parse_host


@pytest.fixture(scope="module")
def servers():
    forbidden = SiteServer().start()
    allowed = SiteServer(other=forbidden.origin).start()
    forbidden.other = allowed.origin
    yield allowed, forbidden
    allowed.stop()
    forbidden.stop()


@pytest.fixture(scope="module")
def browser(servers):
    require_chromium()
    allowed, _ = servers
    with Browser(allowlist_for(None, allowed.origin + "/")) as b:
        yield b


def env_at(browser, url: str, **kw) -> ShopEnv:
    return ShopEnv(None, EnvConfig(max_steps=10), backend=BrowserShop(browser, start_url=url, **kw))  # type: ignore[arg-type]


#: (page, action to take or None, what the forbidden server would have logged without the fence)
VECTORS = {
    "link": ("link.html", "visit_our_partner", "/landing"),
    "redirect": ("redirect.html", "see_the_offer", "/landing"),
    "img": ("img.html", None, "/banner.png"),
    "script": ("script.html", None, "/fence/tracker.js"),
    "iframe": ("iframe.html", None, "/fence/widget.html"),
    "fetch_xhr": ("fetch.html", None, "/api/track?from=fetch"),
    "websocket": ("websocket.html", None, "/socket"),
    "hints_css": ("hints.html", None, "/theme.css"),
}


@pytest.mark.parametrize("vector", list(VECTORS))
def test_every_way_out_is_blocked_and_the_session_goes_on(vector, servers, browser):
    """A subresource off the list is blocked and counted per host (the page goes on
    without it); a link or a redirect away is not followed: ``off_allowlist`` in
    ``last_action_error``, the shopper still on the page it was on."""
    allowed, forbidden = servers
    page, click, _ = VECTORS[vector]
    before = len(forbidden.log)
    env = env_at(browser, f"{allowed.origin}/fence/{page}")
    obs = env.reset("u", 0)
    assert not env.done, obs.last_action_error
    if click is None:  # the page reached out as it loaded: blocked, counted, the page is shown
        assert obs.last_action_error == ""
        fence = env.reset_info["fence"]
        assert env.reset_info["health"]["blocked"].get(forbidden.host, 0) >= 1, env.reset_info
        res = env.step(Action.click("back"))  # and the shopper goes on shopping
        assert res.info["error_kind"] == "" and not res.done
        assert res.observation.url.endswith("/fence/start.html")
    else:
        res = env.step(Action.click(click))
        assert not res.done and res.info["error_kind"] == "off_allowlist", res.observation.last_action_error
        msg = res.observation.last_action_error
        assert msg.startswith("off_allowlist:") and forbidden.host in msg
        assert f"--allow {forbidden.host}" in msg
        assert res.observation.url == obs.url  # still on the page it was on
        assert click in env.page_view.elements
        if vector == "link":  # judged before the click (its address is off the list): nothing requested
            assert "fence" not in res.info
            assert forbidden.log[before:] == []
            env.close()
            return
        fence = res.info["fence"]
        assert forbidden.host in res.info["health"]["blocked"]
    assert fence and all(forbidden.host in v["url"] for v in fence), fence
    layers = {v["layer"] for v in fence}
    if vector == "redirect":  # interception never sees a redirect's next hop; the layers below do
        assert "route" not in layers and {"request", "proxy"} & layers, layers
    elif vector == "websocket":
        assert "websocket" in layers
    else:
        assert "route" in layers
    assert forbidden.log[before:] == [], forbidden.log[before:]
    env.close()


#: Ways a page's own controls lead off the list after the click (a new tab, a popup, a
#: script, a form): each must come back as ``off_allowlist`` with the shopper in place.
AWAY = ("open_the_partner_in_a_new_tab", "open_a_popup", "go_there_by_script",
        "partner_newsletter.send_the_form")


@pytest.mark.parametrize("intercept", [True, False])
def test_popups_scripts_and_forms_off_the_list_are_not_loaded(intercept, servers):
    """A link opening a new tab, ``window.open``, ``location.href =`` and a form sent to
    the forbidden host: none is loaded, each returns ``off_allowlist`` and the shopper is
    still on the same page, able to go on; with interception off too (the layers below
    it, and no check before the click)."""
    allowed, forbidden = servers
    require_chromium()
    before = len(forbidden.log)
    with Browser(allowlist_for(None, allowed.origin + "/")) as b:
        shop = BrowserShop(b, start_url=f"{allowed.origin}/fence/away.html", intercept=intercept)
        env = ShopEnv(None, EnvConfig(max_steps=20, max_consecutive_errors=20), backend=shop)  # type: ignore[arg-type]
        obs = env.reset("u", 0)
        assert set(AWAY) <= set(env.page_view.elements), list(env.page_view.elements)
        for name in AWAY:
            res = env.step(Action.click(name))
            assert res.info["error_kind"] == "off_allowlist", (name, res.observation.last_action_error)
            assert forbidden.host in res.observation.last_action_error, name
            assert res.observation.url == obs.url and not res.done, (name, res.observation.url)
            assert set(AWAY) <= set(env.page_view.elements), name  # the same page, usable
        res = env.step(Action.click("back"))
        assert res.info["error_kind"] == "" and res.observation.url.endswith("/fence/start.html")
        env.close()
    assert forbidden.log[before:] == []


def test_a_service_worker_cannot_be_registered(servers, browser):
    allowed, forbidden = servers
    env = env_at(browser, f"{allowed.origin}/fence/serviceworker.html")
    env.reset("u", 0)
    assert not env.done  # nothing left the allowlist: the page just has no worker
    assert "sw: refused" in env.page_view.html and "sw-frame: refused" in env.page_view.html
    assert not [h for h in allowed.log if h.path == "/fence/sw.js"]  # never even fetched
    assert forbidden.log == []
    env.close()


def test_the_forbidden_server_never_heard_a_thing(servers, browser):
    """Whatever ran before in this module: its log is empty (and the allowed one's is not)."""
    allowed, forbidden = servers
    env = env_at(browser, f"{allowed.origin}/fence/start.html")
    env.reset("u", 0)
    env.step(Action.click("links"))
    env.close()
    assert forbidden.log == [] and len(allowed.log) > 5


def test_without_the_fence_every_vector_reaches_the_other_server(servers):
    """The control: the same pages with the other server allowed do reach it, so the
    vectors above are real and it is the fence that stopped them."""
    allowed, forbidden = servers
    require_chromium()
    with Browser(allowlist_for(None, allowed.origin + "/", [forbidden.host])) as b:
        for vector, (page, click, path) in VECTORS.items():
            before = len(forbidden.log)
            env = env_at(b, f"{allowed.origin}/fence/{page}")
            env.reset("u", 0)
            if click:
                env.step(Action.click(click))
            if vector == "websocket":
                assert "ws: open" in env.page_view.html
            env.close()
            got = [h.path for h in forbidden.log[before:]]
            assert path in got, (vector, got)
        assert any(h.upgrade.lower() == "websocket" for h in forbidden.log)
    forbidden.log.clear()


def test_the_layers_below_interception_hold_alone(servers):
    """Request and WebSocket interception switched off (as if they missed everything), and
    links not judged before the click: the proxy only the allowed host bypasses and the
    resolver rules still keep every request off the forbidden server; what they stopped
    is still seen, counted per host, and a navigation away still comes back as
    ``off_allowlist`` with the shopper on the page it was on."""
    allowed, forbidden = servers
    require_chromium()
    forbidden.log.clear()
    with Browser(allowlist_for(None, allowed.origin + "/")) as b:
        for vector, (page, click, _) in VECTORS.items():
            env = env_at(b, f"{allowed.origin}/fence/{page}", intercept=False)
            obs = env.reset("u", 0)
            assert not env.done, (vector, obs.last_action_error)
            if click:
                res = env.step(Action.click(click))
                assert res.info["error_kind"] == "off_allowlist", (vector, res.observation.last_action_error)
                assert res.observation.url == obs.url and not res.done, vector
                health = res.info["health"]
            else:
                health = env.reset_info["health"]
            if vector != "websocket":  # a socket refused by the proxy is not a request the page sees
                assert forbidden.host in health.get("blocked", {}), (vector, health)
            env.close()
    assert forbidden.log == []


def test_a_run_goes_on_and_counts_blocked_hosts_in_its_manifest(servers, tmp_path):
    """``sim run --backend browser --start-url`` without ``--allow``: the sessions go on
    past the blocked banner, and the manifest counts the blocked host with the flag that
    would let it through."""
    from customer_r1.sim.simulate import simulate
    from customer_r1.world import WorldConfig, export_world, generate_world

    require_chromium()
    allowed, forbidden = servers
    world = tmp_path / "world"
    export_world(generate_world(WorldConfig(users=2, sessions_per_user=2, population=20)), world)
    m = simulate(world=world, out=tmp_path / "run", policy="random", sessions_per_user=2, concurrency=2,
                 max_steps=3, backend="browser", start_url=f"{allowed.origin}/fence/img.html", progress=False)
    assert "fence_violation" not in m["counts"]["end_reasons"]
    assert m["counts"]["steps"] + m["counts"]["error_steps"] >= 4  # every session acted past the banner
    b = m["browser"]
    assert b["fence_violations"] == 0 and b["blocked_requests_by_layer"].get("route", 0) >= 4
    health = b["site_health"]
    assert health["blocked_hosts"][forbidden.host] >= 4
    assert health["allow_hint"] == f"--allow {forbidden.host}"
    assert b["settings"]["site"].endswith("/fence/img.html")
    assert forbidden.host not in b["settings"]["allowlist"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "sessions.jsonl").read_text().splitlines()]
    assert all(r["start_health"]["blocked"] == {forbidden.host: 1} and r["start_fence"] for r in rows)
    assert forbidden.log == []


def test_a_start_page_that_leaves_the_list_ends_the_session(servers, browser):
    """Nothing to shop on: a start page that redirects off the list ends the session
    (``fence_violation``), and the forbidden server still hears nothing."""
    allowed, forbidden = servers
    before = len(forbidden.log)
    env = env_at(browser, f"{allowed.origin}/redirect?to={{{{OTHER}}}}/landing")
    obs = env.reset("u", 0)
    assert env.done and env.end_reason == "fence_violation"
    assert "fence violation" in obs.last_action_error and forbidden.host in obs.last_action_error
    assert forbidden.log[before:] == []
    env.close()


# -------------------------------------------------------------------------- the allowlist


def test_the_allowlist_parses_and_matches_hosts():
    a = Allowlist.of("127.0.0.1:8000", "shop.example.com", "*.cdn.example.net", "[::1]:9000")
    assert a.allows("http://127.0.0.1:8000/x") and not a.allows("http://127.0.0.1:8001/x")
    assert a.allows("https://shop.example.com/checkout") and a.allows("http://shop.example.com:8080/")
    assert not a.allows("https://evil.shop.example.com/") and not a.allows("https://shop.example.com.evil.io/")
    assert a.allows("https://img.cdn.example.net/a.png") and a.allows("https://cdn.example.net/")
    assert a.allows("ws://127.0.0.1:8000/socket") and not a.allows("wss://127.0.0.1:8443/")
    assert a.allows("http://[::1]:9000/") and not a.allows("http://[::1]:9001/")
    assert a.allows("data:text/html,hi") and a.allows("about:blank") and a.allows("blob:http://x/1")
    for bad in ("file:///etc/passwd", "ftp://shop.example.com/", "chrome://settings", "javascript:alert(1)",
                "http:///nohost", "not a url"):
        assert not a.allows(bad), bad
    assert a.proxy_bypass().startswith("<-loopback>,127.0.0.1:8000,shop.example.com")
    assert "MAP * ~NOTFOUND" in a.resolver_rules() and "EXCLUDE shop.example.com" in a.resolver_rules()
    assert parse_host("https://staging.example.com/start") == parse_host("staging.example.com:443")
    for bad in ("", "exa mple.com", "host:99999", "*.", "a*b.com"):
        with pytest.raises(BadOption):
            parse_host(bad)
