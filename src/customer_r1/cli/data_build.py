"""``customer-r1 data build``: OPeRA-format data → next-action examples (parquet)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from customer_r1.cli.params import input_argument, input_option, output_option

PROMPT_STYLE_HELP = "full; compact (short system message); chat (a message per page, packable)."
COMPRESS_HELP = ("Context compression, comma-separated: furniture (repeated regions become a reference), "
                 "history_diff (earlier pages as what changed), trim_current (current page: names and "
                 "labels whole, long text cut), handles (the current page's names as short numbers the model "
                 "writes instead; not with --prompt-style chat). Default: whole pages, oldest dropped first.")

console = Console(stderr=True)


# Choices as enums so a typo is a usage error before anything loads; the values mirror
# data/opera.py CONFIGS, data/persona.py PERSONA_MODES and data/examples.py PROMPT_STYLES
# (tests/test_cli_errors.py checks they agree).
class OperaConfig(StrEnum):
    filtered = "filtered"
    full = "full"


class PersonaModeChoice(StrEnum):
    real = "real"
    none = "none"
    shuffled = "shuffled"


class RationaleMode(StrEnum):
    on = "on"
    off = "off"


class PromptStyle(StrEnum):
    full = "full"
    compact = "compact"
    chat = "chat"


class ExactCheck(StrEnum):
    auto = "auto"
    all = "all"
    none = "none"


def check_budget_strategy(name: str) -> None:
    """A registered budget strategy (they are pluggable, so not an enum)."""
    from customer_r1.data.budget import STRATEGIES
    from customer_r1.errors import BadOption

    if name not in STRATEGIES:
        raise BadOption(f"unknown budget strategy {name!r}", where="--budget-strategy",
                        hint=f"known: {', '.join(sorted(STRATEGIES))}")


def check_compress(text: str) -> list[str]:
    """``--compress``: comma-separated strategy names (pluggable combinations, so free text
    rather than a choice), checked before anything loads."""
    from customer_r1.data.compress import COMPRESSIONS, parse_compress
    from customer_r1.errors import BadOption

    try:
        return list(parse_compress(text))
    except ValueError:
        bad = [n.strip() for n in text.split(",") if n.strip() not in (*COMPRESSIONS, "none", "")]
        raise BadOption(f"unknown compression {', '.join(map(repr, bad))}", where="--compress",
                        hint=f"known: {', '.join(COMPRESSIONS)} (comma-separated)") from None


def build(
    src: Annotated[
        str,
        input_argument("opera", help="OPeRA folder (or a root holding OPeRA_filtered/), a world folder, "
                       "or a Hub id."),
    ],
    out: Annotated[Path, output_option("--out", help="Output folder: {split}.parquet and build.json.")],
    config: Annotated[
        OperaConfig, typer.Option(help="OPeRA config: filtered or full (reduced to filtered's action types).")
    ] = OperaConfig.filtered,
    persona_mode: Annotated[
        PersonaModeChoice, typer.Option(help="real, none or shuffled (ablations).")
    ] = PersonaModeChoice.real,
    rationale_mode: Annotated[
        RationaleMode, typer.Option(help="on: target is rationale then action; off: action only.")
    ] = RationaleMode.on,
    seed: Annotated[int, typer.Option(help="Seed of the shuffled-persona assignment.")] = 0,
    include_interview: Annotated[
        bool, typer.Option(help="Append the processed interview to the persona.")
    ] = False,
    tokenizer: Annotated[
        str,
        input_option("tokenizer", "--tokenizer",
                     help="Tokenizer path or Hub id that counts the budget; 'smollm2' is bundled."),
    ] = "smollm2",
    budget: Annotated[int, typer.Option(min=1, help="Prompt token budget (the paper: 65,536).")] = 65_536,
    budget_strategy: Annotated[str, typer.Option(help="How to fit the budget.")] = "drop_oldest_pages",
    persona_outside_budget: Annotated[bool, typer.Option(
        help="Give each persona its tokens on top of --budget, so it displaces no history page "
             "(the same history with and without persona).")] = False,
    max_history_steps: Annotated[
        int | None, typer.Option(min=0, help="Keep at most this many earlier steps.")
    ] = None,
    max_history_pages: Annotated[
        int | None,
        typer.Option(min=0, help="Show the pages of at most this many latest steps "
                     "(older: action and reason)."),
    ] = None,
    prompt_style: Annotated[PromptStyle, typer.Option(help=PROMPT_STYLE_HELP)] = PromptStyle.full,
    compress: Annotated[str, typer.Option(help=COMPRESS_HELP)] = "",
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split(s) to build (default: all).")
    ] = None,
    lenient: Annotated[
        bool, typer.Option(help="Skip bad rows (counted and reported) instead of failing.")
    ] = False,
    exact_check: Annotated[
        ExactCheck, typer.Option(help="auto, all or none: exact token checks of prompts.")
    ] = ExactCheck.auto,
) -> None:
    """Build one example per step: prompt (persona, history, current page) and target."""
    from customer_r1.data.examples import BuildConfig, write_examples
    from customer_r1.data.opera import load_opera
    from customer_r1.errors import BadOption
    from customer_r1.models import resolve_model

    check_budget_strategy(budget_strategy)
    strategies = check_compress(compress)
    resolve_model(tokenizer, "--tokenizer", tokenizer_only=True)
    try:
        cfg = BuildConfig(
            persona_mode=persona_mode.value,  # type: ignore[arg-type]
            rationale_mode=rationale_mode.value,  # type: ignore[arg-type]
            shuffle_seed=seed,
            include_interview=include_interview,
            tokenizer=tokenizer,
            token_budget=budget,
            budget_strategy=budget_strategy,
            persona_budget="outside" if persona_outside_budget else "inside",
            max_history_steps=max_history_steps,
            max_history_pages=max_history_pages,
            prompt_style=prompt_style.value,  # type: ignore[arg-type]
            exact_check=exact_check.value,  # type: ignore[arg-type]
            compress=strategies,
            splits=split,
        )
    except ValueError as exc:
        raise BadOption(str(exc), hint="see customer-r1 data build --help") from exc
    data = load_opera(src, config=config.value, splits=split, lenient=lenient)  # type: ignore[arg-type]
    if data.skipped:
        console.print(f"[yellow]skipped {sum(data.skipped.values())} bad rows:[/] {data.skipped}")
    stats = write_examples(data, cfg, out, console=console)
    table = Table(title=f"built examples → {out}")
    table.add_column("split")
    table.add_column("examples", justify="right")
    for name, n in stats.examples.items():
        table.add_row(name, str(n))
    console.print(table)
    console.print(
        f"pages {stats.pages} ({stats.page_chars:,} chars), history pages dropped "
        f"{stats.history_pages_dropped}"
        + (f" (then {stats.history_steps_brief} reasons and {stats.history_steps_omitted} steps)"
           if stats.history_steps_brief or stats.history_steps_omitted else "")
        + f", current pages cut {stats.pages_truncated}, steps "
        f"needing a rationale {stats.needs_rationale}, exact token checks "
        f"{stats.exact_checked} ({stats.exact_mismatches} mismatches), {stats.seconds:.1f} s"
    )
