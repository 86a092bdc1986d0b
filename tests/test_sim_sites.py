"""Simulated shoppers on sites we did not build (``tests/fixtures/sites/shops/``).

Three fixture shops modelled on common shop markup, served on loopback, each reaching
for a second loopback server (a "CDN", fonts, analytics) that is not allowed:

* ``boot/``: a Bootstrap grid of cards without landmarks (``div.row > div.col-md-4 >
  div.card``), jQuery from a CDN with a local fallback, a beacon and a pixel; product,
  reviews, search, basket and a multi-step checkout;
* ``woo/``: WooCommerce-like ``ul.products > li.product`` (an ``h2`` title, an "Add to
  basket" link whose aria-label repeats the title), a broken product link and a page
  whose theme script throws; basket, checkout and its order-received page;
* ``cards/``: product-card divs without headings (title link + button), a language
  selector, a bag and a checkout wizard at addresses that say nothing.

A run starts there without ``--allow``, counts what it blocked, names every card's
controls by that card, gives every page a kind the funnel can use, reads the basket
from the cart page, and a random smoke test reports the site's health.
"""

from __future__ import annotations

import json

import pytest
from sitekit import SiteServer, require_chromium

from customer_r1.actions import Action
from customer_r1.sim.browser import Browser, BrowserConfig, BrowserShop, allowlist_for
from customer_r1.sim.env import EnvConfig, ShopEnv
from customer_r1.sim.pagekind import PageKinds, classify, kind_from_url, money


@pytest.fixture(scope="module")
def servers():
    cdn = SiteServer().start()
    shop = SiteServer(other=cdn.origin).start()
    yield shop, cdn
    shop.stop()
    cdn.stop()


@pytest.fixture(scope="module")
def browser(servers):
    require_chromium()
    shop, _ = servers
    with Browser(allowlist_for(None, shop.origin + "/")) as b:
        yield b


def visit(browser, shop, page: str, **cfg) -> ShopEnv:
    env = ShopEnv(None, EnvConfig(max_steps=30, max_consecutive_errors=30),  # type: ignore[arg-type]
                  backend=BrowserShop(browser, start_url=shop.origin + page, config=BrowserConfig(**cfg)))
    env.reset("u", 0)
    return env


TITLES = ["ember_travel_mug", "alpine_wool_socks", "harbor_canvas_tote", "summit_water_bottle",
          "cedar_desk_lamp", "nordic_throw_blanket"]


@pytest.mark.parametrize(("page", "prefix", "button"), [
    ("/shops/boot/index.html", "", "add_to_basket"),
    ("/shops/woo/index.html", "main.", "add_to_basket"),
    ("/shops/cards/index.html", "", "add_to_bag"),
])
def test_every_cards_controls_are_named_by_that_card(page, prefix, button, servers, browser):
    """The sixth card's button is ``<its title>.add_to_basket``; clicking it adds that
    product; the names stay the same after the page changed (a status line, a badge)."""
    shop, cdn = servers
    env = visit(browser, shop, page)
    names = list(env.page_view.elements)
    for t in TITLES:
        assert f"{prefix}{t}.{button}" in names, (t, names)
    assert not any(n.endswith(f"{button}_2") for n in names), names  # no card borrows another's name
    sixth = f"{prefix}{TITLES[5]}.{button}"
    res = env.step(Action.click(sixth))
    assert res.info["error_kind"] == "", res.observation.last_action_error
    assert "Added Nordic Throw Blanket" in res.observation.html
    assert [n for n in env.page_view.elements if n in names] == names  # stable across steps
    assert cdn.log == []
    env.close()


def test_a_language_selector_and_menus_are_not_cards(servers, browser):
    shop, _ = servers
    env = visit(browser, shop, "/shops/cards/index.html")
    names = list(env.page_view.elements)
    assert {"language.english", "language.deutsch", "language.fran_ais"} <= set(names)
    env.close()
    env = visit(browser, shop, "/shops/woo/index.html")
    menu = {"masthead.primary.shop", "masthead.primary.basket", "masthead.form.s"}
    assert menu <= set(env.page_view.elements)
    env.close()


