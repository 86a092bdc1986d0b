"""The paper's ablations in one call: build each variant's examples, predict, score side by side.

Variants: ``real``, ``none`` and ``shuffled`` persona (data pipeline's persona modes) and
``no_rationale`` (rationale mode off). Each variant is predicted by its own model when
one is given (the paper's setting: a model trained in that mode), else by the default
model (a test-time ablation: the same model, shown other inputs). Everything is cached
under ``out_dir`` so a re-run only does what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customer_r1.errors import BadValue
from customer_r1.evaluation.ablations import AblationTable, run_ablations

VARIANTS: dict[str, dict[str, str]] = {
    "real": {"persona_mode": "real", "rationale_mode": "on"},
    "none": {"persona_mode": "none", "rationale_mode": "on"},
    "shuffled": {"persona_mode": "shuffled", "rationale_mode": "on"},
    "no_rationale": {"persona_mode": "real", "rationale_mode": "off"},
}


@dataclass
class AblateConfig:
    """What to build and how to predict; ``build`` holds any other BuildConfig field."""

    variants: list[str] = field(default_factory=lambda: ["real", "none", "shuffled", "no_rationale"])
    split: str = "test"
    sessions: int | None = None
    mode: str = "ranked"
    shuffle_seed: int = 0
    build: dict[str, Any] = field(default_factory=dict)


def _first_sessions(rows: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    if n is None:
        return rows
    order: list[str] = []
    for r in rows:
        if r["session_id"] not in order:
            order.append(r["session_id"])
    keep = set(order[:n])
    return [r for r in rows if r["session_id"] in keep]


def run_ablate(
    data: Any,
    models: Mapping[str, str],
    out_dir: str | Path,
    cfg: AblateConfig | None = None,
    *,
    ceilings: Any = None,
    progress: bool = True,
) -> AblationTable:
    """``data``: ShoppingData; ``models``: variant → model path, with ``default`` for the rest."""
    from customer_r1.data.examples import BuildConfig, read_examples, write_examples
    from customer_r1.evaluation.predict import run_predict

    cfg = cfg or AblateConfig()
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    if unknown:
        raise BadValue(f"unknown ablation variant(s) {unknown}; known: {sorted(VARIANTS)}", where="--variant")
    out = Path(out_dir)
    specs: dict[str, Path] = {}
    for variant in cfg.variants:
        model = models.get(variant) or models.get("default")
        if not model:
            raise BadValue(f"no model for variant {variant!r}: pass one, or a default model",
                           where="--variant-model")
        built = out / "built" / variant
        if not (built / "build.json").exists():
            bcfg = BuildConfig(
                **{
                    "tokenizer": model,
                    **cfg.build,
                    **VARIANTS[variant],
                    "shuffle_seed": cfg.shuffle_seed,
                    "splits": [cfg.split],
                    "progress": progress,
                }
            )
            write_examples(data, bcfg, built)
        rows = _first_sessions(read_examples(built, cfg.split), cfg.sessions)
        run_dir = out / "runs" / variant
        run_dir.mkdir(parents=True, exist_ok=True)
        run_predict(model, rows, run_dir / "preds.jsonl", mode=cfg.mode, progress=progress)
        specs[variant] = run_dir / "preds.jsonl"
    return run_ablations(specs, baseline=cfg.variants[0], ceilings=ceilings, out_dir=out)


def parse_models(default: str | None, per_variant: Sequence[str]) -> dict[str, str]:
    """``--model PATH`` plus repeated ``--variant-model NAME=PATH``."""
    models: dict[str, str] = {}
    if default:
        models["default"] = default
    for item in per_variant:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise BadValue(f"--variant-model takes NAME=PATH, got {item!r}", where="--variant-model")
        models[name] = path
    return models
