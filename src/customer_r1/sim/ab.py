"""A/B tests of site variants on simulated shoppers, with common random numbers.

Both arms run the same users with the same session seeds: a session's deals, and every
random draw of its shopper, are the same in both arms until the site itself makes the
sessions differ. The effect of the variant is then estimated on paired data (users
resampled together in both arms), which cancels most of the shopper-to-shopper noise.
How much it cancels is reported against the interval independent seeds would give (the
same sessions bootstrapped as if the arms were unrelated: the variance of a difference
of independent arms). With a reference policy (the world's own shopper, the true one),
the same design runs again with it, and the simulated effect is printed beside the true.

Sample size: the paired interval's width shrinks as one over the square root of the
number of users, so the observed width says how many sessions per arm a wanted width
needs; a run whose interval holds zero is flagged as too small to tell the effect from
no effect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from customer_r1.sim import stats
from customer_r1.sim.stats import Interval, SessionRow

AB_FILE = "ab.json"


@dataclass(frozen=True)
class Metric:
    """A per-session figure; the metric is its mean over sessions (a ratio of per-user sums,
    so every bootstrap replicate is one matrix product)."""

    name: str
    label: str
    value: Callable[[SessionRow], float]
    percent: bool = True

    def of(self, rows: Sequence[SessionRow]) -> float:
        return float(np.mean([self.value(r) for r in rows])) if rows else float("nan")


def _reach(kind: str) -> Callable[[SessionRow], float]:
    return lambda r: float(kind in r.page_kinds)


METRICS: tuple[Metric, ...] = (
    Metric("conversion", "conversion", lambda r: float(r.converted)),
    Metric("order_value", "order value per session ($)", lambda r: r.order_value, percent=False),
    Metric("mean_length", "session length (steps)", lambda r: float(r.n_steps), percent=False),
    Metric("reach_search", "sessions reaching search results", _reach("search")),
    Metric("reach_product", "sessions reaching a product page", _reach("product")),
    Metric("reach_reviews", "sessions reaching reviews", _reach("reviews")),
    Metric("reach_cart", "sessions reaching the cart", _reach("cart")),
)


@dataclass
class ArmRows:
    """Session rows of the two arms of one policy."""

    control: list[SessionRow]
    treatment: list[SessionRow]


@dataclass
class Effect:
    metric: str
    control: Interval
    treatment: Interval
    effect: Interval
    effect_independent: Interval
    true: dict[str, Interval] | None = None

    @property
    def crn_shrink(self) -> float:
        """How much narrower the paired interval is than independent seeds' (0.4 = 40%)."""
        w = self.effect_independent.width
        return 1.0 - self.effect.width / w if w > 0 else 0.0

    @property
    def significant(self) -> bool:
        return not self.effect.contains(0.0)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"control": self.control.to_dict(), "treatment": self.treatment.to_dict(),
                             "effect": self.effect.to_dict(),
                             "effect_independent": self.effect_independent.to_dict(),
                             "crn_shrink": round(self.crn_shrink, 4), "significant": self.significant,
                             "true": None}
        if self.true is not None:
            d["true"] = {k: v.to_dict() for k, v in self.true.items()}
            d["true"]["significant"] = not self.true["effect"].contains(0.0)
        return d


@dataclass
class ABResult:
    control: str
    treatment: str
    users: int
    sessions_per_arm: int
    effects: dict[str, Effect]
    sample_size: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _sums(rows: Sequence[SessionRow], users: Sequence[str],
          metrics: Sequence[Metric]) -> tuple[np.ndarray, np.ndarray]:
    """Per-user sums of every metric's values ``(users, metrics)`` and session counts."""
    values = np.array([[m.value(r) for m in metrics] for r in rows]).reshape(len(rows), len(metrics))
    return stats.per_user_sums(rows, users, values), stats.per_user_sums(rows, users, np.ones(len(rows)))


def effects(sim: ArmRows, true: ArmRows | None = None, *, n_boot: int = 1000, seed: int = 0,
            metrics: Sequence[Metric] = METRICS, level: float = 0.95) -> dict[str, Effect]:
    """Every metric's arms and effect: paired (users resampled together in both arms, as
    common random numbers allow) and as independent seeds would give (each arm's users
    resampled on their own), with percentile intervals; one set of draws serves every
    metric."""

    def arms(pair: ArmRows, s: int) -> dict[str, list[Interval]]:
        uc, ut = stats.user_order(pair.control), stats.user_order(pair.treatment)
        nc, dc = _sums(pair.control, uc, metrics)
        nt, dt = _sums(pair.treatment, ut, metrics)
        wc = stats.draw_users(len(uc), n_boot=n_boot, seed=s)
        wt = stats.draw_users(len(ut), n_boot=n_boot, seed=s + 1)
        shared = sorted(set(uc) & set(ut))
        nc2, dc2 = _sums([r for r in pair.control if r.user_id in set(shared)], shared, metrics)
        nt2, dt2 = _sums([r for r in pair.treatment if r.user_id in set(shared)], shared, metrics)
        wp = stats.draw_users(len(shared), n_boot=n_boot, seed=s + 2)
        out: dict[str, list[Interval]] = {}
        for j, m in enumerate(metrics):
            c_draw = stats.ratio_of_sums(wc, nc[:, j], dc)
            t_draw = stats.ratio_of_sums(wt, nt[:, j], dt)
            paired = stats.ratio_of_sums(wp, nt2[:, j], dt2) - stats.ratio_of_sums(wp, nc2[:, j], dc2)
            cv, tv = m.of(pair.control), m.of(pair.treatment)
            out[m.name] = [stats.interval_from_draws(cv, c_draw, level),
                           stats.interval_from_draws(tv, t_draw, level),
                           stats.interval_from_draws(tv - cv, paired, level),
                           stats.interval_from_draws(tv - cv, t_draw - c_draw, level)]
        return out

    sim_iv = arms(sim, seed)
    true_iv = arms(true, seed + 10) if true is not None else None
    result: dict[str, Effect] = {}
    for m in metrics:
        c, t, e, ind = sim_iv[m.name]
        eff = Effect(m.name, c, t, e, ind)
        if true_iv is not None:
            tc, tt, te, _ = true_iv[m.name]
            eff.true = {"control": tc, "treatment": tt, "effect": te}
        result[m.name] = eff
    return result


