"""Ranked-mode policy steps/s: ``Ranker.predict`` one at a time vs ``predict_batch``.

A simulator runs K shopping sessions at once and needs one policy step for all K. On a
small CPU model each forward is mostly fixed overhead and most forwards are the
token-by-token loops (rationale, input texts), so ``predict_batch`` runs those loops
for all rows together. This script measures it on the shipped checkpoint
(``demo-model/real-grpo``, a tiny Llama trained on the synthetic world's compact pages)
with real prompts: a small world, built into examples with the checkpoint's own
tokenizer, as the demo builds them.

Run: ``.venv/bin/python benchmarks/batch_ranking.py [--examples 32] [--threads 2] [--repeats 5]``.
Prints examples/s of each setting (greedy and sampled rationale; best and median of
the repeats), then ``speedup_b16_over_single_{greedy,sample}=...`` (B=16 over one at a
time) and ``speedup_b16_over_b1_...`` (over ``predict_batch`` of one request).
It also checks that greedy ``predict_batch`` picks the same actions as ``predict``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from customer_r1.data.examples import BuildConfig, read_examples, write_examples
from customer_r1.data.opera import load_opera
from customer_r1.evaluation.ranking import Ranker, RankRequest
from customer_r1.world import WorldConfig, export_world, generate_world

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "demo-model" / "real-grpo"


def build_rows(work: Path, users: int) -> list[dict[str, Any]]:
    """Test-split rows of a small compact world, built as the demo builds them."""
    world = work / "world"
    export_world(generate_world(WorldConfig(users=users, sessions_per_user=4, page_size="compact", seed=0)),
        str(world))
    data = load_opera(world)
    built = work / "built"
    write_examples(data, BuildConfig(tokenizer=str(CHECKPOINT), token_budget=832, max_history_steps=3,
                                     prompt_style="compact", persona_mode="real", progress=False),
                   built)
    return read_examples(built, "test") + read_examples(built, "train")


def seconds(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_single(ranker: Ranker, reqs: Sequence[RankRequest], mode: str) -> None:
    """One request at a time: ``predict`` (greedy); for a sampled rationale, whose only
    single-request form is ``predict_batch`` of one row (``predict``'s
    ``rationale_samples`` is a marginal over K samples, another policy), that."""
    for r in reqs:
        if mode == "greedy":
            ranker.predict(r.prompt, r.page_names, r.input_names, require_rationale=r.require_rationale)
        else:
            ranker.predict_batch([r], rationale="sample")


def run_batched(ranker: Ranker, reqs: Sequence[RankRequest], mode: str, b: int) -> None:
    for i in range(0, len(reqs), b):
        ranker.predict_batch(reqs[i : i + b], rationale=mode)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", type=int, default=32, help="requests per measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (best and median kept)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(str(CHECKPOINT))
    model = AutoModelForCausalLM.from_pretrained(str(CHECKPOINT), dtype=torch.float32,
                                                 attn_implementation=a.attn).eval()
    ranker = Ranker(model, tok)
    with tempfile.TemporaryDirectory() as tmp:
        rows = build_rows(Path(tmp), users=8)
    rows = rows[: a.examples]
    reqs = [RankRequest(r["prompt"], r["page_names"], r["input_names"], bool(r["require_rationale"]),
                        seed=i) for i, r in enumerate(rows)]
    n_tok = [len(ranker.prompt_ids(r.prompt)) for r in reqs]
    n_cand = [len(r.page_names) + len(r.input_names) + 1 for r in reqs]
    print(f"checkpoint={CHECKPOINT.name} attn={a.attn} threads={a.threads} examples={len(reqs)} "
          f"prompt_tokens median={statistics.median(n_tok):.0f} max={max(n_tok)} "
          f"candidates median={statistics.median(n_cand):.0f} "
          f"with_rationale={sum(r.require_rationale for r in reqs)}", flush=True)

    # Greedy predict_batch answers what predict answers.
    single = [ranker.predict(r.prompt, r.page_names, r.input_names,
                             require_rationale=r.require_rationale) for r in reqs]
    batch = ranker.predict_batch(reqs)
    same = sum(s.completion == b.completion for s, b in zip(single, batch, strict=True))
    print(f"greedy predict_batch == predict: {same}/{len(reqs)} completions identical", flush=True)

    # Settings run round-robin, and each keeps its best repeat: on a shared machine a
    # burst of other work then slows one repeat of every setting, not all of one.
    settings: dict[tuple[str, str], Callable[[], None]] = {}
    for mode in ("greedy", "sample"):
        settings[(mode, "one-at-a-time")] = lambda m=mode: run_single(ranker, reqs, m)
        for b in (1, 4, 16):
            settings[(mode, f"batch B={b}")] = lambda m=mode, b=b: run_batched(ranker, reqs, m, b)
        run_single(ranker, reqs[:4], mode)  # warm-up
        run_batched(ranker, reqs[:16], mode, 16)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in settings}
    for rep in range(a.repeats):
        for key, fn in settings.items():
            times[key].append(seconds(fn))
        print(f"  repeat {rep + 1}/{a.repeats} done", flush=True)

    best = {k: len(reqs) / min(v) for k, v in times.items()}
    med = {k: len(reqs) / statistics.median(v) for k, v in times.items()}
    print(f"\nexamples/s, best (median) of {a.repeats} repeats")
    print(f"{'setting':<16}{'greedy':>18}{'sample':>18}")
    for name in ("one-at-a-time", "batch B=1", "batch B=4", "batch B=16"):
        cells = [f"{best[(m, name)]:.2f} ({med[(m, name)]:.2f})" for m in ("greedy", "sample")]
        print(f"{name:<16}{cells[0]:>18}{cells[1]:>18}")
    for mode in ("greedy", "sample"):
        for base in ("one-at-a-time", "batch B=1"):
            s = best[(mode, "batch B=16")] / best[(mode, base)]
            tag = "single" if base == "one-at-a-time" else "b1"
            print(f"speedup_b16_over_{tag}_{mode}={s:.2f}")

if __name__ == "__main__":
    main()
