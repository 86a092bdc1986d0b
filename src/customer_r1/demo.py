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
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

log = logging.getLogger(__name__)
console = Console(stderr=True)


@dataclass
class DemoConfig:
    """One demo recipe (YAML sections of the same names)."""

    out_dir: str = "runs/demo"
    world: dict[str, Any] = field(default_factory=dict)  # customer_r1.world.WorldConfig fields
    build: dict[str, Any] = field(default_factory=dict)  # customer_r1.data.examples.BuildConfig fields
    model: dict[str, Any] = field(default_factory=dict)  # customer_r1.training.bases.TinyModelConfig fields
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

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DemoConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown demo setting(s) {sorted(unknown)}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)


class Stopwatch:
    """Wall time per stage, printed as it goes and kept for results.json."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    def run(self, name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        console.rule(f"[bold]{name}[/] (elapsed {self.elapsed() / 60:.1f} min)")
        out = fn(*args, **kw)
        self.stages[name] = round(time.perf_counter() - t0, 1)
        console.print(f"[green]✓[/] {name}: {self.stages[name]:.0f} s")
        return out

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _device(cfg: DemoConfig) -> str:
    if cfg.device != "auto":
        return cfg.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _hardware(device: str) -> str:
    import os

    if device == "cuda":
        import torch

        return f"1x {torch.cuda.get_device_name(0)}"
    return f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})"


def _args(overrides: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in overrides.items():
        out += [f"--{k}", json.dumps(v) if isinstance(v, list | dict) else str(v)]
    return out


# --------------------------------------------------------------------------- stages


def make_world(cfg: DemoConfig, root: Path) -> Path:
    from customer_r1.world import WorldConfig, export_world, generate_world, load_world_info
    from customer_r1.world.export import FORMAT_VERSION

    wcfg = WorldConfig(**cfg.world)
    out = root / "world"
    if (out / "world" / "world.json").exists():
        info = load_world_info(out)
        # Through the dataclass: a world written before a config field existed has its default.
        if WorldConfig(**info["config"]) == wcfg and info.get("format") == FORMAT_VERSION:
            console.print(f"world exists at {out}")
            return out
        console.print(f"[yellow]{out} was made with other settings or an older format; remaking it[/]")
    shutil.rmtree(out, ignore_errors=True)
    export_world(generate_world(wcfg), out)
    return out


def make_base(cfg: DemoConfig, root: Path, data: Any) -> Path:
    """The tiny base: tokenizer trained on the real-persona examples' texts, then the model."""
    from customer_r1.data.examples import BuildConfig, ExampleBuilder
    from customer_r1.training.bases import TinyModelConfig, init_tiny_model

    base = root / "base"
    # The tokenizer is trained on the prompts, so a change of prompt format or model
    # config makes a new base (and, through the stage stamps, new training).
    stamp = {"build": _build_kwargs(cfg), "model": cfg.model}
    if (base / "model.safetensors").exists():
        if _read_json(base / "demo_base.json") == stamp:
            console.print(f"base exists at {base}")
            return base
        console.print(f"[yellow]{base} was made with other settings; remaking it[/]")
        shutil.rmtree(base)
    bcfg = BuildConfig(**{**_build_kwargs(cfg), "tokenizer": None, "token_budget": None, "progress": False})
    builder = ExampleBuilder(data, bcfg)
    texts: list[str] = []
    for row in builder.iter_rows(data.split("train")):
        texts.extend(m["content"] for m in row["prompt"])
        texts.extend(m["content"] for m in row["completion"])
    if builder.chat:  # each chat prompt repeats the session so far: count every message once
        texts = list(dict.fromkeys(texts))
    init_tiny_model(base, texts=texts, config=TinyModelConfig(**cfg.model))
    (base / "demo_base.json").write_text(json.dumps(stamp, indent=2))
    return base


def _build_kwargs(cfg: DemoConfig) -> dict[str, Any]:
    return {"prompt_style": "compact", **cfg.build}


