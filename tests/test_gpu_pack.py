"""benchmarks/gpu_pack_inputs.py: the lent GPU gets the same rows, smaller, and only what training reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_pack_inputs.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_pack_inputs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pack_keeps_rows_and_leaves_the_policy_behind(tmp_path):
    src = tmp_path / "run"
    table = pa.table({"prompt": ["persona ... page " * 50] * 400, "n": list(range(400))})
    for rel in ("built/base-real/train.parquet", "world/OPeRA_filtered/action/train.parquet",
                "world/world/policy_train.parquet"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, src / rel, compression="snappy")
    (src / "world/world/world.json").write_text("{}")
    (src / "built/base-real/build.json").write_text("{}")
    (src / "base").mkdir()
    (src / "base/model.safetensors").write_bytes(b"w")
    dest = tmp_path / "packed"
    _load().pack(src, dest)
    assert pq.read_table(dest / "built/base-real/train.parquet").equals(table)
    assert (dest / "built/base-real/train.parquet").stat().st_size < (
        src / "built/base-real/train.parquet"
    ).stat().st_size
    assert (dest / "world/world/world.json").exists() and (dest / "base/model.safetensors").exists()
    assert not (dest / "world/world/policy_train.parquet").exists()


def test_pack_refuses_an_unprepared_run(tmp_path):
    with pytest.raises(SystemExit, match="no prepared world"):
        _load().pack(tmp_path / "nothing", tmp_path / "out")
