"""Kill a long ``customer-r1`` run at a random point and resume it (issue 15, point 4).

The harness of ``tests/test_kill_resume.py``, written to be reused by any command that
appends rows to a JSONL file and resumes from it (``eval predict``, ``data
rationales``, ``sim run``)::

    ref = run_cli([...same args..., "--out", ref_dir])            # uninterrupted
    at = kill_at_lines(args, jsonl_path, k)                       # SIGKILL once k rows are on disk
    tear_last_line(jsonl_path)                                    # a write cut mid-line
    res = run_cli(args)                                           # resume
    assert read_rows(jsonl_path, key) == read_rows(ref_jsonl, key)

Commands run through the installed ``customer-r1`` script (the real entry point), on
one thread each: a shared 2-core box must not be oversubscribed, and timing must not
depend on what else runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).with_name("customer-r1"))
TORN = b'{"example_id": "torn-by-a-kill", "rationale": "half a li'


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a child run: offline, one thread, no GPU."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_cli(args: Sequence[str], *, timeout: float = 180, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run ``customer-r1 ARGS`` to the end; stdout and stderr as text."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env(), check=False)


def complete_lines(path: Path) -> int:
    """Newline-terminated lines in ``path`` (0 when it does not exist yet)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_at_lines(args: Sequence[str], jsonl: Path, at: int, *, log: Path, timeout: float = 180,
                  env: dict[str, str] | None = None) -> int:
    """Start ``customer-r1 ARGS``; SIGKILL it as soon as ``jsonl`` holds ``at`` complete
    lines. Returns the lines on disk after the kill. Fails if the run ends first (then
    ``at`` was too close to the end for this machine's speed)."""
    with log.open("wb") as err:
        proc = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=err,
                                env=env or cli_env())
        deadline = time.monotonic() + timeout
        try:
            while complete_lines(jsonl) < at:
                if proc.poll() is not None:
                    raise AssertionError(
                        f"the run ended (exit {proc.returncode}) before {jsonl} had {at} lines "
                        f"({complete_lines(jsonl)}): {log.read_text(errors='replace')[-2000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{jsonl} did not reach {at} lines in {timeout} s")
                time.sleep(0.002)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"not killed: exit {proc.returncode}"
    return complete_lines(jsonl)


def tear_last_line(path: Path, fragment: bytes = TORN) -> None:
    """Append a line cut mid-write (no newline), as a kill during ``write`` leaves it."""
    with path.open("ab") as fh:
        fh.write(fragment)


def read_rows(path: Path, key: str, *, drop: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """``{row[key]: row}`` of a JSONL file, without the ``drop`` fields (timings); every
    line must be complete JSON and every key unique (no row lost twice or duplicated)."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} ends with a torn line"
    rows: dict[str, dict[str, Any]] = {}
    for line in data.decode("utf-8").splitlines():
        row = json.loads(line)
        assert row[key] not in rows, f"duplicate {key} {row[key]!r} in {path}"
        rows[row[key]] = {k: v for k, v in row.items() if k not in set(drop)}
    return rows


def invoke(argv: Sequence[str]) -> tuple[int, str, str]:
    """``customer-r1 ARGV`` in this process, through the same entry as the script
    (:func:`customer_r1.cli.run`): (exit code, stdout, stderr)."""
    import contextlib
    import io

    from customer_r1.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(argv))
    return code, out.getvalue(), err.getvalue()
