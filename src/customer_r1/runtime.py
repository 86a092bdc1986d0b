"""Where a pipeline runs and how long each stage takes: the device, a one-line hardware
description for results and model cards, and a stopwatch that prints as stages go."""

from __future__ import annotations

import os
import platform
import time
from typing import Any


def resolve_device(device: str) -> str:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` and ``cuda`` as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware(device: str) -> str:
    """``1x NVIDIA H200`` or ``2 CPU cores (x86_64)``: what results and cards say ran them."""
    if device == "cuda":
        import torch

        return f"1x {torch.cuda.get_device_name(0)}"
    return f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})"


class Stopwatch:
    """Wall time per stage, printed as it goes and kept for results.json."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    def run(self, name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        self.console.rule(f"[bold]{name}[/] (elapsed {self.elapsed() / 60:.1f} min)")
        out = fn(*args, **kw)
        self.stages[name] = round(time.perf_counter() - t0, 1)
        self.console.print(f"[green]✓[/] {name}: {self.stages[name]:.0f} s")
        return out

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
