"""The report folder: markdown beside the paper's numbers, JSON, and non-empty PNGs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customer_r1.cli.entry import new_app
from customer_r1.cli.eval_score import report
from customer_r1.evaluation.fidelity import UserFidelity
from customer_r1.evaluation.metrics import OUTCOME_RULE
from customer_r1.evaluation.report import (
    fmt,
    plot_confusion,
    plot_user_distributions,
    plot_user_js,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows(preds: Sequence[dict[str, str] | None],
          gold: Sequence[tuple[dict[str, str], str | None]], user: str = "u") -> list[dict[str, Any]]:
    outcome = "purchase" if gold[-1][1] == "purchase" else "terminate"
    return [
        {"example_id": f"S#{i}", "session_id": "S", "user_id": user, "step_index": i,
         "is_last_step": i == len(gold) - 1, "action_json_true": json.dumps(g), "click_type": ct,
         "action_json": json.dumps(p) if p else None, "session_outcome": outcome, "mode": "free"}
        for i, ((g, ct), p) in enumerate(zip(gold, preds, strict=True))
    ]


SEARCH = {"type": "click", "name": "nav.search"}
CART = {"type": "click", "name": "buybox.add_to_cart"}
TERM = {"type": "terminate"}
GOLD = [(SEARCH, "search"), (CART, "purchase")]


def _run(root: Path, name: str, rows: list[dict[str, Any]], label: str | None = None) -> Path:
    d = root / name
    d.mkdir()
    (d / "preds.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if label:
        (d / "run.json").write_text(json.dumps({"label": label}))
    return d


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    # sft: search right, add_to_cart missed (terminate) -> EM 1/2; outcome purchase vs
    #      terminate -> wrong.  rl: both right -> EM 1.
    # broken: only terminate/input gold and every prediction unparsable (no clicks
    #      anywhere: empty click-type classes, validity 0) -> plots must still work.
    # stored: metrics.json only.
    root = tmp_path / "runs"
    root.mkdir()
    sft = _run(root, "sft", _rows([SEARCH, TERM], GOLD), label="SFT (ours)")
    rl = _run(root, "rl", _rows([SEARCH, CART], GOLD))
    broken = _run(root, "broken", _rows(
        [None, None], [({"type": "input", "name": "q", "text": "a"}, None), (TERM, None)]))
    stored = root / "stored"
    stored.mkdir()
    (stored / "metrics.json").write_text(json.dumps(
        {"headline": {}, "metrics": {"exact_match": 0.25, "type_macro_f1": 0.5}}))
    return [sft, rl, broken, stored]


def test_write_report_files(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    md_path = write_report(runs, out)
    assert md_path == out / "report.md"
    md = md_path.read_text()

    # One row per run, percentages; the stored run fills only what it has.
    assert "| SFT (ours) | this project | 50.00 |" in md
    assert "| rl | this project | 100.00 | 100.00 | 100.00 | 100.00 |" in md
    assert "| broken | this project | 0.00 |" in md
    assert "| stored | this project | 25.00 | 50.00 | – |" in md
    # The paper's rows beside them, missing cells as "–".
    assert "| Customer-R1 SFT | Customer-R1 paper (3P) | 35.14 | 72.66 | 56.43 | 66.29 |" in md
    assert "| Customer-R1 SFT+RL | Customer-R1 paper (3P) | 39.58 | 78.50 | – | 79.45 |" in md
    assert "| GPT-4.1 zero-shot | OPeRA paper | 21.51 | 48.78 | 44.47 | 47.54 |" in md
    # The outcome rule is written under the table.
    assert md.index(OUTCOME_RULE) > md.index("| Llama-3.3-70B zero-shot")

    data = json.loads((out / "report.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["SFT (ours)", "rl", "broken", "stored"]
    assert data["runs"][0]["headline"]["exact_match"] == pytest.approx(0.5)
    assert data["runs"][0]["headline"]["outcome_accuracy"] == 0.0
    assert data["runs"][2]["headline"]["format_validity"] == 0.0
    assert len(data["paper"]) == 9
    assert set(data["rules"]) == {"unparsable", "click_type", "outcome", "fidelity"}

    pngs = [name for run in data["plots"]["runs"] for name in run]
    assert len(pngs) == 15  # five per scored run, none for the stored-only run
    assert data["plots"]["runs"][3] == []
    for name in [*pngs, data["plots"]["summary"]]:
        blob = (out / name).read_bytes()
        assert blob.startswith(PNG_MAGIC) and len(blob) > 1000, name
        assert f"]({name})" in md
    assert (out / "SFT_ours_confusion_action_type.png").exists()  # label slugged


def test_report_with_ceilings_and_lookup(runs: list[Path], tmp_path: Path) -> None:
    world = tmp_path / "world_dir"
    (world / "world").mkdir(parents=True)
    (world / "world" / "world.json").write_text(
        json.dumps({"ceilings": {"test": {"ceiling_persona": 0.8, "ceiling_blind": 0.4}}}))
    build = tmp_path / "build.json"
    build.write_text(json.dumps({"click_type_lookup": {"exact": {}, "by_suffix": {}}}))
    write_report(runs[:2], tmp_path / "rep", ceilings=world, click_types=build)
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    # sft EM 0.5 -> 0.5 / 0.8 of the persona ceiling
    assert data["runs"][0]["headline"]["fraction_of_ceiling"] == pytest.approx(0.625)
    assert data["runs"][0]["fidelity"]["ceilings"]["persona_gain_captured"] == pytest.approx(0.25)
    assert "Bayes ceilings: persona 80.00%" in (tmp_path / "rep" / "report.md").read_text()


def _user(uid: str, *, empty: bool) -> UserFidelity:
    z4 = dict.fromkeys(("click", "input", "terminate", "invalid"), 0.0)
    at = z4 if empty else {**z4, "click": 1.0}
    return UserFidelity(uid, 1, 0.0, at, at, {}, {}, 0, 0, None, None)


def test_plots_survive_empty_inputs(tmp_path: Path) -> None:
    zeros = {"true_labels": ["a", "b"], "pred_labels": ["a", "b", "c"], "matrix": [[0] * 3] * 2}
    cases = {
        "conf.png": lambda p: plot_confusion(zeros, "all zero", p),
        "none.png": lambda p: plot_user_distributions([], "action_type", "no users", p),
        "empty.png": lambda p: plot_user_distributions(
            [_user("x", empty=True)], "action_type", "no mass", p),
        "js.png": lambda p: plot_user_js([_user("x", empty=False)], "undefined JS", p),
    }
    for name, draw in cases.items():
        draw(tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC), name


def test_fmt() -> None:
    assert fmt(0.39584) == "39.58"
    assert fmt(None) == "–"
    assert fmt(float("nan")) == "–"
    assert fmt(0.1234, percent=False) == "0.123"


def test_report_cli(runs: list[Path], tmp_path: Path) -> None:
    app = new_app()  # the CLI's own group: user errors are one line, exit 2
    app.command()(report)
    app.command(name="noop")(lambda: None)
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith("report.md")
    assert (tmp_path / "o" / "report.json").is_file()
    res = runner.invoke(app, ["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2
