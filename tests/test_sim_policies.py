"""Policies of the simulator: a checkpoint through the batched ranker (valid actions, sampled
variety, the same sessions whatever the concurrency), the page-kind baseline, the world's
shopper on personas it cannot read."""

from __future__ import annotations

import json

import pytest
from tiny_lm import one_thread, save_tiny

from customer_r1.domain import User
from customer_r1.errors import BadInput
from customer_r1.sim.runner import load_run
from customer_r1.sim.simulate import simulate
from customer_r1.world import WorldConfig, export_world, generate_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("polworld")
    export_world(generate_world(WorldConfig(users=4, sessions_per_user=3, seed=2, population=50)), d)
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = save_tiny(tmp_path_factory.mktemp("tiny") / "m", seed=1)
    (d / "build.json").write_text(json.dumps({"config": {
        "prompt_style": "compact", "token_budget": 3000, "max_history_steps": 2, "persona_mode": "real"}}))
    return d


def _runs(path):
    _, records = load_run(path)
    return [[(e["action"], e["rationale"]) for e in r["steps"]] for r in records]


def test_checkpoint_sessions_are_valid_varied_and_independent_of_concurrency(world_dir, ckpt, tmp_path):
    with one_thread():
        common = dict(world=world_dir, model=str(ckpt), sessions_per_user=2, seed=3, max_steps=6,
                      progress=False, device="cpu")
        one = simulate(out=tmp_path / "k1", concurrency=1, **common)
        four = simulate(out=tmp_path / "k4", concurrency=4, **common)
    assert one["counts"]["error_steps"] == 0  # ranked: valid by construction
    assert four["counts"] == {**one["counts"], "sessions_resumed": 0}
    assert one["counts"]["sessions"] == 8 and one["policy"]["kind"] == "model"
    assert len(one["policy"]["checkpoint_sha256"]) == 64
    a, b = _runs(tmp_path / "k1"), _runs(tmp_path / "k4")
    assert a == b  # the batched forward does not change what a session does
    assert len({json.dumps(s) for s in a}) > 1  # sampled: shoppers differ
    assert all(r for s in a for _, r in s)  # every step has a rationale


def test_greedy_argmax_checkpoint_repeats_itself(world_dir, ckpt, tmp_path):
    with one_thread():
        m = simulate(world=world_dir, model=str(ckpt), out=tmp_path / "g", sessions_per_user=3, seed=1,
                     max_steps=4, temperature=0.0, rationale="greedy", progress=False, device="cpu",
                     users=None)
    runs = _runs(tmp_path / "g")
    assert m["counts"]["sessions"] == 12
    # no randomness left but today's deals: a user's sessions act alike on the same pages
    firsts = {json.dumps(s[0]) for s in runs}
    assert len(firsts) <= 2


def test_baseline_samples_what_the_page_offers(world_dir, tmp_path):
    m = simulate(world=world_dir, policy="baseline", out=tmp_path / "b", sessions_per_user=3, seed=0,
                 progress=False)
    assert m["counts"]["error_steps"] == 0 and m["counts"]["sessions"] == 12
    assert m["policy"]["page_kinds"]["search"] > 0
    greedy = simulate(world=world_dir, policy="baseline", out=tmp_path / "b0", sessions_per_user=3, seed=0,
                      temperature=0.0, progress=False)
    assert greedy["counts"]["end_reasons"] != m["counts"]["end_reasons"] or _runs(tmp_path / "b") != _runs(
        tmp_path / "b0")


def test_world_shopper_refuses_a_persona_it_cannot_read(world_dir, tmp_path):
    from customer_r1.sim.policies import WorldPolicy
    from customer_r1.world.load import load_world

    pol = WorldPolicy(load_world(world_dir))
    with pytest.raises(BadInput, match="cannot read persona"):
        pol.traits_of(User("stranger", survey={"Self Description": {"x": "I like hats."}}))


def test_persona_file_runs_new_personas_with_a_model(world_dir, ckpt, tmp_path):
    people = tmp_path / "people.jsonl"
    people.write_text("\n".join(json.dumps({"user_id": f"p{i}", "survey": {
        "Self Description": {"Two sentence description": f"I am shopper {i}."}}}) for i in range(3)) + "\n")
    from customer_r1.sim.simulate import load_personas

    assert list(load_personas(people)) == ["p0", "p1", "p2"]
    with one_thread():
        m = simulate(world=world_dir, model=str(ckpt), persona_file=people, out=tmp_path / "p",
                     sessions_per_user=1, max_steps=3, progress=False, device="cpu")
    assert m["users"] == 3 and m["counts"]["sessions"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "a", "survey": {}}\n{"user_id": 5}\n')
    with pytest.raises(BadInput, match="user_id") as err:
        load_personas(bad)
    assert err.value.where == f"{bad}:2"
