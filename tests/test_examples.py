from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from shopdata import make_data

from customer_r1.actions import Action, parse_completion
from customer_r1.data.budget import BudgetError, DropOldestPages, ExampleCosts
from customer_r1.data.examples import (
    HISTORY_MARKER,
    BuildConfig,
    ExampleBuilder,
    page_names,
    write_examples,
)
from customer_r1.data.tokens import TokenCounter


def build(data, tok, **kw):
    cfg = BuildConfig(tokenizer="given", progress=False, exact_check="all", **kw)
    b = ExampleBuilder(data, cfg, TokenCounter(tok))
    return b, list(b.iter_rows(data.sessions))


def test_one_example_per_step_with_ground_truth_columns(tiny_tokenizer):
    data = make_data()
    _, rows = build(data, tiny_tokenizer, token_budget=100_000)
    assert len(rows) == sum(len(s.steps) for s in data.sessions)
    r = rows[2]
    s = data.sessions[0]
    assert r["example_id"] == f"{s.session_id}#2" and r["step_index"] == 2 and r["num_steps"] == 5
    assert r["action_json"] == s.steps[2].action.to_json() and r["action_type"] == "click"
    assert r["click_type"] == "product_link" and r["semantic_id"] == s.steps[2].action.name
    assert r["user_id"] == s.user_id and not r["is_last_step"] and rows[4]["is_last_step"]
    assert rows[0]["input_text"] == "rice cooker" and rows[4]["session_outcome"] == "terminate"
    assert r["semantic_id"] in r["page_names"] and r["input_names"] == ["nav_bar.search_input"]
    # The target is exactly what the parser accepts (step 1 has a rationale).
    target = parse_completion(rows[1]["completion"][0]["content"])
    assert target.action == s.steps[1].action and target.rationale == "reason 0-1"
    # Step 2's rationale is empty until synthesised, so its target does not parse yet.
    assert json.loads(r["completion"][0]["content"])["rationale"] == ""
    # Step 2 has no rationale: flagged for synthesis; step 1 has a human one.
    assert r["needs_rationale"] and r["rationale"] is None
    assert rows[1]["rationale"] == "reason 0-1" and not rows[1]["needs_rationale"]
    assert rows[1]["rationale_source"] == "human"


def test_prompt_holds_persona_history_and_current_page(tiny_tokenizer):
    data = make_data()
    _, rows = build(data, tiny_tokenizer, token_budget=100_000)
    system, user = rows[3]["prompt"]
    assert system["role"] == "system" and "take precedence" in system["content"]
    text = user["content"]
    assert text.startswith("# Persona\n") and "I compare prices before buying: Strongly agree" in text
    s = data.sessions[0]
    for k in range(3):
        assert s.steps[k].observation.html in text
        assert f"Action: {s.steps[k].action.to_json()}" in text
    assert "Reason: reason 0-1" in text
    assert text.index("# Current page (step 4)") > text.index("## Step 3")
    assert text.endswith(s.steps[3].observation.html + "\n")


def test_rationale_off_and_persona_modes(tiny_tokenizer):
    data = make_data()
    _, rows = build(data, tiny_tokenizer, token_budget=None, rationale_mode="off", persona_mode="none")
    r = rows[3]
    assert "Reason:" not in r["prompt"][1]["content"]
    assert json.loads(r["completion"][0]["content"]).keys() == {"action"}
    assert not r["require_rationale"] and not r["needs_rationale"]
    assert "(no persona given)" in r["prompt"][1]["content"] and r["persona_user_id"] is None
    _, rows = build(data, tiny_tokenizer, token_budget=None, persona_mode="shuffled", shuffle_seed=1)
    assert all(r["persona_user_id"] != r["user_id"] for r in rows)


