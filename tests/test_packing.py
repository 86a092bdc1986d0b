"""The chat prompt style chains steps, and session packing trains exactly the per-step loss."""

from __future__ import annotations

import itertools

import pytest
import torch
from shopdata import make_data
from trainkit import TINY

from customer_r1.data.examples import HISTORY_MARKER, BuildConfig, ExampleBuilder
from customer_r1.data.tokens import TokenCounter
from customer_r1.training.packing import pack_sessions, step_tokens


def build(data, tok, **kw):
    cfg = BuildConfig(tokenizer="given", progress=False, exact_check="all", **kw)
    b = ExampleBuilder(data, cfg, TokenCounter(tok))
    return b, list(b.iter_rows(data.sessions))


@pytest.fixture(scope="module")
def chat_tokenizer(tiny_tokenizer):
    tok = tiny_tokenizer
    if tok.chat_template is None:  # the fixture's tokenizer: give it the tiny base's template
        from customer_r1.training.bases import CHATML_TEMPLATE

        tok.chat_template = CHATML_TEMPLATE
    return tok


def test_chat_prompt_of_each_step_extends_the_one_before(chat_tokenizer):
    data = make_data(n_sessions=2, n_steps=5)
    b, rows = build(data, chat_tokenizer, token_budget=100_000, prompt_style="chat")
    assert b.stats.exact_checked == len(rows) and b.stats.exact_mismatches == 0
    first = rows[0]["prompt"]
    assert [m["role"] for m in first] == ["system", "user"]
    assert first[1]["content"].startswith("# Persona\n") and "# Page (step 1)\n" in first[1]["content"]
    for a, nxt in itertools.pairwise(rows):
        if nxt["session_id"] != a["session_id"]:
            assert nxt["step_index"] == 0
            continue
        assert nxt["prompt"][: len(a["prompt"])] == a["prompt"]
        assert nxt["prompt"][len(a["prompt"])] == a["completion"][0]  # the earlier answer, verbatim
        session = next(s for s in data.sessions if s.session_id == nxt["session_id"])
        last = nxt["prompt"][-1]
        assert last["role"] == "user"
        assert last["content"].startswith(f"# Page (step {nxt['step_index'] + 1})\n")
        assert session.steps[nxt["step_index"]].observation.html.strip() in last["content"]


def test_chat_budget_drops_oldest_pages_and_counts_stay_exact(chat_tokenizer):
    data = make_data(n_sessions=1, n_steps=6)
    _, full = build(data, chat_tokenizer, token_budget=100_000, prompt_style="chat")
    budget = full[-1]["prompt_tokens"] - 40
    b, rows = build(data, chat_tokenizer, token_budget=budget, prompt_style="chat")
    assert b.stats.exact_mismatches == 0 and all(r["prompt_tokens"] <= budget for r in rows)
    last = rows[-1]
    assert last["history_pages_dropped"] >= 1
    assert HISTORY_MARKER in last["prompt"][1]["content"]  # the oldest page went first
    assert data.sessions[0].steps[4].observation.html in last["prompt"][-3]["content"]


def test_pack_chains_chat_sessions_and_keeps_every_step_identical(chat_tokenizer):
    data = make_data(n_sessions=3, n_steps=5)
    _, rows = build(data, chat_tokenizer, token_budget=100_000, prompt_style="chat")
    packed, stats = pack_sessions(rows, chat_tokenizer)
    assert stats.breaks == 0 and stats.sequences == stats.sessions == 3 and stats.steps == len(rows)
    assert stats.tokens_unpacked > 2 * stats.tokens_packed
    by_sid = {p["session_id"]: p for p in packed}
    for r in rows:
        p = by_sid[r["session_id"]]
        full, start = step_tokens(chat_tokenizer, r["prompt"], r["completion"])
        # The step's own (context, completion) is a prefix of its session's sequence ...
        assert p["input_ids"][: len(full)] == full
        # ... and exactly its completion tokens are in the loss there.
        assert p["completion_mask"][start : len(full)] == [1] * (len(full) - start)
        assert p["completion_mask"][len(full) - 1] == 1
    total = sum(
        len(step_tokens(chat_tokenizer, r["prompt"], r["completion"])[0])
        - step_tokens(chat_tokenizer, r["prompt"], r["completion"])[1]
        for r in rows
    )
    assert sum(sum(p["completion_mask"]) for p in packed) == total


