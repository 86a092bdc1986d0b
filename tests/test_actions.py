from __future__ import annotations

import pytest

from customer_r1.actions import (
    Action,
    ClickTypeLookup,
    ParseError,
    exact_match,
    format_target,
    parse_completion,
)

GOOD = '{"rationale": "I want it", "action": {"type": "click", "name": "buybox.add_to_cart"}}'


def test_parse_plain_and_fenced():
    p = parse_completion(GOOD)
    assert p.action == Action.click("buybox.add_to_cart")
    assert p.rationale == "I want it"
    assert parse_completion(f"  \n{GOOD}\n ").action == p.action
    assert parse_completion(f"```json\n{GOOD}\n```").action == p.action
    assert parse_completion(f"```\n{GOOD}\n```").action == p.action


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("I will click the cart", "no JSON"),
        (f"Sure! {GOOD}", "no JSON object at the start"),
        (f"{GOOD} done", "unexpected text"),
        (GOOD + GOOD, "more than one JSON object"),
        ('{"rationale": "x"}', "missing key"),
        ('{"action": {"type": "terminate"}}', "missing key"),
        ('{"rationale": "x", "action": {"type": "terminate"}, "note": 1}', "extra key"),
        ('{"rationale": 3, "action": {"type": "terminate"}}', "must be a string"),
        ('{"rationale": "  ", "action": {"type": "terminate"}}', "empty"),
        ('{"rationale": "x", "action": "terminate"}', "must be an object"),
        ('{"rationale": "x", "action": {"type": "scroll"}}', "unknown action type"),
        ('{"rationale": "x", "action": {"type": "click"}}', "missing key 'name'"),
        ('{"rationale": "x", "action": {"type": "click", "name": 5}}', "must be a string"),
        ('{"rationale": "x", "action": {"type": "click", "name": "a", "text": "b"}}', "extra keys"),
        ('{"rationale": "x", "action": {"type": "terminate", "name": "a"}}', "extra keys"),
        ('{"rationale": "x", "action": {"type": "input", "name": "a"}}', "missing key 'text'"),
        ('{"rationale": "x", "rationale": "y", "action": {"type": "terminate"}}', "duplicate key"),
        ("[1, 2]", "no JSON object"),
        ('{"rationale": "x", "action": {"type": "click", "name": "a"}', "invalid JSON"),
        ("```json\n" + GOOD + "\n``` trailing", "no JSON object"),
    ],
)
def test_parse_failures_say_why(text, why):
    with pytest.raises(ParseError, match=why):
        parse_completion(text)


def test_rationale_off_format_is_action_only():
    p = parse_completion('{"action": {"type": "terminate"}}', require_rationale=False)
    assert p.action == Action.terminate() and p.rationale is None
    with pytest.raises(ParseError, match="extra key"):
        parse_completion(GOOD, require_rationale=False)


def test_canonical_serialisation_round_trips():
    a = Action.input("nav_bar.search_input", "rice cooker ü")
    assert a.to_json() == '{"type": "input", "name": "nav_bar.search_input", "text": "rice cooker ü"}'
    assert Action.from_json(a.to_json()) == a
    target = format_target(a, "I need one")
    assert parse_completion(target).action == a
    assert format_target(a, None, with_rationale=False) == '{"action": ' + a.to_json() + "}"


def test_exact_match_rules():
    assert exact_match(Action.click("a.b"), Action.click("a.b"))
    assert not exact_match(Action.click("a.b"), Action.click("a.c"))
    assert not exact_match(Action.click("a"), Action.input("a", "x"))
    assert exact_match(Action.terminate(), Action.terminate())
    assert exact_match(Action.input("s", "Rice  Cooker"), Action.input("s", "rice cooker"))
    assert not exact_match(Action.input("s", "rice"), Action.input("s", "rice cooker"))
    assert not exact_match(Action.input("t", "rice"), Action.input("s", "rice"))
    assert not exact_match(None, Action.terminate())


def test_invalid_actions_refused():
    with pytest.raises(ValueError):
        Action("click")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Action("scroll")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Action("terminate", name="x")


def test_click_type_lookup_exact_then_suffix_then_other():
    lut = ClickTypeLookup.from_pairs(
        [
            ("buybox.add_to_cart", "purchase"),
            ("x.add_to_cart", "purchase"),
            ("nav_bar.search_button", "search"),
        ]
    )
    assert lut("buybox.add_to_cart") == "purchase"
    assert lut("other_box.add_to_cart") == "purchase"
    assert lut("never.seen") == "other"
    assert lut(None) is None
    assert ClickTypeLookup.from_dict(lut.to_dict())("nav_bar.search_button") == "search"
