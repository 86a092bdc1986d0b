"""The main job end to end at toy scale: world → examples → SFT → GRPO → scores → results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customer_r1.demo import DemoConfig, run_demo

#: A one-layer model and one-step GRPO: the demo's stages at toy scale.
TOY_MODEL = {
    "vocab_size": 1024,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 2048,
}
#: Every demo recipe the repository ships (recipes/tiny-cpu/demo*.yaml).
DEMO_RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes" / "tiny-cpu").glob("demo*.yaml"))
TOY_GRPO = {
    "max_steps": 1,
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 8,
}


@pytest.mark.slow
def test_demo_runs_end_to_end_and_ships(tmp_path):
    common = {
        "world": {"users": 4, "sessions_per_user": 3, "seed": 1},
        "build": {"token_budget": 1280, "max_history_steps": 4},
        "model": TOY_MODEL,
        "sft_overrides": {"max_steps": 1, "per_device_train_batch_size": 2},
        "grpo_overrides": TOY_GRPO,
        "device": "cpu",
    }
    ship = tmp_path / "ship"
    run_demo(DemoConfig(out_dir=str(tmp_path / "model"), ship_to=str(ship), stages=["train"], **common))
    card = json.loads((ship / "card.json").read_text())
    assert set(card["checkpoints"]) == {"real-sft", "real-grpo", "none-sft", "none-grpo"}
    assert (ship / "real-grpo" / "model.safetensors").exists()

    res = run_demo(
        DemoConfig(
            out_dir=str(tmp_path / "demo"), shipped_dir=str(ship), eval_sessions=1, eval_free=False,
            rationale_samples=2, rationale_temperature=0.5, **common
        )
    )
    names = [(r["name"], r["source"].split(" ")[0]) for r in res["rows"]]
    assert names[0] == ("page-kind baseline", "non-learned")
    assert ("SFT+GRPO", "live") in names and ("SFT+GRPO, none persona", "live") in names
    assert ("SFT+GRPO", "shipped") in names and ("SFT, none persona", "shipped") in names
    sampled = [(r["name"], r["mode"]) for r in res["rows"] if r["mode"].startswith("sampled")]
    assert sampled == [("SFT+GRPO", "sampled K=2, T=0.5"), ("SFT+GRPO, none persona", "sampled K=2, T=0.5")]
    run = json.loads((tmp_path / "demo" / "eval" / "shipped-real-grpo-sampled" / "run.json").read_text())
    assert (run["rationale_samples"], run["rationale_temperature"]) == (2, 0.5)
    assert 0 < res["ceiling_blind"] <= res["ceiling_persona"] <= 1
    written = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert all("exact_match" in r for r in written["rows"])
    # Every row also has its exact match in expectation over the world's policy, and the
    # results say how often the ceilings' own choices matched the drawn actions.
    assert all(0 <= r["expected_exact_match"] <= res["ceiling_persona"] + 1e-9 for r in written["rows"])
    assert 0 <= written["blind_choice_exact"] <= 1 and 0 <= written["bayes_choice_exact"] <= 1
    assert (tmp_path / "demo" / "eval" / "report" / "report.md").exists()

    # The simulation stage on the shipped checkpoint: fidelity, A/B beside the truth, report.
    assert (ship / "real-grpo" / "build.json").exists()  # shipped with how its prompts are built
    sim = run_demo(DemoConfig(out_dir=str(tmp_path / "demo"), shipped_dir=str(ship), stages=["sim"],
                              sim={"users": 3, "sessions_per_user": 1, "concurrency": 3,
                                   "variants": ["reviews_hidden"]}, **common))["simulation"]
    assert set(sim["ab"]) == {"reviews_hidden"} and Path(sim["report"]).exists()
    conv = sim["ab"]["reviews_hidden"]["conversion"]
    effect = conv["effect"]
    assert conv["true"] is not None and effect["low"] <= effect["value"] <= effect["high"]
    assert json.loads(Path(sim["fidelity"]).read_text())["sim"]["sessions"] == 3


@pytest.mark.slow
def test_demo_reuses_finished_stages_only_when_settings_match(tmp_path):
    """A rerun reuses world, examples and models; a changed setting redoes what it affects."""
    cfg = {
        "out_dir": str(tmp_path / "run"),
        "world": {"users": 3, "sessions_per_user": 2, "seed": 2},
        "build": {"token_budget": 1280, "max_history_steps": 2},
        "model": {**TOY_MODEL, "vocab_size": 512},
        "sft_overrides": {"max_steps": 1},
        "grpo_overrides": TOY_GRPO,
        "persona_modes": ["real"],
        "shipped_dir": None,
        "device": "cpu",
        "stages": ["train"],
    }
    models = tmp_path / "run" / "models" / "real"
    built = tmp_path / "run" / "built" / "base-real" / "build.json"

    base = tmp_path / "run" / "base" / "model.safetensors"

    def state() -> tuple[float, float, float, int, float]:
        sft = json.loads((models / "sft" / "metrics.json").read_text())["global_step"]
        return (
            built.stat().st_mtime_ns,
            (models / "sft" / "model.safetensors").stat().st_mtime_ns,
            (models / "grpo" / "model.safetensors").stat().st_mtime_ns,
            sft,
            base.stat().st_mtime_ns,
        )

    run_demo(DemoConfig(**cfg))
    first = state()
    run_demo(DemoConfig(**cfg))
    assert state() == first  # nothing redone

    run_demo(DemoConfig(**{**cfg, "sft_overrides": {"max_steps": 2}}))
    second = state()
    assert second[0] == first[0] and second[4] == first[4]  # same examples and base
    assert second[1] != first[1] and second[3] == 2  # SFT retrained with the new setting
    assert second[2] != first[2]  # GRPO redone from the new SFT checkpoint

    # A new prompt format: the tokenizer is trained on prompts, so base, examples, SFT and
    # GRPO are all redone.
    rebuilt = {"token_budget": 1400, "max_history_steps": 2, "max_history_pages": 0}
    run_demo(DemoConfig(**{**cfg, "sft_overrides": {"max_steps": 2}, "build": rebuilt}))
    third = state()
    assert third[0] != second[0] and third[4] != second[4]
    assert third[1] != second[1] and third[2] != second[2]
    assert json.loads(built.read_text())["config"]["max_history_pages"] == 0


@pytest.mark.parametrize("name", ["demo", "demo-model", "demo-model-gpu"])
def test_demo_recipes_load_and_share_the_world_examples_and_base(name):
    """The shipped checkpoints are scored on the live demo's examples: the settings must agree."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "recipes" / "tiny-cpu"
    cfg, demo = DemoConfig.from_yaml(root / f"{name}.yaml"), DemoConfig.from_yaml(root / "demo.yaml")
    # Extra training sessions leave every test session as it is (test_world_export.py).
    world = {k: v for k, v in cfg.world.items() if k != "extra_train_sessions"}
    assert (world, cfg.build, cfg.model) == (demo.world, demo.build, demo.model)
    assert (root.parents[1] / cfg.sft_recipe).exists() and (root.parents[1] / cfg.grpo_recipe).exists()


