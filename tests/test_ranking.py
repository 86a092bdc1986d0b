"""Ranked mode on a tiny Llama: only the page's actions, probabilities that sum to 1,
the same answer as scoring each candidate with a plain full-sequence forward, and a
memorised target recovered."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_lm import make_model, make_tokenizer, one_thread, train_on

from customer_r1.actions import Action, format_target, parse_completion
from customer_r1.evaluation.ranking import (
    Ranker,
    build_candidates,
    candidate_content,
    closing_quote,
    common_prefix_len,
    decode_json_string,
)

PAGE = ["search_button", "product.cheap", "product.fancy", "nav.cart", "product.cheap"]
INPUTS = ["search_box"]


def _msgs(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Predict the shopper's next action."},
            {"role": "user", "content": user}]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def rand_model(tok):
    return make_model(tok, seed=7)


def test_candidates_dedup_order_terminate_last() -> None:
    cands = build_candidates(PAGE, INPUTS)
    assert [str(a) for a in cands] == [
        "click(search_button)", "click(product.cheap)", "click(product.fancy)", "click(nav.cart)",
        "input(search_box, '')", "terminate",
    ]
    assert build_candidates(None, None) == [Action.terminate()]
    assert len(build_candidates(np.array(["a", "b"]), np.array([]))) == 3  # pandas rows


def test_candidate_content_is_the_canonical_target() -> None:
    click = Action.click("nav.cart")
    assert candidate_content(click, "why", with_rationale=True) == format_target(click, "why")
    inp = candidate_content(Action.input("search_box", ""), "why", with_rationale=True)
    assert inp.endswith('"name": "search_box", "text": "')
    full = format_target(Action.input("search_box", "rice"), "why")
    assert full.startswith(inp)


def test_json_string_helpers() -> None:
    assert closing_quote('I said \\"hi\\" then", "action"') == 18
    assert closing_quote("no end \\") is None
    assert decode_json_string('I said \\"hi\\"\\n') == 'I said "hi"\n'
    assert decode_json_string("bad \\q escape \\") == "bad q escape "
    assert decode_json_string("caf\\u00e9") == "café"
    assert common_prefix_len([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2


def _reference_probs(ranker: Ranker, msgs, cands: list[Action], rationale, require):
    """Softmax over candidates of the plain full-sequence log-likelihood of each whole
    candidate content (prompt ids + content ids, one forward each, no cache)."""
    p_ids = ranker.prompt_ids(msgs)
    lls = []
    for a in cands:
        c_ids = ranker.content_ids([candidate_content(a, rationale, with_rationale=require)])[0]
        lls.append(ranker.full_sequence_logprob(p_ids, c_ids))
    top = max(lls)
    w = [math.exp(x - top) for x in lls]
    return [x / sum(w) for x in w]


@pytest.mark.parametrize("require", [True, False])
def test_ranked_prediction_is_valid_and_matches_full_sequence_likelihood(tok, rand_model, require):
    ranker = Ranker(rand_model, tok, max_rationale_tokens=12, max_text_tokens=6)
    msgs = _msgs("Persona: careful shopper. <a name=\"product.cheap\">Cheap</a>")
    pred = ranker.predict(msgs, PAGE, INPUTS, require_rationale=require)

    parsed = parse_completion(pred.completion, require_rationale=require)
    assert parsed.action == pred.action
    valid = {("click", n) for n in PAGE} | {("input", n) for n in INPUTS} | {("terminate", None)}
    assert (pred.action.type, pred.action.name) in valid
    assert math.isclose(sum(pred.candidate_probs.values()), 1.0, rel_tol=1e-6)
    assert len(pred.candidate_probs) == 6
    for key in pred.candidate_probs:
        a = Action.from_json(key)
        assert (a.type, a.name) in valid
    assert max(pred.candidate_probs, key=pred.candidate_probs.get) == pred.action.to_json()

    cands = build_candidates(PAGE, INPUTS)
    ref = _reference_probs(ranker, msgs, cands, pred.rationale, require)
    got = list(pred.candidate_probs.values())  # same order as the candidates
    assert got == pytest.approx(ref, abs=1e-3)
    assert int(np.argmax(ref)) == int(np.argmax(got))


def test_strategies_agree_and_chunking_is_exact(tok, rand_model) -> None:
    msgs = _msgs("History: click(search). Page: " + " ".join(PAGE))
    page = [f"product.item_{i}" for i in range(15)] + PAGE
    results = {}
    for strategy, packed in [("packed", 1024), ("packed", 7), ("expand", 1024), ("expand", 7),
                             ("naive", 1024)]:
        r = Ranker(rand_model, tok, strategy=strategy, max_packed_tokens=packed,
                   max_rationale_tokens=10, max_text_tokens=5)
        results[(strategy, packed)] = r.predict(msgs, page, INPUTS)
    base = results[("naive", 1024)]
    for pred in results.values():
        assert pred.completion == base.completion
        for k, v in base.logprobs.items():
            assert pred.logprobs[k] == pytest.approx(v, abs=1e-2)  # fp32 kernels differ


def test_only_terminate_when_page_has_no_names(tok, rand_model) -> None:
    pred = Ranker(rand_model, tok, max_rationale_tokens=5).predict(_msgs("empty page"), [], [])
    assert pred.action == Action.terminate() and pred.candidate_probs == {'{"type": "terminate"}': 1.0}
    parse_completion(pred.completion)


def test_prompt_plus_content_ids_equal_training_tokenization(tok, rand_model) -> None:
    """The scorer's ids (prompt ids + content ids) are the ids TRL-style training of the
    full conversation produces, for this tokenizer, so candidates are scored on the
    segmentation the model learnt."""
    ranker = Ranker(rand_model, tok)
    msgs = _msgs("hello")
    target = format_target(Action.click("product.cheap"), "Cheap one.")
    full = tok.apply_chat_template([*msgs, {"role": "assistant", "content": target}], tokenize=False)
    full_ids = tok(full, add_special_tokens=False)["input_ids"]
    mine = ranker.prompt_ids(msgs) + ranker.content_ids([target])[0]
    assert full_ids[: len(mine)] == mine


def test_trained_model_recovers_memorised_targets(tok) -> None:
    torch.manual_seed(0)
    model = make_model(tok, seed=11, hidden=64)
    click_msgs = _msgs("Persona: thrifty. Page: cheap or fancy rice cooker?")
    input_msgs = _msgs("Persona: cook. Page: a search box.")
    click_target = format_target(Action.click("product.cheap"), 'I want the "cheap" one.')
    input_target = format_target(Action.input("search_box", "rice cooker"), "Let me search.")
    train_on(model, tok, [(click_msgs, click_target), (input_msgs, input_target)], steps=300)

    ranker = Ranker(model, tok)
    pred = ranker.predict(click_msgs, PAGE, INPUTS)
    assert pred.action == Action.click("product.cheap")
    assert pred.rationale == 'I want the "cheap" one.'  # escaped quotes handled
    assert pred.completion == click_target
    assert pred.candidate_probs[pred.action.to_json()] > 0.5

    pred = ranker.predict(input_msgs, PAGE, INPUTS)
    assert pred.action == Action.input("search_box", "rice cooker")
    assert pred.completion == input_target