def test_counts_are_exact_for_both_tokenizers(tiny_tokenizer, smollm2_tokenizer):
    data = make_data()
    for tok in (tiny_tokenizer, smollm2_tokenizer):
        b, rows = build(data, tok, token_budget=100_000)
        assert b.stats.exact_checked == len(rows) and b.stats.exact_mismatches == 0
        counter = TokenCounter(tok)
        assert all(r["prompt_tokens"] == counter.exact_prompt_tokens(r["prompt"]) for r in rows)


def test_budget_drops_oldest_pages_first_then_cuts(smollm2_tokenizer):
    data = make_data(n_steps=6)
    counter = TokenCounter(smollm2_tokenizer)
    _, full = build(data, smollm2_tokenizer, token_budget=100_000)
    last = full[5]
    # A budget that fits the current page and only the most recent history page.
    page_tokens = [counter.count(st.observation.html + "\n") for st in data.sessions[0].steps]
    budget = last["prompt_tokens"] - sum(page_tokens[:4]) + 60
    assert page_tokens[4] > 100  # so only four pages can go
    b, rows = build(data, smollm2_tokenizer, token_budget=budget)
    r = rows[5]
    text = r["prompt"][1]["content"]
    assert r["prompt_tokens"] <= budget and r["history_pages_dropped"] == 4 and not r["page_truncated"]
    for k in range(4):
        assert f"## Step {k + 1}\nPage: {HISTORY_MARKER}" in text
        assert data.sessions[0].steps[k].observation.html not in text
        assert f"Action: {data.sessions[0].steps[k].action.to_json()}" in text  # actions stay
    assert data.sessions[0].steps[4].observation.html in text  # the most recent page stays
    # Every example fits, and counts were verified exactly.
    assert all(x["prompt_tokens"] <= budget for x in rows) and b.stats.exact_mismatches == 0


def test_budget_cuts_current_page_when_history_is_gone(tiny_tokenizer, smollm2_tokenizer):
    data = make_data(items=40)
    for tok in (tiny_tokenizer, smollm2_tokenizer):
        counter = TokenCounter(tok)
        _, full = build(data, tok, token_budget=100_000)
        budget = min(r["prompt_tokens"] for r in full) + 50
        _, rows = build(data, tok, token_budget=budget)
        cut = [r for r in rows if r["page_truncated"]]
        assert cut, "some current page must be cut"
        for r in rows:
            assert counter.exact_prompt_tokens(r["prompt"]) == r["prompt_tokens"] <= budget
        for r in cut:
            assert r["history_pages_dropped"] == r["step_index"]  # all history pages went first
            assert "rest of the page cut" in r["prompt"][1]["content"]
            assert r["prompt_tokens"] >= budget - 64 - 12  # cut points lie <= 64 tokens apart


def test_budget_too_small_is_a_clear_error(tiny_tokenizer):
    with pytest.raises(BudgetError, match="over the budget"):
        build(make_data(), tiny_tokenizer, token_budget=50)


def test_strategy_order_on_costs_alone():
    costs = ExampleCosts(
        fixed=100, history_full=(50, 60, 70), history_dropped=(5, 5, 5), current_page=200, cut_marker=3
    )
    plan = DropOldestPages().plan(costs, 100 + 5 + 60 + 70 + 200)
    assert plan.keep_history == (False, True, True) and plan.current_page_tokens is None
    plan = DropOldestPages().plan(costs, 100 + 15 + 200)
    assert plan.keep_history == (False, False, False) and plan.current_page_tokens is None
    plan = DropOldestPages().plan(costs, 100 + 15 + 150)
    assert plan.keep_history == (False, False, False) and plan.current_page_tokens == 150 - 3 - 4
    assert plan.total_tokens <= 100 + 15 + 150


def test_max_history_steps(tiny_tokenizer):
    _, rows = build(make_data(), tiny_tokenizer, token_budget=None, max_history_steps=2)
    text = rows[4]["prompt"][1]["content"]
    assert "## Step 1\n" not in text and "## Step 3\n" in text and "## Step 4\n" in text