@pytest.mark.parametrize("recipe", DEMO_RECIPES, ids=lambda p: p.stem)
def test_every_demo_recipe_names_only_settings_its_trainers_know(recipe):
    """A misspelt override in a long recipe fails here, not after its world and tokenizer are built."""
    from dataclasses import fields

    from trl import GRPOConfig, SFTConfig

    from customer_r1.training.configs import GRPOScriptArguments, SFTScriptArguments
    from customer_r1.world import WorldConfig

    cfg = DemoConfig.from_yaml(recipe)
    WorldConfig(**cfg.world)
    root = recipe.parents[2]
    for stage, overrides, trainer, script in (("sft", cfg.sft_overrides, SFTConfig, SFTScriptArguments),
                                              ("grpo", cfg.grpo_overrides, GRPOConfig, GRPOScriptArguments)):
        unknown = set(overrides) - {f.name for f in (*fields(trainer), *fields(script))}
        assert not unknown, f"{recipe.name}: unknown {stage} overrides {unknown}"
    assert (root / cfg.sft_recipe).exists() and (root / cfg.grpo_recipe).exists()


@pytest.mark.parametrize("recipe", DEMO_RECIPES, ids=lambda p: p.stem)
def test_every_shipped_folder_a_recipe_starts_from_is_in_the_repo(recipe):
    """A recipe that starts from (or compares with) a checkpoint under demo-model/ names one a
    fresh clone has, for every persona mode: moving a shipped folder breaks here, not an hour in."""
    root = recipe.parents[2]
    cfg = DemoConfig.from_yaml(recipe)
    base = cfg.pretrained_base or ""
    for mode in cfg.persona_modes:
        path = base.replace("{mode}", mode)
        if path.startswith("demo-model"):
            assert (root / path / "model.safetensors").exists(), f"{recipe.name}: no {path}"
    if cfg.shipped_dir and cfg.shipped_dir.startswith("demo-model") and not cfg.ship_to:
        card = root / cfg.shipped_dir / "card.json"
        assert card.exists(), f"{recipe.name}: no {cfg.shipped_dir}/card.json"


