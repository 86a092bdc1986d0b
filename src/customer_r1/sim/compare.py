"""Session-level fidelity: compare two sets of shopping sessions as whole sessions (issue 17).

Step-level accuracy says little about sessions: a policy can match most steps and still
end sessions at the wrong rate or on the wrong page. So ``sim compare`` scores what a
researcher would read off a site's analytics: conversion (overall and per persona
segment), per-user conversion, the funnel and where sessions end, session length,
the action-type and click-type mixes, items bought and order value.

Any two sets can be compared (:func:`load_sessions`): a simulation run, the simulated arms
of a ``sim ab`` folder, a generated world's sessions or recorded OPeRA data (so the true
shopper's run, the world's own sessions and real sessions all serve as references).

Statistics. Sessions of one shopper share a persona, so they are not independent: every
interval resamples *users* (all of a drawn user's sessions come along). A difference
between the sets is *paired* when both hold the same users (the same users are drawn on
both sides, which cancels the persona's own effect, as ``stats.bootstrap_diff(paired=True)``)
and unpaired otherwise; the result says which. Divergences (JS, Wasserstein) are never
below 0, so a bootstrap interval of them cannot "hold 0"; whether they exceed what two
samples of the *same* shoppers would show is tested by permuting users between the sets
(paired: each user's two groups swap sides). The KS p-value (scipy) treats sessions as
independent and is reported beside, not counted. Figures are computed as ratios of
per-user sums with the bootstrap's own draws (:mod:`customer_r1.sim.stats`), so they
equal ``stats.bootstrap`` / ``stats.bootstrap_diff``, fast enough for dozens of segments.

Segments come from survey answers (``section / question -> answer``), so the same code
splits the world's personas and OPeRA's real users (:func:`segment_questions`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from customer_r1.domain import Session, User
from customer_r1.errors import BadInput, BadOption, MissingInput
from customer_r1.sim import stats
from customer_r1.sim.stats import Interval, SessionRow

SCHEMA_VERSION = 1
AB_FILE = "ab.json"
#: Funnel stages in the order a shopper usually meets them ("purchase": the session bought).
FUNNEL = ("home", "search", "product", "reviews", "store", "cart", "checkout", "purchase")
#: Scalar figures: name -> (numerator column, denominator column, unit, what it is).
FIGURES: dict[str, tuple[str, str, str, str]] = {
    "conversion": ("converted", "sessions", "share", "sessions that end in a purchase"),
    "mean_length": ("steps", "sessions", "steps", "actions per session"),
    "items_per_session": ("items", "sessions", "items", "items bought per session"),
    "order_value_per_session": ("value", "sessions", "$", "order value per session (0 without a purchase)"),
    "order_value_per_purchase": ("value", "converted", "$", "order value per purchasing session"),
}
Users = Literal["shared", "all"]


# --------------------------------------------------------------------------- loading


@dataclass
class TraceStep:
    """One step of a session as a report shows it (valid or not)."""

    page_kind: str
    url: str
    html: str
    action: dict[str, Any] | None
    rationale: str
    error: str = ""
    screenshot: str | None = None  # absolute path of a PNG when the trace has one


@dataclass
class SessionSet:
    """A set of sessions with their users, one :class:`~customer_r1.sim.stats.SessionRow`
    per session (``extra``: ``session_id``, ``variant``, ``end_reason`` and where its trace
    is), plus the traces themselves (simulation records or domain sessions) for reports."""

    label: str
    source: str
    kind: Literal["run", "ab", "opera"]
    rows: list[SessionRow]
    users: dict[str, User]
    description: str = ""
    split: str | None = None
    manifest: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    record_dirs: list[Path] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    ab: dict[str, Any] | None = None
    truth: SessionSet | None = None

    @property
    def user_ids(self) -> list[str]:
        return stats.user_order(self.rows)

    def restrict(self, users: Iterable[str]) -> SessionSet:
        """The same set with only these users' sessions (traces are shared, not copied)."""
        keep = set(users)
        return replace(self, rows=[r for r in self.rows if r.user_id in keep])

    def trace(self, row: SessionRow) -> list[TraceStep]:
        """Every step of ``row``'s session, invalid ones included (simulation traces)."""
        if row.extra.get("record") is not None:
            i = row.extra["record"]
            return _record_trace(self.records[i], self.record_dirs[i])
        if row.extra.get("session") is not None:
            return _session_trace(self.sessions[row.extra["session"]])
        return []

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "source": self.source, "kind": self.kind,
                "description": self.description, "split": self.split,
                "sessions": len(self.rows), "users": len(self.user_ids),
                "steps": int(sum(r.n_steps for r in self.rows))}


def _record_trace(record: Mapping[str, Any], run_dir: Path) -> list[TraceStep]:
    out = []
    for e in record.get("steps", []):
        o = e.get("observation") or {}
        shot = e.get("screenshot")
        shot_path = None
        if isinstance(shot, str) and shot:
            p = Path(shot)
            shot_path = str(p if p.is_absolute() else run_dir / p)
        out.append(TraceStep(o.get("page_kind") or stats.page_kind_of(o.get("url", "")), o.get("url", ""),
                             o.get("html", ""), e.get("action"), e.get("rationale") or "",
                             e.get("error") or e.get("policy_error") or "", shot_path))
    return out


def _session_trace(s: Session) -> list[TraceStep]:
    return [TraceStep(st.observation.page_kind or stats.page_kind_of(st.observation.url), st.observation.url,
                      st.observation.html, st.action.to_dict() if st.action is not None else None,
                      st.rationale or "", "",
                      str(st.extra["screenshot"]) if isinstance(st.extra.get("screenshot"), str) else None)
            for st in s.steps]


