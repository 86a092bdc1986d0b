"""Issue 15, point 4: a long command that writes rows survives ``kill -9`` and resumes.

For ``eval predict`` and ``data rationales`` (``sim run`` reuses tests/killkit.py): the
real ``customer-r1`` script is killed with SIGKILL once its JSONL output holds a random
(seeded) number of rows, a torn half line is appended (what a kill during ``write``
leaves), and the same command is run again. The result must equal an uninterrupted
run's row for row, with no row lost or duplicated, and the rerun must report the torn
line it repaired.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from killkit import complete_lines, invoke, kill_at_lines, read_rows, tear_last_line
from tiny_lm import example_row, one_thread, save_tiny

N_ROWS = 40
#: Seeded: a failure reproduces with the same kill point.
RNG = random.Random(15)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny local model and N_ROWS built examples in each of test and train (train rows
    flagged as needing a rationale), written with the builder's own schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from customer_r1.data.examples import example_schema

    root = tmp_path_factory.mktemp("kill")
    model = save_tiny(root / "model")
    built = root / "built"
    built.mkdir()
    rows = {
        "test": [example_row(i, session=f"s{i // 8}") for i in range(N_ROWS)],
        "train": [example_row(i, split="train", session=f"s{i // 8}", needs_rationale=True)
                  for i in range(N_ROWS)],
    }
    for split, rs in rows.items():
        pq.write_table(pa.Table.from_pylist(rs, schema=example_schema()), built / f"{split}.parquet")
    (built / "build.json").write_text('{"tokenizer": "tiny"}')
    return {"model": model, "built": built}


def _kill_point() -> int:
    return RNG.randint(4, N_ROWS // 2)


def _common(assets: dict[str, Path]) -> list[str]:
    return ["--data", str(assets["built"]), "--model", str(assets["model"]), "--device", "cpu",
            "--batch-size", "1", "--max-new-tokens", "32", "--no-progress"]


def test_eval_predict_survives_kill(assets: dict[str, Path], tmp_path: Path) -> None:
    ref, out = tmp_path / "ref.jsonl", tmp_path / "preds.jsonl"
    args = ["eval", "predict", *_common(assets), "--mode", "free"]
    with one_thread():
        code, _, err = invoke([*args, "--out", str(ref)])
    assert code == 0, err
    k = _kill_point()
    on_disk = kill_at_lines([*args, "--out", str(out)], out, k, log=tmp_path / "killed.log")
    assert k <= on_disk < N_ROWS, f"killed with {on_disk} rows, wanted {k}..{N_ROWS - 1}"
    tear_last_line(out)

    with one_thread():
        code, _, err = invoke([*args, "--out", str(out)])
    assert code == 0, err
    assert "torn last line dropped=True" in err, err
    assert f"{N_ROWS - on_disk} predicted ({on_disk} of {N_ROWS} already done)" in err, err
    got, want = read_rows(out, "example_id"), read_rows(ref, "example_id")
    assert complete_lines(out) == N_ROWS and len(got) == N_ROWS
    assert got == want


def test_data_rationales_survives_kill(assets: dict[str, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    ref, out = tmp_path / "ref", tmp_path / "out"
    cache = out / "rationales.jsonl"
    args = ["data", "rationales", *_common(assets), "--split", "train"]
    with one_thread():
        code, _, err = invoke([*args, "--out", str(ref)])
    assert code == 0, err
    want = read_rows(ref / "rationales.jsonl", "example_id")
    assert len(want) > N_ROWS // 2, "the tiny model should give most rows a rationale"
    k = min(_kill_point(), len(want) - 4)
    on_disk = kill_at_lines([*args, "--out", str(out)], cache, k, log=tmp_path / "killed.log")
    assert k <= on_disk < len(want)
    assert not (out / "train.parquet").exists()  # written only at the end, never half
    tear_last_line(cache)

    with one_thread():
        code, _, err = invoke([*args, "--out", str(out)])
    assert code == 0, err
    assert "torn last line dropped=True" in err, err
    assert f"{on_disk} cached, {len(want) - on_disk} new" in err, err
    got = read_rows(cache, "example_id")
    assert got == want  # every rationale once, none lost, none duplicated
    rows = lambda d: sorted(pq.read_table(d / "train.parquet").to_pylist(), key=lambda r: r["example_id"])  # noqa: E731
    assert rows(out) == rows(ref)
