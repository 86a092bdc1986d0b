"""The main job end to end at toy scale: world → examples → SFT → GRPO → scores → results.json."""

from __future__ import annotations

import json

import pytest

from customer_r1.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end_and_ships(tmp_path):
    common = {
        "world": {"users": 4, "sessions_per_user": 3, "seed": 1},
        "build": {"token_budget": 1280, "max_history_steps": 4},
        "model": {
            "vocab_size": 1024,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 2048,
        },
        "sft_overrides": {"max_steps": 1, "per_device_train_batch_size": 2},
        "grpo_overrides": {
            "max_steps": 1,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 8,
        },
        "device": "cpu",
    }
    ship = tmp_path / "ship"
    run_demo(DemoConfig(out_dir=str(tmp_path / "model"), ship_to=str(ship), stages=["train"], **common))
    card = json.loads((ship / "card.json").read_text())
    assert set(card["checkpoints"]) == {"real-sft", "real-grpo", "none-sft", "none-grpo"}
    assert (ship / "real-grpo" / "model.safetensors").exists()

    res = run_demo(
        DemoConfig(
            out_dir=str(tmp_path / "demo"), shipped_dir=str(ship), eval_sessions=1, eval_free=False, **common
        )
    )
    names = [(r["name"], r["source"].split(" ")[0]) for r in res["rows"]]
    assert names[0] == ("page-kind baseline", "non-learned")
    assert ("SFT+GRPO", "live") in names and ("SFT+GRPO, none persona", "live") in names
    assert ("SFT+GRPO", "shipped") in names and ("SFT, none persona", "shipped") in names
    assert 0 < res["ceiling_blind"] <= res["ceiling_persona"] <= 1
    written = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert all("exact_match" in r for r in written["rows"])
    assert (tmp_path / "demo" / "eval" / "report" / "report.md").exists()