def sessions_needed(effect: Effect, users: int, sessions_per_user: int, width: float) -> int:
    """Sessions per arm for a paired 95% interval of ``width`` (full width), scaling the
    observed width as one over the square root of the number of users."""
    now = effect.effect.width
    if now <= 0 or width <= 0:
        return users * sessions_per_user
    need_users = math.ceil(users * (now / width) ** 2)
    return max(1, need_users) * sessions_per_user


def sample_size(result_effects: dict[str, Effect], users: int, sessions_per_user: int,
                width: float) -> tuple[dict[str, Any], list[str]]:
    """Sessions per arm each metric needs for ``width``, and warnings for runs too small."""
    out: dict[str, Any] = {"target_width": width, "per_metric": {}}
    warnings: list[str] = []
    for name, e in result_effects.items():
        out["per_metric"][name] = {
            "observed_width": e.effect.width,
            "sessions_per_arm_for_target": sessions_needed(e, users, sessions_per_user, width),
        }
        if name == "conversion":
            if not e.significant:
                resolve = abs(e.effect.value)
                need = sessions_needed(e, users, sessions_per_user, resolve) if resolve > 0 else None
                msg = (f"the conversion effect {100 * e.effect.value:+.1f} points cannot be told from zero "
                       f"(95% CI {100 * e.effect.low:+.1f} to {100 * e.effect.high:+.1f})")
                if need is not None:
                    msg += f"; about {need} sessions per arm would resolve an effect this size"
                warnings.append(msg)
            out["conversion_sessions_per_arm"] = out["per_metric"][name]["sessions_per_arm_for_target"]
    return out, warnings


def rows_of_run(path: str | Path) -> list[SessionRow]:
    """The session rows of a finished simulation run folder."""
    from customer_r1.sim.runner import load_personas_of, load_run, records_to_data

    _, records = load_run(path)
    return stats.session_rows(records_to_data(records, load_personas_of(path), "test").sessions)


def to_json(result: ABResult, *, policy: dict[str, Any], reference_policy: str | None,
            runs: dict[str, str | None]) -> dict[str, Any]:
    return {
        "control": result.control, "treatment": result.treatment, "policy": policy,
        "reference_policy": reference_policy, "users": result.users,
        "sessions_per_arm": result.sessions_per_arm,
        "metrics": {k: e.to_dict() for k, e in result.effects.items()},
        "runs": runs, "sample_size": result.sample_size, "warnings": result.warnings,
        "design": "common random numbers: the same users and session seeds in both arms; effect "
                  "intervals resample users in both arms together (paired); effect_independent "
                  "bootstraps the arms separately, the interval independent seeds would give",
    }


def markdown(ab: dict[str, Any]) -> str:
    """The A/B table as markdown (what `sim ab` prints)."""
    lines = [f"# A/B: {ab['control']} vs {ab['treatment']}", "",
             f"{ab['users']} users, {ab['sessions_per_arm']} sessions per arm, policy "
             f"{ab['policy'].get('kind')}; common random numbers (same users and seeds per arm).", "",
             "| metric | control | treatment | effect (95% CI) | CI with independent seeds "
             "| CRN narrower by |" + (" true effect (95% CI) |" if ab["reference_policy"] else ""),
             "|---|---|---|---|---|---|" + ("---|" if ab["reference_policy"] else "")]
    for m in METRICS:
        d = ab["metrics"].get(m.name)
        if d is None:
            continue
        f = _fmt(m.percent)
        row = (f"| {m.label} | {f(d['control']['value'])} | {f(d['treatment']['value'])} | "
               f"{_ci(d['effect'], m.percent)} | {_ci(d['effect_independent'], m.percent)} | "
               f"{100 * d['crn_shrink']:.0f}% |")
        if ab["reference_policy"]:
            row += f" {_ci(d['true']['effect'], m.percent) if d.get('true') else '-'} |"
        lines.append(row)
    ss = ab.get("sample_size", {})
    if "conversion_sessions_per_arm" in ss:
        lines += ["", f"A 95% interval {100 * ss['target_width']:.1f} points wide on the conversion effect "
                      f"needs about {ss['conversion_sessions_per_arm']} sessions per arm."]
    lines += [f"\nWarning: {w}" for w in ab.get("warnings", [])]
    return "\n".join(lines) + "\n"


def _fmt(percent: bool) -> Callable[[float], str]:
    return (lambda x: f"{100 * x:.1f}%") if percent else (lambda x: f"{x:.2f}")


def _ci(d: dict[str, float], percent: bool) -> str:
    k = 100 if percent else 1
    unit = " pts" if percent else ""
    return f"{k * d['value']:+.2f}{unit} [{k * d['low']:+.2f}, {k * d['high']:+.2f}]"
