"""Run simulated shoppers through the shop: K sessions in flight, resumable, sharded.

The run is a list of session jobs (user, index, seed), fixed by the run's settings: the
seed of a session depends only on the run seed, the user and the index, so the same
session comes out whatever the concurrency, the shard or how often the run was killed.
Each finished session is appended to ``sessions.jsonl`` (flushed and fsynced): the trace,
with every step's page, action, rationale and any error, and the checkpoint, because a
rerun keeps the finished sessions (a torn last line is dropped and counted) and reruns
the unfinished ones from their seed. When every job is done, the sessions are written in
OPeRA's layout (``OPeRA_filtered/``, so ``data build``, ``eval`` and ``world stats`` read
them unchanged; invalid actions, which OPeRA has no row for, stay in the trace only), with
``world/world.json`` (the source world's config and the simulated sessions' figures) and
``manifest.json`` (policy, checkpoint hash, world, variant, seeds, versions, counts).

Slow backends (a real browser: ``backend.parallel``) have the actions of the sessions in
flight done from a thread pool, one thread per session, while the policy still decides
their steps in one batch. If a backend crashes (:class:`~customer_r1.sim.env.BackendCrashed`)
it is recovered (``backend.recover()``: the browser restarted) and the session is rerun
from its seed, up to ``max_reruns`` times, then recorded with ``end_reason``
``browser_crash``; the run goes on. Crashes, reruns, restarts, fence violations and the
browser's other counts go into the manifest (``browser``). With screenshots on, each
step's page is saved as ``screenshots/<session>/<step>.png`` and named in the trace.

Shards: ``shard=(i, n)`` runs every n-th job into ``OUT/shards/i-of-n/``; the shards of a
run merge into one (:func:`merge_shards`, or automatically when the last one finishes on
a shared folder). Across machines, point every shard's policy at one OpenAI-compatible
server (vLLM) and copy the shard folders together before merging.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from customer_r1.data.examples import comparable_build
from customer_r1.domain import Observation, Session, ShoppingData, Step, User
from customer_r1.errors import BadInput, BadOption
from customer_r1.io import read_json
from customer_r1.sim.env import BackendCrashed, ShopEnv, StepResult
from customer_r1.sim.policies import ActRequest, Policy, PolicyAction

if TYPE_CHECKING:
    from customer_r1.world.generate import World
    from customer_r1.world.variants import SiteVariant

SESSIONS_FILE = "sessions.jsonl"
RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.json"
_START = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SessionJob:
    key: str
    user_id: str
    index: int
    seed: int


def session_seed(run_seed: int, user_id: str, index: int) -> int:
    """A session's seed: from the run seed, the user and the index only."""
    h = hashlib.sha256(f"{run_seed}|{user_id}|{index}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def plan_jobs(users: Sequence[str], sessions_per_user: int, run_seed: int,
              shard: tuple[int, int] = (0, 1)) -> list[SessionJob]:
    """Every session of the run in a fixed order; a shard keeps every n-th."""
    i, n = shard
    jobs = [SessionJob(f"{u}#{k}", u, k, session_seed(run_seed, u, k))
            for u in users for k in range(sessions_per_user)]
    return [j for pos, j in enumerate(jobs) if pos % n == i]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        a, b = text.split("/")
        i, n = int(a), int(b)
    except ValueError:
        raise BadOption(f"bad shard {text!r}", "--shard", "write it as i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise BadOption(f"bad shard {text!r}: need 0 <= i < n", "--shard", "e.g. 0/4 ... 3/4")
    return i, n


@dataclass
class RunSpec:
    """What determines a run's sessions: checked on resume, recorded in the manifest."""

    world: str
    world_config: dict[str, Any]
    policy: dict[str, Any]
    variant: dict[str, Any] | None
    variant_name: str
    seed: int
    users: list[str]
    sessions_per_user: int
    max_steps: int
    max_consecutive_errors: int
    split: str
    backend: str
    shard: list[int] = field(default_factory=lambda: [0, 1])
    browser: dict[str, Any] | None = None  # the browser backend's site, allowlist, settings
    budgets: dict[str, Any] | None = None  # per-session time and token budgets

    def key(self) -> dict[str, Any]:
        """The fields a resumed run must share (paths and the backend may differ)."""
        d = asdict(self)
        d.pop("world")
        d.pop("backend")
        for optional in ("browser", "budgets"):  # absent from runs made before they existed
            if d[optional] is None:
                d.pop(optional)
        if d.get("browser"):  # how the browser is driven does not change the sessions
            d["browser"] = {k: v for k, v in d["browser"].items()
                            if k not in ("screenshots", "step_timeout_s", "chromium", "allowlist")}
        d["policy"] = {k: v for k, v in d["policy"].items()
                       if k not in ("checkpoint", "endpoint", "invalid_outputs", "page_kinds")}
        return normal_key(d)


@dataclass
class _Slot:
    job: SessionJob
    env: ShopEnv
    obs: Observation
    history: list[Step] = field(default_factory=list)
    record: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    clock: datetime = _START
    rng: np.random.Generator | None = None
    shot: bytes | None = None  # the screenshot of ``obs``, if the backend takes them
    start_info: dict[str, Any] = field(default_factory=dict)


def _iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _iso_us(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(t.microsecond // 1000) * 1000:06d}Z"


class Runner:
    """Runs a planned set of sessions with one policy over fresh environments."""

    def __init__(self, world: World, policy: Policy, spec: RunSpec, out_dir: str | Path, *,
                 users: dict[str, User], env_factory: Callable[[], ShopEnv],
                 variant: SiteVariant | None = None, concurrency: int = 1,
                 progress: bool = True, console: Any = None, max_reruns: int = 3,
                 pipeline: bool | None = None) -> None:
        if concurrency < 1:
            raise BadOption(f"concurrency must be >= 1, got {concurrency}", "--concurrency")
        self.world, self.policy, self.spec = world, policy, spec
        self.out = Path(out_dir)
        self.users = users
        self.env_factory = env_factory
        self.variant = variant
        self.concurrency = concurrency
        self.progress = progress
        self.console = console
        self.max_reruns = max_reruns
        #: None: pipelined when the policy can (``submit``); False: lockstep rounds always
        self.pipeline = pipeline
        self.crash_counts: Counter[str] = Counter()  # crashes, reruns, sessions given up
        self.backend_stats: Counter[str] = Counter()

    @property
    def shard_dir(self) -> Path:
        i, n = self.spec.shard
        return self.out if n == 1 else self.out / "shards" / f"{i}-of-{n}"

    def run(self) -> dict[str, Any]:
        """Run (or resume) every job; returns the manifest."""
        from customer_r1.evaluation.predict import load_jsonl_checkpoint

        d = self.shard_dir
        d.mkdir(parents=True, exist_ok=True)
        _check_run_file(d, self.spec)
        finished = self._finished(d)
        if finished is not None:  # reused as it is, read-only (runs may share it)
            return finished
        save_personas(d, self.users)
        path = d / SESSIONS_FILE
        done, repair = load_jsonl_checkpoint(path, key="key")
        jobs = plan_jobs(self.spec.users, self.spec.sessions_per_user, self.spec.seed,
                         tuple(self.spec.shard))  # type: ignore[arg-type]
        wanted = {j.key for j in jobs}
        stray = set(done) - wanted
        if stray:
            raise BadInput(f"{path} holds {len(stray)} session(s) this run does not plan",
                           str(path), "use a fresh --out folder")
        todo = deque(j for j in jobs if j.key not in done)
        resumed = len(jobs) - len(todo)
        t0 = time.perf_counter()
        steps_before = sum(len(r.get("steps", [])) for r in done.values())
        n_steps = self._loop(todo, path, len(jobs), len(done))
        seconds = time.perf_counter() - t0
        done, _ = load_jsonl_checkpoint(path, key="key")
        records = [done[j.key] for j in jobs if j.key in done]
        _rewrite_in_order(path, records)  # the same bytes whatever the concurrency
        manifest = build_manifest(self.spec, records, seconds=seconds, new_steps=n_steps,
                                  resumed=resumed,
                                  repaired={"torn_tail": repair.torn_tail,
                                            "invalid_lines": repair.invalid_lines,
                                            "duplicates": repair.duplicates},
                                  steps_before=steps_before,
                                  backend_counts={**self.backend_stats, **self.crash_counts})
        manifest["policy"] = self.policy.describe()  # with what it counted during the run
        _atomic_json(d / MANIFEST_FILE, manifest)
        if self.spec.shard[1] == 1:
            export_run(self.out, self.world, records, self.users, self.spec.split, manifest)
        else:
            maybe = merge_shards(self.out, self.world, self.users, missing_ok=True)
            if maybe is not None:
                manifest = maybe
        return manifest

    def _finished(self, d: Path) -> dict[str, Any] | None:
        """The manifest of a run already finished in ``d`` with these settings, else None."""
        if self.spec.shard[1] != 1 or not (d / MANIFEST_FILE).is_file() or not (d / "world").is_dir():
            return None
        manifest = read_json(d / MANIFEST_FILE)
        planned = len(self.spec.users) * self.spec.sessions_per_user
        return manifest if manifest.get("counts", {}).get("sessions") == planned else None

    def _crashed(self, env: ShopEnv, todo: deque[SessionJob], reruns: Counter[str], job: SessionJob,
                 slot: _Slot | None, exc: BackendCrashed) -> dict[str, Any] | None:
        """Recover a slot's backend; requeue the job, or give it up after max_reruns."""
        self.crash_counts["crashes"] += 1
        self.policy.end(job.key)
        env.backend.recover()  # type: ignore[attr-defined]
        if reruns[job.key] < self.max_reruns:
            reruns[job.key] += 1
            self.crash_counts["reruns"] += 1
            todo.appendleft(job)
            return None
        self.crash_counts["sessions_lost_to_crashes"] += 1
        s = slot or _Slot(job, env, Observation("", "", {}))
        fake = StepResult(s.obs, True, {"end_reason": "browser_crash", "error": str(exc)})
        return self._finish(s, fake)

    def _progress(self, total: int, already: int) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        cols = (TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(),
                TextColumn("sessions · {task.fields[rate]}"), TimeElapsedColumn())
        return Progress(*cols, console=self.console, disable=not self.progress, transient=True)

    def _close_envs(self, envs: list[ShopEnv]) -> None:
        for env in envs:
            self.backend_stats.update(getattr(env.backend, "stats", {}))
            env.close()
        browser = getattr(envs[0].backend, "browser", None) if envs else None
        if browser is not None:
            self.crash_counts["browser_restarts"] = getattr(browser, "restarts", 0)
            self.crash_counts["browser_level_blocked"] = len(getattr(browser, "blocked", []))

    def pipelined(self) -> bool:
        """Whether sessions advance on their own (a policy that answers one step at a time
        through a future, an endpoint) rather than in lockstep rounds (batched policies)."""
        return self.pipeline is not False and callable(getattr(self.policy, "submit", None))

    def _loop(self, todo: deque[SessionJob], path: Path, total: int, already: int) -> int:
        if self.pipelined():
            return self._pipelined_loop(todo, path, total, already)
        return self._lockstep_loop(todo, path, total, already)

    def _lockstep_loop(self, todo: deque[SessionJob], path: Path, total: int, already: int) -> int:
        """Rounds: start sessions in free slots, decide every active session's step in one
        ``act_batch`` (one batched forward of a checkpoint), then step every env."""
        from customer_r1.evaluation.predict import append_jsonl

        slots: list[_Slot | None] = [None] * self.concurrency
        envs = [self.env_factory() for _ in range(self.concurrency)]
        parallel = self.concurrency > 1 and any(getattr(e.backend, "parallel", False) for e in envs)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sim-step") if parallel else None
        steps = 0
        t0 = time.perf_counter()
        finished = 0
        reruns: Counter[str] = Counter()

        def each(fn: Callable[..., Any], items: list[tuple[Any, ...]]) -> list[Any]:
            """fn(*item) for every item, in threads for a slow backend; a crash is returned."""
            def safe(item: tuple[Any, ...]) -> Any:
                try:
                    return fn(*item)
                except BackendCrashed as exc:
                    return exc
            return list(pool.map(safe, items)) if pool is not None else [safe(i) for i in items]

        def crashed(i: int, job: SessionJob, slot: _Slot | None,
                    exc: BackendCrashed) -> dict[str, Any] | None:
            return self._crashed(envs[i], todo, reruns, job, slot, exc)

        try:
            with path.open("a", encoding="utf-8") as fh, self._progress(total, already) as bar:
                task = bar.add_task("sim", total=total, completed=already, rate="")
                while todo or any(slots):
                    starting = []
                    for i in range(self.concurrency):
                        if slots[i] is None and todo:
                            starting.append((i, todo.popleft()))
                    started = each(lambda i, job: self._start(job, envs[i]), starting)
                    for (i, job), got in zip(starting, started, strict=True):
                        if isinstance(got, BackendCrashed):
                            rec = crashed(i, job, None, got)
                        elif got.env.done:  # the first page already ended it (the fence)
                            rec = self._finish(got, StepResult(got.obs, True, {
                                "end_reason": got.env.end_reason, **got.start_info}))
                        else:
                            slots[i] = got
                            continue
                        if rec is not None:
                            append_jsonl(fh, [rec])
                            self.policy.end(job.key)
                            finished += 1
                    active = [s for s in slots if s is not None]
                    if not active:
                        continue
                    reqs = [ActRequest(s.job.key, s.obs, s.history, self.users[s.job.user_id],
                                       seed=_step_seed(s.job.seed, s.calls)) for s in active]
                    decisions = self.policy.act_batch(reqs)
                    results = each(self._step, list(zip(active, decisions, strict=True)))
                    for s, res in zip(active, results, strict=True):
                        i = slots.index(s)
                        if isinstance(res, BackendCrashed):
                            slots[i] = None
                            rec = crashed(i, s.job, s, res)
                            if rec is None:
                                continue
                        else:
                            steps += 1
                            if not res.done:
                                continue
                            rec = self._finish(s, res)
                            slots[i] = None
                        append_jsonl(fh, [rec])
                        self.policy.end(s.job.key)
                        finished += 1
                    el = max(1e-9, time.perf_counter() - t0)
                    bar.update(task, completed=already + finished,
                               rate=f"{finished / el:.2f} sessions/s · {steps / el:.1f} steps/s")
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            self._close_envs(envs)
        return steps

    def _pipelined_loop(self, todo: deque[SessionJob], path: Path, total: int, already: int) -> int:
        """Every session on its own: prompt, request, step, next prompt. A session's request
        is a future of the policy (at most one per session, so at most ``concurrency`` in
        flight); its answer comes back through a queue and the main thread steps the env
        (a thread of the pool when the backend is slow, as a browser) and sends the next
        request at once, so building prompts and stepping overlap the waiting. The sessions
        are the same as in lockstep: each depends on its seed and its own decisions only."""
        k = self.concurrency
        envs = [self.env_factory() for _ in range(k)]
        parallel = k > 1 and any(getattr(e.backend, "parallel", False) for e in envs)
        pool = ThreadPoolExecutor(k, thread_name_prefix="sim-step") if parallel else None
        free = list(range(k - 1, -1, -1))  # slots with no session and nothing outstanding
        events: queue.SimpleQueue[tuple[str, int, Any, Any]] = queue.SimpleQueue()
        ready: deque[tuple[str, int, Any, Any]] = deque()  # events of work done inline
        outstanding = 0  # futures whose event has not come back yet
        reruns: Counter[str] = Counter()
        steps = finished = 0
        t0 = time.perf_counter()
        submit = self.policy.submit  # type: ignore[attr-defined]

        def run(kind: str, i: int, tag: Any, fn: Callable[..., Any], *args: Any) -> None:
            """fn(*args) for slot i: in the pool for a slow backend, else here; its result
            (or the crash) comes back as the event (kind, i, tag, result)."""
            nonlocal outstanding

            def safe() -> Any:
                try:
                    return fn(*args)
                except BackendCrashed as exc:
                    return exc
            if pool is None:
                ready.append((kind, i, tag, safe()))
                return
            outstanding += 1
            pool.submit(safe).add_done_callback(lambda f: events.put((kind, i, tag, f)))

        def ask(i: int, s: _Slot) -> None:
            nonlocal outstanding
            req = ActRequest(s.job.key, s.obs, s.history, self.users[s.job.user_id],
                             seed=_step_seed(s.job.seed, s.calls))
            outstanding += 1
            submit(req).add_done_callback(lambda f: events.put(("act", i, s, f)))

        def start(i: int) -> None:
            job = todo.popleft()
            run("start", i, job, self._start, job, envs[i])

        try:
            with path.open("a", encoding="utf-8") as fh, self._progress(total, already) as bar, \
                    _Writer(fh) as writer:
                task = bar.add_task("sim", total=total, completed=already, rate="")
                while True:
                    writer.check()
                    while free and todo:
                        start(free.pop())
                    if not ready and not outstanding:
                        break
                    if not ready:  # wait for one answer, then take all that came meanwhile
                        ready.append(events.get())
                        outstanding -= 1
                        while True:
                            try:
                                ready.append(events.get_nowait())
                            except queue.Empty:
                                break
                            outstanding -= 1
                    records: list[dict[str, Any]] = []
                    ended: list[str] = []
                    while ready:
                        kind, i, tag, got = ready.popleft()
                        if isinstance(got, Future):  # an error of the policy or the backend raises here
                            got = got.result()
                        rec = None
                        if kind == "act":  # the policy's decision for slot i's session
                            s = tag
                            run("step", i, s, self._step, s, got)
                            continue
                        if kind == "start":
                            job = tag
                            if isinstance(got, BackendCrashed):
                                rec = self._crashed(envs[i], todo, reruns, job, None, got)
                            elif got.env.done:  # the first page already ended it (the fence)
                                rec = self._finish(got, StepResult(got.obs, True, {
                                    "end_reason": got.env.end_reason, **got.start_info}))
                            else:
                                ask(i, got)
                                continue
                        else:  # "step": slot i's env took the action
                            s = tag
                            job = s.job
                            if isinstance(got, BackendCrashed):
                                rec = self._crashed(envs[i], todo, reruns, job, s, got)
                            else:
                                steps += 1
                                if not got.done:
                                    ask(i, s)
                                    continue
                                rec = self._finish(s, got)
                        if rec is not None:
                            records.append(rec)
                            ended.append(job.key)
                        if todo:  # the free slot starts the next session at once
                            start(i)
                        else:
                            free.append(i)
                    if records:  # written (flush + fsync) by the writer's thread, off this one's way
                        writer.put(records)
                        for key in ended:
                            self.policy.end(key)
                        finished += len(records)
                        el = max(1e-9, time.perf_counter() - t0)
                        bar.update(task, completed=already + finished,
                                   rate=f"{finished / el:.2f} sessions/s · {steps / el:.1f} steps/s")
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self._close_envs(envs)
        return steps

    def _start(self, job: SessionJob, env: ShopEnv) -> _Slot:
        if job.user_id not in self.users:
            raise BadOption(f"unknown user {job.user_id!r}", "--users", "see the world's user table")
        obs = env.reset(job.user_id, job.seed, self.variant)
        rng = np.random.default_rng(np.random.SeedSequence([job.seed, 0x7133]))
        clock = _START + timedelta(seconds=int(job.seed % (60 * 86400)))
        info = dict(env.reset_info)
        shot = info.pop("screenshot", None)
        info.pop("message", None)
        return _Slot(job, env, obs, clock=clock, rng=rng, shot=shot, start_info=info)

    def _step(self, s: _Slot, dec: PolicyAction) -> StepResult:
        s.calls += 1
        before = s.obs
        res = s.env.step(dec.action if dec.action is not None else (dec.raw or ""))
        assert s.rng is not None
        pause = min(120.0, max(1.0, s.rng.lognormal(2.2, 0.6)))  # seconds, as the world's shoppers
        s.clock = s.clock + timedelta(milliseconds=int(1000 * pause))
        action_id = str(_uuid(s.rng))
        err = res.info.get("error_kind", "")
        entry: dict[str, Any] = {
            "action_id": action_id, "timestamp": _iso_ms(s.clock),
            "observation": {"html": before.html, "url": before.url, "page_meta": before.page_meta,
                            "page_kind": before.page_kind},
            "action": dec.action.to_dict() if dec.action is not None else None,
            "rationale": dec.rationale, "error_kind": err,
            "error": res.observation.last_action_error if err else "",
            "click_type": res.info.get("click_type"), "products": res.info.get("products"),
            "element_meta": res.info.get("element_meta"),
            "policy": {k: v for k, v in dec.info.items() if k != "motive"},
            "motive": dec.info.get("motive"),
        }
        if dec.action is None:
            entry["policy_error"] = dec.info.get("error", "")
            entry["raw"] = dec.raw
        if s.shot is not None:  # the page the action was taken on
            entry["screenshot"] = self._save_shot(s, len(s.record), s.shot)
        s.shot = res.info.pop("screenshot", None)
        extra = {k: res.info[k] for k in ("fence", "intent", "name_mismatch", "health") if res.info.get(k)}
        if extra:
            entry["browser"] = extra
        s.record.append(entry)
        if not err and dec.action is not None:
            extra: dict[str, Any] = {}
            if dec.info.get("motive"):
                extra["motive"] = dec.info["motive"]
            if res.info.get("element_meta"):
                extra["element_meta"] = res.info["element_meta"]
            s.history.append(Step(action_id=action_id, timestamp=entry["timestamp"], kind=dec.action.type,
                                  observation=before, action=dec.action,
                                  click_type=res.info.get("click_type"), rationale=dec.rationale or None,
                                  rationale_source="simulated", products=res.info.get("products"),
                                  extra=extra))
        s.obs = res.observation
        return res

    def _save_shot(self, s: _Slot, index: int, png: bytes) -> str:
        """Write one screenshot; its path relative to the run folder."""
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in s.job.key)
        rel = Path("screenshots") / safe / f"{index:03d}.png"
        f = self.shard_dir / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(png)
        return str(rel if self.shard_dir == self.out else self.shard_dir.relative_to(self.out) / rel)

    def _finish(self, s: _Slot, res: StepResult) -> dict[str, Any]:
        valid = [e for e in s.record if not e["error_kind"]]
        first = valid[0]["timestamp"] if valid else _iso_ms(s.clock)
        start = datetime.strptime(first, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) - timedelta(seconds=5)
        sid = f"{s.job.user_id}_{_iso_us(start)}_{_iso_us(s.clock)}"
        errors = Counter(e["error_kind"] for e in s.record if e["error_kind"])
        last = valid[-1] if valid else None
        purchase = (last is not None and last["click_type"] == "purchase"
                    and res.info.get("end_reason") in ("purchase", "purchase_intent"))
        record = {
            "key": s.job.key, "user_id": s.job.user_id, "index": s.job.index, "seed": s.job.seed,
            "session_id": sid, "variant": self.spec.variant_name,
            "end_reason": res.info.get("end_reason", ""), "outcome": "purchase" if purchase else "terminate",
            "n_steps": len(valid), "n_errors": sum(errors.values()), "errors": dict(errors),
            "final_page_kind": res.observation.page_kind, "steps": s.record,
        }
        # what only the browser backend notes (absent otherwise, so traces stay as they were)
        for k in ("fence", "intent"):
            if res.info.get(k):
                record[k] = res.info[k]
        if s.start_info.get("health"):  # the start page's load (site runs: site health)
            record["start_health"] = s.start_info["health"]
        if s.start_info.get("fence") and s.record:
            record["start_fence"] = s.start_info["fence"]  # what the start page's loading met
        if res.info.get("end_reason") in ("fence_violation", "browser_crash"):
            record["end_detail"] = res.observation.last_action_error or res.info.get("error", "")
        shot = s.shot if s.shot is not None else res.info.pop("screenshot", None)
        if shot is not None:
            record["final_screenshot"] = self._save_shot(s, len(s.record), shot)
        return record


class _Writer:
    """Appends finished sessions to ``sessions.jsonl`` from its own thread (flush + fsync
    per batch, all that queued meanwhile in one), so the runner's loop never waits on the
    disk. Leaving the ``with`` writes what was queued; a write error is raised in the loop
    (:meth:`check`) or on leaving."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sim-writer", daemon=True)

    def __enter__(self) -> _Writer:
        self.thread.start()
        return self

    def put(self, records: list[dict[str, Any]]) -> None:
        self.queue.put(records)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        from customer_r1.evaluation.predict import append_jsonl

        end = False
        while not end:
            batch = self.queue.get()
            if batch is None:
                break
            rows = list(batch)
            while True:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    end = True
                    break
                rows.extend(more)
            try:
                append_jsonl(self.fh, rows)
            except BaseException as exc:  # handed to the loop's thread
                self.error = exc
                return

    def __exit__(self, *exc: object) -> None:
        self.queue.put(None)
        self.thread.join()
        if exc[0] is None:
            self.check()


def _step_seed(session_seed_: int, t: int) -> int:
    return (session_seed_ * 1_000_003 + t) % (2**63)


def _uuid(rng: np.random.Generator) -> Any:
    import uuid

    return uuid.UUID(bytes=rng.bytes(16), version=4)


# --------------------------------------------------------------------------- files


def _rewrite_in_order(path: Path, records: Sequence[dict[str, Any]]) -> None:
    from customer_r1.evaluation.predict import append_jsonl

    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        append_jsonl(fh, records)
    tmp.replace(path)


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def normal_key(key: dict[str, Any]) -> dict[str, Any]:
    """A run key as compared on resume: a checkpoint's prompts use its own tokenizer, so the
    tokenizer's path is not part of it (the checkpoint's sha256 is: a moved or copied
    checkpoint resumes); build fields added later are left out at their default (a run
    recorded before they existed resumes)."""
    policy = dict(key.get("policy") or {})
    build = policy.get("build")
    if isinstance(build, dict):
        build = comparable_build(build)
        if policy.get("checkpoint_sha256"):
            build.pop("tokenizer", None)
        policy["build"] = build
    return {**key, "policy": policy} if "policy" in key else dict(key)


def _check_run_file(d: Path, spec: RunSpec) -> None:
    """A folder holds one run: resuming with other settings is refused."""
    f = d / RUN_FILE
    if f.exists():
        old = read_json(f)
        mine = json.loads(json.dumps(spec.key()))
        theirs = normal_key(old.get("key", {}))
        if theirs != mine:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise BadOption(f"{d} holds a run with other settings ({', '.join(diff)})", str(d),
                            "use another --out folder, or the same settings to resume")
        return
    _atomic_json(f, {"spec": asdict(spec), "key": spec.key()})


def records_to_data(records: Sequence[dict[str, Any]], users: dict[str, User], split: str) -> ShoppingData:
    """Finished sessions as domain objects: only the valid steps (OPeRA rows)."""
    from customer_r1.actions import Action

    sessions: list[Session] = []
    for r in records:
        steps = []
        for e in r["steps"]:
            if e["error_kind"] or e["action"] is None:
                continue
            a = Action.from_dict(e["action"])
            o = e["observation"]
            extra = {"element_meta": e["element_meta"]} if e.get("element_meta") else {}
            if e.get("motive"):
                extra["motive"] = e["motive"]
            steps.append(Step(e["action_id"], e["timestamp"], a.type,
                              Observation(o["html"], o["url"], o["page_meta"],
                                          page_kind=o.get("page_kind", "")),
                              a, e["click_type"] if a.type == "click" else None, e["rationale"] or None,
                              "simulated", e.get("products"), extra))
        if steps:
            sessions.append(Session(r["session_id"], r["user_id"], split, steps))
    used = {s.user_id for s in sessions}
    return ShoppingData({u: users[u] for u in users if u in used}, sessions, source="simulation")


def export_run(out: Path, world: World, records: Sequence[dict[str, Any]], users: dict[str, User],
               split: str, manifest: dict[str, Any]) -> None:
    """OPeRA layout + world/world.json of a finished run (replaces an earlier export)."""
    import shutil

    from customer_r1.data.opera_write import write_opera
    from customer_r1.world.export import FORMAT_VERSION
    from customer_r1.world.generate import config_dict
    from customer_r1.world.stats import OPERA_REFERENCE, session_stats

    data = records_to_data(records, users, split)
    tmp = out / ".export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    write_opera(data, tmp, splits=[split] if data.sessions else [])
    stats = session_stats(data.sessions)
    info = {"format": FORMAT_VERSION, "config": config_dict(world.config), "stats": stats, "ceilings": {},
            "opera_reference": OPERA_REFERENCE, "simulation": {k: manifest[k] for k in (
                "policy", "variant", "seed", "counts") if k in manifest}}
    (tmp / "world").mkdir(parents=True, exist_ok=True)
    (tmp / "world" / "world.json").write_text(json.dumps(info, indent=2) + "\n")
    for name in ("OPeRA_filtered", "world"):
        shutil.rmtree(out / name, ignore_errors=True)
        if (tmp / name).exists():
            (tmp / name).replace(out / name)
    shutil.rmtree(tmp, ignore_errors=True)


def build_manifest(spec: RunSpec, records: Sequence[dict[str, Any]], *, seconds: float = 0.0,
                   new_steps: int = 0, resumed: int = 0, repaired: dict[str, Any] | None = None,
                   steps_before: int = 0, backend_counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings, versions and counts of a run (or of merged shards); ``backend_counts``:
    what the backends and the runner counted (the browser's pages, crashes, reruns)."""
    import customer_r1

    ends = Counter(r["end_reason"] for r in records)
    outcomes = Counter(r["outcome"] for r in records)
    errors: Counter[str] = Counter()
    for r in records:
        errors.update(r.get("errors", {}))
    steps = sum(r["n_steps"] for r in records)
    n = len(records)
    manifest = {
        "policy": spec.policy, "world": spec.world, "world_config": spec.world_config,
        "variant": spec.variant_name, "variant_config": spec.variant, "seed": spec.seed,
        "sessions_per_user": spec.sessions_per_user, "users": len(spec.users),
        "limits": {"max_steps": spec.max_steps, "max_consecutive_errors": spec.max_consecutive_errors},
        "backend": spec.backend, "shard": f"{spec.shard[0]}/{spec.shard[1]}", "split": spec.split,
        "versions": _versions(customer_r1),
        "counts": {
            "sessions": n, "steps": steps, "error_steps": sum(errors.values()), "errors": dict(errors),
            "end_reasons": dict(ends), "outcomes": dict(outcomes),
            "conversion": outcomes.get("purchase", 0) / n if n else 0.0,
            "mean_steps": steps / n if n else 0.0,
            "sessions_resumed": resumed,
        },
        "repaired": repaired or {},
        "timing": {"seconds": round(seconds, 2), "steps_this_run": new_steps,
                   "steps_per_second": round(new_steps / seconds, 2) if seconds > 0 else None},
        "session_seeds": "sessions.jsonl (seed per session: sha256 of run seed, user, index)",
    }
    if spec.budgets:
        manifest["limits"].update(spec.budgets)
    if spec.backend == "browser" or spec.browser:
        manifest["browser"] = browser_counts(spec, records, backend_counts or {})
    return manifest


def browser_counts(spec: RunSpec, records: Sequence[dict[str, Any]],
                   counted: dict[str, Any]) -> dict[str, Any]:
    """The browser backend's part of a manifest: its settings, the sessions the fence and
    the no-checkout rule ended, blocked requests by layer, crashes and reruns, and the
    simplifier's name checks against our shop's recorder names."""
    from customer_r1.sim.health import manifest_part

    ends = Counter(r["end_reason"] for r in records)
    layers: Counter[str] = Counter()
    for r in records:
        for v in [*r.get("fence", []), *r.get("start_fence", []),
                  *(v for e in r.get("steps", []) for v in (e.get("browser") or {}).get("fence", []))]:
            layers[v.get("layer", "")] += 1
    pages = int(counted.get("pages", 0))
    return {
        "settings": spec.browser or {},
        "fence_violations": ends.get("fence_violation", 0),
        "blocked_requests_by_layer": dict(layers),
        "purchase_intents": ends.get("purchase_intent", 0),
        "crashes": int(counted.get("crashes", 0)), "reruns": int(counted.get("reruns", 0)),
        "browser_restarts": int(counted.get("browser_restarts", 0)),
        "browser_level_blocked": int(counted.get("browser_level_blocked", 0)),
        "sessions_lost_to_crashes": ends.get("browser_crash", 0),
        "pages": pages,
        "name_checks": int(counted.get("name_checks", 0)),
        "name_mismatches": int(counted.get("name_mismatches", 0)),
        "mean_simplify_ms": round(counted.get("simplify_ms_total", 0) / pages, 1) if pages else None,
        **({"site_health": manifest_part(records)} if spec.browser and spec.browser.get("site") != "our shop"
           else {}),
    }


def _versions(pkg: Any) -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "customer_r1": getattr(pkg, "__version__", "")}
    for name in ("torch", "transformers", "starlette", "uvicorn", "httpx"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    if not out["customer_r1"]:
        with contextlib.suppress(md.PackageNotFoundError):
            out["customer_r1"] = md.version("customer-r1")
    return out


def merge_shards(out: str | Path, world: World, users: dict[str, User], *,
                 missing_ok: bool = False) -> dict[str, Any] | None:
    """Merge ``OUT/shards/*`` into one run; None (with ``missing_ok``) while shards are missing."""
    from customer_r1.evaluation.predict import load_jsonl_checkpoint

    out = Path(out)
    dirs = sorted((out / "shards").glob("*-of-*"))
    if not dirs:
        raise BadInput(f"no shards under {out / 'shards'}", str(out), "run `sim run --shard i/n --out` first")
    ns = {int(d.name.split("-of-")[1]) for d in dirs}
    if len(ns) != 1:
        names = sorted(d.name for d in dirs)
        raise BadInput(f"shards of different splits in {out / 'shards'}: {names}", str(out))
    n = ns.pop()
    specs = []
    for i in range(n):
        d = out / "shards" / f"{i}-of-{n}"
        if not (d / MANIFEST_FILE).exists():
            if missing_ok:
                return None
            raise BadInput(f"shard {i}/{n} is not finished", str(d), "run or resume it first")
        specs.append(read_json(d / RUN_FILE))
    keys = [{k: v for k, v in s["key"].items() if k != "shard"} for s in specs]
    if any(k != keys[0] for k in keys):
        raise BadInput("the shards were run with different settings", str(out / "shards"),
                       "rerun the odd shard with the run's settings")
    spec = RunSpec(**{**specs[0]["spec"], "shard": [0, 1]})
    records: dict[str, dict[str, Any]] = {}
    seconds = 0.0
    counted: Counter[str] = Counter()  # the browser's counts, summed over the shards
    for i in range(n):
        d = out / "shards" / f"{i}-of-{n}"
        rows, _ = load_jsonl_checkpoint(d / SESSIONS_FILE, key="key")
        records.update(rows)
        shard_manifest = read_json(d / MANIFEST_FILE)
        seconds = max(seconds, shard_manifest["timing"]["seconds"])
        b = shard_manifest.get("browser") or {}
        counted.update({k: b[k] for k in ("crashes", "reruns", "browser_restarts", "pages", "name_checks",
                                          "name_mismatches") if isinstance(b.get(k), int)})
    jobs = plan_jobs(spec.users, spec.sessions_per_user, spec.seed)
    missing = [j.key for j in jobs if j.key not in records]
    if missing:
        raise BadInput(f"{len(missing)} planned session(s) missing from the shards (e.g. {missing[0]})",
                       str(out / "shards"), "resume the shards before merging")
    ordered = [records[j.key] for j in jobs]
    _rewrite_in_order(out / SESSIONS_FILE, ordered)
    manifest = build_manifest(spec, ordered, seconds=seconds, backend_counts=dict(counted))
    manifest["shard"] = f"merged from {n} shards"
    _atomic_json(out / RUN_FILE, {"spec": asdict(spec), "key": spec.key()})
    _atomic_json(out / MANIFEST_FILE, manifest)
    save_personas(out, users)
    export_run(out, world, ordered, users, spec.split, manifest)
    return manifest


PERSONAS_FILE = "personas.jsonl"


def save_personas(d: Path, users: dict[str, User]) -> None:
    """The run's personas (id and survey), so merging and reports need no other source."""
    lines = [json.dumps({"user_id": u.user_id, "survey": u.survey}, ensure_ascii=False)
             for u in users.values()]
    tmp = d / f".{PERSONAS_FILE}.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(d / PERSONAS_FILE)


def load_personas_of(d: str | Path) -> dict[str, User]:
    """The personas a run (or shard) folder was simulated with."""
    out: dict[str, User] = {}
    f = Path(d) / PERSONAS_FILE
    if f.is_file():
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                x = json.loads(line)
                out[x["user_id"]] = User(x["user_id"], survey=x.get("survey"))
    return out


def load_run(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A finished run's manifest and session records (in plan order)."""
    from customer_r1.errors import MissingInput
    from customer_r1.evaluation.predict import load_jsonl_checkpoint

    p = Path(path)
    if not (p / MANIFEST_FILE).is_file() or not (p / SESSIONS_FILE).is_file():
        raise MissingInput(f"{p} is not a finished simulation run (no {MANIFEST_FILE} / {SESSIONS_FILE})",
                           str(p), "run `customer-r1 sim run --out DIR` (and `sim merge` for shards)")
    manifest = read_json(p / MANIFEST_FILE)
    rows, _ = load_jsonl_checkpoint(p / SESSIONS_FILE, key="key")
    return manifest, list(rows.values())
