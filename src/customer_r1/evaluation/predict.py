"""Predict the next action for built examples and write ``preds.jsonl``, resumably.

Runs are long (hours against an endpoint, 40k-token prompts on a local GPU), so the
output file is the checkpoint: every batch is appended, flushed and fsynced; a re-run
reads what is there, drops a torn last line (a crash mid-write) and predicts only the
missing ``example_id``s. A kill -9 loses at most the batch in flight.

Row schema (docs/architecture.md): ``example_id``, ``completion``, ``action_json``,
``parse_error``, ``mode``, ``candidate_probs`` and the ground-truth columns copied
from the example; added here: ``action_json_true``, ``split``, ``require_rationale``,
``rationale`` (predicted), ``backend_error`` (why no completion came back, else null)
and ``model``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from customer_r1.actions import from_handle, probs_from_handles, try_parse
from customer_r1.errors import BadValue, MissingFile, UserError
from customer_r1.evaluation.backends.base import Backend, Generation
from customer_r1.evaluation.ranking import RankRequest

MODES = ("free", "ranked")

#: Columns copied from the example unchanged.
GROUND_TRUTH_COLUMNS = (
    "action_type",
    "click_type",
    "session_id",
    "user_id",
    "step_index",
    "is_last_step",
    "session_outcome",
    "split",
    "require_rationale",
)



class BackendFailing(UserError, RuntimeError):
    """Every prediction so far failed: a systematic problem (a server that is down, a
    wrong model name, no memory for the prompts), not one bad row."""


# --------------------------------------------------------------------------- examples


def resolve_split_path(data: str | Path, split: str) -> Path:
    """``BUILT/{split}.parquet`` for a directory, the file itself for a parquet file."""
    p = Path(data)
    if p.is_dir():
        f = p / f"{split}.parquet"
        if not f.exists():
            have = sorted(x.stem for x in p.glob("*.parquet"))
            raise MissingFile(f"{f} not found (splits here: {have or 'none'})", where="--split",
                              hint="choose one of the splits with --split")
        return f
    if not p.exists():
        raise MissingFile(f"{p} not found", where="--data")
    return p


def load_examples(data: str | Path, split: str = "test", limit: int | None = None) -> list[dict[str, Any]]:
    """Built-example rows of one split as plain dicts (prompt as a list of messages)."""
    from customer_r1.io import read_parquet

    rows = read_parquet(resolve_split_path(data, split), where="--data").to_pylist()
    return rows[:limit] if limit is not None else rows


# --------------------------------------------------------------------------- jsonl checkpoint


@dataclass(slots=True)
class RepairReport:
    """What :func:`load_jsonl_checkpoint` found and dropped."""

    kept: int = 0
    torn_tail: bool = False
    invalid_lines: int = 0
    duplicates: int = 0
    dropped_by_filter: int = 0
    rewritten: bool = False


def load_jsonl_checkpoint(
    path: str | Path,
    *,
    key: str = "example_id",
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[dict[str, dict[str, Any]], RepairReport]:
    """Read a jsonl checkpoint, repairing it on disk so appends can follow.

    Returns ``{key value: row}`` of the rows to keep. Dropped: a last line without its
    newline (torn write), lines that are not a JSON object with ``key``, repeated keys
    (first wins) and rows ``keep`` rejects (e.g. failed rows to retry). If anything is
    dropped the file is rewritten atomically (temp file + rename), so the next append
    never glues onto a fragment.
    """
    p = Path(path)
    report = RepairReport()
    rows: dict[str, dict[str, Any]] = {}
    if not p.exists():
        return rows, report
    data = p.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail.strip():
        report.torn_tail = True
    kept_lines: list[bytes] = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            report.invalid_lines += 1
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
            report.invalid_lines += 1
            continue
        if obj[key] in rows:
            report.duplicates += 1
            continue
        if keep is not None and not keep(obj):
            report.dropped_by_filter += 1
            continue
        rows[obj[key]] = obj
        kept_lines.append(raw)
    report.kept = len(rows)
    if report.torn_tail or report.invalid_lines or report.duplicates or report.dropped_by_filter:
        tmp = p.with_name(p.name + ".tmp")
        with tmp.open("wb") as fh:
            for raw in kept_lines:
                fh.write(raw + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        report.rewritten = True
    return rows, report


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays from pandas-built rows."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def append_jsonl(fh: IO[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows and make them durable before returning (flush + fsync)."""
    for row in rows:
        fh.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# --------------------------------------------------------------------------- rows


