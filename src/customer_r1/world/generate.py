"""Generate a world: catalog, shoppers, sessions, and each step's exact probabilities.

Per step the policy is scored for the true shopper and, in the same numpy call, for a
population drawn from the trait prior; the population's posterior given the session's
earlier motives (which rationales reveal) gives the persona-blind predictive
distribution. Both are kept on the step, so the ceilings are exact expectations rather
than sampled accuracies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from customer_r1.actions import Action
from customer_r1.domain import Observation, Session, ShoppingData, Step, User
from customer_r1.world.catalog import Catalog, generate_catalog
from customer_r1.world.pages import PAGE_SIZES, Page, PageSize, build_page, shop_config
from customer_r1.world.persona import (
    TABLE_FIELDS,
    TrackedTable,
    Traits,
    TraitTable,
    balanced_traits,
    sample_traits,
    survey_for,
)
from customer_r1.world.policy import Memory, Motive, PolicyContext, decide
from customer_r1.world.randomise import (
    HELD_OUT_SPLIT,
    RandomiseConfig,
    draw_site,
    held_out_seed,
    site_rng,
    train_seed,
)
from customer_r1.world.rationale import write_rationale
from customer_r1.world.shop import Shop, ShopState, step
from customer_r1.world.variants import SiteVariant

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Everything that determines a world; the same config gives the same bytes."""

    users: int = 40
    sessions_per_user: int = 10
    page_size: str = "compact"
    seed: int = 0
    test_fraction: float = 0.2
    population: int = 2000  # trait vectors for the persona-blind posterior
    categories: int = 8
    brands: int = 8
    products_per_category: int = 12
    queries_per_category: int = 2
    deals: int = 3
    max_steps: int = 40
    start_date: str = "2025-04-01"
    #: More training sessions per user, drawn after the others from the same stream, so
    #: every session (and the test split) of the same config without them is unchanged:
    #: more training data for the same test set.
    extra_train_sessions: int = 0
    #: Site variants of the training sessions (built-in names of
    #: :data:`customer_r1.world.variants.BUILTIN_VARIANTS`, ``control`` included): when
    #: given, each train session's site is drawn uniformly from them, from a stream of its
    #: own, so an empty mix leaves every byte of the world unchanged. Test sessions stay
    #: on the control site.
    variant_mix: tuple[str, ...] = ()
    #: A domain-randomised world (:mod:`customer_r1.world.randomise`): each training
    #: session on a site drawn from compositions of variants and continuous parameters,
    #: held-out variants in a ``heldout`` split of their own. A mapping of
    #: :class:`~customer_r1.world.randomise.RandomiseConfig` fields is accepted. ``None``
    #: (the default) leaves every byte of the world unchanged.
    randomise: RandomiseConfig | None = None

    @property
    def total_sessions(self) -> int:
        """Sessions the world holds: every user's regular and extra training sessions, and
        a randomised world's held-out sessions."""
        held = 0 if self.randomise is None else (
            len(self.randomise.held_out) * self.randomise.held_out_sessions_per_user)
        return self.users * (self.sessions_per_user + self.extra_train_sessions + held)

    def __post_init__(self) -> None:
        if self.page_size not in PAGE_SIZES:
            raise ValueError(f"page_size must be one of {PAGE_SIZES}")
        if self.users < 1 or self.sessions_per_user < 1:
            raise ValueError("need at least one user and one session per user")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in [0, 1)")
        if self.test_fraction > 0 and self.sessions_per_user < 2:
            raise ValueError("every user is in both splits: sessions_per_user must be >= 2")
        if self.extra_train_sessions < 0:
            raise ValueError("extra_train_sessions must be >= 0")
        if self.population < 1:
            raise ValueError("population must be >= 1")
        if self.max_steps < 4:
            raise ValueError("max_steps must be >= 4")
        from customer_r1.world.variants import BUILTIN_VARIANTS

        if isinstance(self.variant_mix, str):
            raise ValueError("variant_mix must be a list of variant names, not a string")
        object.__setattr__(self, "variant_mix", tuple(self.variant_mix))
        unknown = [v for v in self.variant_mix if v not in BUILTIN_VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) in variant_mix: {unknown}; built-in: "
                             f"{', '.join(BUILTIN_VARIANTS)}")
        object.__setattr__(self, "randomise", RandomiseConfig.from_value(self.randomise))
        if self.randomise is not None and self.variant_mix:
            raise ValueError("give either variant_mix or randomise, not both")