def test_max_history_pages_keeps_every_action_and_only_the_latest_pages(tiny_tokenizer):
    data = make_data(n_steps=6)
    steps = data.sessions[0].steps
    for budget in (100_000, None):  # the budget plan and the no-budget path agree
        for style in ("full", "compact"):
            _, rows = build(
                data, tiny_tokenizer, token_budget=budget, max_history_pages=1, prompt_style=style
            )
            text = rows[5]["prompt"][1]["content"]
            for k in range(5):
                assert f"Action: {steps[k].action.to_json()}" in text  # all actions stay
                assert (steps[k].observation.html in text) == (k == 4)  # only the last page
            dropped = f"## Step 1\nPage: {HISTORY_MARKER}\n" if style == "full" else "## Step 1\nAction:"
            assert dropped in text
            if budget is not None:
                assert rows[5]["history_pages_dropped"] == 4
    # No page at all: the compact prompt is the same as a full build minus every page.
    _, none = build(data, tiny_tokenizer, token_budget=100_000, max_history_pages=0, prompt_style="compact")
    assert HISTORY_MARKER not in none[5]["prompt"][1]["content"]
    assert none[5]["history_pages_dropped"] == 5
    with pytest.raises(ValueError, match="max_history_pages"):
        BuildConfig(max_history_pages=-1)


def test_strategy_caps_kept_pages():
    costs = ExampleCosts(
        fixed=100, history_full=(50, 60, 70), history_dropped=(5, 5, 5), current_page=200, cut_marker=3
    )
    plan = DropOldestPages().plan(costs, 10_000, max_pages=1)
    assert plan.keep_history == (False, False, True) and plan.total_tokens == 100 + 10 + 70 + 200
    plan = DropOldestPages().plan(costs, 10_000, max_pages=0)
    assert plan.keep_history == (False, False, False)
    # The budget still drops more when the cap alone does not fit.
    plan = DropOldestPages().plan(costs, 100 + 15 + 200, max_pages=2)
    assert plan.keep_history == (False, False, False)


def test_page_names_in_document_order():
    html = (
        '<div name="a"><input name="a.q" type="search"/><input name="a.go" type="submit"/>'
        '<span name="a" role="x"></span><textarea name="note"></textarea>'
        '<div name="s" role="searchbox"></div><a name="x&amp;y">x</a></div>'
    )
    names, inputs = page_names(html)
    assert names == ["a", "a.q", "a.go", "note", "s", "x&y"]
    assert inputs == ["a.q", "note", "s"]


def test_write_examples_parquet_and_build_json(tmp_path, tiny_tokenizer):
    data = make_data()
    cfg = BuildConfig(tokenizer="given", token_budget=100_000, progress=False)
    stats = write_examples(data, cfg, tmp_path, counter=TokenCounter(tiny_tokenizer))
    assert stats.examples == {"test": 5, "train": 15}
    t = pq.read_table(tmp_path / "train.parquet")
    assert t.num_rows == 15 and {"prompt", "completion", "action_json", "prompt_tokens"} <= set(
        t.column_names
    )
    meta = json.loads((tmp_path / "build.json").read_text())
    assert meta["config"]["token_budget"] == 100_000
    assert meta["click_type_lookup"]["exact"]["results.p1_item_1.title"] == "product_link"
    # TRL reads it as a conversational prompt-completion dataset.
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(tmp_path / "train.parquet"), split="train")
    assert ds[0]["prompt"][0]["role"] == "system" and ds[0]["completion"][0]["role"] == "assistant"
    assert Action.from_json(ds[0]["action_json"]).type == "input"


