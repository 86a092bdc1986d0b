"""Where a model loses against the synthetic world's best choices, decision by decision.

Every step of the synthetic world records the motive its policy drew (``reviews``,
``sort_price``, ``next_unseen``, ...; see ``world/policy.py``). Grouping a run's exact
matches by motive, beside how often the Bayes-optimal and the persona-blind optimal
choices were right on the same steps, shows which decisions a model has not learned:
a motive where the model is far below the blind choice is one it fails even without
the persona; one where only the Bayes choice is right is where the persona matters.
Only for the synthetic world (real data has no motives).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from customer_r1.actions import Action, exact_match
from customer_r1.errors import BadFile
from customer_r1.evaluation.metrics import gold_action, load_preds, predicted_action
from customer_r1.evaluation.report import _md_table
from customer_r1.world.export import PolicyRow


@dataclass(frozen=True, slots=True)
class MotiveRow:
    """Correct predictions on the steps of one motive: the model's, Bayes's and the blind choice's."""

    motive: str
    steps: int
    model: int
    bayes: int
    blind: int


def _policy_rows(
    preds: Iterable[Mapping[str, Any]], policy: Iterable[PolicyRow]
) -> Iterable[tuple[Mapping[str, Any], PolicyRow]]:
    """Each prediction with the sidecar row of its step (by session and step index).

    A prediction for a step the sidecar lacks is an error, not a silent drop.
    """
    steps = {(r.session_id, r.step_index): r for r in policy}
    for p in preds:
        key = (p["session_id"], int(p["step_index"]))
        if key not in steps:
            raise BadFile(
                f"prediction for {p.get('example_id', key)!r}: session {key[0]!r} step {key[1]} "
                "is not in the world's policy sidecar", hint="wrong world or --split?"
            )
        yield p, steps[key]


def expected_match(preds: Iterable[Mapping[str, Any]], policy: Iterable[PolicyRow]) -> dict[str, Any]:
    """Exact match in expectation over the world's policy, beside the ceilings' choices realised.

    The ceilings are expectations (the probability the world gives the Bayes or blind
    choice, averaged over the steps), while a run's exact match counts the one action the
    world drew. ``expected_exact_match`` (the probability the world gives each predicted
    action, averaged) compares a run with the ceilings without that draw's noise (about
    ±3.6 points at 177 steps). ``bayes_choice_exact`` / ``blind_choice_exact``: how often
    the ceilings' own choices matched the drawn actions on these steps.
    """
    probs, bayes, blind = [], [], []
    for p, row in _policy_rows(preds, policy):
        actions = [Action.from_json(a) for a in row.actions]
        probs.append(_step_expected(p, row, actions))
        gold = gold_action(p)
        bayes.append(exact_match(actions[int(np.argmax(row.probs))], gold))
        blind.append(exact_match(actions[int(np.argmax(row.blind_probs))], gold))
    if not probs:
        return {"expected_exact_match": None, "bayes_choice_exact": None, "blind_choice_exact": None}
    return {
        "expected_exact_match": float(np.mean(probs)),
        "bayes_choice_exact": float(np.mean(bayes)),
        "blind_choice_exact": float(np.mean(blind)),
    }


def _step_expected(p: Mapping[str, Any], row: PolicyRow, actions: list[Action]) -> float:
    """The probability the world gives the predicted action at this step."""
    pred = predicted_action(p)
    return sum(float(q) for a, q in zip(actions, row.probs, strict=True) if exact_match(pred, a))


def expected_by_step(
    preds: Iterable[Mapping[str, Any]], policy: Iterable[PolicyRow]
) -> dict[tuple[str, int], float]:
    """Each step's expected exact match, keyed by (session, step): what a paired comparison of
    two runs on the same steps needs (``paired_session_bootstrap``)."""
    return {
        (row.session_id, row.step_index): _step_expected(p, row, [Action.from_json(a) for a in row.actions])
        for p, row in _policy_rows(preds, policy)
    }


