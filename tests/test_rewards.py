from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from customer_r1.actions import Action, format_target
from customer_r1.rewards import REWARD_REGISTRY, RewardConfig, make_rewards

fmt, act, binary = make_rewards(["format", "action", "action_binary"])


def cols(*golds: tuple[Action, str | None], require_rationale: bool = True) -> dict:
    return {
        "action_json": [g.to_json() for g, _ in golds],
        "click_type": [c for _, c in golds],
        "require_rationale": [require_rationale] * len(golds),
    }


def as_chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


ADD = Action.click("buybox.add_to_cart")


def test_difficulty_weights_of_the_paper():
    golds = [
        (Action.input("nav_bar.search_input", "rice cooker"), None),
        (ADD, "purchase"),
        (Action.click("product_options.color.red"), "product_option"),
        (Action.click("reviews.see_all"), "review"),
        (Action.click("nav_bar.search_button"), "search"),
        (Action.terminate(), None),
    ]
    completions = [format_target(g, "because") for g, _ in golds]
    assert act(None, completions, **cols(*golds)) == [2000, 1000, 10, 1, 1, 1]
    assert fmt(None, completions, **cols(*golds)) == [1.0] * 6
    assert binary(None, completions, **cols(*golds)) == [1.0] * 6


def test_wrong_predictions():
    golds = [(ADD, "purchase")] * 3
    completions = [
        format_target(Action.click("buybox.buy_now"), "r"),  # wrong click
        format_target(Action.terminate(), "r"),  # wrong non-click
        format_target(Action.input("nav_bar.search_input", "x"), "r"),  # wrong non-click
    ]
    assert act(None, completions, **cols(*golds)) == [-1.0, 0.0, 0.0]
    (rl_only,) = make_rewards(["action"], RewardConfig(rl_only=True))
    assert rl_only(None, completions, **cols(*golds)) == [0.0, 0.0, 0.0]
    assert binary(None, completions, **cols(*golds)) == [0.0, 0.0, 0.0]


def test_weights_are_configurable():
    (r,) = make_rewards(["action"], RewardConfig(weight_input=5, click_weights={"purchase": 7}))
    golds = [(Action.input("q", "a"), None), (ADD, "purchase"), (Action.click("x"), "filter")]
    completions = [format_target(g, "r") for g, _ in golds]
    assert r(None, completions, **cols(*golds)) == [5, 7, 1000]


def test_chat_shaped_completions():
    golds = [(ADD, "purchase")]
    assert act(None, [as_chat(format_target(ADD, "r"))], **cols(*golds)) == [1000]


def test_no_credit_for_gaming():
    good = format_target(ADD, "I want it")
    gamed = [
        good + good,  # two actions
        good[:-1] + ', "extra": 1}',  # extra top-level key
        good.replace('"name"', '"text": "x", "name"'),  # extra action key
        "Sure, here it is: " + good,  # prose outside
        good + " Hope this helps!",
        '{"rationale": "", "action": {"type": "click", "name": "buybox.add_to_cart"}}',  # empty rationale
        "```python\n" + good + "\n```",  # a fence that is not json
    ]
    golds = [(ADD, "purchase")] * len(gamed)
    assert act(None, gamed, **cols(*golds)) == [0.0] * len(gamed)
    assert fmt(None, gamed, **cols(*golds)) == [0.0] * len(gamed)
    assert binary(None, gamed, **cols(*golds)) == [0.0] * len(gamed)
    # A ```json fence is the one wrapper allowed.
    assert act(None, ["```json\n" + good + "\n```"], **cols(golds[0])) == [1000]


def test_rationale_off_format():
    golds = [(ADD, "purchase")]
    no_r = format_target(ADD, None, with_rationale=False)
    assert fmt(None, [no_r], **cols(*golds, require_rationale=False)) == [1.0]
    assert fmt(None, [no_r], **cols(*golds, require_rationale=True)) == [0.0]
    assert act(None, [no_r], **cols(*golds, require_rationale=False)) == [1000]


def test_registry_and_unknown_name():
    assert {"format", "action", "action_binary"} <= set(REWARD_REGISTRY)
    import pytest

    with pytest.raises(ValueError, match="unknown reward"):
        make_rewards(["nope"])
    with pytest.raises(ValueError, match="cannot import reward"):
        make_rewards(["no.such.module:fn"])
    assert make_rewards(["customer_r1.rewards.functions:completion_text"])[0] is not None
    with pytest.raises(ValueError, match="unknown reward"):
        make_rewards(["nope"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.builds(
            lambda r, a: json.dumps({"rationale": r, "action": a}),
            json_values,
            json_values,
        ),
    ),
    gold_json=st.one_of(st.none(), st.text(max_size=30), st.just(ADD.to_json())),
    click_type=st.one_of(st.none(), st.sampled_from(["purchase", "review", "nope"]), st.floats()),
    req=st.one_of(st.none(), st.booleans()),
)
def test_rewards_never_raise(text, gold_json, click_type, req):
    kw = {"action_json": [gold_json], "click_type": [click_type], "require_rationale": [req]}
    for fn in (fmt, act, binary):
        out = fn(None, [text], **kw)
        assert len(out) == 1 and isinstance(out[0], float)
        out = fn(None, [as_chat(text)], **kw)
        assert len(out) == 1
    assert fmt(None, [text, None, 5, [{"role": "assistant"}]]) == fmt(None, [text, None, 5, []])
