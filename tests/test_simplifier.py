"""The in-page simplifier (``sim/simplify.js``) of the browser backend.

On hand-written pages that mimic a real retailer (``tests/fixtures/sites/simplify/``:
nested menus, a carousel, duplicate labels, an iframe, a shadow-DOM widget, hidden
nodes) it names elements by OPeRA's rule, keeps names while their elements live, and
drops what a person cannot see. On our own shop, served by ``sim serve``, the names it
finds in the browser are exactly the world renderer's on every page kind, over many
random sessions (compact and OPeRA-sized pages, site variants).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sitekit import SiteServer, require_chromium

from customer_r1.actions import Action
from customer_r1.sim.browser import Browser, BrowserConfig, BrowserShop, allowlist_for, simplifier_source
from customer_r1.sim.env import EnvConfig, ShopEnv
from customer_r1.sim.site import create_app, serve_in_thread
from customer_r1.world.generate import WorldConfig, world_base


@pytest.fixture(scope="module")
def site():
    server = SiteServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worlds():
    return {size: world_base(WorldConfig(users=3, sessions_per_user=2, seed=3, page_size=size),
                             population=False) for size in ("compact", "opera")}


@pytest.fixture(scope="module")
def shops(worlds):
    with serve_in_thread(create_app(worlds["compact"])) as compact, \
            serve_in_thread(create_app(worlds["opera"])) as opera:
        yield {"compact": compact, "opera": opera}


@pytest.fixture(scope="module")
def browser(site, shops):
    require_chromium()
    hosts = [u.removeprefix("http://") for u in shops.values()]
    with Browser(allowlist_for(None, site.origin + "/", hosts)) as b:
        yield b


def site_env(browser, site, page: str, **cfg) -> ShopEnv:
    return ShopEnv(None, EnvConfig(max_steps=40, max_consecutive_errors=20),  # type: ignore[arg-type]
                   backend=BrowserShop(browser, start_url=site.origin + page, **cfg))


def names(env: ShopEnv) -> list[str]:
    return list(env.page_view.elements)


RETAILER = [
    "header.northwind_home", "header.site_search.q", "header.site_search.search", "header.account",
    "header.cart_0", "main_menu.electronics", "main_menu.home_garden", "main.today_s_deals.previous_slide",
    "main.today_s_deals.acme_kettle", "main.today_s_deals.next_slide", "main.results.acme_kettle.acme_kettle",
    "main.results.acme_kettle.add_to_cart", "main.results.brio_desk_lamp.brio_desk_lamp",
    "main.results.brio_desk_lamp.add_to_cart",
    "main.results.orbit_backpack.orbit_backpack", "main.results.orbit_backpack.add_to_cart",
    "main.results.sort.featured", "main.results.sort.price-asc", "main.results.prime",
    "main.results.show_more", "main.promotions.claim_offer", "main.promotions.lamp_deal",
    "main.rate_this_product", "footer.help", "footer.returns", "footer.back_to_top",
]


def test_the_simplifier_ships_with_the_package():
    src = simplifier_source()
    assert "window.__cr1" in src and "function simplify" in src


def test_a_retailer_page_is_named_by_operas_rule(browser, site):
    """Regions (landmarks, labelled containers, sections by their heading, selects, an
    iframe by its title) + a slug of the label; fields by their own name; options by value;
    duplicate labels get a suffix; hidden submenus, slides and nodes are left out."""
    env = site_env(browser, site, "/simplify/retailer.html")
    obs = env.reset("u", 0)
    assert names(env) == RETAILER  # in page order, the iframe's in place
    assert env.page_view.elements["header.site_search.q"] is None  # a text field
    html = obs.html
    for gone in ("Laptops", "main.today_s_deals.brio_desk_lamp", "SCRIPT_IN_HEAD", "DISPLAY_NONE",
                 "Hidden link", "<script", "<style"):
        assert gone not in html
    # the shadow widget's text (its slot filled from the light DOM) and the frame's, in reading order
    assert html.index("Today's deals") < html.index("Best sellers") < html.index("Members save 10%") \
        < html.index("Customer rating</span>: <span>4 of 5 stars") < html.index('name="footer.help"')
    assert re.search(r'<iframe name="main.promotions"[^>]*><p>Members save', html)
    assert obs.page_kind == "home" and obs.url.endswith("/simplify/retailer.html")  # a listing of cards
    env.close()


def test_names_stay_with_their_elements(browser, site):
    """Menus opening, a carousel turning and a card inserted above the others rename nothing:
    a name seen before still reaches the same element."""
    env = site_env(browser, site, "/simplify/retailer.html")
    env.reset("u", 0)
    before = names(env)
    res = env.step(Action.click("main_menu.electronics"))
    assert res.info["error_kind"] == ""
    assert [n for n in names(env) if n in before] == before
    assert {"main_menu.electronics.laptops", "main_menu.electronics.phones",
            "main_menu.electronics.phones.android", "main_menu.electronics.phones.ios"} <= set(names(env))
    assert "main_menu.home_garden.kitchen" not in names(env)  # that submenu is still closed

    env.step(Action.click("main.today_s_deals.next_slide"))
    now = names(env)
    assert "main.today_s_deals.brio_desk_lamp" in now and "main.today_s_deals.acme_kettle" not in now
    env.step(Action.click("main.today_s_deals.previous_slide"))
    assert "main.today_s_deals.acme_kettle" in names(env)  # the same slide, the same name again

    env.step(Action.click("main.results.show_more"))  # a card goes in above the others
    now = names(env)
    assert now.index("main.results.zenit_mug.zenit_mug") < now.index("main.results.acme_kettle.acme_kettle")
    assert {"main.results.acme_kettle.add_to_cart", "main.results.brio_desk_lamp.add_to_cart",
            "main.results.zenit_mug.add_to_cart"} <= set(now)  # each card's button named by its card
    res = env.step(Action.click("main.results.brio_desk_lamp.add_to_cart"))
    assert "added Brio Desk Lamp" in res.observation.html  # still the lamp's button
    res = env.step(Action.click("main.results.zenit_mug.add_to_cart"))
    assert "added Zenit Mug" in res.observation.html
    env.close()


def test_iframe_and_shadow_dom_elements_take_real_clicks(browser, site):
    env = site_env(browser, site, "/simplify/retailer.html")
    env.reset("u", 0)
    res = env.step(Action.click("main.promotions.claim_offer"))  # inside the iframe
    assert res.info["error_kind"] == "" and "Offer claimed" in res.observation.html
    res = env.step(Action.click("main.rate_this_product"))  # inside the shadow root
    assert res.info["error_kind"] == "" and "Thanks for rating" in res.observation.html
    res = env.step(Action.input("header.site_search.q", "kettle"))
    assert 'name="header.site_search.q" type="search" value="kettle"' in res.observation.html
    res = env.step(Action.click("main.results.sort.price-asc"))  # an option, chosen in its select
    assert res.info["error_kind"] == ""
    res = env.step(Action.click("header.site_search.search"))  # the search form sends the typed text
    assert res.observation.url.endswith("/search?URL_MASKED")
    assert site.log[-1].path == "/search?q=kettle"
    env.close()


def test_hidden_nodes_scripts_and_secrets_are_dropped(browser, site):
    env = site_env(browser, site, "/simplify/hidden.html")
    obs = env.reset("u", 0)
    assert "MUST_NOT_SHOW" not in obs.html
    assert names(env) == ["pw", "script_link", "open_chat", "size_guide", "inner_link"]
    assert obs.html.index("First visible paragraph.") < obs.html.index("Visible child") \
        < obs.html.index("Second <b>visible</b> paragraph.")
    assert "javascript:" not in obs.html and "Invisible button" not in obs.html
    env.close()


# --------------------------------------------------------------------------- our shop


_WEIGHTS = {"review": 4.0, "purchase": 2.0, "cart_side_bar": 2.0, "product_link": 2.0, "other": 2.0,
            "quantity": 0.5, "product_option": 0.5}


def _walk(browser, url: str, world, user: str, seed: int, steps: int, variant) -> tuple[Counter, int, list]:
    """A random shopper on our shop in the browser; (page kinds seen, pages, mismatches)."""
    env = ShopEnv(world, EnvConfig(max_steps=steps), backend=BrowserShop(browser, shop_url=url))
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    bad, pages = [], 0
    try:
        env.reset(user, seed, variant)
        while True:
            view = env.page_view
            mine, theirs = env.backend.last_names  # type: ignore[attr-defined]
            kinds[view.kind] += 1
            pages += 1
            if mine != theirs or set(view.elements) != theirs:
                bad.append((seed, view.kind, sorted(theirs - mine)[:5], sorted(mine - theirs)[:5]))
            if env.done or not view.elements:
                break
            by_type: dict[str, list[str]] = {}
            for n, t in view.elements.items():
                by_type.setdefault(str(t), []).append(n)
            types = sorted(by_type)  # a kind of element first (weighted to reach every page kind)
            t = rng.choices(types, weights=[_WEIGHTS.get(x, 1.0) for x in types])[0]
            n = rng.choice(by_type[t])
            text = rng.choice(["kettle", "coffee", "lamp"])
            action = Action.input(n, text) if t == "None" else Action.click(n)
            res = env.step(action)
            assert res.info["error_kind"] == "", res.observation.last_action_error
            if res.done:
                mine, theirs = env.backend.last_names  # type: ignore[attr-defined]
                kinds[res.observation.page_kind] += 1
                pages += 1
                if mine != theirs:
                    bad.append((seed, res.observation.page_kind, sorted(theirs - mine)[:5]))
                break
    finally:
        env.close()
    return kinds, pages, bad


def test_names_equal_the_renderers_on_every_page_kind_of_our_shop(browser, shops, worlds):
    """Many random sessions (both page sizes, control and variants): on every page the
    simplifier's names are exactly the world renderer's (the recorder block's)."""
    from customer_r1.world.variants import resolve_variants

    variants = [None, resolve_variants(["reviews_hidden", "no_deals"]),
                resolve_variants(["add_to_cart_below", "sort_by_price"])]
    jobs = [("compact", s, 12, variants[s % 3]) for s in range(16)]
    jobs += [("opera", 100 + s, 6, variants[s % 3]) for s in range(3)]
    kinds: Counter[str] = Counter()
    pages = 0
    bad: list = []

    def one(job):
        size, seed, steps, v = job
        w = worlds[size]
        return _walk(browser, shops[size], w, next(iter(w.users)), seed, steps, v)

    with ThreadPoolExecutor(4) as pool:
        for k, p, b in pool.map(one, jobs):
            kinds.update(k)
            pages += p
            bad += b
    print(f"\nname check: {len(jobs)} sessions, {pages} pages, kinds {dict(kinds)}, mismatches {len(bad)}")
    assert not bad, bad[:5]
    assert {"home", "search", "product", "reviews", "cart", "store", "order"} <= set(kinds), kinds
    assert pages >= 150


def test_our_shop_seen_through_the_simplifier_alone(browser, shops, worlds):
    """``page_source="simplifier"``: the observation is what the simplifier makes of our
    served page (as on any other site); its names are the renderer's and its text the
    renderer's text, in the same order."""
    from customer_r1.data.examples import page_names

    w = worlds["compact"]
    user = next(iter(w.users))
    env = ShopEnv(w, backend=BrowserShop(browser, shop_url=shops["compact"],
                                         config=BrowserConfig(page_source="simplifier")))
    local = ShopEnv(w)
    obs, ref = env.reset(user, 4), local.reset(user, 4)
    steps = (None, Action.input("nav_bar.search_input", "coffee"), Action.click("nav_bar.search_button"))
    for action in steps:
        if action is not None:
            obs, ref = env.step(action).observation, local.step(action).observation
        assert obs.html != ref.html and page_names(obs.html)[0] == page_names(ref.html)[0]
        assert re.sub(r"<[^>]+>|\s+", "", obs.html) == re.sub(r"<[^>]+>|\s+", "", ref.html)
    env.close()
