"""The ``customer-r1`` command: one sub-command group per stage of the pipeline.

:func:`main` is the installed script; every failure is answered by
:mod:`customer_r1.cli.entry` (one line and exit code 2 for a user mistake, a saved
traceback and exit code 1 for a bug).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from customer_r1.cli import data, evaluate, model, sim, train, world
from customer_r1.cli.entry import PROG, new_app
from customer_r1.cli.params import input_option, output_option

app = new_app(
    help="Learn to simulate how a particular person shops online, step by step. "
    "Add --debug anywhere to print the traceback of an unexpected error.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data.app, name="data", help="Load OPeRA-format data and build next-action examples.")
app.add_typer(world.app, name="world", help="Generate and describe the synthetic shopping world.")
app.add_typer(model.app, name="model", help="Create offline base models.")
app.add_typer(train.app, name="train", help="SFT and GRPO training over TRL.")
app.add_typer(evaluate.app, name="eval", help="Predict, score and report.")
app.add_typer(sim.app, name="sim", help="Run simulated shoppers through the shop (closed loop).")


class DemoStage(StrEnum):
    train = "train"
    eval = "eval"
    sim = "sim"


@app.command("demo")
def demo(
    config: Annotated[
        Path, input_option("recipe", "--config", help="Demo recipe (YAML).")
    ] = Path("recipes/tiny-cpu/demo.yaml"),
    out_dir: Annotated[
        Path | None, output_option("--out", help="Output folder (default: the recipe's).")
    ] = None,
    sft_minutes: Annotated[
        float | None, typer.Option(min=0.0, help="Cap each SFT run at this many minutes.")
    ] = None,
    grpo_minutes: Annotated[
        float | None, typer.Option(min=0.0, help="Cap each GRPO run at this many minutes.")
    ] = None,
    stage: Annotated[
        list[DemoStage] | None,
        typer.Option("--stage", help="Only these stages (repeat): train, eval, sim (default: the recipe's)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of SFT and GRPO (default: the recipes'); compare settings over a few."),
    ] = None,
) -> None:
    """The main job: synthetic world → examples → SFT → GRPO → scores beside the ceilings."""
    import logging

    import yaml

    from customer_r1.demo import DemoConfig, check_bases, run_demo
    from customer_r1.errors import BadInput

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = DemoConfig.from_yaml(
            config, out_dir=str(out_dir) if out_dir else None, sft_max_minutes=sft_minutes,
            grpo_max_minutes=grpo_minutes, stages=[s.value for s in stage] if stage else None,
            seed=seed,
        )
        check_bases(cfg)
    except (ValueError, TypeError, yaml.YAMLError) as exc:  # unknown or ill-typed settings
        message = str(exc).removeprefix(f"{config}: ")
        raise BadInput(message, where=str(config), hint="see recipes/tiny-cpu/demo.yaml") from exc
    command = " ".join(
        ["customer-r1 demo --config", str(config)]
        + ([f"--sft-minutes {sft_minutes}"] if sft_minutes else [])
        + ([f"--grpo-minutes {grpo_minutes}"] if grpo_minutes else [])
        + [f"--stage {s.value}" for s in stage or []]
        + ([f"--seed {seed}"] if seed is not None else [])
    )
    run_demo(cfg, command=command)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    command = typer.main.get_command(app)
    return int(command.main(args=argv, prog_name=PROG, standalone_mode=False) or 0)


def main() -> None:
    sys.exit(run())
