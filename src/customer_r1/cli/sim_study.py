"""`customer-r1 sim compare` and `sim report`: session-level fidelity and a researcher's report.

``compare SIM REFERENCE --out DIR`` scores two sets of sessions as whole sessions
(conversion overall and per persona segment, per-user conversion, funnel, where sessions
end, length, action and click mixes, purchases) with user-bootstrap intervals, writes
``compare.json`` + ``compare.md`` and prints the headline table. ``report RUN...
[--reference R] --out DIR`` writes ``index.html`` + ``report.md`` with plots. Registered
on the ``sim`` group at the end of :mod:`customer_r1.cli.sim`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from customer_r1.cli.params import input_argument, input_option, output_option

_err = Console(stderr=True)


class UserScope(StrEnum):
    """Which users are scored: those in both sets (paired), or every user of each."""

    shared = "shared"
    all = "all"


SPLIT_HELP = ("Only this split of world / OPeRA inputs (e.g. test: the held-out sessions); run folders are "
              "taken whole.")


def comparison_table(result: dict[str, Any]) -> Any:
    """The headline figures as a rich table that fits 80 columns."""
    from rich import box
    from rich.table import Table

    from customer_r1.sim.compare import summary_rows

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
              title=f"{result['sim']['label']} vs {result['reference']['label']}", title_justify="left")
    t.add_column("figure", no_wrap=True)
    t.add_column("sim", justify="right", no_wrap=True)
    t.add_column("ref", justify="right", no_wrap=True)
    t.add_column("difference / divergence [CI]", justify="right")
    t.add_column("", no_wrap=True)
    for name, a, b, d, sig in summary_rows(result):
        t.add_row(name, a, b, d, "[bold yellow]*[/]" if sig else "", style="yellow" if sig else None)
    return t


def compare(
    sim: Annotated[Path, input_argument(
        "sessions", help="The simulated sessions (a run, a `sim ab` folder ...).")],
    reference: Annotated[Path, input_argument(
        "sessions", help="The reference: the true shopper's run, a world or recorded OPeRA sessions.")],
    out: Annotated[Path, output_option("--out", help="Folder for compare.json and compare.md.")],
    split: Annotated[str | None, typer.Option("--split", help=SPLIT_HELP)] = None,
    users: Annotated[UserScope, typer.Option(
        "--users", help="shared: only users in both sets (paired); all: every user (unpaired when they "
                        "differ).")] = UserScope.shared,
    n_boot: Annotated[int, typer.Option(
        "--n-boot", min=10, help="Bootstrap replicates (resampling users).")] = 1000,
    level: Annotated[float, typer.Option("--level", min=0.5, max=0.999, help="Interval level.")] = 0.95,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
    min_segment_users: Annotated[int, typer.Option(
        "--min-segment-users", min=1, help="Fewest users a persona segment (a survey answer) needs.")] = 5,
) -> None:
    """Compare two sets of sessions as whole sessions, with bootstrap intervals over users."""
    from customer_r1.sim.compare import compare_sessions, load_sessions, write_comparison

    a = load_sessions(sim, split)
    b = load_sessions(reference, split)
    result = compare_sessions(a, b, n_boot=n_boot, seed=seed, min_segment_users=min_segment_users,
                              users="all" if users is UserScope.all else "shared", level=level)
    j, m = write_comparison(result, out)
    Console(width=80).print(comparison_table(result))
    sc, seg = result["scope"], result["segments"]
    _err.print(f"{sc['sim_sessions']} vs {sc['reference_sessions']} sessions over {sc['n_shared_users']} "
               f"shared users ({'paired' if result['bootstrap']['paired'] else 'unpaired'}); significant: "
               f"{len(result['significant'])} of {result['tests']} (about {result['expected_by_chance']} by "
               f"chance); segments {seg['significant']} of {seg['tests']} → {m}, {j.name}",
               markup=False, highlight=False, soft_wrap=True)


def report(
    runs: Annotated[list[Path], input_argument(
        "sessions", help="Simulated runs (or `sim ab` folders, worlds, OPeRA folders) to report on.")],
    out: Annotated[Path, output_option("--out", help="Report folder (index.html, report.md, plots).")],
    reference: Annotated[Path | None, input_option(
        "sessions", "--reference",
        help="Sessions to compare with (default: the true arms of a `sim ab` run, if any).")] = None,
    title: Annotated[str, typer.Option("--title", help="Title of the page.")] = (
        "Simulated shoppers: session-level report"),
    split: Annotated[str | None, typer.Option("--split", help=SPLIT_HELP)] = None,
    users: Annotated[UserScope, typer.Option("--users", help="Users scored against the reference.")] = (
        UserScope.shared),
    n_boot: Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap replicates.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
    min_segment_users: Annotated[int, typer.Option("--min-segment-users", min=1)] = 5,
    examples: Annotated[int, typer.Option(
        "--examples", min=0, help="Example sessions shown step by step.")] = 3,
) -> None:
    """Write an HTML + markdown report a UX researcher reads: funnels, A/B results, drop-offs, examples."""
    from customer_r1.sim.report import write_sim_report

    page = write_sim_report(list(runs), out, reference=reference, title=title, split=split, n_boot=n_boot,
                            seed=seed, min_segment_users=min_segment_users, examples=examples,
                            users="all" if users is UserScope.all else "shared")
    _err.print(f"report → {page} (and {page.with_name('report.md').name})", markup=False, highlight=False,
               soft_wrap=True)