def make_examples(
    cfg: DemoConfig, root: Path, data: Any, tokenizer_dir: Path, mode: str, splits: list[str] | None = None
) -> Path:
    from customer_r1.data.examples import BuildConfig, write_examples

    out = root / "built" / f"{tokenizer_dir.name}-{mode}"
    bcfg = BuildConfig(
        **{**_build_kwargs(cfg), "persona_mode": mode, "tokenizer": str(tokenizer_dir), "splits": splits}
    )
    meta = _read_json(out / "build.json")
    if meta is not None:
        if meta["config"] == asdict(bcfg):
            return out
        console.print(f"[yellow]{out} was built with other settings; rebuilding[/]")
        shutil.rmtree(out)
    write_examples(data, bcfg, out, console=console)
    return out


def train_stage(
    cfg: DemoConfig, root: Path, built: Path, base: Path, mode: str, stage: str, device: str
) -> Path:
    """SFT from the base, or GRPO from the SFT checkpoint, for one persona mode; reused when done.

    On CUDA, SFT runs in bf16; GRPO runs in fp32, because bf16 GRPO of the tiny model hit
    NaN sampling probabilities within a few steps on an H200 (see demo-model/card.json).
    """
    from customer_r1.training import grpo, sft

    models = root / "models" / mode
    out = models / stage
    if stage == "sft":
        recipe, init, overrides, minutes, main = (
            cfg.sft_recipe,
            base,
            cfg.sft_overrides,
            cfg.sft_max_minutes,
            sft.main,
        )
        extra = ["--use_cpu", "false", "--bf16", "true"] if device == "cuda" else []
    else:
        recipe, init, overrides, minutes, main = (
            cfg.grpo_recipe,
            models / "sft",
            cfg.grpo_overrides,
            cfg.grpo_max_minutes,
            grpo.main,
        )
        extra = ["--use_cpu", "false", "--bf16", "false"] if device == "cuda" else []
    argv = [
        "--config",
        recipe,
        "--dataset_path",
        str(built),
        "--model_name_or_path",
        str(init),
        "--output_dir",
        str(out),
        *extra,
        *_args(overrides),
        *_args({"max_train_minutes": minutes} if minutes else {}),
    ]
    # A run is reused (or resumed from its last checkpoint) only if it was started with
    # these exact arguments, recipe and starting checkpoint; otherwise it is redone.
    stamp = {"argv": argv, "recipe": Path(recipe).read_text(), "init": _stamp_of(init)}
    if _read_json(out / "demo_stage.json") == stamp:
        if (out / "metrics.json").exists():
            console.print(f"{out} is complete; reusing it")
            return out
    elif out.exists():
        console.print(f"[yellow]{out} was made with other settings; retraining[/]")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_stage.json").write_text(json.dumps(stamp, indent=2))
    main(argv)
    return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _stamp_of(init: Path) -> Any:
    """What identifies a starting checkpoint: its own stage stamp, or the base's stamp and config."""
    return _read_json(init / "demo_stage.json") or {
        "base": _read_json(init / "demo_base.json"),
        "config": _read_json(init / "config.json"),
    }


SHIPPED = {
    "real-sft": ("real", "sft"),
    "real-grpo": ("real", "grpo"),
    "none-sft": ("none", "sft"),
    "none-grpo": ("none", "grpo"),
}


