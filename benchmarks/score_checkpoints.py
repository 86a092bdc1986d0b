"""Score checkpoints on a demo recipe's test steps, as the demo scores its shipped rows.

Why: a checkpoint trained outside ``make demo`` (a long CPU run, a lent GPU) is compared with
the shipped ones on exactly the demo's steps, in the same decoding (ranked, greedy or with K
sampled rationales), with E[exact] under the world's own policy and the share of the persona
lift captured, (E[exact] - blind) / (Bayes - blind), next to both ceilings.

    python benchmarks/score_checkpoints.py --config recipes/tiny-cpu/demo-model-randomised-warm.yaml \\
        --model shipped=demo-model/real-grpo@real --model shipped-none=demo-model/none-grpo@none \\
        --model warm=runs/demo-model-randomised-warm/models/real/grpo@real \\
        --rationale-samples 8 --rationale-temperature 0.5 --out runs/scores.json

The world and the examples come from the recipe's out_dir (run the recipe, or its world and
examples stages, first); each model's tokenizer builds its own copy of the test rows. Ends with
one ``label=... e_exact=... lift_captured=...`` line per model; with ``--reference LABEL`` each
line also gives ``delta_vs_<LABEL>``, the paired difference in E[exact] on the same steps with a
95 % interval from resampling whole test sessions (at 16 sessions a few points are within noise).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def parse_model(spec: str, error: Callable[[str], Any]) -> tuple[str, Path, str]:
    """``LABEL=PATH@MODE`` (mode: real or none; default real); ``error`` exits 2 with one line."""
    if "=" not in spec:
        error(f"--model {spec!r}: expected LABEL=PATH[@MODE], e.g. warm=runs/x/models/real/grpo@real")
    label, rest = spec.split("=", 1)
    path, _, mode = rest.partition("@")
    if not (Path(path) / "config.json").exists():
        error(f"--model {label}: no checkpoint at {path} (config.json missing)")
    if mode not in ("", "real", "none"):
        error(f"--model {label}: persona mode {mode!r} is not real or none")
    return label, Path(path), mode or "real"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="the demo recipe whose world and test steps to use")
    ap.add_argument("--model", action="append", required=True, help="LABEL=PATH[@MODE]; repeatable")
    ap.add_argument("--sessions", type=int, default=None, help="test sessions (default: the recipe's)")
    ap.add_argument("--rationale-samples", type=int, default=0)
    ap.add_argument("--rationale-temperature", type=float, default=1.0)
    ap.add_argument("--reference", default=None,
                    help="a --model LABEL: give every other model's paired difference from it")
    ap.add_argument("--out", type=Path, default=None, help="write the rows here as JSON")
    args = ap.parse_args()

    from customer_r1.data.opera import load_opera
    from customer_r1.demo import DemoConfig, make_examples, make_world
    from customer_r1.evaluation.metrics import load_preds
    from customer_r1.evaluation.motives import expected_by_step, paired_session_bootstrap
    from customer_r1.evaluation.scoring import Scoreboard, eval_rows, score_model, subset_ceilings
    from customer_r1.world import load_policy

    models = [parse_model(s, ap.error) for s in args.model]
    if args.reference is not None and args.reference not in [m[0] for m in models]:
        ap.error(f"--reference {args.reference!r} is not one of the --model labels")
    cfg = DemoConfig.from_yaml(args.config)
    sessions = args.sessions if args.sessions is not None else cfg.eval_sessions
    root = Path(cfg.out_dir)
    world = make_world(cfg, root)
    data = load_opera(world)
    policy = load_policy(world, "test")
    board = Scoreboard(policy)
    ceilings: dict[str, float] = {}
    how = "greedy" if not args.rationale_samples else (
        f"K={args.rationale_samples}, T={args.rationale_temperature:g}")
    out_dir = root / "scores"
    for label, path, mode in models:
        rows = eval_rows(make_examples(cfg, root, data, path, mode, splits=["test"]), sessions)
        if not ceilings:
            ceilings = subset_ceilings(policy, rows)
        t0 = time.perf_counter()
        d = out_dir / f"{label}-{'greedy' if not args.rationale_samples else f'k{args.rationale_samples}'}"
        metrics = score_model(path, rows, d, label, "ranked", rationale_samples=args.rationale_samples,
                              rationale_temperature=args.rationale_temperature)
        board.add(label, str(path), metrics, how, d)
        board.rows[-1].update(persona=mode, seconds=round(time.perf_counter() - t0, 1), steps=len(rows))
    bayes, blind = 100 * ceilings["ceiling_persona"], 100 * ceilings["ceiling_blind"]
    print(f"\n{sessions} test sessions of {root / 'world'}; ranked, {how}; "
          f"Bayes ceiling {bayes:.1f}, persona-blind {blind:.1f} (E[exact], %)")
    by_step = {} if args.reference is None else {
        r["name"]: expected_by_step(load_preds(d / "preds.jsonl"), policy.values())
        for r, d in zip(board.rows, board.run_dirs, strict=True)}
    for r in board.rows:
        e = 100 * r["expected_exact_match"]
        r["lift_captured"] = (e - blind) / (bayes - blind)
        paired = ""
        if by_step and r["name"] != args.reference:
            d = paired_session_bootstrap(by_step[r["name"]], by_step[args.reference])
            r[f"delta_vs_{args.reference}"] = d
            paired = (f" delta_vs_{args.reference}={100 * d['delta']:+.1f} "
                      f"ci95=[{100 * d['low']:+.1f},{100 * d['high']:+.1f}]")
        print(f"label={r['name']} persona={r['persona']} steps={r['steps']} "
              f"exact={100 * r['exact_match']:.1f} e_exact={e:.1f} "
              f"lift_captured={100 * r['lift_captured']:.0f}% seconds={r['seconds']}{paired}")
    if args.out:
        args.out.write_text(json.dumps({"ceilings": ceilings, "decoding": how, "rows": board.rows}, indent=2))


if __name__ == "__main__":
    main()
