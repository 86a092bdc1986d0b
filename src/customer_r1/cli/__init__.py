"""The ``customer-r1`` command: one sub-command group per stage of the pipeline."""

from __future__ import annotations

import typer

from customer_r1.cli import data, evaluate, model, train, world

app = typer.Typer(
    help="Learn to simulate how a particular person shops online, step by step.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data.app, name="data", help="Load OPeRA-format data and build next-action examples.")
app.add_typer(world.app, name="world", help="Generate and describe the synthetic shopping world.")
app.add_typer(model.app, name="model", help="Create offline base models.")
app.add_typer(train.app, name="train", help="SFT and GRPO training over TRL.")
app.add_typer(evaluate.app, name="eval", help="Predict, score and report.")


@app.command("demo")
def demo(
    config: str = typer.Option("recipes/tiny-cpu/demo.yaml", help="Demo recipe (YAML)."),
    out_dir: str | None = typer.Option(None, "--out", help="Output folder (default: the recipe's)."),
    sft_minutes: float | None = typer.Option(None, help="Cap each SFT run at this many minutes."),
    grpo_minutes: float | None = typer.Option(None, help="Cap each GRPO run at this many minutes."),
) -> None:
    """The main job: synthetic world → examples → SFT → GRPO → scores beside the ceilings."""
    import logging

    from customer_r1.demo import DemoConfig, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = DemoConfig.from_yaml(
        config, out_dir=out_dir, sft_max_minutes=sft_minutes, grpo_max_minutes=grpo_minutes
    )
    command = " ".join(
        ["customer-r1 demo --config", config]
        + ([f"--sft-minutes {sft_minutes}"] if sft_minutes else [])
        + ([f"--grpo-minutes {grpo_minutes}"] if grpo_minutes else [])
    )
    run_demo(cfg, command=command)


def main() -> None:
    app()
