"""The ablation table: values and deltas vs the `real` run, worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customer_r1.cli.entry import new_app
from customer_r1.cli.eval_score import ablations
from customer_r1.evaluation.ablations import parse_run_options, run_ablations

GOLD = [
    ({"type": "click", "name": "a"}, "search"),
    ({"type": "click", "name": "b"}, "filter"),
    ({"type": "input", "name": "q", "text": "x"}, None),
    ({"type": "terminate"}, None),
]


def rows(preds: list[dict[str, str] | None]) -> list[dict[str, Any]]:
    """One session of one user, four steps; the session ends in terminate."""
    out = []
    for i, ((gold, ct), pred) in enumerate(zip(GOLD, preds, strict=True)):
        out.append({
            "example_id": f"S#{i}", "session_id": "S", "user_id": "u", "step_index": i,
            "is_last_step": i == 3, "action_json_true": json.dumps(gold), "click_type": ct,
            "action_json": json.dumps(pred) if pred else None, "session_outcome": "terminate",
            "mode": "free",
        })
    return out


A = {"type": "click", "name": "a"}
B = {"type": "click", "name": "b"}
# real: a, b, input q "y" (wrong text), terminate -> EM 3/4; every type, click type and
#   the outcome right -> type macro-F1 1, click wF1 1, outcome F1 1, JS 0 and 0.
REAL = rows([A, B, {"type": "input", "name": "q", "text": "y"}, {"type": "terminate"}])
# none: a, a (wrong), input q "x", click b at the last step (wrong) -> EM 2/4.
#   types  true click click input terminate / pred click click input click:
#   click P 2/3 R 1 F1 0.8; input 1; terminate 0 -> macro 0.6.
#   click types on true clicks: true search, filter / pred search, search:
#   search P 1/2 R 1 F1 2/3; filter 0 -> weighted 1/3.
#   outcome: last pred click b is `filter`, not purchase -> terminate = true -> F1 1.
#   JS type: true (2,1,1,0)/4 vs pred (3,1,0,0)/4
#     = 1 + 3/8·log2 3 - 5/8·log2 5 = 0.143156
#   JS click: true (1/2, 1/2) vs pred (2/3, 1/3) [search, filter], m = (7/12, 5/12).
NONE = rows([A, A, {"type": "input", "name": "q", "text": "x"}, B])


def js_click_none() -> float:
    kl_p = 0.5 * math.log2(0.5 / (7 / 12)) + 0.5 * math.log2(0.5 / (5 / 12))
    kl_q = (2 / 3) * math.log2((2 / 3) / (7 / 12)) + (1 / 3) * math.log2((1 / 3) / (5 / 12))
    return 0.5 * (kl_p + kl_q)


JS_TYPE_NONE = 1 + 0.375 * math.log2(3) - 0.625 * math.log2(5)


def test_values_and_deltas(tmp_path: Path) -> None:
    shuffled_dir = tmp_path / "shuffled"
    shuffled_dir.mkdir()
    (shuffled_dir / "preds.jsonl").write_text("\n".join(json.dumps(r) for r in NONE) + "\n")
    table = run_ablations(
        {"real": REAL, "none": NONE, "shuffled": shuffled_dir, "no_rationale": lambda: REAL},
        out_dir=tmp_path / "out",
    )
    assert list(table.runs) == ["real", "none", "shuffled", "no_rationale"]
    real, none = table.values["real"], table.values["none"]
    assert real == pytest.approx({
        "exact_match": 0.75, "type_macro_f1": 1.0, "click_type_weighted_f1": 1.0,
        "outcome_f1": 1.0, "mean_js_action_type": 0.0, "mean_js_click_type": 0.0})
    assert none["exact_match"] == pytest.approx(0.5)
    assert none["type_macro_f1"] == pytest.approx(0.6)
    assert none["click_type_weighted_f1"] == pytest.approx(1 / 3)
    assert none["mean_js_action_type"] == pytest.approx(JS_TYPE_NONE)
    assert round(JS_TYPE_NONE, 6) == 0.143156
    assert none["mean_js_click_type"] == pytest.approx(js_click_none())
    d = table.deltas["none"]
    assert d["exact_match"] == pytest.approx(-0.25)
    assert d["type_macro_f1"] == pytest.approx(-0.4)
    assert d["click_type_weighted_f1"] == pytest.approx(-2 / 3)
    assert d["outcome_f1"] == pytest.approx(0.0)
    assert d["mean_js_action_type"] == pytest.approx(JS_TYPE_NONE)
    assert table.deltas["shuffled"] == pytest.approx(d)  # same preds, read from a folder
    assert all(v == pytest.approx(0.0) for v in table.deltas["no_rationale"].values())

    md = table.to_markdown()
    none_line = next(line for line in md.splitlines() if line.startswith("| none "))
    assert "50.00 (-25.00)" in none_line
    assert "60.00 (-40.00)" in none_line
    assert "33.33 (-66.67)" in none_line
    assert "100.00 (+0.00)" in none_line
    assert "0.143 (+0.143)" in none_line
    assert none_line.endswith("| 37.80 |")  # the paper's w/o-persona exact match
    assert "| no_rationale | persona real, rationale off |" in md

    saved = json.loads((tmp_path / "out" / "ablations.json").read_text())
    assert saved["baseline"] == "real"
    assert [r["name"] for r in saved["runs"]] == list(table.runs)
    assert saved["runs"][1]["deltas"]["exact_match"] == pytest.approx(-0.25)
    assert (tmp_path / "out" / "ablations.md").read_text() == md


def test_no_baseline_means_no_deltas() -> None:
    table = run_ablations({"none": NONE, "other": REAL})
    assert table.baseline is None
    assert all(v is None for v in table.deltas["none"].values())
    assert "No baseline" in table.to_markdown()
    table = run_ablations({"none": NONE, "other": REAL}, baseline="none")
    assert table.deltas["other"]["exact_match"] == pytest.approx(0.25)


def test_parse_run_options() -> None:
    assert parse_run_options(["real=a/p.jsonl", " none = b "]) == {
        "real": "a/p.jsonl", "none": "b"}
    for bad in (["real"], ["=x"], ["real="], ["a=1", "a=2"]):
        with pytest.raises(ValueError):
            parse_run_options(bad)
    with pytest.raises(ValueError):
        run_ablations({})


def test_ablations_cli(tmp_path: Path) -> None:
    paths = {}
    for name, data in (("real", REAL), ("none", NONE)):
        p = tmp_path / f"{name}.jsonl"
        p.write_text("\n".join(json.dumps(r) for r in data) + "\n")
        paths[name] = p
    app = new_app()  # the CLI's own group: user errors are one line, exit 2
    app.command()(ablations)
    app.command(name="noop")(lambda: None)
    runner = CliRunner()
    args = ["ablations", "--run", f"real={paths['real']}", "--run", f"none={paths['none']}"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "abl")])
    assert res.exit_code == 0, res.output
    assert "50.00 (-25.00)" in res.output
    assert (tmp_path / "abl" / "ablations.md").stat().st_size > 0
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["runs"][1]["deltas"]["exact_match"] == pytest.approx(-0.25)
    res = runner.invoke(app, ["ablations", "--run", "real"])
    assert res.exit_code == 2
