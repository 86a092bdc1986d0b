"""The demo's results table in the terminal: every row beside both ceilings, sources footnoted."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_table(results: dict[str, Any]) -> None:
    """The demo's table; sources are footnoted so it fits an 80-column terminal."""
    t = Table(
        title=f"exact match on {results['eval_steps']} test steps ({results['eval_sessions']} sessions)"
    )
    # E[exact] replaces "% of Bayes" (exact / Bayes ceiling, easily derived) to fit 80 columns.
    for col in ("row", "src", "decode", "exact", "E\\[exact]", "type F1", "out. F1", "valid"):
        # "persona-blind" must not be cropped; "sampled K=8, T=0.5" may wrap.
        t.add_column(col, justify="left" if col in ("row", "src", "decode") else "right",
                     min_width=13 if col == "row" else None, max_width=7 if col == "decode" else None)
    cp, cb = results["ceiling_persona"], results["ceiling_blind"]
    sources: list[str] = []

    def pct(x: Any) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    for r in results["rows"]:
        if r["source"] not in sources:
            sources.append(r["source"])
        em, ee = r.get("exact_match"), r.get("expected_exact_match")

        def green(x: Any, r: dict[str, Any] = r) -> str:
            return "[bold green]" if x is not None and x > cb and r["mode"] != "baseline" else ""

        t.add_row(
            r["name"],
            f"[{sources.index(r['source']) + 1}]",
            "–" if r["mode"] == "baseline" else r["mode"],
            green(em) + pct(em),
            green(ee) + pct(ee),
            pct(r.get("type_macro_f1")),
            pct(r.get("outcome_f1")),
            pct(r.get("format_validity")),
        )
    t.add_row("persona-blind ceiling", "W", "", pct(results.get("blind_choice_exact")), pct(cb), "", "", "")
    t.add_row("Bayes ceiling", "W", "", pct(results.get("bayes_choice_exact")), pct(cp), "", "", "")
    out = Console()
    out.print(t)
    for i, src in enumerate(sources, 1):
        out.print(f"[{i}] {src}")
    out.print("[W] the world's own policy on the same steps: its blind and Bayes choices")
    out.print(
        "exact: matches of the action the world drew; E\\[exact]: the probability the world gave the "
        "predicted action, averaged (the ceilings are this expectation of the blind and Bayes choices)"
    )
    out.print(
        "[green]green[/]: above the persona-blind ceiling (personalisation a persona-blind model can't reach)"
    )
