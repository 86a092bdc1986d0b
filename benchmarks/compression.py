"""Context compression at OPeRA scale: every strategy and their combination, side by side.

Two sets of sessions, each built at a 65,536-token budget with the SmolLM2-135M tokenizer:

* ``build``: the sessions of ``benchmarks/build_examples.py`` (437 sessions, 4,864 steps,
  pages of median ~105k characters, random product grids; the same generator and seed);
* ``world``: the synthetic world with OPeRA-sized pages (nav bar, results, product
  details, carousels, footer), whose shopper records the page facts each decision
  consulted (``world/policy.py``), so the share of that evidence a prompt still shows
  can be measured. Sized like the first (44 shoppers x 10 sessions).

One row per strategy: the paper's oldest-page drop (the baseline, no ``--compress``),
``furniture``, ``history_diff``, ``trim_current``, and combinations. Columns: mean and
p90 prompt tokens (and mean against the baseline), history pages shown, current pages
cut, the gold element's name present in the prompt (and on its current page), the share
of recorded evidence present in the prompt (and on its current page), and the build's
seconds (parse, tokenize, plan, assemble, write parquet) against the tokenize-once floor
(every raw page tokenized once on all cores). The last line gives the best combination
on the world (smallest mean with the gold name always present):

    ratio=<mean tokens / oldest-page drop> gold=<share> evidence=<share>

A floor no strategy that keeps every name and label can pass is printed beside the
table: the tokens of the current page's ``name="..."`` attributes and its elements'
labels alone (mean over every 10th example).

Usage: nice -n 10 python benchmarks/compression.py [--datasets build,world] [--sessions 437]
       [--steps 4864] [--world-users 44] [--budget 65536] [--every K]
``--every K`` keeps every K-th session of each dataset (the same sessions, fewer of them).
docs/lab-notes/2026-12-04-context-compression.md reports a run with ``--every 5`` (the full
sets take about 3 hours on 2 cores).
"""

from __future__ import annotations

import argparse
import html as html_lib
import json
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from build_examples import make_data  # this folder is on sys.path when run as a script

from customer_r1.data.examples import BuildConfig, page_piece, write_examples
from customer_r1.data.tokens import ENCODE_BATCH, TokenCounter, load_tokenizer

ALL = ["furniture", "history_diff", "trim_current"]
ROWS: dict[str, list[str]] = {
    "oldest-page drop": [],
    "furniture": ["furniture"],
    "history_diff": ["history_diff"],
    "trim_current": ["trim_current"],
    "history_diff+trim_current": ["history_diff", "trim_current"],
    "all three": ALL,
    "all three+handles": [*ALL, "handles"],
}


def floor_seconds(pages: list[str], tok: Any) -> float:
    """Every raw page tokenized once, same tokenizer and batching as the builder."""
    backend = tok.backend_tokenizer
    t0 = time.perf_counter()
    for i in range(0, len(pages), ENCODE_BATCH):
        backend.encode_batch(pages[i : i + ENCODE_BATCH], add_special_tokens=False)
    return time.perf_counter() - t0