@dataclass(slots=True)
class WorldUser:
    user_id: str
    traits: Traits
    survey: dict[str, Any]


@dataclass(slots=True)
class WorldStep:
    """One step: the state shown, what was done and why, and the policy's probabilities
    over ``actions`` (the support, in page order) for the true shopper and blind."""

    action_id: str
    timestamp: str
    state: ShopState
    action: Action
    click_type: str | None
    motive: Motive
    rationale: str
    actions: list[Action]
    probs: np.ndarray
    blind_probs: np.ndarray
    products: list[dict[str, str]] | None = None
    element_meta: dict[str, str] | None = None
    mouse: dict[str, int] = field(default_factory=dict)
    variant: str = "control"  # the site variant the step's page is rendered on
    #: The page facts the step's decision consulted, (kind, shown text): see
    #: ``policy.Decision.evidence``. Recorded beside the step, never drawn from.
    evidence: tuple[tuple[str, str], ...] = ()

    @property
    def ceil_persona(self) -> float:
        """Bayes accuracy of a predictor that knows the persona: max_a p(a)."""
        return float(self.probs.max())

    @property
    def ceil_blind(self) -> float:
        """Expected accuracy of the persona-blind argmax under the true policy."""
        return float(self.probs[int(np.argmax(self.blind_probs))])


@dataclass(slots=True)
class WorldSession:
    session_id: str
    user_id: str
    split: str
    steps: list[WorldStep]
    variant: str = "control"  # the site variant (built-in name) of the session

    @property
    def outcome(self) -> str:
        last = self.steps[-1]
        return "purchase" if last.click_type == "purchase" else "terminate"


@dataclass(slots=True)
class World:
    """A generated world. Pages are re-rendered on demand from the stored states."""

    config: WorldConfig
    catalog: Catalog
    shop: Shop
    users: dict[str, WorldUser]
    sessions: list[WorldSession]
    population: TraitTable
    #: Sites that are not built-in variants (a randomised world's drawn sites), by name.
    variants: dict[str, SiteVariant] = field(default_factory=dict)
    _sites: dict[str, Shop] = field(default_factory=dict, repr=False, compare=False)

    @property
    def page_size(self) -> PageSize:
        return self.config.page_size  # type: ignore[return-value]

    def site(self, variant: str = "control") -> Shop:
        """The shop on a site variant: a built-in name or one of :attr:`variants`
        (``control``: :attr:`shop` itself)."""
        if variant == "control":
            return self.shop
        if variant not in self._sites:
            from customer_r1.world.variants import BUILTIN_VARIANTS

            v = self.variants[variant] if variant in self.variants else BUILTIN_VARIANTS[variant]
            self._sites[variant] = self.shop.with_variant(v)
        return self._sites[variant]

    def page(self, s: WorldStep) -> Page:
        return build_page(s.state, self.site(s.variant), self.page_size)

    def split(self, name: str) -> list[WorldSession]:
        return [s for s in self.sessions if s.split == name]

    @property
    def splits(self) -> list[str]:
        return sorted({s.split for s in self.sessions})

    def ceilings(self, split: str | None = None, variant: str | None = None) -> dict[str, float]:
        """Persona and persona-blind exact-match ceilings (means over steps) and their gap,
        over one split and / or one site variant (None: all)."""
        steps = [st for s in self.sessions if split in (None, s.split)
                 and variant in (None, s.variant) for st in s.steps]
        if not steps:
            return {"ceiling_persona": 0.0, "ceiling_blind": 0.0, "gap": 0.0, "steps": 0}
        cp = float(np.mean([st.ceil_persona for st in steps]))
        cb = float(np.mean([st.ceil_blind for st in steps]))
        return {"ceiling_persona": cp, "ceiling_blind": cb, "gap": cp - cb, "steps": len(steps)}

    def to_shopping_data(self) -> ShoppingData:
        """The world as domain objects, exactly what loading its export gives."""
        users = {u.user_id: User(u.user_id, survey=u.survey, raw_survey=json.dumps(u.survey))
                 for u in self.users.values()}
        sessions = []
        for s in self.sessions:
            steps = []
            for st in s.steps:
                page = self.page(st)
                steps.append(Step(
                    action_id=st.action_id, timestamp=st.timestamp, kind=st.action.type,
                    observation=Observation(page.html, page.url, page.page_meta),
                    action=st.action, click_type=st.click_type, rationale=st.rationale,
                    rationale_source="world", products=st.products,
                    extra={"motive": st.motive.key},
                ))
            sessions.append(Session(s.session_id, s.user_id, s.split, steps))
        return ShoppingData(users, sessions, source="world")


