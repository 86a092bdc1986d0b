"""What context compression does to accuracy on the demo's compact world (issue 19, 4a).

Two SFT runs of the tiny CPU recipe, the same base model and tokenizer (the demo's,
trained on the demo's own prompts), the same wall-clock minutes, run side by side so
that both see the same machine load:

* ``window``: the demo's prompts (832 tokens, the last 3 steps, oldest pages dropped);
* ``compressed``: 832 tokens, the whole session (``max_history_steps`` unset), with
  ``--compress furniture,history_diff,trim_current``;
* ``handles`` (``--arms compressed,handles``): the same with ``handles`` added.

Both are scored in ranked decoding on the demo's 16 test sessions and on sessions 17-56:
exact match, expected exact match over the world's policy, correct steps per motive of
the world's policy (``eval motives``) and a sign test on the steps where exactly one of
the two is right. Everything lands in ``OUT/results.json`` and ``OUT/motives-*.md``.

Usage: nice -n 10 python benchmarks/compression_accuracy.py [--out runs/compress]
       [--minutes 15] [--stages world,base,build,train,eval] [--arms window,compressed]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ARMS: dict[str, dict[str, Any]] = {
    "window": {"max_history_steps": 3, "compress": []},
    "compressed": {"max_history_steps": None,
                   "compress": ["furniture", "history_diff", "trim_current"]},
    # The same prompts with the current page's names as handles (what the model writes).
    "handles": {"max_history_steps": None,
                "compress": ["furniture", "history_diff", "trim_current", "handles"]},
}
#: Motives whose availability depends on the shopper's memory of the session (viewed,
#: rejected, reviewed products, steps taken): see customer_r1.world.policy.Memory.
MEMORY_MOTIVES = ("next_unseen", "next_page", "compare", "quit", "fatigue", "bad_reviews",
                  "nothing_left", "related", "refine")


def sign_test(a_only: int, b_only: int) -> float:
    """Two-sided exact sign test p-value for the discordant counts."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def build(root: Path, data: Any, base: Path, demo: Any, arms: list[str]) -> dict[str, Path]:
    from dataclasses import asdict

    from customer_r1.data.examples import BuildConfig, write_examples

    out: dict[str, Path] = {}
    for arm in arms:
        over = ARMS[arm]
        d = root / "built" / arm
        cfg = BuildConfig(**{**demo.build, "prompt_style": "compact", "persona_mode": "real",
                             "tokenizer": str(base), **over, "progress": False})
        meta = d / "build.json"
        if not (meta.exists() and json.loads(meta.read_text())["config"] == asdict(cfg)):
            t0 = time.perf_counter()
            stats = write_examples(data, cfg, d)
            print(f"built {arm}: {stats.examples} in {time.perf_counter() - t0:.0f} s; history pages "
                  f"dropped {stats.history_pages_dropped}, steps brief {stats.history_steps_brief}, "
                  f"omitted {stats.history_steps_omitted}, current pages cut {stats.pages_truncated}")
        out[arm] = d
    return out


def train(root: Path, built: dict[str, Path], base: Path, minutes: float) -> None:
    """Both arms at once, one thread each, each capped at ``minutes`` of wall clock."""
    procs = {}
    for arm, d in built.items():
        out = root / "models" / arm
        if (out / "metrics.json").exists():
            print(f"{out} is trained; reusing it")
            continue
        argv = ["--config", "recipes/tiny-cpu/sft.yaml", "--dataset_path", str(d),
                "--model_name_or_path", str(base), "--output_dir", str(out),
                "--max_train_minutes", str(minutes), "--lr_schedule_over_time", "true",
                "--logging_steps", "50"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out.mkdir(parents=True, exist_ok=True)
        log = (root / f"train-{arm}.log").open("w")
        code = f"from customer_r1.training import sft; sft.main({argv!r})"
        procs[arm] = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
    for arm, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"training {arm} failed; see {root / f'train-{arm}.log'}")


def _score(args: tuple[str, str, str, int, int]) -> None:
    model, built, out, first, last = args
    import torch

    torch.set_num_threads(1)
    from customer_r1.data.examples import read_examples
    from customer_r1.evaluation.scoring import score_model

    rows = read_examples(built, "test")
    order = list(dict.fromkeys(r["session_id"] for r in rows))
    keep = set(order[first:last])
    score_model(Path(model), [r for r in rows if r["session_id"] in keep], Path(out),
                Path(out).name, "ranked")


