"""Write small OPeRA directory layouts from Python dicts, for tests.

Any test can build an ``OPeRA_filtered``/``OPeRA_full`` tree in a tmp dir::

    from opera_layout import action_row, session_id_of, write_opera

    sid = session_id_of("u1")
    root = write_opera(tmp_path, actions={"train": [action_row(sid, "terminate")]})
    data = load_opera(tmp_path)

Sessions and users default to what the action rows need, so a test only spells out the
tables it is about. Values that are dicts or lists are written as JSON strings (as OPeRA
stores them); a column of only floats keeps its NaN (like a pandas column of all NaN).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: The real first row of OPeRA filtered train (long fields cut and marked), kept in the project.
REAL_ROW0 = Path(__file__).resolve().parent / "fixtures" / "opera" / "opera_filtered_action_row0.json"

Rows = Sequence[Mapping[str, Any]]

DEFAULT_SURVEY: dict[str, Any] = {
    "Demographic Information": {"Age": "25-34 years old", "Gender": "Woman"},
    "Self Description": {"Two sentence description": "I like deals. I read reviews."},
    "Shopping Preference": {"Online shopping frequency": "Weekly"},
    "Personality": {"Big Five Scores": {"Openness": "High"}},
}

_counter = itertools.count()
_T0 = datetime(2025, 4, 14, 21, 0, 0)


def session_id_of(user_id: str, n: int = 0) -> str:
    """An OPeRA-shaped session id ``{user_id}_{start}_{end}`` (n makes it unique)."""
    start = _T0 + timedelta(minutes=n)
    end = start + timedelta(minutes=3)
    return f"{user_id}_{start:%Y-%m-%dT%H:%M:%S}.000000Z_{end:%Y-%m-%dT%H:%M:%S}.000000Z"


def timestamp(second: float) -> str:
    """ISO timestamp with ms and Z (as OPeRA writes it), ``second`` seconds after a fixed start."""
    t = _T0 + timedelta(seconds=second)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def action_row(session_id: str, action_type: str = "click", **overrides: Any) -> dict[str, Any]:
    """A valid filtered-config action row; ``overrides`` replace or add columns.

    Defaults: a click has ``semantic_id="nav_bar.search_button"`` and click type
    ``search``; an input types ``"rice cooker"`` into ``nav_bar.search_input``; the
    timestamp increases with every row made, so rows come out in creation order.
    """
    n = next(_counter)
    row: dict[str, Any] = {
        "session_id": session_id,
        "action_id": f"a-{n:06d}",
        "timestamp": timestamp(n),
        "action_type": action_type,
        "click_type": None,
        "semantic_id": None,
        "mouse_position": {"clientX": 1, "clientY": 2},
        "element_meta": None,
        "url": "https://www.amazon.com/s?URL_MASKED",
        "window_size": {"width": 1920, "height": 934},
        "page_meta": {"search_term": [{"term": ""}]},
        "simplified_html": (
            '<html><body><input name="nav_bar.search_input" type="text"/>'
            '<button name="nav_bar.search_button">Go</button></body></html>'
        ),
        "rationale": None,
        "products": None,
        "input_text": None,
        "image": "",
    }
    if action_type == "click":
        row.update(semantic_id="nav_bar.search_button", click_type="search")
    elif action_type == "input":
        row.update(semantic_id="nav_bar.search_input", input_text="rice cooker")
    row.update(overrides)
    return row


def user_row(user_id: str, survey: Any = None, **overrides: Any) -> dict[str, Any]:
    """A user-table row; the survey defaults to :data:`DEFAULT_SURVEY`."""
    row: dict[str, Any] = {
        "user_id": user_id,
        "survey": DEFAULT_SURVEY if survey is None else survey,
        "raw_survey": "",
        "interview_transcript": "",
        "interview_transcript_processed": "### Shopping Preference\nLikes deals.",
    }
    row.update(overrides)
    return row


def real_action_row0(
    *, page_meta: Any = None, simplified_html: str | None = None
) -> dict[str, Any]:
    """The real first row of OPeRA filtered train, its cut fields replaced by small valid ones.

    Columns the viewer did not show (``_unknown``) are set missing.
    """
    raw = json.loads(REAL_ROW0.read_text())
    row = {k: v for k, v in raw.items() if not k.startswith("_")}
    row["page_meta"] = json.dumps(
        page_meta if page_meta is not None else {"search_term": [{"term": ""}], "cart_items": []}
    )
    row["simplified_html"] = simplified_html or (
        '<html><head></head><body><div name="nav_bar" role="navigation">'
        f'<a name="{row["semantic_id"]}">Tiger rice cooker</a></div></body></html>'
    )
    for column in raw.get("_unknown", []):
        row[column] = None
    return row


def encode_rows(rows: Rows) -> list[dict[str, Any]]:
    """Rows with every cell encoded by :func:`encode_cell` (e.g. for a fake Hub dataset)."""
    return [{k: encode_cell(v) for k, v in row.items()} for row in rows]


def sessions_for(actions: Rows) -> list[dict[str, Any]]:
    """The session table the action rows imply (user = session id prefix), first-seen order."""
    counts: dict[str, int] = {}
    for row in actions:
        sid = row.get("session_id")
        if isinstance(sid, str) and sid:
            counts[sid] = counts.get(sid, 0) + 1
    return [
        {"session_id": sid, "user_id": sid.split("_", 1)[0], "action_count": n}
        for sid, n in counts.items()
    ]


def users_for(sessions: Rows) -> list[dict[str, Any]]:
    """A user table with one default user per user id in the session rows."""
    seen: dict[str, None] = {}
    for row in sessions:
        uid = row.get("user_id")
        if isinstance(uid, str) and uid:
            seen.setdefault(uid, None)
    return [user_row(uid) for uid in seen]


def write_table(path: Path, rows: Rows, columns: Sequence[str] | None = None) -> Path:
    """Write rows as parquet; the columns are the union of the rows' keys (or ``columns``)."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    arrays = {}
    for name in columns:
        values = [encode_cell(row.get(name)) for row in rows]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays[name] = pa.array(values, from_pandas=True)  # NaN among strings -> null
        if arrays[name].type == pa.null():
            arrays[name] = arrays[name].cast(pa.string())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays) if arrays else pa.table({}), path)
    return path