def measure(data: Any, compress: list[str], budget: int, tok: Any, tokenizer: str,
            evidence: dict[str, list[str]] | None) -> dict[str, Any]:
    """Build every example under ``compress`` (timed) and read back the figures."""
    import pyarrow.parquet as pq

    out = Path(tempfile.mkdtemp(prefix="cr1-compress-"))
    cfg = BuildConfig(tokenizer=tokenizer, token_budget=budget, compress=compress, progress=False)
    t0 = time.perf_counter()
    stats = write_examples(data, cfg, out, counter=TokenCounter(tok))
    seconds = time.perf_counter() - t0
    tokens: list[int] = []
    kept: list[int] = []
    cut = gold = gold_cur = golds = facts = facts_in = facts_cur = 0
    cols = ["prompt", "prompt_tokens", "history_pages_dropped", "page_truncated", "step_index",
            "action_type", "semantic_id", "action_id", "page_names", "name_handles"]
    for batch in pq.ParquetFile(out / "train.parquet").iter_batches(batch_size=64, columns=cols):
        for r in batch.to_pylist():
            tokens.append(r["prompt_tokens"])
            kept.append(r["step_index"] - r["history_pages_dropped"])
            cut += r["page_truncated"]
            text = "".join(m["content"] for m in r["prompt"] if m["role"] == "user")
            current = r["prompt"][-1]["content"].rsplit("# Current page", 1)[-1]
            if r["action_type"] != "terminate":
                needle = f'name="{html_lib.escape(r["semantic_id"])}"'
                where = text
                if r["name_handles"]:  # the gold element's handle, which only the current page has
                    needle = f'name="{r["page_names"].index(r["semantic_id"])}"'
                    where = current
                golds += 1
                gold += needle in where
                gold_cur += needle in current
            for fact in (evidence or {}).get(r["action_id"], []):
                facts += 1
                facts_in += fact in text
                facts_cur += fact in current
    shutil.rmtree(out, ignore_errors=True)
    if max(tokens) > budget:
        raise AssertionError(f"{compress}: an example exceeds the budget")
    return {
        "compress": compress, "examples": len(tokens), "seconds": seconds,
        "mean": statistics.mean(tokens), "p90": statistics.quantiles(tokens, n=10)[-1],
        "max": max(tokens), "history_kept": statistics.mean(kept), "cut": cut,
        "gold": gold / max(1, golds), "gold_current": gold_cur / max(1, golds),
        "evidence": facts_in / facts if facts else None,
        "evidence_current": facts_cur / facts if facts else None, "facts": facts,
        "exact_checked": stats.exact_checked, "exact_mismatches": stats.exact_mismatches,
        "steps_brief": stats.history_steps_brief, "steps_omitted": stats.history_steps_omitted,
    }


def world_data(users: int, sessions_per_user: int) -> tuple[Any, dict[str, list[str]]]:
    """The OPeRA-sized world (train split only) and each step's recorded evidence."""
    from customer_r1.world import WorldConfig, generate_world

    cfg = WorldConfig(users=users, sessions_per_user=sessions_per_user, page_size="opera", seed=0,
                      population=200, test_fraction=0.0)
    world = generate_world(cfg)
    evidence = {st.action_id: [t for _, t in st.evidence] for s in world.sessions for st in s.steps}
    return world.to_shopping_data(), evidence


