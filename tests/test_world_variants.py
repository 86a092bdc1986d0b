"""Site variants (``world.variants``): the control site stays byte-identical, every built-in
variant changes what it says, the world's shopper acts sensibly on each, and variants
combine and load from YAML."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from worlddigest import WORLDS, page_digest, same_fingerprint, world_fingerprint

from customer_r1.actions import Action
from customer_r1.errors import BadInput, BadOption, MissingInput
from customer_r1.world import World, WorldConfig, export_world, generate_world
from customer_r1.world.catalog import generate_catalog
from customer_r1.world.generate import config_dict
from customer_r1.world.pages import Page, build_page, shop_config
from customer_r1.world.policy import Memory, PolicyContext, decide
from customer_r1.world.shop import CartItem, Shop, ShopConfig, ShopState, step
from customer_r1.world.variants import (
    BUILTIN_VARIANTS,
    CONTROL,
    PLACEBO_VARIANTS,
    REAL_VARIANTS,
    SiteVariant,
    combine,
    load_variant,
    resolve_variants,
)

# --------------------------------------------------------------------------- control


def _walk(shop: Shop, size: str) -> list[Page]:
    """A scripted walk over every page kind and most elements (roles that a variant
    removes are skipped)."""
    cat = shop.catalog
    q = next(iter(cat.query_category))
    s = ShopState(deals=tuple(sorted(cat.products)[:3]))
    pages = [build_page(s, shop, size)]

    def go(a: Action) -> None:
        nonlocal s
        s = step(s, a, pages[-1].effects)
        pages.append(build_page(s, shop, size))

    def r(role: str) -> bool:
        name = pages[-1].roles.get(role)
        if name is None:
            return False
        go(Action.click(name))
        return True

    r(f"item:{pages[-1].listing[0]}") if pages[-1].listing else None
    r("home")
    go(Action.input(pages[-1].roles["search_input"], q))
    go(Action.click(pages[-1].roles["search_button"]))
    brand = next((k for k in pages[-1].roles if k.startswith("brand:")), None)
    if brand:
        r(brand)
        r(brand)  # off again
    r("next_page")
    r("prev_page")
    r("sort_rating")
    r("sort_price")
    pid = pages[-1].listing[0]
    r(f"item:{pid}")
    p = cat.products[pid]
    if p.option_dim:
        r(f"option:{p.option_values[-1]}")
    r("qty:2")
    if r("reviews"):
        r("critical")
        r("back_product")
    r("store")
    r(f"item:{pages[-1].listing[0]}")
    r("add")
    if pages[-1].kind == "cart":  # a site that shows the cart after adding: back to the product
        r(f"detail:{s.cart[-1].pid}")
    r("back_results")
    related = next((k for k in pages[-1].roles if k.startswith("related:")), None)
    if related:
        r(related)
    r(f"item:{pages[-1].listing[-1]}")
    r("add")
    r("side_cart")
    if s.cart:  # (out of stock: neither product could be added)
        first = s.cart[0].pid
        r(f"save:{first}")
        r(f"move:{first}")
        r(f"delete:{first}")
    go(Action.input(pages[-1].roles["search_input"], q))  # suggestions under the box
    return pages


def _walk_digest(shop: Shop, size: str) -> str:
    h = hashlib.sha256()
    for page in _walk(shop, size):
        page_digest(h, page)
    return h.hexdigest()


@pytest.fixture(scope="module")
def catalog():
    return generate_catalog(np.random.default_rng(0))


# Computed from the code before site variants existed: the control site must not move a byte.
# Worlds are pinned by worlddigest's fingerprint (sessions, actions, texts, pages byte-exact;
# probabilities as fixed projections, to FLOAT_TOL, so the BLAS kernel cannot move them); the
# walks hold no computed floats and stay plain SHA-256 digests.
CONTROL_WORLDS = {
    "world_compact": {
        "exact": "b53547377ab1abdc06d58ff2bfceed86fcee18b33c2797adb581826464f70c97",
        "floats": [14.911348228846268, -3.5850781534403913, 0.5614187911472921, 5.986640006608209,
                   8.349954433321662, -4.688800245038251, 5.818045824518194, 6.666045575327608],
        "ceilings": [0.6769418747358309, 0.4984494851104707],
    },
    "world_opera": {
        "exact": "b36f83d71ea134a87c578c63174909cb914765bf1e8b0e49afce94bc9e89400c",
        "floats": [1.7158631876855703, 4.114830468139317, 0.4356956150475654, -3.581060447148898,
                   3.6739629207723494, 1.411141072205429, -2.338224544293226, 0.8033401601141648],
        "ceilings": [0.6108015565990992, 0.3771018468468469],
    },
}
CONTROL_WALKS = {
    "walk_compact": "2f1039c505bb91a7df21cbf4ed6d709648735bec7b3bca9405dbcf0d3d4f0268",
    "walk_opera": "33fa1097aa342046f974916da179390cb2b6bc07b84ba800d1e3ea20f358c285",
}


def test_control_site_is_byte_identical(catalog) -> None:
    for name, pinned in CONTROL_WORLDS.items():
        got = world_fingerprint(generate_world(WorldConfig(**WORLDS[name])))
        assert got["exact"] == pinned["exact"], name
        assert same_fingerprint(got, pinned), (name, got["floats"], got["ceilings"])
    walks = {"walk_compact": _walk_digest(Shop(catalog, shop_config("compact")), "compact"),
             "walk_opera": _walk_digest(Shop(catalog, shop_config("opera")), "opera")}
    assert walks == CONTROL_WALKS


# --------------------------------------------------------------------------- variants

NAME_RE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
REQUIRED = ("control", "reviews_hidden", "ratings_hidden", "price_up_10", "price_down_10",
            "sort_by_price", "results_halved", "results_doubled", "no_brand_filters",
            "no_deals", "no_related_searches", "add_to_cart_below")
SIZES = ("compact", "opera")


def _shops(catalog, name: str, size: str) -> tuple[Shop, Shop]:
    base = Shop(catalog, shop_config(size))
    return base, base.with_variant(BUILTIN_VARIANTS[name])


def _pages(catalog, shop: Shop, size: str) -> dict[str, Page]:
    """One page of every kind, each reached through the page's own effects."""
    cat = catalog
    q = next(iter(cat.query_category))
    pid = next(p for p in cat.search(q) if cat.products[p].option_dim)
    deals = tuple(sorted(cat.products)[:3])
    home = ShopState(deals=deals)
    out = {"home": build_page(home, shop, size)}
    typed = step(home, Action.input(out["home"].roles["search_input"], q), out["home"].effects)
    out["typed"] = build_page(typed, shop, size)
    s = step(typed, Action.click(out["typed"].roles["search_button"]), out["typed"].effects)
    out["search"] = build_page(s, shop, size)
    prod = ShopState(page="product", query=q, product=pid, deals=deals)
    out["product"] = build_page(prod, shop, size)
    out["reviews"] = build_page(ShopState(page="reviews", query=q, product=pid, deals=deals),
                                shop, size)
    out["store"] = build_page(ShopState(page="store", query=q, product=pid, deals=deals,
                                        store_brand=cat.products[pid].brand), shop, size)
    out["cart"] = build_page(ShopState(page="cart", deals=deals, cart=(
        CartItem(pid, cat.products[pid].option_values[-1], 2),)), shop, size)
    out["product_cart"] = build_page(ShopState(
        page="product", query=q, product=pid, deals=deals, added=True,
        cart=(CartItem(pid, "", 1),)), shop, size)
    return out


