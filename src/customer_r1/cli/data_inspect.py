"""`customer-r1 data inspect SRC`: load OPeRA-format data and print what is in it.

A plain function with typer annotations; ``cli/data.py`` registers it with
``app.command("inspect")(inspect)``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from customer_r1.cli.data_build import OperaConfig as ConfigChoice
from customer_r1.cli.params import input_argument, input_option


def inspect(
    src: Annotated[
        str,
        input_argument(
            "opera",
            help="OPeRA_filtered/OPeRA_full folder, a folder containing it, or a Hub id "
            "(e.g. NEU-HAI/OPeRA).",
        ),
    ],
    config: Annotated[
        ConfigChoice, typer.Option("--config", help="Which OPeRA config to read.")
    ] = ConfigChoice.filtered,
    tokenizer: Annotated[
        str | None,
        input_option(
            "tokenizer",
            "--tokenizer",
            help="Tokenizer path or id: also build the examples and report prompt-token "
            "percentiles (slow on real data).",
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option("--budget", min=1, help="Prompt token budget for --tokenizer "
                     "(default: the builder's)."),
    ] = None,
    lenient: Annotated[
        bool,
        typer.Option("--lenient", help="Skip malformed rows (counted by reason) instead of "
                     "stopping at the first."),
    ] = False,
    reduce: Annotated[
        bool,
        typer.Option("--reduce/--no-reduce", help="Full config: reduce sessions to the "
                     "filtered action types (default) or keep scroll/navigation/tab steps."),
    ] = True,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the statistics as one JSON object.")
    ] = False,
) -> None:
    """Users, sessions, steps, action and click-type mix, rationale coverage, outcomes,
    session-length and page-size percentiles, and rows skipped while loading."""
    from rich.console import Console

    from customer_r1.data.inspect import collect_stats, render_stats
    from customer_r1.data.opera import load_opera
    from customer_r1.errors import BadOption

    if budget is not None and tokenizer is None:
        raise BadOption("--budget needs --tokenizer", where="--budget")
    # Format errors are UserErrors naming file, row and column (and the --lenient hint):
    # the CLI prints them in one line.
    data = load_opera(src, config=config.value, lenient=lenient, reduce=reduce)
    stats = collect_stats(data, tokenizer=tokenizer, budget=budget)
    if json_out:
        sys.stdout.write(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
        return
    console = Console()
    if not console.is_terminal:  # piped: rich's default 80 columns would squeeze the tables
        console = Console(width=160)
    render_stats(stats, console)