def evaluate(root: Path, built: dict[str, Path], world: Path,
             sets: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Both arms on each session range (two at a time), then the comparison."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from customer_r1.actions import exact_match
    from customer_r1.evaluation.metrics import gold_action, load_preds, predicted_action, score_predictions
    from customer_r1.evaluation.motives import expected_match, motive_breakdown, write_motive_report
    from customer_r1.world import load_policy

    jobs = []
    for name, (first, last) in sets.items():
        for arm, d in built.items():
            out = root / "eval" / f"{name}-{arm}"
            if not (out / "preds.jsonl").exists() or not (out / "run.json").exists():
                jobs.append((str(root / "models" / arm), str(d), str(out), first, last))
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_score, jobs))
    policy = load_policy(world, "test")
    results: dict[str, Any] = {}
    for name in sets:
        res: dict[str, Any] = {}
        correct: dict[str, dict[str, bool]] = {}
        files = {}
        for arm in built:
            preds_path = root / "eval" / f"{name}-{arm}" / "preds.jsonl"
            files[arm] = preds_path
            preds = load_preds(preds_path)
            head = score_predictions(preds_path).headline()
            exp = expected_match(preds, policy.values())
            by_motive = motive_breakdown(preds, policy.values())
            mem = [m for m in by_motive if m.motive in MEMORY_MOTIVES]
            res[arm] = {
                "steps": len(preds),
                "exact_match": head["exact_match"],
                "expected_exact_match": exp["expected_exact_match"],
                "memory_steps": sum(m.steps for m in mem),
                "memory_correct": sum(m.model for m in mem),
                "memory_bayes": sum(m.bayes for m in mem),
                "memory_blind": sum(m.blind for m in mem),
                "by_motive": {m.motive: [m.steps, m.model, m.bayes, m.blind] for m in by_motive},
            }
            correct[arm] = {p["example_id"]: exact_match(predicted_action(p), gold_action(p)) for p in preds}
        first, *others = list(built)
        for j, b in enumerate(others):  # every arm against the first
            ids = correct[first].keys() & correct[b].keys()
            a_only = sum(correct[first][i] and not correct[b][i] for i in ids)
            b_only = sum(correct[b][i] and not correct[first][i] for i in ids)
            test = {f"{first}_only": a_only, f"{b}_only": b_only, "p": sign_test(a_only, b_only)}
            res["sign_test" if j == 0 else f"sign_test_{b}"] = test
        write_motive_report({arm: files[arm] for arm in built}, policy.values(), root / f"motives-{name}.md")
        results[name] = res
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/compress")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--stages", default="world,base,build,train,eval")
    ap.add_argument("--arms", default="window,compressed",
                    help=f"Arms to train side by side, the first the reference: {', '.join(ARMS)}.")
    a = ap.parse_args()
    stages = set(a.stages.split(","))
    arms = [x.strip() for x in a.arms.split(",") if x.strip()]
    if len(arms) < 2 or set(arms) - set(ARMS):
        raise SystemExit(f"--arms: two or more of {', '.join(ARMS)}")
    root = Path(a.out)
    root.mkdir(parents=True, exist_ok=True)
    from customer_r1.data.opera import load_opera
    from customer_r1.demo import DemoConfig, make_base, make_world

    demo = DemoConfig.from_yaml("recipes/tiny-cpu/demo.yaml", out_dir=str(root))
    world = make_world(demo, root) if "world" in stages else root / "world"
    data = load_opera(world)
    base = make_base(demo, root, data) if "base" in stages else root / "base"
    built = build(root, data, base, demo, arms) if "build" in stages else \
        {arm: root / "built" / arm for arm in arms}
    if "train" in stages:
        t0 = time.perf_counter()
        train(root, built, base, a.minutes)
        print(f"trained both arms in {(time.perf_counter() - t0) / 60:.1f} min")
    if "eval" in stages:
        sets = {"demo16": (0, 16), "s17-56": (16, 56)}
        results = evaluate(root, built, world, sets)
        metrics = {arm: json.loads((root / "models" / arm / "metrics.json").read_text()) for arm in built}
        summary = {"arms": {arm: ARMS[arm] for arm in arms}, "minutes": a.minutes, "train": metrics,
                   "eval": results}
        (root / "results.json").write_text(json.dumps(summary, indent=2))
        for name, res in results.items():
            for arm in built:
                r = res[arm]
                print(f"{name} {arm:10s} steps={r['steps']} exact={100 * r['exact_match']:.1f} "
                      f"E[exact]={100 * r['expected_exact_match']:.1f} memory={r['memory_correct']}/"
                      f"{r['memory_steps']} (Bayes {r['memory_bayes']}, blind {r['memory_blind']})")
            for key in [k for k in res if k.startswith("sign_test")]:
                print(f"{name} {key}: {res[key]}")


if __name__ == "__main__":
    main()
