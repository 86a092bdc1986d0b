"""Session-level figures of a set of sessions, with bootstrap intervals over users.

Sessions of one shopper are not independent (same persona), so every interval here
resamples *users* (all of a resampled user's sessions come along), never steps or
sessions. The figures are computed from a per-session table that reads any sessions in
the domain's form: recorded OPeRA data, a generated world or a simulation run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from customer_r1.domain import Session

PAGE_KINDS = ("home", "search", "product", "reviews", "cart", "store", "checkout", "other")


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session's figures."""

    user_id: str
    converted: bool
    n_steps: int
    action_types: dict[str, int]
    click_types: dict[str, int]
    page_kinds: tuple[str, ...]  # kind of the page at each step
    last_page_kind: str
    order_value: float
    items_bought: int
    extra: dict[str, Any] = field(default_factory=dict)


def _money(x: Any) -> float:
    try:
        return float(str(x).replace("$", "").replace(",", ""))
    except ValueError:
        return 0.0


def page_kind_of(url: str) -> str:
    """The kind of page a URL shows (Amazon-style paths; our shop's brand stores too). Read
    from the URL alone, so recorded, generated and simulated sessions are classed alike."""
    from urllib.parse import urlparse

    from customer_r1.evaluation.baselines import page_kind

    return "store" if "/stores/" in urlparse(url or "").path else page_kind(url)


def session_rows(sessions: Sequence[Session]) -> list[SessionRow]:
    """The per-session table of domain sessions (page kinds as observed, else from the URL)."""
    out = []
    for s in sessions:
        steps = [st for st in s.steps if st.action is not None]
        if not steps:
            continue
        # the kind the page was given when it was shown (our shop's own, another site's
        # classifier or the user's rules), else the URL's (recorded OPeRA sessions)
        kinds = tuple(st.observation.page_kind or page_kind_of(st.observation.url) for st in steps)
        converted = s.outcome == "purchase"
        value = items = 0
        if converted and steps[-1].products:
            for line in steps[-1].products:
                q = int(_money(line.get("quantity", 1)) or 1)
                value += _money(line.get("price", 0)) * q
                items += q
        out.append(SessionRow(
            s.user_id, converted, len(steps),
            dict(Counter(st.action.type for st in steps)),  # type: ignore[union-attr]
            dict(Counter(st.click_type for st in steps if st.click_type)),
            kinds, kinds[-1], round(float(value), 2), int(items)))
    return out


def by_user(rows: Sequence[SessionRow]) -> dict[str, list[SessionRow]]:
    out: dict[str, list[SessionRow]] = {}
    for r in rows:
        out.setdefault(r.user_id, []).append(r)
    return out


Stat = Callable[[Sequence[SessionRow]], float]


def conversion(rows: Sequence[SessionRow]) -> float:
    return float(np.mean([r.converted for r in rows])) if rows else float("nan")


def mean_length(rows: Sequence[SessionRow]) -> float:
    return float(np.mean([r.n_steps for r in rows])) if rows else float("nan")


def action_share(kind: str) -> Stat:
    def f(rows: Sequence[SessionRow]) -> float:
        total = sum(sum(r.action_types.values()) for r in rows)
        return sum(r.action_types.get(kind, 0) for r in rows) / total if total else float("nan")

    f.__name__ = f"share_{kind}"
    return f


def reach(kind: str) -> Stat:
    """Share of sessions that reach a page kind at least once."""
    def f(rows: Sequence[SessionRow]) -> float:
        return float(np.mean([kind in r.page_kinds for r in rows])) if rows else float("nan")

    f.__name__ = f"reach_{kind}"
    return f


def order_value(rows: Sequence[SessionRow]) -> float:
    """Mean order value per session (0 for a session without a purchase)."""
    return float(np.mean([r.order_value for r in rows])) if rows else float("nan")


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _resample(groups: list[list[SessionRow]], rng: np.random.Generator) -> list[SessionRow]:
    idx = rng.integers(0, len(groups), size=len(groups))
    return [r for i in idx for r in groups[i]]


def bootstrap(rows: Sequence[SessionRow], stat: Stat, *, n_boot: int = 1000, level: float = 0.95,
              seed: int = 0) -> Interval:
    """Percentile interval of ``stat`` resampling users."""
    groups = list(by_user(rows).values())
    rng = np.random.default_rng(seed)
    draws = np.array([stat(_resample(groups, rng)) for _ in range(n_boot)])
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(stat(rows), float(lo), float(hi))


def bootstrap_diff(a: Sequence[SessionRow], b: Sequence[SessionRow], stat: Stat, *, n_boot: int = 1000,
                   level: float = 0.95, seed: int = 0, paired: bool = False) -> Interval:
    """Interval of ``stat(a) - stat(b)``. ``paired``: the same users in both, resampled
    together (common random numbers); else each side's users independently."""
    ga, gb = by_user(a), by_user(b)
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    if paired:
        users = sorted(set(ga) & set(gb))
        for i in range(n_boot):
            pick = [users[j] for j in rng.integers(0, len(users), size=len(users))]
            draws[i] = stat([r for u in pick for r in ga[u]]) - stat([r for u in pick for r in gb[u]])
    else:
        la, lb = list(ga.values()), list(gb.values())
        for i in range(n_boot):
            draws[i] = stat(_resample(la, rng)) - stat(_resample(lb, rng))
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(stat(a) - stat(b), float(lo), float(hi))