def _seeds(cfg: WorldConfig) -> list[np.random.SeedSequence]:
    """The world's independent streams: catalog, users, population, sessions, blind filter."""
    return np.random.SeedSequence(cfg.seed).spawn(5)


def world_base(config: WorldConfig | None = None, *, population: bool = True) -> World:
    """The world without sessions: catalog, shop and shoppers, exactly as
    :func:`generate_world` draws them for the same config (each from its own stream), so
    a simulator rebuilds a generated world's shop and shoppers from its ``world.json``
    in milliseconds. ``population=False`` skips the persona-blind population (empty)."""
    cfg = config or WorldConfig()
    s_cat, s_users, s_pop, _, _ = _seeds(cfg)
    catalog = generate_catalog(np.random.default_rng(s_cat), n_categories=cfg.categories,
                               n_brands=cfg.brands,
                               products_per_category=cfg.products_per_category,
                               queries_per_category=cfg.queries_per_category)
    shop = Shop(catalog, shop_config(cfg.page_size))  # type: ignore[arg-type]
    brands = list(catalog.brands)
    cats = [c.key for c in catalog.categories]
    labels = {c.key: c.label for c in catalog.categories}

    urng = np.random.default_rng(s_users)
    users: dict[str, WorldUser] = {}
    for tr in balanced_traits(urng, cfg.users, brands, cats):
        uid = str(uuid.UUID(bytes=urng.bytes(16), version=4))
        users[uid] = WorldUser(uid, tr, survey_for(tr, urng, labels))

    prng = np.random.default_rng(s_pop)
    pop = [sample_traits(prng, brands, cats) for _ in range(cfg.population if population else 0)]
    return World(cfg, catalog, shop, users, [], TraitTable.from_traits(pop, brands, cats))


def generate_world(config: WorldConfig | None = None, progress: Progress | None = None) -> World:
    """Draw a catalog, shoppers and their sessions; deterministic for ``config.seed``."""
    cfg = config or WorldConfig()
    world = world_base(cfg)
    catalog, users, population = world.catalog, world.users, world.population
    brands = list(catalog.brands)
    cats = [c.key for c in catalog.categories]
    _, _, _, s_sess, s_blind = _seeds(cfg)
    per = cfg.sessions_per_user + cfg.extra_train_sessions
    total = cfg.total_sessions
    start = datetime.fromisoformat(cfg.start_date).replace(hour=8, tzinfo=UTC)
    per_user = zip(users.values(), s_sess.spawn(cfg.users), s_blind.spawn(cfg.users),
                   strict=True)
    for ui, (u, ss, sb) in enumerate(per_user):
        rng = np.random.default_rng(ss)
        blind = BlindFilter(population, TraitTable.from_traits([u.traits], brands, cats),
                             np.random.default_rng(sb), len(brands), len(cats))
        n_test = 0 if cfg.test_fraction == 0 else max(
            1, min(cfg.sessions_per_user - 1, round(cfg.sessions_per_user * cfg.test_fraction)))
        test_idx = set(rng.choice(cfg.sessions_per_user, size=n_test, replace=False).tolist())
        t0 = start + timedelta(minutes=int(rng.integers(0, 600)))
        test_t0: list[datetime] = []
        for j in range(per):
            t0 = t0 + timedelta(days=float(rng.uniform(0.5, 3.0)))
            split = "test" if j in test_idx else "train"
            variant = "control"
            if cfg.variant_mix and split == "train":  # a stream of its own per session
                vrng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5A17, ui, j]))
                variant = cfg.variant_mix[int(vrng.integers(len(cfg.variant_mix)))]
            elif cfg.randomise is not None and split == "train":  # streams of its own
                variant = _register(world, draw_site(cfg.randomise, site_rng(cfg.seed, ui, j)))
                if test_idx and j < max(test_idx):
                    # The control session the plain world draws here, discarded: the main
                    # streams advance exactly as there, so every later test session is the
                    # plain world's, byte for byte.
                    _session(world, u, blind, split, t0, rng, "control")
                ss, sb = train_seed(cfg.seed, ui, j).spawn(2)
                own = BlindFilter(population, TraitTable.from_traits([u.traits], brands, cats),
                                  np.random.default_rng(sb), len(brands), len(cats))
                world.sessions.append(_session(world, u, own, split, t0,
                                               np.random.default_rng(ss), variant))
                if progress is not None:
                    progress(len(world.sessions), total)
                continue
            if split == "test":
                test_t0.append(t0)
            world.sessions.append(_session(world, u, blind, split, t0, rng, variant))
            if progress is not None:
                progress(len(world.sessions), total)
        if cfg.randomise is not None:  # after the user's own sessions, from streams of their own
            _held_out_sessions(world, cfg.randomise, ui, u, test_t0 or [t0], brands, cats)
            if progress is not None:
                progress(len(world.sessions), total)
    return world


