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
) -> None:
    """The main job: synthetic world → examples → SFT → GRPO → scores beside the ceilings."""
    import logging

    from customer_r1.demo import DemoConfig, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = DemoConfig.from_yaml(config, out_dir=out_dir)
    run_demo(cfg, command=f"customer-r1 demo --config {config}")


def main() -> None:
    app()
