"""Synthesise the missing rationales of training targets with an LLM.

OPeRA has a human rationale for only some steps; the paper fills the rest with an
LLM that is shown the context and the TRUE action and asked why the shopper did it.
This writes a copy of the built data in which every training row with
``needs_rationale=True`` gets that rationale in its ``completion`` target (through
``actions.format_target``, so the target stays exactly what the parser accepts) and
its ``rationale`` column, with ``rationale_source="synthetic"``. Human rationales
are never touched.

Resumable: every synthesised rationale is appended (fsynced) to
``OUT/rationales.jsonl`` keyed by ``example_id``; a re-run asks the backend only for
the rows missing there. Failed requests are not cached, so a re-run retries them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customer_r1.actions import Action, format_target
from customer_r1.errors import BadValue, MissingFile
from customer_r1.evaluation.backends.base import Backend
from customer_r1.evaluation.predict import ProgressBar, RepairReport, append_jsonl, load_jsonl_checkpoint
from customer_r1.io import atomic_file, atomic_write_text, read_parquet

CACHE_NAME = "rationales.jsonl"
MAX_RATIONALE_CHARS = 600

SYSTEM_PROMPT = (
    "You write the inner reasoning of one particular online shopper. You are shown who "
    "the shopper is, what they did so far in this shopping session, the page they are "
    "looking at, and the action they actually took next. Write the reason for that "
    "action as the shopper would think it at that moment: first person, one to three "
    "short sentences, grounded in their persona, their goal and what is on the page. "
    "Do not mention that you were told the action, do not describe the HTML, and do not "
    "name internal element ids. Reply with the rationale text only."
)


def describe_action(action: Action) -> str:
    """The true action in words, with the element name the shopper interacted with."""
    if action.type == "click":
        return f'clicked the element named "{action.name}"'
    if action.type == "input":
        return f'typed "{action.text}" into the field named "{action.name}"'
    return "left the session without buying anything (terminate)"


def _user_message(row: Mapping[str, Any]) -> str:
    prompt = row.get("prompt") or []
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def rationale_prompt(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """Chat messages asking for the rationale of one example's true action.

    The example's own user message carries persona, history and current page; its
    system message (which asks for a JSON prediction) is replaced by ours.
    """
    action = Action.from_json(row["action_json"])
    user = (
        f"{_user_message(row)}\n\n"
        f"---\nWhat the shopper actually did next: {describe_action(action)}.\n"
        f"Action: {action.to_json()}\n\n"
        "In the shopper's own voice, why did they do this?"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_LABEL = re.compile(r"^\s*(?:rationale|reason|reasoning)\s*[:\-]\s*", re.IGNORECASE)


def clean_rationale(text: str | None) -> str | None:
    """The rationale from a reply: unwraps ``{"rationale": ...}`` JSON, a code fence,
    a ``Rationale:`` label and surrounding quotes; collapses whitespace; caps length at
    a sentence end. None when nothing usable is left."""
    if not text:
        return None
    t = text.strip()
    fence = re.match(r"^```[a-zA-Z]*\s*\n(.*)\n\s*```$", t, re.DOTALL)
    if fence:
        t = fence.group(1).strip()
    if t.startswith("{"):
        try:
            obj = json.loads(t)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("rationale"), str):
            t = obj["rationale"]
    t = _LABEL.sub("", t)
    t = " ".join(t.split())
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        t = t[1:-1].strip()
    if len(t) > MAX_RATIONALE_CHARS:
        cut = t[:MAX_RATIONALE_CHARS]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        t = cut[: end + 1] if end > 0 else cut.rstrip() + "…"
    return t or None


def needs_synthesis(row: Mapping[str, Any]) -> bool:
    """Rows to fill: flagged by the builder, and never one with a human rationale
    (a belt-and-braces check: the builder should not flag those)."""
    if not row.get("needs_rationale"):
        return False
    return not (row.get("rationale_source") == "human" and row.get("rationale"))


def apply_rationale(row: Mapping[str, Any], rationale: str) -> dict[str, Any]:
    """A copy of the row with ``rationale`` as its target's rationale."""
    out = dict(row)
    action = Action.from_json(row["action_json"])
    with_r = bool(row.get("require_rationale", True))
    content = format_target(action, rationale, with_rationale=with_r)
    out["completion"] = [{"role": "assistant", "content": content}]
    out["rationale"] = rationale
    out["rationale_source"] = "synthetic"
    out["needs_rationale"] = False
    return out


@dataclass(slots=True)
class RationaleStats:
    out_dir: Path
    needed: int = 0
    cached: int = 0
    synthesised: int = 0
    failed: int = 0
    applied: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: What resuming found in ``rationales.jsonl`` (a torn last line after a kill, ...).
    repair: RepairReport = field(default_factory=RepairReport)


