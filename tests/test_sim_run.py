"""The simulation runner: the loop reproduces the world's own statistics, results do not depend
on concurrency or sharding, runs resume after kill -9, and policies' failures become error steps."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from customer_r1.data.opera import load_opera
from customer_r1.sim import stats
from customer_r1.sim.runner import load_run, records_to_data
from customer_r1.sim.simulate import simulate
from customer_r1.world import WorldConfig, export_world, generate_world

BIN = Path(sys.executable).parent / "customer-r1"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("simworld")
    export_world(generate_world(WorldConfig(users=30, sessions_per_user=10, seed=11, population=50)), d)
    return d


def _sessions(run: Path):
    _, records = load_run(run)
    from customer_r1.sim.runner import load_personas_of

    return records_to_data(records, load_personas_of(run), "test").sessions


def test_world_policy_through_the_env_reproduces_the_worlds_statistics(world_dir, tmp_path):
    """Point 5 of the simulation issue: the same users, the same number of sessions; every
    figure's bootstrap interval of (simulated - generated) holds 0."""
    out = tmp_path / "sim"
    manifest = simulate(world=world_dir, out=out, policy="world", sessions_per_user=10, seed=1,
                        concurrency=8, progress=False)
    assert manifest["counts"]["sessions"] == 300 and manifest["counts"]["error_steps"] == 0
    sim = stats.session_rows(_sessions(out))
    gen = stats.session_rows(load_opera(world_dir).sessions)
    figures = [stats.conversion, stats.mean_length, stats.action_share("input"),
               stats.action_share("terminate"), stats.reach("reviews"), stats.reach("cart"),
               stats.reach("store"), stats.order_value]
    for f in figures:
        ci = stats.bootstrap_diff(sim, gen, f, n_boot=400, level=0.99, seed=3)
        assert ci.contains(0.0), f"{f.__name__}: simulated - generated = {ci}"
    # and the loop is not trivially matching: a shopper that ignores its persona differs
    assert stats.conversion(sim) > 0.2 and stats.mean_length(sim) > 5


def test_sessions_do_not_depend_on_concurrency_or_sharding(world_dir, tmp_path):
    one = simulate(world=world_dir, out=tmp_path / "k1", policy="world", sessions_per_user=2, seed=5,
                   concurrency=1, progress=False)
    many = simulate(world=world_dir, out=tmp_path / "k7", policy="world", sessions_per_user=2, seed=5,
                    concurrency=7, progress=False)
    for i in range(3):
        last = simulate(world=world_dir, out=tmp_path / "sh", policy="world", sessions_per_user=2, seed=5,
                        concurrency=3, shard=(i, 3), progress=False)
    assert last["shard"] == "merged from 3 shards"
    a = (tmp_path / "k1" / "sessions.jsonl").read_text()
    assert a == (tmp_path / "k7" / "sessions.jsonl").read_text()
    assert a == (tmp_path / "sh" / "sessions.jsonl").read_text()
    assert one["counts"] == many["counts"] == {**last["counts"], "sessions_resumed": 0}
    # written in OPeRA's layout: the loader reads it back, every step with its rationale
    data = load_opera(tmp_path / "sh")
    assert len(data.sessions) == 60 and all(st.rationale for s in data.sessions for st in s.steps)
    other = simulate(world=world_dir, out=tmp_path / "seed6", policy="world", sessions_per_user=2, seed=6,
                     concurrency=4, progress=False)
    assert other["counts"] != one["counts"] or (tmp_path / "seed6" / "sessions.jsonl").read_text() != a


