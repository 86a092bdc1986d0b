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

Placebos: :func:`run_ab` with ``placebo=N`` also runs N placebo arms (built-in cosmetic
variants, :data:`~customer_r1.world.variants.PLACEBO_VARIANTS`, on top of the control's
variant) with the same policy, shoppers and seeds. Their true effect is zero, so what the
simulator reports for them is what it invents on a change a shopper ignores: per metric,
the share of placebo arms with a significant effect (its false-positive rate), the largest
placebo effect (the noise floor), and whether the test's effect clears it (its interval
lies wholly beyond the floor): "this effect is / is not larger than what this simulator
invents on cosmetic changes". The smallest effect it separates from placebo noise is the
floor plus half the test's interval width: an effect that large clears the floor with an
interval as wide as this one.

:func:`run_ab` is the orchestration (the CLI's ``sim ab``, the demo and the validity
benchmark call it); it lives here, in the library, so none of them imports the CLI.
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
    """The session rows of a finished simulation run folder, each with its job's key
    (``user#index``) in ``extra["key"]`` so that two arms can be paired session by session."""
    import dataclasses

    from customer_r1.sim.runner import load_personas_of, load_run, records_to_data

    _, records = load_run(path)
    keys = {r["session_id"]: r["key"] for r in records}
    sessions = records_to_data(records, load_personas_of(path), "test").sessions
    rows = stats.session_rows(sessions)
    with_steps = [s for s in sessions if any(st.action is not None for st in s.steps)]
    return [dataclasses.replace(r, extra={**r.extra, "key": keys.get(s.session_id, "")})
            for r, s in zip(rows, with_steps, strict=True)]


def paired_subset(control: Sequence[SessionRow], treatment: Sequence[SessionRow]) -> ArmRows:
    """The sessions both arms ran (by job key): a control with more sessions per shopper
    than a treatment pairs with it session by session."""
    ck = {r.extra.get("key") for r in control}
    tk = {r.extra.get("key") for r in treatment}
    both = ck & tk
    return ArmRows([r for r in control if r.extra.get("key") in both],
                   [r for r in treatment if r.extra.get("key") in both])


# --------------------------------------------------------------------------- placebos


def placebo_summary(test: dict[str, Effect], placebos: dict[str, dict[str, Effect]],
                    level: float = 0.95) -> dict[str, Any]:
    """Per metric: the placebo arms' effects, the false-positive rate (share significant),
    the noise floor (largest absolute placebo effect), the smallest effect separated from it
    (floor + half the test's interval width) and whether the test's effect is beyond it."""
    out: dict[str, Any] = {"arms": sorted(placebos), "n": len(placebos), "per_metric": {}}
    for name, e in test.items():
        arms = {p: placebos[p][name] for p in placebos if name in placebos[p]}
        if not arms:
            continue
        floor = max(abs(a.effect.value) for a in arms.values())
        fp = sum(a.significant for a in arms.values())
        half = e.effect.width / 2
        beyond = e.effect.low > floor or e.effect.high < -floor
        out["per_metric"][name] = {
            "effects": {p: a.effect.to_dict() for p, a in arms.items()},
            "significant": sorted(p for p, a in arms.items() if a.significant),
            "false_positive_rate": fp / len(arms), "noise_floor": floor,
            "smallest_separable": floor + half, "beyond_placebo": bool(beyond)}
    return out


def placebo_sentence(ab: dict[str, Any], metric: str = "conversion") -> str:
    """The verdict on one metric's effect in words (empty without placebo arms)."""
    pl = (ab.get("placebo") or {}).get("per_metric", {}).get(metric)
    if not pl:
        return ""
    m = next((x for x in METRICS if x.name == metric), None)
    k, unit = (100, " points") if m is None or m.percent else (1, "")
    eff = ab["metrics"][metric]["effect"]
    n = ab["placebo"]["n"]
    verdict = "is" if pl["beyond_placebo"] else "is not"
    return (f"This effect ({k * eff['value']:+.1f}{unit}) {verdict} larger than what this simulator "
            f"invents on cosmetic changes: on {n} placebo arm(s) it reported effects up to "
            f"{k * pl['noise_floor']:.1f}{unit}, {len(pl['significant'])} of {n} significant "
            f"(false-positive rate {100 * pl['false_positive_rate']:.0f}%); it separates effects "
            f"larger than about {k * pl['smallest_separable']:.1f}{unit} from placebo noise.")


# --------------------------------------------------------------------------- orchestration


def variant_name(specs: Sequence[str] | None) -> str:
    """The name of the variant repeated ``--variant`` options give (``control`` when none)."""
    if not specs:
        return "control"
    from customer_r1.world.variants import resolve_variants

    return resolve_variants(list(specs)).name


def placebo_names(n: int) -> list[str]:
    """The first ``n`` built-in placebos; BadOption when there are fewer."""
    from customer_r1.errors import BadOption
    from customer_r1.world.variants import PLACEBO_VARIANTS

    if n < 0 or n > len(PLACEBO_VARIANTS):
        raise BadOption(f"--placebo {n}: there are {len(PLACEBO_VARIANTS)} built-in placebos",
                        "--placebo", f"give 0 to {len(PLACEBO_VARIANTS)}")
    return list(PLACEBO_VARIANTS[:n])


