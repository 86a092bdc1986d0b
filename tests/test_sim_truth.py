"""The world's shopper in memory (``sim.truth``): the same sessions as a recorded
``sim run --policy world``; on a small truth run the site variants' effects on conversion
emerge from the shopper's rules with both signs, and every placebo's effect is exactly 0
under common random numbers (every session the same as on the control site)."""

from __future__ import annotations

import dataclasses

import pytest

from customer_r1.sim import ab
from customer_r1.sim.simulate import simulate
from customer_r1.sim.truth import true_rows
from customer_r1.world import WorldConfig, export_world, generate_world
from customer_r1.world.load import load_world
from customer_r1.world.variants import BUILTIN_VARIANTS, PLACEBO_VARIANTS, REAL_VARIANTS


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("truthworld")
    export_world(generate_world(WorldConfig(users=30, sessions_per_user=3, seed=6, population=40)), d)
    return d


def _plain(r) -> tuple:
    return dataclasses.astuple(dataclasses.replace(r, extra={}))


@pytest.mark.parametrize("variant", [None, "shipping_fee_10", "out_of_stock_50", "add_goes_to_cart"])
def test_in_memory_truth_is_the_recorded_run(world_dir, tmp_path, variant):
    kw = {"max_users": 10, "sessions_per_user": 2, "seed": 5}
    simulate(world=world_dir, out=tmp_path / "run", policy="world", progress=False,
             variant=[variant] if variant else None, **kw)
    recorded = ab.rows_of_run(tmp_path / "run")
    w = load_world(world_dir)
    mem = true_rows(w, BUILTIN_VARIANTS[variant] if variant else None, users=list(w.users)[:10],
                    sessions_per_user=2, seed=5)
    assert sorted(map(_plain, mem), key=repr) == sorted(map(_plain, recorded), key=repr)
    assert sorted(r.extra["key"] for r in mem) == sorted(r.extra["key"] for r in recorded)


@pytest.fixture(scope="module")
def truth(world_dir):
    w = load_world(world_dir)
    ctl = true_rows(w, None, sessions_per_user=12, seed=1)
    names = ["reviews_hidden", "no_save_for_later", "no_buy_now", "out_of_stock_50",
             *PLACEBO_VARIANTS]
    return ctl, {v: true_rows(w, BUILTIN_VARIANTS[v], sessions_per_user=12, seed=1) for v in names}


def test_placebos_are_exactly_zero_under_common_random_numbers(truth):
    ctl, arms = truth
    assert len(PLACEBO_VARIANTS) >= 6
    for v in PLACEBO_VARIANTS:
        assert [_plain(r) for r in arms[v]] == [_plain(r) for r in ctl], v
        e = ab.effects(ab.ArmRows(ctl, arms[v]), n_boot=100)["conversion"]
        assert (e.effect.value, e.effect.low, e.effect.high) == (0.0, 0.0, 0.0)


def test_real_effects_emerge_with_both_signs(truth):
    """360 sessions per arm: the big effects are significant and point the way the
    shopper's rules say (reviews hidden: no product left over bad reviews; no save for
    later: the not-ready go on to checkout; no Buy Now: impulsive buyers pass through the
    cart's side bar; half the catalog out of stock)."""
    ctl, arms = truth
    want = {"reviews_hidden": 1, "no_save_for_later": 1, "no_buy_now": -1, "out_of_stock_50": -1}
    for v, sign in want.items():
        e = ab.effects(ab.ArmRows(ctl, arms[v]), n_boot=300, seed=3)["conversion"]
        assert e.significant and e.effect.value * sign > 0.02, (v, e.effect)
    assert len(REAL_VARIANTS) >= 24
