"""`customer-r1 sim ab`: an A/B test of site variants on simulated shoppers.

Registered at the end of ``cli/sim.py``. :func:`run_ab` is the body as a function (the
demo and the validation benchmark call it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from customer_r1.cli.params import input_option, output_option
from customer_r1.errors import BadOption

_err = Console(stderr=True)


def _name(specs: list[str] | None) -> str:
    if not specs:
        return "control"
    from customer_r1.world.variants import resolve_variants

    return resolve_variants(list(specs)).name


def run_ab(*, world: Path, out: Path, control: list[str] | None, treatment: list[str],
           reference_policy: str | None = None, n_boot: int = 1000, ci_width: float = 0.05,
           progress: bool = True, console: Any = None, arm_dirs: dict[str, Path] | None = None,
           **sim: Any) -> dict[str, Any]:
    """Run both arms with common random numbers (and the reference policy's arms), compare,
    write ``ab.json`` and ``ab.md``; return ab.json's content. ``sim`` takes
    :func:`customer_r1.cli.sim.simulate`'s policy and run options. ``arm_dirs`` places arms
    elsewhere than ``out/{control,treatment,true-control,true-treatment}``: a finished run
    with the same settings is reused as it is (one control for many treatments)."""
    from customer_r1.cli.simulate import simulate
    from customer_r1.io import atomic_write_text
    from customer_r1.sim import ab

    if not treatment:
        raise BadOption("give the treatment's variant(s)", "--treatment",
                        "e.g. --treatment reviews_hidden")
    if reference_policy not in (None, "world"):
        raise BadOption(f"unknown reference policy {reference_policy!r}", "--reference-policy",
                        "world (the world's own shopper, the true one)")
    out.mkdir(parents=True, exist_ok=True)
    dirs = {"control": out / "control", "treatment": out / "treatment",
            "true_control": out / "true-control", "true_treatment": out / "true-treatment",
            **(arm_dirs or {})}
    common = {**sim, "world": world, "progress": progress, "console": console}
    simulate(out=dirs["control"], variant=control, **common)
    m = simulate(out=dirs["treatment"], variant=treatment, **common)
    sim_rows = ab.ArmRows(ab.rows_of_run(dirs["control"]), ab.rows_of_run(dirs["treatment"]))
    true_rows = None
    if reference_policy == "world":
        ref = {k: v for k, v in common.items() if k not in (
            "model", "endpoint", "model_name", "build_config", "temperature", "rationale",
            "rationale_temperature", "device")}
        ref["policy"] = "world"
        simulate(out=dirs["true_control"], variant=control, **ref)
        simulate(out=dirs["true_treatment"], variant=treatment, **ref)
        true_rows = ab.ArmRows(ab.rows_of_run(dirs["true_control"]), ab.rows_of_run(dirs["true_treatment"]))
    else:
        dirs.pop("true_control"), dirs.pop("true_treatment")
    effects = ab.effects(sim_rows, true_rows, n_boot=n_boot, seed=int(sim.get("seed", 0)))
    spu = int(m["sessions_per_user"])
    size, warnings = ab.sample_size(effects, int(m["users"]), spu, ci_width)
    result = ab.ABResult(_name(control), _name(treatment), int(m["users"]), int(m["counts"]["sessions"]),
                         effects, size, warnings)
    runs: dict[str, str | None] = {"true_control": None, "true_treatment": None}
    runs.update({k: os.path.relpath(v, out) for k, v in dirs.items()})
    payload = ab.to_json(result, policy=m["policy"], reference_policy=reference_policy, runs=runs)
    atomic_write_text(out / ab.AB_FILE, json.dumps(payload, indent=2) + "\n")
    atomic_write_text(out / "ab.md", ab.markdown(payload))
    return payload


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
    ci_width: Annotated[float, typer.Option(
        "--ci-width", min=0.001, max=1.0,
        help="Wanted width of the conversion effect's 95% CI (0.05 = 5 points): sessions needed.")] = 0.05,
    device: Annotated[str, typer.Option("--device")] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """A/B test a site variant: both arms with common random numbers, effects with CIs."""
    from customer_r1.cli.simulate import check_policy_args

    check_policy_args(policy, model, endpoint, model_name, build_config)
    if not treatment:
        raise BadOption("give the treatment's variant(s)", "--treatment",
                        "e.g. --treatment reviews_hidden")
    _name(treatment)  # unknown variants answer before any run starts
    _name(control)
    payload = run_ab(world=world, out=out, control=control, treatment=treatment,
                     reference_policy=reference_policy, n_boot=n_boot, ci_width=ci_width, progress=progress,
                     policy=policy, model=model, endpoint=endpoint, model_name=model_name,
                     build_config=build_config, users=users, max_users=max_users,
                     sessions_per_user=sessions_per_user, seed=seed, concurrency=concurrency,
                     temperature=temperature, device=device)
    from customer_r1.sim.ab import markdown

    Console().print(markdown(payload), markup=False, highlight=False, soft_wrap=True)
    _err.print(f"→ {out / 'ab.json'}", markup=False, highlight=False)
