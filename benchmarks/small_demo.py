"""A small demo world, tiny base and compact examples in a folder: the benchmarks' fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from customer_r1.demo import DemoConfig, run_demo

ROOT = Path(__file__).resolve().parents[1]


def small_demo(work: Path, users: int, **model: Any) -> tuple[Path, Path]:
    """(tiny base, compact real-persona examples) of a ``users`` x 5-session demo world, built
    with the demo recipe's settings (``model`` overrides fields of its tiny model)."""
    demo = yaml.safe_load((ROOT / "recipes/tiny-cpu/demo.yaml").read_text())
    cfg = DemoConfig(
        out_dir=str(work / "demo"),
        world={**demo["world"], "users": users, "sessions_per_user": 5},
        build=demo["build"], model={**demo["model"], **model}, persona_modes=["real"],
        shipped_dir=None, device="cpu", stages=[],
    )
    run_demo(cfg)
    return work / "demo" / "base", work / "demo" / "built" / "base-real"