# --------------------------------------------------------------------------- many figures at once
#
# ``sim compare`` needs dozens of figures, each with a user-level bootstrap and a
# permutation test. Every figure below is a ratio of sums over sessions (conversion =
# purchases / sessions, a share = count / total ...), so resampling users is the same as
# weighting each user's per-user sums by how often the replicate drew that user. The
# draws are made exactly as :func:`bootstrap` and :func:`bootstrap_diff` make them (same
# seed, same user order, same calls to the generator), so a figure computed here equals
# theirs, only without rebuilding row lists a thousand times (``tests/test_sim_compare.py``).


def user_order(rows: Sequence[SessionRow]) -> list[str]:
    """Users in first-appearance order: the order :func:`bootstrap` draws them in."""
    return list(by_user(rows))


def draw_users(n: int, *, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` multiplicities of ``n`` users per replicate, drawn as :func:`bootstrap` draws."""
    rng = np.random.default_rng(seed)
    w = np.zeros((n_boot, n))
    if n == 0:
        return w
    for i in range(n_boot):
        w[i] = np.bincount(rng.integers(0, n, size=n), minlength=n)
    return w


def draw_user_pairs(n_a: int, n_b: int, *, n_boot: int, seed: int,
                    paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Multiplicities for both sides of a difference, drawn as :func:`bootstrap_diff` draws:
    ``paired`` (the same users on both sides, in sorted id order) draws once for both;
    otherwise each side's users (first-appearance order) are drawn independently."""
    if paired:
        if n_a != n_b:
            raise ValueError(f"paired draws need the same users on both sides ({n_a} != {n_b})")
        w = draw_users(n_a, n_boot=n_boot, seed=seed)
        return w, w
    rng = np.random.default_rng(seed)
    wa, wb = np.zeros((n_boot, n_a)), np.zeros((n_boot, n_b))
    for i in range(n_boot):
        if n_a:
            wa[i] = np.bincount(rng.integers(0, n_a, size=n_a), minlength=n_a)
        if n_b:
            wb[i] = np.bincount(rng.integers(0, n_b, size=n_b), minlength=n_b)
    return wa, wb


def permutation_weights(n_a: int, n_b: int, *, n_perm: int, seed: int,
                        paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Relabelled sets under "both sides are the same shoppers", as weights over the
    concatenated users ``[users of a..., users of b...]``: ``paired`` (user i of a is user
    i of b) swaps each user's two groups of sessions with probability 1/2; otherwise the
    pooled users are dealt at random into groups of ``n_a`` and ``n_b``. Whole users move,
    so sessions of one shopper stay together, as in the bootstrap."""
    rng = np.random.default_rng(seed)
    if paired:
        if n_a != n_b:
            raise ValueError(f"paired permutations need the same users on both sides ({n_a} != {n_b})")
        s = rng.integers(0, 2, size=(n_perm, n_a)).astype(float)
        return np.hstack([1 - s, s]), np.hstack([s, 1 - s])
    m = np.zeros((n_perm, n_a + n_b))
    for i in range(n_perm):
        m[i, rng.permutation(n_a + n_b)[:n_a]] = 1.0
    return m, 1 - m


def per_user_sums(rows: Sequence[SessionRow], users: Sequence[str], values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (one row per session: ``(n_rows,)`` or ``(n_rows, k)``) per user, in
    ``users`` order (users without sessions sum to 0)."""
    index = {u: i for i, u in enumerate(users)}
    of = np.array([index[r.user_id] for r in rows], dtype=int)
    vals = np.asarray(values, dtype=float)
    out = np.zeros((len(users), *vals.shape[1:]))
    if len(rows):
        np.add.at(out, of, vals)
    return out


def ratio_of_sums(weights: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``(weights @ num) / (weights @ den)`` per replicate; NaN where the denominator is 0."""
    top, bottom = weights @ num, weights @ den
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def interval_from_draws(value: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval of bootstrap ``draws`` around ``value`` (NaN draws ignored)."""
    draws = np.asarray(draws, dtype=float)
    if not np.isfinite(draws).any():
        return Interval(float(value), float("nan"), float("nan"))
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(value), float(lo), float(hi))


def rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman) of two equal-length vectors; NaN when either is constant or
    shorter than 3."""
    from scipy.stats import rankdata

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    pearson = float(np.corrcoef(x, y)[0, 1])
    rx, ry = rankdata(x), rankdata(y)
    spearman = float(np.corrcoef(rx, ry)[0, 1]) if np.ptp(rx) and np.ptp(ry) else float("nan")
    return pearson, spearman
