"""Per-motive breakdown of a run against the synthetic world's best choices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from customer_r1.actions import Action
from customer_r1.evaluation.motives import (
    expected_by_step,
    expected_match,
    motive_breakdown,
    motive_markdown,
    paired_session_bootstrap,
    write_motive_report,
)
from customer_r1.world.export import PolicyRow

REVIEWS, BUY, TERM = Action.click("see_all_reviews"), Action.click("buy_now"), Action.terminate()


def _row(step: int, motive: str, probs: list[float], blind: list[float]) -> PolicyRow:
    acts = [a.to_json() for a in (REVIEWS, BUY, TERM)]
    return PolicyRow(f"a{step}", "s", step, acts, np.asarray(probs), np.asarray(blind), motive)


def _pred(ex: str, pred: Action | None, gold: Action) -> dict:
    return {
        "example_id": ex,
        "session_id": "s",
        "step_index": int(ex[1:]),
        "action_json": pred.to_json() if pred else None,
        "action_json_true": gold.to_json(),
    }


POLICY = [
    # The persona says "read reviews"; blind, buying is likelier.
    _row(1, "reviews", [0.9, 0.1, 0.0], [0.4, 0.6, 0.0]),
    _row(2, "reviews", [0.9, 0.1, 0.0], [0.4, 0.6, 0.0]),
    _row(3, "buy_now:x", [0.2, 0.8, 0.0], [0.2, 0.8, 0.0]),
]


def test_counts_per_motive_beside_bayes_and_blind_choices():
    preds = [
        _pred("e1", REVIEWS, REVIEWS),  # right, as Bayes; blind wrong
        _pred("e2", None, REVIEWS),  # unparsable: wrong
        _pred("e3", TERM, BUY),  # wrong; both choices right
    ]
    rows = {r.motive: r for r in motive_breakdown(preds, POLICY)}
    assert set(rows) == {"reviews", "buy_now"}  # the motive's argument is dropped
    r = rows["reviews"]
    assert (r.steps, r.model, r.bayes, r.blind) == (2, 1, 2, 0)
    b = rows["buy_now"]
    assert (b.steps, b.model, b.bayes, b.blind) == (1, 0, 1, 1)
    # Most steps lost against the Bayes choice first.
    assert [x.motive for x in motive_breakdown(preds, POLICY)] == ["reviews", "buy_now"]


def test_expected_match_weighs_each_prediction_by_the_worlds_probability():
    preds = [
        _pred("e1", REVIEWS, REVIEWS),  # p = 0.9
        _pred("e2", None, REVIEWS),  # unparsable: 0
        _pred("e3", TERM, BUY),  # p = 0.0, though the world drew BUY
    ]
    got = expected_match(preds, POLICY)
    assert got["expected_exact_match"] == pytest.approx(0.9 / 3)
    # Realised: Bayes (reviews, reviews, buy) right 3 times; blind (buy, buy, buy) once.
    assert got["bayes_choice_exact"] == pytest.approx(1.0)
    assert got["blind_choice_exact"] == pytest.approx(1 / 3)
    # The Bayes choice's own expectation is the persona ceiling (0.9 + 0.9 + 0.8) / 3.
    bayes = [_pred(f"e{i}", a, REVIEWS) for i, a in ((1, REVIEWS), (2, REVIEWS), (3, BUY))]
    assert expected_match(bayes, POLICY)["expected_exact_match"] == pytest.approx(2.6 / 3)
    assert expected_match([], POLICY)["expected_exact_match"] is None
    with pytest.raises(ValueError, match="step 9"):
        expected_match([_pred("e9", TERM, TERM)], POLICY)


def test_expected_by_step_keys_each_steps_probability_by_session_and_step():
    preds = [_pred("e1", REVIEWS, REVIEWS), _pred("e3", TERM, BUY)]
    assert expected_by_step(preds, POLICY) == {("s", 1): pytest.approx(0.9), ("s", 3): 0.0}


def test_paired_session_bootstrap_separates_a_real_difference_from_session_noise():
    rng = np.random.default_rng(1)
    sessions = [(f"s{i}", j) for i in range(16) for j in range(11)]
    base = {k: float(rng.uniform(0.3, 0.9)) for k in sessions}
    # A model 5 points better on average, step by step noisy: the interval excludes 0.
    better = {k: v + 0.05 + float(rng.normal(0, 0.05)) for k, v in base.items()}
    d = paired_session_bootstrap(better, base)
    assert d["delta"] == pytest.approx(0.05, abs=0.01)
    assert 0 < d["low"] < d["delta"] < d["high"] < 0.1
    assert (d["steps"], d["sessions"]) == (176, 16)
    # Whole sessions better or worse at random, mean near 0: the interval spans 0.
    noisy = {k: v + (0.2 if int(k[0][1:]) % 2 else -0.2) for k, v in base.items()}
    d = paired_session_bootstrap(noisy, base)
    assert d["low"] < 0 < d["high"]
    # Only the shared steps count; none shared is an error.
    assert paired_session_bootstrap({("x", 0): 1.0, **better}, base)["steps"] == 176
    with pytest.raises(ValueError, match="no scored steps"):
        paired_session_bootstrap({("x", 0): 1.0}, base)


def test_unknown_example_is_an_error():
    with pytest.raises(ValueError, match="step 9"):
        motive_breakdown([_pred("e9", TERM, TERM)], POLICY)


def test_markdown_and_report_file(tmp_path):
    good = [_pred(e, a, a) for e, a in (("e1", REVIEWS), ("e2", REVIEWS), ("e3", BUY))]
    bad = [_pred(e, TERM, a) for e, a in (("e1", REVIEWS), ("e2", REVIEWS), ("e3", BUY))]
    md = motive_markdown(
        {"good": motive_breakdown(good, POLICY), "bad": motive_breakdown(bad, POLICY)}
    )
    assert "| motive | steps | good | bad | Bayes choice | blind choice |" in md
    assert "| reviews | 2 | 2 | 0 | 2 | 0 |" in md and "| **all** | 3 | 3 | 0 | 3 | 1 |" in md
    files = {}
    for name, preds in (("good", good), ("bad", bad)):
        p = tmp_path / f"{name}.jsonl"
        p.write_text("".join(json.dumps(x) + "\n" for x in preds))
        files[name] = p
    out = write_motive_report(files, POLICY, tmp_path / "r" / "motives.md")
    assert out.read_text().count("| reviews |") == 1


def test_cli_prints_the_table_and_names_a_wrong_world(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from customer_r1.cli import app

    world = tmp_path / "world"
    (world / "world").mkdir(parents=True)
    cols = ["action_id", "session_id", "step_index", "actions", "probs", "blind_probs", "motive"]
    table = {c: [getattr(r, c) for r in POLICY] for c in cols}
    table["probs"] = [list(r.probs) for r in POLICY]
    table["blind_probs"] = [list(r.blind_probs) for r in POLICY]
    pq.write_table(pa.table(table), world / "world" / "policy_test.parquet")
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(_pred(e, REVIEWS, REVIEWS)) + "\n" for e in ("e1", "e2")))
    res = CliRunner().invoke(app, ["eval", "motives", str(preds), "--world", str(world)])
    assert res.exit_code == 0, res.output
    assert "| reviews | 2 | 2 | 2 | 0 |" in res.output
    # Steps 1 and 2: the world gives reviews 0.9 each; the blind choice (buy) only 0.1.
    assert f"- {preds}: 90.0 %" in res.output
    assert "persona-blind ceiling is 10.0 % and the Bayes ceiling 90.0 %" in res.output
    preds.write_text(json.dumps(_pred("e7", TERM, TERM)) + "\n")
    res = CliRunner().invoke(app, ["eval", "motives", str(preds), "--world", str(world)])
    assert res.exit_code == 2 and "not in the world's policy" in res.output