def _text_words(html: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", re.sub(r"<[^>]*>", " ", html))


@pytest.mark.parametrize("name", list(BUILTIN_VARIANTS))
@pytest.mark.parametrize("size", SIZES)
def test_every_variant_renders_every_page_kind(catalog, name: str, size: str) -> None:
    _, shop = _shops(catalog, name, size)
    assert shop.variant is BUILTIN_VARIANTS[name]
    pages = [*_pages(catalog, shop, size).values(), *_walk(shop, size)]
    assert {p.kind for p in pages} == {"home", "search", "product", "reviews", "store", "cart"}
    for p in pages:
        names = re.findall(r'name="([^"]+)"', p.html)
        assert len(names) == len(set(names))
        assert set(p.elements) <= set(names)
        assert all(NAME_RE.fullmatch(n) for n in p.elements), p.kind
        assert set(p.roles.values()) <= set(p.elements)
        for pid in p.listing:
            assert f"item:{pid}" in p.roles


def _prices(html: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"\$([0-9,]+\.[0-9]{2})", html)]


@pytest.mark.parametrize("size", SIZES)
def test_each_variant_changes_what_it_says(catalog, size: str) -> None:
    ctl = _pages(catalog, Shop(catalog, shop_config(size)), size)

    def pages(name: str) -> dict[str, Page]:
        return _pages(catalog, _shops(catalog, name, size)[1], size)

    # reviews hidden: no link, no snippets, the reviews page shows none
    v = pages("reviews_hidden")
    assert "reviews" in ctl["product"].roles and "reviews" not in v["product"].roles
    assert not any(e.effect.kind == "reviews" for p in v.values() for e in p.elements.values())
    assert "critical" not in v["reviews"].roles and "not available" in v["reviews"].html
    review_titles = {r.title for r in catalog.products[ctl["product"].url.split("/dp/")[1]
                                                        .split("?")[0]].reviews}
    for t in review_titles:
        assert t not in v["reviews"].html and t not in v["product"].html
    if size == "opera":
        assert 'name="top_reviews"' in ctl["product"].html
        assert 'name="top_reviews"' not in v["product"].html

    # ratings hidden: no aggregate rating or rating count anywhere, no sort by rating
    v = pages("ratings_hidden")
    assert "sort_rating" in ctl["search"].roles and "sort_rating" not in v["search"].roles
    for kind, p in v.items():
        # individual reviews keep their stars (reviews page, OPeRA-sized snippets)
        html = re.sub(r"[1-5]★ |[1-5]\.0 out of 5 stars", "", p.html)
        assert "★" not in html and "out of 5" not in html and " ratings" not in html, kind
        assert "Rated" not in html and "<th>Rating</th>" not in html, kind
        blob = json.dumps(p.page_meta) + json.dumps([e.meta for e in p.elements.values()])
        assert '"rating"' not in blob and "review_count" not in blob, kind
    assert re.search(r"[1-5]★ ", v["reviews"].html)  # the reviews keep their own stars

    # prices: every shown price scaled and rounded to cents (text and page_meta)
    for name, f in (("price_up_10", 1.1), ("price_down_10", 0.9)):
        v = pages(name)
        for kind in ("home", "search", "product", "store", "cart"):
            assert _prices(v[kind].html) == [round(x * f, 2) for x in _prices(ctl[kind].html)]
            mc = json.dumps(ctl[kind].page_meta)
            mv = json.dumps(v[kind].page_meta)
            assert [float(x) for x in re.findall(r'"\$([0-9.]+)"', mv)] == \
                [round(float(x) * f, 2) for x in re.findall(r'"\$([0-9.]+)"', mc)]
        assert any(_prices(v[k].html) for k in ("search", "product", "cart"))

    # sort by price: a new search starts sorted by price
    v = pages("sort_by_price")
    listing = v["search"].listing
    prods = catalog.products
    assert [prods[p].price for p in listing] == sorted(prods[p].price for p in listing)
    assert "Sorted by" in v["search"].html and "Sorted by" not in ctl["search"].html
    assert all(e.effect.sort == "price" for p in v.values() for e in p.elements.values()
               if e.effect.kind in ("search", "search_term"))
    q = ctl["search"].page_meta["search_term"][0]["term"]
    shop = _shops(catalog, "sort_by_price", size)[1]
    assert v["search"].listing == shop.listing(ShopState(query=q, sort="price"))[:len(listing)]

    # results per page halved / doubled (at least 1)
    k = shop_config(size).results_per_page
    for name, want in (("results_halved", max(1, (k + 1) // 2)), ("results_doubled", 2 * k)):
        n_all = len(catalog.search(q))
        assert len(pages(name)["search"].listing) == min(want, n_all)
    assert len(ctl["search"].listing) == min(k, len(catalog.search(q)))

    # brand filters, deals, related searches removed
    v = pages("no_brand_filters")
    assert any(r.startswith("brand:") for r in ctl["search"].roles)
    assert not any(r.startswith("brand:") for r in v["search"].roles)
    assert "Brand" in _text_words(ctl["search"].html)
    assert "Brand" not in _text_words(v["search"].html)
    v = pages("no_deals")
    assert ctl["home"].listing and not v["home"].listing
    assert "Today's deals" in ctl["home"].html and "Today's deals" not in v["home"].html
    assert not any(r.startswith("item:") for r in v["home"].roles)
    assert "promotion_items" not in v["home"].page_meta
    v = pages("no_related_searches")
    assert any(r.startswith("related:") for r in ctl["search"].roles)
    assert not any(r.startswith("related:") for r in v["search"].roles)
    assert "Related" not in v["search"].html

    # add to cart below the product details: same elements, buybox after them
    v = pages("add_to_cart_below")
    assert set(v["product"].elements) == set(ctl["product"].elements)
    anchor = 'name="product_description"' if size == "opera" else 'name="back_to_results"'
    for p, after in ((ctl["product"], False), (v["product"], True)):
        html = p.html
        assert (html.index('name="buybox.add_to_cart"') > html.index(anchor)) is after
        assert (html.index('name="buybox.buy_now"') > html.index(anchor)) is after
    order = list(v["product"].elements)
    assert order.index("buybox.add_to_cart") > order.index("back_to_results")


@pytest.mark.parametrize("size", SIZES)
def test_control_variant_keeps_every_page(catalog, size: str) -> None:
    base = Shop(catalog, shop_config(size))
    named = base.with_variant(SiteVariant(name="baseline"))
    for a, b in zip(_walk(base, size), _walk(named, size), strict=True):
        assert (a.html, a.page_meta, list(a.elements), a.roles) == \
            (b.html, b.page_meta, list(b.elements), b.roles)
    assert base.with_variant(CONTROL) is base


# --------------------------------------------------------------------------- generation


def _check_world(world: World) -> None:
    for s in world.sessions:
        assert s.variant == s.steps[0].variant
        for st in s.steps:
            page = world.page(st)
            for a in [st.action, *st.actions]:
                assert a.type == "terminate" or a.name in page.elements, (s.variant, a)


def _world(name: str, size: str = "compact", **kw) -> World:
    users, sessions = (6, 4) if size == "compact" else (2, 3)
    return generate_world(WorldConfig(users=users, sessions_per_user=sessions, seed=11,
                                      population=300, page_size=size,
                                      variant_mix=(name,), **kw))


@pytest.mark.parametrize("name", REQUIRED)
def test_worlds_generate_on_every_variant(name: str) -> None:
    world = _world(name)
    _check_world(world)
    assert {s.variant for s in world.split("train")} == {name}
    assert {s.variant for s in world.split("test")} == {"control"}


@pytest.mark.parametrize("name", ["ratings_hidden", "sort_by_price", "add_to_cart_below"])
def test_opera_worlds_on_variants_export(name: str, tmp_path) -> None:
    world = _world(name, "opera")
    _check_world(world)
    export_world(world, tmp_path)  # export's own check: the policy's support is on every page


def test_variant_mix_keeps_the_empty_world_and_test_split() -> None:
    cfg = dict(users=5, sessions_per_user=4, seed=2, population=200)
    plain = generate_world(WorldConfig(**cfg))
    mixed = generate_world(WorldConfig(**cfg, variant_mix=("control", "no_deals",
                                                           "price_up_10")))
    for a, b in zip(plain.sessions, mixed.sessions, strict=True):
        assert a.split == b.split
        if a.split == "test" or b.variant == "control":
            assert [st.action_id for st in a.steps] == [st.action_id for st in b.steps]
    assert {s.variant for s in mixed.split("train")} == {"control", "no_deals", "price_up_10"}
    assert same_fingerprint(world_fingerprint(generate_world(WorldConfig(**cfg, variant_mix=()))),
                            world_fingerprint(plain))


def test_variant_mix_validation() -> None:
    cfg = WorldConfig(users=2, variant_mix=["no_deals", "control"])  # type: ignore[arg-type]
    assert cfg.variant_mix == ("no_deals", "control") and hash(cfg)
    assert json.loads(json.dumps(config_dict(cfg)))["variant_mix"] == ["no_deals", "control"]
    assert WorldConfig(**json.loads(json.dumps(config_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="reviews_hidden"):
        WorldConfig(variant_mix=("nope",))


# --------------------------------------------------------------------------- behaviour


def _motives(world: World, split: str = "train") -> list[str]:
    return [st.motive.kind for s in world.split(split) for st in s.steps]


def _big(mix: tuple[str, ...]) -> World:
    return generate_world(WorldConfig(users=20, sessions_per_user=5, seed=4, population=1,
                                      test_fraction=0.0, variant_mix=mix))


def test_the_true_shopper_responds_to_the_site() -> None:
    mc = _motives(_big(()))
    m = {k: _motives(_big((k,))) for k in ("reviews_hidden", "no_brand_filters", "no_deals",
                                           "ratings_hidden", "no_related_searches",
                                           "sort_by_price", "price_up_10")}
    for kind, name in (("reviews", "reviews_hidden"), ("critical", "reviews_hidden"),
                       ("bad_reviews", "reviews_hidden"), ("brand", "no_brand_filters"),
                       ("deal", "no_deals"), ("sort_rating", "ratings_hidden"),
                       ("top_rated", "ratings_hidden"), ("related", "no_related_searches"),
                       ("sort_price", "sort_by_price")):
        assert kind in mc and kind not in m[name], (kind, name)
    assert "reviews" in m["ratings_hidden"]  # reviews are still there to read
    # where listings start sorted by price, price-minded shoppers open the cheapest at once
    assert m["sort_by_price"].count("cheapest") > mc.count("cheapest")

    def share(ms: list[str], kind: str) -> float:
        return ms.count(kind) / len(ms)

    assert share(m["price_up_10"], "over_budget") >= share(mc, "over_budget")


def _decisions(world: World, variant: str, pages: tuple[str, ...]):
    """The policy's decision on every recorded state of ``pages``, on control and on
    ``variant``, for the whole population."""
    t = world.population
    site = world.shop.with_variant(BUILTIN_VARIANTS[variant])
    for s in world.sessions:
        mem = Memory()
        for st in s.steps:
            page = world.page(st)
            if st.state.page in pages and not st.state.typed:
                yield tuple(decide(PolicyContext(sh, st.state, build_page(st.state, sh,
                                                                          "compact"),
                                                 mem, 40), t)
                            for sh in (world.shop, site))
            mem.update(st.state, page, st.action, st.motive)


def _motive_weights(dec) -> dict[str, np.ndarray]:
    return {m.key: dec.weights[:, i] for i, m in enumerate(dec.motives)}


@pytest.fixture(scope="module")
def small_world() -> World:
    return generate_world(WorldConfig(users=6, sessions_per_user=4, seed=8, population=60))


def test_add_to_cart_position_has_no_true_effect(small_world: World) -> None:
    n = 0
    for da, db in _decisions(small_world, "add_to_cart_below", ("product",)):
        pa = dict(zip(da.actions, da.action_probs().T, strict=True))
        pb = dict(zip(db.actions, db.action_probs().T, strict=True))
        assert pa.keys() == pb.keys()
        for k in pa:
            np.testing.assert_allclose(pa[k], pb[k])
        n += 1
    assert n > 5


@pytest.mark.parametrize(("variant", "more"), [("price_up_10", True), ("price_down_10", False)])
def test_budget_checks_follow_prices(small_world: World, variant: str, more: bool) -> None:
    """Per shopper and product, leaving a product page over budget (and dropping it from
    the cart) gets likelier as prices rise, and some shopper's check flips."""
    w = small_world
    site = w.shop.with_variant(BUILTIN_VARIANTS[variant])
    flips = 0
    for pid in sorted(w.catalog.products):
        for st in (ShopState(page="product", query="q", product=pid),
                   ShopState(page="cart", cart=(CartItem(pid, "", 2),))):
            ws = [_motive_weights(decide(PolicyContext(sh, st, build_page(st, sh, "compact"),
                                                       Memory(), 40), w.population))
                  for sh in (w.shop, site)]
            for key in ("over_budget", "drop"):
                a, b = (x.get(key, np.zeros(w.population.n)) for x in ws)
                assert np.all(b >= a - 1e-12) if more else np.all(b <= a + 1e-12)
                flips += int(np.any(a != b))
    assert flips > 0


# --------------------------------------------------------------------------- config


def test_builtins_and_serialisation() -> None:
    assert set(REQUIRED) <= set(BUILTIN_VARIANTS) and len(BUILTIN_VARIANTS) >= 11
    assert BUILTIN_VARIANTS["control"] == CONTROL and CONTROL.is_control
    for name, v in BUILTIN_VARIANTS.items():
        assert v.name == name and hash(v)
        assert SiteVariant.from_dict(json.loads(json.dumps(v.to_dict()))) == v
        # one lever per built-in (free shipping over a threshold needs the fee it waives)
        assert name in ("control", "free_shipping_over_50") or len(v.changes()) == 1
    assert len(REAL_VARIANTS) >= 24 and len(PLACEBO_VARIANTS) >= 6
    assert all(BUILTIN_VARIANTS[n].is_cosmetic for n in PLACEBO_VARIANTS)
    assert not any(BUILTIN_VARIANTS[n].is_cosmetic for n in REAL_VARIANTS)
    with pytest.raises(BadInput, match="colour"):
        SiteVariant.from_dict({"colour": "red"})
    with pytest.raises(ValueError):
        SiteVariant(price_factor=0)
    with pytest.raises(ValueError):
        SiteVariant(default_sort="newest")
    for bad in ({"coupon": 0.95}, {"out_of_stock": 1.5}, {"shipping_fee": -1}, {"ranking": "random"},
                {"free_shipping_over": 50.0}, {"sort_options": False, "default_sort": "price"}):
        with pytest.raises(ValueError):
            SiteVariant(**bad)
    v = SiteVariant(shipping_fee=9.99, free_shipping_over=50.0, coupon=0.1)
    assert v.shipping(49.0) == 9.99 and v.shipping(50.0) == 0.0
    assert v.pays(40.0) == round(36.0 + 9.99, 2) and v.pays(60.0) == 54.0
    assert CONTROL.pays(12.34) == 12.34 and CONTROL.shipping(5.0) == 0.0


def test_price_and_results_scaling(catalog) -> None:
    base = Shop(catalog, shop_config("compact"))
    up = base.with_variant(BUILTIN_VARIANTS["price_up_10"])
    for pid, p in catalog.products.items():
        q = up.catalog.products[pid]
        assert q.price == round(p.price * 1.1, 2)
        assert q.option_prices == tuple(round(x * 1.1, 2) for x in p.option_prices)
    assert base.catalog.products == catalog.products  # the control shop is untouched
    assert base.with_variant(BUILTIN_VARIANTS["results_halved"]).config.results_per_page == 2
    tiny = Shop(catalog, ShopConfig(results_per_page=1))
    assert tiny.with_variant(BUILTIN_VARIANTS["results_halved"]).config.results_per_page == 1
    opera = Shop(catalog, shop_config("opera"))
    assert opera.with_variant(BUILTIN_VARIANTS["results_halved"]).config.results_per_page == 6
    assert opera.with_variant(BUILTIN_VARIANTS["results_doubled"]).config.results_per_page == 24
    with pytest.raises(ValueError, match="control shop"):
        up.with_variant(BUILTIN_VARIANTS["no_deals"])


def test_combine() -> None:
    b = BUILTIN_VARIANTS
    v = combine([b["reviews_hidden"], b["price_up_10"], b["no_deals"]])
    assert v.name == "reviews_hidden+price_up_10+no_deals"
    assert (v.hide_reviews, v.price_factor, v.deals) == (True, 1.1, False)
    assert combine([]) == CONTROL and combine([CONTROL, b["no_deals"]]) is b["no_deals"]
    assert combine([b["no_deals"], b["no_deals"]]) is b["no_deals"]
    with pytest.raises(BadOption, match=r"price_up_10.*price_down_10"):
        combine([b["price_up_10"], b["price_down_10"]])
    with pytest.raises(BadOption):
        combine([b["ratings_hidden"], SiteVariant("by_rating", default_sort="rating")])
    assert resolve_variants(None) == CONTROL and resolve_variants([]) == CONTROL
    r = resolve_variants(["sort_by_price", "no_brand_filters"])
    assert r.name == "sort_by_price+no_brand_filters" and not r.brand_filters
    assert r.default_sort == "price"


def test_load_variant(tmp_path) -> None:
    assert load_variant("no_deals") is BUILTIN_VARIANTS["no_deals"]
    with pytest.raises(BadOption, match="reviews_hidden"):
        load_variant("no_such_variant")
    with pytest.raises(MissingInput):
        load_variant(str(tmp_path / "missing.yaml"))
    f = tmp_path / "cheap.yaml"
    f.write_text("name: cheap_quiet\nextends: [price_down_10, no_related_searches]\n"
                 "hide_reviews: true\n")
    v = load_variant(str(f))
    assert v.name == "cheap_quiet" and v.price_factor == 0.9 and v.hide_reviews
    assert not v.related_searches
    assert resolve_variants([str(f), "no_deals"]).name == "cheap_quiet+no_deals"
    g = tmp_path / "plain.yml"
    g.write_text("results_per_page_factor: 3\n")
    assert load_variant(str(g)) == SiteVariant("plain", results_per_page_factor=3.0)
    cases = {"colour: red\n": "colour", "price_factor: cheap\n": "price_factor",
             "deals: 0\n": "deals", "default_sort: newest\n": "default_sort",
             "extends: [nope]\n": "extends", "price_factor: -1\n": "price_factor"}
    for i, (text, key) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.yaml"
        bad.write_text(text)
        with pytest.raises(BadInput) as exc:
            load_variant(str(bad))
        assert str(bad) in exc.value.line() and key in exc.value.line(), exc.value.line()
    for text in ("- a\n- b\n", "name: [unclosed\n"):
        bad = tmp_path / "shape.yaml"
        bad.write_text(text)
        with pytest.raises(BadInput, match=r"shape\.yaml"):
            load_variant(str(bad))


# --------------------------------------------------------------------------- issue 26 levers


@pytest.mark.parametrize("size", SIZES)
def test_new_levers_change_what_they_say(catalog, size: str) -> None:
    ctl = _pages(catalog, Shop(catalog, shop_config(size)), size)

    def pages(name: str) -> dict[str, Page]:
        return _pages(catalog, _shops(catalog, name, size)[1], size)

    prods = catalog.products
    v = pages("sponsored_first")
    shop = _shops(catalog, "sponsored_first", size)[1]
    q = ctl["search"].page_meta["search_term"][0]["term"]
    full = shop.listing(ShopState(query=q))
    assert [prods[i].rating for i in full] == sorted(prods[i].rating for i in full)
    assert v["search"].listing != ctl["search"].listing or len(set(full)) == 1
    assert "sort_price" in ctl["search"].roles and not pages("no_sort")["search"].roles.keys() & {
        "sort_price", "sort_rating"}
    assert any(r.startswith("suggestion:") for r in ctl["typed"].roles)
    assert not any(r.startswith("suggestion:") for r in pages("no_search_suggestions")["typed"].roles)
    assert "buy_now" in ctl["product"].roles and "buy_now" not in pages("no_buy_now")["product"].roles
    assert "side_checkout" in ctl["product_cart"].roles
    assert "side_checkout" not in pages("no_side_checkout")["product_cart"].roles
    assert any(r.startswith("save:") for r in ctl["cart"].roles)
    assert not any(r.startswith("save:") for r in pages("no_save_for_later")["cart"].roles)
    add = pages("add_goes_to_cart")["product"]
    pid = next(p for p in catalog.search(q) if prods[p].option_dim)  # the product _pages shows
    after = step(ShopState(page="product", query=q, product=pid), Action.click(add.roles["add"]),
                 add.effects)
    assert after.page == "cart" and after.cart and not after.added
    for name, fee in (("shipping_fee_5", "$4.99"), ("shipping_fee_10", "$9.99")):
        v = pages(name)
        assert f"Shipping: {fee}" in v["product"].html and "Shipping: " not in ctl["product"].html
        assert "Order total" in v["cart"].html and "Order total" not in ctl["cart"].html
    assert "FREE on orders over $50.00" in pages("free_shipping_over_50")["product"].html
    assert "Coupon: 30% off" in pages("coupon_30")["product"].html
    oos = _shops(catalog, "out_of_stock_50", size)[1]
    out = [pid for pid in sorted(prods) if oos.variant.unavailable(pid)]
    ten = _shops(catalog, "out_of_stock_10", size)[1]
    assert 0.3 < len(out) / len(prods) < 0.7 and set(filter(ten.variant.unavailable, prods)) <= set(out)
    page = build_page(ShopState(page="product", product=out[0]), oos, size)
    assert "Currently unavailable" in page.html and not page.roles.keys() & {"add", "buy_now", "subscribe"}
    assert not any(CONTROL.unavailable(pid) for pid in prods)


@pytest.mark.parametrize("size", SIZES)
def test_placebos_change_the_page_not_what_it_does(catalog, size: str) -> None:
    """Every placebo changes the HTML of some page, while every page keeps the same roles
    with the same effects, the same listing and the same decision facts."""
    base = Shop(catalog, shop_config(size))
    for name in PLACEBO_VARIANTS:
        shop = base.with_variant(BUILTIN_VARIANTS[name])
        changed = 0
        for a, b in zip(_walk(base, size), _walk(shop, size), strict=True):
            changed += a.html != b.html
            assert a.listing == b.listing and a.facts == b.facts and a.kind == b.kind, name
            assert {r: a.elements[n].effect for r, n in a.roles.items()} == \
                {r: b.elements[n].effect for r, n in b.roles.items()}, name
        assert changed, name


def test_placebos_keep_every_decision(small_world: World) -> None:
    """On every recorded state, the world's shopper on a placebo site has the same motives
    with the same probabilities over actions with the same effects, in the same order: so
    the same draws give the same sessions (true effect exactly 0 under CRN)."""
    n = 0
    for name in PLACEBO_VARIANTS:
        for da, db in _decisions(small_world, name, ("home", "search", "product", "reviews", "cart",
                                                     "store")):
            assert da.motives == db.motives
            np.testing.assert_array_equal(da.weights, db.weights)
            np.testing.assert_array_equal(da.amat, db.amat)
            assert len(da.actions) == len(db.actions)
            assert [a.type for a in da.actions] == [a.type for a in db.actions]
            assert [a.text for a in da.actions] == [a.text for a in db.actions]
            n += 1
    assert n > 50


def test_new_rules_act_only_where_the_site_differs(small_world: World) -> None:
    """Out of stock: the shopper leaves the product (motive ``unavailable``, all of the
    mass). Shipping fee: at the cart, price-minded shoppers balk, more for a larger fee;
    with a coupon the budget check weighs the discounted price. None of it on control."""
    w = small_world
    t = w.population
    pid = next(p for p in sorted(w.catalog.products)
               if BUILTIN_VARIANTS["out_of_stock_50"].unavailable(p))
    st = ShopState(page="product", query="q", product=pid)
    for shop, unavailable in ((w.shop, False), (w.site("out_of_stock_50"), True)):
        dec = decide(PolicyContext(shop, st, build_page(st, shop, "compact"), Memory(), 40), t)
        w_m = _motive_weights(dec)
        assert ("unavailable" in w_m) is unavailable
        if unavailable:
            assert set(w_m) == {"unavailable"} and np.allclose(w_m["unavailable"], 1.0)
    cart = ShopState(page="cart", cart=(CartItem(pid, "", 1),))
    balk = {}
    for name in ("control", "shipping_fee_5", "shipping_fee_10"):
        shop = w.site(name)
        dec = decide(PolicyContext(shop, cart, build_page(cart, shop, "compact"), Memory(), 40), t)
        balk[name] = _motive_weights(dec).get("shipping_fee", np.zeros(t.n))
    assert not balk["control"].any()
    assert np.all(balk["shipping_fee_10"] >= balk["shipping_fee_5"]) and balk["shipping_fee_10"].sum() > \
        balk["shipping_fee_5"].sum() > 0
    price = np.asarray(t.price)
    assert balk["shipping_fee_10"][price == 4].mean() > balk["shipping_fee_10"][price == 0].mean()
