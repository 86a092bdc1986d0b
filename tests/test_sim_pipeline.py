"""Issue 25, point 5: with a policy behind an endpoint, every session advances on its own
(prompt, request, step) with up to ``--concurrency`` requests in flight. The sessions are
the ones the lockstep rounds wrote (byte for byte), the endpoint never sees more than K
requests at once, a slow session does not hold the others back, failures and timeouts of
the endpoint end as they did (error steps, or the run stops on a fatal answer), and a run
killed with SIGKILL resumes to the same sessions."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from killkit import cli_env, complete_lines, kill_at_lines, read_rows, run_cli, tear_last_line
from tiny_lm import FakeOpenAI

from customer_r1.sim.runner import load_run
from customer_r1.sim.simulate import simulate
from customer_r1.world import WorldConfig, export_world, generate_world

_NAME = re.compile(r'<(\w+)[^>]*?\bname="([^"]+)"')


def shopper(content: str) -> str:
    """A valid action for the page at the end of the prompt, the same for the same prompt:
    a click on one of its names (never a form field) or, one time in six, terminate."""
    page = content.rsplit("# Current page", 1)[-1]
    h = int.from_bytes(hashlib.blake2b(content.encode(), digest_size=8).digest(), "little")
    names = [n for tag, n in _NAME.findall(page) if tag not in ("input", "select", "textarea")]
    action = {"type": "terminate"} if not names or h % 6 == 0 else \
        {"type": "click", "name": names[(h // 6) % len(names)]}
    return json.dumps({"rationale": "Looking around.", "action": action})


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeworld")
    export_world(generate_world(WorldConfig(users=12, sessions_per_user=4, seed=3, population=20)), d)
    return d


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    f = tmp_path_factory.mktemp("pipebuild") / "build.json"
    f.write_text(json.dumps({"config": {"prompt_style": "compact", "token_budget": None,
                                        "tokenizer": None, "max_history_steps": 3}}))
    return f


def _run(world_dir, build, server, out, **kw):
    args = {"sessions_per_user": 2, "seed": 4, "concurrency": 4, "progress": False, **kw}
    return simulate(world=world_dir, out=out, endpoint=server.url, model_name="m", build_config=build,
                    **args)


def test_pipelined_sessions_equal_lockstep_ones_and_never_exceed_k_in_flight(world_dir, build, tmp_path):
    with FakeOpenAI(shopper, delay_s=0.03) as server:
        old = _run(world_dir, build, server, tmp_path / "lockstep", pipeline=False)
        server.max_in_flight = 0
        new = _run(world_dir, build, server, tmp_path / "pipelined")
        assert server.max_in_flight == 4  # K requests in flight, never more
        server.max_in_flight = 0
        one = _run(world_dir, build, server, tmp_path / "k1", concurrency=1)
        assert server.max_in_flight == 1
    a = (tmp_path / "lockstep" / "sessions.jsonl").read_bytes()
    assert a == (tmp_path / "pipelined" / "sessions.jsonl").read_bytes()
    assert a == (tmp_path / "k1" / "sessions.jsonl").read_bytes()
    assert old["counts"] == new["counts"] == one["counts"]
    assert new["counts"]["sessions"] == 24 and new["counts"]["error_steps"] == 0
    assert new["counts"]["steps"] > 48  # sessions of several steps, not just terminate
    assert old["policy"] == new["policy"]
    for name in ("OPeRA_filtered", "world"):  # the export too
        files = sorted(p.relative_to(tmp_path / "lockstep")
                       for p in (tmp_path / "lockstep" / name).rglob("*") if p.is_file())
        assert files
        for f in files:
            assert (tmp_path / "lockstep" / f).read_bytes() == (tmp_path / "pipelined" / f).read_bytes(), f


def test_a_slow_session_does_not_hold_the_others(world_dir, build, tmp_path):
    """Two sessions, K = 2; one user's every answer takes 1.5 s. In lockstep the other
    session gets one step per slow answer; pipelined it finishes meanwhile (4 fast steps
    in 1.5 s leave room for a loaded CI machine; 0.8 s did not when the cores were shared)."""
    from customer_r1.sim.prompts import load_build_config
    from customer_r1.world.load import load_world

    w = load_world(world_dir)
    slow_user, fast_user = list(w.users)[:2]
    from customer_r1.domain import User
    from customer_r1.sim.prompts import PromptBuilder

    users = {u: User(u, survey=w.users[u].survey) for u in (slow_user, fast_user)}
    persona = PromptBuilder(load_build_config(build), users).messages(
        "x", slow_user, [], _first_obs(w, slow_user))[-1]["content"].split("# Session so far")[0]
    log: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def reply(content: str) -> str:
        t0 = time.monotonic()
        slow = content.startswith(persona)
        if slow:
            time.sleep(1.5)
        step = int(re.search(r"\(step (\d+)\)", content).group(1))
        with lock:
            log.append(("slow" if slow else "fast", t0, time.monotonic()))
        if step >= 4:  # every session is 4 clicks and a terminate
            return json.dumps({"rationale": "Done.", "action": {"type": "terminate"}})
        names = [n for tag, n in _NAME.findall(content.rsplit("# Current page", 1)[-1]) if tag == "a"]
        return json.dumps({"rationale": "Next.", "action": {"type": "click", "name": names[-1]}})

    def fast_during_first_slow() -> int:
        first = min((r for r in log if r[0] == "slow"), key=lambda r: r[1])
        return sum(1 for r in log if r[0] == "fast" and r[1] >= first[1] and r[2] <= first[2])

    with FakeOpenAI(reply) as server:
        _run(world_dir, build, server, tmp_path / "lock", users=[slow_user, fast_user], sessions_per_user=1,
             concurrency=2, pipeline=False)
        assert fast_during_first_slow() <= 1
        log.clear()
        _run(world_dir, build, server, tmp_path / "pipe", users=[slow_user, fast_user], sessions_per_user=1,
             concurrency=2)
        assert fast_during_first_slow() >= 3
    assert _bytes(tmp_path / "lock") == _bytes(tmp_path / "pipe")


def _bytes(run: Path) -> bytes:
    return (run / "sessions.jsonl").read_bytes()


def _first_obs(world, user_id):
    from customer_r1.sim.env import ShopEnv
    from customer_r1.sim.runner import plan_jobs

    job = plan_jobs([user_id], 1, 4)[0]
    return ShopEnv(world).reset(user_id, job.seed)


def test_endpoint_failures_and_timeouts_become_error_steps_as_in_lockstep(world_dir, build, tmp_path):
    """A request that fails (the connection dropped: a network error) or times out is
    retried by the backend, then by the policy, then the step is an error step naming why;
    the same records in both modes."""
    from customer_r1.evaluation.backends.openai_api import OpenAIBackend
    from customer_r1.sim.env import ShopEnv
    from customer_r1.sim.policies import EndpointPolicy
    from customer_r1.sim.prompts import load_build_config
    from customer_r1.sim.runner import Runner, RunSpec
    from customer_r1.sim.simulate import _users
    from customer_r1.world.load import load_world

    w = load_world(world_dir)
    people = dict(list(_users(w, None, None).items())[:4])

    def run(out: Path, pipeline: bool, users: dict, *, timeout: float, retries: int) -> dict:
        backend = OpenAIBackend(server.url, "m", concurrency=3, timeout=timeout, max_retries=retries,
                                sleep=lambda s: None)
        policy = EndpointPolicy(backend, load_build_config(build), users, retries=retries)
        spec = RunSpec(world=str(world_dir), world_config={}, policy=policy.describe(), variant=None,
                       variant_name="control", seed=2, users=list(users), sessions_per_user=2,
                       max_steps=w.config.max_steps, max_consecutive_errors=2, split="test",
                       backend="inprocess")
        try:
            return Runner(w, policy, spec, out, users=users, env_factory=lambda: ShopEnv(w),
                          concurrency=3, progress=False, pipeline=pipeline).run()
        finally:
            policy.close()

    def dropped(content: str) -> str:
        if "(step 2)" in content:
            raise ConnectionAbortedError("the server drops this one")  # no answer: a network error
        return shopper(content)

    with FakeOpenAI(dropped) as server:
        old = run(tmp_path / "lock", False, people, timeout=30, retries=1)
        new = run(tmp_path / "pipe", True, people, timeout=30, retries=1)
    assert _bytes(tmp_path / "lock") == _bytes(tmp_path / "pipe")
    assert old["counts"] == new["counts"]
    _, records = load_run(tmp_path / "pipe")
    failed = [e for r in records for e in r["steps"] if e.get("policy_error")]
    assert failed and all(e["policy_error"].startswith("gave up after 2 attempts: network error")
                          for e in failed)
    assert all(e["error_kind"] == "malformed" and e["policy"]["attempts"] == 2 for e in failed)

    def slow(content: str) -> str:
        if "(step 2)" in content:
            time.sleep(2.5)  # past the client's timeout
        return shopper(content)

    one = dict(list(people.items())[:1])
    with FakeOpenAI(slow) as server:
        run(tmp_path / "lock_t", False, one, timeout=1.5, retries=0)
        run(tmp_path / "pipe_t", True, one, timeout=1.5, retries=0)
    assert _bytes(tmp_path / "lock_t") == _bytes(tmp_path / "pipe_t")
    _, records = load_run(tmp_path / "pipe_t")
    failed = [e for r in records for e in r["steps"] if e.get("policy_error")]
    assert failed and all(e["policy_error"].startswith("gave up after 1 attempts: timeout") for e in failed)


def test_a_fatal_endpoint_answer_stops_the_pipelined_run(world_dir, build, tmp_path):
    """401/403/404 raise at once (every request would fail alike); nothing half written."""
    from customer_r1.evaluation.backends.base import EndpointError

    def forbid(h) -> None:  # every request answered 401
        h.rfile.read(int(h.headers.get("Content-Length", 0)))
        h.send_response(401)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"no")

    with FakeOpenAI() as server:
        server._handle = forbid
        t0 = time.monotonic()
        with pytest.raises(EndpointError, match="HTTP 401"):
            _run(world_dir, build, server, tmp_path / "r", concurrency=4)
        assert time.monotonic() - t0 < 30
    assert not (tmp_path / "r" / "manifest.json").exists()


def test_pipelined_run_resumes_after_kill_9(world_dir, build, tmp_path):
    args = ["sim", "run", "--world", str(world_dir), "--model-name", "m", "--build-config", str(build),
            "--sessions-per-user", "6", "--seed", "8", "--concurrency", "6", "--no-progress"]
    with FakeOpenAI(shopper, delay_s=0.02) as server:
        args += ["--endpoint", server.url]
        whole = tmp_path / "whole"
        res = run_cli([*args, "--out", str(whole)], env=cli_env())
        assert res.returncode == 0, res.stderr
        killed = tmp_path / "killed"
        target = random.Random(25).randint(5, 40)
        kept = kill_at_lines([*args, "--out", str(killed)], killed / "sessions.jsonl", target,
                             log=tmp_path / "killed.log")
        assert target <= kept < 72 and not (killed / "manifest.json").exists()
        tear_last_line(killed / "sessions.jsonl")
        res = run_cli([*args, "--out", str(killed)], env=cli_env())
    assert res.returncode == 0, res.stderr
    assert f"{kept} sessions kept" in res.stderr
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["repaired"]["torn_tail"] is True and manifest["counts"]["sessions_resumed"] == kept
    assert complete_lines(killed / "sessions.jsonl") == 72
    assert read_rows(killed / "sessions.jsonl", "key") == read_rows(whole / "sessions.jsonl", "key")
    assert (killed / "sessions.jsonl").read_bytes() == (whole / "sessions.jsonl").read_bytes()


def test_a_slow_backend_steps_in_threads_and_its_crashes_rerun_as_in_lockstep(world_dir, build, tmp_path):
    """A backend like the browser (``parallel``: its steps run in the runner's threads) that
    crashes: once on some sessions (rerun from their seed) and always on one (recorded as
    ``browser_crash`` after the reruns); the same records and counts in both modes."""
    from customer_r1.evaluation.backends.openai_api import OpenAIBackend
    from customer_r1.sim.env import BackendCrashed, InProcessShop, ShopEnv
    from customer_r1.sim.policies import EndpointPolicy
    from customer_r1.sim.prompts import load_build_config
    from customer_r1.sim.runner import Runner, RunSpec, plan_jobs
    from customer_r1.sim.simulate import _users
    from customer_r1.world.load import load_world

    w = load_world(world_dir)
    people = dict(list(_users(w, None, None).items())[:5])
    doomed = plan_jobs(list(people), 2, 6)[3].seed

    class Flaky(InProcessShop):
        parallel = True
        crashed: ClassVar[set[int]] = set()
        threads: ClassVar[set[str]] = set()
        lock = threading.Lock()

        def start(self, user, seed, variant, deals=None):
            self.seed, self.n = seed, 0
            return super().start(user, seed, variant, deals)

        def act(self, action):
            self.n += 1
            with self.lock:
                self.threads.add(threading.current_thread().name)
                once = self.seed % 3 == 0 and self.n == 2 and self.seed not in self.crashed
                if once:
                    self.crashed.add(self.seed)
            if once or (self.seed == doomed and self.n == 1):
                raise BackendCrashed("the page died")
            return super().act(action)

        def recover(self):
            self.session = None

    def run(out: Path, pipeline: bool) -> tuple[dict, Runner]:
        Flaky.crashed, Flaky.threads = set(), set()
        backend = OpenAIBackend(server.url, "m", concurrency=4)
        policy = EndpointPolicy(backend, load_build_config(build), people)
        spec = RunSpec(world=str(world_dir), world_config={}, policy=policy.describe(), variant=None,
                       variant_name="control", seed=6, users=list(people), sessions_per_user=2,
                       max_steps=w.config.max_steps, max_consecutive_errors=3, split="test",
                       backend="inprocess")
        runner = Runner(w, policy, spec, out, users=people, env_factory=lambda: ShopEnv(w, backend=Flaky(w)),
                        concurrency=4, progress=False, pipeline=pipeline)
        try:
            return runner.run(), runner
        finally:
            policy.close()

    with FakeOpenAI(shopper) as server:
        old, r_old = run(tmp_path / "lock", False)
        new, r_new = run(tmp_path / "pipe", True)
    assert any(t.startswith("sim-step") for t in Flaky.threads)
    assert _bytes(tmp_path / "lock") == _bytes(tmp_path / "pipe")
    assert old["counts"] == new["counts"] and new["counts"]["end_reasons"]["browser_crash"] == 1
    assert r_old.crash_counts == r_new.crash_counts
    assert r_new.crash_counts["reruns"] >= 4 and r_new.crash_counts["sessions_lost_to_crashes"] == 1
