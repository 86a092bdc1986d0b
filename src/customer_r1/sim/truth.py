"""The world's own shopper on a site, in memory: the true answer of an A/B test, fast.

``sim run --policy world`` runs the true shopper through ``ShopEnv`` and the runner, which
record every page in OPeRA's layout (a few hundred sessions a minute on 2 cores). An A/B
benchmark needs the truth on tens of thousands of sessions, and only each session's
figures. :func:`true_rows` runs the same sessions without the recording: the same jobs
(:func:`~customer_r1.sim.runner.plan_jobs`), today's deals from the same seed, the same
per-step seeds and draws as :class:`~customer_r1.sim.policies.WorldPolicy`, the same step
limit; each session comes back as the :class:`~customer_r1.sim.stats.SessionRow` that the
recorded run gives (``tests/test_sim_truth.py`` holds them equal), with the session's job
key in ``extra["key"]`` so that arms pair session by session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from customer_r1.sim.stats import SessionRow, page_kind_of

if TYPE_CHECKING:
    from customer_r1.world.generate import World
    from customer_r1.world.variants import SiteVariant

Progress = Callable[[int, int], None]


def true_rows(world: World, variant: SiteVariant | None = None, *, users: Sequence[str] | None = None,
              sessions_per_user: int = 1, seed: int = 0,
              progress: Progress | None = None) -> list[SessionRow]:
    """Every session of the world's shopper of ``users`` (default: all the world's, in its
    order) on ``variant``'s site, ``sessions_per_user`` each, seeds from the run ``seed``,
    exactly as ``sim run --policy world`` would simulate them."""
    from customer_r1.sim.runner import plan_jobs

    ids = list(world.users) if users is None else list(users)
    unknown = [u for u in ids if u not in world.users]
    if unknown:
        raise KeyError(f"unknown user {unknown[0]!r}")
    site = world.shop.with_variant(variant) if variant is not None else world.shop
    jobs = plan_jobs(ids, sessions_per_user, seed)
    pages: dict = {}  # state -> page: sessions revisit the same pages (rendering is pure)
    out = []
    for i, job in enumerate(jobs):
        if len(pages) > 200_000:
            pages.clear()
        out.append(_session(world, site, job.user_id, job.seed, job.key, pages))
        if progress is not None:
            progress(i + 1, len(jobs))
    return out


def _session(world: World, site, user_id: str, seed: int, key: str, pages: dict) -> SessionRow:
    from customer_r1.sim.runner import _step_seed
    from customer_r1.sim.session import draw_deals
    from customer_r1.world.generate import _products, _sample
    from customer_r1.world.pages import build_page
    from customer_r1.world.persona import TraitTable
    from customer_r1.world.policy import Memory, PolicyContext, decide
    from customer_r1.world.shop import ShopState, step

    cfg = world.config
    traits = world.users[user_id].traits
    cat = world.catalog
    table = TraitTable.from_traits([traits], list(cat.brands), [c.key for c in cat.categories])
    state = ShopState(deals=draw_deals(site, cfg.deals, seed))
    mem = Memory()
    kinds: list[str] = []
    actions: Counter[str] = Counter()
    clicks: Counter[str] = Counter()
    last_click: str | None = None
    lines = None
    t = 0
    while True:
        page = pages.get(state)
        if page is None:
            page = pages[state] = build_page(state, site, world.page_size)
        dec = decide(PolicyContext(site, state, page, mem, cfg.max_steps), table)
        rng = np.random.default_rng(np.random.SeedSequence([_step_seed(seed, t), 0x5011C7]))
        mi = _sample(dec.weights[0], rng)
        ai = _sample(dec.amat[mi], rng)
        motive, action = dec.motives[mi], dec.actions[ai]
        t += 1
        kinds.append(page_kind_of(page.url))
        actions[action.type] += 1
        last_click = None
        if action.type == "click":
            el = page.elements[action.name]  # type: ignore[index]
            last_click = el.click_type
            if el.click_type:
                clicks[el.click_type] += 1
            lines = _products(site, state, el.effect.kind)
        mem.update(state, page, action, motive)
        state = step(state, action, page.effects)
        if state.ended or t >= cfg.max_steps:
            break
    converted = state.ended == "purchase" and last_click == "purchase"
    value = items = 0.0
    if converted and lines:
        for line in lines:
            q = int(float(line["quantity"]) or 1)
            value += float(line["price"].replace("$", "").replace(",", "")) * q
            items += q
    return SessionRow(user_id, converted, t, dict(actions), dict(clicks), tuple(kinds), kinds[-1],
                      round(float(value), 2), int(items), {"key": key})
