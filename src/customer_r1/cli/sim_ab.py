"""`customer-r1 sim ab`: an A/B test of site variants on simulated shoppers.

Registered at the end of ``cli/sim.py``. The orchestration is
:func:`customer_r1.sim.ab.run_ab` (the demo and the validity benchmark call it there);
this module only reads the options and prints the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from customer_r1.cli.params import input_option, output_option
from customer_r1.errors import BadOption

_err = Console(stderr=True)


def __getattr__(name: str) -> Any:
    """``run_ab`` for earlier callers, imported when asked for (numpy stays out of startup)."""
    if name == "run_ab":
        from customer_r1.sim.ab import run_ab

        return run_ab
    raise AttributeError(name)


def ab_command(
    world: Annotated[Path, input_option("world", "--world", help="A folder written by `world generate`.")],
    out: Annotated[Path, output_option("--out", help="Folder for both arms' runs, ab.json and ab.md.")],
    treatment: Annotated[list[str] | None, typer.Option(
        "--treatment",
        help="The treatment's site variant: a built-in name or a YAML file (repeat to combine).")] = None,
    control: Annotated[list[str] | None, typer.Option(
        "--control", help="The control's variant (default: the site as it is).")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="world (the true shopper) or baseline.")] = None,
    model: Annotated[str | None, input_option(
        "model", "--model", help="Checkpoint to simulate with.")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    model_name: Annotated[str | None, typer.Option(
        "--model-name", help="Model name the endpoint serves.")] = None,
    build_config: Annotated[Path | None, input_option(
        "click_types", "--build-config", help="build.json the model was trained with.")] = None,
    reference_policy: Annotated[str | None, typer.Option(
        "--reference-policy", help="world: also run the true shopper and print its effect beside.")] = None,
    users: Annotated[list[str] | None, typer.Option("--users", help="User ids (default: all).")] = None,
    max_users: Annotated[int | None, typer.Option("--max-users", min=1)] = None,
    sessions_per_user: Annotated[int, typer.Option("--sessions-per-user", min=1)] = 4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 1,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 1.0,
    n_boot: Annotated[int, typer.Option("--boot", min=100, help="Bootstrap resamples.")] = 1000,
    placebo: Annotated[int, typer.Option(
        "--placebo", min=0,
        help="Also run N placebo arms (cosmetic variants the true shopper ignores) with the same "
             "shoppers and seeds: the simulator's false-positive rate and the smallest effect it "
             "separates from placebo noise.")] = 0,
    ci_width: Annotated[float, typer.Option(
        "--ci-width", min=0.001, max=1.0,
        help="Wanted width of the conversion effect's 95% CI (0.05 = 5 points): sessions needed.")] = 0.05,
    device: Annotated[str, typer.Option("--device")] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """A/B test a site variant: both arms with common random numbers, effects with CIs."""
    from customer_r1.sim.ab import markdown, placebo_names, run_ab, variant_name
    from customer_r1.sim.simulate import check_policy_args

    check_policy_args(policy, model, endpoint, model_name, build_config)
    if not treatment:
        raise BadOption("give the treatment's variant(s)", "--treatment",
                        "e.g. --treatment reviews_hidden")
    variant_name(treatment)  # unknown variants answer before any run starts
    variant_name(control)
    placebo_names(placebo)
    payload = run_ab(world=world, out=out, control=control, treatment=treatment,
                     reference_policy=reference_policy, n_boot=n_boot, ci_width=ci_width, progress=progress,
                     placebo=placebo,
                     policy=policy, model=model, endpoint=endpoint, model_name=model_name,
                     build_config=build_config, users=users, max_users=max_users,
                     sessions_per_user=sessions_per_user, seed=seed, concurrency=concurrency,
                     temperature=temperature, device=device)
    Console().print(markdown(payload), markup=False, highlight=False, soft_wrap=True)
    _err.print(f"→ {out / 'ab.json'}", markup=False, highlight=False)
