"""A domain-randomised world: each training session on a site drawn from the variant space.

``WorldConfig(randomise=RandomiseConfig(...))`` (YAML: a ``randomise:`` mapping in a world
section) puts every *training* session on a site of its own, drawn from:

* a **composition** of ``min_variants``..``max_variants`` built-in variants from ``pool``
  (compatible ones only: a variant that :func:`~customer_r1.world.variants.combine` refuses
  beside the ones already drawn is skipped), which covers sections shown or hidden (deals,
  brand filters, related searches, sort, buy now, ...), label wording and block order
  (``placebo_labels``, ``placebo_nav_order``, ``add_to_cart_below``), ranking and sort order;
* the **control site** itself with probability ``control_share`` (default 0: never);
* **continuous parameters** (``continuous``: a field of :class:`SiteVariant` with a number
  value and its ``[low, high]`` range), each drawn with probability ``continuous_share``
  uniformly in its range and rounded to 2 decimals, on fields the composition left alone:
  a price multiplier, a results-per-page multiplier, a shipping fee, a coupon, a share out
  of stock.

**Held-out variants** (``held_out``, built-in names, chosen in the config, so before any
training, and recorded in ``world.json``) are never drawn for training: they are not in
the pool (nor, in the default pool, a variant that sets a field to a held-out variant's
value), no drawn site equals one, and a continuous draw never comes within
``held_out_gap`` (relative) of a value a held-out variant sets on that field. The world
gets a split of its own, ``heldout``: ``held_out_sessions_per_user`` sessions per user on
each held-out variant. The ``test`` split stays on the control site, session for session
the one the same config without randomisation generates.

Every draw here comes from streams of its own (``SeedSequence([seed, tag, user, session])``),
never from the world's main streams, so with ``randomise`` unset (the default) every byte
of the world is unchanged. A randomised training session draws its steps (and its
persona-blind filter's redraws) from a stream of its own too; where a test session of the
same user follows it, the control session the plain world draws in its place is generated
and discarded first, so the main streams advance exactly as without randomisation and the
test split is the plain world's, byte for byte (a training session on another site takes
other steps, which would otherwise shift every later draw of the user's stream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from customer_r1.world.variants import (
    BUILTIN_VARIANTS,
    CONTROL,
    SiteVariant,
    _check,
    combine,
)

#: Stream tags: a training session's site; its steps; a held-out session's draws.
SITE_TAG = 0x2A4D
TRAIN_TAG = 0x7EA1
HELD_OUT_TAG = 0x4E1D
HELD_OUT_SPLIT = "heldout"
#: The benchmark's variants held out by default: real effects (large and small) and placebos.
DEFAULT_HELD_OUT: tuple[str, ...] = ("out_of_stock_50", "shipping_fee_10", "price_up_25",
                                     "reviews_hidden", "placebo_banner", "placebo_wrappers")
#: The number fields a continuous draw may set, and the short names drawn sites carry.
CONTINUOUS_FIELDS: dict[str, str] = {
    "price_factor": "price_x", "results_per_page_factor": "results_x",
    "shipping_fee": "shipping_", "coupon": "coupon_", "out_of_stock": "out_of_stock_"}
DEFAULT_CONTINUOUS: tuple[tuple[str, float, float], ...] = (
    ("price_factor", 0.75, 1.5), ("results_per_page_factor", 0.5, 2.0),
    ("shipping_fee", 1.0, 12.0), ("coupon", 0.05, 0.4), ("out_of_stock", 0.05, 0.6))
_MAX_TRIES = 100


def _names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"randomise.{key} must be a list of built-in variant names")
    names = tuple(str(v) for v in value)
    unknown = [v for v in names if v not in BUILTIN_VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) in randomise.{key}: {unknown}; built-in: "
                         f"{', '.join(BUILTIN_VARIANTS)}")
    if "control" in names:
        raise ValueError(f"randomise.{key} must not name control (an empty draw is control)")
    if len(set(names)) != len(names):
        raise ValueError(f"randomise.{key} names a variant twice")
    return names


def _ranges(value: Any) -> tuple[tuple[str, float, float], ...]:
    """``{field: [low, high]}`` or ``[[field, low, high], ...]`` as checked triples."""
    items = list(value.items()) if isinstance(value, Mapping) else None
    if items is None:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ValueError("randomise.continuous must map fields to [low, high]")
        try:
            items = [(r[0], r[1:]) for r in value]
        except (TypeError, IndexError, KeyError) as exc:
            raise ValueError("randomise.continuous must map fields to [low, high]") from exc
    out = []
    for key, rng in items:
        key = str(key)
        if key not in CONTINUOUS_FIELDS:
            raise ValueError(f"randomise.continuous: {key!r} is not a continuous field; "
                             f"fields: {', '.join(CONTINUOUS_FIELDS)}")
        if (isinstance(rng, str) or not isinstance(rng, Sequence) or len(rng) != 2
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in rng)):
            raise ValueError(f"randomise.continuous.{key} must be [low, high], got {rng!r}")
        lo, hi = float(rng[0]), float(rng[1])
        try:
            _check(key, lo), _check(key, hi)
        except ValueError as exc:
            raise ValueError(f"randomise.continuous.{key}: {exc}") from exc
        if not lo < hi:
            raise ValueError(f"randomise.continuous.{key} needs low < high, got [{lo:g}, {hi:g}]")
        out.append((key, lo, hi))
    if len({k for k, _, _ in out}) != len(out):
        raise ValueError("randomise.continuous names a field twice")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RandomiseConfig:
    """How training sessions' sites are drawn and which variants are held out (module doc)."""

    #: Built-in variants a composition draws from; empty: every built-in variant but
    #: control, the held-out ones and any that sets a field to a held-out variant's value
    #: (``free_shipping_over_50`` charges ``shipping_fee_10``'s fee below $50).
    pool: tuple[str, ...] = ()
    min_variants: int = 0
    max_variants: int = 3
    #: (field, low, high) of each continuous parameter (YAML: ``{field: [low, high]}``).
    continuous: tuple[tuple[str, float, float], ...] = DEFAULT_CONTINUOUS
    #: Probability that each continuous parameter is drawn for a session's site.
    continuous_share: float = 0.25
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    #: Sessions per user on each held-out variant (the ``heldout`` split).
    held_out_sessions_per_user: int = 1
    #: No continuous draw comes within this relative distance of a held-out variant's value.
    held_out_gap: float = 0.1
    #: Share of training sessions kept on the control site itself (replay: a model warm-started
    #: from a control-site checkpoint keeps seeing the site it is tested on). 0: every session
    #: draws its site, and the world is byte for byte what it was before this setting.
    control_share: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "held_out", _names(self.held_out, "held_out"))
        object.__setattr__(self, "pool", _names(self.pool, "pool"))
        both = sorted(set(self.pool) & set(self.held_out))
        if both:
            raise ValueError(f"randomise: held-out variant(s) {both} are also in the pool")
        object.__setattr__(self, "continuous", _ranges(self.continuous))
        for key in ("min_variants", "max_variants", "held_out_sessions_per_user"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"randomise.{key} must be an integer >= 0, got {v!r}")
        if self.min_variants > self.max_variants:
            raise ValueError(f"randomise.min_variants ({self.min_variants}) exceeds "
                             f"max_variants ({self.max_variants})")
        if self.max_variants > len(self.draw_pool):
            raise ValueError(f"randomise.max_variants ({self.max_variants}) exceeds the pool "
                             f"({len(self.draw_pool)} variants)")
        for key in ("continuous_share", "held_out_gap", "control_share"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise ValueError(f"randomise.{key} must be in [0, 1], got {v!r}")
            object.__setattr__(self, key, float(v))

    @classmethod
    def from_value(cls, value: Any) -> RandomiseConfig | None:
        """A config, a mapping of its fields (YAML, world.json), or None (off)."""
        if value is None or isinstance(value, RandomiseConfig):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"randomise must be a mapping of its settings, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ValueError(f"unknown randomise setting(s) {unknown}; settings: "
                             f"{', '.join(sorted(known))}")
        return cls(**{str(k): v for k, v in value.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON- and YAML-friendly (continuous as ``{field: [low, high]}``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["pool"], d["held_out"] = list(self.pool), list(self.held_out)
        d["continuous"] = {k: [lo, hi] for k, lo, hi in self.continuous}
        return d

    @property
    def draw_pool(self) -> tuple[str, ...]:
        """The variants compositions draw from (``pool``, or its default)."""
        if self.pool:
            return self.pool
        held = {(k, v) for n in self.held_out for k, v in BUILTIN_VARIANTS[n].changes().items()}
        return tuple(n for n, v in BUILTIN_VARIANTS.items()
                     if n != "control" and n not in self.held_out
                     and not set(v.changes().items()) & held)

    def held_out_variants(self) -> dict[str, SiteVariant]:
        return {n: BUILTIN_VARIANTS[n] for n in self.held_out}


def _held_out_values(cfg: RandomiseConfig) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for v in cfg.held_out_variants().values():
        for key, value in v.changes().items():
            if key in CONTINUOUS_FIELDS:
                out.setdefault(key, []).append(float(value))
    return out


def _near(x: float, values: list[float], gap: float) -> bool:
    return any(abs(x - v) <= gap * abs(v) + 1e-9 for v in values)


def draw_site(cfg: RandomiseConfig, rng: np.random.Generator) -> SiteVariant:
    """One training site: a composition of pool variants and continuous parameters, never a
    held-out variant (see the module doc). Deterministic for the generator's state."""
    held = {tuple(sorted(v.changes().items())) for v in cfg.held_out_variants().values()}
    avoid = _held_out_values(cfg)
    pool = cfg.draw_pool
    order = {n: i for i, n in enumerate(BUILTIN_VARIANTS)}
    if cfg.control_share and rng.random() < cfg.control_share:  # no draw at all when it is 0
        return CONTROL
    for _ in range(_MAX_TRIES):
        k = int(rng.integers(cfg.min_variants, cfg.max_variants + 1))
        chosen: list[str] = []
        site = CONTROL
        for i in rng.permutation(len(pool)).tolist():
            if len(chosen) == k:
                break
            names = sorted([*chosen, pool[i]], key=order.__getitem__)
            try:
                trial = combine(BUILTIN_VARIANTS[n] for n in names)
            except Exception:  # BadOption: these two change the same thing differently
                continue
            chosen, site = names, trial
        if len(chosen) < cfg.min_variants:
            continue
        extra: dict[str, float] = {}
        for key, lo, hi in cfg.continuous:
            drawn = rng.random() < cfg.continuous_share
            x = round(float(rng.uniform(lo, hi)), 2)
            if not drawn or key in site.changes():
                continue
            if _near(x, avoid.get(key, []), cfg.held_out_gap) or x == getattr(CONTROL, key):
                continue
            extra[key] = x
        if extra:
            try:
                parts = [site.name] if not site.is_control else []
                parts += [f"{CONTINUOUS_FIELDS[k]}{v:g}" for k, v in extra.items()]
                site = SiteVariant("+".join(parts), **(site.changes() | extra))
            except ValueError:  # e.g. a fee-free-over without a fee; draw again
                continue
        if tuple(sorted(site.changes().items())) in held:
            continue
        return site
    raise ValueError("randomise: no site could be drawn that is not held out; widen the pool")


def site_rng(seed: int, user_index: int, session_index: int) -> np.random.Generator:
    """The stream a training session's site is drawn from (never a main stream)."""
    return np.random.default_rng(np.random.SeedSequence([seed, SITE_TAG, user_index,
                                                         session_index]))


def train_seed(seed: int, user_index: int, session_index: int) -> np.random.SeedSequence:
    """The seed of a randomised world's training session (its draws and its persona-blind
    filter's), so a session is a function of (seed, user, session) and its site alone."""
    return np.random.SeedSequence([seed, TRAIN_TAG, user_index, session_index])


def held_out_seed(seed: int, user_index: int, variant_index: int,
                  k: int) -> np.random.SeedSequence:
    """The seed of held-out session ``k`` of a user on held-out variant ``variant_index``."""
    return np.random.SeedSequence([seed, HELD_OUT_TAG, user_index, variant_index, k])

