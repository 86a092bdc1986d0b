"""Catalog, page rendering (state -> HTML) and shop transitions (state, action -> state)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from lxml import html as lxml_html

from customer_r1.actions import CLICK_TYPES, Action
from customer_r1.world.catalog import generate_catalog
from customer_r1.world.pages import build_page, shop_config
from customer_r1.world.shop import CartItem, Shop, ShopState, step

ALLOWED_ATTRS = {"alt", "title", "type", "value", "role", "href", "name"}


@pytest.fixture(scope="module")
def catalog():
    return generate_catalog(np.random.default_rng(0))


def _walk(shop: Shop, size: str) -> list:
    """home -> type -> search -> sort -> product -> option -> qty -> reviews -> back -> store
    -> product -> add -> cart -> save -> cart."""
    cat = shop.catalog
    q = next(iter(cat.query_category))
    s = ShopState(deals=tuple(sorted(cat.products)[:3]))
    pages = [build_page(s, shop, size)]

    def go(a: Action) -> None:
        nonlocal s
        s = step(s, a, pages[-1].effects)
        pages.append(build_page(s, shop, size))

    r = lambda role: Action.click(pages[-1].roles[role])  # noqa: E731
    go(Action.input(pages[-1].roles["search_input"], q))
    go(r("search_button"))
    go(r("sort_price"))
    pid = pages[-1].listing[0]
    go(r(f"item:{pid}"))
    p = cat.products[pid]
    if p.option_dim:
        go(r(f"option:{p.option_values[-1]}"))
    go(r("qty:2"))
    go(r("reviews"))
    go(r("critical"))
    go(r("back_product"))
    go(r("store"))
    go(r(f"item:{pages[-1].listing[0]}"))
    go(r("add"))
    go(r("side_cart"))
    first = s.cart[0].pid
    go(r(f"save:{first}"))
    return pages


@pytest.mark.parametrize("size", ["compact", "opera"])
def test_scripted_walk_and_page_invariants(catalog, size: str) -> None:
    shop = Shop(catalog, shop_config(size))
    pages = _walk(shop, size)
    kinds = [p.kind for p in pages]
    assert kinds[:4] == ["home", "home", "search", "search"]
    assert {"product", "reviews", "store", "cart"} <= set(kinds)
    for p in pages:
        doc = lxml_html.fromstring(p.html)
        names = [e.get("name") for e in doc.iter() if e.get("name")]
        assert len(names) == len(set(names)), "names are unique on a page"
        # every registered element is in the HTML with its name
        assert set(p.elements) <= set(names)
        for e in doc.iter():
            if isinstance(e.tag, str):
                extra = {a for a in e.attrib if a not in ALLOWED_ATTRS
                         and not a.startswith("aria-")}
                assert not extra, f"attributes OPeRA drops: {extra}"
        for el in p.elements.values():
            assert el.click_type is None or el.click_type in CLICK_TYPES
        assert "nav_bar.search_input" in p.elements and "nav_bar.cart" in p.elements
        if p.kind != "cart" and "cart_side_bar.go_to_cart" in p.elements:
            assert p.elements["cart_side_bar.go_to_cart"].click_type == "cart_side_bar"


def test_compact_pages_are_small_and_opera_pages_long(catalog) -> None:
    small = _walk(Shop(catalog, shop_config("compact")), "compact")
    big = _walk(Shop(catalog, shop_config("opera")), "opera")
    n_small = [len(p.elements) for p in small]
    assert 6 <= np.median(n_small) <= 15 and max(n_small) <= 18
    assert np.median([len(p.html) for p in small]) < 1200
    assert np.median([len(p.html) for p in big]) > 60_000
    # the same things keep the same names across pages and sizes
    for pages in (small, big):
        assert all(p.roles["search_button"] == "nav_bar.search_button" for p in pages)


def test_transitions(catalog) -> None:
    shop = Shop(catalog, shop_config("compact"))
    q = next(iter(catalog.query_category))
    s0 = ShopState()
    page = build_page(s0, shop, "compact")
    s1 = step(s0, Action.input("nav_bar.search_input", q), page.effects)
    assert s1.typed == q and s1.page == "home"
    s2 = step(s1, Action.click("nav_bar.search_button"), build_page(s1, shop, "compact").effects)
    assert (s2.page, s2.query, s2.typed) == ("search", q, "")
    p2 = build_page(s2, shop, "compact")
    s3 = step(s2, Action.click("sort_by.price"), p2.effects)
    prices = [catalog.products[i].price for i in shop.listing(s3)]
    assert prices == sorted(prices)
    s4 = step(s3, Action.click("pagination.next"), build_page(s3, shop, "compact").effects)
    assert s4.page_no == 2 and "pagination.previous" in build_page(s4, shop, "compact").elements
    with pytest.raises(KeyError):
        step(s4, Action.click("no.such.element"), p2.effects)
    assert step(s4, Action.terminate(), {}).ended == "terminate"
    # cart lines: one per product, quantities add up, totals follow options
    pid = shop.listing(s3)[0]
    c = (CartItem(pid, "", 1),)
    assert shop.cart_total(c) == catalog.products[pid].price


def test_catalog_is_seeded_and_shaped(catalog) -> None:
    again = generate_catalog(np.random.default_rng(0))
    assert again.products == catalog.products
    titles = [p.title for p in catalog.products.values()]
    assert len(set(titles)) == len(titles)
    assert all(2 <= len(t.split()) <= 3 for t in titles)
    with_opts = [p for p in catalog.products.values() if p.option_dim]
    assert with_opts and any(len(set(p.option_prices)) > 1 for p in with_opts)
    assert all(p.reviews and p.description and p.review_count > 0
               for p in catalog.products.values())
    assert any(p.rating < 4.0 for p in catalog.products.values())
    assert all(re.fullmatch(r"B0[A-Z0-9]{8}", p.pid) for p in catalog.products.values())
    # queries are unique per category, so a query reveals its category
    assert len(set(catalog.query_category)) == len(catalog.query_category)