def ship(cfg: DemoConfig, root: Path, device: str, command: str) -> Path:
    """Copy the finished checkpoints (bf16 weights) and a model card to ``cfg.ship_to``.

    Called after each persona mode, so a run cut short still ships what it finished.
    The card's times are the trainers' own ``train_runtime``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = Path(str(cfg.ship_to))
    dest.mkdir(parents=True, exist_ok=True)
    shipped: dict[str, Any] = {}
    for name, (mode, stage) in SHIPPED.items():
        src = root / "models" / mode / stage
        if not (src / "metrics.json").exists():
            continue
        metrics = json.loads((src / "metrics.json").read_text())
        if (
            not (dest / name / "metrics.json").exists()
            or json.loads((dest / name / "metrics.json").read_text()) != metrics
        ):
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
        for d in sorted((root / "models").glob("*/*"))
        if (d / "metrics.json").exists()
    }
    card = {
        "made_by": command,
        "recipe": asdict(cfg),
        "hardware": _hardware(device),
        "device": device,
        "checkpoints": shipped,
        "trainer_seconds": {k: round(v, 1) for k, v in runs.items()},
        "train_minutes_total": round(sum(runs.values()) / 60, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    (dest / "card.json").write_text(json.dumps(card, indent=2))
    return dest


# --------------------------------------------------------------------------- evaluation


def eval_rows(built: Path, sessions: int | None) -> list[dict[str, Any]]:
    """The scored test steps: whole sessions, the first ``sessions`` of the test split."""
    from customer_r1.data.examples import read_examples

    rows = read_examples(built, "test")
    if sessions is None:
        return rows
    keep: list[str] = []
    for r in rows:
        if r["session_id"] not in keep:
            keep.append(r["session_id"])
    chosen = set(keep[:sessions])
    return [r for r in rows if r["session_id"] in chosen]


def subset_ceilings(policy: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Both ceilings over exactly the scored steps (from the world's per-step policy)."""
    from customer_r1.world import ceilings_from_policy

    return ceilings_from_policy([policy[r["action_id"]] for r in rows])


def score_model(
    model_dir: Path, rows: list[dict[str, Any]], out: Path, label: str, mode: str,
    rationale_samples: int = 0,
    rationale_temperature: float = 1.0,
) -> dict[str, Any]:
    from customer_r1.evaluation.metrics import score_predictions
    from customer_r1.evaluation.predict import run_predict

    out.mkdir(parents=True, exist_ok=True)
    preds = out / "preds.jsonl"
    # Never resume here: the model may have been retrained since these were written.
    preds.unlink(missing_ok=True)
    kw: dict[str, Any] = {"mode": mode, "progress": True}
    if mode == "free":
        kw.update(max_new_tokens=96, batch_size=16)
    if rationale_samples:
        kw.update(ranker_kwargs={"rationale_samples": rationale_samples,
                                 "temperature": rationale_temperature})
    run_predict(str(model_dir), rows, preds, **kw)
    run = {"label": label, "model": str(model_dir), "mode": mode, "rationale_samples": rationale_samples}
    if rationale_samples:
        run["rationale_temperature"] = rationale_temperature
    (out / "run.json").write_text(json.dumps(run))
    return score_predictions(preds).headline()


