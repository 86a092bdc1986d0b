"""Score runs and write one report folder: ``report.md``, ``report.json`` and PNG plots.

A run is a folder with ``preds.jsonl`` (required unless ``metrics.json`` stands in),
optionally ``metrics.json`` and ``run.json`` (``label``; ``build_json``: path of the
build whose click-type lookup to use). Metrics are always recomputed from
``preds.jsonl`` when it exists, so a report never mixes metric versions; a folder with
only ``metrics.json`` gets a table row but no plots.

Plots are drawn on ``matplotlib.figure.Figure`` (the Agg canvas) without pyplot, so
importing this module never changes the caller's backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from customer_r1.actions import ClickTypeLookup
from customer_r1.errors import BadFile, MissingFile
from customer_r1.evaluation.fidelity import (
    FIDELITY_RULE,
    Fidelity,
    UserFidelity,
    fidelity,
    load_ceilings,
)
from customer_r1.evaluation.metrics import (
    RULES,
    ScoredRow,
    Scores,
    load_click_type_lookup,
    load_preds,
    prepare_rows,
    score_rows,
)
from customer_r1.evaluation.paper import PAPER_ROWS, SOURCE_DOC, PaperRow

CeilingSource = str | Path | Mapping[str, Any]

#: Columns of the main table: (key, header, is a percentage). The first four are the paper's.
TABLE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("exact_match", "next action EM", True),
    ("type_macro_f1", "type macro-F1", True),
    ("click_type_weighted_f1", "click-type wF1", True),
    ("outcome_f1", "outcome F1", True),
    ("type_accuracy", "type acc", True),
    ("type_weighted_f1", "type wF1", True),
    ("outcome_accuracy", "outcome acc", True),
    ("format_validity", "format valid", True),
    ("mean_js_action_type", "JS type", False),
    ("mean_js_click_type", "JS click", False),
)
DASH = "–"


@dataclass(slots=True)
class RunResult:
    """A scored run: metrics, fidelity and the prepared rows (for plots)."""

    label: str
    source: str
    scores: Scores | None
    fidelity: Fidelity | None
    rows: list[ScoredRow] = field(default_factory=list)
    stored_metrics: dict[str, Any] | None = None

    def headline(self) -> dict[str, float | None]:
        """Fractions (JS in [0, 1]) keyed as in :data:`TABLE_COLUMNS`."""
        if self.scores is not None:
            out: dict[str, float | None] = dict(self.scores.headline())
        else:
            m = self.stored_metrics or {}
            out = {k: m.get(k) for k, _, _ in TABLE_COLUMNS}
        if self.fidelity is not None:
            out["mean_js_action_type"] = self.fidelity.mean_js_action_type
            out["mean_js_click_type"] = self.fidelity.mean_js_click_type
            if self.fidelity.ceilings:
                out["fraction_of_ceiling"] = self.fidelity.ceilings.get("fraction_of_ceiling")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "headline": self.headline(),
            "metrics": self.scores.to_dict() if self.scores else self.stored_metrics,
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
        }


def _split_of(rows: Sequence[ScoredRow]) -> str | None:
    splits = {r.split for r in rows if r.split}
    return splits.pop() if len(splits) == 1 else None


def evaluate_run(
    preds: str | Path | Sequence[Mapping[str, Any]],
    *,
    label: str | None = None,
    lookup: ClickTypeLookup | None = None,
    ceilings: CeilingSource | None = None,
    split: str | None = None,
) -> RunResult:
    """Metrics + fidelity of one preds file (or its rows).

    ``ceilings`` (a WORLD_DIR, world.json or its content) adds the Bayes-ceiling
    comparison; the split is ``split``, else the rows' own ``split`` when they agree.
    """
    raw = load_preds(preds) if isinstance(preds, (str, Path)) else list(preds)
    if not raw and isinstance(preds, (str, Path)):
        raise BadFile(f"{preds} holds no predictions", hint="is `customer-r1 eval predict` still running?")
    rows = prepare_rows(raw, lookup)
    scores = score_rows(rows)
    ceil = None
    if ceilings is not None:
        ceil = load_ceilings(ceilings, split or _split_of(rows))
    fid = fidelity(rows, ceil, scores.exact_match)
    source = str(preds) if isinstance(preds, (str, Path)) else "<rows>"
    name = label or (Path(preds).parent.name if isinstance(preds, (str, Path)) else "run")
    return RunResult(name, source, scores, fid, rows)


def _read_json(path: Path) -> dict[str, Any] | None:
    from customer_r1.io import read_json

    if not path.is_file():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) else None


def load_run_dir(
    run_dir: str | Path,
    *,
    lookup: ClickTypeLookup | None = None,
    ceilings: CeilingSource | None = None,
) -> RunResult:
    """Score one RUN_DIR (see module doc for what it may hold), or a preds.jsonl file."""
    d = Path(run_dir)
    if d.is_file():
        return evaluate_run(d, label=d.parent.name, lookup=lookup, ceilings=ceilings)
    meta = _read_json(d / "run.json") or {}
    label = str(meta.get("label") or d.name)
    if lookup is None:
        for cand in (meta.get("build_json"), d / "build.json"):
            if cand and Path(cand).exists():
                lookup = load_click_type_lookup(cand)
                break
    preds = d / "preds.jsonl"
    if preds.is_file():
        return evaluate_run(preds, label=label, lookup=lookup, ceilings=ceilings)
    stored = _read_json(d / "metrics.json")
    if stored is None:
        raise MissingFile(f"{d}: neither preds.jsonl nor metrics.json",
                          hint="pass a run folder of `eval predict`")
    flat = stored.get("metrics", stored)
    fid = stored.get("fidelity") or {}
    flat = {**flat, **{k: fid.get(k) for k in ("mean_js_action_type", "mean_js_click_type")}}
    return RunResult(label, str(d / "metrics.json"), None, None, [], flat)


# ---------------------------------------------------------------------------- markdown


def fmt(value: float | None, percent: bool = True) -> str:
    """A table cell: percent with 2 decimals, or a divergence with 3; "–" when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return DASH
    return f"{100 * value:.2f}" if percent else f"{value:.3f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _paper_cells(row: PaperRow) -> list[str]:
    cells = []
    for key, _, _ in TABLE_COLUMNS:
        v = getattr(row, key, None)
        cells.append(DASH if v is None else f"{v:.2f}")
    return cells


