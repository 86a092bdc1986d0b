"""Outputs that are never half-written, and inputs whose corruption is one clear error.

A command killed mid-write (Ctrl-C, kill -9, a full disk) must not leave a truncated
``report.json`` or a parquet without its footer under the real name, where the next
step would trust it. Whole-file outputs are therefore written to a hidden temporary
sibling (same folder, so same filesystem) and renamed into place when complete; a
rename is atomic on POSIX. Folder outputs are built in a temporary sibling folder and
moved in at the end. Append-only JSONL checkpoints (``eval predict``, ``data
rationales``) are the exception: they are repaired on resume instead
(:func:`customer_r1.evaluation.predict.load_jsonl_checkpoint`).

The readers turn a missing, empty or corrupt file into :class:`~customer_r1.errors.UserError`
naming the file (and line), so the CLI answers in one line instead of a pyarrow or
json traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from customer_r1.errors import BadFile, MissingFile

_TMP_TAG = ".tmp-"


def temp_sibling(path: str | Path) -> Path:
    """A hidden, unique name beside ``path``: ``.NAME.tmp-PID-RANDOM``."""
    p = Path(path)
    return p.parent / f".{p.name}{_TMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: str | Path) -> int:
    """Delete temporaries of ``path`` left by a killed process (their pid is gone)."""
    p = Path(path)
    removed = 0
    if not p.parent.is_dir():
        return 0
    for cand in p.parent.glob(f".{p.name}{_TMP_TAG}*"):
        pid = cand.name.rsplit(_TMP_TAG, 1)[-1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            if cand.is_dir():
                shutil.rmtree(cand, ignore_errors=True)
            else:
                cand.unlink(missing_ok=True)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on failure it is
    removed. Parent folders are created."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest)
    tmp = temp_sibling(dest)
    try:
        yield tmp
        if tmp.exists():
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once or not at all."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` all at once or not at all."""
    return atomic_write_bytes(path, text.encode(encoding))


def _move_into(tmp: Path, dest: Path, order: Sequence[str]) -> None:
    """Move every entry of ``tmp`` into the existing folder ``dest``; files by atomic
    replace, sub-folders swapped whole. Names in ``order`` go last, in that order (a
    marker file such as ``build.json`` lands only after what it describes)."""
    entries = sorted(tmp.iterdir(), key=lambda e: (e.name in order, order.index(e.name) if e.name in order
                                                   else 0, e.name))
    for entry in entries:
        target = dest / entry.name
        if entry.is_dir() and target.is_dir():
            old = temp_sibling(target)
            os.rename(target, old)
            os.rename(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    tmp.rmdir()


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, *, mode: Literal["merge", "swap"] = "merge", last: Sequence[str] = ()
) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` to fill; on success move it into place.

    A new ``path`` is a single rename. An existing one is updated by ``mode``:
    ``merge`` replaces the entries the new folder holds and keeps the others (a build
    folder that already holds other splits); ``swap`` replaces the whole folder (a world,
    which is one unit). On failure the temporary folder is removed and ``path`` is left
    as it was.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest)
    tmp = temp_sibling(dest)
    tmp.mkdir()
    try:
        yield tmp
        if not dest.exists():
            os.rename(tmp, dest)
        elif mode == "swap":
            old = temp_sibling(dest)
            os.rename(dest, old)
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            _move_into(tmp, dest, list(last))
        _fsync_dir(dest.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- reading


def check_parquet(path: str | Path, *, where: str | None = None) -> None:
    """Raise unless ``path`` is a readable parquet file (reads only the footer)."""
    read_parquet_metadata(path, where=where)


def read_parquet_metadata(path: str | Path, *, where: str | None = None) -> Any:
    """The footer of a parquet file; missing, empty or truncated is a one-line error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    _check_file(p, where)
    try:
        return pq.read_metadata(p)
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(p, exc, where) from exc


def read_parquet(
    path: str | Path, columns: Sequence[str] | None = None, *, where: str | None = None
) -> Any:
    """``pyarrow.parquet.read_table`` whose failures name the file in one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    _check_file(p, where)
    try:
        return pq.read_table(p, columns=list(columns) if columns is not None else None)
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(p, exc, where) from exc


def read_json(path: str | Path, *, where: str | None = None) -> Any:
    """A JSON file's content; a syntax error names the line."""
    p = Path(path)
    _check_file(p, where)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BadFile("not UTF-8 text", where=where or str(p)) from exc
    except json.JSONDecodeError as exc:
        raise BadFile(f"not valid JSON ({exc.msg})", where=f"{p}:{exc.lineno}",
                      hint="the file is truncated or was edited by hand; regenerate it") from exc


def _check_file(p: Path, where: str | None) -> None:
    if not p.exists():
        raise MissingFile(f"no such file {p}", where=where)
    if p.is_dir():
        raise BadFile(f"{p} is a folder, not a file", where=where)
    if p.stat().st_size == 0:
        raise BadFile(f"{p} is an empty file", where=where)


def _parquet_error(p: Path, exc: BaseException, where: str | None) -> BadFile:
    reason = " ".join(str(exc).split())
    if "magic bytes" in reason or "size is 0" in reason or "footer" in reason.lower():
        reason = "truncated or not a parquet file"
    return BadFile(f"cannot read parquet file {p}: {reason[:200]}", where=where,
                   hint="the file is incomplete (an interrupted write?); rebuild it")