def read_records(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A finished run's manifest and session records, read strictly and without touching
    the files. (``runner.load_run`` reads a run that is being resumed: it drops a damaged
    line and rewrites the file; a finished run with a damaged line is an error here.)"""
    manifest, records, _ = _read_records(run_dir)
    return manifest, records


def _read_records(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[int]]:
    """:func:`read_records` plus the line number of each record (for error messages)."""
    from customer_r1.io import read_json
    from customer_r1.sim.runner import MANIFEST_FILE, SESSIONS_FILE

    d = Path(run_dir)
    if not (d / MANIFEST_FILE).is_file() or not (d / SESSIONS_FILE).is_file():
        raise MissingInput(f"{d} is not a finished simulation run (no {MANIFEST_FILE} / {SESSIONS_FILE})",
                           str(d), "run `customer-r1 sim run --out DIR` (and `sim merge` for shards)")
    manifest = read_json(d / MANIFEST_FILE)
    if not isinstance(manifest, dict):
        raise BadInput(f"{d / MANIFEST_FILE} is not a JSON object", str(d / MANIFEST_FILE))
    path = d / SESSIONS_FILE
    hint = "the trace is damaged; rerun `sim run` with the same settings into this folder to repair it"
    records: list[dict[str, Any]] = []
    line_of: list[int] = []
    seen: set[str] = set()
    with path.open("rb") as fh:
        for i, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BadInput(f"line is not valid JSON: {getattr(exc, 'msg', exc)}", f"{path}:{i}",
                               hint) from exc
            if (not isinstance(rec, dict) or not isinstance(rec.get("key"), str)
                    or not isinstance(rec.get("user_id"), str) or not isinstance(rec.get("steps"), list)):
                raise BadInput("not a session record (needs key, user_id and steps)", f"{path}:{i}", hint)
            if rec["key"] in seen:
                raise BadInput(f"session {rec['key']!r} appears twice", f"{path}:{i}", hint)
            seen.add(rec["key"])
            records.append(rec)
            line_of.append(i)
    if not records:
        raise BadInput(f"{path} holds no sessions", str(path), "is the run finished?")
    return manifest, records, line_of


def _rows_of_records(records: Sequence[dict[str, Any]], users: dict[str, User], split: str,
                     where: Sequence[str]) -> list[SessionRow]:
    """One row per record, a session without a single valid step included (0 steps, no
    purchase: it counts, as in the run's manifest). ``where[i]``: ``file:line`` of record i."""
    from customer_r1.sim.runner import records_to_data

    rows = []
    for i, rec in enumerate(records):
        try:
            one = records_to_data([rec], {rec["user_id"]: users.get(rec["user_id"], User(rec["user_id"]))},
                                  split)
            got = stats.session_rows(one.sessions)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInput(f"session {rec['key']!r} has a malformed step ({type(exc).__name__}: {exc})",
                           where[i], "the trace is damaged; rerun `sim run` into a fresh folder") from exc
        extra = {"session_id": rec.get("session_id", rec["key"]), "variant": rec.get("variant", ""),
                 "end_reason": rec.get("end_reason", ""), "record": i}
        if got:
            rows.append(replace(got[0], extra=extra))
        else:
            kinds = tuple(str((e.get("observation") or {}).get("page_kind") or "home")
                          for e in rec["steps"]) or ("home",)
            rows.append(SessionRow(rec["user_id"], False, 0, {}, {}, kinds, kinds[-1], 0.0, 0, extra))
    return rows


def _describe_policy(manifest: Mapping[str, Any]) -> str:
    pol = manifest.get("policy") or {}
    kind = str(pol.get("kind", "?"))
    what = {"world": "the world's own (true) shopper", "baseline": "page-kind baseline"}.get(kind, kind)
    if pol.get("checkpoint"):
        what += f" {Path(str(pol['checkpoint'])).name}"
    if pol.get("model_name"):
        what += f" {pol['model_name']}"
    variant = manifest.get("variant") or "control"
    return f"simulated by {what}, site {variant}"


def _load_run(d: Path, label: str | None) -> SessionSet:
    from customer_r1.sim.runner import SESSIONS_FILE, load_personas_of

    manifest, records, lines = _read_records(d)
    users = load_personas_of(d)
    for rec in records:
        users.setdefault(rec["user_id"], User(rec["user_id"]))
    split = str(manifest.get("split") or "test")
    where = [f"{d / SESSIONS_FILE}:{n}" for n in lines]
    return SessionSet(label or d.name, str(d), "run", _rows_of_records(records, users, split, where), users,
                      description=_describe_policy(manifest), split=split, manifest=manifest,
                      records=records, record_dirs=[d] * len(records))


def read_ab(path: str | Path) -> dict[str, Any]:
    """``ab.json`` of a ``sim ab`` folder (checked for what the readers here use)."""
    from customer_r1.io import read_json

    f = Path(path)
    f = f / AB_FILE if f.is_dir() else f
    ab = read_json(f)
    runs = ab.get("runs") if isinstance(ab, dict) else None
    if not isinstance(runs, dict) or not runs.get("control") or not runs.get("treatment"):
        raise BadInput(f"{f} is not a `sim ab` result (needs runs.control and runs.treatment)", str(f),
                       "write one with `customer-r1 sim ab`")
    if not isinstance(ab.get("metrics", {}), dict):
        raise BadInput(f"{f}: metrics must be an object", str(f))
    return ab


def _merge_sets(label: str, source: str, kind: Literal["run", "ab", "opera"], parts: Sequence[SessionSet],
                description: str) -> SessionSet:
    rows: list[SessionRow] = []
    records: list[dict[str, Any]] = []
    dirs: list[Path] = []
    users: dict[str, User] = {}
    for p in parts:
        for r in p.rows:
            rows.append(replace(r, extra={**r.extra, "record": r.extra["record"] + len(records)}))
        records += p.records
        dirs += p.record_dirs
        for u, v in p.users.items():
            users.setdefault(u, v)
    return SessionSet(label, source, kind, rows, users, description=description,
                      split=parts[0].split if parts else None, records=records, record_dirs=dirs)


def _load_ab(d: Path, label: str | None) -> SessionSet:
    ab = read_ab(d)
    runs = ab["runs"]

    def arm(key: str) -> SessionSet:
        sub = d / str(runs[key])
        if not sub.is_dir():
            raise MissingInput(f"{d / AB_FILE} names run {runs[key]!r}, which is not in {d}", str(sub),
                               "copy the whole `sim ab` folder")
        return _load_run(sub, None)

    name = label or d.name
    sim = _merge_sets(name, str(d), "ab", [arm("control"), arm("treatment")],
                      f"simulated arms of A/B test {ab.get('control', 'control')} vs "
                      f"{ab.get('treatment', 'treatment')}")
    sim.ab = {**ab, "_dir": str(d)}
    if runs.get("true_control") and runs.get("true_treatment"):
        sim.truth = _merge_sets(f"{name}: true shopper", str(d), "ab",
                                [arm("true_control"), arm("true_treatment")],
                                "the world's own shopper on both arms (the known answer)")
    return sim


def _load_opera(p: str | Path, split: str | None, label: str | None) -> SessionSet:
    from customer_r1.data.opera import load_opera

    data = load_opera(p, splits=[split] if split else None)
    sessions = data.sessions
    if not sessions:
        raise BadInput(f"{p} holds no sessions" + (f" in split {split!r}" if split else ""), str(p),
                       f"splits there: {', '.join(data.splits) or 'none'}" if split else None)
    rows = []
    kept: list[Session] = []
    for s in sessions:
        got = stats.session_rows([s])
        if got:
            rows.append(replace(got[0], extra={"session_id": s.session_id, "variant": "",
                                               "end_reason": "", "session": len(kept)}))
            kept.append(s)
    world = Path(p) / "world" / "world.json"
    sim = None
    if world.is_file():
        from customer_r1.io import read_json

        info = read_json(world)
        sim = info.get("simulation") if isinstance(info, dict) else None
    what = ("simulated sessions (OPeRA layout)" if sim else
            "the world's generated sessions" if world.is_file() else "recorded sessions (OPeRA layout)")
    name = label or (str(p) if not Path(p).exists() else Path(p).name)
    return SessionSet(name, str(p), "opera", rows, dict(data.users),
                      description=what + (f", split {split}" if split else ", all splits"),
                      split=split, sessions=kept)


def load_sessions(path: str | Path, split: str | None = None, *, label: str | None = None) -> SessionSet:
    """Any set of sessions: a simulation run folder (``manifest.json`` + ``sessions.jsonl``,
    taken whole: ``split`` does not apply), a ``sim ab`` folder (its simulated arms; the true
    arms, when it has them, in ``.truth``; ``ab.json`` in ``.ab``), or a world / OPeRA folder
    or Hub id (``split``: only that split, e.g. the held-out ``test``)."""
    from customer_r1.data.opera import is_hub_id
    from customer_r1.sim.runner import MANIFEST_FILE, SESSIONS_FILE

    p = Path(path)
    if is_hub_id(str(path)):
        return _load_opera(str(path), split, label)
    if not p.exists():
        raise MissingInput(f"no such file or folder {path}", str(path),
                           "a simulation run, a `sim ab` folder, a world or an OPeRA folder")
    if (p / AB_FILE).is_file():
        return _load_ab(p, label)
    if (p / MANIFEST_FILE).is_file() or (p / SESSIONS_FILE).is_file():
        return _load_run(p, label)
    if (p / "shards").is_dir():
        raise BadInput(f"{p} holds an unmerged sharded run", str(p), f"run `customer-r1 sim merge {p}` first")
    return _load_opera(p, split, label)


# --------------------------------------------------------------------------- segments

_ORDINAL = [
    ("strongly disagree", "disagree", "neither agree nor disagree", "agree", "strongly agree"),
    ("very low", "low", "medium", "high", "very high"),
    ("never", "rarely", "less than once a month", "once a month", "a few times a month", "once a week",
     "a few times a week", "daily"),
    ("no", "yes"),
]


def flatten_survey(survey: Mapping[str, Any] | None, prefix: str = "") -> dict[str, str]:
    """A survey as ``section / question[ / statement] -> answer`` (nested objects joined
    with `` / ``); lists are joined with ``, ``; empty answers dropped."""
    out: dict[str, str] = {}
    if not isinstance(survey, Mapping):
        return out
    for k, v in survey.items():
        key = f"{prefix} / {k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten_survey(v, key))
            continue
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        text = " ".join(str(v).split()) if v is not None else ""
        if text and text.lower() not in ("nan", "none", "null"):
            out[key] = text
    return out


def _answer_order(answers: Iterable[str]) -> list[str]:
    """Answers in their natural order: a known scale (Likert, low..high, frequency), else
    by the first number in them (ages, incomes), else alphabetically."""
    ans = list(answers)
    low = {a: a.lower() for a in ans}
    for scale in _ORDINAL:
        if all(low[a] in scale for a in ans):
            return sorted(ans, key=lambda a: scale.index(low[a]))

    def first_number(a: str) -> float | None:
        m = re.search(r"\d[\d,]*\.?\d*", a)
        return float(m.group().replace(",", "")) if m else None

    nums = {a: first_number(a) for a in ans}
    if all(v is not None for v in nums.values()):
        return sorted(ans, key=lambda a: (nums[a], a))
    return sorted(ans)


def segment_questions(users: Mapping[str, User], ids: Iterable[str] | None = None, *, min_users: int = 5,
                      max_answers: int = 6) -> list[dict[str, Any]]:
    """Survey questions that split ``ids`` (default: every user with a survey) into persona
    segments: 2..``max_answers`` distinct answers; answers given by fewer than ``min_users``
    users are left out (their users are counted in ``left_out``); a question needs two
    segments left. Each: ``{"question", "segments": {answer: [user ids]}, "left_out"}``, answers
    in natural order."""
    chosen = list(users) if ids is None else [u for u in ids if u in users]
    flat = {u: flatten_survey(users[u].survey) for u in chosen}
    questions: dict[str, dict[str, list[str]]] = {}
    for u, answers in flat.items():
        for q, a in answers.items():
            questions.setdefault(q, {}).setdefault(a, []).append(u)
    out = []
    for q, by_answer in questions.items():
        if not 2 <= len(by_answer) <= max_answers:
            continue
        kept = {a: sorted(us) for a, us in by_answer.items() if len(us) >= min_users}
        if len(kept) < 2:
            continue
        left = sum(len(us) for a, us in by_answer.items() if a not in kept)
        out.append({"question": q, "segments": {a: kept[a] for a in _answer_order(kept)}, "left_out": left})
    return out


# --------------------------------------------------------------------------- per-user sums


def _columns(rows: Sequence[SessionRow]) -> dict[str, np.ndarray]:
    """Per-session columns every scalar figure is a ratio of."""
    cols = {
        "sessions": np.ones(len(rows)),
        "converted": np.array([float(r.converted) for r in rows]),
        "steps": np.array([float(r.n_steps) for r in rows]),
        "items": np.array([float(r.items_bought) for r in rows]),
        "value": np.array([float(r.order_value) for r in rows]),
    }
    for k in FUNNEL:
        cols[f"reach_{k}"] = (cols["converted"].copy() if k == "purchase"
                              else np.array([float(k in r.page_kinds) for r in rows]))
    return cols


def _counts(rows: Sequence[SessionRow], what: str, cats: Sequence[str]) -> np.ndarray:
    """``(n_rows, len(cats))`` counts of a categorical feature per session."""
    idx = {c: i for i, c in enumerate(cats)}
    out = np.zeros((len(rows), len(cats)))
    for j, r in enumerate(rows):
        if what in ("action_types", "click_types"):
            for c, n in getattr(r, what).items():
                out[j, idx[c]] += n
        elif what == "end" or (what == "exit" and not r.converted):
            out[j, idx[r.last_page_kind]] = 1
    return out


def _categories(rows: Sequence[SessionRow], what: str) -> list[str]:
    c: Counter[str] = Counter()
    for r in rows:
        if what in ("action_types", "click_types"):
            c.update(getattr(r, what))
        elif what == "end" or (what == "exit" and not r.converted):
            c[r.last_page_kind] += 1
    return [k for k, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]


class _Side:
    """One set's sessions summed per user, in the order its draws use."""

    def __init__(self, rows: Sequence[SessionRow], order: Sequence[str]) -> None:
        self.rows = list(rows)
        self.order = list(order)
        cols = _columns(self.rows)
        self.names = list(cols)
        self.sums = stats.per_user_sums(self.rows, self.order, np.stack([cols[n] for n in self.names], 1)
                                        if self.rows else np.zeros((0, len(self.names))))
        self.index = {u: i for i, u in enumerate(self.order)}
        self.of_row = np.array([self.index[r.user_id] for r in self.rows], dtype=int)

    def col(self, name: str) -> np.ndarray:
        return self.sums[:, self.names.index(name)]

    def ratio(self, num: str, den: str) -> float:
        """The figure on the whole set: sum of ``num`` over sum of ``den`` (NaN if 0)."""
        top, bottom = float(self.col(num).sum()), float(self.col(den).sum())
        return top / bottom if bottom > 0 else float("nan")

    def ratios(self, num: str, den: str, weights: np.ndarray) -> np.ndarray:
        """The figure in every replicate of ``weights`` (users drawn with multiplicity)."""
        return stats.ratio_of_sums(weights, self.col(num), self.col(den))

    def counts(self, what: str, cats: Sequence[str]) -> np.ndarray:
        return stats.per_user_sums(self.rows, self.order, _counts(self.rows, what, cats))


# --------------------------------------------------------------------------- one set


def _nan(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _iv(i: Interval) -> dict[str, float | None]:
    return {"value": _nan(i.value), "low": _nan(i.low), "high": _nan(i.high)}


@functools.lru_cache(maxsize=64)
def _draws(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``stats.draw_users``, cached: within a comparison every set of ``n`` users is drawn
    alike (segments of equal size share draws, as separate ``stats.bootstrap`` calls would)."""
    w = stats.draw_users(n, n_boot=n_boot, seed=seed)
    w.flags.writeable = False
    return w


@functools.lru_cache(maxsize=64)
def _pair_draws(n_a: int, n_b: int, n_boot: int, seed: int, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    if paired:
        w = _draws(n_a, n_boot, seed)
        return w, w
    wa, wb = stats.draw_user_pairs(n_a, n_b, n_boot=n_boot, seed=seed, paired=False)
    wa.flags.writeable = wb.flags.writeable = False
    return wa, wb


def _single(rows: Sequence[SessionRow], num: str, den: str, *, n_boot: int, seed: int,
            level: float) -> Interval:
    side = _Side(rows, stats.user_order(rows))
    w = _draws(len(side.order), n_boot, seed)
    return stats.interval_from_draws(side.ratio(num, den), side.ratios(num, den, w), level)


def _shares(vec: np.ndarray, cats: Sequence[str]) -> dict[str, float]:
    total = float(vec.sum())
    return {c: (float(v) / total if total else 0.0) for c, v in zip(cats, vec, strict=True)}


def describe_sessions(s: SessionSet | Sequence[SessionRow], *, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, Any]:
    """The figures of one set with user-bootstrap intervals (a report without a reference)."""
    rows = s.rows if isinstance(s, SessionSet) else list(s)
    side = _Side(rows, stats.user_order(rows))
    w = _draws(len(side.order), n_boot, seed)

    def fig(num: str, den: str) -> dict[str, float | None]:
        return _iv(stats.interval_from_draws(side.ratio(num, den), side.ratios(num, den, w), level))

    out: dict[str, Any] = {"sessions": len(rows), "users": len(side.order)}
    out["figures"] = {name: fig(num, den) for name, (num, den, _, _) in FIGURES.items()}
    out["reach"] = {k: fig(f"reach_{k}", "sessions") for k in FUNNEL}
    for what in ("action_types", "click_types", "end", "exit"):
        cats = _categories(rows, what)
        out[what] = _shares(side.counts(what, cats).sum(0), cats) if cats else {}
    out["lengths"] = [int(r.n_steps) for r in rows]
    return out


# --------------------------------------------------------------------------- two sets


@dataclass
class _Pair:
    """Two scoped sets and the user draws every figure of the comparison shares."""

    a: list[SessionRow]
    b: list[SessionRow]
    paired: bool
    n_boot: int
    seed: int
    level: float

    def __post_init__(self) -> None:
        order_a = sorted(stats.user_order(self.a)) if self.paired else stats.user_order(self.a)
        order_b = sorted(stats.user_order(self.b)) if self.paired else stats.user_order(self.b)
        self.sa, self.sb = _Side(self.a, order_a), _Side(self.b, order_b)
        self.wa, self.wb = _pair_draws(len(order_a), len(order_b), self.n_boot, self.seed, self.paired)
        self._perm: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def perm(self) -> tuple[np.ndarray, np.ndarray]:
        """Permutation weights over ``[users of a..., users of b...]`` (made on first use)."""
        if self._perm is None:
            self._perm = stats.permutation_weights(len(self.sa.order), len(self.sb.order), n_perm=self.n_boot,
                                                   seed=self.seed + 1, paired=self.paired)
        return self._perm

    def scalar(self, num: str, den: str) -> dict[str, Any]:
        """Each side with its own interval (as ``stats.bootstrap``) and the difference a - b
        (as ``stats.bootstrap_diff``); significant when the difference's interval misses 0."""
        a = _single(self.a, num, den, n_boot=self.n_boot, seed=self.seed, level=self.level)
        b = _single(self.b, num, den, n_boot=self.n_boot, seed=self.seed, level=self.level)
        draws = self.sa.ratios(num, den, self.wa) - self.sb.ratios(num, den, self.wb)
        d = stats.interval_from_draws(a.value - b.value, draws, self.level)
        sig = bool(np.isfinite(d.low) and not d.contains(0.0))
        return {"sim": _iv(a), "reference": _iv(b), "diff": _iv(d), "significant": sig}

    def divergence(self, what: str) -> dict[str, Any]:
        """JS divergence (bits) of a categorical mix: bootstrap interval and permutation p."""
        cats = list(dict.fromkeys(_categories(self.a + self.b, what)))
        if not cats:
            return {"categories": [], "sim": {}, "reference": {}, "js": None}
        ca, cb = self.sa.counts(what, cats), self.sb.counts(what, cats)
        from customer_r1.evaluation.fidelity import js_divergence  # (sklearn: load on use)

        # One-row matrices: a side without mass gives NaN (undefined) rather than an error.
        value = float(js_divergence(ca.sum(0, keepdims=True), cb.sum(0, keepdims=True))[0])
        boot = js_divergence(self.wa @ ca, self.wb @ cb)
        pooled = np.vstack([ca, cb])
        pa, pb = self.perm
        null = js_divergence(pa @ pooled, pb @ pooled)
        return {"categories": cats, "sim": _shares(ca.sum(0), cats), "reference": _shares(cb.sum(0), cats),
                "js": self._test(value, boot, null)}

    def _test(self, value: float, boot: np.ndarray, null: np.ndarray) -> dict[str, Any]:
        """Bootstrap interval of a divergence and its permutation p-value (the share of
        relabelled sets at least as far apart; NaN when the divergence is undefined)."""
        iv = stats.interval_from_draws(value, boot, self.level)
        finite = null[np.isfinite(null)]
        p = float("nan")
        if len(finite) and np.isfinite(value):
            p = float((1 + np.sum(finite >= value - 1e-12)) / (1 + len(finite)))
        return {**_iv(iv), "null_mean": _nan(float(finite.mean())) if len(finite) else None,
                "p_value": _nan(p), "significant": bool(np.isfinite(p) and p < 1 - self.level)}

    def lengths(self) -> dict[str, Any]:
        from scipy.stats import ks_2samp, wasserstein_distance

        la = np.array([r.n_steps for r in self.a], dtype=float)
        lb = np.array([r.n_steps for r in self.b], dtype=float)
        vals = np.concatenate([la, lb])
        value = float(wasserstein_distance(la, lb))

        def dist(wa: np.ndarray, wb: np.ndarray) -> float:
            if wa.sum() <= 0 or wb.sum() <= 0:
                return float("nan")
            return float(wasserstein_distance(vals, vals, wa, wb))

        zero_a, zero_b = np.zeros(len(lb)), np.zeros(len(la))
        boot = np.array([dist(np.concatenate([self.wa[i][self.sa.of_row], zero_a]),
                              np.concatenate([zero_b, self.wb[i][self.sb.of_row]]))
                         for i in range(self.n_boot)])
        of = np.concatenate([self.sa.of_row, len(self.sa.order) + self.sb.of_row])
        pa, pb = self.perm
        null = np.array([dist(pa[i][of], pb[i][of]) for i in range(self.n_boot)])
        ks = ks_2samp(la, lb)
        top = int(max(la.max(initial=0), lb.max(initial=0)))
        edges = list(range(0, top + 2))
        return {
            "mean": self.scalar("steps", "sessions"),
            "median": {"sim": _nan(float(np.median(la))) if len(la) else None,
                       "reference": _nan(float(np.median(lb))) if len(lb) else None},
            "wasserstein": self._test(value, boot, null),
            "ks": {"statistic": float(ks.statistic), "p_value": float(ks.pvalue),
                   "note": "treats sessions as independent (they are not: several per shopper), "
                           "so its p-value is optimistic; not counted among the tests"},
            "histogram": {"edges": edges,
                          "sim": np.histogram(la, bins=edges)[0].tolist(),
                          "reference": np.histogram(lb, bins=edges)[0].tolist()},
        }


def _per_user(a: Sequence[SessionRow], b: Sequence[SessionRow], *, n_boot: int, seed: int,
              level: float) -> dict[str, Any]:
    """Per-user conversion of the users in both sets, its correlation across users (bootstrap
    over users) and the noise ceiling of that correlation (split-half reliabilities)."""
    ga, gb = stats.by_user(a), stats.by_user(b)
    users = sorted(set(ga) & set(gb))
    x = np.array([stats.conversion(ga[u]) for u in users])
    y = np.array([stats.conversion(gb[u]) for u in users])
    pearson, spearman = stats.rank_correlations(x, y)
    rng = np.random.default_rng(seed)
    draws = np.full((n_boot, 2), np.nan)
    if len(users) >= 3:
        for i in range(n_boot):
            idx = rng.integers(0, len(users), size=len(users))
            draws[i] = stats.rank_correlations(x[idx], y[idx])
    rel_a, rel_b = _reliability(ga, users), _reliability(gb, users)
    ceiling = None
    if rel_a is not None and rel_b is not None and rel_a > 0 and rel_b > 0:
        ceiling = math.sqrt(rel_a * rel_b)
    return {
        "users": len(users),
        "pearson": _iv(stats.interval_from_draws(pearson, draws[:, 0], level)),
        "spearman": _iv(stats.interval_from_draws(spearman, draws[:, 1], level)),
        "reliability": {"sim": rel_a, "reference": rel_b, "ceiling": ceiling,
                        "note": "reliability of each set's per-user conversion (the share of its spread "
                                "across users that is not sampling noise); the ceiling sqrt(sim * reference) "
                                "is about the highest correlation two sets this noisy can show"},
        "points": [{"user_id": u, "sim": float(xi), "reference": float(yi), "sim_sessions": len(ga[u]),
                    "reference_sessions": len(gb[u])} for u, xi, yi in zip(users, x, y, strict=True)],
    }


def _reliability(groups: Mapping[str, list[SessionRow]], users: Sequence[str]) -> float | None:
    """How much of the spread of per-user conversion across ``users`` is the users' own
    (not sampling noise): 1 - mean squared standard error of a user's rate / variance of
    the rates (the reliability of group means, ICC(1,k)); None with fewer than 3 users of
    2+ sessions or no spread."""
    rates, noise = [], []
    for u in users:
        x = np.array([float(r.converted) for r in groups[u]])
        if len(x) >= 2:
            rates.append(x.mean())
            noise.append(x.var(ddof=1) / len(x))
    if len(rates) < 3 or np.var(rates, ddof=1) == 0:
        return None
    return float(np.clip(1 - np.mean(noise) / np.var(rates, ddof=1), 0.0, 1.0))


def _segments(a: Sequence[SessionRow], b: Sequence[SessionRow], users: Mapping[str, User], *,
              paired: bool, min_users: int, n_boot: int, seed: int, level: float) -> dict[str, Any]:
    ids = sorted({r.user_id for r in a} | {r.user_id for r in b})
    questions = segment_questions(users, ids, min_users=min_users)
    out = []
    tests = sig = 0
    points: list[tuple[float, float]] = []
    for q in questions:
        segs = []
        for answer, us in q["segments"].items():
            keep = set(us)
            sa = [r for r in a if r.user_id in keep]
            sb = [r for r in b if r.user_id in keep]
            if not sa or not sb:
                continue
            both = paired and {r.user_id for r in sa} == {r.user_id for r in sb}
            fig = _Pair(sa, sb, both, n_boot, seed, level).scalar("converted", "sessions")
            segs.append({"answer": answer, "users": len(keep), "sim_sessions": len(sa),
                         "reference_sessions": len(sb), **fig})
            tests += 1
            sig += fig["significant"]
            if fig["sim"]["value"] is not None and fig["reference"]["value"] is not None:
                points.append((fig["sim"]["value"], fig["reference"]["value"]))
        if len(segs) < 2:
            continue

        def spread(side: str, segs: list[dict[str, Any]] = segs) -> float | None:
            vals = [s[side]["value"] for s in segs if s[side]["value"] is not None]
            return float(max(vals) - min(vals)) if len(vals) >= 2 else None

        out.append({"question": q["question"], "left_out": q["left_out"], "segments": segs,
                    "spread": {"sim": spread("sim"), "reference": spread("reference")}})
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    r, _ = stats.rank_correlations(xs, ys)
    return {"questions": out, "min_segment_users": min_users, "tests": tests, "significant": sig,
            "expected_by_chance": round(tests * (1 - level), 2),
            "agreement": {"pearson": _nan(r), "segments": len(points),
                          "note": "conversion of every segment, simulated vs reference; segments of "
                                  "different questions hold the same users, so this is descriptive"}}


def compare_sessions(sim: SessionSet, ref: SessionSet, *, n_boot: int = 1000, seed: int = 0,
                     min_segment_users: int = 5, users: Users = "shared",
                     level: float = 0.95) -> dict[str, Any]:
    """Every session-level figure of ``sim`` beside ``ref`` with user-bootstrap intervals.

    ``users="shared"`` scores only the users both sets hold (the usual case: simulated vs
    true shopper on the same personas; held-out users when ``sim`` was run on them);
    ``"all"`` keeps every session of both. The differences are paired when the scoped sets
    hold the same users, unpaired otherwise (``bootstrap.paired``).
    """
    if users not in ("shared", "all"):
        raise BadOption(f"users must be 'shared' or 'all', got {users!r}", "--users")
    if n_boot < 10:
        raise BadOption(f"n_boot must be >= 10, got {n_boot}", "--n-boot")
    ua, ub = set(sim.user_ids), set(ref.user_ids)
    shared = sorted(ua & ub)
    if users == "shared":
        if not shared:
            raise BadInput(f"{sim.label} and {ref.label} share no users", f"{sim.source} / {ref.source}",
                           "compare different people with --users all")
        sim, ref = sim.restrict(shared), ref.restrict(shared)
    a, b = sim.rows, ref.rows
    paired = set(sim.user_ids) == set(ref.user_ids)
    pair = _Pair(a, b, paired, n_boot, seed, level)
    result: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "sim": sim.summary(),
        "reference": ref.summary(),
        "scope": {"users": users, "shared_users": shared, "n_shared_users": len(shared),
                  "only_sim_users": len(ua - ub), "only_reference_users": len(ub - ua),
                  "sim_sessions": len(a), "reference_sessions": len(b)},
        "bootstrap": {"n_boot": n_boot, "level": level, "seed": seed, "paired": paired,
                      "resampling": ("users, paired: the same users drawn for both sets" if paired else
                                     "users, unpaired: each set's users drawn independently"),
                      "divergence_test": ("permutation of users between the sets (paired: each user's "
                                          "two groups swap)" if paired else
                                          "permutation of users between the sets")},
    }
    result["figures"] = {name: pair.scalar(num, den) for name, (num, den, _, _) in FIGURES.items()}
    combined_users = {**sim.users, **ref.users}
    result["segments"] = _segments(a, b, combined_users, paired=paired, min_users=min_segment_users,
                                   n_boot=n_boot, seed=seed, level=level)
    result["per_user"] = _per_user(a, b, n_boot=n_boot, seed=seed, level=level)
    result["funnel"] = {
        "reach": {k: pair.scalar(f"reach_{k}", "sessions") for k in FUNNEL
                  if any(k in r.page_kinds for r in a + b) or k == "purchase"},
        "end": pair.divergence("end"),
        "exit": pair.divergence("exit"),
    }
    result["length"] = pair.lengths()
    result["action_types"] = pair.divergence("action_types")
    result["click_types"] = pair.divergence("click_types")
    result["significant"], result["tests"] = _significant(result)
    result["expected_by_chance"] = round(result["tests"] * (1 - level), 2)
    return result


def _significant(r: Mapping[str, Any]) -> tuple[list[str], int]:
    """Names of the main figures whose difference is significant, and how many were tested
    (segments are counted apart: see ``segments.significant``)."""
    tested: list[tuple[str, bool]] = []
    for name, f in r["figures"].items():
        tested.append((name, f["significant"]))
    for k, f in r["funnel"]["reach"].items():
        tested.append((f"reach_{k}", f["significant"]))
    for name, f in (("end_js", r["funnel"]["end"]), ("exit_js", r["funnel"]["exit"]),
                    ("action_type_js", r["action_types"]), ("click_type_js", r["click_types"])):
        if f.get("js"):
            tested.append((name, f["js"]["significant"]))
    tested.append(("length_wasserstein", r["length"]["wasserstein"]["significant"]))
    return [n for n, s in tested if s], len(tested)


# --------------------------------------------------------------------------- writing


def md_cell(text: Any) -> str:
    """Text from sessions or surveys made safe for a markdown table cell: HTML escaped (a
    markdown viewer may render raw HTML, and model output must never become markup),
    pipes escaped, whitespace collapsed."""
    import html

    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pp(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.1f}"


def format_figure(name: str, f: Mapping[str, Any], unit: str) -> tuple[str, str, str]:
    """(sim, reference, difference with interval) as text: shares in % (difference in
    points), steps and items with 2 decimals, money in $."""
    d = f["diff"]
    if unit == "share":
        return (_pct(f["sim"]["value"]), _pct(f["reference"]["value"]),
                f"{_pp(d['value'])} pp [{_pp(d['low'])}, {_pp(d['high'])}]")
    pre = "$" if unit == "$" else ""
    return (f"{pre}{_num(f['sim']['value'])}", f"{pre}{_num(f['reference']['value'])}",
            f"{_num(d['value'])} [{_num(d['low'])}, {_num(d['high'])}]")


def summary_rows(r: Mapping[str, Any]) -> list[tuple[str, str, str, str, bool]]:
    """The headline table: (figure, sim, reference, difference or divergence [interval],
    significant), shared by compare.md, the terminal and the report."""
    rows: list[tuple[str, str, str, str, bool]] = []
    for name, (_, _, unit, _) in FIGURES.items():
        f = r["figures"][name]
        rows.append((name.replace("_", " "), *format_figure(name, f, unit), f["significant"]))
    for k, f in r["funnel"]["reach"].items():
        rows.append((f"reach {k}", *format_figure(k, f, "share"), f["significant"]))
    pu = r["per_user"]
    for m in ("pearson", "spearman"):
        iv = pu[m]
        rows.append((f"per-user conv. {m}", f"n={pu['users']}", "", f"{_num(iv['value'])} "
                     f"[{_num(iv['low'])}, {_num(iv['high'])}]", False))
    for label, f in (("end page JS", r["funnel"]["end"]), ("exit page JS", r["funnel"]["exit"]),
                     ("action type JS", r["action_types"]), ("click type JS", r["click_types"])):
        js = f.get("js")
        if js:
            text = f"{_num(js['value'], 3)} [{_num(js['low'], 3)}, {_num(js['high'], 3)}]"
            rows.append((label, "", "", f"{text} p={_num(js['p_value'], 3)}", js["significant"]))
    w = r["length"]["wasserstein"]
    rows.append(("length Wasserstein", "", "", f"{_num(w['value'])} [{_num(w['low'])}, {_num(w['high'])}] "
                 f"p={_num(w['p_value'], 3)}", w["significant"]))
    ks = r["length"]["ks"]
    rows.append(("length KS", "", "", f"{_num(ks['statistic'], 3)} p={_num(ks['p_value'], 3)}", False))
    return rows


def render_markdown(r: Mapping[str, Any]) -> str:
    """``compare.md``: the comparison as a researcher reads it."""
    s, f, sc, bt = r["sim"], r["reference"], r["scope"], r["bootstrap"]
    lines = [
        f"# Session-level comparison: {md_cell(s['label'])} vs {md_cell(f['label'])}", "",
        f"- simulated: `{md_cell(s['source'])}` ({md_cell(s['description'])}): "
        f"{sc['sim_sessions']} sessions",
        f"- reference: `{md_cell(f['source'])}` ({md_cell(f['description'])}): "
        f"{sc['reference_sessions']} sessions",
        f"- users: {sc['users']} ({sc['n_shared_users']} shared; {sc['only_sim_users']} only simulated, "
        f"{sc['only_reference_users']} only in the reference)",
        f"- intervals: {100 * bt['level']:.0f}% percentile bootstrap, {bt['n_boot']} replicates, resampling "
        f"{bt['resampling']}; divergences tested by {bt['divergence_test']}",
        f"- significant: {', '.join(r['significant']) or 'none'} ({len(r['significant'])} of {r['tests']} "
        f"tests; about {r['expected_by_chance']} expected by chance)", "",
        "| figure | simulated | reference | difference or divergence [interval] | |", "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {'**significant**' if e else ''} |"
              for a, b, c, d, e in summary_rows(r)]
    seg = r["segments"]
    lines += ["", "## Conversion by persona segment", "",
              f"Questions with 2 to 6 answers, each answer kept with at least {seg['min_segment_users']} "
              f"users. {seg['significant']} of {seg['tests']} segment differences significant (about "
              f"{seg['expected_by_chance']} expected by chance). Segment conversion, simulated vs "
              f"reference: Pearson {_num(seg['agreement']['pearson'])} over {seg['agreement']['segments']} "
              "segments.", ""]
    if seg["questions"]:
        lines += ["| question | answer | users | simulated | reference | difference [interval] | |",
                  "|---|---|---|---|---|---|---|"]
        for q in seg["questions"]:
            for sgm in q["segments"]:
                a, b, c = format_figure("conversion", sgm, "share")
                lines.append(f"| {md_cell(q['question'])} | {md_cell(sgm['answer'])} | {sgm['users']} | "
                             f"{a} | {b} | {c} | {'**significant**' if sgm['significant'] else ''} |")
    else:
        lines.append("No survey question splits these users into segments of that size.")
    pu = r["per_user"]
    rel = pu["reliability"]
    lines += ["", "## Per-user conversion", "",
              f"{pu['users']} users in both sets. Pearson {_num(pu['pearson']['value'])} "
              f"[{_num(pu['pearson']['low'])}, {_num(pu['pearson']['high'])}], Spearman "
              f"{_num(pu['spearman']['value'])} [{_num(pu['spearman']['low'])}, "
              f"{_num(pu['spearman']['high'])}]. Reliability of per-user conversion: simulated "
              f"{_num(rel['sim'])}, reference {_num(rel['reference'])}; noise ceiling "
              f"{_num(rel['ceiling'])}.", ""]
    lines += ["## Where sessions end", "", "| last page | simulated (all) | reference (all) | "
              "simulated (no purchase) | reference (no purchase) |", "|---|---|---|---|---|"]
    end, ex = r["funnel"]["end"], r["funnel"]["exit"]
    for k in dict.fromkeys([*end["categories"], *ex["categories"]]):
        lines.append(f"| {md_cell(k)} | {_pct(end['sim'].get(k))} | {_pct(end['reference'].get(k))} | "
                     f"{_pct(ex['sim'].get(k))} | {_pct(ex['reference'].get(k))} |")
    for title, key in (("Action types", "action_types"), ("Click types", "click_types")):
        d = r[key]
        lines += ["", f"## {title}", "", "| type | simulated | reference |", "|---|---|---|"]
        lines += [f"| {md_cell(c)} | {_pct(d['sim'].get(c))} | {_pct(d['reference'].get(c))} |"
                  for c in d["categories"]]
    ks = r["length"]["ks"]
    lines += ["", "## Notes", "", f"- KS test of session lengths: {ks['note']}.",
              "- Divergences (JS in bits, Wasserstein in steps) are never below 0; their intervals show "
              "their precision and the permutation p-value says whether they exceed what two samples of "
              "the same shoppers show.", ""]
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def write_comparison(result: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``compare.json`` and ``compare.md`` in ``out_dir``, each written whole or not at all."""
    from customer_r1.io import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j = atomic_write_text(out / "compare.json",
                          json.dumps(_jsonable(result), indent=2, ensure_ascii=False) + "\n")
    m = atomic_write_text(out / "compare.md", render_markdown(result))
    return j, m