def metric_table(results: Sequence[RunResult], paper: Sequence[PaperRow] = PAPER_ROWS) -> str:
    """Our runs (one row each) above the paper's rows, same columns, percentages."""
    header = ["run", "source", *(h for _, h, _ in TABLE_COLUMNS)]
    body: list[list[str]] = []
    for r in results:
        h = r.headline()
        body.append([r.label, "this project", *(fmt(h.get(k), p) for k, _, p in TABLE_COLUMNS)])
    for p in paper:
        src = p.group + (f" {p.note}" if p.note else "")
        body.append([p.label, src, *_paper_cells(p)])
    return "\n".join(_md_table(header, body))


def _confusion_md(conf: Mapping[str, Any]) -> list[str]:
    header = ["true \\ pred", *conf["pred_labels"]]
    rows = [
        [t, *(str(v) for v in row)]
        for t, row in zip(conf["true_labels"], conf["matrix"], strict=True)
    ]
    return _md_table(header, rows)


def _run_section(r: RunResult, plots: Sequence[str]) -> list[str]:
    lines = [f"### {r.label}", "", f"Source: `{r.source}`", ""]
    s = r.scores
    if s is None:
        return [*lines, "Only stored metrics (no preds.jsonl): no details or plots.", ""]
    lines += [
        f"- examples: {s.n_examples}; mode: {', '.join(s.modes) or 'unknown'}; "
        f"format validity: {fmt(s.format_validity)}%",
        f"- click steps: {s.n_click_steps}; click-type accuracy: {fmt(s.click_type_accuracy)}%; "
        f"click-type macro-F1: {fmt(s.click_type_macro_f1)}%",
        f"- sessions scored: {s.n_sessions} (skipped, last step missing: "
        f"{s.n_sessions_without_last_step}); outcome macro-F1: {fmt(s.outcome_macro_f1)}%; "
        f"purchase F1: {fmt(s.outcome_f1_purchase)}%",
    ]
    em = ", ".join(
        f"{t} {fmt(v['exact_match'])}% (n={v['n']})" for t, v in s.exact_match_by_type.items()
    )
    lines.append(f"- exact match by true type: {em}")
    if s.ranked:
        lines.append(
            f"- ranked: mean probability on the gold action {fmt(s.ranked['gold_prob_mean'])}%, "
            f"gold among candidates {fmt(s.ranked['gold_offered_rate'])}%"
        )
    if r.fidelity and r.fidelity.ceilings:
        c = r.fidelity.ceilings
        lines.append(
            f"- Bayes ceilings: persona {fmt(c['ceiling_persona'])}%, blind "
            f"{fmt(c['ceiling_blind'])}%; EM is {fmt(c['fraction_of_ceiling'])}% of the persona "
            f"ceiling, {fmt(c['fraction_of_blind'])}% of the blind one; persona headroom "
            f"captured {fmt(c['persona_gain_captured'])}%"
        )
    lines += ["", "Action-type confusion (counts):", "", *_confusion_md(s.confusion["action_type"])]
    lines += ["", "Session-outcome confusion (counts):", "", *_confusion_md(s.confusion["outcome"])]
    if r.fidelity and r.fidelity.users:
        lines += ["", "Per user:", ""]
        lines += _md_table(
            ["user", "steps", "EM", "JS type", "JS click"],
            [
                [u.user_id, str(u.n_steps), fmt(u.exact_match),
                 fmt(u.js_action_type, False), fmt(u.js_click_type, False)]
                for u in r.fidelity.users
            ],
        )
    lines.append("")
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return [*lines, ""]