#: Every fixture page with its kind (the address says it, or only the page's structure does).
KINDS = {
    "/shops/boot/index.html": "home", "/shops/boot/product.html?id=2": "product",
    "/shops/boot/reviews.html?id=2": "reviews", "/shops/boot/search.html?q=mug": "search",
    "/shops/boot/cart.html": "cart", "/shops/boot/checkout.html": "checkout",
    "/shops/woo/index.html": "home", "/shops/woo/product/ember-mug.html": "product",
    "/shops/woo/cart/index.html": "cart", "/shops/woo/checkout/index.html": "checkout",
    "/shops/woo/checkout/order-received/index.html": "order",
    "/shops/cards/index.html": "home", "/shops/cards/ember-mug-p1.html": "product",
    "/shops/cards/bag.html": "cart", "/shops/cards/secure.html": "checkout",
    "/shop/index.html": "product", "/shop/checkout.html": "checkout", "/shop/signin.html": "checkout",
    "/simplify/retailer.html": "home",
}


def test_every_fixture_page_gets_its_kind(servers, browser):
    from concurrent.futures import ThreadPoolExecutor

    shop, _ = servers

    def kind(page: str) -> str:
        env = visit(browser, shop, page)
        try:
            assert env.page_view.page_meta["page_kind"][0]["kind"] == env.page_view.kind
            return env.page_view.kind
        finally:
            env.close()

    with ThreadPoolExecutor(4) as pool:  # four contexts of one browser at a time
        got = dict(zip(KINDS, pool.map(kind, KINDS), strict=True))
    assert got == KINDS


def test_the_users_rules_come_first(servers, browser, tmp_path):
    shop, _ = servers
    f = tmp_path / "kinds.yaml"
    f.write_text('"/shops/cards/*-p*.html": reviews\n"re:secure": order\n')
    rules = PageKinds.load(f)
    env = visit(browser, shop, "/shops/cards/ember-mug-p1.html", page_kinds=rules)
    assert env.page_view.kind == "reviews" and env.page_view.page_meta["page_kind"][0]["by"] == "rule"
    env.close()
    assert classify("http://x/shops/cards/secure.html", None, rules) == ("order", "rule")
    assert rules.describe()["rules"] == {"/shops/cards/*-p*.html": "reviews", "re:secure": "order"}


def test_urls_of_common_shop_platforms():
    cases = {
        "https://s.example/product/blue-mug/": "product", "https://s.example/product-category/mugs/": "home",
        "https://s.example/cart/": "cart", "https://s.example/checkout/": "checkout",
        "https://s.example/checkout/order-received/42/?key=wc": "order", "https://s.example/?s=mug": "search",
        "https://s.example/products/blue-mug": "product", "https://s.example/collections/mugs": "home",
        "https://s.example/search?q=mug": "search", "https://s.example/account/login": "checkout",
        "https://m.example/checkout/cart/": "cart", "https://m.example/catalogsearch/result/?q=mug": "search",
        "https://o.example/index.php?route=product/product&product_id=40": "product",
        "https://o.example/index.php?route=checkout/cart": "cart",
        "https://www.amazon.com/dp/B0001": "product", "https://www.amazon.com/s?k=mug": "search",
        "https://www.amazon.com/product-reviews/B0001": "reviews", "https://s.example/": "home",
        "https://s.example/about-us": "",
    }
    assert {u: kind_from_url(u) for u in cases} == cases
    assert money("£1,234.50") == 1234.5 and money("12,50 €") == 12.5 and money("$ 7") == 7.0


def test_the_basket_is_read_from_the_cart_page(servers, browser):
    """Two products in the basket, the cart page read (best effort, labelled), and the
    checkout click a purchase intent that carries that basket; nothing was posted."""
    shop, _ = servers
    posts = len(shop.paths("POST"))
    env = visit(browser, shop, "/shops/woo/index.html")
    env.step(Action.click("main.ember_travel_mug.add_to_basket"))
    env.step(Action.click("main.ember_travel_mug.add_to_basket"))
    env.step(Action.click("main.cedar_desk_lamp.add_to_basket"))
    res = env.step(Action.click("masthead.primary.basket"))
    assert res.observation.page_kind == "cart"
    meta = env.page_view.page_meta
    assert [(x["title"], x["quantity"]) for x in meta["cart_items"]] == [
        ("Ember Travel Mug", "2"), ("Cedar Desk Lamp", "1")]
    assert meta["cart_total"][0]["value"] == 76.0 and meta["cart_total"][0]["items"] == 3
    assert "best effort" in meta["cart_total"][0]["source"]
    res = env.step(Action.click("main.proceed_to_checkout"))
    assert res.done and res.info["end_reason"] == "purchase_intent"
    assert [p["title"] for p in res.info["products"]] == ["Ember Travel Mug", "Cedar Desk Lamp"]
    assert len(shop.paths("POST")) == posts
    env.close()


