"""The default world (generated once): realism, ceilings gap, traits steering behaviour,
one click type per name, and probabilities reproducible from observable history."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from customer_r1.actions import CLICK_TYPES
from customer_r1.world import World, WorldConfig, generate_world
from customer_r1.world.pages import build_page
from customer_r1.world.persona import TraitTable
from customer_r1.world.policy import Memory, PolicyContext, decide
from customer_r1.world.shop import ShopState, step
from customer_r1.world.stats import world_stats


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(WorldConfig())


@pytest.fixture(scope="module")
def stats(world: World) -> dict:
    return world_stats(world)


def test_gap_between_persona_and_blind_ceilings(world: World) -> None:
    for split in ("train", "test", None):
        c = world.ceilings(split)
        assert c["gap"] >= 0.05, c  # acceptance
    c = world.ceilings()
    assert c["gap"] >= 0.10  # the design aims at 10-20 points
    assert 0.55 < c["ceiling_persona"] < 0.9


def test_realism_near_opera(stats: dict) -> None:
    mix = stats["action_mix"]
    assert 0.82 <= mix["click"] <= 0.90
    assert 0.07 <= mix["input"] <= 0.13
    assert 0.02 <= mix["terminate"] <= 0.07
    assert 9 <= stats["median_session_length"] <= 11
    assert 0.45 <= stats["outcome_mix"]["purchase"] <= 0.65
    assert stats["click_types_present"] == len(CLICK_TYPES)
    assert stats["rationale_coverage"] == 1.0
    assert 6 <= stats["page_names_median"] <= 15


def test_one_click_type_per_name_and_every_type_reachable(world: World) -> None:
    types: dict[str, set[str]] = defaultdict(set)
    for s in world.sessions[::4]:
        for st in s.steps:
            for name, el in world.page(st).elements.items():
                types[name].add(el.click_type or "input")
    assert all(len(v) == 1 for v in types.values()), {k: v for k, v in types.items()
                                                      if len(v) > 1}
    clicked = {st.click_type for s in world.sessions for st in s.steps if st.click_type}
    assert clicked == set(CLICK_TYPES)


def _per_user(world: World, trait: str, count, per) -> tuple[float, float]:
    """Mean rate of a behaviour for users high (>= 3) vs low (<= 1) on a trait."""
    rates: dict[str, list[float]] = {"hi": [], "lo": []}
    for uid, u in world.users.items():
        lv = getattr(u.traits, trait)
        if lv == 2:
            continue
        ss = [s for s in world.sessions if s.user_id == uid]
        num = sum(count(st) for s in ss for st in s.steps)
        den = sum(per(s, st) for s in ss for st in s.steps) or 1
        rates["hi" if lv >= 3 else "lo"].append(num / den)
    return float(np.mean(rates["hi"])), float(np.mean(rates["lo"]))


def _name(st) -> str:
    return st.action.name or ""


def test_traits_steer_behaviour(world: World) -> None:
    on_results = lambda s, st: st.state.page == "search"  # noqa: E731
    on_product = lambda s, st: st.state.page == "product" and not st.state.added  # noqa: E731
    per_session = lambda s, st: st is s.steps[0]  # noqa: E731
    hi, lo = _per_user(world, "price", lambda st: _name(st) == "sort_by.price", on_results)
    assert hi > 2 * lo, ("price-sensitive users sort by price", hi, lo)
    hi, lo = _per_user(world, "research", lambda st: _name(st) == "see_all_reviews", on_product)
    assert hi > 2 * lo, ("researchers read reviews", hi, lo)
    hi, lo = _per_user(world, "impulse", lambda st: _name(st) == "buybox.buy_now", on_product)
    assert hi > 2 * lo, ("impulsive users buy now", hi, lo)
    hi, lo = _per_user(world, "loyalty", lambda st: _name(st).startswith("visit_the_")
                       or _name(st).startswith("brand."), per_session)
    assert hi > 2 * lo, ("loyal users filter to / visit their brand", hi, lo)
    hi, lo = _per_user(world, "picky", lambda st: st.click_type == "product_option", on_product)
    assert hi > 2 * lo, ("picky users choose options", hi, lo)
    hi, lo = _per_user(world, "bulk", lambda st: st.click_type == "quantity"
                       or _name(st) == "buybox.subscribe", on_product)
    assert hi > 2 * lo, ("bulk buyers take two or subscribe", hi, lo)
    hi, lo = _per_user(world, "impulse", lambda st: 1, per_session)
    assert hi < lo, ("impulsive users have shorter sessions", hi, lo)
    hi, lo = _per_user(world, "patience", lambda st: 1, per_session)
    assert hi > lo, ("patient users browse longer", hi, lo)


def test_probabilities_sum_to_one(world: World) -> None:
    for s in world.sessions:
        for st in s.steps:
            assert st.probs.sum() == pytest.approx(1.0)
            assert st.blind_probs.sum() == pytest.approx(1.0)
            assert st.probs[st.actions.index(st.action)] > 0


def test_probabilities_follow_from_persona_and_observable_history(world: World) -> None:
    """Replay sessions from what a model sees (first page, actions, the motives their
    rationales state) with the persona's traits: pages and probabilities come out the same."""
    cat = world.catalog
    brands, cats = list(cat.brands), [c.key for c in cat.categories]
    for s in world.sessions[::37]:
        traits = TraitTable.from_traits([world.users[s.user_id].traits], brands, cats)
        state = ShopState(deals=world.page(s.steps[0]).listing)
        mem = Memory()
        for st in s.steps:
            page = build_page(state, world.shop, world.page_size)
            assert page.html == world.page(st).html
            dec = decide(PolicyContext(world.shop, state, page, mem, world.config.max_steps),
                         traits)
            mine = dict(zip(dec.actions, dec.action_probs()[0], strict=True))
            for a, pr in zip(st.actions, st.probs, strict=True):
                assert mine.pop(a, 0.0) == pytest.approx(pr, abs=1e-12)
            assert not any(mine.values())
            mem.update(state, page, st.action, st.motive)
            state = step(state, st.action, page.effects)
        assert state.ended
