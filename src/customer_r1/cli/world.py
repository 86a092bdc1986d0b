"""`customer-r1 world` commands: generate a synthetic shopping world and describe it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(no_args_is_help=True)
_console = Console()


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Output folder (OPeRA_filtered/ and world/)."),
    users: int = typer.Option(40, "--users", min=1, help="Number of shoppers."),
    sessions_per_user: int = typer.Option(10, "--sessions-per-user", min=1),
    page_size: str = typer.Option("compact", "--page-size", help="compact or opera."),
    seed: int = typer.Option(0, "--seed"),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.0, max=0.95),
    population: int = typer.Option(2000, "--population", min=1,
                                   help="Trait vectors for the persona-blind ceiling."),
    extra_train_sessions: int = typer.Option(
        0, "--extra-train-sessions", min=0,
        help="More training sessions per user; every other session and the test split stay the same."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or tables."),
) -> None:
    """Generate a world and export it in OPeRA's filtered layout with policy sidecars."""
    from customer_r1.world.generate import WorldConfig, generate_world

    try:
        cfg = WorldConfig(users=users, sessions_per_user=sessions_per_user,
                          page_size=page_size, seed=seed, test_fraction=test_fraction,
                          population=population, extra_train_sessions=extra_train_sessions)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console, disable=quiet, transient=True) as bar:
        task = bar.add_task("sessions", total=cfg.total_sessions)
        world = generate_world(cfg, progress=lambda d, t: bar.update(task, completed=d))
        steps = sum(len(s.steps) for s in world.sessions)
        wtask = bar.add_task("writing steps", total=steps)
        info = world.export(out, progress=lambda d, t: bar.update(wtask, completed=d))
    if not quiet:
        _print_stats(info)
        _console.print(f"wrote {out} ({len(world.sessions)} sessions, {steps} steps) "
                       f"in {time.perf_counter() - t0:.1f}s")


@app.command()
def stats(
    directory: Path = typer.Argument(..., help="A folder written by `world generate`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Realism figures beside OPeRA's, and the persona / persona-blind ceilings."""
    from customer_r1.world.export import load_world_info

    path = directory / "world" / "world.json"
    if not path.exists():
        raise typer.BadParameter(f"{path} not found: is {directory} a generated world?")
    info = load_world_info(directory)
    if as_json:
        s = info["stats"]
        out = {k: s[k] for k in ("ceiling_persona", "ceiling_blind", "gap", "action_mix",
                                 "click_type_mix", "median_session_length",
                                 "mean_session_length", "outcome_mix", "click_types_present",
                                 "page_chars_median", "page_names_median", "sessions",
                                 "steps", "users")}
        out["ceilings"] = info["ceilings"]
        out["opera_reference"] = info["opera_reference"]
        out["config"] = info["config"]
        typer.echo(json.dumps(out, indent=2))
        return
    _print_stats(info)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _print_stats(info: dict[str, Any]) -> None:
    s, ref = info["stats"], info["opera_reference"]
    t = Table(title="Realism: world vs OPeRA-filtered")
    t.add_column("figure")
    t.add_column("world", justify="right")
    t.add_column("OPeRA", justify="right")
    for k in ("click", "input", "terminate"):
        t.add_row(f"action mix: {k}", _pct(s["action_mix"][k]), _pct(ref["action_mix"][k]))
    lo, hi = ref["median_session_length_target"]
    t.add_row("median session length", f"{s['median_session_length']:.1f}", f"{lo}-{hi}")
    t.add_row("mean session length", f"{s['mean_session_length']:.2f}",
              f"{ref['mean_session_length']:.2f}")
    for k in ("purchase", "terminate"):
        t.add_row(f"outcome: {k}", _pct(s["outcome_mix"][k]), _pct(ref["outcome_mix"][k]))
    t.add_row("click types present", str(s["click_types_present"]), str(ref["click_types"]))
    t.add_row("median page chars", f"{s['page_chars_median']:,.0f}",
              f"{ref['page_chars_median']:,}")
    t.add_row("median named elements per page", f"{s['page_names_median']:.0f}", "-")
    _console.print(t)

    c = Table(title="Click types (share of clicks)")
    c.add_column("click type")
    c.add_column("share", justify="right")
    for k, v in s["click_type_mix"].items():
        c.add_row(k, _pct(v))
    _console.print(c)

    e = Table(title="Exact-match ceilings (mean over steps)")
    for col in ("split", "steps", "persona", "persona-blind", "gap"):
        e.add_column(col, justify="right" if col != "split" else "left")
    for split, v in info["ceilings"].items():
        e.add_row(split, str(v["steps"]), _pct(v["ceiling_persona"]), _pct(v["ceiling_blind"]),
                  f"{100 * v['gap']:.1f} pts")
    _console.print(e)
