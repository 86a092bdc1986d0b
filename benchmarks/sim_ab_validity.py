"""Do simulated A/B tests find the true effects? Every built-in site variant, simulated by a
policy and by the world's own shopper (the true answer), with common random numbers.

    python benchmarks/sim_ab_validity.py --out runs/ab-validity [--world runs/demo/world]
        [--policies shipped,none,baseline] [--max-users 80] [--sessions-per-user 2]
        [--true-sessions-per-user 20]
        [--variants all] [--concurrency 16] [--device auto]
        [--extra NAME=CKPT]            # any other checkpoint, e.g. one trained on other variants
        [--heldout a,b,c]              # variants scored apart (those a mixed-variant model never saw)

For each policy and variant: the simulated and the true effect on conversion with 95%
intervals (users resampled, arms paired). The true effects come from the world's own shopper
on the same shoppers and seeds with many more sessions (it costs little), so whether a
true effect is significant is settled by the truth rather than by a small sample.
Then, per policy: sign agreement over the
variants whose true effect is significant, Spearman's correlation of the effect sizes, and
the per-user conversion correlation with the true shopper on the control site (does the
persona make individual shoppers right?). Goals (issue 17): sign agreement >= 90% and
Spearman >= 0.9 (published simulators: 67% and 0.72); per-user correlation higher with
persona than without. Runs are reused when their folders are complete, so a long
benchmark resumes. Figures are printed and written to OUT/validity.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {"shipped": REPO / "demo-model" / "real-grpo", "none": REPO / "demo-model" / "none-grpo"}


def ensure_world(path: Path) -> Path:
    from customer_r1.world import WorldConfig, export_world, generate_world

    if not (path / "world" / "world.json").exists():
        print(f"generating the demo world at {path} (80 shoppers, compact pages, seed 0)")
        export_world(generate_world(WorldConfig(users=80, sessions_per_user=20, seed=0)), path)
    return path


def per_user_conversion_corr(sim_run: Path, true_run: Path) -> float:
    from customer_r1.sim.ab import rows_of_run

    def rates(rows):
        by: dict[str, list[bool]] = {}
        for r in rows:
            by.setdefault(r.user_id, []).append(r.converted)
        return {u: float(np.mean(v)) for u, v in by.items()}

    a, b = rates(rows_of_run(sim_run)), rates(rows_of_run(true_run))
    users = sorted(set(a) & set(b))
    x, y = np.array([a[u] for u in users]), np.array([b[u] for u in users])
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def main() -> None:
    from scipy.stats import spearmanr

    from customer_r1.cli.sim_ab import run_ab
    from customer_r1.world.variants import BUILTIN_VARIANTS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/ab-validity"))
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--policies", default="shipped,none,baseline")
    ap.add_argument("--extra", action="append", default=[], help="NAME=CKPT")
    ap.add_argument("--variants", default="all")
    ap.add_argument("--heldout", default="", help="variants reported apart (comma-separated)")
    ap.add_argument("--max-users", type=int, default=80)
    ap.add_argument("--sessions-per-user", type=int, default=2)
    ap.add_argument("--true-sessions-per-user", type=int, default=20,
                    help="sessions per shopper of the world's shopper: the true effects (cheap)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    world = ensure_world(args.world or args.out / "world")
    variants = [v for v in BUILTIN_VARIANTS if v != "control"] if args.variants == "all" else \
        args.variants.split(",")
    policies: dict[str, dict] = {}
    for name in [p for p in args.policies.split(",") if p]:
        if name in SHIPPED:
            policies[name] = {"model": str(SHIPPED[name])}
        elif name in ("baseline", "world"):
            policies[name] = {"policy": name}
        else:
            raise SystemExit(f"unknown policy {name}: shipped, none, baseline, world or --extra NAME=CKPT")
    for spec in args.extra:
        name, _, path = spec.partition("=")
        policies[name] = {"model": path}
    common = {"max_users": args.max_users, "seed": args.seed, "concurrency": args.concurrency,
              "progress": True}
    heldout = set(filter(None, args.heldout.split(",")))
    results: dict[str, dict] = {"settings": vars(args) | {"out": str(args.out), "world": str(world)},
                                "policies": {}}
    t_start = time.perf_counter()
    # The true effects: the world's own shopper, same shoppers and seeds, many sessions each
    # (it is cheap), so "the true effect is significant" is settled by the truth, not by the
    # noise of a small simulated sample.
    truth = {}
    for v in variants:
        dirs = {"control": args.out / "true" / "control", "treatment": args.out / "true" / v}
        ab = run_ab(world=world, out=args.out / "true" / f"ab-{v}", control=None, treatment=[v],
                    n_boot=args.boot, arm_dirs=dirs, policy="world",
                    **{**common, "sessions_per_user": args.true_sessions_per_user})
        truth[v] = ab["metrics"]["conversion"]
    results["truth"] = {v: {"effect": t["effect"], "significant": t["significant"]} for v, t in truth.items()}
    for pname, pol in policies.items():
        t0 = time.perf_counter()
        rows = {}
        base = args.out / pname
        for v in variants:
            kw = {**common, **pol, "sessions_per_user": args.sessions_per_user}
            if "model" in pol:
                kw["device"] = args.device
            # One control per policy: a finished run folder with the same settings is reused.
            dirs = {"control": base / "control", "treatment": base / v}
            ab = run_ab(world=world, out=base / f"ab-{v}", control=None, treatment=[v],
                        n_boot=args.boot, arm_dirs=dirs, **kw)
            c = ab["metrics"]["conversion"]
            rows[v] = {"sim": c["effect"], "true": truth[v]["effect"],
                       "true_significant": truth[v]["significant"], "sim_significant": c["significant"],
                       "crn_shrink": c["crn_shrink"]}
        sig = [v for v in variants if rows[v]["true_significant"]]
        agree = [v for v in sig if np.sign(rows[v]["sim"]["value"]) == np.sign(rows[v]["true"]["value"])]
        sim_eff = [rows[v]["sim"]["value"] for v in variants]
        true_eff = [rows[v]["true"]["value"] for v in variants]
        rho = float(spearmanr(sim_eff, true_eff).statistic) if len(variants) > 2 else float("nan")
        corr = per_user_conversion_corr(base / "control", args.out / "true" / "control")
        summary = {"variants": rows, "significant_true": sig,
                   "sign_agreement": len(agree) / len(sig) if sig else None, "sign_agree": agree,
                   "spearman": rho, "per_user_conversion_corr": corr,
                   "minutes": round((time.perf_counter() - t0) / 60, 1)}
        if heldout:
            h = [v for v in variants if v in heldout]
            hs = [v for v in h if rows[v]["true_significant"]]
            ha = [v for v in hs if np.sign(rows[v]["sim"]["value"]) == np.sign(rows[v]["true"]["value"])]
            hr = (float(spearmanr([rows[v]["sim"]["value"] for v in h],
                                  [rows[v]["true"]["value"] for v in h]).statistic) if len(h) > 2 else None)
            summary["heldout"] = {"variants": h, "sign_agreement": len(ha) / len(hs) if hs else None,
                                  "spearman": hr}
        results["policies"][pname] = summary
        (args.out / "validity.json").write_text(json.dumps(results, indent=2) + "\n")
    results["minutes_total"] = round((time.perf_counter() - t_start) / 60, 1)
    (args.out / "validity.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results, variants)


def report(results: dict, variants: list[str]) -> None:
    def pts(d: dict) -> str:
        return f"{100 * d['value']:+5.1f} [{100 * d['low']:+5.1f},{100 * d['high']:+5.1f}]"

    for pname, s in results["policies"].items():
        print(f"\n== {pname}: simulated vs true effect on conversion (points, 95% CI)")
        print(f"{'variant':22} {'simulated':>22} {'true':>22}  sig")
        for v in variants:
            r = s["variants"][v]
            print(f"{v:22} {pts(r['sim']):>22} {pts(r['true']):>22}  {'*' if r['true_significant'] else ''}")
        sa = s["sign_agreement"]
        print(f"sign agreement over {len(s['significant_true'])} variants with a significant true effect: "
              f"{'-' if sa is None else f'{100 * sa:.0f}%'} (goal >= 90%; anchor 67%)")
        print(f"Spearman of effect sizes over {len(variants)} variants: {s['spearman']:.2f} "
              "(goal >= 0.9; anchor 0.72)")
        print(f"per-user conversion correlation with the true shopper (control site): "
              f"{s['per_user_conversion_corr']:.2f}")
        if "heldout" in s:
            h = s["heldout"]
            print(f"held-out variants {h['variants']}: sign agreement {h['sign_agreement']}, "
                  f"Spearman {h['spearman']}")
    print(f"\ntotal {results.get('minutes_total')} min")


if __name__ == "__main__":
    main()