def test_a_random_smoke_test_reports_the_sites_health(servers, tmp_path):
    """``sim run --policy random`` on a site with a CDN, fonts and analytics, without
    ``--allow``: every session runs, nothing reaches the CDN, nothing is ordered or
    posted, the manifest and the report's site health name the blocked host (with the
    flag), the 404s, the page error and the load times; the funnel has page kinds."""
    from customer_r1.sim.report import write_sim_report
    from customer_r1.sim.simulate import simulate
    from customer_r1.world import WorldConfig, export_world, generate_world

    require_chromium()
    shop, cdn = servers
    world = tmp_path / "world"
    export_world(generate_world(WorldConfig(users=3, sessions_per_user=2, population=20)), world)
    posts = len(shop.paths("POST"))
    kinds = tmp_path / "kinds.yaml"
    kinds.write_text('"/shops/woo/my-account/*": checkout\n')
    words = tmp_path / "words.txt"
    words.write_text("mug\nsocks\n")
    m = simulate(world=world, out=tmp_path / "run", policy="random", sessions_per_user=2, concurrency=2,
                 max_steps=8, seed=4, backend="browser", start_url=f"{shop.origin}/shops/woo/index.html",
                 page_kinds=kinds, words=words, progress=False)
    assert m["counts"]["sessions"] == 6 and "fence_violation" not in m["counts"]["end_reasons"]
    assert set(m["counts"]["end_reasons"]) <= {"terminate", "max_steps", "max_errors", "purchase_intent"}
    b = m["browser"]
    assert b["settings"]["page_kinds"]["rules"] == {"/shops/woo/my-account/*": "checkout"}
    h = b["site_health"]
    assert h["blocked_hosts"][cdn.host] >= 6 and h["allow_hint"] == f"--allow {cdn.host}"
    assert h["http_errors"] >= 6 and h["load_ms_p50"] > 0 and h["load_ms_p90"] >= h["load_ms_p50"]
    assert cdn.log == [] and len(shop.paths("POST")) == posts
    rows = [json.loads(x) for x in (tmp_path / "run" / "sessions.jsonl").read_text().splitlines()]
    kinds_seen = {e["observation"]["page_kind"] for r in rows for e in r["steps"]}
    assert {"home", "product"} <= kinds_seen and "other" not in kinds_seen, kinds_seen  # all pages known
    typed = [e["action"]["text"] for r in rows for e in r["steps"]
             if (e["action"] or {}).get("type") == "input"]
    assert set(typed) <= {"mug", "socks"}
    from customer_r1.sim.compare import describe_sessions, load_sessions

    reach = describe_sessions(load_sessions(tmp_path / "run"), n_boot=20)["reach"]
    assert reach["home"]["value"] == 1.0 and reach["product"]["value"] > 0  # a funnel with stages
    index = write_sim_report([tmp_path / "run"], tmp_path / "report", n_boot=50)
    md = (index.parent / "report.md").read_text()
    assert "## Site health" in md and f"--allow {cdn.host}" in md and "404" in md
    report = json.loads((index.parent / "report.json").read_text())
    assert report["health"][0]["blocked_hosts"][cdn.host]["sessions"] == 6


def test_each_page_notes_the_sites_health(servers, browser):
    """What a page did is in the step's ``health``: its status, 4xx/5xx of what it loaded,
    its JavaScript errors, how long it took, the hosts blocked on the way."""
    shop, cdn = servers
    env = visit(browser, shop, "/shops/boot/index.html")
    h = env.reset_info["health"]
    assert h["status"] == 200 and h["load_ms"] > 0 and h["url"].endswith("/shops/boot/index.html")
    assert h["blocked"] == {cdn.host: 5}  # two styles, jQuery, the pixel, the beacon
    assert [(x["status"], x["url"].rsplit("/", 1)[-1]) for x in h["http_errors"]] == [(404, "none.png")]
    assert "/shops/common/jquery-local.js" in shop.paths()  # the page fell back to its own copy
    env.close()
    env = visit(browser, shop, "/shops/woo/index.html")
    res = env.step(Action.click("main.orbit_backpack.orbit_backpack"))  # a product that is gone
    assert res.info["health"]["status"] == 404
    env.close()
    env = visit(browser, shop, "/shops/woo/product/ember-mug.html")
    assert any("currency" in m for m in env.reset_info["health"]["js_errors"])
    env.close()


