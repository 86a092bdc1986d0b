"""Offline bases: the tiny model's tokenizer survives a save/load round trip; SmolLM2 trains."""

from __future__ import annotations

import pytest
import torch
from trainkit import TINY, tiny_setup

from customer_r1.data.examples import read_examples


def test_tiny_tokenizer_round_trip_and_single_token_names(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    from customer_r1.training.bases import init_tiny_model, train_tokenizer

    _, built = tiny_setup(tmp_path, n_sessions=4)
    rows = read_examples(built, "train")
    texts = [m["content"] for r in rows for m in r["prompt"] + r["completion"]]
    in_memory = train_tokenizer(texts, vocab_size=TINY.vocab_size)
    saved = init_tiny_model(tmp_path / "again", texts=texts, config=TINY)
    assert AutoConfig.from_pretrained(saved).model_type == "llama"
    loaded = AutoTokenizer.from_pretrained(saved)
    # The model config beside the tokenizer must not swap in another pre-tokenizer.
    for text in texts[:20]:
        assert loaded(text)["input_ids"] == in_memory(text)["input_ids"]
        assert loaded.decode(loaded(text)["input_ids"]) == text
    for name in {r["semantic_id"] for r in rows if r["semantic_id"]}:
        assert len(loaded(name, add_special_tokens=False)["input_ids"]) == 1, name
    chat = loaded.apply_chat_template(rows[0]["prompt"], tokenize=False, add_generation_prompt=True)
    assert chat.startswith("<|im_start|>system\n") and chat.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_smollm2_from_the_wheel_is_an_ordinary_trainable_model(tmp_path):
    """Loaded from GGUF the model is marked quantised and trainers refuse it; ours is not."""
    from transformers import AutoModelForCausalLM

    from customer_r1.training.bases import smollm2_dir

    path = smollm2_dir()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert not getattr(model, "is_quantized", False)
    assert getattr(model.config, "quantization_config", None) is None
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    model.train()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads[:5])
