"""The paper's metrics on small tables worked out by hand (see the comments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from customer_r1.actions import ClickTypeLookup
from customer_r1.cli.entry import new_app
from customer_r1.cli.eval_score import score
from customer_r1.evaluation.metrics import (
    INVALID,
    NOT_CLICK,
    load_click_type_lookup,
    load_preds,
    merged_lookup,
    prepare_rows,
    score_predictions,
    session_outcomes,
)

CLICK = "click"


def act(kind: str, name: str | None = None, text: str | None = None) -> dict[str, str]:
    d = {"type": kind}
    if name is not None:
        d["name"] = name
    if text is not None:
        d["text"] = text
    return d


def row(
    sid: str, step: int, last: bool, gold: dict[str, str], pred: dict[str, str] | None,
    click_type: str | None = None, outcome: str = "terminate", user: str = "u1",
) -> dict[str, Any]:
    """One preds.jsonl row in the documented schema."""
    return {
        "example_id": f"{sid}#{step}",
        "completion": "(raw)",
        "action_json": json.dumps(pred) if pred is not None else None,
        "parse_error": None if pred is not None else "invalid JSON",
        "mode": "free",
        "candidate_probs": None,
        "action_json_true": json.dumps(gold),
        "action_type": gold["type"],
        "click_type": click_type,
        "session_id": sid,
        "user_id": user,
        "step_index": step,
        "is_last_step": last,
        "session_outcome": outcome,
    }


# The fixture, one line per step (A ends in a purchase, B and C in terminate):
#
# row | user | gold                     | click type   | prediction               | EM
# A#0 | u1   | click search_box.go      | search       | click search_box.go      | 1
# A#1 | u1   | input search_input "rice | –            | input search_input       | 1
#     |      |   cooker"                |              |   "Rice  Cooker"         | (normalised)
# A#2 | u1   | click buybox.add_to_cart | purchase     | click buybox.add_to_cart | 1 (last)
# B#0 | u1   | click product_link.x     | product_link | click review.stars       | 0
# B#1 | u1   | click filter.brand       | filter       | unparsable               | 0
# B#2 | u1   | terminate                | –            | click other.add_to_cart  | 0 (last)
# C#0 | u2   | click review.stars       | review       | terminate                | 0
# C#1 | u2   | terminate                | –            | terminate                | 1 (last)
def fixture_rows() -> list[dict[str, Any]]:
    return [
        row("A", 0, False, act(CLICK, "search_box.go"), act(CLICK, "search_box.go"), "search",
            "purchase"),
        row("A", 1, False, act("input", "search_input", "rice cooker"),
            act("input", "search_input", "Rice  Cooker"), None, "purchase"),
        row("A", 2, True, act(CLICK, "buybox.add_to_cart"), act(CLICK, "buybox.add_to_cart"),
            "purchase", "purchase"),
        row("B", 0, False, act(CLICK, "product_link.x"), act(CLICK, "review.stars"),
            "product_link"),
        row("B", 1, False, act(CLICK, "filter.brand"), None, "filter"),
        row("B", 2, True, act("terminate"), act(CLICK, "other.add_to_cart")),
        row("C", 0, False, act(CLICK, "review.stars"), act("terminate"), "review", user="u2"),
        row("C", 1, True, act("terminate"), act("terminate"), user="u2"),
    ]


def test_exact_match_and_validity() -> None:
    # 4 of 8 correct (A#0, A#1, A#2, C#1); 7 of 8 parse (B#1 does not).
    s = score_predictions(fixture_rows())
    assert s.n_examples == 8
    assert s.exact_match == pytest.approx(0.5)
    assert s.format_validity == pytest.approx(7 / 8)
    assert s.modes == ["free"]


def test_action_type_metrics_with_unparsable() -> None:
    # true: click input click click click terminate click terminate
    # pred: click input click click INVALID click terminate terminate
    # accuracy 5/8.
    # click:     support 5, predicted 4 (A0 A2 B0 B2), TP 3 -> P 3/4, R 3/5, F1 2/3
    # input:     support 1, predicted 1, TP 1                 -> F1 1
    # terminate: support 2, predicted 2 (C0 C1), TP 1  -> P 1/2, R 1/2, F1 1/2
    # INVALID is not a class: macro = (2/3 + 1 + 1/2) / 3 = 13/18
    # weighted = (5·2/3 + 1·1 + 2·1/2) / 8 = 2/3
    s = score_predictions(fixture_rows())
    assert s.type_accuracy == pytest.approx(5 / 8)
    assert s.type_macro_f1 == pytest.approx(13 / 18)
    assert s.type_weighted_f1 == pytest.approx(2 / 3)
    conf = s.confusion["action_type"]
    assert conf["pred_labels"] == ["click", "input", "terminate", INVALID]
    assert conf["matrix"] == [[3, 0, 1, 1], [0, 1, 0, 0], [1, 0, 1, 0]]


def test_unparsable_is_a_miss_not_a_class() -> None:
    # Two click steps, one right, one unparsable. Class click: P 1/1, R 1/2, F1 2/3; the
    # sentinel must not appear as a zero-F1 class (that would halve macro to 1/3).
    rows = [
        row("S", 0, False, act(CLICK, "a"), act(CLICK, "a"), "other"),
        row("S", 1, True, act(CLICK, "b"), None, "other"),
    ]
    s = score_predictions(rows)
    assert s.type_macro_f1 == pytest.approx(2 / 3)
    assert s.type_weighted_f1 == pytest.approx(2 / 3)
    assert s.format_validity == pytest.approx(0.5)


def test_click_type_metrics() -> None:
    # True-click steps: A0 search, A2 purchase, B0 product_link, B1 filter, C0 review.
    # Predicted types (lookup from the gold pairs): search, purchase, review (review.stars),
    # NOT_CLICK (unparsable), NOT_CLICK (terminate). Correct 2/5.
    # Per class F1 (support 1 each): search 1, purchase 1, product_link 0, filter 0,
    # review 0 (its one prediction was on B0) -> weighted = macro = 2/5.
    s = score_predictions(fixture_rows())
    assert s.n_click_steps == 5
    assert s.click_type_accuracy == pytest.approx(0.4)
    assert s.click_type_weighted_f1 == pytest.approx(0.4)
    assert s.click_type_macro_f1 == pytest.approx(0.4)
    conf = s.confusion["click_type"]
    assert conf["pred_labels"][-1] == NOT_CLICK
    assert len(conf["matrix"]) == 13 and len(conf["matrix"][0]) == 14


def test_click_type_weighted_differs_from_macro() -> None:
    # True: search ×3, filter ×1. Pred: search, search, filter, filter.
    # search: P 2/2, R 2/3, F1 0.8; filter: P 1/2, R 1, F1 2/3.
    # weighted = (3·0.8 + 1·2/3)/4 = 0.76667; macro = (0.8 + 2/3)/2 = 0.73333.
    names = [("s1", "search"), ("s2", "search"), ("s3", "search"), ("f1", "filter")]
    preds = ["s1", "s2", "f1", "f1"]
    rows = [
        row("S", i, i == 3, act(CLICK, n), act(CLICK, p), ct)
        for i, ((n, ct), p) in enumerate(zip(names, preds, strict=True))
    ]
    s = score_predictions(rows)
    assert s.click_type_weighted_f1 == pytest.approx(0.76667, abs=1e-5)
    assert s.click_type_macro_f1 == pytest.approx(0.73333, abs=1e-5)


def test_session_outcome_on_fixture() -> None:
    # A: true purchase, last pred click buybox.add_to_cart (purchase)   -> purchase
    # B: true terminate, last pred other.add_to_cart (suffix -> purchase) -> purchase
    # C: true terminate, last pred terminate                             -> terminate
    # acc 2/3; purchase P 1/2 R 1 F1 2/3; terminate P 1 R 1/2 F1 2/3; weighted 2/3.
    s = score_predictions(fixture_rows())
    assert s.n_sessions == 3
    assert s.outcome_accuracy == pytest.approx(2 / 3)
    assert s.outcome_f1 == pytest.approx(2 / 3)
    assert s.confusion["outcome"]["matrix"] == [[1, 0], [1, 1]]


def test_session_outcome_rule_and_skips() -> None:
    # Five sessions; the last one has no is_last_step row and is skipped.
    # P1 true purchase, last pred click buy.add_to_cart           -> purchase
    # T1 true terminate, last pred click x.add_to_cart (suffix)    -> purchase
    # T2 true terminate, last pred unparsable                      -> terminate
    # T3 true terminate, last pred click q (typed search by T3#0) -> terminate
    # true [P T T T], pred [P P T T]: acc 3/4;
    # purchase: P 1/2 R 1 F1 2/3; terminate: P 1 R 2/3 F1 0.8
    # weighted = (1·2/3 + 3·0.8)/4 = 0.766667; macro = 0.733333; purchase F1 2/3.
    add = act(CLICK, "buy.add_to_cart")
    rows = [
        row("P1", 0, True, add, add, "purchase", "purchase"),
        row("T1", 0, True, act("terminate"), act(CLICK, "x.add_to_cart")),
        row("T2", 0, True, act("terminate"), None),
        row("T3", 0, False, act(CLICK, "q"), act(CLICK, "q"), "search"),
        row("T3", 1, True, act("terminate"), act(CLICK, "q")),
        row("T4", 0, False, act(CLICK, "q"), act("terminate"), "search"),
    ]
    ids, y_true, y_pred, skipped = session_outcomes(prepare_rows(rows))
    assert ids == ["P1", "T1", "T2", "T3"]
    assert y_true == ["purchase", "terminate", "terminate", "terminate"]
    assert y_pred == ["purchase", "purchase", "terminate", "terminate"]
    assert skipped == 1
    s = score_predictions(rows)
    assert s.outcome_accuracy == pytest.approx(0.75)
    assert s.outcome_f1 == pytest.approx(0.766667, abs=1e-6)
    assert s.outcome_macro_f1 == pytest.approx(0.733333, abs=1e-6)
    assert s.outcome_f1_purchase == pytest.approx(2 / 3)
    assert s.n_sessions_without_last_step == 1


def test_exact_match_per_type() -> None:
    # click: A0 A2 right of A0 A2 B0 B1 C0 -> 2/5; input 1/1; terminate: C1 of B2 C1 -> 1/2.
    by_type = score_predictions(fixture_rows()).exact_match_by_type
    assert by_type["click"] == {"n": 5, "exact_match": pytest.approx(0.4)}
    assert by_type["input"] == {"n": 1, "exact_match": pytest.approx(1.0)}
    assert by_type["terminate"] == {"n": 2, "exact_match": pytest.approx(0.5)}


def test_build_lookup_merged_with_gold_pairs(tmp_path: Path) -> None:
    # build.json says review.stars -> other (wrong for this data) and knows the suffix
    # buy_now -> purchase. Gold pairs win for exact names; the build's suffixes type
    # unseen names.
    base = ClickTypeLookup({"review.stars": "other"}, {"buy_now": "purchase"})
    (tmp_path / "build.json").write_text(json.dumps({"click_type_lookup": base.to_dict()}))
    loaded = load_click_type_lookup(tmp_path)  # a folder means its build.json
    assert loaded.to_dict() == base.to_dict()
    lk = merged_lookup(fixture_rows(), loaded)
    assert lk("review.stars") == "review"
    assert lk("somewhere.buy_now") == "purchase"
    assert lk("never.seen") == "other"
    # Predicted unseen `x.buy_now` on a true purchase click scores as a purchase.
    rows = [row("S", 0, True, act(CLICK, "buybox.add_to_cart"), act(CLICK, "x.buy_now"),
                "purchase", "purchase")]
    s = score_predictions(rows, lookup=loaded)
    assert s.click_type_weighted_f1 == pytest.approx(1.0)
    assert s.exact_match == 0.0
    assert s.outcome_accuracy == 1.0
    # Without the build lookup the unseen suffix falls back to `other`.
    assert score_predictions(rows).click_type_weighted_f1 == pytest.approx(0.0)


def test_ranked_mode_gold_probability() -> None:
    # Row 1: gold click a gets 0.7 of the mass; row 2: gold input q "Rice" offered as
    # "rice" (same after normalisation) with 0.2. Mean 0.45; gold offered both times.
    r1 = row("S", 0, False, act(CLICK, "a"), act(CLICK, "a"), "other")
    r1["mode"] = "ranked"
    r1["candidate_probs"] = {json.dumps(act(CLICK, "a")): 0.7, json.dumps(act(CLICK, "b")): 0.3}
    r2 = row("S", 1, True, act("input", "q", "Rice"), act(CLICK, "b"))
    r2["mode"] = "ranked"
    r2["candidate_probs"] = {json.dumps(act("input", "q", "rice")): 0.2,
                             json.dumps(act(CLICK, "b")): 0.8}
    s = score_predictions([r1, r2])
    assert s.ranked == {"n": 2, "gold_prob_mean": pytest.approx(0.45), "gold_offered_rate": 1.0}


def test_load_preds_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "preds.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in fixture_rows()) + "\n\n")
    assert len(load_preds(p)) == 8
    assert score_predictions(p).exact_match == pytest.approx(0.5)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match=":2:"):
        load_preds(bad)
    with pytest.raises(ValueError, match="no predictions"):
        score_predictions([])


def _cli() -> typer.Typer:
    app = new_app()  # the CLI's own group: user errors are one line, exit 2
    app.command()(score)
    app.command(name="noop")(lambda: None)  # two commands keep `score` a sub-command
    return app


def test_score_cli_json_and_table(tmp_path: Path) -> None:
    p = tmp_path / "preds.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in fixture_rows()) + "\n")
    runner = CliRunner()
    res = runner.invoke(_cli(), ["score", str(p), "--json", "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["headline"]["exact_match"] == pytest.approx(0.5)
    assert payload["metrics"]["type_macro_f1"] == pytest.approx(13 / 18)
    assert json.loads((tmp_path / "m.json").read_text())["headline"] == payload["headline"]
    res = runner.invoke(_cli(), ["score", str(p)])
    assert res.exit_code == 0, res.output
    assert "50.00" in res.output
    res = runner.invoke(_cli(), ["score", str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2