def run_ab(*, world: Path, out: Path, control: list[str] | None, treatment: list[str],
           reference_policy: str | None = None, n_boot: int = 1000, ci_width: float = 0.05,
           placebo: int = 0, progress: bool = True, console: Any = None,
           arm_dirs: dict[str, Path] | None = None, **sim: Any) -> dict[str, Any]:
    """Run both arms with common random numbers (the reference policy's arms, and ``placebo``
    placebo arms), compare, write ``ab.json`` and ``ab.md``; return ab.json's content. ``sim``
    takes :func:`customer_r1.sim.simulate.simulate`'s policy and run options. ``arm_dirs``
    places arms elsewhere than ``out/{control,treatment,true-control,true-treatment,
    placebo-NAME}`` (keys ``control``, ``treatment``, ``true_control``, ``true_treatment``,
    ``placebo:NAME``): a finished run with the same settings is reused as it is (one
    control for many treatments)."""
    import json
    import os

    from customer_r1.errors import BadOption
    from customer_r1.io import atomic_write_text
    from customer_r1.sim.simulate import simulate

    if not treatment:
        raise BadOption("give the treatment's variant(s)", "--treatment",
                        "e.g. --treatment reviews_hidden")
    if reference_policy not in (None, "world"):
        raise BadOption(f"unknown reference policy {reference_policy!r}", "--reference-policy",
                        "world (the world's own shopper, the true one)")
    placebos = placebo_names(placebo)
    out.mkdir(parents=True, exist_ok=True)
    dirs = {"control": out / "control", "treatment": out / "treatment",
            "true_control": out / "true-control", "true_treatment": out / "true-treatment",
            **{f"placebo:{p}": out / f"placebo-{p}" for p in placebos}, **(arm_dirs or {})}
    common = {**sim, "world": world, "progress": progress, "console": console}
    simulate(out=dirs["control"], variant=control, **common)
    m = simulate(out=dirs["treatment"], variant=treatment, **common)
    sim_rows = ArmRows(rows_of_run(dirs["control"]), rows_of_run(dirs["treatment"]))
    true_rows = None
    if reference_policy == "world":
        ref = {k: v for k, v in common.items() if k not in (
            "model", "endpoint", "model_name", "build_config", "temperature", "rationale",
            "rationale_temperature", "device")}
        ref["policy"] = "world"
        simulate(out=dirs["true_control"], variant=control, **ref)
        simulate(out=dirs["true_treatment"], variant=treatment, **ref)
        true_rows = ArmRows(rows_of_run(dirs["true_control"]), rows_of_run(dirs["true_treatment"]))
    else:
        dirs.pop("true_control"), dirs.pop("true_treatment")
    seed = int(sim.get("seed", 0))
    result_effects = effects(sim_rows, true_rows, n_boot=n_boot, seed=seed)
    placebo_effects = {}
    for p in placebos:
        simulate(out=dirs[f"placebo:{p}"], variant=[*(control or []), p], **common)
        pr = ArmRows(sim_rows.control, rows_of_run(dirs[f"placebo:{p}"]))
        placebo_effects[p] = effects(pr, n_boot=n_boot, seed=seed)
    spu = int(m["sessions_per_user"])
    size, warnings = sample_size(result_effects, int(m["users"]), spu, ci_width)
    result = ABResult(variant_name(control), variant_name(treatment), int(m["users"]),
                      int(m["counts"]["sessions"]), result_effects, size, warnings)
    runs: dict[str, str | None] = {"true_control": None, "true_treatment": None}
    runs.update({k: os.path.relpath(v, out) for k, v in dirs.items()})
    payload = to_json(result, policy=m["policy"], reference_policy=reference_policy, runs=runs)
    if placebos:
        payload["placebo"] = placebo_summary(result_effects, placebo_effects)
    atomic_write_text(out / AB_FILE, json.dumps(payload, indent=2) + "\n")
    atomic_write_text(out / "ab.md", markdown(payload))
    return payload


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
    pl = (ab.get("placebo") or {}).get("per_metric", {})
    lines = [f"# A/B: {ab['control']} vs {ab['treatment']}", "",
             f"{ab['users']} users, {ab['sessions_per_arm']} sessions per arm, policy "
             f"{ab['policy'].get('kind')}; common random numbers (same users and seeds per arm).", "",
             "| metric | control | treatment | effect (95% CI) | CI with independent seeds "
             "| CRN narrower by |" + (" true effect (95% CI) |" if ab["reference_policy"] else "")
             + (" placebo noise (largest) | beyond placebo noise |" if pl else ""),
             "|---|---|---|---|---|---|" + ("---|" if ab["reference_policy"] else "")
             + ("---|---|" if pl else "")]
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
        if pl:
            p = pl.get(m.name)
            k = 100 if m.percent else 1
            row += (f" {k * p['noise_floor']:.2f}{' pts' if m.percent else ''} | "
                    f"{'yes' if p['beyond_placebo'] else 'no'} |") if p else " - | - |"
        lines.append(row)
    ss = ab.get("sample_size", {})
    if "conversion_sessions_per_arm" in ss:
        lines += ["", f"A 95% interval {100 * ss['target_width']:.1f} points wide on the conversion effect "
                      f"needs about {ss['conversion_sessions_per_arm']} sessions per arm."]
    if pl:
        lines += ["", f"Placebo arms ({', '.join(ab['placebo']['arms'])}): cosmetic changes the true "
                      "shopper ignores, same shoppers and seeds. " + placebo_sentence(ab)]
    lines += [f"\nWarning: {w}" for w in ab.get("warnings", [])]
    return "\n".join(lines) + "\n"


def _fmt(percent: bool) -> Callable[[float], str]:
    return (lambda x: f"{100 * x:.1f}%") if percent else (lambda x: f"{x:.2f}")


def _ci(d: dict[str, float], percent: bool) -> str:
    k = 100 if percent else 1
    unit = " pts" if percent else ""
    return f"{k * d['value']:+.2f}{unit} [{k * d['low']:+.2f}, {k * d['high']:+.2f}]"
