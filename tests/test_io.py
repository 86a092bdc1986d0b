"""Atomic outputs, one-line input errors, and the model-path rules (issue 15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from customer_r1.errors import BadFile, BadInput, MissingFile, ModelNotFound, UserError
from customer_r1.io import (
    atomic_dir,
    atomic_write_text,
    read_json,
    read_parquet,
    remove_stale_temps,
    temp_sibling,
)
from customer_r1.models import check_model_arg, looks_like_hub_id, looks_like_path, resolve_model


def _no_temps(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "out.json"
    atomic_write_text(f, "old")
    assert f.read_text() == "old"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_dir(tmp_path / "d") as tmp:
        (tmp / "half.parquet").write_bytes(b"PAR1")
        raise Boom
    assert not (tmp_path / "d").exists() and _no_temps(tmp_path)
    atomic_write_text(f, "new")
    assert f.read_text() == "new" and _no_temps(f.parent)


def test_atomic_dir_merge_and_swap(tmp_path: Path) -> None:
    out = tmp_path / "built"
    with atomic_dir(out) as tmp:
        (tmp / "train.parquet").write_text("1")
        (tmp / "build.json").write_text("{}")
    with atomic_dir(out, last=("build.json",)) as tmp:  # merge: replaces what it writes, keeps the rest
        (tmp / "test.parquet").write_text("2")
        (tmp / "build.json").write_text('{"v": 2}')
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "test.parquet", "train.parquet"]
    assert (out / "build.json").read_text() == '{"v": 2}'
    with atomic_dir(out, mode="swap") as tmp:  # swap: the folder is one unit
        (tmp / "world").mkdir()
    assert [p.name for p in out.iterdir()] == ["world"] and _no_temps(tmp_path)


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "report"
    dead = tmp_path / f".report.tmp-{2**22 + 12345}-abcdef01"  # no such pid
    dead.mkdir()
    mine = temp_sibling(out)
    mine.write_text("in use")
    assert remove_stale_temps(out) == 1
    assert not dead.exists() and mine.exists()
    assert str(os.getpid()) in mine.name


def test_readers_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match="no such file"):
        read_parquet(tmp_path / "nope.parquet")
    empty = tmp_path / "e.parquet"
    empty.write_bytes(b"")
    with pytest.raises(BadFile, match="empty file"):
        read_parquet(empty)
    cut = tmp_path / "c.parquet"
    cut.write_bytes(b"PAR1\x00\x01garbage")
    with pytest.raises(BadFile, match="truncated or not a parquet file") as info:
        read_parquet(cut)
    assert str(cut) in info.value.line() and isinstance(info.value, ValueError)
    j = tmp_path / "w.json"
    j.write_text('{\n  "a": 1,\n  "b": ')
    with pytest.raises(BadFile) as jinfo:
        read_json(j)
    assert f"{j}:3" in jinfo.value.line()


@pytest.mark.parametrize(
    ("value", "path_like", "hub"),
    [
        ("/abs/model", True, False), ("./m", True, False), ("../m", True, False), ("~/m", True, False),
        ("runs/sft/final", True, False), ("runs/", True, False), ("a\\b", True, False),
        ("Qwen/Qwen2.5-7B-Instruct", False, True), ("gpt2", False, True), ("runs/sft", False, True),
        ("bad name", False, False), ("org/na--me", False, False), ("org/name.", False, False),
    ],
)
def test_path_or_hub_id(value: str, path_like: bool, hub: bool) -> None:
    assert looks_like_path(value) is path_like
    assert looks_like_hub_id(value) is hub


def test_model_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound, match="no model at /nonexistent/ckpt"):
        check_model_arg("/nonexistent/ckpt")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    with pytest.raises(BadInput) as info:
        check_model_arg(str(ckpt))
    assert "missing weights" in info.value.what and "a tokenizer" in info.value.what
    (ckpt / "model.safetensors").write_bytes(b"x")
    (ckpt / "tokenizer.json").write_text("{}")
    assert resolve_model(str(ckpt)) == str(ckpt)
    adapter = tmp_path / "lora"  # a PEFT adapter has no config.json of its own
    adapter.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"):
        (adapter / name).write_text("{}")
    assert check_model_arg(str(adapter)) == str(adapter)
    assert check_model_arg("org/name") == "org/name"  # shaped like a Hub id: no network here
    with pytest.raises(ModelNotFound, match="Hugging Face Hub is unreachable") as hub:
        resolve_model("org/name-not-cached")
    assert hub.value.where == "--model" and isinstance(hub.value, UserError)
    assert resolve_model("smollm2", tokenizer_only=True) == "smollm2"
