"""``Ranker.predict_batch``: one policy step for many sessions at once gives, per request,
what ``predict`` gives alone (greedy), and a sampled rationale that depends only on the
request's own seed, never on the other requests in the batch."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_lm import make_model, make_tokenizer, one_thread, train_on

from customer_r1.actions import Action, format_target, parse_completion
from customer_r1.evaluation.ranking import Ranker, RankRequest, _length_groups, _RowCache

PAGE = ["search_button", "product.cheap", "product.fancy", "nav.cart"]
LONG_PAGE = PAGE + [f"product.item_{i}" for i in range(12)]


def _msgs(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Predict the shopper's next action."},
            {"role": "user", "content": user}]


TRAINED = [
    (_msgs("Persona: thrifty. Page: cheap or fancy?"),
     format_target(Action.click("product.cheap"), 'I want the "cheap" one.')),
    (_msgs("Persona: cook. Page: a search box."),
     format_target(Action.input("search_box", "rice cooker"), "Let me search.")),
    (_msgs("Nothing left."), format_target(Action.terminate(), "Done here.")),
]

#: Different prompt lengths and candidate counts, rows with and without a rationale, a
#: page with only terminate, rows with one and with two input fields.
REQUESTS = [
    RankRequest(TRAINED[0][0], PAGE, ["search_box"], True),
    RankRequest(TRAINED[1][0], PAGE, ["search_box", "add_to_cart"], True),
    RankRequest(_msgs("Persona: careful shopper."), PAGE[:2], [], False),
    RankRequest(_msgs("empty page"), [], [], True),
    RankRequest(_msgs("History: click(search) input(search_box, 'rice cooker') " * 4),
                LONG_PAGE, ["search_box"], True),
    RankRequest(_msgs("Persona: cook. Page: two text fields."), ["nav.cart"],
                ["search_box", "add_to_cart"], False),
    RankRequest(_msgs('He said \\"hello\\" <a name="product.cheap">Cheap</a>'), PAGE, [], True),
    RankRequest(_msgs("Nothing left."), [], [], False),
]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def models(tok):
    """A random model (long rationales, some cut at the token cap) and a briefly trained
    one (rationales that close, candidate probabilities far from one-hot)."""
    with one_thread():
        trained = train_on(make_model(tok, seed=3), tok, TRAINED, steps=60)
    return {"random": make_model(tok, seed=7), "trained": trained}


def _with_attn(model, impl: str):
    model.config._attn_implementation = impl
    return model


def _single(ranker: Ranker, req: RankRequest):
    return ranker.predict(req.prompt, req.page_names, req.input_names,
                          require_rationale=req.require_rationale)


def _assert_same(got, want, *, probs_abs: float = 1e-4, logp_abs: float = 1e-3) -> None:
    assert got.action == want.action
    assert got.rationale == want.rationale
    assert got.completion == want.completion
    assert got.rationale_closed == want.rationale_closed
    assert list(got.candidate_probs) == list(want.candidate_probs)  # keys carry input texts
    for k, v in want.candidate_probs.items():
        assert got.candidate_probs[k] == pytest.approx(v, abs=probs_abs)
    for k, v in want.logprobs.items():
        assert got.logprobs[k] == pytest.approx(v, abs=logp_abs)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("per_row_prompts", [True, False], ids=["cpu-prompts", "padded-prompts"])
def test_greedy_batch_equals_predict_per_example(tok, models, impl, which, per_row_prompts,
                                                 monkeypatch) -> None:
    """Both ways of filling the batch's cache with the prompts: one forward per row
    (the CPU default) and one right-padded forward (the GPU default)."""
    monkeypatch.setattr(_RowCache, "per_row_prompts", per_row_prompts)
    ranker = Ranker(_with_attn(models[which], impl), tok, max_rationale_tokens=12,
                    max_text_tokens=6)
    assert ranker._bool_mask == (impl == "sdpa")
    batch = ranker.predict_batch(REQUESTS)
    assert len(batch) == len(REQUESTS)
    for req, got in zip(REQUESTS, batch, strict=True):
        want = _single(ranker, req)
        _assert_same(got, want)
        assert parse_completion(got.completion, require_rationale=req.require_rationale).action == got.action
        assert math.isclose(sum(got.candidate_probs.values()), 1.0, rel_tol=1e-6)
    assert batch[3].candidate_probs == {'{"type": "terminate"}': 1.0}
    assert batch[2].rationale is None and batch[3].rationale is not None
    if which == "random":  # the case list covers rationales cut at the cap and closed ones
        assert {p.rationale_closed for p in batch} == {True, False}
    else:  # the comparison is not between two near one-hot distributions
        assert all(p.rationale_closed for p in batch)
        assert sorted(batch[1].candidate_probs.values())[-2] > 1e-2


def test_batch_of_one_equals_predict(tok, models) -> None:
    ranker = Ranker(_with_attn(models["trained"], "sdpa"), tok, max_rationale_tokens=12,
                    max_text_tokens=6)
    for req in (REQUESTS[1], REQUESTS[3], REQUESTS[5]):
        (got,) = ranker.predict_batch([req])
        _assert_same(got, _single(ranker, req))


def test_chunking_and_grouping_are_exact(tok, models) -> None:
    """Few tokens per scoring forward, and batches split by the token cap, change nothing."""
    model = _with_attn(models["random"], "sdpa")
    base = Ranker(model, tok, max_rationale_tokens=8, max_text_tokens=4).predict_batch(REQUESTS)
    for packed, batch_tokens in [(7, 16384), (1024, 1), (40, 120)]:
        r = Ranker(model, tok, max_rationale_tokens=8, max_text_tokens=4,
                   max_packed_tokens=packed, max_batch_tokens=batch_tokens)
        for got, want in zip(r.predict_batch(REQUESTS), base, strict=True):
            _assert_same(got, want)
    assert _length_groups([5, 1, 9, 3], 10) == [[1, 3], [0], [2]]
    assert _length_groups([50], 10) == [[0]]


def test_sampled_rationale_depends_only_on_the_request_seed(tok, models) -> None:
    """A request's sample is the same alone or batched with others, wherever it sits.

    Each row draws its Gumbel noise from its own generator; the batch changes only the
    float rounding of the logits (~1e-6), far below the gaps that decide a draw on this
    model, so the rationales match exactly. On a larger model a near-tie could, rarely,
    flip one token between batch shapes."""
    ranker = Ranker(_with_attn(models["random"], "sdpa"), tok, max_rationale_tokens=12,
                    max_text_tokens=6)
    me = RankRequest(REQUESTS[0].prompt, PAGE, ["search_box"], True, seed=5)
    (alone,) = ranker.predict_batch([me], rationale="sample")
    others = [RankRequest(r.prompt, r.page_names, r.input_names, r.require_rationale, seed=i)
              for i, r in enumerate(REQUESTS[3:7])]
    for batch in ([*others[:2], me, *others[2:]], [me, *others], [*others, me]):
        preds = ranker.predict_batch(batch, rationale="sample")
        _assert_same(preds[batch.index(me)], alone)
    again = ranker.predict_batch([me], rationale="sample")[0]
    assert again == alone


def test_seeds_vary_and_low_temperature_is_greedy(tok, models) -> None:
    ranker = Ranker(_with_attn(models["random"], "eager"), tok, max_rationale_tokens=8,
                    max_text_tokens=4)
    reqs = [RankRequest(REQUESTS[4].prompt, LONG_PAGE, ["search_box"], True, seed=s)
            for s in range(6)]
    sampled = ranker.predict_batch(reqs, rationale="sample")
    assert len({p.rationale for p in sampled}) > 1
    for p in sampled:
        assert p.rationale  # never empty: EMPTY_RATIONALE stands in for ""
        assert parse_completion(p.completion).action == p.action

    greedy = ranker.predict_batch(REQUESTS)
    cold = ranker.predict_batch(REQUESTS, rationale="sample", rationale_temperature=1e-6)
    for got, want in zip(cold, greedy, strict=True):
        _assert_same(got, want, probs_abs=0.0, logp_abs=0.0)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sampler_draws_from_the_tempered_distribution(tok, models, temperature) -> None:
    """Per-row Gumbel-max picks follow ``softmax(logp / T)``."""
    ranker = Ranker(models["random"], tok)
    logp = torch.log_softmax(torch.randn(len(tok), generator=torch.Generator().manual_seed(0)) * 2,
                             dim=-1)
    n = 3000
    pick = ranker._picker("sample", temperature, {r: 1000 + r for r in range(n)})
    toks = pick(list(range(n)), logp.expand(n, -1))
    probs = torch.softmax(logp / temperature, dim=-1)
    for p, i in zip(*[x.tolist() for x in torch.topk(probs, 3)], strict=True):
        freq = toks.count(i) / n
        assert freq == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n) + 0.01)


def test_kernels_without_4d_masks_fall_back_to_one_at_a_time(tok, models, monkeypatch) -> None:
    """The fallback (flash-attention) gives the batched path's answers, samples included."""
    ranker = Ranker(_with_attn(models["random"], "sdpa"), tok, max_rationale_tokens=10,
                    max_text_tokens=5)
    reqs = [RankRequest(r.prompt, r.page_names, r.input_names, r.require_rationale, seed=i)
            for i, r in enumerate(REQUESTS)]
    batched = {m: ranker.predict_batch(reqs, rationale=m) for m in ("greedy", "sample")}
    monkeypatch.setattr(Ranker, "_batchable", property(lambda self: False))
    for mode, want in batched.items():
        for got, ref in zip(ranker.predict_batch(reqs, rationale=mode), want, strict=True):
            _assert_same(got, ref)


