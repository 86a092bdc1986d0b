"""benchmarks/gpu_pack_inputs.py: the lent GPU gets the same rows, smaller, and only what training reads."""

from __future__ import annotations

import importlib.util
import json
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


def _prepared_without_base(tmp_path, tokenizer):
    src = tmp_path / "run"
    table = pa.table({"prompt": ["persona ... page " * 50] * 40})
    for rel in ("built/pretrained-real/train.parquet", "world/OPeRA_filtered/action/train.parquet",
                "world/world/policy_train.parquet"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, src / rel)
    (src / "world/world/world.json").write_text("{}")
    (src / "built/pretrained-real/build.json").write_text(json.dumps({"config": {"tokenizer": tokenizer}}))
    return src


def test_pack_a_run_on_a_pretrained_base_packs_world_and_examples(tmp_path):
    pre = tmp_path / "pretrained"
    pre.mkdir()
    (pre / "model.safetensors").write_bytes(b"w")
    src = _prepared_without_base(tmp_path, str(pre))
    said = []
    _load().pack(src, tmp_path / "packed", say=said.append)
    assert pq.read_table(tmp_path / "packed/built/pretrained-real/train.parquet").num_rows == 40
    assert (tmp_path / "packed/world/world/world.json").exists()
    assert not (tmp_path / "packed/base").exists()
    assert "pretrained base" in said[0] and str(pre) in said[0]


def test_pack_refuses_a_run_with_no_base_and_no_pretrained_one(tmp_path):
    src = _prepared_without_base(tmp_path, str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match="name no pretrained base"):
        _load().pack(src, tmp_path / "out")
