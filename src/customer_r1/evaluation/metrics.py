"""The paper's metrics over a ``preds.jsonl`` file.

All metrics are fractions in [0, 1] here (reports print percentages, as the paper does).
The rules that the paper leaves open are fixed below and repeated in every report:

* **Unparsable prediction** (``action_json`` null or invalid): wrong for exact match;
  for action-type metrics it is the sentinel label :data:`INVALID`. sklearn is always
  given ``labels=`` the real classes, so the sentinel adds no class to an average but
  still costs the true class its recall (a false negative). It also counts against
  format validity.
* **Click type**: scored on steps whose true action is a click. The predicted click
  type is ``lookup(predicted name)`` when the prediction is a click; any other
  prediction (input, terminate, unparsable) is the sentinel :data:`NOT_CLICK`, which
  again is a miss for the true class without being a class of the weighted average.
  The lookup is the build's ``click_type_lookup`` (``build.json``) with the gold
  (name, click type) pairs of the preds file laid over it, so a predicted name that
  equals a gold name always gets that gold type (an exactly right click can never
  score a wrong click type); unseen names fall back to the suffix rule, then ``other``.
* **Session outcome**: true = the session's ``session_outcome``; predicted =
  ``purchase`` if the prediction at the session's last step (``is_last_step``) is a
  click whose click type is ``purchase``, else ``terminate`` (an unparsable last
  prediction is ``terminate``). Sessions whose last step is not in the file are
  skipped and counted. ``outcome_f1`` is the weighted F1 over the two classes (OPeRA's
  "outcome wF1"); macro F1 and the purchase-class F1 are reported beside it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from customer_r1.actions import (
    ACTION_TYPES,
    CLICK_TYPES,
    Action,
    ClickTypeLookup,
    ParseError,
    exact_match,
    try_parse,
)
from customer_r1.errors import BadFile, MissingFile

#: Predicted action-type label of an unparsable prediction (never a real class).
INVALID = "invalid"
#: Predicted click-type label of a prediction that is not a click (never a real class).
NOT_CLICK = "not_click"
#: The two session outcomes, in the order used for confusion matrices.
OUTCOMES: tuple[str, ...] = ("purchase", "terminate")

OUTCOME_RULE = (
    "Session outcome: true = the session's `session_outcome`; predicted = `purchase` "
    "if the prediction at the session's last step (`is_last_step`) is a click whose "
    "click type is `purchase`, else `terminate` (an unparsable last prediction counts "
    "as `terminate`). Sessions whose last step is missing from the preds are skipped. "
    "Outcome F1 is the weighted F1 over purchase/terminate."
)
UNPARSABLE_RULE = (
    "Unparsable predictions are wrong for exact match, count against format validity, "
    "and are labelled `invalid` for action-type metrics: sklearn gets "
    "labels=[click, input, terminate], so `invalid` adds no class to the averages but "
    "is a false negative for the true class."
)
CLICK_TYPE_RULE = (
    "Click-type weighted F1 is over steps whose true action is a click. A predicted "
    "click's type is looked up from its element name (build.json's click_type_lookup, "
    "with the gold name->type pairs of the preds laid over it; unseen names use the "
    "name's last dotted part, then `other`). A non-click or unparsable prediction is "
    "`not_click`: a miss for the true type, not a class of the average."
)
RULES: dict[str, str] = {
    "unparsable": UNPARSABLE_RULE,
    "click_type": CLICK_TYPE_RULE,
    "outcome": OUTCOME_RULE,
}


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One preds row reduced to what the metrics need; built once, shared by all modules."""

    example_id: str
    session_id: str
    user_id: str
    step_index: int
    is_last_step: bool
    gold: Action
    pred: Action | None
    true_type: str
    pred_type: str  # one of ACTION_TYPES or INVALID
    true_click_type: str | None  # set iff the gold action is a click
    pred_click_type: str | None  # set iff the prediction is a click
    correct: bool
    session_outcome: str
    mode: str | None = None
    candidate_probs: dict[str, float] | None = None
    split: str | None = None