def test_a_run_refuses_other_settings_in_its_folder(world_dir, tmp_path):
    from customer_r1.errors import BadOption

    simulate(world=world_dir, out=tmp_path / "r", policy="world", sessions_per_user=1, seed=1, progress=False)
    with pytest.raises(BadOption, match="other settings"):
        simulate(world=world_dir, out=tmp_path / "r", policy="world", sessions_per_user=1, seed=2,
                 progress=False)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_and_resume_equals_an_uninterrupted_run(world_dir, tmp_path):
    args = ["sim", "run", "--world", str(world_dir), "--policy", "world", "--sessions-per-user", "8",
            "--seed", "9", "--concurrency", "4", "--no-progress"]
    whole = tmp_path / "whole"
    subprocess.run([str(BIN), *args, "--out", str(whole)], check=True, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    target = random.Random(7).randint(5, 60)
    proc = subprocess.Popen([str(BIN), *args, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while _lines(killed / "sessions.jsonl") < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; give it more sessions"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = _lines(killed / "sessions.jsonl")
    assert kept >= target and kept < 240 and not (killed / "manifest.json").exists()
    with (killed / "sessions.jsonl").open("a") as fh:
        fh.write('{"key": "torn')  # a write cut short
    res = subprocess.run([str(BIN), *args, "--out", str(killed)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"{kept} sessions kept" in res.stderr
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["repaired"]["torn_tail"] is True and manifest["counts"]["sessions_resumed"] == kept
    a = [json.loads(x) for x in (whole / "sessions.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (killed / "sessions.jsonl").read_text().splitlines()]
    assert len(b) == len({r["key"] for r in b}) == 240  # nothing lost, nothing twice
    assert sorted(a, key=lambda r: r["key"]) == sorted(b, key=lambda r: r["key"])


def test_endpoint_policy_retries_bad_output_then_records_an_error_step(world_dir, tmp_path):
    from tiny_lm import FakeOpenAI

    calls = {"n": 0}

    def reply(content: str) -> str:
        calls["n"] += 1
        if "Cart" in content and calls["n"] % 2:
            return "I think I will click the cart!"  # not JSON: retried, then an error step
        if "search_button" in content and "(step 1)" in content:
            return '{"rationale": "Looking for coffee.", "action": {"type": "input", ' \
                   '"name": "nav_bar.search_input", "text": "coffee beans"}}'
        return '{"rationale": "Nothing for me.", "action": {"type": "click", "name": "no.such.thing"}}'

    build = tmp_path / "build.json"
    build.write_text(json.dumps({"config": {"prompt_style": "compact", "token_budget": None,
                                            "tokenizer": None, "max_history_steps": 3}}))
    with FakeOpenAI(reply) as server:
        manifest = simulate(world=world_dir, out=tmp_path / "api", endpoint=server.url, model_name="m",
                            build_config=build, sessions_per_user=1, users=None, seed=0, concurrency=4,
                            max_errors=3, progress=False)
    c = manifest["counts"]
    assert c["sessions"] == 30
    assert c["end_reasons"] == {"max_errors": 30}  # every session ended on invalid actions
    assert c["errors"]["unknown_element"] > 0
    _, records = load_run(tmp_path / "api")
    steps = [e for r in records for e in r["steps"]]
    failed = [e for e in steps if e.get("policy_error")]
    assert failed and all("unparsable output" in e["policy_error"] and e["error_kind"] == "malformed"
                          for e in failed)
    assert manifest["policy"]["invalid_outputs"] >= len(failed)
    assert any(e["action"] and e["action"]["type"] == "input" for e in steps)


def test_a_moved_checkpoint_and_a_run_from_before_a_new_build_field_resume():
    """The key a resumed run must share: a checkpoint's tokenizer path is not in it (its
    sha256 is), a build field added later counts only away from its default, and
    everything else that determines the sessions still differs."""
    from customer_r1.sim.runner import normal_key

    build = {"persona_mode": "real", "token_budget": 832, "tokenizer": "runs/x/models/real/grpo"}
    old = {"seed": 0, "policy": {"kind": "model", "checkpoint_sha256": "ab", "build": build}}
    copied = {**build, "tokenizer": "demo-model/mix", "persona_budget": "inside"}
    moved = {"seed": 0, "policy": {"kind": "model", "checkpoint_sha256": "ab", "build": copied}}
    assert normal_key(old) == normal_key(moved)
    assert normal_key(old) != normal_key({**moved, "seed": 1})
    other_weights = {**moved, "policy": {**moved["policy"], "checkpoint_sha256": "cd"}}
    assert normal_key(old) != normal_key(other_weights)
    outside = {**moved, "policy": {**moved["policy"], "build": {**build, "persona_budget": "outside"}}}
    assert normal_key(old) != normal_key(outside)
    endpoint = {"policy": {"kind": "endpoint", "build": {"tokenizer": "a"}}}  # no checkpoint: kept
    assert normal_key(endpoint) != normal_key({"policy": {"kind": "endpoint", "build": {"tokenizer": "b"}}})