def _register(world: World, site: SiteVariant) -> str:
    """The name a session records for ``site``: a built-in's, or a drawn site's (kept in
    :attr:`World.variants` so its pages render)."""
    from customer_r1.world.variants import BUILTIN_VARIANTS

    if site.name in BUILTIN_VARIANTS and BUILTIN_VARIANTS[site.name] == site:
        return site.name
    have = world.variants.setdefault(site.name, site)
    if have != site:  # names carry every change (rounded values), so this cannot happen
        raise AssertionError(f"two drawn sites named {site.name!r}")
    return site.name


def _held_out_sessions(world: World, rc: RandomiseConfig, ui: int, u: WorldUser,
                       starts: list[datetime], brands: list[str], cats: list[str]) -> None:
    """``held_out_sessions_per_user`` sessions of user ``ui`` on each held-out variant: the
    ``heldout`` split. Each draws from a stream of its own (session and persona-blind
    filter), starting a second per variant after one of the user's test sessions."""
    for vi, name in enumerate(rc.held_out):
        for k in range(rc.held_out_sessions_per_user):
            ss, sb = held_out_seed(world.config.seed, ui, vi, k).spawn(2)
            blind = BlindFilter(world.population,
                                TraitTable.from_traits([u.traits], brands, cats),
                                np.random.default_rng(sb), len(brands), len(cats))
            t0 = starts[k % len(starts)] + timedelta(seconds=vi + 1, minutes=k // len(starts))
            world.sessions.append(_session(world, u, blind, HELD_OUT_SPLIT, t0,
                                           np.random.default_rng(ss), name))


def _iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _iso_us(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(t.microsecond // 1000) * 1000:06d}Z"


class BlindFilter:
    """Posterior over the trait population given a session's motives so far.

    A particle filter over the population: weights multiply by p(m_k | s_k, theta) at each
    step. Traits that no decision of the session has read yet have the prior as their
    posterior (the prior is independent across traits), so they are drawn afresh at every
    step instead of riding on particles that earlier evidence has thinned out; particles
    are resampled when the effective sample size falls below half. This keeps the
    persona-blind predictor from being handicapped by a finite population.
    """

    def __init__(self, population: TraitTable, true_row: TraitTable, rng: np.random.Generator,
                 n_brands: int, n_categories: int, *, redraw: bool = True,
                 resample_below: float = 0.5) -> None:
        self.base, self.true_row, self.rng = population, true_row, rng
        self.n_brands, self.n_categories = n_brands, n_categories
        self.redraw, self.resample_below = redraw, resample_below
        self.reset()

    def reset(self) -> None:
        self.pop = self.base
        self.logw = np.zeros(self.base.n)
        self.involved: set[str] = set()

    def table(self) -> TrackedTable:
        """Population (unread traits redrawn) + the true shopper as the last row."""
        if self.redraw:
            fresh = set(TABLE_FIELDS) - self.involved
            self.pop = self.pop.with_prior_draws(fresh, self.rng, self.n_brands,
                                                 self.n_categories)
        both = self.pop.concat(self.true_row)
        return TrackedTable(**{k: getattr(both, k) for k in TABLE_FIELDS})

    def weights(self) -> np.ndarray:
        w = np.exp(self.logw - self.logw.max())
        return w / w.sum()

    def observe(self, lik: np.ndarray, read: set[str]) -> None:
        """Multiply in p(m | s, theta) of the observed motive; resample when degenerate."""
        self.logw = self.logw + np.log(np.maximum(lik, 1e-300))
        self.involved |= read
        w = self.weights()
        if 1.0 / float(np.sum(w * w)) < self.resample_below * len(w):
            n = len(w)
            u = (self.rng.random() + np.arange(n)) / n
            idx = np.minimum(np.searchsorted(np.cumsum(w), u), n - 1)
            self.pop = self.pop.take(idx)
            self.logw = np.zeros(n)


def _session(world: World, user: WorldUser, blind: BlindFilter, split: str, t0: datetime,
             rng: np.random.Generator, variant: str = "control") -> WorldSession:
    cfg, shop = world.config, world.site(variant)
    prods = shop.catalog.products
    all_ids = sorted(prods)
    deals = tuple(all_ids[int(i)] for i in rng.choice(len(all_ids), size=cfg.deals,
                                                       replace=False))
    state = ShopState(deals=deals)
    mem = Memory()
    blind.reset()
    n = blind.base.n
    t = t0.replace(microsecond=(t0.microsecond // 1000) * 1000)
    session_start = t
    t = t + timedelta(milliseconds=int(rng.integers(2000, 15000)))
    steps: list[WorldStep] = []
    while not state.ended:
        page = build_page(state, shop, world.page_size)
        ctx = PolicyContext(shop, state, page, mem, cfg.max_steps)
        table = blind.table()
        dec = decide(ctx, table)
        probs_all = dec.action_probs()
        p_true = probs_all[-1]
        p_blind = blind.weights() @ probs_all[:n]
        mi = _sample(dec.weights[-1], rng)
        ai = _sample(dec.amat[mi], rng)
        motive, action = dec.motives[mi], dec.actions[ai]
        rationale = write_rationale(motive, action, ctx, user.traits, rng)
        el = page.elements.get(action.name) if action.name else None
        click_type = el.click_type if (el is not None and action.type == "click") else None
        steps.append(WorldStep(
            action_id=str(uuid.UUID(bytes=rng.bytes(16), version=4)), timestamp=_iso_ms(t),
            state=state, action=action, click_type=click_type, motive=motive,
            rationale=rationale, actions=dec.actions, probs=p_true, blind_probs=p_blind,
            products=_products(shop, state, el.effect.kind) if el is not None else None,
            element_meta=_element_meta(shop, state, el.meta if el is not None else None,
                                       action),
            mouse=_mouse(rng) if action.type == "click" else {}, variant=variant,
            evidence=dec.evidence,
        ))
        blind.observe(dec.weights[:n, mi], table.accessed)
        mem.update(state, page, action, motive)
        state = step(state, action, page.effects)
        if not state.ended:
            t = t + timedelta(milliseconds=int(1000 * min(120.0, rng.lognormal(2.2, 0.6))))
    sid = f"{user.user_id}_{_iso_us(session_start)}_{_iso_us(t)}"
    return WorldSession(sid, user.user_id, split, steps, variant)


def _sample(p: np.ndarray, rng: np.random.Generator) -> int:
    c = np.cumsum(p)
    i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    i = min(i, len(p) - 1)
    while p[i] <= 0:  # never land on a zero-probability entry through rounding
        i -= 1
    return i


def _line(shop: Shop, pid: str, option: str, qty: int) -> dict[str, str]:
    p = shop.catalog.products[pid]
    return {"asin": pid, "title": p.title, "price": f"${p.price_for(option):,.2f}",
            "quantity": str(qty), "options": option}


def _products(shop: Shop, state: ShopState, kind: str) -> list[dict[str, str]] | None:
    if kind in ("add", "buy_now", "subscribe"):
        return [_line(shop, state.product, state.option, state.qty)]
    if kind == "checkout":
        return [_line(shop, c.pid, c.option, c.qty) for c in state.cart]
    return None


def _element_meta(shop: Shop, state: ShopState, meta: dict[str, str] | None,
                  action: Action) -> dict[str, str] | None:
    if action.type == "terminate":
        return None
    if meta:
        return meta
    if state.page in ("product", "reviews") and state.product:
        p = shop.catalog.products[state.product]
        data = {"title": p.title, "asin": p.pid, "price": f"${p.price_for(state.option):,.2f}"}
        return {"name": "product_details", "data": json.dumps(data)}
    return None


def _mouse(rng: np.random.Generator) -> dict[str, int]:
    x, y = int(rng.integers(40, 1880)), int(rng.integers(60, 900))
    scroll = int(rng.integers(0, 4)) * int(rng.integers(0, 700))
    return {"clientX": x, "clientY": y, "pageX": x, "pageY": y + scroll, "screenX": x,
            "screenY": y + 128}


def config_dict(cfg: WorldConfig) -> dict[str, Any]:
    """The config as JSON-friendly fields (``WorldConfig(**config_dict(cfg)) == cfg``); an
    unset ``randomise`` is left out, so a plain world's world.json is unchanged."""
    d = asdict(cfg)
    if cfg.randomise is None:
        del d["randomise"]
    else:
        d["randomise"] = cfg.randomise.to_dict()
    return d
