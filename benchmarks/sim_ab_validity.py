"""Do simulated A/B tests find the true effects? Every built-in site variant and placebo,
simulated by each policy and by the world's own shopper (the known answer), with common
random numbers. Sized for 2 CPU cores.

    python benchmarks/sim_ab_validity.py --out runs/ab-validity --truth-only
    python benchmarks/sim_ab_validity.py --out runs/ab-validity \\
        [--world runs/demo/world] [--policies shipped,none,baseline] [--extra NAME=CKPT]
        [--variants all] [--truth-sessions-per-user 20]
        [--max-users 40] [--control-sessions-per-user 8] [--sessions-per-user 1]
        [--concurrency 16] [--device cpu]

The truth: the world's shopper of every shopper of the world (80 in the demo's world) on the
control site and on every variant, ``--truth-sessions-per-user`` sessions each, run in memory
(:func:`customer_r1.sim.truth.true_rows`, the same sessions ``sim run --policy world`` gives,
thousands a minute), so whether a true effect is significant is settled by the truth, not by
the noise of a small simulated sample. ``--truth-only`` stops there and ends with
``n_sig=N pos=P neg=Q placebos=K placebo_max_abs=X`` (real variants whose true conversion
effect is significant, of which positive and negative; placebo variants; the largest absolute
true placebo effect in points, which common random numbers make exactly 0).

Each policy (``shipped``: demo-model/real-grpo, ``none``: demo-model/none-grpo, the shipped
shoppers, fine-tuned on a domain-randomised world from ``control`` and ``control-none``:
demo-model/control/{real,none}-grpo, trained on the control site only, which were shipped until
2026-12-08; ``mix``: demo-model/randomised-grpo, the variant-mix model trained on a
domain-randomised world from the pretrained base; ``baseline``: the page-kind baseline,
``--extra NAME=CKPT``: any other checkpoint)
runs the control site with ``--control-sessions-per-user`` sessions for ``--max-users``
shoppers (per-user fidelity: each shopper's simulated conversion against the true shopper's
on the same sessions' seeds), and every variant and placebo with ``--sessions-per-user``
sessions for the same shoppers, paired with the control session by session. Per policy, one
line at the end:

    policy=NAME sign=S spearman=R mae=M false_pos=F placebo_fp=P per_user_r=U

``sign``: share of the variants whose true effect is significant *and* at least 2 points
where the simulated effect has the same sign; ``spearman``: rank correlation of simulated and
true effects over all variants (placebos included); ``mae``: mean absolute error of the
effect in points; ``false_pos``: significant simulated effects on real variants that the
truth does not have (not significant, or the other sign); ``placebo_fp``: share of placebo
arms with a significant simulated effect; ``per_user_r``: Pearson correlation of per-shopper
conversion with the true shopper's on the control site. A policy passes with sign >= 0.9,
spearman >= 0.9 and placebo_fp <= 0.05 (issue 17's goals, and no more false positives on
placebos than the 5 % a 95 % interval allows). Run folders are reused when complete, so a
long benchmark resumes; figures go to OUT/validity.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {"shipped": REPO / "demo-model" / "real-grpo", "none": REPO / "demo-model" / "none-grpo",
           "mix": REPO / "demo-model" / "randomised-grpo",  # mix: the variant-mix (domain-randomised) model
           # the control-site checkpoints the shipped ones were fine-tuned from (shipped before 2026-12-08)
           "control": REPO / "demo-model" / "control" / "real-grpo",
           "control-none": REPO / "demo-model" / "control" / "none-grpo"}
SIGN_MIN = 0.02  # sign agreement counts true effects at least this large (2 points)


def ensure_world(path: Path) -> Path:
    from customer_r1.world import WorldConfig, export_world, generate_world

    if not (path / "world" / "world.json").exists():
        print(f"generating the demo world at {path} (80 shoppers, compact pages, seed 0)", flush=True)
        export_world(generate_world(WorldConfig(users=80, sessions_per_user=20, seed=0)), path)
    return path


def _iv(e) -> dict:
    return e.to_dict()


def truth(world_dir: Path, variants: list[str], spu: int, seed: int, n_boot: int, out: Path) -> dict:
    """True conversion effect of every variant (cached in OUT/truth.json per settings)."""
    from customer_r1.sim.ab import METRICS, ArmRows, effects
    from customer_r1.sim.truth import true_rows
    from customer_r1.world.load import load_world
    from customer_r1.world.variants import BUILTIN_VARIANTS

    settings = {"world": str(world_dir), "sessions_per_user": spu, "seed": seed, "boot": n_boot}
    cache = out / "truth.json"
    if cache.exists():
        old = json.loads(cache.read_text())
        if old.get("settings") == settings and set(variants) <= set(old["variants"]):
            print(f"truth reused from {cache}", flush=True)
            return old
    w = load_world(world_dir)
    t0 = time.perf_counter()
    ctl = true_rows(w, None, sessions_per_user=spu, seed=seed)
    res = {"settings": settings, "users": len(w.users), "sessions_per_arm": len(ctl),
           "control": {"conversion": float(np.mean([r.converted for r in ctl]))},
           "per_user_control": _per_user(ctl), "variants": {}}
    print(f"truth: {len(w.users)} shoppers x {spu} sessions = {len(ctl)} per arm; control conversion "
          f"{100 * res['control']['conversion']:.1f}%", flush=True)
    for v in variants:
        rows = true_rows(w, BUILTIN_VARIANTS[v], sessions_per_user=spu, seed=seed)
        e = effects(ArmRows(ctl, rows), n_boot=n_boot, seed=seed, metrics=METRICS[:1])["conversion"]
        same = sum(a.converted == b.converted and a.n_steps == b.n_steps and a.page_kinds == b.page_kinds
                   for a, b in zip(ctl, rows, strict=True))
        res["variants"][v] = {"effect": _iv(e.effect), "significant": e.significant,
                              "placebo": BUILTIN_VARIANTS[v].is_cosmetic, "identical_sessions": same}
        print(f"  {v:24} {_pts(e.effect.to_dict())}  {'*' if e.significant else ' '}  "
              f"width {100 * e.effect.width:4.1f}  identical {same}/{len(ctl)}", flush=True)
    res["minutes"] = round((time.perf_counter() - t0) / 60, 1)
    out.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res, indent=2) + "\n")
    return res


def _per_user(rows, keys: set[str] | None = None) -> dict[str, float]:
    by: dict[str, list[bool]] = {}
    for r in rows:
        if keys is None or r.extra.get("key") in keys:
            by.setdefault(r.user_id, []).append(r.converted)
    return {u: float(np.mean(v)) for u, v in by.items()}


def _pts(d: dict) -> str:
    return f"{100 * d['value']:+6.2f} [{100 * d['low']:+6.2f},{100 * d['high']:+6.2f}]"


def truth_line(t: dict, variants: list[str]) -> str:
    real = [v for v in variants if not t["variants"][v]["placebo"]]
    plac = [v for v in variants if t["variants"][v]["placebo"]]
    sig = [v for v in real if t["variants"][v]["significant"]]
    pos = sum(t["variants"][v]["effect"]["value"] > 0 for v in sig)
    mx = max((abs(t["variants"][v]["effect"]["value"]) for v in plac), default=0.0)
    return (f"n_sig={len(sig)} pos={pos} neg={len(sig) - pos} placebos={len(plac)} "
            f"placebo_max_abs={100 * mx:.2f}")


def true_control_for(world_dir: Path, users: list[str], spu: int, seed: int):
    from customer_r1.sim.truth import true_rows
    from customer_r1.world.load import load_world

    return true_rows(load_world(world_dir), None, users=users, sessions_per_user=spu, seed=seed)


def simulate_policy(name: str, pol: dict, args, world: Path, variants: list[str]) -> dict:
    """Every arm of one policy (finished run folders are reused as they are)."""
    from customer_r1.sim.simulate import simulate

    base = args.out / name
    t0 = time.perf_counter()
    kw = {**pol, "world": world, "max_users": args.max_users, "seed": args.seed,
          "concurrency": args.concurrency, "progress": True}
    if "model" in pol:
        kw["device"] = args.device
    m = simulate(out=base / "control", sessions_per_user=args.control_sessions_per_user, **kw)
    for v in variants:
        simulate(out=base / v, sessions_per_user=args.sessions_per_user, variant=[v], **kw)
    return {"policy": m["policy"], "minutes": round((time.perf_counter() - t0) / 60, 1)}


def run_policy(name: str, run: dict, args, world: Path, variants: list[str], t: dict) -> dict:
    from scipy.stats import spearmanr

    from customer_r1.sim.ab import METRICS, effects, paired_subset, rows_of_run

    base = args.out / name
    ctl = rows_of_run(base / "control")
    users = list(dict.fromkeys(r.user_id for r in ctl))
    true_ctl = true_control_for(world, users, args.control_sessions_per_user, args.seed)
    a, b = _per_user(ctl), _per_user(true_ctl)
    us = sorted(set(a) & set(b))
    x, y = np.array([a[u] for u in us]), np.array([b[u] for u in us])
    per_user_r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
    rows = {}
    for v in variants:
        pair = paired_subset(ctl, rows_of_run(base / v))
        e = effects(pair, n_boot=args.boot, seed=args.seed, metrics=METRICS[:1])["conversion"]
        tv = t["variants"][v]
        rows[v] = {"sim": _iv(e.effect), "sim_significant": e.significant, "true": tv["effect"],
                   "true_significant": tv["significant"], "placebo": tv["placebo"],
                   "sessions_per_arm": len(pair.treatment), "crn_shrink": round(e.crn_shrink, 3)}
    real = [v for v in variants if not rows[v]["placebo"]]
    plac = [v for v in variants if rows[v]["placebo"]]
    judged = [v for v in real if rows[v]["true_significant"] and abs(rows[v]["true"]["value"]) >= SIGN_MIN]
    agree = [v for v in judged if np.sign(rows[v]["sim"]["value"]) == np.sign(rows[v]["true"]["value"])]
    sim_e = [rows[v]["sim"]["value"] for v in variants]
    true_e = [rows[v]["true"]["value"] for v in variants]
    rho = float(spearmanr(sim_e, true_e).statistic) if len(variants) > 2 else float("nan")
    false_pos = [v for v in real if rows[v]["sim_significant"] and (
        not rows[v]["true_significant"]
        or np.sign(rows[v]["sim"]["value"]) != np.sign(rows[v]["true"]["value"]))]
    pfp = [v for v in plac if rows[v]["sim_significant"]]
    widths = [rows[v]["sim"]["high"] - rows[v]["sim"]["low"] for v in variants]
    summary = {"variants": rows, "judged": judged, "sign_agree": agree,
               "sign": len(agree) / len(judged) if judged else float("nan"), "spearman": rho,
               "mae": float(np.mean(np.abs(np.array(sim_e) - np.array(true_e)))),
               "false_pos": false_pos, "placebo_fp": len(pfp) / len(plac) if plac else float("nan"),
               "placebo_significant": pfp, "per_user_r": per_user_r, "per_user_shoppers": len(us),
               "control_sessions": len(ctl), "policy": run["policy"],
               "width_median": float(np.median(widths)), "width_max": float(np.max(widths)),
               "minutes": run["minutes"]}
    summary["passes"] = bool(summary["sign"] >= 0.9 and rho >= 0.9 and summary["placebo_fp"] <= 0.05)
    return summary


def policy_line(name: str, s: dict) -> str:
    return (f"policy={name} sign={s['sign']:.2f} spearman={s['spearman']:.2f} mae={100 * s['mae']:.1f} "
            f"false_pos={len(s['false_pos'])} placebo_fp={s['placebo_fp']:.2f} "
            f"per_user_r={s['per_user_r']:.2f}")


def report(results: dict, variants: list[str]) -> None:
    for pname, s in results["policies"].items():
        print(f"\n== {pname}: simulated vs true effect on conversion (points, 95% CI), "
              f"{s['minutes']} min")
        print(f"{'variant':24} {'simulated':>24} {'true':>24}  sig  n")
        for v in variants:
            r = s["variants"][v]
            tag = "placebo" if r["placebo"] else ("*" if r["true_significant"] else "")
            print(f"{v:24} {_pts(r['sim']):>24} {_pts(r['true']):>24}  {tag:7} {r['sessions_per_arm']}")
        print(f"simulated interval widths: median {100 * s['width_median']:.1f}, "
              f"max {100 * s['width_max']:.1f} "
              f"points; per-user r over {s['per_user_shoppers']} shoppers, {s['control_sessions']} control "
              f"sessions; passes: {s['passes']}")
    print()
    for pname, s in results["policies"].items():
        print(policy_line(pname, s))


def main() -> None:
    from customer_r1.world.variants import PLACEBO_VARIANTS, REAL_VARIANTS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/ab-validity"))
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--policies", default="shipped,none,mix,baseline")
    ap.add_argument("--extra", action="append", default=[], help="NAME=CKPT")
    ap.add_argument("--variants", default="all", help="all (every real variant and placebo) or a list")
    ap.add_argument("--truth-only", action="store_true", help="the world's shopper alone")
    ap.add_argument("--truth-sessions-per-user", type=int, default=20)
    ap.add_argument("--max-users", type=int, default=40)
    ap.add_argument("--control-sessions-per-user", type=int, default=8)
    ap.add_argument("--sessions-per-user", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    world = ensure_world(args.world or args.out / "world")
    variants = [*REAL_VARIANTS, *PLACEBO_VARIANTS] if args.variants == "all" else args.variants.split(",")
    t_start = time.perf_counter()

    def the_truth() -> dict:
        t = truth(world, variants, args.truth_sessions_per_user, args.seed, args.boot, args.out)
        widths = [t["variants"][v]["effect"]["high"] - t["variants"][v]["effect"]["low"] for v in variants]
        print(f"true interval widths: median {100 * float(np.median(widths)):.2f}, "
              f"max {100 * float(np.max(widths)):.2f} points ({t['sessions_per_arm']} sessions per arm)")
        return t

    if args.truth_only:
        print(truth_line(the_truth(), variants))
        return
    policies: dict[str, dict] = {}
    for name in [p for p in args.policies.split(",") if p]:
        if name in SHIPPED:
            policies[name] = {"model": str(SHIPPED[name])}
        elif name in ("baseline", "world"):
            policies[name] = {"policy": name}
        else:
            raise SystemExit(f"unknown policy {name}: shipped, none, mix, baseline, world "
                             "or --extra NAME=CKPT")
    for spec in args.extra:
        name, _, path = spec.partition("=")
        policies[name] = {"model": path}
    runs = {pname: simulate_policy(pname, pol, args, world, variants) for pname, pol in policies.items()}
    t = the_truth()  # after the policies' arms: a truth.json computed meanwhile is reused
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items()},
                     "truth_line": truth_line(t, variants), "policies": {}}
    for pname in policies:
        results["policies"][pname] = run_policy(pname, runs[pname], args, world, variants, t)
        (args.out / "validity.json").write_text(json.dumps(results, indent=2) + "\n")
        print(policy_line(pname, results["policies"][pname]), flush=True)
    results["minutes_total"] = round((time.perf_counter() - t_start) / 60, 1)
    (args.out / "validity.json").write_text(json.dumps(results, indent=2) + "\n")
    print(results["truth_line"])
    report(results, variants)


if __name__ == "__main__":
    main()