@pytest.mark.parametrize("style", ["compact", "chat"])
def test_a_persona_outside_the_budget_displaces_no_history(style, smollm2_tokenizer):
    """``persona_budget=outside``: with and without persona the prompts keep the same
    history pages (the persona comes on top of the budget), where inside the budget the
    persona pushes pages out; every prompt stays within budget + its persona's tokens."""
    from customer_r1.data.examples import persona_piece

    data = make_data(n_steps=6)
    counter = TokenCounter(smollm2_tokenizer)
    _, full = build(data, smollm2_tokenizer, token_budget=100_000, prompt_style=style, persona_mode="none")
    first_page = counter.count(data.sessions[0].steps[0].observation.html + "\n")
    # without persona the last step fits once its oldest page goes; the persona (~90 tokens
    # more) needs a second page out
    budget = full[5]["prompt_tokens"] - first_page + 40
    dropped = {}
    for mode in ("real", "none"):
        for where in ("inside", "outside"):
            b, rows = build(data, smollm2_tokenizer, token_budget=budget, prompt_style=style,
                            persona_mode=mode, persona_budget=where)
            extra = counter.count(persona_piece(b.personas[data.sessions[0].user_id].text))
            limit = budget + (extra if where == "outside" else 0)
            assert all(r["prompt_tokens"] <= limit for r in rows) and b.stats.exact_mismatches == 0
            dropped[mode, where] = [r["history_pages_dropped"] for r in rows]
    assert sum(dropped["real", "inside"]) > sum(dropped["none", "inside"])  # the persona costs pages
    assert dropped["real", "outside"] == dropped["none", "outside"]  # the same history
    assert sum(dropped["real", "outside"]) < sum(dropped["real", "inside"])
    with pytest.raises(ValueError, match="persona_budget"):
        BuildConfig(persona_budget="beside")  # type: ignore[arg-type]


def test_examples_built_before_a_new_build_field_are_reused(tmp_path):
    """``ensure_examples`` reuses a folder whose build.json predates ``persona_budget`` (the
    field absent: the old behaviour, ``inside``), and rebuilds it for ``outside``."""
    from customer_r1.data.examples import ensure_examples

    data = make_data()
    cfg = BuildConfig(tokenizer=None, token_budget=None, progress=False)
    out = ensure_examples(data, cfg, tmp_path / "ex")
    meta = json.loads((out / "build.json").read_text())
    del meta["config"]["persona_budget"]  # as written before the field existed
    (out / "build.json").write_text(json.dumps(meta))
    marker = out / "kept.txt"
    marker.write_text("this folder was not rebuilt")
    assert ensure_examples(data, cfg, out) == out and marker.exists()
    ensure_examples(data, BuildConfig(tokenizer=None, token_budget=None, progress=False,
                                      persona_budget="outside"), out)
    assert not marker.exists()
    assert json.loads((out / "build.json").read_text())["config"]["persona_budget"] == "outside"


def test_asking_for_fewer_splits_reuses_a_fuller_build_and_never_wipes_train(tmp_path):
    """A scorer building the test split of a checkpoint whose tokenizer a trainer also uses
    must not replace the folder holding the trainer's train split (it once did, mid-run)."""
    from customer_r1.data.examples import ensure_examples

    data = make_data()
    full = BuildConfig(tokenizer=None, token_budget=None, progress=False)
    out = ensure_examples(data, full, tmp_path / "ex")
    train = out / "train.parquet"
    assert train.exists()
    for subset in (["test"], ["train", "test"]):
        assert ensure_examples(data, BuildConfig(tokenizer=None, token_budget=None, progress=False,
                                                 splits=subset), out) == out
        assert train.exists() and json.loads((out / "build.json").read_text())["config"]["splits"] is None
    # The other way round (a test-only folder, the full build asked for) is a rebuild, and
    # other settings still rebuild whatever the splits.
    only_test = ensure_examples(data, BuildConfig(tokenizer=None, token_budget=None, progress=False,
                                                  splits=["test"]), tmp_path / "t")
    assert not (only_test / "train.parquet").exists()
    ensure_examples(data, full, only_test)
    assert (only_test / "train.parquet").exists()
    ensure_examples(data, BuildConfig(tokenizer=None, token_budget=None, progress=False, splits=["test"],
                                      persona_budget="outside"), out)
    assert not train.exists()
