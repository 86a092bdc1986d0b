"""Ceilings checked by hand: a two-persona population on hand-built pages, and a tiny
generated world whose first steps have closed-form probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from customer_r1.actions import Action
from customer_r1.world import WorldConfig, generate_world
from customer_r1.world.catalog import generate_catalog
from customer_r1.world.generate import BlindFilter
from customer_r1.world.pages import build_page, shop_config
from customer_r1.world.persona import Traits, TraitTable
from customer_r1.world.policy import (
    INTEREST_MAIN,
    INTEREST_SECOND,
    P_DEAL,
    Memory,
    PolicyContext,
    decide,
)
from customer_r1.world.shop import Shop, ShopState, step


def test_two_persona_population_by_hand() -> None:
    cat = generate_catalog(np.random.default_rng(0))
    shop = Shop(cat, shop_config("compact"))
    brands, cats = list(cat.brands), [c.key for c in cat.categories]
    q = cat.queries(cats[0])[0]
    state = ShopState(page="search", query=q)
    page = build_page(state, shop, "compact")
    shown = shop.brand_filters(state)
    hidden = next(b for b in brands if b not in shown)
    # A: loyal to a brand on the page, not price-minded, no researcher.
    a = Traits(price=0, research=0, loyalty=4, impulse=2, patience=2, picky=2, bulk=2,
               budget=4, fav_brand=shown[0], cat1=cats[0], cat2=cats[1])
    # B: price-minded researcher whose favourite brand is not on the page.
    b = Traits(price=4, research=4, loyalty=0, impulse=2, patience=2, picky=2, bulk=2,
               budget=4, fav_brand=hidden, cat1=cats[0], cat2=cats[1])
    pop = TraitTable.from_traits([a, b], brands, cats)
    f = BlindFilter(pop, pop.row(0), np.random.default_rng(0), len(brands), len(cats),
                    redraw=False, resample_below=0.0)
    mem = Memory()
    table = f.table()
    dec = decide(PolicyContext(shop, state, page, mem, 40), table)
    p = dec.action_probs()  # rows: A, B, A (the true shopper)
    col = {x: i for i, x in enumerate(dec.actions)}
    brand_a = col[Action.click(f"brand.{shown[0].lower()}")]
    sort_p = col[Action.click("sort_by.price")]
    sort_r = col[Action.click("sort_by.rating")]
    # By hand, from the tables: A filters to its brand with 0.93, sorts by price with
    # (1 - 0.93) * 0.03; B never sees its brand, sorts by price with 0.93, by rating with
    # (1 - 0.93) * 0.92.
    assert p[0, brand_a] == pytest.approx(0.93)
    assert p[0, sort_p] == pytest.approx(0.07 * 0.03)
    assert p[1, brand_a] == 0.0
    assert p[1, sort_p] == pytest.approx(0.93)
    assert p[1, sort_r] == pytest.approx(0.07 * 0.92)
    np.testing.assert_allclose(p[2], p[0])
    assert p.sum(axis=1) == pytest.approx([1, 1, 1])
    # Blind = the 50/50 mixture: sort 0.4661 beats brand 0.465, so the blind argmax is
    # "sort by price", which A does with 0.0021; A's own best is 0.93.
    blind = f.weights() @ p[:2]
    assert blind[sort_p] == pytest.approx((0.0021 + 0.93) / 2)
    assert blind[brand_a] == pytest.approx(0.93 / 2)
    assert int(np.argmax(blind)) == sort_p
    persona_1, blind_1 = p[2].max(), p[2][int(np.argmax(blind))]
    assert (persona_1, blind_1) == pytest.approx((0.93, 0.0021))
    # A filters to its brand; B could not have: the posterior is all on A.
    mi = dec.motives.index(next(m for m in dec.motives if m.kind == "brand"))
    f.observe(dec.weights[:2, mi], table.accessed)
    assert f.weights() == pytest.approx([1.0, 0.0])
    assert {"loyalty", "fav_brand", "price", "research"} <= table.accessed
    act = Action.click(f"brand.{shown[0].lower()}")
    mem.update(state, page, act, dec.motives[mi])
    state = step(state, act, page.effects)
    page = build_page(state, shop, "compact")
    dec = decide(PolicyContext(shop, state, page, mem, 40), f.table())
    p = dec.action_probs()
    blind = f.weights() @ p[:2]
    # Step 2 (filtered listing): first result with 0.9 + 0.1 / k by browsing, known to both.
    k = len(page.listing)
    assert p[2].max() == pytest.approx(0.9 + 0.1 / k)
    assert p[2][int(np.argmax(blind))] == pytest.approx(0.9 + 0.1 / k)
    # Two-step ceilings of this session, by hand:
    assert np.mean([persona_1, p[2].max()]) == pytest.approx((0.93 + 0.9 + 0.1 / k) / 2)
    assert np.mean([blind_1, 0.9 + 0.1 / k]) == pytest.approx((0.0021 + 0.9 + 0.1 / k) / 2)


@pytest.fixture(scope="module")
def tiny():
    return generate_world(WorldConfig(users=3, sessions_per_user=2, seed=11, population=2000))


def test_tiny_world_ceilings_by_hand(tiny) -> None:
    steps = [st for s in tiny.sessions for st in s.steps]
    persona = sum(float(max(st.probs)) for st in steps) / len(steps)
    blind = sum(float(st.probs[list(st.blind_probs).index(max(st.blind_probs))])
                for st in steps) / len(steps)
    got = tiny.ceilings()
    assert got["ceiling_persona"] == pytest.approx(persona)
    assert got["ceiling_blind"] == pytest.approx(blind)
    assert got["gap"] == pytest.approx(persona - blind)
    assert got["steps"] == len(steps)
    for split in tiny.splits:
        ss = [st for s in tiny.split(split) for st in s.steps]
        assert tiny.ceilings(split)["ceiling_persona"] == pytest.approx(
            np.mean([st.probs.max() for st in ss]))


def test_first_step_probabilities_in_closed_form(tiny) -> None:
    n_cat = len(tiny.catalog.categories)
    other = (1 - INTEREST_MAIN - INTEREST_SECOND) / (n_cat - 2)
    for s in tiny.sessions:
        st = s.steps[0]
        tr = tiny.users[s.user_id].traits
        for a, p, pb in zip(st.actions, st.probs, st.blind_probs, strict=True):
            if a.type == "input":
                c = tiny.catalog.query_category[a.text]
                share = {tr.cat1: INTEREST_MAIN, tr.cat2: INTEREST_SECOND}.get(c, other)
                nq = len(tiny.catalog.queries(c))
                assert p == pytest.approx((1 - P_DEAL) * share / nq)
                # blind: a category is anyone's interest with probability 1 / n_cat
                assert pb == pytest.approx((1 - P_DEAL) / n_cat / nq, abs=0.012)
            else:
                assert a.type == "click" and p == pytest.approx(P_DEAL / len(st.state.deals))
                assert pb == pytest.approx(P_DEAL / len(st.state.deals))
        # the persona ceiling of the first step: a query of the main interest
        assert st.ceil_persona == pytest.approx((1 - P_DEAL) * INTEREST_MAIN / 2)