def render_markdown(
    results: Sequence[RunResult], plots: Sequence[Sequence[str]] | None = None
) -> str:
    """The whole report.md text; ``plots[i]`` are the PNG names of ``results[i]``."""
    lines = [
        "# Customer-R1 evaluation report",
        "",
        "Percentages (higher is better) except JS divergence (0 = the user's true mix, "
        "lower is better). Paper rows are copied from " + f"{SOURCE_DOC}; "
        "\"–\" = not reported. (3P) = reported by a third party. Paper rows are on "
        "OPeRA-filtered test; ours are on whatever data each run used.",
        "",
        metric_table(results),
        "",
        "## Rules",
        "",
        f"- **Outcome.** {RULES['outcome']}",
        f"- **Unparsable predictions.** {RULES['unparsable']}",
        f"- **Click type.** {RULES['click_type']}",
        f"- **Fidelity.** {FIDELITY_RULE}",
        "- **Paper columns.** The Customer-R1 table's \"type F1\" is shown as type macro-F1 "
        "and its \"outcome F1\" beside OPeRA's outcome weighted F1, which ours computes.",
        "",
        "## Runs",
        "",
    ]
    for i, r in enumerate(results):
        lines += _run_section(r, plots[i] if plots else [])
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------- plots


def _slug(label: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "run"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}_{i}", i + 1
    taken.add(slug)
    return slug


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _no_data(path: Path, title: str) -> None:
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center")
    _save(fig, path)


