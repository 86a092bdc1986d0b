"""Score checkpoints and the baseline on whole test sessions: the demo's evaluation steps.

Each scorer writes ``preds.jsonl`` and ``run.json`` into its own folder (what the report and the
motive breakdown read) and returns the metrics' headline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Scoreboard:
    """The table's rows in order, each with its E[exact] under the world's policy, and the run
    folders the report and the motive breakdown read."""

    def __init__(self, policy: dict[str, Any], say: Callable[[str], Any] = print) -> None:
        self.policy, self.say = policy, say
        self.rows: list[dict[str, Any]] = []
        self.run_dirs: list[Path] = []
        #: How often the ceilings' own choices matched the actions the world drew here.
        self.realised: dict[str, Any] = {}

    def add(self, name: str, source: str, metrics: dict[str, Any], mode: str, run_dir: Path) -> None:
        from customer_r1.evaluation.metrics import load_preds
        from customer_r1.evaluation.motives import expected_match

        self.run_dirs.append(run_dir)
        expected = expected_match(load_preds(run_dir / "preds.jsonl"), self.policy.values())
        metrics = {**metrics, "expected_exact_match": expected.pop("expected_exact_match")}
        self.realised.update(expected)
        self.rows.append({"name": name, "source": source, "mode": mode, **metrics})
        em = metrics.get("exact_match")
        self.say(f"  {name} [{mode}]: exact match {em:.3f}" if em is not None else f"  {name}")


def eval_rows(built: Path, sessions: int | None) -> list[dict[str, Any]]:
    """The scored test steps: whole sessions, the first ``sessions`` of the test split."""
    from customer_r1.data.examples import read_examples

    rows = read_examples(built, "test")
    if sessions is None:
        return rows
    keep: list[str] = []
    for r in rows:
        if r["session_id"] not in keep:
            keep.append(r["session_id"])
    chosen = set(keep[:sessions])
    return [r for r in rows if r["session_id"] in chosen]


def subset_ceilings(policy: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Both ceilings over exactly the scored steps (from the world's per-step policy)."""
    from customer_r1.world import ceilings_from_policy

    return ceilings_from_policy([policy[r["action_id"]] for r in rows])


def score_model(
    model_dir: Path, rows: list[dict[str, Any]], out: Path, label: str, mode: str,
    rationale_samples: int = 0,
    rationale_temperature: float = 1.0,
) -> dict[str, Any]:
    from customer_r1.evaluation.metrics import score_predictions
    from customer_r1.evaluation.predict import run_predict

    out.mkdir(parents=True, exist_ok=True)
    preds = out / "preds.jsonl"
    # Never resume here: the model may have been retrained since these were written.
    preds.unlink(missing_ok=True)
    kw: dict[str, Any] = {"mode": mode, "progress": True}
    if mode == "free":
        kw.update(max_new_tokens=96, batch_size=16)
    if rationale_samples:
        kw.update(ranker_kwargs={"rationale_samples": rationale_samples,
                                 "temperature": rationale_temperature})
    run_predict(str(model_dir), rows, preds, **kw)
    run = {"label": label, "model": str(model_dir), "mode": mode, "rationale_samples": rationale_samples}
    if rationale_samples:
        run["rationale_temperature"] = rationale_temperature
    (out / "run.json").write_text(json.dumps(run))
    return score_predictions(preds).headline()


def score_baseline(train_rows: list[dict[str, Any]], rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    from customer_r1.evaluation.baselines import PageKindBaseline
    from customer_r1.evaluation.metrics import score_predictions
    from customer_r1.evaluation.predict import append_jsonl, pred_row

    base = PageKindBaseline().fit(train_rows)
    out.mkdir(parents=True, exist_ok=True)
    preds = out / "preds.jsonl"
    with preds.open("w", encoding="utf-8") as fh:
        append_jsonl(fh, [pred_row(r, completion=base.completion(r), mode="baseline") for r in rows])
    (out / "run.json").write_text(json.dumps({"label": "baseline: " + base.name}))
    return score_predictions(preds).headline()


def write_motives(policy: dict[str, Any], run_dirs: list[Path], out: Path,
                  say: Callable[[str], Any] = print) -> None:
    """Every run's correct steps per motive of the world's policy (``evaluation/motives.py``)."""
    from customer_r1.evaluation.motives import write_motive_report

    files = {}
    for d in run_dirs:
        run = json.loads((d / "run.json").read_text()) if (d / "run.json").exists() else {}
        files[run.get("label", d.name)] = d / "preds.jsonl"
    write_motive_report(files, policy.values(), out)
    say(f"correct steps per motive of the world's policy: {out}")
