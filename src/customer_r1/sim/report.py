"""A report a UX researcher reads without code: ``index.html`` + ``report.md`` + PNG plots.

``sim report RUN... [--reference RUN]`` answers the questions one asks of a simulated
study: does the simulated shopper convert, move through the funnel and leave where the
real one does, for every kind of persona? Which way did an A/B test go, and does the
simulator agree with the known answer? Why do shoppers leave, in their own words? What
does a session look like, step by step?

Everything that comes from sessions (rationales, page text, URLs, survey answers, labels)
is data: the HTML template escapes it (jinja2 autoescape), the markdown escapes it too
(:func:`~customer_r1.sim.compare.md_cell`), and the page forbids scripts outright (a
Content-Security-Policy), so a rationale reading ``<script>`` stays text. The page works
offline: no CDN, the plots (matplotlib, Agg canvas, no pyplot) and screenshots are files
beside it, referenced relatively. The folder is written whole or not at all.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from customer_r1.sim import stats
from customer_r1.sim.compare import (
    FIGURES,
    FUNNEL,
    SessionSet,
    TraceStep,
    Users,
    _jsonable,
    compare_sessions,
    describe_sessions,
    format_figure,
    load_sessions,
    md_cell,
    read_ab,
    segment_questions,
    summary_rows,
)
from customer_r1.sim.health import site_health
from customer_r1.sim.stats import SessionRow

TEMPLATES = Path(__file__).parent / "templates"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Drawn beside the simulated runs; the reference is always black.
_REF_COLOUR = "#222222"


# --------------------------------------------------------------------------- page excerpts


_VOID = frozenset({"input", "img", "br", "hr", "meta", "link", "source", "area", "col", "wbr"})
_BLOCK = frozenset({"p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "section", "ul", "ol",
                    "table", "form", "header", "footer", "nav", "article", "select", "option", "label"})


class _PageText(HTMLParser):
    """The visible text of a simplified page and where each named element sits in it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.spans: dict[str, tuple[int, int]] = {}
        self._open: list[tuple[str, str | None, int]] = []
        self._skip = 0

    def _add(self, text: str) -> int:
        """Append ``text`` (a space before it when needed); return where it starts."""
        if not text:
            return self.size
        if self.parts and not self.parts[-1].endswith(" ") and not text.startswith(" "):
            text = " " + text
        self.parts.append(text)
        self.size += len(text)
        return self.size - len(text.lstrip(" "))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
            return
        if tag in _BLOCK:
            self._add(" ")
        name = a.get("name")
        if tag in _VOID:
            if name:
                label = a.get("value") or a.get("placeholder") or a.get("alt") or a.get("title") or ""
                start = self._add(f"[{tag}{': ' + label if label else ''}]")
                self.spans.setdefault(name, (start, self.size))
            return
        self._open.append((tag, name, self.size))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and tag not in ("script", "style"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
            return
        for i in range(len(self._open) - 1, -1, -1):
            t, name, start = self._open[i]
            if t == tag:
                del self._open[i:]
                if name:
                    self.spans.setdefault(name, (start, self.size))
                break
        if tag in _BLOCK:
            self._add(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._add(" ".join(data.split()))

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class Excerpt:
    """Visible page text around the element acted on: ``before`` + ``target`` + ``after``
    (``target`` empty when the step names no element on the page)."""

    before: str
    target: str
    after: str


def page_excerpt(html: str, name: str | None, width: int = 180) -> Excerpt:
    """The text around element ``name`` (a select option's ``name.value`` falls back to its
    select); the start of the page when there is no such element."""
    p = _PageText()
    try:
        p.feed(html or "")
        p.close()
    except Exception:  # a page that is not HTML still has text to show
        return Excerpt(_cut(re.sub(r"<[^>]*>", " ", html or ""), 2 * width, right=True), "", "")
    text = p.text
    span = None
    key = name or ""
    while key and span is None:
        span = p.spans.get(key)
        key = key.rpartition(".")[0]
    if span is None:
        return Excerpt(_cut(text.strip(), 2 * width, right=True), "", "")
    a, b = span
    return Excerpt(_cut(text[:a], width, right=False), " ".join(text[a:b].split()) or "[element]",
                   _cut(text[b:], width, right=True))


def _cut(text: str, width: int, *, right: bool) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if right:
        piece = text[:width].rsplit(" ", 1)[0]
        return piece + " …"
    piece = text[-width:].split(" ", 1)[-1]
    return "… " + piece


def action_text(action: Mapping[str, Any] | None) -> str:
    """``click NAME``, ``type "TEXT" into NAME`` or ``leave (terminate)``."""
    if not action:
        return "(no valid action)"
    kind = action.get("type", "?")
    if kind == "click":
        return f"click {action.get('name', '')}"
    if kind == "input":
        return f'type "{action.get("text", "")}" into {action.get("name", "")}'
    if kind == "terminate":
        return "leave (terminate)"
    return str(kind)


# --------------------------------------------------------------------------- drop-offs, examples


def _leaving_step(trace: Sequence[TraceStep]) -> TraceStep | None:
    """The step a session left at: its terminate step, else its last valid step."""
    valid = [s for s in trace if s.action is not None and not s.error]
    for s in reversed(valid):
        if s.action and s.action.get("type") == "terminate":
            return s
    return valid[-1] if valid else (trace[-1] if trace else None)


def drop_offs(s: SessionSet, quotes: int = 3) -> dict[str, Any]:
    """Sessions that ended without a purchase, by the page kind they left on, each with the
    shopper's own reason at the step it left (the most frequent ones, with counts)."""
    left = [r for r in s.rows if not r.converted]
    groups: dict[str, list[SessionRow]] = {}
    for r in left:
        groups.setdefault(r.last_page_kind, []).append(r)
    out = []
    for kind, rows in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        reasons: Counter[str] = Counter()
        ends: Counter[str] = Counter()
        for r in rows:
            ends[r.extra.get("end_reason") or "terminate"] += 1
            step = _leaving_step(s.trace(r))
            if step is not None and step.rationale.strip():
                reasons[" ".join(step.rationale.split())] += 1
        out.append({"page_kind": kind, "sessions": len(rows), "share": len(rows) / len(left),
                    "end_reasons": dict(ends.most_common()),
                    "with_rationale": sum(reasons.values()),
                    "rationales": [{"text": t, "count": c} for t, c in reasons.most_common(quotes)]})
    return {"label": s.label, "sessions": len(s.rows), "left_without_purchase": len(left), "pages": out}


def _median_pick(rows: Sequence[SessionRow]) -> SessionRow | None:
    if not rows:
        return None
    med = float(np.median([r.n_steps for r in rows]))
    return min(rows, key=lambda r: (abs(r.n_steps - med), str(r.extra.get("session_id", ""))))


def pick_examples(s: SessionSet, n: int = 3) -> list[tuple[str, SessionRow]]:
    """Up to ``n`` sessions that show the range: a typical purchase, a typical drop-off on the
    most common exit page, then one that hit a limit or left elsewhere, then the longest."""
    rows = [r for r in s.rows if r.n_steps > 0] or list(s.rows)
    chosen: list[tuple[str, SessionRow]] = []

    def take(why: str, r: SessionRow | None) -> None:
        if r is not None and len(chosen) < n and all(r is not c for _, c in chosen):
            chosen.append((why, r))

    take("a typical purchase", _median_pick([r for r in rows if r.converted]))
    exits = Counter(r.last_page_kind for r in rows if not r.converted)
    if exits:
        top = exits.most_common(1)[0][0]
        take(f"a typical drop-off on the most common exit page ({top})",
             _median_pick([r for r in rows if not r.converted and r.last_page_kind == top]))
        limit = [r for r in rows if r.extra.get("end_reason") in ("max_steps", "max_errors")]
        take("a session that hit a limit", _median_pick(limit))
        others = [r for r in rows if not r.converted and r.last_page_kind != top]
        take("a drop-off on another page", _median_pick(others))
    rest = sorted(rows, key=lambda r: (-r.n_steps, str(r.extra.get("session_id", ""))))
    for r in rest:
        take("the longest session", r)
    return chosen


def _persona_line(s: SessionSet, user_id: str) -> str:
    from customer_r1.sim.compare import flatten_survey

    flat = flatten_survey(s.users.get(user_id).survey if user_id in s.users else None)
    for k, v in flat.items():
        if k.lower().endswith("two sentence description"):
            return v
    return "; ".join(f"{k.rsplit(' / ', 1)[-1]}: {v}" for k, v in list(flat.items())[:4])


# --------------------------------------------------------------------------- plots


def _colour(i: int) -> Any:
    return colormaps["tab10"](i % 10)


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path.name


def _short(question: str, width: int = 60) -> str:
    """A survey question for a plot title: its last part (the statement), wrapped."""
    return textwrap.fill(question.rsplit(" / ", 1)[-1], width)


def _stages(sets: Sequence[SessionSet]) -> list[str]:
    return [k for k in FUNNEL if k == "purchase" or any(k in r.page_kinds for s in sets for r in s.rows)]


def _reach(rows: Sequence[SessionRow], stages: Sequence[str]) -> list[float]:
    if not rows:
        return [float("nan")] * len(stages)
    return [float(np.mean([r.converted if k == "purchase" else k in r.page_kinds for r in rows]))
            for k in stages]


def plot_funnel(sets: Sequence[SessionSet], reference: SessionSet | None, path: Path) -> str:
    """Share of sessions reaching each page kind, every run and the reference."""
    allsets = [*sets, *([reference] if reference else [])]
    stages = _stages(allsets)
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    x = np.arange(len(stages))
    for i, s in enumerate(sets):
        ax.plot(x, _reach(s.rows, stages), marker="o", color=_colour(i), label=f"{s.label} (simulated)")
    if reference is not None:
        ax.plot(x, _reach(reference.rows, stages), marker="s", linestyle="--", color=_REF_COLOUR,
                label=f"{reference.label} (reference)")
    ax.set_xticks(x, stages)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of sessions reaching it")
    ax.set_title("Funnel: how far sessions get")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_funnel_segments(sets: Sequence[SessionSet], question: Mapping[str, Any], path: Path) -> str:
    """One panel per set; one line per segment of ``question`` over the funnel's stages."""
    stages = _stages(sets)
    segs = list(question["segments"].items())
    n = len(sets)
    fig = Figure(figsize=(min(15, 4.6 * n + 1), 4.4))
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
    x = np.arange(len(stages))
    for ax, s in zip(axes, sets, strict=True):
        for j, (answer, users) in enumerate(segs):
            keep = set(users)
            rows = [r for r in s.rows if r.user_id in keep]
            ax.plot(x, _reach(rows, stages), marker="o", color=_colour(j), label=answer)
        ax.set_xticks(x, stages, rotation=35, ha="right", fontsize=8)
        ax.set_title(textwrap.shorten(s.label, 40), fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of sessions reaching it")
    handles, _ = axes[-1].get_legend_handles_labels()
    fig.suptitle(_short(question["question"], 90), fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, [textwrap.shorten(a, 40) for a, _ in segs], loc="lower center",
               ncols=min(len(segs), 6), fontsize=8, frameon=False)
    fig.savefig(path, dpi=100)
    return path.name


def plot_lengths(sets: Sequence[SessionSet], reference: SessionSet | None, path: Path) -> str:
    """Session-length histograms, each run against the reference (share of sessions)."""
    n = len(sets)
    fig = Figure(figsize=(min(15, 4.8 * n + 0.5), 3.8))
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
    top = max([r.n_steps for s in [*sets, *([reference] if reference else [])] for r in s.rows] + [1])
    bins = np.arange(0, top + 2) - 0.5
    for i, (ax, s) in enumerate(zip(axes, sets, strict=True)):
        la = [r.n_steps for r in s.rows]
        ax.hist(la, bins=bins, weights=np.full(len(la), 1 / max(1, len(la))), color=_colour(i), alpha=0.55,
                label=f"{textwrap.shorten(s.label, 30)} (mean {np.mean(la):.1f})")
        if reference is not None:
            lb = [r.n_steps for r in reference.rows]
            ax.hist(lb, bins=bins, weights=np.full(len(lb), 1 / max(1, len(lb))), histtype="step",
                    color=_REF_COLOUR, linewidth=1.5,
                    label=f"{textwrap.shorten(reference.label, 30)} (mean {np.mean(lb):.1f})")
        ax.set_xlabel("actions in the session")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of sessions")
    fig.suptitle("Session length", fontsize=11)
    return _save(fig, path)


def plot_user_scatter(comparisons: Sequence[Mapping[str, Any]], path: Path) -> str:
    """Per-user conversion, simulated (y) against the reference (x); marker area counts the
    users at that point; the diagonal is perfect agreement."""
    n = len(comparisons)
    fig = Figure(figsize=(min(15, 4.4 * n + 0.5), 4.4))
    axes = np.atleast_1d(fig.subplots(1, n))
    for i, (ax, c) in enumerate(zip(axes, comparisons, strict=True)):
        pu = c["per_user"]
        pts = Counter((round(p["reference"], 3), round(p["sim"], 3)) for p in pu["points"])
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=[25 * k for k in pts.values()], color=_colour(i), alpha=0.6,
                       edgecolor="white")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        r = pu["pearson"]
        txt = (f"Pearson r = {r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
               if r["value"] is not None and r["low"] is not None else "r undefined (no spread)")
        ceiling = pu["reliability"]["ceiling"]
        if ceiling is not None:
            txt += f"\nnoise ceiling ≈ {ceiling:.2f} (rough)"
        ax.text(0.03, 0.97, f"{txt}\n{pu['users']} users", transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_aspect("equal")
        ax.set_xlabel(f"reference: {textwrap.shorten(c['reference']['label'], 30)}", fontsize=8)
        ax.set_ylabel(f"simulated: {textwrap.shorten(c['sim']['label'], 30)}", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Conversion per user", fontsize=11)
    return _save(fig, path)


def plot_dropoffs(sets: Sequence[SessionSet], reference: SessionSet | None, path: Path) -> str:
    """Where sessions without a purchase end: share by page kind, per set."""
    allsets = [*sets, *([reference] if reference else [])]
    kinds = [k for k, _ in Counter(r.last_page_kind for s in allsets for r in s.rows
                                   if not r.converted).most_common()]
    fig = Figure(figsize=(8, min(9.0, 1.6 + 0.22 * max(1, len(kinds)) * len(allsets))))
    ax = fig.subplots()
    if not kinds:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "every session ended in a purchase", ha="center")
        return _save(fig, path)
    y = np.arange(len(kinds))
    h = 0.8 / len(allsets)
    for i, s in enumerate(allsets):
        left = Counter(r.last_page_kind for r in s.rows if not r.converted)
        total = max(1, sum(left.values()))
        is_ref = reference is not None and s is reference
        label = f"{textwrap.shorten(s.label, 34)}{' (reference)' if is_ref else ''}"
        ax.barh(y + i * h - 0.4 + h / 2, [left.get(k, 0) / total for k in kinds], height=h,
                color=_REF_COLOUR if is_ref else _colour(i), label=f"{label} – {sum(left.values())} sessions")
    ax.set_yticks(y, kinds)
    ax.invert_yaxis()
    ax.set_xlabel("share of the sessions that ended without a purchase")
    ax.set_title("Where shoppers leave")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def _metric_unit(metric: str) -> str:
    if metric == "conversion" or metric.startswith(("reach_", "share_")):
        return "share"
    if "value" in metric:
        return "$"
    return "number"


def _fmt(x: float | None, unit: str, signed: bool = False) -> str:
    if x is None:
        return "–"
    if unit == "share":
        return f"{100 * x:+.1f} pp" if signed else f"{100 * x:.1f}%"
    if unit == "$":
        return f"{'+' if signed and x >= 0 else ''}{'-' if x < 0 else ''}${abs(x):.2f}"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _ci(iv: Mapping[str, Any] | None, unit: str, signed: bool = False) -> str:
    """``value [low, high]`` in the metric's unit; "–" when unknown."""
    c = _cell(iv, unit, signed)
    return f"{c['value']} {c['interval']}".strip()


def _cell(iv: Mapping[str, Any] | None, unit: str, signed: bool = False) -> dict[str, str]:
    """A value and its interval as two strings (a table shows them on two lines)."""
    if not iv or iv.get("value") is None:
        return {"value": "–", "interval": ""}
    lo, hi = iv.get("low"), iv.get("high")
    rng = f"[{_fmt(lo, unit, signed)}, {_fmt(hi, unit, signed)}]" if lo is not None and hi is not None else ""
    return {"value": _fmt(iv["value"], unit, signed), "interval": rng}


def _metric_labels() -> dict[str, str]:
    """Readable names of ``sim ab``'s metrics (its own table's), when that module is there."""
    try:
        from customer_r1.sim.ab import METRICS
    except ImportError:  # pragma: no cover - ab.json files still render, by metric key
        return {}
    return {m.name: m.label for m in METRICS}


def _crn_note(ab: Mapping[str, Any]) -> str:
    """What common random numbers bought on the conversion effect, in words."""
    m = (ab.get("metrics") or {}).get("conversion")
    shrink = m.get("crn_shrink") if isinstance(m, Mapping) else None
    if not isinstance(shrink, (int, float)):
        return ""
    return (f"Both arms ran the same shoppers with the same session seeds, so the conversion effect's "
            f"interval is {100 * shrink:.0f}% narrower than independent arms would give.")


def ab_rows(ab: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per metric of an ``ab.json``: simulated arms and effect with intervals, the
    true ones beside when known, and whether the simulated effect points the true way
    (``direction``: "no clear true effect" when the true interval holds 0; else "agrees" when
    the simulated interval leaves out 0 on the true side, "opposite" when it leaves out 0 on
    the other side, "missed" when it holds 0; None when the truth is unknown)."""
    out = []
    labels = _metric_labels()
    placebo = (ab.get("placebo") or {}).get("per_metric") or {}
    for metric, m in (ab.get("metrics") or {}).items():
        if not isinstance(m, Mapping):
            continue
        unit = _metric_unit(metric)
        true = m.get("true") if isinstance(m.get("true"), Mapping) else None
        direction = None
        if true and m.get("effect") and true.get("effect"):
            se, te = m["effect"].get("value"), true["effect"].get("value")
            lo, hi = true["effect"].get("low"), true["effect"].get("high")
            slo, shi = m["effect"].get("low"), m["effect"].get("high")
            if se is not None and te is not None:
                if lo is not None and hi is not None and lo <= 0 <= hi:
                    direction = "no clear true effect"
                elif np.sign(round(se, 12)) != np.sign(round(te, 12)) and not (
                        slo is not None and shi is not None and slo <= 0 <= shi):
                    direction = "opposite"
                elif slo is not None and shi is not None and slo <= 0 <= shi:
                    direction = "missed"
                else:
                    direction = "agrees"
        unknown = {"value": "unknown", "interval": ""}
        out.append({
            "metric": labels.get(metric, metric), "key": metric, "unit": unit,
            "sim_control": _cell(m.get("control"), unit), "sim_treatment": _cell(m.get("treatment"), unit),
            "sim_effect": _cell(m.get("effect"), unit, True),
            "true_control": _cell(true.get("control"), unit) if true else unknown,
            "true_treatment": _cell(true.get("treatment"), unit) if true else unknown,
            "true_effect": _cell(true.get("effect"), unit, True) if true else unknown,
            "direction": direction,
            "crn_shrink": m.get("crn_shrink"),
            "placebo": _placebo_cell(placebo.get(metric), unit),
        })
    return out


def _placebo_cell(p: Any, unit: str) -> dict[str, Any] | None:
    """Beside an effect: the largest effect the simulator reported on placebo arms and
    whether this effect's interval lies beyond it (None without placebo arms)."""
    if not isinstance(p, Mapping) or p.get("noise_floor") is None:
        return None
    return {"floor": _fmt(p["noise_floor"], unit, False), "beyond": bool(p.get("beyond_placebo")),
            "false_positive_rate": p.get("false_positive_rate"),
            "smallest": _fmt(p.get("smallest_separable"), unit, False)}


def _placebo_note(ab: Mapping[str, Any]) -> str:
    """The conversion verdict against the placebo arms, in words (empty without them)."""
    if not (ab.get("placebo") or {}).get("per_metric", {}).get("conversion"):
        return ""
    try:
        from customer_r1.sim.ab import placebo_sentence
    except ImportError:  # pragma: no cover
        return ""
    return placebo_sentence(dict(ab))


def plot_ab(studies: Sequence[Mapping[str, Any]], path: Path, metric: str = "conversion") -> str | None:
    """Conversion by variant: each study's control and treatment, simulated beside true,
    with their intervals; a last panel shows every effect, simulated beside true."""
    studies = [a for a in studies if isinstance((a.get("metrics") or {}).get(metric), Mapping)]
    if not studies:
        return None
    unit = _metric_unit(metric)
    scale = 100.0 if unit == "share" else 1.0
    n = len(studies)
    fig = Figure(figsize=(min(16, 3.6 * n + 5), 4.2))
    axes = np.atleast_1d(fig.subplots(1, n + 1, gridspec_kw={"width_ratios": [1] * n + [1.4]}))

    def bar(ax: Any, x: float, iv: Mapping[str, Any] | None, colour: Any, label: str | None,
            hatch: str = "") -> None:
        if not iv or iv.get("value") is None:
            return
        v = iv["value"] * scale
        err = None
        if iv.get("low") is not None and iv.get("high") is not None:
            err = [[v - iv["low"] * scale], [iv["high"] * scale - v]]
        ax.bar(x, v, width=0.38, color=colour, yerr=err, capsize=4, label=label, hatch=hatch,
               edgecolor="white" if not hatch else _REF_COLOUR)

    for ax, a in zip(axes[:n], studies, strict=True):
        m = a["metrics"][metric]
        true = m.get("true") if isinstance(m.get("true"), Mapping) else None
        for j, arm in enumerate(("control", "treatment")):
            bar(ax, j - 0.2, m.get(arm), _colour(0), "simulated" if j == 0 else None)
            if true:
                bar(ax, j + 0.2, true.get(arm), "#bbbbbb", "true shopper" if j == 0 else None, "//")
        ax.set_xticks([0, 1], [textwrap.shorten(str(a.get("control", "control")), 18),
                               textwrap.shorten(str(a.get("treatment", "treatment")), 18)], fontsize=8)
        ax.set_title(textwrap.shorten(f"{a.get('treatment', 'treatment')}", 30), fontsize=9)
        ax.set_ylabel(f"{metric} ({'%' if unit == 'share' else unit})", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.margins(y=0.15)
        ax.legend(fontsize=7, loc="upper left", ncols=2)
    ax = axes[-1]
    for i, a in enumerate(studies):
        m = a["metrics"][metric]
        true = m.get("true") if isinstance(m.get("true"), Mapping) else None
        for off, iv, colour, lab in ((-0.15, m.get("effect"), _colour(0), "simulated"),
                                     (0.15, (true or {}).get("effect"), _REF_COLOUR, "true shopper")):
            if not iv or iv.get("value") is None:
                continue
            v = iv["value"] * scale
            lo = (iv.get("low") if iv.get("low") is not None else iv["value"]) * scale
            hi = (iv.get("high") if iv.get("high") is not None else iv["value"]) * scale
            ax.errorbar(v, i + off, xerr=[[v - lo], [hi - v]], fmt="o", color=colour, capsize=3,
                        label=lab if i == 0 else None)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(range(n), [textwrap.shorten(str(a.get("treatment", "?")), 22) for a in studies], fontsize=8)
    ax.set_xlabel(f"effect on {metric} ({'points' if unit == 'share' else unit})", fontsize=8)
    ax.set_title("treatment - control", fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    fig.suptitle(f"{metric.replace('_', ' ').capitalize()} by variant (intervals: 95% bootstrap over users)",
                 fontsize=11)
    return _save(fig, path)


# --------------------------------------------------------------------------- assembling


@dataclass
class _Ctx:
    """What the templates render (all text raw: the templates escape it)."""

    title: str
    generated: str
    runs: list[dict[str, Any]]
    reference: dict[str, Any] | None
    reference_note: str
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    descriptions: list[dict[str, Any]] = field(default_factory=list)
    ab: list[dict[str, Any]] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)
    segment_plots: list[dict[str, Any]] = field(default_factory=list)
    segment_note: str = ""
    dropoffs: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)  # browser runs on another site


def _as_set(x: str | Path | SessionSet, split: str | None) -> SessionSet:
    return x if isinstance(x, SessionSet) else load_sessions(x, split)


def _choose_questions(basis: SessionSet, min_users: int, k: int = 2) -> list[dict[str, Any]]:
    """The ``k`` survey questions whose segments differ most in conversion in ``basis``."""
    qs = segment_questions(basis.users, basis.user_ids, min_users=min_users)
    by_user = stats.by_user(basis.rows)
    scored = []
    for q in qs:
        conv = []
        for users in q["segments"].values():
            rows = [r for u in users for r in by_user.get(u, [])]
            if rows:
                conv.append(stats.conversion(rows))
        if len(conv) >= 2:
            scored.append((max(conv) - min(conv), q))
    scored.sort(key=lambda t: (-t[0], t[1]["question"]))
    return [{**q, "spread": s} for s, q in scored[:k]]


def _render_example(s: SessionSet, why: str, row: SessionRow, shots: Path, k: int) -> dict[str, Any]:
    steps = []
    for i, st in enumerate(s.trace(row), 1):
        name = (st.action or {}).get("name")
        ex = page_excerpt(st.html, name)
        shot = None
        if st.screenshot:
            src = Path(st.screenshot)
            if src.is_file() and src.read_bytes()[:8] == PNG_MAGIC:
                shots.mkdir(exist_ok=True)
                dest = shots / f"example{k}_step{i}.png"
                shutil.copyfile(src, dest)
                shot = f"{shots.name}/{dest.name}"
        steps.append({"i": i, "page_kind": st.page_kind, "url": st.url, "before": ex.before,
                      "target": ex.target, "after": ex.after, "action": action_text(st.action),
                      "rationale": st.rationale, "error": st.error, "screenshot": shot,
                      "screenshot_missing": bool(st.screenshot and not shot)})
    return {"label": s.label, "why": why, "session_id": str(row.extra.get("session_id", "")),
            "user_id": row.user_id, "persona": _persona_line(s, row.user_id),
            "outcome": "purchase" if row.converted else "left without buying",
            "end_reason": row.extra.get("end_reason") or "", "n_steps": row.n_steps,
            "order_value": row.order_value, "steps": steps}


def build_context(runs: Sequence[SessionSet], out: Path, *, reference: SessionSet | None,
                  ab_studies: Sequence[Mapping[str, Any]], title: str, n_boot: int, seed: int,
                  min_segment_users: int, examples: int, users: Users, reference_note: str) -> _Ctx:
    """Compute every figure and draw every plot into ``out``; return the template context."""
    ctx = _Ctx(title=title, generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
               runs=[{**r.summary(), "conversion": describe_sessions(r, n_boot=n_boot, seed=seed)["figures"]}
                     for r in runs],
               reference=reference.summary() if reference else None, reference_note=reference_note)
    for r in runs:
        if reference is None:
            break
        scope: Users = users
        if users == "shared" and not set(r.user_ids) & set(reference.user_ids):
            scope = "all"
            ctx.notes.append(f"{r.label} shares no users with the reference: compared over all users "
                             "(unpaired).")
        c = compare_sessions(r, reference, n_boot=n_boot, seed=seed, min_segment_users=min_segment_users,
                             users=scope)
        ctx.comparisons.append({**c, "rows": summary_rows(c)})
    if reference is None:
        for r in runs:
            d = describe_sessions(r, n_boot=n_boot, seed=seed)
            ctx.descriptions.append({"label": r.label, "rows": [
                (name.replace("_", " "), _ci(d["figures"][name], "share" if unit == "share" else
                                             ("$" if unit == "$" else "number")))
                for name, (_, _, unit, _) in FIGURES.items()] + [
                (f"reach {k}", _ci(iv, "share")) for k, iv in d["reach"].items() if iv["value"]]})
    ctx.plots["funnel"] = plot_funnel(runs, reference, out / "funnel.png")
    basis = reference or runs[0]
    chosen = _choose_questions(basis, min_segment_users)
    panels = [*runs[:3], *([reference] if reference else [])]
    for i, q in enumerate(chosen, 1):
        ctx.segment_plots.append({"question": q["question"], "spread": q["spread"],
                                  "segments": {a: len(u) for a, u in q["segments"].items()},
                                  "plot": plot_funnel_segments(panels, q, out / f"funnel_segments_{i}.png")})
    whose = "the reference" if reference else "the first run"
    ctx.segment_note = (f"Segments from survey answers of {basis.label} ({whose}): questions with 2 to 6 "
                        f"answers, answers given by at least "
                        f"{min_segment_users} users. Shown: the question(s) whose segments differ most in "
                        "conversion there.")
    ctx.plots["lengths"] = plot_lengths(runs, reference, out / "session_lengths.png")
    if ctx.comparisons:
        ctx.plots["scatter"] = plot_user_scatter(ctx.comparisons, out / "user_conversion.png")
    ctx.plots["dropoffs"] = plot_dropoffs(runs, reference, out / "dropoffs.png")
    for a in ab_studies:
        ctx.ab.append({"control": a.get("control", "control"), "treatment": a.get("treatment", "treatment"),
                       "source": a.get("_dir", ""), "users": a.get("users"),
                       "sessions_per_arm": a.get("sessions_per_arm"),
                       "reference_policy": a.get("reference_policy"),
                       "rows": ab_rows(a), "warnings": [str(w) for w in a.get("warnings") or []],
                       "crn": _crn_note(a), "placebo": _placebo_note(a),
                       "placebo_arms": list((a.get("placebo") or {}).get("arms") or [])})
    if ab_studies:
        name = plot_ab(ab_studies, out / "conversion_by_variant.png")
        if name:
            ctx.plots["ab"] = name
    for r in runs:
        if r.records or r.sessions:
            ctx.dropoffs.append(drop_offs(r))
        h = site_health(r.records) if r.records else None
        if h and h["pages"]:
            ctx.health.append({"label": r.label, **h})
    traced = next((r for r in runs if r.records), next((r for r in runs if r.sessions), None))
    if traced is not None and examples > 0:
        for k, (why, row) in enumerate(pick_examples(traced, examples), 1):
            ctx.examples.append(_render_example(traced, why, row, out / "shots", k))
    return ctx


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                                 default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["md"] = md_cell
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
    env.filters["points"] = lambda x: "–" if x is None else f"{100 * x:.1f} points"
    env.filters["num"] = lambda x, d=2: "–" if x is None else f"{x:.{d}f}"
    env.filters["ci"] = _ci
    env.filters["short"] = lambda q: q.rsplit(" / ", 1)[-1]
    env.globals["format_figure"] = format_figure
    return env


def write_sim_report(runs: Sequence[str | Path | SessionSet], out_dir: str | Path, *,
                     reference: str | Path | SessionSet | None = None,
                     ab: Sequence[str | Path] | None = None,
                     title: str = "Simulated shoppers: session-level report", split: str | None = None,
                     n_boot: int = 1000, seed: int = 0, min_segment_users: int = 5, examples: int = 3,
                     users: Users = "shared") -> Path:
    """Write ``out_dir/{index.html, report.md, report.json, *.png}``; return ``index.html``.

    ``runs``: simulation runs, ``sim ab`` folders (their simulated arms; their ``ab.json``
    fills "conversion by variant"), worlds or OPeRA folders. ``reference``: the sessions
    the runs are compared with (the true shopper, the world's or real sessions); default:
    the true arms of the first ``sim ab`` run that has them. ``ab``: more ``sim ab`` folders
    whose tables and plots to include. ``split`` applies to world / OPeRA inputs. The files
    land in ``out_dir`` when all are written (other files there are kept).
    """
    from customer_r1.io import atomic_dir

    if not runs:
        from customer_r1.errors import BadOption

        raise BadOption("give at least one run", "RUN")
    sets = [_as_set(r, split) for r in runs]
    studies = [s.ab for s in sets if s.ab]
    studies += [{**read_ab(a), "_dir": str(a)} for a in ab or []]
    note = ""
    ref = _as_set(reference, split) if reference is not None else None
    if ref is not None:
        note = "given as the reference"
    else:
        truth = next((s.truth for s in sets if s.truth is not None), None)
        if truth is not None:
            ref, note = truth, "the true shopper's arms of the A/B folder (no reference given)"
    out = Path(out_dir)
    # merge, not swap: --out may be a folder that holds other things (a run, a comparison)
    with atomic_dir(out, last=("report.json", "report.md", "index.html")) as tmp:
        ctx = build_context(sets, tmp, reference=ref, ab_studies=studies, title=title, n_boot=n_boot,
                            seed=seed, min_segment_users=min_segment_users, examples=examples, users=users,
                            reference_note=note)
        env = _env()
        data = vars(ctx)
        (tmp / "index.html").write_text(env.get_template("report.html.j2").render(**data), encoding="utf-8")
        (tmp / "report.md").write_text(env.get_template("report.md.j2").render(**data), encoding="utf-8")
        payload = {k: v for k, v in data.items() if k not in ("examples",)}
        payload["comparisons"] = [{k: v for k, v in c.items() if k != "rows"} for c in ctx.comparisons]
        (tmp / "report.json").write_text(json.dumps(_jsonable(payload), indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    return out / "index.html"


__all__ = ["Excerpt", "action_text", "drop_offs", "page_excerpt", "pick_examples", "write_sim_report"]