def pred_row(
    example: Mapping[str, Any],
    *,
    completion: str | None,
    mode: str,
    model: str = "",
    candidate_probs: Mapping[str, float] | None = None,
    backend_error: str | None = None,
) -> dict[str, Any]:
    """One preds.jsonl row: the parsed completion plus the example's ground truth."""
    require = bool(example.get("require_rationale", True))
    # ``--compress handles``: the model wrote the page's handles; rows keep real names.
    handles = example.get("page_names") if example.get("name_handles") else None
    if handles is not None and candidate_probs is not None:
        candidate_probs = probs_from_handles(candidate_probs, handles)
    action_json: str | None = None
    rationale: str | None = None
    if backend_error is not None:
        parse_error: str | None = f"backend error: {backend_error}"
    else:
        pred, parse_error = try_parse(completion, require_rationale=require)
        if pred is not None:
            action_json = from_handle(pred.action, handles).to_json()
            rationale = pred.rationale
    row: dict[str, Any] = {
        "example_id": str(example["example_id"]),
        "completion": completion,
        "action_json": action_json,
        "parse_error": parse_error,
        "mode": mode,
        "candidate_probs": dict(candidate_probs) if candidate_probs is not None else None,
        "action_json_true": example.get("action_json"),
    }
    for col in GROUND_TRUTH_COLUMNS:
        row[col] = example.get(col)
    row["rationale"] = rationale
    row["backend_error"] = backend_error
    row["model"] = model
    return row


# --------------------------------------------------------------------------- running


@dataclass(slots=True)
class PredictStats:
    """What a run did; ``written`` counts rows appended by this run only."""

    out_path: Path
    total: int = 0
    already_done: int = 0
    written: int = 0
    parse_failures: int = 0
    backend_failures: int = 0
    seconds: float = 0.0
    repair: RepairReport = field(default_factory=RepairReport)

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def _resolve_backend(backend: Any, mode: str, **hf_kwargs: Any) -> tuple[Any, Any]:
    """(backend for free generation, ranker for ranked mode or None)."""
    from customer_r1.evaluation.backends.hf import HFBackend

    if isinstance(backend, (str, Path)):
        backend = HFBackend.from_pretrained(backend, **hf_kwargs)
    if mode == "free":
        if not hasattr(backend, "generate"):
            raise TypeError(f"free mode needs a backend with generate(), got {type(backend).__name__}")
        return backend, None
    from customer_r1.evaluation.ranking import Ranker

    if isinstance(backend, Ranker):
        return None, backend
    if isinstance(backend, HFBackend):
        return backend, None
    raise BadValue(
        "ranked mode scores every candidate action with the model's log-probabilities, so it "
        "needs a local model (--model PATH); an HTTP endpoint or vLLM can only generate",
        where="--mode", hint="use --mode free",
    )