def paired_session_bootstrap(
    a: Mapping[tuple[str, int], float], b: Mapping[tuple[str, int], float],
    resamples: int = 10_000, seed: int = 0,
) -> dict[str, float]:
    """Mean per-step difference a - b on the steps both scored, with a 95 % interval that
    resamples whole sessions (steps of one session are not independent draws).

    Why: two checkpoints scored on the same 177 steps differ by a few points, and whether
    that is the model or the steps drawn decides "kept the control skill" or "lost it".
    """
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two runs share no scored steps")
    sessions = sorted({s for s, _ in shared})
    index = {s: i for i, s in enumerate(sessions)}
    diff = np.zeros(len(sessions))
    count = np.zeros(len(sessions))
    for key in shared:
        diff[index[key[0]]] += a[key] - b[key]
        count[index[key[0]]] += 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sessions), size=(resamples, len(sessions)))
    means = diff[draws].sum(axis=1) / count[draws].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"delta": float(diff.sum() / count.sum()), "low": float(lo), "high": float(hi),
            "steps": len(shared), "sessions": len(sessions)}


def motive_breakdown(preds: Iterable[Mapping[str, Any]], policy: Iterable[PolicyRow]) -> list[MotiveRow]:
    """Counts per motive (the motive's kind, without its argument), most steps lost first.

    Predictions are matched to the world's policy sidecar (``load_policy``) by session and
    step; a prediction for a step the sidecar lacks is an error, not a silent drop.
    """
    counts: dict[str, list[int]] = {}
    for p, row in _policy_rows(preds, policy):
        gold = gold_action(p)
        bayes = Action.from_json(row.actions[int(np.argmax(row.probs))])
        blind = Action.from_json(row.actions[int(np.argmax(row.blind_probs))])
        c = counts.setdefault(row.motive.split(":", 1)[0], [0, 0, 0, 0])
        c[0] += 1
        c[1] += exact_match(predicted_action(p), gold)
        c[2] += exact_match(bayes, gold)
        c[3] += exact_match(blind, gold)
    rows = [MotiveRow(m, *c) for m, c in counts.items()]
    return sorted(rows, key=lambda r: (r.model - r.bayes, -r.steps, r.motive))


def motive_markdown(runs: Mapping[str, list[MotiveRow]]) -> str:
    """One table: a column per run (correct steps), then the Bayes and blind choices'."""
    labels = list(runs)
    first = next(iter(runs.values()), [])
    order = [r.motive for r in first]
    by_run = {label: {r.motive: r for r in rows} for label, rows in runs.items()}
    for rows in runs.values():
        order += [r.motive for r in rows if r.motive not in order]
    head = ["motive", "steps", *labels, "Bayes choice", "blind choice"]
    body = []
    for m in order:
        ref = next(by_run[label][m] for label in labels if m in by_run[label])
        cells = [str(by_run[label][m].model) if m in by_run[label] else "–" for label in labels]
        body.append([m, str(ref.steps), *cells, str(ref.bayes), str(ref.blind)])
    totals = [str(sum(r.model for r in runs[label])) for label in labels]
    body.append([
        "**all**",
        str(sum(r.steps for r in first)),
        *totals,
        str(sum(r.bayes for r in first)),
        str(sum(r.blind for r in first)),
    ])
    lines = _md_table(head, body)
    return "\n".join(lines) + "\n"


def breakdowns(pred_files: Mapping[str, Path], policy: Iterable[PolicyRow]) -> dict[str, list[MotiveRow]]:
    """The breakdown of each run's predictions (label -> preds.jsonl)."""
    policy = list(policy)
    return {label: motive_breakdown(load_preds(path), policy) for label, path in pred_files.items()}


def write_motive_report(pred_files: Mapping[str, Path], policy: Iterable[PolicyRow], out: Path) -> Path:
    """``motives.md``: the breakdowns of several runs in one table, with an explanation."""
    out.parent.mkdir(parents=True, exist_ok=True)
    intro = (
        "# Correct steps per motive of the world's policy\n\n"
        "Each run's exact matches grouped by the motive the world drew at that step, beside how "
        "often the Bayes-optimal and the persona-blind optimal choices were right on the same "
        "steps. Rows where a run loses most against the Bayes choice come first.\n\n"
    )
    out.write_text(intro + motive_markdown(breakdowns(pred_files, policy)))
    return out
