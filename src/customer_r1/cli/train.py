"""`customer-r1 train pretrain|sft|grpo --config RECIPE [--field value ...]`: TRL entry points.

Everything after the recipe is a field override in TRL's ``--name value`` form, e.g.
``--learning_rate 1e-5 --output_dir runs/x``. Multi-GPU runs launch the same modules
with accelerate: ``accelerate launch --config_file recipes/accelerate/zero3.yaml -m
customer_r1.training.sft --config RECIPE``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from customer_r1.cli.entry import new_app
from customer_r1.cli.params import input_option

app = new_app(no_args_is_help=True)
_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _argv(config: Path, ctx: typer.Context) -> list[str]:
    # The recipe was checked while parsing (exists, YAML mapping); unknown keys, bad
    # overrides, the data and the model are checked by training.common.parse_config
    # before anything loads.
    return ["--config", str(config), *ctx.args]


def _run(stage: str, config: Path, ctx: typer.Context) -> None:
    import importlib

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(f"customer_r1.training.{stage}")
    typer.echo(json.dumps(module.main(_argv(config, ctx)), indent=2))


@app.command("sft", context_settings=_EXTRA)
def sft(
    ctx: typer.Context,
    config: Annotated[Path, input_option("recipe", "--config", help="YAML recipe (recipes/*/sft.yaml).")],
) -> None:
    """Supervised fine-tuning over TRL's SFTTrainer (completion-only loss, LoRA by --use_peft)."""
    _run("sft", config, ctx)


@app.command("pretrain", context_settings=_EXTRA)
def pretrain(
    ctx: typer.Context,
    config: Annotated[Path, input_option("recipe", "--config", help="YAML recipe (recipes/*/pretrain.yaml).")
    ],
) -> None:
    """Language-model pretraining on a world's training pages and reasons (resumable, time-capped)."""
    _run("pretrain", config, ctx)


@app.command("grpo", context_settings=_EXTRA)
def grpo(
    ctx: typer.Context,
    config: Annotated[Path, input_option("recipe", "--config", help="YAML recipe (recipes/*/grpo.yaml).")],
) -> None:
    """GRPO over TRL's GRPOTrainer with the format + difficulty-weighted action reward."""
    _run("grpo", config, ctx)
