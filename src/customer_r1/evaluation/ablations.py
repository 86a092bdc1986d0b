"""The persona and rationale ablations side by side, with deltas against the ``real`` run.

The paper's ablation is a change of the input only (persona real / none / shuffled;
rationale on / off), so each ablation is just another preds.jsonl scored the same way.
A run is given as a preds path, as its rows, or as a zero-argument callable returning
either (so the pipeline can build data and predict lazily, one run at a time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customer_r1.actions import ClickTypeLookup
from customer_r1.errors import BadValue
from customer_r1.evaluation.metrics import RULES
from customer_r1.evaluation.paper import ABLATION_EXACT_MATCH, CUSTOMER_R1
from customer_r1.evaluation.report import CeilingSource, RunResult, evaluate_run, fmt

PredsSource = str | Path | Sequence[Mapping[str, Any]]
RunSpec = PredsSource | Callable[[], PredsSource]

#: What each conventional run name means (unknown names are shown as given).
ABLATION_DESCRIPTIONS: dict[str, str] = {
    "real": "persona real, rationale on",
    "none": "persona none (w/o persona)",
    "shuffled": "persona shuffled (another user's)",
    "no_rationale": "persona real, rationale off",
}

#: (key, header, is a percentage) of the ablation table.
ABLATION_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("exact_match", "next action EM", True),
    ("type_macro_f1", "type macro-F1", True),
    ("click_type_weighted_f1", "click-type wF1", True),
    ("outcome_f1", "outcome F1", True),
    ("mean_js_action_type", "mean JS type", False),
    ("mean_js_click_type", "mean JS click", False),
)


@dataclass(slots=True)
class AblationTable:
    """Scored runs, the baseline's name and the per-run deltas (run − baseline)."""

    baseline: str | None
    runs: dict[str, RunResult]
    values: dict[str, dict[str, float | None]]
    deltas: dict[str, dict[str, float | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "units": "fractions in [0, 1]; JS in bits; paper_exact_match in percent",
            "columns": [k for k, _, _ in ABLATION_COLUMNS],
            "runs": [
                {
                    "name": name,
                    "description": ABLATION_DESCRIPTIONS.get(name, name),
                    "source": self.runs[name].source,
                    "n_examples": _n_examples(self.runs[name]),
                    "values": self.values[name],
                    "deltas": self.deltas[name],
                    "paper_exact_match": ABLATION_EXACT_MATCH.get(name),
                }
                for name in self.runs
            ],
            "paper_source": CUSTOMER_R1 + " (3P), SFT+RL",
            "rules": RULES,
        }

    def to_markdown(self) -> str:
        """One table: each metric with its delta vs the baseline in brackets (in points)."""
        head = ["run", "setting", *(h for _, h, _ in ABLATION_COLUMNS), "paper EM (SFT+RL)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in self.runs:
            cells = [name, ABLATION_DESCRIPTIONS.get(name, name)]
            for key, _, pct in ABLATION_COLUMNS:
                cell = fmt(self.values[name].get(key), pct)
                d = self.deltas[name].get(key)
                if d is not None and name != self.baseline:
                    cell += f" ({_signed(d, pct)})"
                cells.append(cell)
            paper = ABLATION_EXACT_MATCH.get(name)
            cells.append("–" if paper is None else f"{paper:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        note = (
            f"Percent, JS in bits (lower = closer to each user's mix). Brackets: difference "
            f"from `{self.baseline}` (percentage points for percentages)."
            if self.baseline
            else "No baseline run: no deltas."
        )
        return "\n".join([*lines, "", note, ""])


def _n_examples(r: RunResult) -> int | None:
    return r.scores.n_examples if r.scores is not None else None


def _signed(d: float, pct: bool) -> str:
    return f"{100 * d:+.2f}" if pct else f"{d:+.3f}"


def _values(r: RunResult) -> dict[str, float | None]:
    h = r.headline()
    return {k: h.get(k) for k, _, _ in ABLATION_COLUMNS}


def run_ablations(
    specs: Mapping[str, RunSpec],
    *,
    baseline: str = "real",
    lookup: ClickTypeLookup | None = None,
    ceilings: CeilingSource | None = None,
    out_dir: str | Path | None = None,
) -> AblationTable:
    """Score every named run and compute deltas against ``baseline``.

    ``specs`` maps a run name (``real``, ``none``, ``shuffled``, ``no_rationale`` or
    any other) to a preds path (or a run folder holding ``preds.jsonl``), its rows, or a
    callable returning one of those; runs keep
    the mapping's order. If ``baseline`` is not among them, there are no deltas.
    With ``out_dir``, writes ``ablations.md`` and ``ablations.json`` there.
    """
    if not specs:
        raise BadValue("no runs to compare", where="--run")
    runs: dict[str, RunResult] = {}
    for name, spec in specs.items():
        src = spec() if callable(spec) else spec
        if isinstance(src, (str, Path)) and Path(src).is_dir():
            src = Path(src) / "preds.jsonl"
        runs[name] = evaluate_run(src, label=name, lookup=lookup, ceilings=ceilings)
    values = {name: _values(r) for name, r in runs.items()}
    base = baseline if baseline in runs else None
    deltas: dict[str, dict[str, float | None]] = {}
    for name, vals in values.items():
        deltas[name] = {}
        for key, v in vals.items():
            b = values[base][key] if base else None
            deltas[name][key] = None if v is None or b is None else v - b
    table = AblationTable(base, runs, values, deltas)
    if out_dir is not None:
        from customer_r1.io import atomic_write_text

        out = Path(out_dir)
        atomic_write_text(out / "ablations.md", table.to_markdown())
        atomic_write_text(out / "ablations.json",
                          json.dumps(table.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return table


def parse_run_options(options: Sequence[str]) -> dict[str, str]:
    """``["real=a/preds.jsonl", ...]`` -> ``{"real": "a/preds.jsonl"}`` (names unique)."""
    out: dict[str, str] = {}
    for opt in options:
        name, sep, path = opt.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise BadValue(f"--run expects NAME=PATH, got {opt!r}", where="--run")
        if name in out:
            raise BadValue(f"run name {name!r} given twice", where="--run")
        out[name] = path
    return out