def score_baseline(train_rows: list[dict[str, Any]], rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    from customer_r1.evaluation.baselines import PageKindBaseline
    from customer_r1.evaluation.metrics import score_predictions
    from customer_r1.evaluation.predict import append_jsonl, pred_row

    base = PageKindBaseline().fit(train_rows)
    out.mkdir(parents=True, exist_ok=True)
    preds = out / "preds.jsonl"
    with preds.open("w", encoding="utf-8") as fh:
        append_jsonl(fh, [pred_row(r, completion=base.completion(r), mode="baseline") for r in rows])
    (out / "run.json").write_text(json.dumps({"label": "baseline: " + base.name}))
    return score_predictions(preds).headline()


# --------------------------------------------------------------------------- main


def run_demo(cfg: DemoConfig, command: str = "customer-r1 demo") -> dict[str, Any]:
    """Run the recipe's stages; returns (and writes) results.json's content."""
    from customer_r1.data.opera import load_opera

    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    device = _device(cfg)
    clock = Stopwatch()
    console.print(f"[bold]customer-r1 demo[/] → {root} on {_hardware(device)}")
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
    results: dict[str, Any] = {"config": asdict(cfg), "hardware": _hardware(device)}
    if "eval" in cfg.stages:
        results.update(
            clock.run("evaluate", evaluate, cfg, root, world_dir, data, built, base, trained, clock)
        )
    if "sim" in cfg.stages:
        results["simulation"] = clock.run("simulate shoppers", simulate_stage, cfg, root, world_dir)
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
    base: Path,
    trained: dict[str, dict[str, Path]],
    clock: Stopwatch,
) -> dict[str, Any]:
    from customer_r1.data.examples import read_examples
    from customer_r1.evaluation.metrics import load_preds
    from customer_r1.evaluation.motives import expected_match
    from customer_r1.evaluation.report import write_report
    from customer_r1.world import load_policy

    ev = root / "eval"
    rows = {m: eval_rows(built[m], cfg.eval_sessions) for m in built}
    # The world's per-step policy, read once: ceilings, expected match and motives use it.
    policy = load_policy(world_dir, "test")
    ceilings = subset_ceilings(policy, rows["real"])
    table: list[dict[str, Any]] = []
    run_dirs: list[Path] = []

    realised: dict[str, Any] = {}

    def add(name: str, source: str, metrics: dict[str, Any], mode: str, run_dir: Path | None) -> None:
        if run_dir is not None:
            run_dirs.append(run_dir)
            expected = expected_match(load_preds(run_dir / "preds.jsonl"), policy.values())
            metrics = {**metrics, "expected_exact_match": expected.pop("expected_exact_match")}
            realised.update(expected)
        table.append({"name": name, "source": source, "mode": mode, **metrics})
        em = metrics.get("exact_match")
        console.print(f"  {name} [{mode}]: exact match {em:.3f}" if em is not None else f"  {name}")

    add(
        "page-kind baseline",
        "non-learned",
        score_baseline(read_examples(built["real"], "train"), rows["real"], ev / "baseline"),
        "baseline",
        ev / "baseline",
    )

    # The trainers' own runtimes, so a rerun that reuses the models still reports them.
    live_minutes = {
        m: sum(_read_json(p / "metrics.json").get("train_runtime", 0.0) for p in paths.values()) / 60
        for m, paths in trained.items()
    }
    for m, paths in trained.items():
        tag = "" if m == "real" else f", {m} persona"
        src = f"live ({live_minutes[m]:.0f} min on {_hardware(_device(cfg))})"
        stages = ("sft", "grpo") if m == "real" else ("grpo",)
        for stage in stages:
            name = f"{'SFT' if stage == 'sft' else 'SFT+GRPO'}{tag}"
            d = ev / f"live-{m}-{stage}"
            add(name, src, score_model(paths[stage], rows[m], d, f"{name} (live)", "ranked"), "ranked", d)
        if cfg.eval_free and m == "real":
            d = ev / f"live-{m}-grpo-free"
            add(
                f"SFT+GRPO{tag}",
                src,
                score_model(paths["grpo"], rows[m], d, "SFT+GRPO (live, free)", "free"),
                "free",
                d,
            )

    shipped = Path(cfg.shipped_dir) if cfg.shipped_dir else None
    if shipped is not None and (shipped / "card.json").exists() and not cfg.ship_to:
        card = json.loads((shipped / "card.json").read_text())
        src = (
            f"shipped checkpoint ({card['made_by']}: {card['train_minutes_total']} min on {card['hardware']})"
        )
        for name, (m, stage) in SHIPPED.items():
            model_dir = shipped / name
            # The shipped tokenizer may differ from this run's: build its own copy of the rows.
            b = make_examples(cfg, root, data, model_dir, m, splits=["test"])
            r = eval_rows(b, cfg.eval_sessions)
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

    report = write_report(run_dirs, ev / "report", ceilings=ceilings, click_types=built["real"])
    write_motives(policy, run_dirs, ev / "report" / "motives.md")
    n = len(rows["real"])
    return {
        "rows": table,
        "ceiling_persona": ceilings["ceiling_persona"],
        "ceiling_blind": ceilings["ceiling_blind"],
        # How often the ceilings' own choices matched the actions the world drew here.
        **realised,
        "eval_steps": n,
        "eval_sessions": len({r["session_id"] for r in rows["real"]}),
        "report": str(report),
    }


