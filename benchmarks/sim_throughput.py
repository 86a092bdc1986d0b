"""Simulation speed: steps/s and sessions/min of the world's shopper in process, over
HTTP and in headless Chromium, the HTTP shop's and the browser's own cost per step, and a
checkpoint with 1 and K sessions in flight.

    python benchmarks/sim_throughput.py [--sessions 200] [--model demo-model/real-grpo]
        [--model-sessions 32] [--k 16] [--threads 2] [--skip-model]
        [--browser-sessions 40] [--browser-k 4] [--skip-browser]

Goals (issue 16): the HTTP shop adds <= 5 ms per step (median, measured around
``ShopEnv.step`` on identical sessions, so the policy's time is left out); batching the
steps of K = 16 concurrent sessions through the checkpoint gives >= 3x the steps/s of K = 1.
Issue 18: the browser's own cost per step on the local shop (``ShopEnv.step`` through
Chromium: find and check the element, a real click or typing, the page's load, the
simplifier and the recorder block; median) <= 150 ms; the browser rows are run with
``--browser-k`` contexts in one Chromium too.
The world is the demo's (80 shoppers, compact pages, seed 0: the catalog the shipped
checkpoints were trained on); nothing is written but a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from customer_r1.domain import Step, User
from customer_r1.sim.browser import Browser, BrowserShop, allowlist_for
from customer_r1.sim.env import ShopEnv
from customer_r1.sim.http_env import HttpShop
from customer_r1.sim.policies import ActRequest, WorldPolicy
from customer_r1.sim.runner import plan_jobs
from customer_r1.sim.site import create_app, serve_in_thread
from customer_r1.world import WorldConfig
from customer_r1.world.generate import world_base

REPO = Path(__file__).resolve().parents[1]


def timed_world_sessions(world, env: ShopEnv, jobs, users) -> tuple[list[float], int, float]:
    """Run the world's shopper over ``jobs``; per-step env.step seconds, steps, wall seconds."""
    policy = WorldPolicy(world)
    step_times: list[float] = []
    steps = 0
    t0 = time.perf_counter()
    for job in jobs:
        obs = env.reset(job.user_id, job.seed)
        history: list[Step] = []
        t = 0
        while True:
            req = ActRequest(job.key, obs, history, users[job.user_id], job.seed * 1000 + t)
            dec = policy.act_batch([req])[0]
            s0 = time.perf_counter()
            res = env.step(dec.action)
            step_times.append(time.perf_counter() - s0)
            steps += 1
            history.append(Step(str(t), "", dec.action.type, obs, dec.action, None, dec.rationale,
                                extra={"motive": dec.info["motive"]}))
            obs = res.observation
            t += 1
            if res.done:
                break
        policy.end(job.key)
    return step_times, steps, time.perf_counter() - t0