def names_floor(pages: list[str], tok: Any, every: int = 10) -> tuple[float, float]:
    """Mean tokens of a page's name attributes alone, and with its elements' labels
    (every ``every``-th page): what trimming that keeps every name and label cannot cut."""
    from customer_r1.data.compress import ParsedPage

    backend = tok.backend_tokenizer
    names_only: list[int] = []
    with_labels: list[int] = []
    for html in pages[::every]:
        names = " ".join(f'name="{n}"' for n in re.findall(r'\sname="([^"]*)"', html))
        labels = " ".join(p.text for ps in ParsedPage(html).region_pieces() for p in ps
                          if p.kind == "label")
        a = len(backend.encode(names, add_special_tokens=False).ids)
        b = len(backend.encode(labels, add_special_tokens=False).ids)
        names_only.append(a)
        with_labels.append(a + b)
    return statistics.mean(names_only), statistics.mean(with_labels)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="build,world")
    ap.add_argument("--rows", default=",".join(ROWS), help="Row names (see ROWS), comma-separated.")
    ap.add_argument("--sessions", type=int, default=437)
    ap.add_argument("--steps", type=int, default=4864)
    ap.add_argument("--world-users", type=int, default=44)
    ap.add_argument("--world-sessions-per-user", type=int, default=10)
    ap.add_argument("--budget", type=int, default=65_536)
    ap.add_argument("--tokenizer", default="smollm2")
    ap.add_argument("--every", type=int, default=1, help="Keep every K-th session of each dataset.")
    ap.add_argument("--json", default=None, help="Also write every figure here.")
    args = ap.parse_args()
    tok = load_tokenizer(args.tokenizer)
    rows = [r.strip() for r in args.rows.split(",")]
    results: dict[str, dict[str, Any]] = {}
    for ds in [d.strip() for d in args.datasets.split(",")]:
        t0 = time.perf_counter()
        if ds == "build":
            data, evidence = make_data(args.sessions, args.steps), None
        elif ds == "world":
            data, evidence = world_data(args.world_users, args.world_sessions_per_user)
        else:
            raise SystemExit(f"unknown dataset {ds!r}: build or world")
        if args.every > 1:
            data = replace(data, sessions=data.sessions[:: args.every])
        pages = [page_piece(st.observation.html) for s in data.sessions for st in s.steps]
        print(f"[{ds}] {len(data.sessions)} sessions, {len(pages)} steps, page chars median "
              f"{statistics.median(len(p) for p in pages):,.0f}, made in {time.perf_counter() - t0:.0f} s",
              flush=True)
        floor = floor_seconds(pages, tok)
        print(f"[{ds}] tokenize-once floor {floor:.1f} s", flush=True)
        nf, nlf = names_floor(pages, tok)
        print(f"[{ds}] current page's names alone {nf:,.0f} tokens, with labels {nlf:,.0f}", flush=True)
        res: dict[str, Any] = {"floor": floor, "names_floor": nf, "names_labels_floor": nlf, "rows": {}}
        for name in rows:
            r = measure(data, ROWS[name], args.budget, tok, args.tokenizer, evidence)
            res["rows"][name] = r
            print(f"[{ds}] {name}: mean {r['mean']:,.0f} p90 {r['p90']:,.0f} gold {pct(r['gold'])} "
                  f"evidence {pct(r['evidence'])} {r['seconds']:.0f} s", flush=True)
        results[ds] = res
        base = res["rows"].get("oldest-page drop")
        print(f"\n{ds}: {len(pages)} examples at {args.budget:,} tokens, floor {floor:.1f} s")
        print("| strategy | mean tokens | p90 | vs drop | history pages | current cut | gold in prompt "
              "(on current page) | evidence in prompt (on current page) | build s | x floor |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in res["rows"].items():
            ratio = f"{r['mean'] / base['mean']:.3f}" if base else "-"
            print(f"| {name} | {r['mean']:,.0f} | {r['p90']:,.0f} | {ratio} | {r['history_kept']:.2f} | "
                  f"{r['cut']} | {pct(r['gold'])} ({pct(r['gold_current'])}) | {pct(r['evidence'])} "
                  f"({pct(r['evidence_current'])}) | {r['seconds']:.0f} | {r['seconds'] / floor:.2f} |")
        if base:
            print(f"names-and-labels floor of the current page alone: {nlf:,.0f} tokens "
                  f"({nlf / base['mean']:.3f} of oldest-page drop; names alone {nf:,.0f}, "
                  f"{nf / base['mean']:.3f}; labels alone, what handles cannot shorten, "
                  f"{nlf - nf:,.0f}, {(nlf - nf) / base['mean']:.3f})")
        print(flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    best_ds = "world" if "world" in results else next(iter(results))
    res = results[best_ds]
    base = res["rows"].get("oldest-page drop")
    cands = {n: r for n, r in res["rows"].items() if r["compress"]}
    if base and cands:
        full = {n: r for n, r in cands.items() if r["gold"] == 1.0} or cands
        name, r = min(full.items(), key=lambda kv: kv[1]["mean"])
        ev = r["evidence"] if r["evidence"] is not None else float("nan")
        print(f"best on {best_ds}: {name}")
        print(f"ratio={r['mean'] / base['mean']:.3f} gold={r['gold']:.3f} evidence={ev:.3f}")


if __name__ == "__main__":
    main()
