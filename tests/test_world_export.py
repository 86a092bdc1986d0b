"""Export in OPeRA's filtered layout: determinism, format, sidecar, loader round trip, CLI."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from customer_r1.actions import CLICK_TYPES, Action
from customer_r1.world import (
    WorldConfig,
    ceilings_from_policy,
    export_world,
    generate_world,
    load_policy,
    load_world_info,
)

TINY = WorldConfig(users=4, sessions_per_user=3, seed=7, population=300)
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ISO_US = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    world = generate_world(TINY)
    out = tmp_path_factory.mktemp("world")
    export_world(world, out)
    return world, out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_gives_byte_identical_files(exported, tmp_path) -> None:
    _, out = exported
    export_world(generate_world(TINY), tmp_path)
    a, b = _files(out), _files(tmp_path)
    assert a.keys() == b.keys() and a == b
    other = tmp_path / "other"
    export_world(generate_world(WorldConfig(users=4, sessions_per_user=3, seed=8, population=300)),
        other)
    assert _files(other) != a


def test_layout_and_columns(exported) -> None:
    world, out = exported
    root = out / "OPeRA_filtered"
    for split in ("train", "test"):
        act = pq.read_table(root / "action" / f"{split}-00000-of-00001.parquet")
        ses = pq.read_table(root / "session" / split / f"{split}.parquet")
        usr = pq.read_table(root / "user" / split / f"{split}.parquet")
        assert all(str(f.type) == "string" for f in act.schema)
        assert str(ses.schema.field("action_count").type) == "int64"
        rows = act.to_pylist()
        counts = {r["session_id"]: r["action_count"] for r in ses.to_pylist()}
        assert sum(counts.values()) == len(rows)
        assert {r["user_id"] for r in usr.to_pylist()} == set(world.users)  # users in both
        for r in rows:
            uuid.UUID(r["action_id"])
            assert ISO_MS.fullmatch(r["timestamp"])
            uid = r["session_id"].split("_", 1)[0]
            assert re.fullmatch(rf"{re.escape(uid)}_{ISO_US}_{ISO_US}", r["session_id"])
            assert r["rationale"]
            assert r["url"].startswith("https://")
            json.loads(r["page_meta"]) and json.loads(r["mouse_position"])
            json.loads(r["window_size"])
            if r["action_type"] == "click":
                assert r["click_type"] in CLICK_TYPES
                assert f'name="{r["semantic_id"]}"' in r["simplified_html"]
                if r["click_type"] == "purchase":
                    assert json.loads(r["products"])
            elif r["action_type"] == "input":
                assert r["input_text"] and f'name="{r["semantic_id"]}"' in r["simplified_html"]
            else:
                assert r["semantic_id"] is None and r["click_type"] is None
    train = set(pq.read_table(root / "session/train/train.parquet")["session_id"].to_pylist())
    test = set(pq.read_table(root / "session/test/test.parquet")["session_id"].to_pylist())
    assert not train & test and len(train | test) == len(world.sessions)


def test_sidecar_probabilities(exported) -> None:
    world, out = exported
    by_id = {st.action_id: st for s in world.sessions for st in s.steps}
    for split in ("train", "test"):
        pol = load_policy(out, split)
        assert set(pol) == {st.action_id for s in world.split(split) for st in s.steps}
        for aid, row in pol.items():
            assert len(row.actions) == len(row.probs) == len(row.blind_probs)
            assert row.probs.sum() == pytest.approx(1.0) and row.probs.min() >= 0
            assert row.blind_probs.sum() == pytest.approx(1.0)
            st = by_id[aid]
            assert row.prob_of(st.action) > 0  # what happened was possible
            assert row.actions[-1] == Action.terminate().to_json()
            assert row.motive == st.motive.key
        info = load_world_info(out)
        assert ceilings_from_policy(pol) == pytest.approx(info["ceilings"][split])


def test_world_json(exported) -> None:
    world, out = exported
    info = load_world_info(out)
    assert info["config"]["seed"] == TINY.seed
    for key in ("ceiling_persona", "ceiling_blind", "action_mix", "click_type_mix",
                "median_session_length", "outcome_mix"):
        assert key in info["stats"]
    assert set(info["ceilings"]) == {"train", "test", "all"}
    assert info["ceilings"]["all"]["steps"] == sum(len(s.steps) for s in world.sessions)


def test_loader_round_trip(exported) -> None:
    from customer_r1.data.opera import load_opera

    world, out = exported
    loaded = load_opera(out)
    direct = world.to_shopping_data()
    assert set(loaded.users) == set(direct.users)
    for uid, u in loaded.users.items():
        assert u.survey == direct.users[uid].survey
    ls = {s.session_id: s for s in loaded.sessions}
    assert ls.keys() == {s.session_id for s in direct.sessions}
    for d in direct.sessions:
        got = ls[d.session_id]
        assert (got.user_id, got.split, got.outcome) == (d.user_id, d.split, d.outcome)
        assert len(got.steps) == len(d.steps)
        for g, e in zip(got.steps, d.steps, strict=True):
            assert (g.action_id, g.timestamp, g.kind, g.action, g.click_type, g.rationale) == (
                e.action_id, e.timestamp, e.kind, e.action, e.click_type, e.rationale)
            assert g.observation.html == e.observation.html
            assert g.observation.url == e.observation.url
            assert g.observation.page_meta == e.observation.page_meta
            assert g.products == e.products
            if g.action is not None and g.action.name:
                assert f'name="{g.action.name}"' in g.observation.html


def test_cli_generate_and_stats(tmp_path) -> None:
    from customer_r1.cli import app

    runner = CliRunner()
    out = tmp_path / "w"
    res = runner.invoke(app, ["world", "generate", "--users", "3", "--sessions-per-user", "2",
                              "--seed", "3", "--out", str(out), "--population", "200",
                              "--extra-train-sessions", "1"])
    assert res.exit_code == 0, res.output
    assert "persona-blind" in res.output
    info = load_world_info(out)
    assert info["config"]["extra_train_sessions"] == 1
    assert pq.read_table(out / "OPeRA_filtered" / "session").num_rows == 3 * 3
    res = runner.invoke(app, ["world", "stats", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    for key in ("ceiling_persona", "ceiling_blind", "action_mix", "click_type_mix",
                "median_session_length", "outcome_mix"):
        assert key in data
    assert 0 <= data["ceiling_blind"] <= data["ceiling_persona"] + 1e-9 <= 1 + 1e-9
    res = runner.invoke(app, ["world", "stats", str(out)])
    assert res.exit_code == 0 and "OPeRA" in res.output
    bad = runner.invoke(app, ["world", "generate", "--users", "2", "--sessions-per-user", "1",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0


def test_probs_are_finite(exported) -> None:
    world, _ = exported
    for s in world.sessions:
        for st in s.steps:
            assert np.isfinite(st.probs).all() and np.isfinite(st.blind_probs).all()


def test_extra_train_sessions_keep_every_other_session() -> None:
    from dataclasses import replace

    base = generate_world(TINY)
    more = generate_world(replace(TINY, extra_train_sessions=2))

    def key(s):
        return (s.session_id, s.user_id, s.split, [(st.action, st.rationale) for st in s.steps],
                [st.blind_probs.tolist() for st in s.steps])

    old = {s.session_id: key(s) for s in base.sessions}
    new = {s.session_id: key(s) for s in more.sessions}
    assert all(new[sid] == k for sid, k in old.items())  # nothing changed, the test split included
    added = [s for s in more.sessions if s.session_id not in old]
    assert len(added) == 2 * TINY.users and {s.split for s in added} == {"train"}
    assert base.ceilings("test") == more.ceilings("test")
    with pytest.raises(ValueError, match="extra_train_sessions"):
        WorldConfig(extra_train_sessions=-1)
