"""The demo's simulation stage: the shipped checkpoint and the world's own shopper on the control
site and a few variants, with common random numbers, then fidelity, the A/B table and the report.
Every run folder is reused when complete (``sim run`` resumes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SIM_DEFAULTS: dict[str, Any] = {"users": 20, "sessions_per_user": 2, "concurrency": 16, "seed": 0,
                                "variants": ["reviews_hidden", "placebo_labels"], "checkpoint": "real-grpo"}


def check_sim_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The recipe's ``sim`` section over :data:`SIM_DEFAULTS`; an unknown key is an error."""
    unknown = set(settings) - set(SIM_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sim setting(s) {sorted(unknown)}; known: {sorted(SIM_DEFAULTS)}")
    return {**SIM_DEFAULTS, **settings}


def simulate_stage(settings: dict[str, Any], shipped_dir: str | Path, world_dir: Path, out: Path,
                   device: str, console: Any = None) -> dict[str, Any]:
    """Shipped checkpoint and the world's shopper (the true one) on the control site and the
    ``variants``, with common random numbers: fidelity of the control run, simulated beside true
    effects, and the report in ``out``."""
    from customer_r1.sim.ab import run_ab
    from customer_r1.sim.compare import compare_sessions, load_sessions, write_comparison
    from customer_r1.sim.report import write_sim_report

    sc = check_sim_settings(settings)
    model = Path(shipped_dir) / sc["checkpoint"]
    common = {"model": str(model), "max_users": sc["users"], "sessions_per_user": sc["sessions_per_user"],
              "seed": sc["seed"], "concurrency": sc["concurrency"], "device": device,
              "console": console}
    ab_dirs = []
    abs_ = {}
    for v in sc["variants"]:
        dirs = {"control": out / "model" / "control", "treatment": out / "model" / v,
                "true_control": out / "world" / "control", "true_treatment": out / "world" / v}
        abs_[v] = run_ab(world=world_dir, out=out / f"ab-{v}", control=None, treatment=[v],
                         reference_policy="world", arm_dirs=dirs, **common)
        ab_dirs.append(out / f"ab-{v}")
    sim_sessions = load_sessions(out / "model" / "control")
    true_sessions = load_sessions(out / "world" / "control")
    fidelity = compare_sessions(sim_sessions, true_sessions, seed=sc["seed"])
    write_comparison(fidelity, out / "fidelity")
    report = write_sim_report([out / "model" / "control"], out / "report",
                              reference=out / "world" / "control", ab=ab_dirs,
                              title="Simulated shoppers: shipped checkpoint vs the world's shopper")
    print_sim_tables(fidelity, abs_)
    return {"fidelity": str(out / "fidelity" / "compare.json"), "report": str(report),
            "ab": {v: {k: a["metrics"][k] for k in ("conversion", "mean_length", "reach_cart")}
                   for v, a in abs_.items()}}


def print_sim_tables(fidelity: dict[str, Any], abs_: dict[str, dict[str, Any]]) -> None:
    """The fidelity table (simulated control vs the true shopper) and the A/B table."""
    from customer_r1.sim.compare import summary_rows

    out = Console()
    t = Table(title="fidelity: shipped checkpoint vs the world's shopper, control site")
    for col in ("figure", "simulated", "true", "difference (95% CI)"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    for name, sim, ref, diff, significant in summary_rows(fidelity):
        t.add_row(name, sim, ref, ("[bold]" if significant else "") + diff)
    out.print(t)
    out.print("bold: the interval of the difference excludes 0 (or the divergence's permutation p < 0.05)")
    a = Table(title="A/B: effect of each variant (common random numbers), simulated beside true")
    for col in ("variant", "metric", "simulated effect", "true effect", "CRN narrower"):
        a.add_column(col, justify="left" if col in ("variant", "metric") else "right")

    def ci(d: dict[str, float], k: float, unit: str) -> str:
        return f"{k * d['value']:+.1f}{unit} [{k * d['low']:+.1f}, {k * d['high']:+.1f}]"

    for v, ab in abs_.items():
        for m, k, unit in (("conversion", 100, " pts"), ("mean_length", 1, ""), ("reach_cart", 100, " pts")):
            d = ab["metrics"][m]
            true = ci(d["true"]["effect"], k, unit) if d.get("true") else "-"
            a.add_row(v, m, ci(d["effect"], k, unit), true, f"{100 * d['crn_shrink']:.0f}%")
    out.print(a)
