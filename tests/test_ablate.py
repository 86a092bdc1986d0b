"""`eval ablate`: every variant built with the pipeline's modes, predicted and scored in one call."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from customer_r1.cli import app


@pytest.mark.slow
def test_ablate_one_command(tmp_path):
    from customer_r1.training.bases import TinyModelConfig, init_tiny_model
    from customer_r1.world import WorldConfig, export_world, generate_world

    world = tmp_path / "world"
    w = generate_world(WorldConfig(users=3, sessions_per_user=2, seed=2))
    export_world(w, world)
    texts = [st.observation.html for s in w.to_shopping_data().sessions for st in s.steps]
    base = init_tiny_model(
        tmp_path / "base",
        texts=[*texts, "# Persona\nno persona given Reason: Action:"],
        config=TinyModelConfig(
            vocab_size=800,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
        ),
    )
    out = tmp_path / "ablate"
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "ablate",
            str(world),
            "--model",
            str(base),
            "--out",
            str(out),
            "--sessions",
            "1",
            "--budget",
            "3000",
            "--prompt-style",
            "compact",
        ],
    )
    assert res.exit_code == 0, res.output
    table = json.loads((out / "ablations.json").read_text())
    assert [r["name"] for r in table["runs"]] == ["real", "none", "shuffled", "no_rationale"]
    shown = (out / "built" / "none" / "test.parquet").exists() and (out / "built" / "no_rationale").exists()
    assert shown
    import pyarrow.parquet as pq

    none = pq.read_table(out / "built" / "none" / "test.parquet").to_pylist()
    assert all("(no persona given)" in r["prompt"][1]["content"] for r in none)
    off = pq.read_table(out / "built" / "no_rationale" / "test.parquet").to_pylist()
    assert not any(r["require_rationale"] for r in off)
    shuffled = pq.read_table(out / "built" / "shuffled" / "test.parquet").to_pylist()
    assert all(r["persona_user_id"] != r["user_id"] for r in shuffled)