def run_predict(
    backend: Backend | Any,
    data: str | Path | Sequence[Mapping[str, Any]],
    out_path: str | Path,
    *,
    mode: str = "free",
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    retry_failed: bool = True,
    progress: bool = True,
    ranker_kwargs: Mapping[str, Any] | None = None,
    hf_kwargs: Mapping[str, Any] | None = None,
) -> PredictStats:
    """Predict every example of ``data`` not yet in ``out_path`` (see the module doc).

    ``backend``: any :class:`Backend`, a local model path, or (ranked) a ``Ranker``.
    ``data``: a built directory, a parquet file or the rows themselves.
    ``retry_failed``: rows whose backend failed (HTTP errors, malformed bodies) are
    dropped from the file and predicted again; parse failures are kept (they are the
    model's answer).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    gen_backend, ranker = _resolve_backend(backend, mode, **dict(hf_kwargs or {}))
    if mode == "ranked" and ranker is None:
        from customer_r1.evaluation.ranking import Ranker

        ranker = Ranker.from_backend(gen_backend, **dict(ranker_kwargs or {}))
    if isinstance(data, (str, Path)):
        examples = load_examples(data, split, limit)
    else:
        examples = [dict(r) for r in data][:limit] if limit is not None else [dict(r) for r in data]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    done, report = load_jsonl_checkpoint(
        out, keep=(lambda r: not r.get("backend_error")) if retry_failed else None
    )
    other_modes = sorted({str(r.get("mode")) for r in done.values()} - {mode})
    if other_modes:
        raise BadValue(
            f"{out} holds predictions made in mode {', '.join(other_modes)}; resuming it in mode "
            f"{mode!r} would mix the two", where="--out", hint="choose another --out",
        )
    todo: list[dict[str, Any]] = []
    seen = set(done)
    for e in examples:
        eid = str(e["example_id"])
        if eid not in seen:  # also drops repeated ids in the input
            seen.add(eid)
            todo.append(e)
    stats = PredictStats(
        out, total=len(examples), already_done=len(examples) - len(todo), repair=report
    )
    if gen_backend is not None:
        model_name = str(getattr(gen_backend, "name", ""))
    else:
        model_name = str(getattr(ranker.model, "name_or_path", "") or "")
    step = max(1, batch_size)
    if mode == "free" and hasattr(gen_backend, "concurrency"):
        step = max(step, int(gen_backend.concurrency))  # keep every connection busy

    fail_fast_after = max(8, step)
    start = time.perf_counter()
    bar = ProgressBar(progress, len(todo), f"predict ({mode})")
    with bar as advance, out.open("a", encoding="utf-8") as fh:
        for i in range(0, len(todo), step):
            batch = todo[i : i + step]
            if mode == "free":
                rows = _free_rows(gen_backend, batch, model_name, max_new_tokens, temperature, top_p)
            else:
                rows = _ranked_rows(ranker, batch, model_name)
            append_jsonl(fh, rows)
            for r in rows:
                stats.written += 1
                if r["backend_error"]:
                    stats.backend_failures += 1
                elif r["parse_error"]:
                    stats.parse_failures += 1
            advance(len(rows))
            if stats.backend_failures >= fail_fast_after and stats.backend_failures == stats.written:
                # Nothing has worked yet: a systematic problem, not a bad row.
                raise BackendFailing(
                    f"the first {stats.written} predictions all failed (last: "
                    f"{rows[-1]['backend_error']}); stopping", where=str(out),
                    hint="the file keeps them; a re-run retries them",
                )
    stats.seconds = time.perf_counter() - start
    return stats


def predict_examples(
    backend: Backend | Any,
    data: str | Path | Sequence[Mapping[str, Any]],
    out_path: str | Path,
    **kwargs: Any,
) -> Path:
    """Python entry point (the demo's): :func:`run_predict`, returning the preds path."""
    return run_predict(backend, data, out_path, **kwargs).out_path


def _free_rows(backend: Any, batch: Sequence[Mapping[str, Any]], model: str, max_new_tokens: int,
               temperature: float, top_p: float) -> list[dict[str, Any]]:
    gens: list[Generation] = backend.generate(
        [e["prompt"] for e in batch], max_new_tokens=max_new_tokens,
        temperature=temperature, top_p=top_p,
    )
    return [
        pred_row(e, completion=g.text, mode="free", model=model, backend_error=g.error)
        for e, g in zip(batch, gens, strict=True)
    ]


def _ranked_rows(ranker: Any, batch: Sequence[Mapping[str, Any]], model: str) -> list[dict[str, Any]]:
    rows = []
    for e in batch:
        try:
            req = RankRequest.coerce(e)  # the row's candidates (as handles with name_handles)
            r = ranker.predict(req.prompt, req.page_names, req.input_names,
                               require_rationale=req.require_rationale)
        except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. CUDA OOM on one huge page
            rows.append(pred_row(e, completion=None, mode="ranked", model=model,
                                 backend_error=f"ranking failed: {type(exc).__name__}: {exc}"[:500]))
            continue
        rows.append(pred_row(e, completion=r.completion, mode="ranked", model=model,
                             candidate_probs=r.candidate_probs))
    return rows


class ProgressBar:
    """A rich progress bar (rate and ETA) on stderr, or a no-op."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled = enabled
        self.total = total
        self.label = label
        self._p: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._p.start()
        task = self._p.add_task(self.label, total=self.total, rate="-")

        def advance(n: int) -> None:
            self._p.advance(task, n)
            speed = self._p.tasks[0].speed
            self._p.update(task, rate=f"{speed:.2f} rows/s" if speed else "-")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()