def check_paths(data: str | Path, out_dir: str | Path) -> list[Path]:
    """The parquet files of ``data``; raises when there are none or ``out_dir`` is ``data``."""
    src = Path(data)
    out = Path(out_dir)
    if out.resolve() == (src if src.is_dir() else src.parent).resolve():
        raise BadValue("--out must differ from --data: the input is left unchanged", where="--out")
    files = sorted(src.glob("*.parquet")) if src.is_dir() else [src]
    if not files or not files[0].exists():
        raise MissingFile(f"no parquet files in {src}", where="--data")
    return files


def synthesize_rationales(
    backend: Backend,
    data: str | Path,
    out_dir: str | Path,
    *,
    splits: Sequence[str] = ("train",),
    batch_size: int = 16,
    max_new_tokens: int = 160,
    temperature: float = 0.0,
    limit: int | None = None,
    progress: bool = True,
) -> RationaleStats:
    """Copy the built data at ``data`` to ``out_dir`` with synthetic rationales filled
    in for ``splits`` (see the module doc). ``limit`` caps the rows synthesised in this
    run (the rest stay ``needs_rationale=True``); ``data`` may be a directory or one
    parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = Path(data)
    out = Path(out_dir)
    files = check_paths(src, out)
    out.mkdir(parents=True, exist_ok=True)
    targets = {f for f in files if f.stem in splits or not src.is_dir()}
    tables = {f: read_parquet(f, where="--data") for f in files}
    rows_by_file = {f: tables[f].to_pylist() for f in targets}

    cache_path = out / CACHE_NAME
    cache, repair = load_jsonl_checkpoint(cache_path, keep=lambda r: bool(r.get("rationale")))
    stats = RationaleStats(out, repair=repair)
    need = [r for f in sorted(rows_by_file) for r in rows_by_file[f] if needs_synthesis(r)]
    stats.needed = len(need)
    todo = [r for r in need if str(r["example_id"]) not in cache]
    stats.cached = len(need) - len(todo)
    if limit is not None:
        todo = todo[:limit]

    start = time.perf_counter()
    bar = ProgressBar(progress, len(todo), "rationales")
    with bar as advance, cache_path.open("a", encoding="utf-8") as fh:
        step = max(1, batch_size, int(getattr(backend, "concurrency", 1)))
        for i in range(0, len(todo), step):
            batch = todo[i : i + step]
            gens = backend.generate(
                [rationale_prompt(r) for r in batch],
                max_new_tokens=max_new_tokens, temperature=temperature,
            )
            new = []
            for r, g in zip(batch, gens, strict=True):
                text = clean_rationale(g.text) if g.ok else None
                if text is None:
                    reason = (g.error or "empty rationale").split(":")[0]
                    stats.failures[reason] = stats.failures.get(reason, 0) + 1
                    stats.failed += 1
                    continue
                entry = {
                    "example_id": str(r["example_id"]),
                    "action_id": r.get("action_id"),
                    "split": r.get("split"),
                    "rationale": text,
                    "model": getattr(backend, "name", ""),
                }
                new.append(entry)
                cache[entry["example_id"]] = entry
            append_jsonl(fh, new)
            stats.synthesised += len(new)
            advance(len(batch))
    stats.seconds = time.perf_counter() - start

    for f in files:
        dest = out / f.name
        if f not in targets:
            if f.resolve() != dest.resolve():
                with atomic_file(dest) as tmp:
                    shutil.copyfile(f, tmp)
            continue
        rows = []
        for r in rows_by_file[f]:
            hit = cache.get(str(r["example_id"])) if needs_synthesis(r) else None
            if hit is not None:
                rows.append(apply_rationale(r, hit["rationale"]))
                stats.applied += 1
            else:
                rows.append(r)
        table = pa.Table.from_pylist(rows, schema=tables[f].schema)
        tmp = dest.with_name(dest.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, dest)
    _write_build_json(src, out, backend, stats)
    return stats


def _write_build_json(src: Path, out: Path, backend: Any, stats: RationaleStats) -> None:
    """Copy ``build.json`` with a note of the synthesis (which model, how many)."""
    build = src / "build.json" if src.is_dir() else src.parent / "build.json"
    meta: dict[str, Any] = {}
    if build.exists():
        try:
            meta = json.loads(build.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            meta = {}
    meta["rationale_synthesis"] = {
        "model": getattr(backend, "name", ""),
        "applied": stats.applied,
        "still_missing": stats.needed - stats.applied,
        "cache": CACHE_NAME,
    }
    atomic_write_text(out / "build.json", json.dumps(meta, indent=2, ensure_ascii=False))
