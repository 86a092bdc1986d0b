"""Write sessions in OPeRA-filtered's layout, so every OPeRA reader reads them unchanged.

``OUT/OPeRA_filtered/action/{split}-00000-of-00001.parquet``, ``session/{split}/{split}.parquet``
and ``user/{split}/{split}.parquet``, every column a string as in OPeRA (``action_count``
an int). The synthetic world's export and the simulator's runs both write through the
schemas here; the simulator writes domain :class:`~customer_r1.domain.Session` objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from customer_r1.domain import Session, ShoppingData, Step

ACTION_COLUMNS = ("session_id", "action_id", "timestamp", "action_type", "click_type",
                  "semantic_id", "mouse_position", "element_meta", "url", "window_size",
                  "page_meta", "simplified_html", "rationale", "products", "input_text", "image")
ACTION_SCHEMA = pa.schema([(c, pa.string()) for c in ACTION_COLUMNS])
SESSION_SCHEMA = pa.schema([("session_id", pa.string()), ("user_id", pa.string()),
                            ("action_count", pa.int64())])
USER_SCHEMA = pa.schema([(c, pa.string()) for c in (
    "user_id", "survey", "raw_survey", "interview_transcript", "interview_transcript_processed")])
WINDOW = json.dumps({"width": 1920, "height": 934})


def dumps(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def action_row(session_id: str, step: Step) -> dict[str, Any]:
    """One OPeRA action row of a domain step (a click, input or terminate)."""
    a = step.action
    if a is None:
        raise ValueError(f"step {step.action_id} has no action: only filtered kinds are written")
    meta = step.extra.get("element_meta")
    return {
        "session_id": session_id,
        "action_id": step.action_id,
        "timestamp": step.timestamp,
        "action_type": a.type,
        "click_type": step.click_type if a.type == "click" else None,
        "semantic_id": a.name,
        "mouse_position": dumps(step.extra.get("mouse_position") or {}),
        "element_meta": dumps(meta) if meta else "{}",
        "url": step.observation.url,
        "window_size": WINDOW,
        "page_meta": dumps(step.observation.page_meta or {}),
        "simplified_html": step.observation.html,
        "rationale": step.rationale,
        "products": dumps(step.products) if step.products else None,
        "input_text": a.text if a.type == "input" else None,
        "image": "",
    }


def user_row(user_id: str, survey: dict[str, Any] | None) -> dict[str, Any]:
    return {"user_id": user_id, "survey": dumps(survey) if survey is not None else None,
            "raw_survey": dumps(survey) if survey is not None else None,
            "interview_transcript": None, "interview_transcript_processed": None}


def write_table(path: Path, schema: pa.Schema, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_opera(data: ShoppingData, out_dir: str | Path, splits: Iterable[str] | None = None) -> Path:
    """Write ``data``'s sessions (per split) under ``out_dir/OPeRA_filtered``; returns that folder."""
    root = Path(out_dir) / "OPeRA_filtered"
    for split in splits or data.splits:
        sessions: list[Session] = data.split(split)
        rows = [action_row(s.session_id, st) for s in sessions for st in s.steps]
        write_table(root / "action" / f"{split}-00000-of-00001.parquet", ACTION_SCHEMA, rows)
        write_table(root / "session" / split / f"{split}.parquet", SESSION_SCHEMA, [
            {"session_id": s.session_id, "user_id": s.user_id, "action_count": len(s.steps)}
            for s in sessions])
        uids = list(dict.fromkeys(s.user_id for s in sessions))
        write_table(root / "user" / split / f"{split}.parquet", USER_SCHEMA, [
            user_row(u, data.users[u].survey if u in data.users else None) for u in uids])
    return root