@dataclass(slots=True)
class Scores:
    """Every number `eval score` prints. Fractions in [0, 1]; None where undefined."""

    n_examples: int
    modes: list[str]
    exact_match: float
    format_validity: float
    type_accuracy: float
    type_macro_f1: float
    type_weighted_f1: float
    n_click_steps: int
    click_type_accuracy: float | None
    click_type_weighted_f1: float | None
    click_type_macro_f1: float | None
    n_sessions: int
    n_sessions_without_last_step: int
    outcome_accuracy: float | None
    outcome_f1: float | None
    outcome_macro_f1: float | None
    outcome_f1_purchase: float | None
    exact_match_by_type: dict[str, dict[str, float | int | None]]
    confusion: dict[str, dict[str, Any]]
    ranked: dict[str, float | int] | None = None
    rules: dict[str, str] = field(default_factory=lambda: dict(RULES))

    def headline(self) -> dict[str, float | None]:
        """The four numbers the paper's tables report, plus type accuracy and validity."""
        return {
            "exact_match": self.exact_match,
            "type_accuracy": self.type_accuracy,
            "type_macro_f1": self.type_macro_f1,
            "type_weighted_f1": self.type_weighted_f1,
            "click_type_weighted_f1": self.click_type_weighted_f1,
            "outcome_accuracy": self.outcome_accuracy,
            "outcome_f1": self.outcome_f1,
            "format_validity": self.format_validity,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- loading


def load_preds(path: str | Path) -> list[dict[str, Any]]:
    """Read a preds.jsonl file (blank lines skipped); a bad line names its line number
    (:class:`~customer_r1.errors.BadFile`, also a ``ValueError``)."""
    rows: list[dict[str, Any]] = []
    p = Path(path)
    if not p.is_file():
        raise MissingFile(f"no preds file {p}", hint="write one with `customer-r1 eval predict`")
    with p.open(encoding="utf-8", errors="replace") as fh:
        lines = fh.readlines()
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            torn = lineno == last and not line.endswith("\n")
            hint = ("a torn last line is what a killed `eval predict` leaves: re-run it to repair the file"
                    if torn else "the file was cut or edited; regenerate it with `eval predict`")
            raise BadFile(f"{path}:{lineno}: not valid JSON ({exc.msg})", hint=hint) from exc
        if not isinstance(obj, dict):
            raise BadFile(f"{path}:{lineno}: expected a JSON object")
        rows.append(obj)
    return rows


def _action_or_none(value: Any) -> Action | None:
    """Decode an action given as canonical JSON text or as an object; None if invalid."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if isinstance(value, str):
            return Action.from_json(value)
        return Action.from_dict(value)
    except (ParseError, ValueError):
        return None


def predicted_action(row: Mapping[str, Any]) -> Action | None:
    """The row's predicted action. The predictor's ``action_json`` is authoritative;
    only when that key is absent altogether is ``completion`` parsed here."""
    if "action_json" in row:
        return _action_or_none(row["action_json"])
    if "completion" in row:
        pred, _ = try_parse(row["completion"], require_rationale=row.get("require_rationale", True))
        return pred.action if pred else None
    return None


def gold_action(row: Mapping[str, Any]) -> Action:
    """The row's true action; a row without one is a broken file, not a wrong prediction."""
    gold = _action_or_none(row.get("action_json_true"))
    if gold is None:
        raise BadFile(f"row {row.get('example_id')!r} has no valid action_json_true",
                      hint="is this a preds.jsonl written by `customer-r1 eval predict`?")
    return gold


def lookup_from_rows(rows: Iterable[Mapping[str, Any]]) -> ClickTypeLookup:
    """A click-type lookup from the gold (name, click type) pairs of preds rows."""
    pairs: list[tuple[str, str]] = []
    for row in rows:
        gold = _action_or_none(row.get("action_json_true"))
        ct = row.get("click_type")
        if gold is not None and gold.type == "click" and gold.name and isinstance(ct, str):
            pairs.append((gold.name, ct))
    return ClickTypeLookup.from_pairs(pairs)


def load_click_type_lookup(path: str | Path) -> ClickTypeLookup:
    """Read a lookup from ``build.json`` (key ``click_type_lookup``), from the built
    directory holding it, or from a bare ``{"exact": ..., "by_suffix": ...}`` file."""
    from customer_r1.io import read_json

    p = Path(path)
    if p.is_dir():
        p = p / "build.json"
    data = read_json(p)
    if isinstance(data, dict) and isinstance(data.get("click_type_lookup"), dict):
        return ClickTypeLookup.from_dict(data["click_type_lookup"])
    if isinstance(data, dict) and ("exact" in data or "by_suffix" in data):
        return ClickTypeLookup.from_dict(data)
    raise BadFile(f"{p}: no click_type_lookup found", hint="pass the build.json of `customer-r1 data build`")


def merged_lookup(
    rows: Sequence[Mapping[str, Any]], base: ClickTypeLookup | None = None
) -> ClickTypeLookup:
    """``base`` with the preds' gold pairs laid over its exact names (see module doc).

    Gold pairs win for exact names so a name equal to the gold one gets the gold type;
    the base's suffix table wins (it saw more data), the gold suffixes fill the gaps.
    """
    gold = lookup_from_rows(rows)
    if base is None:
        return gold
    return ClickTypeLookup(
        {**base.exact, **gold.exact}, {**gold.by_suffix, **base.by_suffix}
    )


def prepare_rows(
    rows: Sequence[Mapping[str, Any]], lookup: ClickTypeLookup | None = None
) -> list[ScoredRow]:
    """Decode every preds row once; ``lookup`` is merged with the rows' gold pairs."""
    lk = merged_lookup(rows, lookup)
    out: list[ScoredRow] = []
    for i, row in enumerate(rows):
        gold = gold_action(row)
        pred = predicted_action(row)
        true_ct: str | None = None
        if gold.type == "click":
            ct = row.get("click_type")
            true_ct = ct if isinstance(ct, str) and ct else lk(gold.name)
        pred_ct = lk(pred.name) if pred is not None and pred.type == "click" else None
        outcome = row.get("session_outcome")
        if outcome not in OUTCOMES:
            outcome = "purchase" if true_ct == "purchase" else "terminate"
        probs = row.get("candidate_probs")
        out.append(
            ScoredRow(
                example_id=str(row.get("example_id", i)),
                session_id=str(row.get("session_id", "")),
                user_id=str(row.get("user_id") or "unknown"),
                step_index=int(row.get("step_index") or 0),
                is_last_step=bool(row.get("is_last_step", False)),
                gold=gold,
                pred=pred,
                true_type=gold.type,
                pred_type=pred.type if pred is not None else INVALID,
                true_click_type=true_ct,
                pred_click_type=pred_ct,
                correct=exact_match(pred, gold),
                session_outcome=str(outcome),
                mode=row.get("mode"),
                candidate_probs=dict(probs) if isinstance(probs, dict) else None,
                split=row.get("split"),
            )
        )
    return out


# ---------------------------------------------------------------------------- metrics


def _present(labels: Sequence[str], *columns: Sequence[str]) -> list[str]:
    """The real classes that occur in any column, in canonical order.

    Matches sklearn's default (union of y_true and y_pred) minus the sentinels, so a
    class nobody has nor predicts is not averaged in as a spurious zero.
    """
    seen = set().union(*map(set, columns))
    return [lab for lab in labels if lab in seen]


def _f1(y_true: Sequence[str], y_pred: Sequence[str], labels: list[str], average: str) -> float:
    return float(f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0))


