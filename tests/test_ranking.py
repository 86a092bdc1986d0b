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
    RATIONALE_PREFIX,
    Ranker,
    _new_cache,
    _prompt_seed,
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


# ------------------------------------------------------- sampled-rationale marginal

CLICKS = ["search_button", "product.cheap", "product.fancy", "nav.cart"]


def test_sampling_near_zero_temperature_reproduces_greedy(tok, rand_model) -> None:
    """The batched sampler, with every row on its own copy of the cache, decodes the
    greedy rationale when the temperature is tiny, so the marginal is the greedy answer."""
    msgs = _msgs("Persona: careful shopper. <a name=\"product.cheap\">Cheap</a>")
    greedy = Ranker(rand_model, tok, max_rationale_tokens=12, max_text_tokens=6).predict(
        msgs, PAGE, INPUTS)
    cold = Ranker(rand_model, tok, max_rationale_tokens=12, max_text_tokens=6,
                  rationale_samples=3, temperature=1e-6).predict(msgs, PAGE, INPUTS)
    assert cold.rationale == greedy.rationale
    assert cold.completion == greedy.completion
    for k, v in greedy.candidate_probs.items():
        assert cold.candidate_probs[k] == pytest.approx(v, abs=1e-4)


def test_sampled_marginal_averages_the_action_distribution_over_rationales(tok, rand_model):
    msgs = _msgs("History: click(search). Page: " + " ".join(CLICKS))
    ranker = Ranker(rand_model, tok, strategy="naive", max_rationale_tokens=6,
                    rationale_samples=8, seed=3)
    pred = ranker.predict(msgs, CLICKS, [])
    again = ranker.predict(msgs, CLICKS, [])
    assert again == pred  # seeded by the run's seed and the prompt: reproducible

    # The same samples, drawn by hand, each scored by plain full-sequence forwards.
    p_ids = ranker.prompt_ids(msgs)
    with torch.inference_mode():
        cache = _new_cache(rand_model)
        ranker._forward(p_ids, cache)
        logp = ranker._forward(ranker.content_ids([RATIONALE_PREFIX])[0], cache)
        raws = ranker._sample_strings(cache, logp, 8, 6, _prompt_seed(3, p_ids))
    rationales = [decode_json_string(r).strip() or "(no rationale)" for r, _ in raws]
    assert len(set(rationales)) > 1  # a random model at temperature 1 does vary
    cands = build_candidates(CLICKS, [])
    per = [_reference_probs(ranker, msgs, cands, r, True) for r in rationales]
    ref = np.mean(per, axis=0)
    got = [pred.candidate_probs[a.to_json()] for a in cands]
    assert got == pytest.approx(list(ref), abs=1e-3)
    assert math.isclose(sum(pred.candidate_probs.values()), 1.0, rel_tol=1e-6)
    best = int(np.argmax(ref))
    assert pred.action == cands[best]
    # The rationale shown is the sample under which the chosen action is most likely.
    assert pred.rationale == rationales[int(np.argmax([p[best] for p in per]))]
    assert parse_completion(pred.completion).action == pred.action


def test_batched_sampler_draws_from_the_model(tok, rand_model) -> None:
    """First tokens of many rows follow the model's next-token distribution."""
    ranker = Ranker(rand_model, tok)
    p_ids = ranker.prompt_ids(_msgs("anything"))
    with torch.inference_mode():
        cache = _new_cache(rand_model)
        logp = ranker._forward(p_ids, cache)
        rows = ranker._sample_strings(cache, logp, 4000, 1, seed=11)
    assert cache.get_seq_length() == len(p_ids) and cache.layers[0].keys.shape[0] == 1
    probs = torch.exp(logp)
    top = torch.topk(probs, 3)
    for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        text = tok.decode([i], skip_special_tokens=True)
        freq = sum(r[0] == text for r in rows) / len(rows)
        assert freq == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / len(rows)) + 0.01)


def test_rationale_samples_are_validated(tok, rand_model) -> None:
    with pytest.raises(ValueError, match="rationale_samples"):
        Ranker(rand_model, tok, rationale_samples=-1)
    with pytest.raises(ValueError, match="temperature"):
        Ranker(rand_model, tok, rationale_samples=4, temperature=0.0)
