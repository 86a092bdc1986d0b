"""Load OPeRA (a local parquet copy or the Hugging Face Hub) into :mod:`customer_r1.domain`.

Everything downstream (examples, rewards, metrics) trusts what this module returns, so
it is strict: a malformed row raises :class:`OperaFormatError` naming the file, the row
and the column. ``lenient=True`` skips such rows instead and counts them by reason in
``ShoppingData.skipped``; nothing is dropped without being counted.

Layout and columns: ``shared/reference/opera-schema.md``. Row numbers in errors are
0-based positions inside the named file (or Hub split).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NoReturn

import pyarrow as pa

from customer_r1.actions import CLICK_TYPES, Action
from customer_r1.domain import (
    FULL_ONLY_KINDS,
    Observation,
    Session,
    ShoppingData,
    Step,
    User,
    reduce_to_filtered,
)
from customer_r1.errors import BadInput, BadValue, MissingFile

log = logging.getLogger(__name__)

OperaConfig = Literal["filtered", "full"]
CONFIGS: tuple[str, ...] = ("filtered", "full")
TABLES: tuple[str, ...] = ("action", "session", "user")
#: Splits tried on the Hub when none are asked for (the Hub lists no others for OPeRA).
HUB_SPLITS: tuple[str, ...] = ("train", "test")

#: Raw ``action_type`` -> ``Step.kind``.
ACTION_KINDS: dict[str, str] = {
    "click": "click",
    "input": "input",
    "terminate": "terminate",
    "scroll": "scroll",
    "navigation": "navigation",
    "tab_activate": "tab_activate",
    "tabActivate": "tab_activate",
}

# Columns without which no row of the table can be read. Every other column is optional:
# absent means missing on every row (rules that need it then fail row by row).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "action": (
        "session_id",
        "action_id",
        "timestamp",
        "action_type",
        "click_type",
        "semantic_id",
        "simplified_html",
    ),
    "session": ("session_id", "user_id"),
    "user": ("user_id",),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "action": (
        "url",
        "mouse_position",
        "element_meta",
        "window_size",
        "page_meta",
        "rationale",
        "products",
        "input_text",
        "image",
        "navigation_type",
        "simplified_html_new_page",
        "scroll_detail",
        "target",
        "image_new_page",
    ),
    "session": ("action_count",),
    "user": ("survey", "raw_survey", "interview_transcript", "interview_transcript_processed"),
}
# Plain string columns copied into Step.extra as they are.
_EXTRA_TEXT = ("image", "navigation_type", "simplified_html_new_page", "image_new_page")
# JSON columns copied into Step.extra (decoded; unparsable is a format error).
_EXTRA_JSON = ("mouse_position", "window_size")
# Full-config columns of unknown shape: decoded when they hold JSON, else kept as text.
_EXTRA_MAYBE_JSON = ("scroll_detail", "target")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SHARD = re.compile(r"^(?P<split>.+?)-\d+-of-\d+\.parquet$")
_MISSING_STRINGS = frozenset({"", "NaN", "nan"})
_SPLIT_ORDER = {"train": 0, "validation": 1, "valid": 1, "dev": 1, "test": 2}


class OperaFormatError(BadInput, ValueError):
    """A row (or a whole column) of an OPeRA table that cannot be loaded.

    ``file`` is the parquet path or Hub label, ``row`` the 0-based row inside it (None
    when the whole file is affected, e.g. a missing column), ``column`` the offending
    column (``element_meta.data`` and ``page_meta.<key>`` for JSON inside JSON), and
    ``reason`` the short key a lenient load counts the skipped row under. A user
    mistake (:class:`~customer_r1.errors.BadInput`): the CLI prints it in one line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path,
        row: int | None,
        column: str,
        reason: str = "format",
    ) -> None:
        where = f"{file}: {'all rows' if row is None else f'row {row}'}, column {column!r}"
        super().__init__(message, where=where, hint="--lenient skips malformed rows and counts them")
        self.message = message
        self.file = str(file)
        self.row = row
        self.column = column
        self.reason = reason

    def __str__(self) -> str:
        where = "all rows" if self.row is None else f"row {self.row}"
        return f"{self.file}: {where}, column {self.column!r}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:  # keep the keyword-only fields when pickled
        return (_rebuild_error, (self.message, self.file, self.row, self.column, self.reason))