def _confusion(
    y_true: Sequence[str], y_pred: Sequence[str], rows: list[str], cols: list[str]
) -> dict[str, Any]:
    """Confusion matrix, rows = true labels, columns = predicted labels (incl. sentinels)."""
    allowed = list(dict.fromkeys(rows + cols))
    m = confusion_matrix(y_true, y_pred, labels=allowed) if len(y_true) else np.zeros(
        (len(allowed), len(allowed)), dtype=int
    )
    idx_r = [allowed.index(r) for r in rows]
    idx_c = [allowed.index(c) for c in cols]
    sub = m[np.ix_(idx_r, idx_c)]
    return {"true_labels": rows, "pred_labels": cols, "matrix": sub.astype(int).tolist()}


def type_metrics(rows: Sequence[ScoredRow]) -> dict[str, Any]:
    """Action-type accuracy, macro-F1 and weighted-F1 over click/input/terminate."""
    y_true = [r.true_type for r in rows]
    y_pred = [r.pred_type for r in rows]
    labels = _present(ACTION_TYPES, y_true, y_pred)
    return {
        "type_accuracy": float(accuracy_score(y_true, y_pred)),
        "type_macro_f1": _f1(y_true, y_pred, labels, "macro"),
        "type_weighted_f1": _f1(y_true, y_pred, labels, "weighted"),
        "confusion": _confusion(y_true, y_pred, list(ACTION_TYPES), [*ACTION_TYPES, INVALID]),
    }


def click_type_metrics(rows: Sequence[ScoredRow]) -> dict[str, Any]:
    """Click-type accuracy and F1 (weighted, macro) over steps whose true action is a click."""
    clicks = [r for r in rows if r.true_click_type is not None]
    y_true = [str(r.true_click_type) for r in clicks]
    y_pred = [r.pred_click_type or NOT_CLICK for r in clicks]
    labels = _present(CLICK_TYPES, y_true, y_pred)
    conf = _confusion(y_true, y_pred, list(CLICK_TYPES), [*CLICK_TYPES, NOT_CLICK])
    if not clicks:
        return {"n": 0, "accuracy": None, "weighted_f1": None, "macro_f1": None, "confusion": conf}
    return {
        "n": len(clicks),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": _f1(y_true, y_pred, labels, "weighted"),
        "macro_f1": _f1(y_true, y_pred, labels, "macro"),
        "confusion": conf,
    }


