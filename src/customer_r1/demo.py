"""The main job, end to end: world → examples → SFT → GRPO → scores beside the ceilings.

``make demo`` runs :func:`run_demo` with ``recipes/tiny-cpu/demo.yaml`` on a laptop CPU
in under 20 minutes; ``make demo-model`` runs the same code with
``recipes/tiny-cpu/demo-model.yaml`` (more data and training) and ships the resulting
checkpoints in ``demo-model/``, which the demo then scores beside its own, labelled.

Every stage reuses its output when the folder is already complete, so an interrupted
demo continues where it stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from customer_r1.runtime import Stopwatch, hardware, resolve_device

log = logging.getLogger(__name__)
console = Console(stderr=True)


@dataclass
class DemoConfig:
    """One demo recipe (YAML sections of the same names)."""

    out_dir: str = "runs/demo"
    world: dict[str, Any] = field(default_factory=dict)  # customer_r1.world.WorldConfig fields
    build: dict[str, Any] = field(default_factory=dict)  # customer_r1.data.examples.BuildConfig fields
    model: dict[str, Any] = field(default_factory=dict)  # customer_r1.training.bases.TinyModelConfig fields
    #: A pretrained base (``make pretrained-base`` ships one in demo-model/pretrained) that the
    #: live stage fine-tunes, tokenizer and all; None, or a folder that is not there: a tiny base
    #: from random weights with a tokenizer trained on this world (``model``). A ``{mode}`` in
    #: the path is the persona mode, so each mode can warm-start from its own checkpoint
    #: (``demo-model/{mode}-sft``: the shipped ones); every mode's tokenizer must be the same.
    pretrained_base: str | None = None
    sft_recipe: str = "recipes/tiny-cpu/sft.yaml"
    grpo_recipe: str = "recipes/tiny-cpu/grpo.yaml"
    sft_overrides: dict[str, Any] = field(default_factory=dict)
    grpo_overrides: dict[str, Any] = field(default_factory=dict)
    persona_modes: list[str] = field(default_factory=lambda: ["real", "none"])
    #: Test sessions scored (whole sessions, in order); None: the whole test split.
    eval_sessions: int | None = 20
    #: Also score free generation (format validity, exact match without constraints).
    eval_free: bool = True
    #: K > 0: also score the shipped SFT+GRPO checkpoints (with and without persona) by
    #: the sampled-rationale marginal over K rationales (``Ranker.rationale_samples``).
    rationale_samples: int = 0
    #: Sampling temperature of those rationales (> 0). Chosen on test sessions 17-56, never
    #: on the demo's own sessions (docs/results.md).
    rationale_temperature: float = 1.0
    #: Checkpoints made by `make demo-model`, scored beside the live ones when present.
    shipped_dir: str | None = "demo-model"
    #: `make demo-model`: copy the final checkpoints here (bf16) with a model card.
    ship_to: str | None = None
    #: Wall-clock cap per trainer run (minutes); None: train the recipe's full schedule.
    sft_max_minutes: float | None = None
    grpo_max_minutes: float | None = None
    #: "auto" (CUDA when available), "cpu" or "cuda".
    device: str = "auto"
    #: The trainers' seed (SFT and GRPO; None: the recipes' own). A live row moves by several
    #: points with the seed alone, so a comparison of settings needs a few (docs/results.md).
    seed: int | None = None
    stages: list[str] = field(default_factory=lambda: ["train", "eval"])
    #: Trainer runs of the train stage, in order (``[sft]`` stops after SFT).
    train_runs: list[str] = field(default_factory=lambda: ["sft", "grpo"])
    #: The simulation stage (``sim`` in stages): the shipped SFT+GRPO checkpoint and the
    #: world's own shopper on the control site and ``variants``: the fidelity table, the
    #: A/B table and the report. Keys: users, sessions_per_user, variants, concurrency, seed.
    sim: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = sorted(set(self.stages) - {"train", "eval", "sim"})
        if bad:
            raise ValueError(f"unknown stage(s) {bad}; stages are train, eval and sim")
        runs = set(self.train_runs)
        if runs - {"sft", "grpo"} or ("grpo" in runs and "sft" not in runs):
            raise ValueError(f"train_runs must be [sft] or [sft, grpo], got {self.train_runs}")
        if self.rationale_samples < 0:
            raise ValueError(f"rationale_samples must be >= 0, got {self.rationale_samples}")
        if not self.rationale_temperature > 0:
            raise ValueError(f"rationale_temperature must be > 0, got {self.rationale_temperature}")
        from customer_r1.world import WorldConfig

        try:  # a bad world section is a one-line error when the recipe loads, not mid-run
            WorldConfig(**self.world)
        except TypeError as exc:
            raise ValueError(f"world: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"world: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DemoConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown demo setting(s) {sorted(unknown)}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)


def _device(cfg: DemoConfig) -> str:
    return resolve_device(cfg.device)


# --------------------------------------------------------------------------- stages
# Each stage's work lives in its package; these lines only say where its output goes.


def _build_kwargs(cfg: DemoConfig) -> dict[str, Any]:
    return {"prompt_style": "compact", **cfg.build}


def make_world(cfg: DemoConfig, root: Path) -> Path:
    from customer_r1.world import WorldConfig
    from customer_r1.world.export import ensure_world

    return ensure_world(WorldConfig(**cfg.world), root / "world", say=console.print)


def _pretrained(cfg: DemoConfig, mode: str | None = None) -> Path | None:
    """The recipe's pretrained base (for ``mode``; default the first mode) when its weights
    are there, else None."""
    if not cfg.pretrained_base:
        return None
    path = Path(cfg.pretrained_base.replace("{mode}", mode or cfg.persona_modes[0]))
    return path if (path / "model.safetensors").exists() else None


def _per_mode(cfg: DemoConfig) -> bool:
    """Whether each persona mode starts from its own checkpoint (``{mode}`` in the path)."""
    return bool(cfg.pretrained_base) and "{mode}" in str(cfg.pretrained_base)


def _vocab(model_dir: Path) -> Any:
    return json.loads((model_dir / "tokenizer.json").read_text()).get("model", {}).get("vocab")


def check_bases(cfg: DemoConfig) -> None:
    """Per-mode bases (``{mode}`` in ``pretrained_base``) must all be there and share one
    tokenizer, since each mode's examples are built with the first mode's; ValueError if not."""
    if not _per_mode(cfg):
        return
    bases = {}
    for m in cfg.persona_modes:
        path = _pretrained(cfg, m)
        if path is None or not (path / "tokenizer.json").exists():
            where = cfg.pretrained_base.replace("{mode}", m)
            raise ValueError(f"pretrained_base: no checkpoint (model.safetensors and tokenizer.json) at "
                             f"{where} for persona mode {m!r}")
        bases[m] = path
    first, *rest = bases.values()
    for other in rest:
        if _vocab(other) != _vocab(first):
            raise ValueError(f"pretrained_base: {other} has another tokenizer than {first}; "
                             "per-mode bases must share one")


def make_base(cfg: DemoConfig, root: Path, data: Any) -> Path:
    """The pretrained base when there is one, else the tiny base: a tokenizer trained on the
    real-persona prompts, then the model from random weights."""
    from customer_r1.training.bases import ensure_tiny_base

    pre = _pretrained(cfg)
    if pre is not None:
        if _per_mode(cfg):
            check_bases(cfg)
            console.print(f"warm-starting each persona mode from {cfg.pretrained_base}")
            return pre
        card = pre / "card.json"
        made = json.loads(card.read_text()) if card.exists() else {}
        how = ""
        if made.get("tokens_seen"):
            how = (f" ({made.get('train_minutes')} min of pretraining on {made.get('hardware')}, "
                   f"{made['tokens_seen']:.3g} tokens, validation loss {made.get('eval_loss') or 0:.3f})")
        console.print(f"fine-tuning the pretrained base {pre}{how}")
        return pre
    if cfg.pretrained_base:
        console.print(f"[yellow]no pretrained base at {cfg.pretrained_base} "
                      "(make pretrained-base makes one); training from random weights[/]")
    return ensure_tiny_base(data, _build_kwargs(cfg), cfg.model, root / "base", say=console.print)


def make_examples(
    cfg: DemoConfig, root: Path, data: Any, tokenizer_dir: Path, mode: str, splits: list[str] | None = None
) -> Path:
    from customer_r1.data.examples import BuildConfig, ensure_examples

    bcfg = BuildConfig(
        **{**_build_kwargs(cfg), "persona_mode": mode, "tokenizer": str(tokenizer_dir), "splits": splits}
    )
    return ensure_examples(data, bcfg, root / "built" / f"{tokenizer_dir.name}-{mode}", console=console)


def train_stage(
    cfg: DemoConfig, root: Path, built: Path, base: Path, mode: str, stage: str, device: str
) -> Path:
    """SFT from the base, or GRPO from the SFT checkpoint, for one persona mode; reused when done."""
    from customer_r1.training.stages import run_stage

    models = root / "models" / mode
    sft = stage == "sft"
    overrides = dict(cfg.sft_overrides if sft else cfg.grpo_overrides)
    if cfg.seed is not None:
        overrides["seed"] = cfg.seed
    return run_stage(
        stage, recipe=cfg.sft_recipe if sft else cfg.grpo_recipe,
        init=(_pretrained(cfg, mode) or base) if sft else models / "sft",
        dataset=built, out=models / stage, overrides=overrides,
        max_minutes=cfg.sft_max_minutes if sft else cfg.grpo_max_minutes, device=device,
        say=console.print,
    )


def ship(cfg: DemoConfig, root: Path, device: str, command: str) -> Path:
    """Copy the finished checkpoints (bf16) and a model card to ``cfg.ship_to``."""
    from customer_r1.training.stages import ship_checkpoints

    card = {"made_by": command, "recipe": asdict(cfg), "hardware": hardware(device), "device": device}
    return ship_checkpoints(root / "models", Path(str(cfg.ship_to)), card)


def simulate(cfg: DemoConfig, root: Path, world_dir: Path) -> dict[str, Any]:
    from customer_r1.sim.demo_stage import simulate_stage

    return simulate_stage(cfg.sim, cfg.shipped_dir or "demo-model", world_dir, root / "sim",
                          _device(cfg), console=console)


# --------------------------------------------------------------------------- main


def run_demo(cfg: DemoConfig, command: str = "customer-r1 demo") -> dict[str, Any]:
    """Run the recipe's stages; returns (and writes) results.json's content."""
    from customer_r1.data.opera import load_opera
    from customer_r1.evaluation.table import print_table

    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    device = _device(cfg)
    clock = Stopwatch(console)
    console.print(f"[bold]customer-r1 demo[/] → {root} on {hardware(device)}")
    world_dir = clock.run("world", make_world, cfg, root)
    data = load_opera(world_dir)
    base = clock.run("tokenizer + tiny base", make_base, cfg, root, data)
    built = {
        m: clock.run(f"examples ({m} persona)", make_examples, cfg, root, data, base, m)
        for m in cfg.persona_modes
    }
    trained: dict[str, dict[str, Path]] = {}
    if "train" in cfg.stages:
        # Every SFT first, then every GRPO: a run cut short still has (and ships) its SFT models.
        for stage in [r for r in ("sft", "grpo") if r in cfg.train_runs]:
            for m in cfg.persona_modes:
                name = f"{stage.upper()} ({m} persona)"
                trained.setdefault(m, {})[stage] = clock.run(
                    name, train_stage, cfg, root, built[m], base, m, stage, device
                )
                if cfg.ship_to:
                    clock.run(f"ship {stage} ({m} persona)", ship, cfg, root, device, command)
    results: dict[str, Any] = {"config": asdict(cfg), "hardware": hardware(device)}
    if "eval" in cfg.stages:
        results.update(clock.run("evaluate", evaluate, cfg, root, world_dir, data, built, trained))
    if "sim" in cfg.stages:
        results["simulation"] = clock.run("simulate shoppers", simulate, cfg, root, world_dir)
    results["seconds"] = clock.stages
    results["minutes_total"] = round(clock.elapsed() / 60, 1)
    (root / "results.json").write_text(json.dumps(results, indent=2))
    if "eval" in cfg.stages:
        print_table(results)
    console.print(f"total {results['minutes_total']} min; results in {root / 'results.json'}")
    return results


def evaluate(
    cfg: DemoConfig,
    root: Path,
    world_dir: Path,
    data: Any,
    built: dict[str, Path],
    trained: dict[str, dict[str, Path]],
) -> dict[str, Any]:
    """The table's rows: the page-kind baseline, the live models, the shipped checkpoints."""
    from customer_r1.data.examples import read_examples
    from customer_r1.evaluation.report import write_report
    from customer_r1.evaluation.scoring import (
        Scoreboard,
        eval_rows,
        score_baseline,
        score_model,
        subset_ceilings,
        write_motives,
    )
    from customer_r1.training.stages import SHIPPED, read_json
    from customer_r1.world import load_policy

    ev = root / "eval"
    rows = {m: eval_rows(built[m], cfg.eval_sessions) for m in built}
    # The world's per-step policy, read once: ceilings, expected match and motives use it.
    policy = load_policy(world_dir, "test")
    ceilings = subset_ceilings(policy, rows["real"])
    board = Scoreboard(policy, say=console.print)
    add = board.add

    train_rows = read_examples(built["real"], "train")
    add("page-kind baseline", "non-learned", score_baseline(train_rows, rows["real"], ev / "baseline"),
        "baseline", ev / "baseline")

    for m, paths in trained.items():
        # The trainers' own runtimes, so a rerun that reuses the models still reports them.
        minutes = sum(read_json(p / "metrics.json").get("train_runtime", 0.0) for p in paths.values()) / 60
        tag = "" if m == "real" else f", {m} persona"
        pre = _pretrained(cfg, m)
        start = "" if pre is None else (f", warm-started from {pre}" if _per_mode(cfg)
                                        else ", from the pretrained base")
        src = f"live ({minutes:.0f} min on {hardware(_device(cfg))}{start})"
        for stage in ("sft", "grpo") if m == "real" else ("grpo",):
            name = f"{'SFT' if stage == 'sft' else 'SFT+GRPO'}{tag}"
            d = ev / f"live-{m}-{stage}"
            add(name, src, score_model(paths[stage], rows[m], d, f"{name} (live)", "ranked"), "ranked", d)
        if cfg.eval_free and m == "real":
            d = ev / f"live-{m}-grpo-free"
            add(f"SFT+GRPO{tag}", src,
                score_model(paths["grpo"], rows[m], d, "SFT+GRPO (live, free)", "free"), "free", d)

    shipped = Path(cfg.shipped_dir) if cfg.shipped_dir else None
    if shipped is not None and (shipped / "card.json").exists() and not cfg.ship_to:
        card = json.loads((shipped / "card.json").read_text())
        src = (f"shipped checkpoint ({card['made_by']}: {card['train_minutes_total']} min "
               f"on {card['hardware']})")
        for name, (m, stage) in SHIPPED.items():
            model_dir = shipped / name
            # The shipped tokenizer may differ from this run's: build its own copy of the rows.
            r = eval_rows(make_examples(cfg, root, data, model_dir, m, splits=["test"]), cfg.eval_sessions)
            label = f"{'SFT' if stage == 'sft' else 'SFT+GRPO'}{'' if m == 'real' else f', {m} persona'}"
            d = ev / f"shipped-{name}"
            add(label, src, score_model(model_dir, r, d, f"{label} (shipped)", "ranked"), "ranked", d)
            if cfg.rationale_samples and stage == "grpo":
                k, t = cfg.rationale_samples, cfg.rationale_temperature
                how = f"sampled K={k}" + ("" if t == 1.0 else f", T={t:g}")
                d = ev / f"shipped-{name}-sampled"
                metrics = score_model(model_dir, r, d, f"{label} (shipped, {how} rationales)",
                                      "ranked", rationale_samples=k, rationale_temperature=t)
                add(label, src, metrics, how, d)
            if cfg.eval_free and name == "real-grpo":
                d = ev / f"shipped-{name}-free"
                add(label, src, score_model(model_dir, r, d, f"{label} (shipped, free)", "free"), "free", d)
    elif shipped is not None and not cfg.ship_to:
        console.print(f"[yellow]no shipped checkpoints at {shipped} (make demo-model writes them)[/]")

    report = write_report(board.run_dirs, ev / "report", ceilings=ceilings, click_types=built["real"])
    write_motives(policy, board.run_dirs, ev / "report" / "motives.md", say=console.print)
    return {
        "rows": board.rows,
        "ceiling_persona": ceilings["ceiling_persona"],
        "ceiling_blind": ceilings["ceiling_blind"],
        # How often the ceilings' own choices matched the actions the world drew here.
        **board.realised,
        "eval_steps": len(rows["real"]),
        "eval_sessions": len({r["session_id"] for r in rows["real"]}),
        "report": str(report),
    }