def test_site_health_sums_a_runs_trace():
    from customer_r1.sim.health import site_health

    def step(name, error="", health=None, page_meta=None):
        return {"action": {"type": "click", "name": name}, "error_kind": error,
                "observation": {"url": "http://s/x", "page_meta": page_meta or {}},
                "browser": {"health": health} if health else {}}

    records = [
        {"start_health": {"load_ms": 100, "blocked": {"cdn.example": 3}, "url": "http://s/"},
         "steps": [step("a.buy", "not_clickable", {"load_ms": 300}),
                   step("a.buy", "not_clickable"), step("b.go", "", {"load_ms": 900, "status": 500,
                                                                        "url": "http://s/broken"}),
                   step("c.x", "off_allowlist", {"load_ms": 200, "js_errors": ["boom"]},
                        {"cart_total": [{"value": 30.0, "items": 2}]})]},
        {"start_health": {"load_ms": 500, "blocked": {"cdn.example": 1, "ads.example": 2}}, "steps": []},
    ]
    h = site_health(records)
    assert h["pages"] == 5 and h["invalid_total"] == 3 and h["off_allowlist"] == 1
    assert h["invalid_actions"][0] == {"element": "a.buy", "reason": "not_clickable", "count": 2}
    assert h["http_errors"] == [{"status": 500, "url": "http://s/broken", "count": 1}]
    assert h["js_errors"] == [{"message": "boom", "count": 1}]
    assert h["load_ms"]["p50"] == 300 and h["load_ms"]["slowest"][0] == {"ms": 900, "url": "http://s/broken"}
    assert h["blocked_hosts"] == {"cdn.example": {"requests": 4, "sessions": 2},
                                  "ads.example": {"requests": 2, "sessions": 1}}
    assert h["allow_hint"] == "--allow cdn.example --allow ads.example"
    assert h["basket"]["sessions"] == 1 and h["basket"]["mean_value"] == 30.0


def test_the_command_line_says_what_it_blocked(servers, tmp_path):
    from killkit import invoke

    from customer_r1.world import WorldConfig, export_world, generate_world

    require_chromium()
    shop, cdn = servers
    world = tmp_path / "world"
    export_world(generate_world(WorldConfig(users=2, sessions_per_user=2, population=20)), world)
    code, _, err = invoke(["sim", "run", "--world", str(world), "--policy", "random", "--backend", "browser",
                           "--start-url", f"{shop.origin}/shops/boot/index.html", "--max-users", "1",
                           "--max-steps", "3", "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0, err
    assert f"blocked hosts (requests): {cdn.host} (" in err and f"--allow {cdn.host}" in err
    code, _, err = invoke(["sim", "run", "--world", str(world), "--policy", "random", "--page-kinds",
                           str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r2")])
    assert code == 2 and "nope.yaml" in err
    assert cdn.log == []


def test_the_random_shopper_is_a_seeded_monkey():
    """Only the page's own names; words from its list typed into text fields only; the
    same seed, the same step; a share of steps types, a few leave."""
    from collections import Counter

    from customer_r1.domain import Observation, User
    from customer_r1.sim.policies import ActRequest, RandomPolicy

    html = ('<html><body><input name="search.q" type="search"><a name="a.go" href="/x">Go</a>'
            '<button name="b.buy">Buy</button><select name="s"><option name="s.1" value="1">1</option>'
            '</select></body></html>')
    obs = Observation(html, "http://s/", {})
    pol = RandomPolicy(["mug", "socks"])
    acts = [pol.act(obs, [], User("u"), seed=i).action for i in range(400)]
    assert acts == [pol.act(obs, [], User("u"), seed=i).action for i in range(400)]
    kinds = Counter(a.type for a in acts)
    assert kinds["click"] > kinds["input"] > kinds["terminate"] > 0
    assert {a.name for a in acts if a.type == "click"} == {"a.go", "b.buy", "s.1"}
    typed = {(a.name, a.text) for a in acts if a.type == "input"}
    assert typed == {("search.q", "mug"), ("search.q", "socks")}
    blank = Observation("<html></html>", "", {})
    empty = RandomPolicy().act_batch([ActRequest("k", blank, [], User("u"), 1)])
    assert empty[0].action.type == "terminate"


@pytest.mark.parametrize(("name", "shows"), [("header.nav.shop", "Visited again"),
                                             ("header.search.search", "Search results for mug")])
def test_a_navigation_that_starts_late_is_waited_for(name, shows, servers, browser):
    """A link to the page itself (a reload) and a form's submit button load a document
    even when the theme starts the navigation 300 ms after the click: the step shows
    the new page, never the old one or a blank page between the two."""
    shop, _ = servers
    env = visit(browser, shop, "/shops/late/index.html")
    assert "First visit" in env.page_view.html and name in env.page_view.elements
    res = env.step(Action.click(name))
    assert res.observation.last_action_error == "" and shows in res.observation.html, res.observation.html
    env.close()