@pytest.mark.parametrize("folder", ["demo-model", "demo-model/control"])
def test_shipped_checkpoints_are_the_ones_their_card_lists(folder):
    """Each card names its checkpoints and how long they trained; the weights, tokenizer and
    prompt settings (build.json, which the simulator reads) are there for every one."""
    root = Path(__file__).resolve().parents[1] / folder
    card = json.loads((root / "card.json").read_text())
    from customer_r1.training.stages import SHIPPED

    assert set(card["checkpoints"]) == set(SHIPPED)
    for name, entry in card["checkpoints"].items():
        for f in ("model.safetensors", "tokenizer.json", "build.json", "metrics.json"):
            assert (root / name / f).exists(), f"{folder}/{name}/{f}"
        metrics = json.loads((root / name / "metrics.json").read_text())
        assert metrics["global_step"] == entry["global_step"]
        build = json.loads((root / name / "build.json").read_text())
        assert build["config"]["persona_mode"] == entry["persona"]


@pytest.mark.parametrize("bad", [{"rationale_samples": -1}, {"rationale_temperature": 0.0},
                                 {"rationale_temperature": -0.5}])
def test_demo_config_rejects_bad_sampling_settings(bad):
    """A bad decoding setting fails when the recipe loads, not after an hour of training."""
    with pytest.raises(ValueError, match=next(iter(bad))):
        DemoConfig(**bad)


@pytest.mark.slow
def test_demo_fine_tunes_the_pretrained_base_when_there_is_one(tmp_path):
    """``pretrained_base``: the live stage starts from that folder (its tokenizer builds the
    examples); a folder that is not there falls back to a tiny base from random weights."""
    from transformers import AutoTokenizer

    from customer_r1.data.opera import load_opera
    from customer_r1.training.bases import ensure_tiny_base

    cfg = {
        "world": {"users": 3, "sessions_per_user": 2, "seed": 2},
        "build": {"token_budget": 1280, "max_history_steps": 2},
        "model": TOY_MODEL,
        "sft_overrides": {"max_steps": 1},
        "persona_modes": ["real"],
        "train_runs": ["sft"],
        "shipped_dir": None,
        "device": "cpu",
        "stages": ["train"],
    }
    run_demo(DemoConfig(out_dir=str(tmp_path / "b"), pretrained_base=str(tmp_path / "missing"), **cfg))
    assert (tmp_path / "b" / "base" / "model.safetensors").exists()
    fallback = AutoTokenizer.from_pretrained(tmp_path / "b" / "models" / "real" / "sft").get_vocab()

    # Another base (here: another vocabulary size) stands in for a pretrained one.
    pre = ensure_tiny_base(load_opera(tmp_path / "b" / "world"), {"prompt_style": "compact", **cfg["build"]},
                           {**TOY_MODEL, "vocab_size": 700}, tmp_path / "pre")
    run_demo(DemoConfig(out_dir=str(tmp_path / "a"), pretrained_base=str(pre), **cfg))
    sft = AutoTokenizer.from_pretrained(tmp_path / "a" / "models" / "real" / "sft").get_vocab()
    assert sft == AutoTokenizer.from_pretrained(pre).get_vocab() != fallback
    assert (tmp_path / "a" / "built" / "pre-real" / "build.json").exists()
    assert not (tmp_path / "a" / "base").exists()

    # A remade pretrained base (a new card) retrains what started from it; the same one is reused.
    weights = tmp_path / "a" / "models" / "real" / "sft" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    run_demo(DemoConfig(out_dir=str(tmp_path / "a"), pretrained_base=str(pre), **cfg))
    assert weights.stat().st_mtime_ns == before
    (pre / "card.json").write_text(json.dumps({"made_by": "a second pretraining run"}))
    run_demo(DemoConfig(out_dir=str(tmp_path / "a"), pretrained_base=str(pre), **cfg))
    assert weights.stat().st_mtime_ns != before