def plot_confusion(
    conf: Mapping[str, Any], title: str, path: Path, trim_empty: bool = False
) -> None:
    """Heat map of counts (rows true, columns predicted), non-zero cells annotated.

    ``trim_empty`` drops all-zero rows and columns (the 13 click types are mostly
    empty on a small run); an all-zero matrix is still drawn, not an error.
    """
    m = np.asarray(conf["matrix"], dtype=float)
    true_labels, pred_labels = list(conf["true_labels"]), list(conf["pred_labels"])
    if trim_empty and m.any():
        keep_r, keep_c = m.sum(axis=1) > 0, m.sum(axis=0) > 0
        m = m[keep_r][:, keep_c]
        true_labels = [t for t, k in zip(true_labels, keep_r, strict=True) if k]
        pred_labels = [p for p, k in zip(pred_labels, keep_c, strict=True) if k]
    if m.size == 0:
        _no_data(path, title)
        return
    fig = Figure(figsize=(0.9 * m.shape[1] + 3, 0.6 * m.shape[0] + 2.2))
    ax = fig.subplots()
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=max(1.0, float(m.max())), aspect="auto")
    ax.set_xticks(range(m.shape[1]), pred_labels, rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), true_labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    hi = m.max() / 2 if m.max() else 1.0
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, f"{int(v)}", ha="center", va="center",
                    color="white" if v > hi else "black", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_user_distributions(
    users: Sequence[UserFidelity], kind: str, title: str, path: Path
) -> None:
    """Per user, two stacked bars (T = true, P = predicted) of the ``kind`` distribution
    (``action_type`` or ``click_type``); a side with no mass simply has no bar."""
    if not users:
        _no_data(path, title)
        return
    every = list(getattr(users[0], f"{kind}_true"))
    colour = {c: i for i, c in enumerate(every)}  # fixed colours across runs
    cats = [
        c for c in every
        if any(getattr(u, f"{kind}_{side}")[c] > 0 for u in users for side in ("true", "pred"))
    ]
    if not cats:
        _no_data(path, title)
        return
    n = len(users)
    fig = Figure(figsize=(max(6.0, 0.7 * n + 4), 4.5))
    ax = fig.subplots()
    cmap = colormaps["tab20"]
    x = np.arange(n)
    for offset, side in ((-0.2, "true"), (0.2, "pred")):
        bottom = np.zeros(n)
        for cat in cats:
            h = np.array([getattr(u, f"{kind}_{side}")[cat] for u in users])
            ax.bar(x + offset, h, width=0.38, bottom=bottom, color=cmap(colour[cat] % 20),
                   label=cat if side == "true" else None, edgecolor="white", linewidth=0.3)
            bottom += h
    ax.set_xticks(x, [f"{u.user_id}\nT | P" for u in users], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of steps" if kind == "action_type" else "share of clicks")
    ax.set_title(title)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    _save(fig, path)


def plot_user_js(users: Sequence[UserFidelity], title: str, path: Path) -> None:
    """Per-user JS divergence bars (action type, click type); undefined values drawn as 0
    and marked "n/a"."""
    if not users:
        _no_data(path, title)
        return
    n = len(users)
    fig = Figure(figsize=(max(6.0, 0.6 * n + 3), 4))
    ax = fig.subplots()
    x = np.arange(n)
    for offset, attr, lab in ((-0.2, "js_action_type", "action type"),
                              (0.2, "js_click_type", "click type")):
        vals = [getattr(u, attr) for u in users]
        ax.bar(x + offset, [v or 0.0 for v in vals], width=0.38, label=lab)
        for xi, v in zip(x, vals, strict=True):
            if v is None:
                ax.text(xi + offset, 0.01, "n/a", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(x, [u.user_id for u in users], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("JS divergence (bits)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_summary(results: Sequence[RunResult], path: Path) -> None:
    """The paper's four headline metrics, one bar group per run."""
    if not results:
        _no_data(path, "headline metrics")
        return
    keys = [k for k, _, _ in TABLE_COLUMNS[:4]]
    heads = [h for _, h, _ in TABLE_COLUMNS[:4]]
    fig = Figure(figsize=(max(6.0, 1.5 * len(results) + 3), 4))
    ax = fig.subplots()
    x = np.arange(len(keys))
    w = 0.8 / len(results)
    for i, r in enumerate(results):
        h = r.headline()
        ax.bar(x + (i - (len(results) - 1) / 2) * w,
               [100 * (h.get(k) or 0.0) for k in keys], width=w, label=r.label)
    ax.set_xticks(x, heads)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title("headline metrics")
    ax.legend(fontsize=8)
    _save(fig, path)


def write_plots(r: RunResult, out_dir: Path, slug: str) -> list[str]:
    """All PNGs of one run; returns their file names (relative to ``out_dir``)."""
    if r.scores is None or r.fidelity is None:
        return []
    conf = r.scores.confusion
    users = r.fidelity.users
    jobs: dict[str, Callable[[Path], None]] = {
        f"{slug}_confusion_action_type.png": lambda p: plot_confusion(
            conf["action_type"], f"{r.label}: action type", p),
        f"{slug}_confusion_click_type.png": lambda p: plot_confusion(
            conf["click_type"], f"{r.label}: click type (empty rows/cols dropped)",
            p, trim_empty=True),
        f"{slug}_user_action_types.png": lambda p: plot_user_distributions(
            users, "action_type", f"{r.label}: action types per user (T true, P predicted)", p),
        f"{slug}_user_click_types.png": lambda p: plot_user_distributions(
            users, "click_type", f"{r.label}: click types per user (T true, P predicted)", p),
        f"{slug}_user_js.png": lambda p: plot_user_js(
            users, f"{r.label}: JS divergence per user", p),
    }
    for name, draw in jobs.items():
        draw(out_dir / name)
    return list(jobs)


# ---------------------------------------------------------------------------- entry point


def write_report(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    ceilings: CeilingSource | None = None,
    click_types: str | Path | None = None,
) -> Path:
    """Score each run folder and write ``out_dir/{report.md, report.json, *.png}``.

    ``ceilings``: a WORLD_DIR / world.json / its content (synthetic runs only).
    ``click_types``: a build.json (or built dir) whose lookup every run uses; otherwise
    each run's own ``run.json`` ``build_json`` or ``build.json``, else the preds' gold pairs.
    Returns the path of ``report.md``.
    """
    from customer_r1.io import atomic_dir

    out = Path(out_dir)
    lookup = load_click_type_lookup(click_types) if click_types else None
    results = [load_run_dir(d, lookup=lookup, ceilings=ceilings) for d in run_dirs]
    # Written into a temporary folder and moved in when complete (report.md last), so an
    # interrupted report never leaves a report.md whose plots or JSON are missing.
    with atomic_dir(out, last=("report.json", "report.md")) as tmp:
        taken: set[str] = set()
        plots = [write_plots(r, tmp, _slug(r.label, taken)) for r in results]
        plot_summary(results, tmp / "summary_metrics.png")
        md = render_markdown(results, plots)
        md += "\n![headline metrics](summary_metrics.png)\n"
        (tmp / "report.md").write_text(md, encoding="utf-8")
        payload = {
            "units": "fractions in [0, 1] (report.md shows percent); JS in bits, [0, 1]; "
            "paper rows in percent as published",
            "runs": [r.to_dict() for r in results],
            "paper": [p.to_dict() for p in PAPER_ROWS],
            "rules": {**RULES, "fidelity": FIDELITY_RULE},
            "plots": {"runs": plots, "summary": "summary_metrics.png"},
        }
        (tmp / "report.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    return out / "report.md"
