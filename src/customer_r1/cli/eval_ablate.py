"""`customer-r1 eval ablate`: every ablation built, predicted and scored in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from customer_r1.cli.data_build import PROMPT_STYLE_HELP


def ablate(
    src: Annotated[str, typer.Argument(help="OPeRA-format data (an OPeRA folder or a world folder).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for built variants, predictions and the table.")],
    model: Annotated[str | None, typer.Option(help="Model for every variant without its own.")] = None,
    variant_model: Annotated[
        list[str] | None,
        typer.Option("--variant-model", help="NAME=PATH: the model trained in that variant (repeat)."),
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", help="real, none, shuffled, no_rationale (default: all four)."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split to score.")] = "test",
    sessions: Annotated[int | None, typer.Option(help="Score only the first N sessions.")] = None,
    mode: Annotated[str, typer.Option(help="ranked (valid by construction) or free.")] = "ranked",
    budget: Annotated[
        int, typer.Option(help="Prompt token budget, counted with each model's tokenizer.")
    ] = 65_536,
    max_history_steps: Annotated[
        int | None, typer.Option(help="Keep at most this many earlier steps.")
    ] = None,
    max_history_pages: Annotated[
        int | None,
        typer.Option(help="Show the pages of at most this many latest steps (older: action and reason)."),
    ] = None,
    prompt_style: Annotated[str, typer.Option(help=PROMPT_STYLE_HELP)] = "full",
    seed: Annotated[int, typer.Option(help="Seed of the shuffled persona assignment.")] = 0,
) -> None:
    """Persona real/none/shuffled and rationale on/off, built with the data pipeline's modes, side by side."""
    from customer_r1.data.opera import load_opera
    from customer_r1.evaluation.ablate import AblateConfig, parse_models, run_ablate

    try:
        models = parse_models(model, variant_model or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not models:
        raise typer.BadParameter("give --model or at least one --variant-model NAME=PATH")
    cfg = AblateConfig(
        variants=variant or ["real", "none", "shuffled", "no_rationale"],
        split=split,
        sessions=sessions,
        mode=mode,
        shuffle_seed=seed,
        build={
            "token_budget": budget,
            "max_history_steps": max_history_steps,
            "max_history_pages": max_history_pages,
            "prompt_style": prompt_style,
        },
    )
    data = load_opera(src, splits=[split])
    ceilings = src if (Path(src) / "world" / "world.json").exists() else None
    table = run_ablate(data, models, out, cfg, ceilings=ceilings)
    typer.echo(table.to_markdown())