@pytest.mark.slow
def test_demo_warm_starts_each_persona_mode_from_its_own_checkpoint(tmp_path):
    """``pretrained_base`` with ``{mode}``: each persona mode fine-tunes its own checkpoint
    (the shipped SFT ones, say); bases with different tokenizers are refused before training."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from customer_r1.data.opera import load_opera
    from customer_r1.training.bases import ensure_tiny_base
    from customer_r1.world import WorldConfig
    from customer_r1.world.export import ensure_world

    cfg = {
        "world": {"users": 3, "sessions_per_user": 2, "seed": 2},
        "build": {"token_budget": 1280, "max_history_steps": 2},
        "model": TOY_MODEL,
        "sft_overrides": {"max_steps": 1, "learning_rate": 1e-12, "warmup_steps": 0},
        "persona_modes": ["real", "none"],
        "train_runs": ["sft"],
        "shipped_dir": None,
        "device": "cpu",
        "stages": ["train"],
    }
    world = ensure_world(WorldConfig(**cfg["world"]), tmp_path / "world")
    real = ensure_tiny_base(load_opera(world), {"prompt_style": "compact", **cfg["build"]}, TOY_MODEL,
                            tmp_path / "bases" / "real-sft")
    none = tmp_path / "bases" / "none-sft"
    shutil.copytree(real, none)  # the same tokenizer, other weights
    weights = load_file(none / "model.safetensors")
    save_file({k: v + 0.5 for k, v in weights.items()}, none / "model.safetensors")

    run_demo(DemoConfig(out_dir=str(tmp_path / "a"), pretrained_base=str(tmp_path / "bases" / "{mode}-sft"),
                        **cfg))
    for mode, base in (("real", real), ("none", none)):
        start = load_file(base / "model.safetensors")
        tuned = load_file(tmp_path / "a" / "models" / mode / "sft" / "model.safetensors")
        key = next(k for k in tuned if k.endswith("mlp.down_proj.weight"))
        assert torch.allclose(tuned[key].float(), start[key].float(), atol=1e-3), mode

    tok = json.loads((none / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    first = next(iter(vocab))
    vocab["«" + first] = vocab.pop(first)
    (none / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match="another tokenizer"):
        run_demo(DemoConfig(out_dir=str(tmp_path / "b"),
                            pretrained_base=str(tmp_path / "bases" / "{mode}-sft"), **cfg))


def test_a_missing_per_mode_base_is_a_user_error(tmp_path):
    """A warm start whose checkpoint for one persona mode is not there: one line, exit 2,
    before anything is built."""
    from killkit import invoke

    (tmp_path / "bases" / "real-sft").mkdir(parents=True)
    (tmp_path / "bases" / "real-sft" / "model.safetensors").write_bytes(b"")
    (tmp_path / "bases" / "real-sft" / "tokenizer.json").write_text("{}")
    recipe = tmp_path / "warm.yaml"
    recipe.write_text(f"out_dir: {tmp_path / 'out'}\npretrained_base: {tmp_path / 'bases'}/{{mode}}-sft\n"
                      "persona_modes: [real, none]\n")
    code, _, err = invoke(["demo", "--config", str(recipe), "--seed", "3"])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "none-sft" in lines[0] and "'none'" in lines[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", [None, 7])
def test_the_demo_seed_reaches_both_trainers(tmp_path, monkeypatch, seed):
    """``--seed`` sets SFT's and GRPO's seed (a comparison over seeds reruns the live stage);
    without it the recipes' own stand."""
    import customer_r1.training.stages as stages
    from customer_r1.demo import train_stage

    seen = {}
    monkeypatch.setattr(stages, "run_stage", lambda stage, **kw: seen.setdefault(stage, kw["overrides"]))
    cfg = DemoConfig(seed=seed, sft_overrides={"max_steps": 3}, grpo_overrides={"seed": 1})
    for stage in ("sft", "grpo"):
        train_stage(cfg, tmp_path, tmp_path / "built", tmp_path / "base", "real", stage, "cpu")
    assert seen["sft"] == ({"max_steps": 3} if seed is None else {"max_steps": 3, "seed": 7})
    assert seen["grpo"] == {"seed": 1 if seed is None else 7}
    assert cfg.sft_overrides == {"max_steps": 3}  # the recipe itself is left as it was