def session_outcomes(rows: Sequence[ScoredRow]) -> tuple[list[str], list[str], list[str], int]:
    """(session ids, true outcomes, predicted outcomes, sessions skipped) by the outcome rule."""
    sessions: dict[str, list[ScoredRow]] = {}
    for r in rows:
        sessions.setdefault(r.session_id, []).append(r)
    ids: list[str] = []
    y_true: list[str] = []
    y_pred: list[str] = []
    skipped = 0
    for sid, srows in sessions.items():
        last = [r for r in srows if r.is_last_step]
        if not last:
            skipped += 1
            continue
        final = max(last, key=lambda r: r.step_index)
        ids.append(sid)
        y_true.append(final.session_outcome)
        y_pred.append("purchase" if final.pred_click_type == "purchase" else "terminate")
    return ids, y_true, y_pred, skipped


def outcome_metrics(rows: Sequence[ScoredRow]) -> dict[str, Any]:
    """Session outcome accuracy and F1 (weighted, macro, purchase class); see OUTCOME_RULE."""
    ids, y_true, y_pred, skipped = session_outcomes(rows)
    conf = _confusion(y_true, y_pred, list(OUTCOMES), list(OUTCOMES))
    base: dict[str, Any] = {"n_sessions": len(ids), "skipped": skipped, "confusion": conf}
    if not ids:
        return {**base, "accuracy": None, "weighted_f1": None, "macro_f1": None,
                "purchase_f1": None}
    labels = _present(OUTCOMES, y_true, y_pred)
    purchase_f1 = float(
        f1_score(y_true, y_pred, labels=["purchase"], average="macro", zero_division=0)
    )
    return {
        **base,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": _f1(y_true, y_pred, labels, "weighted"),
        "macro_f1": _f1(y_true, y_pred, labels, "macro"),
        "purchase_f1": purchase_f1,
    }


def exact_match_by_type(rows: Sequence[ScoredRow]) -> dict[str, dict[str, float | int | None]]:
    """Exact match within each true action type (None where the type has no steps)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for t in ACTION_TYPES:
        sel = [r.correct for r in rows if r.true_type == t]
        out[t] = {"n": len(sel), "exact_match": float(np.mean(sel)) if sel else None}
    return out


def ranked_metrics(rows: Sequence[ScoredRow]) -> dict[str, float | int] | None:
    """For ranked-mode rows: probability mass on the gold action and how often it was a
    candidate at all (a ranker cannot pick an action it was never offered)."""
    with_probs = [r for r in rows if r.candidate_probs]
    if not with_probs:
        return None
    masses: list[float] = []
    offered = 0
    for r in with_probs:
        assert r.candidate_probs is not None
        mass = 0.0
        hit = False
        for key, p in r.candidate_probs.items():
            if exact_match(_action_or_none(key), r.gold):
                mass += float(p)
                hit = True
        masses.append(mass)
        offered += hit
    return {
        "n": len(with_probs),
        "gold_prob_mean": float(np.mean(masses)),
        "gold_offered_rate": offered / len(with_probs),
    }


def score_rows(rows: Sequence[ScoredRow]) -> Scores:
    """All metrics of prepared rows. Raises ValueError on an empty set (nothing to score)."""
    if not rows:
        raise ValueError("no predictions to score")
    tm = type_metrics(rows)
    cm = click_type_metrics(rows)
    om = outcome_metrics(rows)
    modes = sorted(Counter(r.mode for r in rows if r.mode))
    return Scores(
        n_examples=len(rows),
        modes=modes,
        exact_match=float(np.mean([r.correct for r in rows])),
        format_validity=float(np.mean([r.pred is not None for r in rows])),
        type_accuracy=tm["type_accuracy"],
        type_macro_f1=tm["type_macro_f1"],
        type_weighted_f1=tm["type_weighted_f1"],
        n_click_steps=cm["n"],
        click_type_accuracy=cm["accuracy"],
        click_type_weighted_f1=cm["weighted_f1"],
        click_type_macro_f1=cm["macro_f1"],
        n_sessions=om["n_sessions"],
        n_sessions_without_last_step=om["skipped"],
        outcome_accuracy=om["accuracy"],
        outcome_f1=om["weighted_f1"],
        outcome_macro_f1=om["macro_f1"],
        outcome_f1_purchase=om["purchase_f1"],
        exact_match_by_type=exact_match_by_type(rows),
        confusion={
            "action_type": tm["confusion"],
            "click_type": cm["confusion"],
            "outcome": om["confusion"],
        },
        ranked=ranked_metrics(rows),
    )


def score_predictions(
    preds: str | Path | Sequence[Mapping[str, Any]], lookup: ClickTypeLookup | None = None
) -> Scores:
    """Score a preds.jsonl path or its rows: the one-call entry point for the pipeline."""
    raw = load_preds(preds) if isinstance(preds, (str, Path)) else preds
    return score_rows(prepare_rows(raw, lookup))
