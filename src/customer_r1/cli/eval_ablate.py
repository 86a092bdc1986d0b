"""`customer-r1 eval ablate`: every ablation built, predicted and scored in one command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from customer_r1.cli.data_build import PROMPT_STYLE_HELP, PromptStyle
from customer_r1.cli.eval_predict import Mode
from customer_r1.cli.params import input_argument, input_option, output_option


class Variant(StrEnum):
    """The ablations of evaluation/ablate.py VARIANTS."""

    real = "real"
    none = "none"
    shuffled = "shuffled"
    no_rationale = "no_rationale"


def ablate(
    src: Annotated[
        str, input_argument("opera", help="OPeRA-format data (an OPeRA folder or a world folder).")
    ],
    out: Annotated[
        Path, output_option("--out", help="Folder for built variants, predictions and the table.")
    ],
    model: Annotated[
        str | None, input_option("model", "--model", help="Model for every variant without its own.")
    ] = None,
    variant_model: Annotated[
        list[str] | None,
        input_option("model", "--variant-model", named=True,
                     help="NAME=PATH: the model trained in that variant (repeat)."),
    ] = None,
    variant: Annotated[
        list[Variant] | None,
        typer.Option("--variant", help="real, none, shuffled, no_rationale (default: all four)."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split to score.")] = "test",
    sessions: Annotated[int | None, typer.Option(min=1, help="Score only the first N sessions.")] = None,
    mode: Annotated[Mode, typer.Option(help="ranked (valid by construction) or free.")] = Mode.ranked,
    budget: Annotated[
        int, typer.Option(min=1, help="Prompt token budget, counted with each model's tokenizer.")
    ] = 65_536,
    max_history_steps: Annotated[
        int | None, typer.Option(min=0, help="Keep at most this many earlier steps.")
    ] = None,
    max_history_pages: Annotated[
        int | None,
        typer.Option(min=0, help="Show the pages of at most this many latest steps "
                     "(older: action and reason)."),
    ] = None,
    prompt_style: Annotated[PromptStyle, typer.Option(help=PROMPT_STYLE_HELP)] = PromptStyle.full,
    seed: Annotated[int, typer.Option(help="Seed of the shuffled persona assignment.")] = 0,
) -> None:
    """Persona real/none/shuffled and rationale on/off, built with the data pipeline's modes, side by side."""
    from customer_r1.data.opera import load_opera
    from customer_r1.errors import BadOption
    from customer_r1.evaluation.ablate import AblateConfig, parse_models, run_ablate
    from customer_r1.models import resolve_model

    models = parse_models(model, variant_model or [])
    if not models:
        raise BadOption("give --model or at least one --variant-model NAME=PATH", where="--model")
    variants = [v.value for v in variant] if variant else [v.value for v in Variant]
    for name, path in models.items():
        if name != "default" and name not in variants:
            raise BadOption(f"--variant-model names {name!r}, which is not among the variants run",
                            where="--variant-model", hint=f"run: {', '.join(variants)}")
        resolve_model(path, "--model" if name == "default" else "--variant-model")
    missing = [v for v in variants if v not in models and "default" not in models]
    if missing:
        raise BadOption(f"no model for variant(s) {missing}", where="--variant-model",
                        hint="pass --model for the rest")
    cfg = AblateConfig(
        variants=variants,
        split=split,
        sessions=sessions,
        mode=mode.value,
        shuffle_seed=seed,
        build={
            "token_budget": budget,
            "max_history_steps": max_history_steps,
            "max_history_pages": max_history_pages,
            "prompt_style": prompt_style.value,
        },
    )
    data = load_opera(src, splits=[split])
    ceilings = src if (Path(src) / "world" / "world.json").exists() else None
    table = run_ablate(data, models, out, cfg, ceilings=ceilings)
    typer.echo(table.to_markdown())
