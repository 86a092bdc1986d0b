"""What is in a loaded OPeRA-format dataset: counts, mixes and size percentiles.

Run before building or training to check a download (or a synthetic world) looks like
the published statistics: 4,864 train / 992 test steps filtered, action mix about
86/10/4, half the test sessions ending in a purchase, pages of ~100k characters.
:func:`collect_stats` returns plain JSON-able data; :func:`render_stats` draws it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from customer_r1.actions import CLICK_TYPES
from customer_r1.domain import STEP_KINDS, ShoppingData

#: Percentiles reported for every distribution (plus min, max and mean).
PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 90, 95, 99)
ALL = "all"


def percentiles(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """count, mean, min, p5..p99 and max (linear interpolation); zeros for no values."""
    arr = np.asarray(values, dtype=float)
    keys = ["count", "mean", "min", *(f"p{p}" for p in PERCENTILES), "max"]
    if arr.size == 0:
        return dict.fromkeys(keys, 0.0)
    qs = np.percentile(arr, PERCENTILES)
    out = {"count": float(arr.size), "mean": float(arr.mean()), "min": float(arr.min())}
    out.update({f"p{p}": float(q) for p, q in zip(PERCENTILES, qs, strict=True)})
    out["max"] = float(arr.max())
    return out


def _by_split(splits: Sequence[str], counts: Mapping[str, Counter[str]]) -> dict[str, dict]:
    out: dict[str, dict[str, int]] = {s: dict(counts.get(s, Counter())) for s in splits}
    total: Counter[str] = Counter()
    for s in splits:
        total.update(counts.get(s, Counter()))
    out[ALL] = dict(total)
    return out


def collect_stats(
    data: ShoppingData,
    *,
    tokenizer: str | None = None,
    budget: int | None = None,
) -> dict[str, Any]:
    """Every number ``customer-r1 data inspect`` prints, as JSON-able dicts keyed by split.

    With ``tokenizer``, examples are built (``customer_r1.data.examples``) and their
    ``prompt_tokens`` summarised, with how many needed history pages dropped or the
    current page cut to fit ``budget``.
    """
    splits = data.splits
    sessions = {s: data.split(s) for s in splits}
    kinds: dict[str, Counter[str]] = {}
    clicks: dict[str, Counter[str]] = {}
    outcomes: dict[str, Counter[str]] = {}
    rationale: dict[str, Counter[str]] = {}
    lengths: dict[str, list[int]] = {}
    pages: dict[str, list[int]] = {}
    for split, group in sessions.items():
        kinds[split] = Counter()
        clicks[split] = Counter()
        outcomes[split] = Counter(s.outcome for s in group)
        rationale[split] = Counter()
        lengths[split] = [len(s.steps) for s in group]
        pages[split] = []
        for session in group:
            for step in session.steps:
                kinds[split][step.kind] += 1
                if step.kind == "click":
                    clicks[split][step.click_type or "(none)"] += 1
                rationale[split]["steps"] += 1
                if step.rationale:
                    rationale[split]["with_rationale"] += 1
                    rationale[split][f"source:{step.rationale_source or 'unknown'}"] += 1
                pages[split].append(len(step.observation.html))

    users_by_split = {s: len({x.user_id for x in group}) for s, group in sessions.items()}
    users_by_split[ALL] = len({x.user_id for x in data.sessions})
    rationale_out = _by_split(splits, rationale)
    for row in rationale_out.values():
        row.setdefault("steps", 0)
        row.setdefault("with_rationale", 0)
        row["coverage"] = row["with_rationale"] / row["steps"] if row["steps"] else 0.0

    stats: dict[str, Any] = {
        "source": data.source,
        "splits": splits,
        "users": {"in_user_tables": len(data.users), "with_sessions": users_by_split},
        "sessions": {**{s: len(g) for s, g in sessions.items()}, ALL: len(data.sessions)},
        "steps": {**{s: sum(lengths[s]) for s in splits}, ALL: sum(map(sum, lengths.values()))},
        "action_types": _by_split(splits, kinds),
        "click_types": _by_split(splits, clicks),
        "rationale": rationale_out,
        "outcomes": _by_split(splits, outcomes),
        "session_length": {
            **{s: percentiles(lengths[s]) for s in splits},
            ALL: percentiles([n for s in splits for n in lengths[s]]),
        },
        "page_chars": {
            **{s: percentiles(pages[s]) for s in splits},
            ALL: percentiles([n for s in splits for n in pages[s]]),
        },
        "prompt_tokens": None,
        "skipped": dict(data.skipped),
    }
    if tokenizer is not None:
        stats["prompt_tokens"] = prompt_token_stats(data, tokenizer=tokenizer, budget=budget)
    return stats


def prompt_token_stats(data: ShoppingData, *, tokenizer: str, budget: int | None = None) -> dict[str, Any]:
    """Prompt-token percentiles of the built examples, per split (and how many were cut)."""
    # Imported here: the builder pulls in tokenizers/transformers, which plain inspect avoids.
    from customer_r1.data.examples import BuildConfig, build_examples
    from customer_r1.models import resolve_model

    resolve_model(tokenizer, "--tokenizer", tokenizer_only=True)  # one-line error, not a Hub traceback
    config = (
        BuildConfig(tokenizer=tokenizer)
        if budget is None
        else BuildConfig(tokenizer=tokenizer, token_budget=budget)
    )
    return summarize_examples(build_examples(data, config), budget=config.token_budget)


def summarize_examples(rows: Iterable[Mapping[str, Any]], *, budget: int | None) -> dict[str, Any]:
    """Percentiles of ``prompt_tokens`` per split from built example rows."""
    tokens: dict[str, list[int]] = {}
    truncated: Counter[str] = Counter()
    dropped: dict[str, list[int]] = {}
    for row in rows:
        if row.get("prompt_tokens") is None:  # built without counting tokens
            continue
        split = str(row.get("split") or ALL)
        tokens.setdefault(split, []).append(int(row["prompt_tokens"]))
        truncated[split] += bool(row.get("page_truncated"))
        dropped.setdefault(split, []).append(int(row.get("history_pages_dropped") or 0))
    splits = [s for s in tokens if s != ALL] or list(tokens)
    every = [n for s in tokens for n in tokens[s]]
    per: dict[str, Any] = {s: percentiles(tokens[s]) for s in splits}
    if ALL not in per:
        per[ALL] = percentiles(every)
    return {
        "budget": budget,
        "percentiles": per,
        "page_truncated": {**{s: truncated[s] for s in splits}, ALL: sum(truncated.values())},
        "mean_history_pages_dropped": {
            **{s: float(np.mean(dropped[s])) if dropped[s] else 0.0 for s in splits},
            ALL: float(np.mean([d for v in dropped.values() for d in v])) if every else 0.0,
        },
    }


# ---------------------------------------------------------------------------- rendering


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _count_table(
    title: str, counts: Mapping[str, Mapping[str, Any]], order: Sequence[str], cols: Sequence[str]
) -> Table:
    """Rows = keys (known order first, then any others), columns = splits + all, with shares."""
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for col in cols:
        table.add_column(col, justify="right")
    keys = [k for k in order if any(k in counts.get(c, {}) for c in cols)]
    keys += sorted({k for c in cols for k in counts.get(c, {})} - set(keys))
    for key in keys:
        cells = []
        for col in cols:
            n = counts.get(col, {}).get(key, 0)
            total = sum(counts.get(col, {}).values())
            cells.append(f"{n:,} ({100 * n / total:.1f}%)" if total else "0")
        table.add_row(key, *cells)
    return table


def _pct_table(title: str, dists: Mapping[str, Mapping[str, float]], rows: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("split")
    keys = ["count", "mean", "min", *(f"p{p}" for p in PERCENTILES), "max"]
    for key in keys:
        table.add_column(key, justify="right")
    for row in rows:
        if row in dists:
            table.add_row(row, *(_fmt(dists[row][k]) for k in keys))
    return table


def render_stats(stats: Mapping[str, Any], console: Console) -> None:
    """Draw :func:`collect_stats` output as rich tables."""
    splits: list[str] = list(stats["splits"])
    cols = [*splits, ALL]

    overview = Table(title=f"OPeRA data: {stats.get('source', '')}", title_justify="left")
    overview.add_column("")
    for col in cols:
        overview.add_column(col, justify="right")
    users = stats["users"]["with_sessions"]
    overview.add_row("users (with sessions)", *(_fmt(users.get(c, 0)) for c in cols))
    overview.add_row("sessions", *(_fmt(stats["sessions"].get(c, 0)) for c in cols))
    overview.add_row("steps", *(_fmt(stats["steps"].get(c, 0)) for c in cols))
    rat = stats["rationale"]
    overview.add_row(
        "steps with rationale",
        *(f"{rat[c]['with_rationale']:,} ({100 * rat[c]['coverage']:.1f}%)" for c in cols),
    )
    console.print(overview)
    console.print(f"users in the user tables: {stats['users']['in_user_tables']:,}")

    console.print(_count_table("Actions by type", stats["action_types"], STEP_KINDS, cols))
    console.print(_count_table("Clicks by click type", stats["click_types"], CLICK_TYPES, cols))
    console.print(_count_table("Session outcomes", stats["outcomes"], ("purchase", "terminate"), cols))
    console.print(_pct_table("Session length (steps)", stats["session_length"], cols))
    console.print(_pct_table("Page size (characters of simplified HTML)", stats["page_chars"], cols))

    tokens = stats.get("prompt_tokens")
    if tokens:
        per = tokens["percentiles"]
        console.print(
            _pct_table(f"Prompt tokens (budget {tokens.get('budget')})", per, [c for c in cols if c in per])
        )
        cut = tokens["page_truncated"]
        dropped = tokens["mean_history_pages_dropped"]
        console.print(
            "current page cut: "
            + ", ".join(f"{c} {cut[c]:,}" for c in cols if c in cut)
            + "; mean history pages dropped: "
            + ", ".join(f"{c} {dropped[c]:.1f}" for c in cols if c in dropped)
        )

    skipped = stats.get("skipped") or {}
    if skipped:
        table = Table(title="Left out while loading", title_justify="left")
        table.add_column("reason")
        table.add_column("count", justify="right")
        for reason, n in skipped.items():
            table.add_row(reason, f"{n:,}")
        console.print(table)
    else:
        console.print("rows skipped: 0")