def test_rows_as_mappings_and_validation(tok, models) -> None:
    ranker = Ranker(_with_attn(models["trained"], "sdpa"), tok, max_rationale_tokens=6,
                    max_text_tokens=4)
    row = {"prompt": REQUESTS[1].prompt, "page_names": PAGE, "input_names": ["search_box"],
           "require_rationale": True, "other": 1}
    (got,) = ranker.predict_batch([row])
    _assert_same(got, _single(ranker, RankRequest(row["prompt"], PAGE, ["search_box"], True)))
    assert ranker.predict_batch([]) == []
    with pytest.raises(ValueError, match="rationale"):
        ranker.predict_batch([row], rationale="beam")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        ranker.predict_batch([row], rationale="sample", rationale_temperature=0.0)


@pytest.mark.parametrize(("rationale_tokens", "text_tokens"), [(0, 0), (1, 1), (3, 2)])
def test_token_caps_and_degenerate_batches(tok, models, rationale_tokens, text_tokens) -> None:
    """Caps that cut every string (EMPTY_RATIONALE, empty texts), and batches where no row
    has anything to rank or decode, still give predict's answers."""
    ranker = Ranker(_with_attn(models["random"], "sdpa"), tok,
                    max_rationale_tokens=rationale_tokens, max_text_tokens=text_tokens)
    for batch in (REQUESTS, [REQUESTS[3], REQUESTS[7]], [REQUESTS[2], REQUESTS[5]]):
        for req, got in zip(batch, ranker.predict_batch(batch), strict=True):
            _assert_same(got, _single(ranker, req))


def test_buffered_cache_layers_match_plain_ones(tok, models) -> None:
    """The batch's cache writes into buffers with spare room instead of concatenating;
    updates and crops leave the same keys and values as a plain DynamicCache."""
    from customer_r1.evaluation.ranking import _crop, _growing_cache, _new_cache

    model = models["random"]
    grown, plain = _growing_cache(model), _new_cache(model)
    assert type(grown.layers[0]).__name__ == "BufferedLayer"  # this transformers: in use
    gen = torch.Generator().manual_seed(0)
    for n, crop_to in [(70, None), (1, None), (40, 90), (200, None), (1, 150), (3, None)]:
        for layer in range(model.config.num_hidden_layers):
            k, v = (torch.randn(2, 2, n, 16, generator=gen) for _ in range(2))
            got = grown.update(k, v, layer)
            want = plain.update(k, v, layer)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        if crop_to is not None:
            _crop(grown, crop_to)
            _crop(plain, crop_to)
        assert grown.get_seq_length() == plain.get_seq_length()
