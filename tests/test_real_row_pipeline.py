"""The real first OPeRA row goes through the loader and the example builder."""

from __future__ import annotations

import json

from opera_layout import action_row, real_action_row0, write_opera

from customer_r1.actions import parse_completion
from customer_r1.data.examples import BuildConfig, read_examples, write_examples
from customer_r1.data.opera import load_opera
from customer_r1.data.tokens import TokenCounter


def test_real_row0_becomes_an_example(tmp_path, smollm2_tokenizer):
    row = real_action_row0()
    end = action_row(row["session_id"], "terminate", timestamp="2025-04-14T21:55:50.785Z")
    write_opera(tmp_path / "opera", actions={"train": [row, end]})
    data = load_opera(tmp_path / "opera")
    cfg = BuildConfig(tokenizer="smollm2", token_budget=65_536, progress=False, rationale_mode="off")
    write_examples(data, cfg, tmp_path / "built", counter=TokenCounter(smollm2_tokenizer))
    first, last = read_examples(tmp_path / "built", "train")
    assert first["semantic_id"] == row["semantic_id"] and first["click_type"] == "product_link"
    assert first["action_id"] == row["action_id"] and first["user_id"] == row["session_id"].split("_")[0]
    assert first["semantic_id"] in first["page_names"] and first["url"] == row["url"]
    assert (
        parse_completion(first["completion"][0]["content"], require_rationale=False).action.name
        == (row["semantic_id"])
    )
    assert json.loads(last["action_json"]) == {"type": "terminate"} and last["is_last_step"]
    assert f"Action: {first['action_json']}" in last["prompt"][1]["content"]
    assert 0 < first["prompt_tokens"] < last["prompt_tokens"] <= 65_536
