"""Per-user fidelity: JS divergence against hand values, per-user distributions, ceilings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from customer_r1.evaluation.fidelity import (
    ceiling_comparison,
    fidelity,
    js_divergence,
    load_ceilings,
    user_fidelity,
)
from customer_r1.evaluation.metrics import prepare_rows

LOG2_3 = math.log2(3)


def test_js_hand_values() -> None:
    assert js_divergence([1, 0], [1, 0]) == 0.0
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4)
    # KL(p||m) = 1/2·log2(2/3) + 1/2·log2(2) = 1 - 1/2·log2 3
    # KL(q||m) = log2(4/3) = 2 - log2 3
    # JS = 1/2·(3 - 3/2·log2 3) = 1.5 - 0.75·log2 3 = 0.311278
    expected = 1.5 - 0.75 * LOG2_3
    assert expected == pytest.approx(0.311278, abs=1e-6)
    assert js_divergence([0.5, 0.5], [1, 0]) == pytest.approx(expected)
    assert js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(expected)  # symmetric
    assert js_divergence([2, 2], [3, 0]) == pytest.approx(expected)  # counts are normalised
    # p = (4,1,1,0)/6, q = (4,1,0,1)/6: only the last two cells differ; each contributes
    # 1/6·log2(2) to its KL, so JS = 1/6.
    assert js_divergence([4, 1, 1, 0], [4, 1, 0, 1]) == pytest.approx(1 / 6)


def test_js_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        js_divergence([1, 0], [1, 0, 0])
    with pytest.raises(ValueError):
        js_divergence([0, 0], [1, 0])
    with pytest.raises(ValueError):
        js_divergence([-1, 2], [1, 0])


def test_js_matches_scipy() -> None:
    from scipy.spatial import distance as spatial  # a dependency of scikit-learn
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.random(13), rng.random(13)
        # scipy returns the distance: the square root of the divergence.
        assert js_divergence(p, q) == pytest.approx(spatial.jensenshannon(p, q, base=2) ** 2)


def test_js_row_wise_is_the_same_divergence() -> None:
    """Two (n, k) matrices give each row pair's divergence (sim.compare's bootstrap and
    permutation replicates); a row without mass is undefined (NaN), not an error."""
    rng = np.random.default_rng(1)
    p, q = rng.integers(0, 4, size=(30, 6)).astype(float), rng.integers(0, 4, size=(30, 6)).astype(float)
    p[0], q[1], q[2] = 0.0, 0.0, p[2] * 2
    rows = js_divergence(p, q)
    assert rows.shape == (30,)
    assert np.isnan(rows[0]) and np.isnan(rows[1]) and rows[2] == 0.0
    for i in range(3, 30):
        if p[i].sum() and q[i].sum():
            assert rows[i] == pytest.approx(js_divergence(p[i], q[i]), abs=1e-12)
    assert js_divergence([[1, 0]], [[0, 1]])[0] == pytest.approx(1.0)


def _row(sid: str, step: int, last: bool, gold: dict[str, str], pred: dict[str, str] | None,
         ct: str | None, user: str) -> dict[str, Any]:
    return {
        "example_id": f"{sid}#{step}", "session_id": sid, "user_id": user, "step_index": step,
        "is_last_step": last, "action_json_true": json.dumps(gold), "click_type": ct,
        "action_json": json.dumps(pred) if pred else None, "session_outcome": "terminate",
    }


def _c(name: str) -> dict[str, str]:
    return {"type": "click", "name": name}


T = {"type": "terminate"}
I_GOLD = {"type": "input", "name": "q", "text": "rice"}


# Same table as tests/test_metrics.py (types only matter here):
# u1: gold  click(search) input click(purchase) click(product_link) click(filter) terminate
#     pred  click(search) input click(purchase) click(review)       INVALID       click(purchase*)
#     (* other.add_to_cart typed by suffix)
# u2: gold  click(review) terminate ; pred terminate terminate
def fixture_rows() -> list[dict[str, Any]]:
    return [
        _row("A", 0, False, _c("search_box.go"), _c("search_box.go"), "search", "u1"),
        _row("A", 1, False, I_GOLD, I_GOLD, None, "u1"),
        _row("A", 2, True, _c("buy.add_to_cart"), _c("buy.add_to_cart"), "purchase", "u1"),
        _row("B", 0, False, _c("product_link.x"), _c("review.stars"), "product_link", "u1"),
        _row("B", 1, False, _c("filter.brand"), None, "filter", "u1"),
        _row("B", 2, True, T, _c("other.add_to_cart"), None, "u1"),
        _row("C", 0, False, _c("review.stars"), T, "review", "u2"),
        _row("C", 1, True, T, T, None, "u2"),
    ]


def test_user_fidelity_hand_values() -> None:
    users = {u.user_id: u for u in user_fidelity(prepare_rows(fixture_rows()))}
    u1, u2 = users["u1"], users["u2"]
    # u1 action types (click, input, terminate, invalid): true (4,1,1,0)/6, pred (4,1,0,1)/6
    # -> JS 1/6 (see test_js_hand_values).
    assert u1.action_type_true == pytest.approx(
        {"click": 4 / 6, "input": 1 / 6, "terminate": 1 / 6, "invalid": 0.0})
    assert u1.action_type_pred["invalid"] == pytest.approx(1 / 6)
    assert u1.js_action_type == pytest.approx(1 / 6)
    # u1 click types: true search, purchase, product_link, filter (1/4 each);
    # pred search 1/4, purchase 1/2, review 1/4. m: search 1/4, purchase 3/8,
    # product_link 1/8, filter 1/8, review 1/8.
    # KL(p||m) = 1/4·log2(2/3) + 2·1/4·log2 2 = 1/2 + 1/4·(1 - log2 3)
    # KL(q||m) = 1/2·log2(4/3) + 1/4·log2 2   = 1/2·(2 - log2 3) + 1/4
    # JS = 1/2·(KL_p + KL_q) = 1/2·(2 - 3/4·log2 3) = 1 - 3/8·log2 3 = 0.405639
    assert u1.n_true_clicks == 4 and u1.n_pred_clicks == 4
    assert u1.click_type_pred["purchase"] == pytest.approx(0.5)
    assert u1.js_click_type == pytest.approx(1 - 0.375 * LOG2_3)
    # u2 action types: true (1/2, 0, 1/2, 0), pred (0, 0, 1, 0): same shape as
    # [1/2, 1/2] vs [0, 1] -> 1.5 - 0.75·log2 3.
    assert u2.js_action_type == pytest.approx(1.5 - 0.75 * LOG2_3)
    # u2 click types: one true click, no predicted click -> 1 by rule.
    assert u2.n_pred_clicks == 0
    assert u2.js_click_type == 1.0
    assert u1.exact_match == pytest.approx(0.5) and u2.exact_match == pytest.approx(0.5)


def test_means_over_users_and_empty_click_rule() -> None:
    fid = fidelity(prepare_rows(fixture_rows()))
    # mean JS type = (1/6 + 0.311278)/2; mean JS click = (0.405639 + 1)/2
    assert fid.mean_js_action_type == pytest.approx((1 / 6 + 1.5 - 0.75 * LOG2_3) / 2)
    assert fid.mean_js_click_type == pytest.approx((1 - 0.375 * LOG2_3 + 1) / 2)
    assert fid.ceilings is None
    # A third user with terminate only on both sides: JS type 0, JS click undefined
    # (left out of the click mean, which stays the same).
    rows = [*fixture_rows(), _row("D", 0, True, T, T, None, "u3")]
    fid3 = fidelity(prepare_rows(rows))
    u3 = fid3.users[-1]
    assert u3.js_action_type == 0.0 and u3.js_click_type is None
    assert fid3.mean_js_action_type == pytest.approx((1 / 6 + 1.5 - 0.75 * LOG2_3) / 3)
    assert fid3.mean_js_click_type == pytest.approx(fid.mean_js_click_type)


def test_perfect_predictions_have_zero_divergence() -> None:
    rows = fixture_rows()
    for r in rows:
        r["action_json"] = r["action_json_true"]
    fid = fidelity(prepare_rows(rows))
    assert fid.mean_js_action_type == 0.0 and fid.mean_js_click_type == 0.0


def _world(tmp_path: Path, payload: dict[str, Any]) -> Path:
    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "world.json").write_text(json.dumps(payload))
    return tmp_path


def test_load_ceilings_variants(tmp_path: Path) -> None:
    per_split = {"ceilings": {"train": {"ceiling_persona": 0.7, "ceiling_blind": 0.3},
                              "test": {"ceiling_persona": 0.8, "ceiling_blind": 0.4}}}
    world = _world(tmp_path, per_split)
    assert load_ceilings(world) == {"ceiling_persona": 0.8, "ceiling_blind": 0.4}  # test default
    assert load_ceilings(world, "train") == {"ceiling_persona": 0.7, "ceiling_blind": 0.3}
    assert load_ceilings(world / "world" / "world.json", "train")["ceiling_persona"] == 0.7
    assert load_ceilings(world / "world")["ceiling_persona"] == 0.8
    with pytest.raises(KeyError):
        load_ceilings(world, "dev")
    # top-level keys; percentages are read as such
    assert load_ceilings({"ceiling_persona": 80, "ceiling_blind": 40.0}) == {
        "ceiling_persona": 0.8, "ceiling_blind": 0.4}
    # one split only, no blind ceiling
    assert load_ceilings({"ceilings": {"val": {"ceiling_persona": 0.5}}}) == {
        "ceiling_persona": 0.5}
    with pytest.raises(KeyError):
        load_ceilings({"ceilings": {"a": {"ceiling_persona": 0.5}, "b": {"ceiling_persona": 0.6}}})
    with pytest.raises(KeyError):
        load_ceilings({"config": {}})
    with pytest.raises(FileNotFoundError):
        load_ceilings(tmp_path / "nowhere")


def test_ceiling_comparison() -> None:
    # EM 0.5, persona ceiling 0.8, blind 0.4: 0.5/0.8 = 0.625; 0.5/0.4 = 1.25;
    # headroom (0.5-0.4)/(0.8-0.4) = 0.25.
    c = ceiling_comparison(0.5, {"ceiling_persona": 0.8, "ceiling_blind": 0.4})
    assert c["fraction_of_ceiling"] == pytest.approx(0.625)
    assert c["fraction_of_blind"] == pytest.approx(1.25)
    assert c["persona_gain_captured"] == pytest.approx(0.25)
    fid = fidelity(prepare_rows(fixture_rows()), {"ceiling_persona": 0.8})
    assert fid.ceilings is not None
    assert fid.ceilings["fraction_of_ceiling"] == pytest.approx(0.625)  # EM of fixture = 1/2
    assert fid.ceilings["persona_gain_captured"] is None
