"""`customer-r1 world` commands: generate a synthetic shopping world and describe it."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from customer_r1.cli.entry import new_app
from customer_r1.cli.params import input_argument, input_option, output_option

app = new_app(no_args_is_help=True)
_console = Console()


class PageSize(StrEnum):
    """world/generate.py PAGE_SIZES."""

    compact = "compact"
    opera = "opera"


def _check_replaceable(out: Path) -> None:
    """`world generate` replaces its output folder whole: refuse one that holds anything
    but a previous world, so a mistyped --out never deletes unrelated files."""
    from customer_r1.errors import BadOption

    if out.is_dir() and any(out.iterdir()) and not (out / "world" / "world.json").is_file():
        raise BadOption(f"{out} is not empty and holds no generated world", where="--out",
                        hint="choose a new or empty folder (a previous world there is replaced)")


@app.command()
def generate(
    out: Path = output_option(..., "--out", help="Output folder (OPeRA_filtered/ and world/)."),
    users: int = typer.Option(40, "--users", min=1, help="Number of shoppers."),
    sessions_per_user: int = typer.Option(10, "--sessions-per-user", min=1),
    page_size: PageSize = typer.Option(PageSize.compact, "--page-size", help="compact or opera."),
    seed: int = typer.Option(0, "--seed"),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.0, max=0.95),
    population: int = typer.Option(2000, "--population", min=1,
                                   help="Trait vectors for the persona-blind ceiling."),
    extra_train_sessions: int = typer.Option(
        0, "--extra-train-sessions", min=0,
        help="More training sessions per user; every other session and the test split stay the same."),
    randomise: bool = typer.Option(
        False, "--randomise",
        help="Domain-randomised training sites with held-out variants in a 'heldout' split "
             "(docs/randomised-world.md); default settings unless --randomise-config."),
    randomise_config: Annotated[Path | None, input_option(
        "recipe", "--randomise-config",
        help="YAML mapping of randomise settings (pool, held_out, continuous, ...), one "
             "under 'randomise:', or a demo recipe's world.randomise (its other world "
             "settings are not read); implies --randomise.")] = None,
    held_out: list[str] = typer.Option(
        [], "--held-out",
        help="A held-out variant (repeat; replaces the config's list); implies --randomise."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or tables."),
) -> None:
    """Generate a world and export it in OPeRA's filtered layout with policy sidecars.

    The export is written into a temporary folder beside --out and renamed when complete:
    an interrupted run leaves the previous world (or nothing), never half a world.
    """
    from customer_r1.errors import BadOption
    from customer_r1.io import atomic_dir
    from customer_r1.world import WorldConfig, export_world, generate_world

    rand = _randomise_settings(randomise, randomise_config, held_out)
    try:
        cfg = WorldConfig(users=users, sessions_per_user=sessions_per_user,
                          page_size=page_size.value, seed=seed, test_fraction=test_fraction,
                          population=population, extra_train_sessions=extra_train_sessions,
                          randomise=rand)
    except ValueError as exc:
        where = str(randomise_config) if randomise_config and "randomise" in str(exc) else None
        raise BadOption(str(exc), where=where,
                        hint="see customer-r1 world generate --help") from exc
    _check_replaceable(out)
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console, disable=quiet, transient=True) as bar:
        task = bar.add_task("sessions", total=cfg.total_sessions)
        world = generate_world(cfg, progress=lambda d, t: bar.update(task, completed=d))
        steps = sum(len(s.steps) for s in world.sessions)
        wtask = bar.add_task("writing steps", total=steps)
        with atomic_dir(out, mode="swap") as tmp:
            info = export_world(world, str(tmp), progress=lambda d, t: bar.update(wtask, completed=d))
    if not quiet:
        _print_stats(info)
        _console.print(f"wrote {out} ({len(world.sessions)} sessions, {steps} steps) "
                       f"in {time.perf_counter() - t0:.1f}s")


def _randomise_settings(on: bool, path: Path | None, held_out: list[str]) -> dict[str, Any] | None:
    """The ``randomise`` settings of the options: None when randomisation is off."""
    from customer_r1.errors import BadInput

    if not (on or path or held_out):
        return None
    settings: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise BadInput(f"unreadable randomise settings: {' '.join(str(exc).split())}",
                           str(path), "write a YAML mapping of randomise settings") from exc
        if isinstance(data, dict) and isinstance(data.get("world"), dict):  # a demo recipe
            data = data["world"].get("randomise")
            if data is None:
                raise BadInput("the recipe's world section has no randomise settings",
                               str(path), "add world: randomise: {...} (docs/randomised-world.md)")
        elif isinstance(data, dict) and set(data) == {"randomise"}:  # a world section's form
            data = data["randomise"]
        if not isinstance(data, dict):
            raise BadInput("randomise settings must be a YAML mapping", str(path),
                           "see docs/randomised-world.md")
        settings.update(data)
    if held_out:
        settings["held_out"] = list(held_out)
    return settings


@app.command()
def stats(
    directory: Annotated[Path, input_argument("world", help="A folder written by `world generate`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Realism figures beside OPeRA's, and the persona / persona-blind ceilings."""
    from customer_r1.errors import BadFile, MissingFile
    from customer_r1.io import read_json

    path = directory / "world" / "world.json"
    if not path.exists():
        raise MissingFile(f"{path} not found", where="DIRECTORY",
                          hint="is it a folder written by `customer-r1 world generate`?")
    info = read_json(path)
    missing = [k for k in ("stats", "opera_reference", "ceilings", "config") if k not in info]
    if missing:
        raise BadFile(f"world.json lacks {', '.join(missing)}", where=str(path),
                      hint="regenerate the world with this version of customer-r1")
    if as_json:
        s = info["stats"]
        out = {k: s[k] for k in ("ceiling_persona", "ceiling_blind", "gap", "action_mix",
                                 "click_type_mix", "median_session_length",
                                 "mean_session_length", "outcome_mix", "click_types_present",
                                 "page_chars_median", "page_names_median", "sessions",
                                 "steps", "users")}
        if "evidence" in s:  # worlds written before evidence was recorded lack it
            out["evidence"] = s["evidence"]
        out["ceilings"] = info["ceilings"]
        if "randomise" in info:
            r = info["randomise"]
            out["randomise"] = {"held_out": r["held_out"], "ceilings": r["ceilings"],
                                "train_sites": {k: v for k, v in r["train_sites"].items()
                                                if k != "sites"}}
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

    ev = s.get("evidence")
    if ev is not None:
        v = Table(title="Evidence: page facts the policy's decisions consulted")
        v.add_column("kind")
        v.add_column("facts", justify="right")
        for k, n in ev["by_kind"].items():
            v.add_row(k, f"{n:,}")
        v.add_row("all", f"{ev['facts']:,} ({ev['facts_per_step']:.1f} per step, "
                  f"{_pct(ev['steps_with_evidence'])} of steps)")
        _console.print(v)

    e = Table(title="Exact-match ceilings (mean over steps)")
    for col in ("split", "steps", "persona", "persona-blind", "gap"):
        e.add_column(col, justify="right" if col != "split" else "left")
    for split, v in info["ceilings"].items():
        e.add_row(split, str(v["steps"]), _pct(v["ceiling_persona"]), _pct(v["ceiling_blind"]),
                  f"{100 * v['gap']:.1f} pts")
    _console.print(e)

    r = info.get("randomise")
    if r is not None:  # a randomised world: control test vs held-out sessions
        h = Table(title="Randomised world: ceilings on the control test split and held-out variants")
        for col in ("sessions on", "steps", "persona", "persona-blind", "gap"):
            h.add_column(col, justify="right" if col != "sessions on" else "left")
        rows = [("control (test)", r["ceilings"]["control_test"]),
                ("held-out (all)", r["ceilings"]["held_out_test"]),
                *r["ceilings"]["by_held_out_variant"].items()]
        for name, v in rows:
            h.add_row(name, str(v["steps"]), _pct(v["ceiling_persona"]),
                      _pct(v["ceiling_blind"]), f"{100 * v['gap']:.1f} pts")
        _console.print(h)
        ts = r["train_sites"]
        _console.print(f"training sites: {ts['distinct']} distinct over {ts['sessions']} sessions "
                       f"({ts['control_sessions']} on the control site)")
