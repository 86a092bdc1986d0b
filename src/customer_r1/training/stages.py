"""Trainer runs as reusable pipeline stages, and shipping their checkpoints.

A stage is one entry point (``sft.main`` or ``grpo.main``) with a recipe, a starting checkpoint
and overrides. It is reused (or resumed from its last checkpoint) only when it was started with
exactly these arguments, recipe text and starting checkpoint: ``demo_stage.json`` stamps it.
Shipping copies finished checkpoints (bf16 weights) with a model card, as ``demo-model/`` holds.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Shipped checkpoint name -> (persona mode, stage).
SHIPPED = {
    "real-sft": ("real", "sft"),
    "real-grpo": ("real", "grpo"),
    "none-sft": ("none", "sft"),
    "none-grpo": ("none", "grpo"),
}

STAMP_FILE = "demo_stage.json"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def cli_args(overrides: dict[str, Any]) -> list[str]:
    """``{"max_steps": 10}`` -> ``["--max_steps", "10"]`` (lists and dicts as JSON)."""
    out: list[str] = []
    for k, v in overrides.items():
        out += [f"--{k}", json.dumps(v) if isinstance(v, list | dict) else str(v)]
    return out


def stamp_of(init: Path) -> Any:
    """What identifies a starting checkpoint: its own stage stamp, or the base's stamp and config
    (and the model card of a shipped base, so a remade pretrained base retrains what started
    from it)."""
    stamp = read_json(init / STAMP_FILE) or {
        "base": read_json(init / "demo_base.json"),
        "config": read_json(init / "config.json"),
    }
    card = read_json(init / "card.json")
    if card is not None and "base" in stamp:
        stamp["card"] = card
    return stamp


def run_stage(stage: str, *, recipe: str, init: Path, dataset: Path, out: Path,
              overrides: dict[str, Any], max_minutes: float | None, device: str,
              say: Callable[[str], Any] = print) -> Path:
    """SFT from ``init`` (a base), or GRPO from ``init`` (an SFT checkpoint); reused when done.

    On CUDA, SFT runs in bf16; GRPO runs in fp32, because bf16 GRPO of the tiny model hit
    NaN sampling probabilities within a few steps on an H200 (see demo-model/card.json).
    """
    from customer_r1.training import grpo, sft

    if stage not in ("sft", "grpo"):
        raise ValueError(f"stage must be sft or grpo, got {stage!r}")
    main = sft.main if stage == "sft" else grpo.main
    extra = (["--use_cpu", "false", "--bf16", "true" if stage == "sft" else "false"]
             if device == "cuda" else [])
    argv = ["--config", recipe, "--dataset_path", str(dataset), "--model_name_or_path", str(init),
            "--output_dir", str(out), *extra, *cli_args(overrides),
            *cli_args({"max_train_minutes": max_minutes} if max_minutes else {})]
    stamp = {"argv": argv, "recipe": Path(recipe).read_text(), "init": stamp_of(init)}
    if read_json(out / STAMP_FILE) == stamp:
        if (out / "metrics.json").exists():
            say(f"{out} is complete; reusing it")
            return out
    elif out.exists():
        say(f"[yellow]{out} was made with other settings; retraining[/]")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP_FILE).write_text(json.dumps(stamp, indent=2))
    main(argv)
    return out


def ship_checkpoints(models: Path, dest: Path, card: dict[str, Any]) -> Path:
    """Copy every finished ``models/{mode}/{stage}`` of :data:`SHIPPED` to ``dest`` (bf16 weights,
    tokenizer, metrics, build.json) and write ``dest/card.json``: ``card`` plus the checkpoints and
    the trainers' own ``train_runtime``. Called after each run, so a run cut short ships what it
    finished; a checkpoint whose metrics did not change is not copied again."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.mkdir(parents=True, exist_ok=True)
    shipped: dict[str, Any] = {}
    for name, (mode, stage) in SHIPPED.items():
        src = models / mode / stage
        if not (src / "metrics.json").exists():
            continue
        metrics = json.loads((src / "metrics.json").read_text())
        if read_json(dest / name / "metrics.json") != metrics:
            model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
            shutil.rmtree(dest / name, ignore_errors=True)
            model.save_pretrained(dest / name)
            AutoTokenizer.from_pretrained(src).save_pretrained(dest / name)
            (dest / name / "metrics.json").write_text(json.dumps(metrics, indent=2))
            if (src / "build.json").exists():  # how its prompts are built (the simulator reads it)
                shutil.copyfile(src / "build.json", dest / name / "build.json")
        shipped[name] = {
            "persona": mode,
            "stage": stage,
            "train_seconds": round(metrics.get("train_runtime", 0.0), 1),
            "global_step": metrics.get("global_step"),
            "epoch": metrics.get("epoch"),
        }
    # Every trainer run once (SFT+GRPO checkpoints also cost their SFT stage).
    runs = {
        f"{d.parent.name}/{d.name}": json.loads((d / "metrics.json").read_text()).get("train_runtime", 0.0)
        for d in sorted(models.glob("*/*"))
        if (d / "metrics.json").exists()
    }
    full = {
        **card,
        "checkpoints": shipped,
        "trainer_seconds": {k: round(v, 1) for k, v in runs.items()},
        "train_minutes_total": round(sum(runs.values()) / 60, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    (dest / "card.json").write_text(json.dumps(full, indent=2))
    return dest