def _rebuild_error(message: str, file: str, row: int | None, column: str, reason: str) -> OperaFormatError:
    return OperaFormatError(message, file=file, row=row, column=column, reason=reason)


# ---------------------------------------------------------------------------- values


def is_missing(value: Any) -> bool:
    """OPeRA writes a missing value as null, NaN or "" (also the text "NaN"); all mean absent."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN
    if isinstance(value, str):
        return value in _MISSING_STRINGS or (value[:1].isspace() and not value.strip())
    return False


@dataclass(slots=True)
class _Table:
    """One file (or Hub split) of one table, as column lists: one pass per column, no pandas."""

    label: str
    split: str
    columns: dict[str, list[Any]]
    num_rows: int


class _Row:
    """Access to row ``i`` of a table with errors that know where they are."""

    __slots__ = ("i", "table")

    def __init__(self, table: _Table, i: int) -> None:
        self.table = table
        self.i = i

    def get(self, column: str) -> Any:
        col = self.table.columns.get(column)
        if col is None:
            return None
        value = col[self.i]
        return None if is_missing(value) else value

    def text(self, column: str) -> str | None:
        value = self.get(column)
        return None if value is None else str(value)

    def fail(self, column: str, message: str, reason: str) -> NoReturn:
        raise OperaFormatError(message, file=self.table.label, row=self.i, column=column, reason=reason)

    def json(self, column: str, expect: type | tuple[type, ...] | None = None) -> Any:
        """Decode a JSON column; missing (including a JSON null or NaN) gives None."""
        return _decode(self.get(column), self, column, expect)


def _decode(value: Any, row: _Row, column: str, expect: type | tuple[type, ...] | None) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            obj = json.loads(value)
        except json.JSONDecodeError as exc:
            row.fail(column, f"not valid JSON: {exc.msg} at char {exc.pos}", "bad_json")
        except RecursionError:
            row.fail(column, "JSON nested too deeply", "bad_json")
    elif isinstance(value, dict | list):
        obj = value  # already decoded (e.g. a struct column)
    else:
        row.fail(column, f"expected a JSON string, got {type(value).__name__}", "bad_json")
    if is_missing(obj):
        return None
    if expect is not None and not isinstance(obj, expect):
        kinds = (expect,) if isinstance(expect, type) else expect
        names = "/".join(t.__name__ for t in kinds)
        row.fail(column, f"expected a JSON {names}, got {type(obj).__name__}", "bad_json")
    return obj


def _looks_like_json(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip()[:1] in ("{", "[")


def _maybe_json(value: Any) -> Any:
    """Decode a string that holds a JSON object/list, else return it unchanged."""
    if not _looks_like_json(value):
        return value
    try:
        return json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return value


def _page_meta(row: _Row) -> dict[str, Any] | None:
    """``page_meta`` with its JSON-string values (JSON inside JSON) decoded too."""
    meta = row.json("page_meta", dict)
    if meta is None:
        return None
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if is_missing(value):
            out[key] = None
        elif _looks_like_json(value):
            out[key] = _decode(value, row, f"page_meta.{key}", None)
        else:
            out[key] = value
    return out


def _element_meta(row: _Row) -> dict[str, Any] | None:
    """``element_meta`` with its ``data`` string (JSON inside JSON) decoded."""
    meta = row.json("element_meta", dict)
    if meta is None:
        return None
    if "data" in meta:
        meta["data"] = (
            None if is_missing(meta["data"]) else _decode(meta["data"], row, "element_meta.data", None)
        )
    return meta


def _products(row: _Row) -> list[dict[str, Any]] | None:
    products = row.json("products", list)
    if products is None:
        return None
    for i, item in enumerate(products):
        if not isinstance(item, dict):
            row.fail("products", f"item {i} is a {type(item).__name__}, not an object", "bad_json")
        for key, value in item.items():
            item[key] = _maybe_json(value)  # e.g. options stored as a JSON string
    return products or None


def _timestamp(row: _Row) -> tuple[str, datetime]:
    value = row.get("timestamp")
    if isinstance(value, datetime):
        parsed = value
        text = value.isoformat()
    else:
        if value is None:
            row.fail("timestamp", "missing timestamp", "bad_timestamp")
        text = str(value)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            row.fail("timestamp", f"unparsable timestamp {text!r}", "bad_timestamp")
    if parsed.tzinfo is None:  # OPeRA writes Z; a naive time is taken as UTC so both compare
        parsed = parsed.replace(tzinfo=UTC)
    return text, parsed


# ---------------------------------------------------------------------------- rows -> domain


def _step(row: _Row, config: str) -> tuple[datetime, Step]:
    """One action row -> (sort key, Step). Raises OperaFormatError on a bad row."""
    raw_type = row.text("action_type")
    kind = ACTION_KINDS.get(raw_type or "")
    if kind is None or (config == "filtered" and kind in FULL_ONLY_KINDS):
        allowed = sorted(k for k, v in ACTION_KINDS.items() if config == "full" or v not in FULL_ONLY_KINDS)
        row.fail(
            "action_type",
            f"unknown action type {raw_type!r} for the {config} config; expected one of {allowed}",
            "unknown_action_type",
        )
    action_id = row.text("action_id")
    if action_id is None:
        row.fail("action_id", "missing action_id", "missing_value")
    text_ts, parsed_ts = _timestamp(row)

    semantic_id = row.text("semantic_id")
    click_type: str | None = None
    action: Action | None = None
    if kind in ("click", "input") and semantic_id is None:
        row.fail("semantic_id", f"{kind} without semantic_id", "missing_semantic_id")
    if kind == "click":
        click_type = row.text("click_type")
        if click_type is None:
            row.fail("click_type", "click without click_type", "bad_click_type")
        if click_type not in CLICK_TYPES:
            row.fail(
                "click_type",
                f"invalid click_type {click_type!r}; expected one of {list(CLICK_TYPES)}",
                "bad_click_type",
            )
        action = Action.click(semantic_id)  # type: ignore[arg-type]
    elif kind == "input":
        text = row.text("input_text")
        if text is None:
            if config == "filtered":
                row.fail("input_text", "input without input_text", "missing_input_text")
            text = ""  # full config: an empty input, which the reduction drops
        action = Action.input(semantic_id, text)  # type: ignore[arg-type]
    elif kind == "terminate":
        action = Action.terminate()

    extra: dict[str, Any] = {}
    element_meta = _element_meta(row)
    if element_meta is not None:
        extra["element_meta"] = element_meta
    for column in _EXTRA_JSON:
        value = row.json(column)
        if value is not None:
            extra[column] = value
    for column in _EXTRA_TEXT:
        value = row.text(column)
        if value is not None:
            extra[column] = value
    for column in _EXTRA_MAYBE_JSON:
        value = row.get(column)
        if value is not None:
            extra[column] = _maybe_json(value)
    if kind not in ("click", "input") and semantic_id is not None:
        extra["semantic_id"] = semantic_id  # e.g. the element a scroll happened in

    rationale = row.text("rationale")
    step = Step(
        action_id=action_id,
        timestamp=text_ts,
        kind=kind,
        observation=Observation(
            html=row.text("simplified_html") or "",
            url=row.text("url") or "",
            page_meta=_page_meta(row),
        ),
        action=action,
        click_type=click_type,
        rationale=rationale,
        rationale_source="human" if rationale is not None else None,
        products=_products(row),
        extra=extra,
    )
    return parsed_ts, step


def _user(row: _Row) -> User:
    user_id = row.text("user_id")
    if user_id is None:
        row.fail("user_id", "missing user_id", "missing_value")
    return User(
        user_id=user_id,
        survey=row.json("survey", dict),
        interview_processed=row.text("interview_transcript_processed"),
        interview_transcript=row.text("interview_transcript"),
        raw_survey=row.text("raw_survey"),
    )


class _Issues:
    """Raise (strict) or count by reason (lenient)."""

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.counts: Counter[str] = Counter()

    def report(self, err: OperaFormatError, rows: int = 1) -> None:
        if not self.lenient:
            raise err
        log.debug("skipped: %s", err)
        self.counts[err.reason] += rows

    def note(self, reason: str, n: int = 1) -> None:
        """Count something left out that is not an error (e.g. a session without actions)."""
        if n:
            self.counts[reason] += n


def _check_columns(table: _Table, kind: str, issues: _Issues) -> bool:
    """True when the table can be read; a missing required column fails every row."""
    for column in REQUIRED_COLUMNS[kind]:
        if column not in table.columns:
            issues.report(
                OperaFormatError(
                    f"{kind} table has no column {column!r} (columns: {sorted(table.columns)})",
                    file=table.label,
                    row=None,
                    column=column,
                    reason="missing_column",
                ),
                rows=table.num_rows,
            )
            return False
    return True


# ---------------------------------------------------------------------------- reading tables


def _read_parquet(path: Path, kind: str, split: str) -> _Table:
    from customer_r1.io import read_parquet, read_parquet_metadata

    names = read_parquet_metadata(path).schema.to_arrow_schema().names
    wanted = [c for c in (*REQUIRED_COLUMNS[kind], *OPTIONAL_COLUMNS[kind]) if c in names]
    return _from_arrow(read_parquet(path, columns=wanted), str(path), split)


def _from_arrow(table: pa.Table, label: str, split: str) -> _Table:
    return _Table(
        label=label,
        split=split,
        columns={name: table.column(name).to_pylist() for name in table.column_names},
        num_rows=table.num_rows,
    )


def _arrow_of(dataset: Any) -> pa.Table:
    """A ``datasets.Dataset`` (or an arrow table, or a list of dicts) as a pyarrow Table."""
    if isinstance(dataset, pa.Table):
        return dataset
    if hasattr(dataset, "with_format"):
        table = dataset.with_format("arrow")[:]
        if isinstance(table, pa.Table):
            return table
    return pa.Table.from_pylist(list(dataset))


def _split_files(table_dir: Path) -> dict[str, list[Path]]:
    """Split -> parquet files of one table: ``{split}-NNNNN-of-NNNNN.parquet`` shards or the
    older ``{split}/{split}.parquet``. The split comes from the path."""
    sharded: dict[str, list[Path]] = {}
    for path in sorted(table_dir.glob("*.parquet")):
        m = _SHARD.match(path.name)
        sharded.setdefault(m["split"] if m else path.stem, []).append(path)
    single: dict[str, list[Path]] = {}
    for path in sorted(table_dir.glob("*/*.parquet")):
        single.setdefault(path.parent.name, []).append(path)
    out = dict(single)
    for split, paths in sharded.items():
        if split in single:
            log.warning(
                "%s: split %r has both shards and %s/; reading the shards only", table_dir, split, split
            )
        out[split] = paths
    return out


def _config_dir(src: Path, config: str) -> Path:
    """SRC may be ``OPeRA_<config>`` itself or a folder that contains it."""
    if (src / "action").is_dir():
        named = {f"OPeRA_{c}": c for c in CONFIGS}.get(src.name)
        if named is not None and named != config:
            raise BadValue(
                f"{src} is the {named} config but config={config!r} was asked",
                where="--config", hint=f"pass config={named!r} or the folder above it",
            )
        return src
    candidate = src / f"OPeRA_{config}"
    if (candidate / "action").is_dir():
        return candidate
    raise MissingFile(f"no OPeRA layout at {src}: expected {src}/action/ or {candidate}/action/")


def _order_splits(splits: Sequence[str]) -> list[str]:
    return sorted(splits, key=lambda s: (_SPLIT_ORDER.get(s, 1), s))


def _local_tables(
    root: Path, config: str, splits: Sequence[str] | None
) -> Iterator[tuple[str, dict[str, list[_Table]]]]:
    base = _config_dir(root, config)
    files = {kind: _split_files(base / kind) for kind in TABLES}
    found = _order_splits(list(files["action"]))
    if not found:
        raise MissingFile(f"no action parquet files under {base / 'action'}")
    wanted = list(splits) if splits is not None else found
    unknown = [s for s in wanted if s not in files["action"]]
    if unknown:
        raise MissingFile(f"split(s) {unknown} not found under {base / 'action'}; found {found}",
                          where="--split")
    for split in wanted:
        tables: dict[str, list[_Table]] = {}
        for kind in TABLES:
            paths = files[kind].get(split)
            if not paths:
                raise MissingFile(
                    f"no {kind} table for split {split!r}: expected "
                    f"{base / kind / split / (split + '.parquet')}"
                )
            tables[kind] = [_read_parquet(p, kind, split) for p in paths]
        yield split, tables


def _hub_tables(
    repo: str, config: str, splits: Sequence[str] | None
) -> Iterator[tuple[str, dict[str, list[_Table]]]]:
    import datasets  # heavy; only the Hub path needs it

    for split in splits if splits is not None else HUB_SPLITS:
        tables: dict[str, list[_Table]] = {}
        for kind in TABLES:
            name = f"{config}_{kind}"
            arrow = _arrow_of(_load_hub_dataset(datasets, repo, name, split))
            keep = [c for c in (*REQUIRED_COLUMNS[kind], *OPTIONAL_COLUMNS[kind]) if c in arrow.column_names]
            tables[kind] = [_from_arrow(arrow.select(keep), f"{repo} [{name}, {split}]", split)]
        yield split, tables


def _load_hub_dataset(datasets: Any, repo: str, name: str, split: str) -> Any:
    """``datasets.load_dataset``; any failure to get the table is one user-facing error
    (datasets raises a dozen types for "offline", "no such repo" and "no such split")."""
    try:
        return datasets.load_dataset(repo, name, split=split)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
        what = (f"no local folder {repo} and the Hugging Face Hub is unreachable (HF_HUB_OFFLINE=1)"
                if offline else f"cannot load {repo} [{name}, {split}] from the Hugging Face Hub: "
                f"{type(exc).__name__}: {exc}")
        raise MissingFile(what, where=repo, hint="check the id and the network, or pass a local "
                          "OPeRA folder") from exc


def is_hub_id(src: str | Path) -> bool:
    """``owner/name`` that is not an existing local path."""
    text = str(src)
    return not Path(text).exists() and bool(_HUB_ID.match(text))


# ---------------------------------------------------------------------------- assembling


@dataclass(slots=True)
class _SessionRow:
    user_id: str
    order: int


def _load_split(
    split: str,
    tables: Mapping[str, list[_Table]],
    config: str,
    issues: _Issues,
    users: dict[str, User],
    seen_sessions: set[str],
    seen_actions: set[str],
) -> list[Session]:
    # users of this split
    split_users: dict[str, User] = {}
    for table in tables["user"]:
        if not _check_columns(table, "user", issues):
            continue
        for i in range(table.num_rows):
            row = _Row(table, i)
            try:
                user = _user(row)
                if user.user_id in split_users:
                    row.fail(
                        "user_id",
                        f"duplicate user_id {user.user_id!r} in the user table",
                        "duplicate_user_id",
                    )
            except OperaFormatError as err:
                issues.report(err)
                continue
            split_users[user.user_id] = user
    for uid, user in split_users.items():
        users.setdefault(uid, user)  # users recur across splits; the first table wins

    # sessions of this split: user from the session table, checked against the id prefix
    sessions: dict[str, _SessionRow] = {}
    dropped: set[str] = set()  # session rows skipped (lenient): their actions go too
    for table in tables["session"]:
        if not _check_columns(table, "session", issues):
            dropped.update(s for s in table.columns.get("session_id", []) if not is_missing(s))
            continue
        for i in range(table.num_rows):
            row = _Row(table, i)
            sid = row.text("session_id")
            try:
                if sid is None:
                    row.fail("session_id", "missing session_id", "missing_value")
                if sid in seen_sessions:
                    row.fail("session_id", f"duplicate session_id {sid!r}", "duplicate_session_id")
                uid = row.text("user_id")
                if uid is None:
                    row.fail("user_id", f"session {sid!r} has no user_id", "missing_value")
                if not sid.startswith(uid + "_"):
                    row.fail(
                        "user_id",
                        f"user_id {uid!r} is not the prefix of session_id {sid!r}",
                        "user_id_mismatch",
                    )
                if uid not in split_users:
                    row.fail(
                        "user_id",
                        f"user {uid!r} of session {sid!r} is not in the {split} user table",
                        "user_not_in_user_table",
                    )
            except OperaFormatError as err:
                issues.report(err)
                if sid is not None and sid not in seen_sessions:
                    dropped.add(sid)
                continue
            seen_sessions.add(sid)
            sessions[sid] = _SessionRow(uid, len(sessions))

    # actions, grouped by session and ordered by timestamp (ties: original row order)
    keyed: dict[str, list[tuple[datetime, int, Step]]] = {}
    rows_seen: Counter[str] = Counter()
    order = 0
    for table in tables["action"]:
        if not _check_columns(table, "action", issues):
            rows_seen.update(s for s in table.columns.get("session_id", []) if not is_missing(s))
            continue
        for i in range(table.num_rows):
            order += 1
            row = _Row(table, i)
            sid = row.text("session_id")
            if sid is not None:
                rows_seen[sid] += 1
            try:
                if sid is None:
                    row.fail("session_id", "missing session_id", "missing_value")
                if sid not in sessions:
                    if sid in dropped:
                        issues.note("session_skipped")
                        continue
                    row.fail(
                        "session_id",
                        f"session {sid!r} is not in the {split} session table",
                        "session_not_in_session_table",
                    )
                ts, step = _step(row, config)
                if step.action_id in seen_actions:
                    row.fail("action_id", f"duplicate action_id {step.action_id!r}", "duplicate_action_id")
            except OperaFormatError as err:
                issues.report(err)
                continue
            seen_actions.add(step.action_id)
            keyed.setdefault(sid, []).append((ts, order, step))

    out: list[Session] = []
    for sid in sessions:
        entries = keyed.get(sid)
        if not entries:
            issues.note("sessions_emptied" if rows_seen[sid] else "sessions_without_actions")
            continue
        entries.sort(key=lambda e: (e[0], e[1]))
        out.append(Session(sid, sessions[sid].user_id, split, [e[2] for e in entries]))
    issues.note("sessions_emptied", sum(1 for s in dropped if rows_seen[s]))
    return out


def load_opera(
    src: str | Path,
    *,
    config: OperaConfig = "filtered",
    splits: Sequence[str] | None = None,
    lenient: bool = False,
    reduce: bool = True,
) -> ShoppingData:
    """Load OPeRA's action, session and user tables into :class:`ShoppingData`.

    ``src``: an ``OPeRA_filtered``/``OPeRA_full`` folder, a folder containing one, or a
    Hub id (``NEU-HAI/OPeRA``) read through ``datasets.load_dataset``. ``splits``: all
    found (local) or train and test (Hub) when None or empty. ``reduce``: for the full config,
    reduce every session with :func:`customer_r1.domain.reduce_to_filtered` (drop scroll,
    navigation, tab switches and empty inputs); False keeps those steps.

    ``skipped`` counts rows left out by reason (lenient only), plus sessions left out
    (keys starting ``session``): ``session_skipped`` (action rows of a skipped session
    row), ``sessions_emptied`` (every row skipped), ``sessions_without_actions`` (in the
    session table, no action rows) and ``sessions_empty_after_reduction``.
    """
    if config not in CONFIGS:
        raise BadValue(f"config must be one of {CONFIGS}, got {config!r}", where="--config")
    if isinstance(splits, str):
        splits = [splits]
    if splits is not None and not splits:
        splits = None  # an empty selection (e.g. an unused repeatable CLI option) means all
    issues = _Issues(lenient)
    if is_hub_id(src):
        source = _hub_tables(str(src), config, splits)
    else:
        path = Path(src)
        if not path.exists():
            raise MissingFile(f"{src} is neither a local path nor a Hub id (owner/name)")
        source = _local_tables(path, config, splits)

    users: dict[str, User] = {}
    sessions: list[Session] = []
    seen_sessions: set[str] = set()
    seen_actions: set[str] = set()
    for split, tables in source:
        sessions.extend(_load_split(split, tables, config, issues, users, seen_sessions, seen_actions))

    if config == "full" and reduce:
        reduced = [reduce_to_filtered(s) for s in sessions]
        sessions = [s for s in reduced if s.steps]
        issues.note("sessions_empty_after_reduction", len(reduced) - len(sessions))

    skipped = dict(sorted(issues.counts.items()))
    if skipped:
        summary = ", ".join(f"{k}={v}" for k, v in skipped.items())
        log.warning("OPeRA %s load of %s left out: %s", config, src, summary)
    return ShoppingData(users=users, sessions=sessions, skipped=skipped, source=str(src))