def write_motives(policy: dict[str, Any], run_dirs: list[Path], out: Path) -> None:
    """Every run's correct steps per motive of the world's policy (``evaluation/motives.py``)."""
    from customer_r1.evaluation.motives import write_motive_report

    files = {}
    for d in run_dirs:
        label = (_read_json(d / "run.json") or {}).get("label", d.name)
        files[label] = d / "preds.jsonl"
    write_motive_report(files, policy.values(), out)
    console.print(f"correct steps per motive of the world's policy: {out}")


def print_table(results: dict[str, Any]) -> None:
    """The demo's table; sources are footnoted so it fits an 80-column terminal."""
    t = Table(
        title=f"exact match on {results['eval_steps']} test steps ({results['eval_sessions']} sessions)"
    )
    # E[exact] replaces "% of Bayes" (exact / Bayes ceiling, easily derived) to fit 80 columns.
    for col in ("row", "src", "decode", "exact", "E\\[exact]", "type F1", "out. F1", "valid"):
        # "persona-blind" must not be cropped; "sampled K=8, T=0.5" may wrap.
        t.add_column(col, justify="left" if col in ("row", "src", "decode") else "right",
                     min_width=13 if col == "row" else None, max_width=7 if col == "decode" else None)
    cp, cb = results["ceiling_persona"], results["ceiling_blind"]
    sources: list[str] = []

    def pct(x: Any) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    for r in results["rows"]:
        if r["source"] not in sources:
            sources.append(r["source"])
        em, ee = r.get("exact_match"), r.get("expected_exact_match")

        def green(x: Any, r: dict[str, Any] = r) -> str:
            return "[bold green]" if x is not None and x > cb and r["mode"] != "baseline" else ""

        t.add_row(
            r["name"],
            f"[{sources.index(r['source']) + 1}]",
            "–" if r["mode"] == "baseline" else r["mode"],
            green(em) + pct(em),
            green(ee) + pct(ee),
            pct(r.get("type_macro_f1")),
            pct(r.get("outcome_f1")),
            pct(r.get("format_validity")),
        )
    t.add_row("persona-blind ceiling", "W", "", pct(results.get("blind_choice_exact")), pct(cb), "", "", "")
    t.add_row("Bayes ceiling", "W", "", pct(results.get("bayes_choice_exact")), pct(cp), "", "", "")
    out = Console()
    out.print(t)
    for i, src in enumerate(sources, 1):
        out.print(f"[{i}] {src}")
    out.print("[W] the world's own policy on the same steps: its blind and Bayes choices")
    out.print(
        "exact: matches of the action the world drew; E\\[exact]: the probability the world gave the "
        "predicted action, averaged (the ceilings are this expectation of the blind and Bayes choices)"
    )
    out.print(
        "[green]green[/]: above the persona-blind ceiling (personalisation a persona-blind model can't reach)"
    )


# --------------------------------------------------------------------------- simulation

SIM_DEFAULTS: dict[str, Any] = {"users": 20, "sessions_per_user": 2, "concurrency": 16, "seed": 0,
                                "variants": ["reviews_hidden", "placebo_labels"], "checkpoint": "real-grpo"}


def simulate_stage(cfg: DemoConfig, root: Path, world_dir: Path) -> dict[str, Any]:
    """Shipped checkpoint and the world's shopper (the true one) on the control site and two
    variants, with common random numbers: fidelity of the control run, simulated beside true
    effects, and the report. Every run folder is reused when complete (`sim run` resumes)."""
    from customer_r1.sim.ab import run_ab
    from customer_r1.sim.compare import compare_sessions, load_sessions, write_comparison
    from customer_r1.sim.report import write_sim_report

    sc = {**SIM_DEFAULTS, **cfg.sim}
    unknown = set(sc) - set(SIM_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sim setting(s) {sorted(unknown)}; known: {sorted(SIM_DEFAULTS)}")
    model = Path(str(cfg.shipped_dir or "demo-model")) / sc["checkpoint"]
    out = root / "sim"
    common = {"model": str(model), "max_users": sc["users"], "sessions_per_user": sc["sessions_per_user"],
              "seed": sc["seed"], "concurrency": sc["concurrency"], "device": _device(cfg),
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