def browser_rows(world, cfg: WorldConfig, jobs, users, k: int) -> dict:
    """The world's shopper through headless Chromium on the local shop: one session at a
    time (per-step cost around ``ShopEnv.step``) and ``k`` contexts stepped from threads."""
    from customer_r1.sim.simulate import simulate

    with serve_in_thread(create_app(world)) as url, Browser(allowlist_for(url, None)) as chromium:
        env = ShopEnv(world, backend=BrowserShop(chromium, shop_url=url))
        step_t, steps, wall = timed_world_sessions(world, env, jobs, users)
        stats = dict(env.backend.stats)
        env.close()
        version = chromium.version
    local_env = ShopEnv(world)
    _, steps_local, _ = timed_world_sessions(world, local_env, jobs, users)
    assert steps == steps_local, "browser and in-process sessions differ"
    rows = [("world shopper, browser (1 context)", steps / wall, 60 * len(jobs) / wall,
             statistics.median(step_t))]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "world" / "world").mkdir(parents=True)
        (out / "world" / "world" / "world.json").write_text(json.dumps({"format": 1, "config": asdict(cfg)}))
        n_users = max(1, len(jobs) // 2)
        m = simulate(world=out / "world", out=out / "bk", policy="world", users=list(users)[:n_users],
                     sessions_per_user=2, seed=0, concurrency=k, backend="browser", progress=False)
        c = m["counts"]
        rows.append((f"world shopper, browser ({k} contexts)", c["steps"] / m["timing"]["seconds"],
                     60 * c["sessions"] / m["timing"]["seconds"], None))
    pages = max(1, stats.get("pages", 0))
    return {"rows": rows, "median_ms": 1000 * statistics.median(step_t),
            "p90_ms": 1000 * sorted(step_t)[int(0.9 * len(step_t))], "steps": steps,
            "simplify_ms": stats.get("simplify_ms_total", 0) / pages, "pages": stats.get("pages", 0),
            "mismatches": stats.get("name_mismatches", 0), "version": version}


def model_run(world, model: str, users, k: int, n: int, out: Path) -> dict:
    from customer_r1.sim.simulate import simulate

    t0 = time.perf_counter()
    m = simulate(world=out / "world", out=out / f"k{k}", model=model,
                 users=list(users)[: max(1, n // 2)], sessions_per_user=2, seed=0, concurrency=k,
                 progress=False, rationale="sample")
    m["wall"] = time.perf_counter() - t0
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--model", default=str(REPO / "demo-model" / "real-grpo"))
    ap.add_argument("--model-sessions", type=int, default=32)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--browser-sessions", type=int, default=40)
    ap.add_argument("--browser-k", type=int, default=4)
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args()

    cfg = WorldConfig(users=80, sessions_per_user=20, seed=0, page_size="compact")
    world = world_base(cfg, population=False)
    users = {u.user_id: User(u.user_id, survey=u.survey) for u in world.users.values()}
    jobs = plan_jobs(list(users), max(1, args.sessions // len(users) + 1), 0)[: args.sessions]

    local_t, steps, wall = timed_world_sessions(world, ShopEnv(world), jobs, users)
    rows = [("world shopper, in process", steps / wall, 60 * len(jobs) / wall, statistics.median(local_t))]
    with serve_in_thread(create_app(world)) as url:
        env = ShopEnv(world, backend=HttpShop(url))
        http_t, steps_h, wall_h = timed_world_sessions(world, env, jobs, users)
        env.close()
    assert steps_h == steps, "HTTP and in-process sessions differ"
    rows.append(("world shopper, over HTTP", steps_h / wall_h, 60 * len(jobs) / wall_h,
                 statistics.median(http_t)))
    added = (statistics.median(http_t) - statistics.median(local_t)) * 1000
    p90 = (sorted(http_t)[int(0.9 * len(http_t))] - sorted(local_t)[int(0.9 * len(local_t))]) * 1000

    browser: dict = {}
    if not args.skip_browser:
        browser = browser_rows(world, cfg, jobs[: args.browser_sessions], users, args.browser_k)
        rows += browser["rows"]

    model_rows = []
    if not args.skip_model:
        import torch

        torch.set_num_threads(args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            # A simulation needs only the world's config (catalog and shoppers derive from it).
            (out / "world" / "world").mkdir(parents=True)
            info = {"format": 1, "config": asdict(cfg)}
            (out / "world" / "world" / "world.json").write_text(json.dumps(info))
            for k in (1, args.k):
                m = model_run(world, args.model, users, k, args.model_sessions, out)
                c = m["counts"]
                model_rows.append((f"checkpoint, K = {k}", c["steps"] / m["timing"]["seconds"],
                                   60 * c["sessions"] / m["timing"]["seconds"], None, c))

    print(f"\nsimulation throughput ({len(jobs)} world-shopper sessions, {steps} steps; 2 CPU cores)")
    print(f"{'run':34} {'steps/s':>9} {'sessions/min':>13} {'median step ms':>15}")
    for name, sps, spm, med, *_ in rows + model_rows:
        print(f"{name:34} {sps:9.1f} {spm:13.1f} {'' if med is None else f'{1000 * med:15.3f}'}")
    print(f"\nHTTP shop adds {added:.2f} ms per step (median; p90 {p90:.2f} ms); goal <= 5 ms: "
          f"{'met' if added <= 5 else 'NOT met'}")
    if browser:
        b = browser
        print(f"browser (Chromium {b['version']}) costs {b['median_ms']:.1f} ms per step (median; p90 "
              f"{b['p90_ms']:.1f} ms; of which the simplifier and recorder block {b['simplify_ms']:.1f} ms "
              f"on average) on {b['steps']} steps, the same sessions as in process; goal <= 150 ms: "
              f"{'met' if b['median_ms'] <= 150 else 'NOT met'}; names checked on {b['pages']} pages, "
              f"{b['mismatches']} mismatched")
    if model_rows:
        speedup = model_rows[1][1] / model_rows[0][1]
        print(f"checkpoint {args.model}: K = {args.k} gives {speedup:.2f}x the steps/s of K = 1 "
              f"(torch threads {args.threads}; sampled rationales, action sampled at T = 1); goal >= 3x: "
              f"{'met' if speedup >= 3 else 'NOT met'}")
        for name, _, _, _, c in model_rows:
            print(f"  {name}: {c['sessions']} sessions, {c['steps']} steps, conversion "
                  f"{100 * c['conversion']:.0f}%, end reasons {c['end_reasons']}")


if __name__ == "__main__":
    main()