def write_opera(
    root: Path,
    *,
    actions: Mapping[str, Rows],
    sessions: Mapping[str, Rows] | None = None,
    users: Mapping[str, Rows] | None = None,
    config: str = "filtered",
    sharded: bool = True,
    shards: int = 1,
) -> Path:
    """Write ``root/OPeRA_{config}/`` with action, session and user tables; return that dir.

    ``actions``/``sessions``/``users`` map split -> rows. A split missing from
    ``sessions`` (or ``users``) gets the table its actions (sessions) imply; pass an
    explicit (possibly empty) list to test a broken join. ``sharded`` writes
    ``action/{split}-NNNNN-of-NNNNN.parquet`` in ``shards`` pieces, else the older
    ``action/{split}/{split}.parquet``.
    """
    base = Path(root) / f"OPeRA_{config}"
    sessions = dict(sessions or {})
    users = dict(users or {})
    for split, rows in actions.items():
        rows = list(rows)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        if sharded:
            size = max(1, -(-len(rows) // shards))
            for i in range(shards):
                write_table(
                    base / "action" / f"{split}-{i:05d}-of-{shards:05d}.parquet",
                    rows[i * size : (i + 1) * size],
                    columns,
                )
        else:
            write_table(base / "action" / split / f"{split}.parquet", rows, columns)
        if split not in sessions:
            sessions[split] = sessions_for(rows)
    for split, rows in sessions.items():
        write_table(base / "session" / split / f"{split}.parquet", rows,
                    None if rows else ["session_id", "user_id", "action_count"])
        if split not in users:
            users[split] = users_for(rows)
    for split, rows in users.items():
        write_table(base / "user" / split / f"{split}.parquet", rows,
                    None if rows else ["user_id", "survey"])
    return base


def encode_cell(value: Any) -> Any:
    """A cell as OPeRA stores it: dicts and lists become JSON strings, the rest is unchanged."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value
