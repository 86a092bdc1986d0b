"""Pretraining corpus (pages and reasons of training sessions only) and a tiny resumable run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shopdata import make_data
from trainkit import TINY, common_args

from customer_r1.data.corpus import corpus_rows, held_out
from customer_r1.data.opera_write import write_opera
from customer_r1.training.bases import init_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def _marked_data():
    data = make_data(n_sessions=6, n_steps=4)
    for s in data.sessions:
        for st in s.steps:
            st.rationale = f"because {s.split} {s.session_id[-1]}"
        if s.split == "test":
            for st in s.steps:
                st.observation = type(st.observation)(st.observation.html + "<p>SECRET-TEST-PAGE</p>")
    return data


def test_corpus_has_pages_and_reasons_of_train_sessions_only():
    data = _marked_data()
    train, valid, stats = corpus_rows([data])
    text = "".join(r["text"] for r in train + valid)
    assert "SECRET-TEST-PAGE" not in text and "because test" not in text
    assert "because train" in text and "# Page\n" in text
    # no persona (the survey's words), no action (the typed query exists only in the action)
    assert "I am shopper" not in text and "Big Five" not in text
    assert "rice cooker" not in text and "terminate" not in text
    n_train_steps = sum(len(s.steps) for s in data.split("train"))
    assert stats.documents == n_train_steps == len(train) + len(valid)
    with pytest.raises(ValueError, match="test"):
        corpus_rows([data], splits=["train", "test"])


def test_held_out_sessions_are_whole_and_stable():
    data = make_data(n_sessions=40, n_steps=3)
    train, valid, _ = corpus_rows([data], eval_fraction=0.3)
    assert valid and train
    assert {r["session_id"] for r in train}.isdisjoint({r["session_id"] for r in valid})
    assert all(held_out(r["session_id"], 0.3) for r in valid)


def test_pretrain_trains_resumes_and_gives_a_base_sft_loads(tmp_path):
    from customer_r1.training import pretrain

    data = _marked_data()
    world = tmp_path / "world"
    write_opera(data, world)
    texts = [r["text"] for r in corpus_rows([data])[0]]
    base = init_tiny_model(tmp_path / "base", texts=texts, config=TINY)
    out = tmp_path / "pretrained"
    args = ["--config", str(ROOT / "recipes/tiny-cpu/pretrain.yaml"), "--dataset_path", str(world),
            "--model_name_or_path", str(base), *common_args(out), "--max_length", "512",
            "--per_device_train_batch_size", "2", "--learning_rate", "1e-2", "--warmup_steps", "0",
            "--eval_fraction", "0", "--num_train_epochs", "20", "--ship_to", str(tmp_path / "shipped"),
            "--max_train_minutes", "10"]
    args[args.index("--save_strategy") + 1] = "steps"
    first = pretrain.main([*args, "--max_steps", "6", "--save_steps", "6"])
    assert first["global_step"] == 6
    assert first["corpus_documents"] == sum(len(s.steps) for s in data.split("train"))
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5
    again = pretrain.main([*args, "--max_steps", "8", "--save_steps", "6"])
    state = json.loads((out / "trainer_state.json").read_text())
    assert again["global_step"] == 8
    assert [h["step"] for h in state["log_history"] if "loss" in h] == list(range(1, 9))  # resumed at 6
    losses_after = [h["loss"] for h in state["log_history"] if "loss" in h]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)  # a base `train sft` starts from: model + tokenizer
    before, after = AutoModelForCausalLM.from_pretrained(base), AutoModelForCausalLM.from_pretrained(out)
    ids = tok(texts[0], return_tensors="pt").input_ids
    with torch.no_grad():
        assert after(ids, labels=ids).loss < before(ids, labels=ids).loss - 0.5
    assert "cpu_varlen_sdpa" not in (out / "config.json").read_text()
    # ship_to: the base in bf16 with its tokenizer and a card saying how it was made
    shipped = tmp_path / "shipped"
    card = json.loads((shipped / "card.json").read_text())
    assert card["updates"] == 8 and card["loss_last"] == losses_after[-1] < card["loss_first"]
    assert card["corpus"]["corpus_documents"] == first["corpus_documents"] and card["train_minutes"] >= 0
    assert card["made_by"].startswith("customer-r1 train pretrain --config ")
    assert "--max_steps 8" in card["made_by"]
    assert card["tokens_seen"] > 0 and card["parameters"] > 0
    assert AutoModelForCausalLM.from_pretrained(shipped).dtype == torch.bfloat16
    assert AutoTokenizer.from_pretrained(shipped)(texts[0]).input_ids == tok(texts[0]).input_ids


def test_pretrain_refuses_test_sessions(tmp_path):
    from customer_r1.errors import UserError
    from customer_r1.training import pretrain

    world = tmp_path / "world"
    write_opera(make_data(n_sessions=3), world)
    with pytest.raises(UserError, match="test"):
        pretrain.main(["--config", str(ROOT / "recipes/tiny-cpu/pretrain.yaml"), "--dataset_path", str(world),
                       "--model_name_or_path", str(tmp_path), *common_args(tmp_path / "o"),
                       "--corpus_splits", "train", "test"])