def test_pack_breaks_where_steps_do_not_chain(chat_tokenizer):
    data = make_data(n_sessions=2, n_steps=4)
    _, compact = build(data, chat_tokenizer, token_budget=100_000, prompt_style="compact")
    packed, stats = pack_sessions(compact, chat_tokenizer)
    assert all(p["steps"] == 1 for p in packed)
    # The single-message layout rewrites the history each step: nothing chains.
    assert stats.sequences == len(compact) and stats.breaks == len(compact) - stats.sessions
    # A chat session with a dropped page chains up to the drop, then starts again.
    _, full = build(data, chat_tokenizer, token_budget=100_000, prompt_style="chat")
    budget = max(r["prompt_tokens"] for r in full) - 30
    _, cut = build(data, chat_tokenizer, token_budget=budget, prompt_style="chat")
    assert any(r["history_pages_dropped"] for r in cut)
    _, stats = pack_sessions(cut, chat_tokenizer)
    assert stats.breaks > 0 and stats.sequences == stats.sessions + stats.breaks


def test_packed_loss_equals_the_per_step_loss(chat_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(chat_tokenizer),
        hidden_size=TINY.hidden_size,
        intermediate_size=TINY.intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
    )
    model = LlamaForCausalLM(cfg).eval()
    data = make_data(n_sessions=1, n_steps=4)
    _, rows = build(data, chat_tokenizer, token_budget=100_000, prompt_style="chat")
    (p,), _ = pack_sessions(rows, chat_tokenizer)

    def token_losses(ids, mask):
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=x).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="none")
        return nll[torch.tensor(mask[1:]).bool()]

    packed = token_losses(p["input_ids"], p["completion_mask"])
    per_step = []
    for r in rows:
        full, start = step_tokens(chat_tokenizer, r["prompt"], r["completion"])
        per_step.append(token_losses(full, [0] * start + [1] * (len(full) - start)))
    per_step = torch.cat(per_step)
    assert packed.shape == per_step.shape
    assert torch.allclose(packed, per_step, atol=1e-4)
    assert torch.isclose(packed.mean(), per_step.mean(), atol=1e-5)


def test_sft_trains_packed_sessions_end_to_end(tmp_path):
    import json

    from trainkit import common_args, tiny_setup

    from customer_r1.data.examples import read_examples
    from customer_r1.training import grpo, sft

    base, built = tiny_setup(tmp_path, n_sessions=4, budget=4096, prompt_style="chat")
    out = tmp_path / "sft"
    args = ["--dataset_path", str(built), "--model_name_or_path", str(base), "--max_length", "4096",
            "--pack_sessions", "true", "--max_steps", "2", *common_args(out)]
    rows = read_examples(built, "train")
    metrics = sft.main(args)
    sessions = len({r["session_id"] for r in rows})
    assert metrics["train_sequences"] == sessions and metrics["pack_breaks"] == 0  # one per session
    assert metrics["train_examples"] == len(rows) > sessions and metrics["pack_token_ratio"] > 1.5
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 2
    with pytest.raises(ValueError, match="completion_only_loss"):
        sft.main([*args, "--completion_only_loss", "false"])
    # GRPO takes the same chat-style prompts, from the packed SFT model.
    g = grpo.main(["--dataset_path", str(built), "--model_name_or_path", str(out), "--max_steps", "1",
                   "--per_device_train_batch_size", "4", "--num_generations", "4",
                   "--max_completion_length", "8", *common_args(tmp_path / "grpo")])
    assert g["global_step"] == 1 and (tmp_path / "grpo" / "model.safetensors").exists()
