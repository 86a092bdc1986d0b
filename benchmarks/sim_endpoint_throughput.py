"""Simulation steps/s with a policy behind an OpenAI-compatible endpoint: lockstep rounds
(the runner before issue 25) against pipelined sessions, K requests in flight.

    python benchmarks/sim_endpoint_throughput.py [--quick] [--ks 16,64,256] [--latencies 50,200]
        [--zero-k 64] [--per-k 4] [--modes lockstep,pipelined]

A fake endpoint (Starlette + uvicorn on 127.0.0.1, in its own process so its CPU is not
the runner's) answers every request after a fixed latency L (``asyncio.sleep``) with a
valid action for the page in the prompt: a click on one of the page's names, or
terminate, picked from a hash of the prompt, so the same prompt always gets the same
answer and the two code paths must write byte-identical ``sessions.jsonl`` (checked).
For each K and L it runs ``sim run --endpoint`` (through :func:`simulate`) over
``per_k * K`` sessions of the demo world (in process shop) and reports steps/s against
the K / L the latency allows: overall (the run's wall time, the tail of the last
sessions included) and steady (the requests the endpoint answered, as it saw
them: from the 10th percentile of the answers to the arrival of the last session's first
request, while every slot has a session), the most requests the endpoint had in flight,
and the CPU per step of the runner's process (the OPeRA export at the end included) and
of the endpoint's.
L = 0 gives the CPU ceiling. Goals (issue 25): >= 90 % of K / L until the ceiling;
ceiling >= 818 steps/s on 2 cores. ``--quick`` (about 3 minutes on 2 shared cores): 2K
sessions per K and fewer configurations.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

_NAME = re.compile(r'<(\w+)[^>]*?\bname="([^"]+)"')
_STEP = re.compile(r"\(step (\d+)\)")


def answer(content: str) -> str:
    """A valid action for the page at the end of ``content``: a click on one of its names
    (not a text field), or terminate; the same for the same prompt."""
    page = content.rsplit("# Current page", 1)[-1]
    h = int.from_bytes(hashlib.blake2b(content.encode(), digest_size=8).digest(), "little")
    names = [n for tag, n in _NAME.findall(page) if tag != "input"]
    m = _STEP.search(page)
    step = int(m.group(1)) if m else 1
    if not names or h % 12 == 0 or step >= 40:
        action: dict[str, str] = {"type": "terminate"}
    else:
        action = {"type": "click", "name": names[(h // 12) % len(names)]}
    return json.dumps({"rationale": "Looking around the shop.", "action": action})


# --------------------------------------------------------------------------- the fake endpoint


def serve(port: int) -> None:
    """The fake endpoint (run in its own process: ``--serve PORT``)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state: dict = {"latency": 0.0, "times": [], "starts": [], "in_flight": 0, "max_in_flight": 0}

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if "(this is the first step)" in content:  # a session's first request
            state["starts"].append(time.time())
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            if state["latency"] > 0:
                await asyncio.sleep(state["latency"])
            text = answer(content)
        finally:
            state["in_flight"] -= 1
        state["times"].append(time.time())
        return JSONResponse({"object": "chat.completion", "model": body.get("model", ""), "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})

    async def config(request: Request) -> JSONResponse:
        body = await request.json()
        state.update(latency=float(body["latency_s"]), times=[], starts=[], max_in_flight=0)
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"times": state["times"], "starts": state["starts"],
                             "max_in_flight": state["max_in_flight"],
                             "cpu_s": time.process_time()})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                            Route("/config", config, methods=["POST"]), Route("/stats", stats)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                backlog=4096, limit_concurrency=None)


class Endpoint:
    """The fake endpoint in a child process."""

    def __enter__(self) -> Endpoint:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)])
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the fake endpoint did not start") from None
                time.sleep(0.1)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def call(self, path: str, body: dict | None = None) -> dict:
        import httpx

        url = f"http://127.0.0.1:{self.port}{path}"
        r = httpx.post(url, json=body, timeout=30) if body is not None else httpx.get(url, timeout=30)
        return r.json()

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# --------------------------------------------------------------------------- runs


def one_run(ep: Endpoint, world_dir: Path, build: Path, users: list[str], out: Path, *, k: int,
            latency_ms: float, sessions: int, pipeline: bool) -> dict:
    from customer_r1.cli.simulate import simulate

    ep.call("/config", {"latency_s": latency_ms / 1000})
    n_users = min(len(users), sessions)
    spu = math.ceil(sessions / n_users)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    srv0 = ep.call("/stats")["cpu_s"]
    t0 = time.perf_counter()
    m = simulate(world=world_dir, out=out, endpoint=ep.url, model_name="fake", build_config=build,
                 users=users[:n_users], sessions_per_user=spu, seed=0, concurrency=k, progress=False,
                 pipeline=pipeline)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    st = ep.call("/stats")
    times = sorted(st["times"])
    steps = m["counts"]["steps"]
    # steady: from the 10th percentile of the answers to the last session's first request
    # (until then every slot has a session: the rate with K sessions in flight)
    t_lo, t_hi = times[int(0.1 * len(times))], max(st["starts"])
    n_mid = sum(1 for t in times if t_lo < t <= t_hi)
    steady = n_mid / (t_hi - t_lo) if n_mid >= 20 and t_hi > t_lo else None
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"k": k, "latency_ms": latency_ms, "mode": "pipelined" if pipeline else "lockstep",
            "sessions": m["counts"]["sessions"], "steps": steps, "requests": len(times),
            "seconds": m["timing"]["seconds"], "wall": wall,
            "overall": steps / m["timing"]["seconds"], "steady": steady,
            "max_in_flight": st["max_in_flight"], "cpu_ms_per_step": 1000 * cpu / max(1, steps),
            "server_cpu_ms_per_step": 1000 * (st["cpu_s"] - srv0) / max(1, steps),
            "errors": m["counts"]["error_steps"],
            "sessions_file": (out / "sessions.jsonl").read_bytes()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="about 3 minutes on 2 shared cores")
    ap.add_argument("--ks", default="16,64,256")
    ap.add_argument("--latencies", default="50,200", help="milliseconds")
    ap.add_argument("--zero-k", type=int, default=64, help="K of the L = 0 (CPU ceiling) rows")
    ap.add_argument("--per-k", type=float, default=4, help="sessions per run = per_k * K (at least 64)")
    ap.add_argument("--modes", default="lockstep,pipelined")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.quick:
        args.per_k = 2

    from customer_r1.world import WorldConfig
    from customer_r1.world.generate import world_base

    ks = [int(x) for x in args.ks.split(",")]
    lats = [float(x) for x in args.latencies.split(",")]
    modes = args.modes.split(",")
    configs = [(k, lat) for lat in lats for k in ks] + [(args.zero_k, 0.0)]
    cfg = WorldConfig(users=80, sessions_per_user=20, seed=0, page_size="compact")
    world = world_base(cfg, population=False)
    users = list(world.users)
    load = os.getloadavg()
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Endpoint() as ep:
        root = Path(tmp)
        (root / "world" / "world").mkdir(parents=True)
        (root / "world" / "world" / "world.json").write_text(json.dumps({"format": 1, "config": asdict(cfg)}))
        build = root / "build.json"
        build.write_text(json.dumps({"config": {"prompt_style": "compact", "token_budget": None,
                                                "tokenizer": None, "max_history_steps": 3}}))
        for k, lat in configs:
            n = max(64, int(args.per_k * k))
            got = {}
            for mode in modes:
                r = one_run(ep, root / "world", build, users, root / f"{mode}-{k}-{lat:g}", k=k,
                            latency_ms=lat, sessions=n, pipeline=mode == "pipelined")
                got[mode] = r
                rows.append(r)
                print(f"  K={k:4d} L={lat:5g} ms {mode:10s} {r['overall']:7.1f} steps/s "
                      f"({r['steps']} steps, {r['wall']:.1f} s)", file=sys.stderr, flush=True)
            if len(got) == 2:
                same = got["lockstep"]["sessions_file"] == got["pipelined"]["sessions_file"]
                for r in got.values():
                    r["identical"] = same
                assert same, f"K={k} L={lat}: the pipelined run's sessions differ from lockstep's"
    total = time.perf_counter() - t_all
    load_after = os.getloadavg()

    print(f"\nendpoint-policy throughput (fake endpoint in its own process; demo world, in-process shop; "
          f"{os.cpu_count()} CPUs; load average before {load[0]:.2f}, after {load_after[0]:.2f}; "
          f"{total:.0f} s in all)")
    head = (f"{'K':>4} {'L ms':>5} {'mode':10} {'sessions':>8} {'steps':>6} {'K/L':>7} {'overall':>8} "
            f"{'%K/L':>5} {'steady':>7} {'%K/L':>5} {'max in flight':>13} {'cpu ms/step':>11} "
            f"{'srv ms/step':>11} {'same':>4}")
    print(head)
    for r in rows:
        kl = r["k"] / (r["latency_ms"] / 1000) if r["latency_ms"] else None
        pct = (lambda v: f"{100 * v / kl:5.0f}" if kl and v else f"{'':5}")  # noqa: E731
        steady = f"{r['steady']:7.1f}" if r["steady"] else f"{'':7}"
        print(f"{r['k']:4d} {r['latency_ms']:5g} {r['mode']:10} {r['sessions']:8d} {r['steps']:6d} "
              f"{(f'{kl:7.0f}' if kl else '    inf')} {r['overall']:8.1f} {pct(r['overall'])} {steady} "
              f"{pct(r['steady'])} {r['max_in_flight']:13d} {r['cpu_ms_per_step']:11.2f} "
              f"{r['server_cpu_ms_per_step']:11.2f} {('yes' if r.get('identical') else '-'):>4}")
    piped = [r for r in rows if r["mode"] == "pipelined"]
    zero = [r for r in piped if not r["latency_ms"]]
    ceiling = max((r["steady"] or r["overall"]) for r in zero) if zero else None
    if ceiling:
        print(f"\nCPU ceiling (pipelined, L = 0, K = {args.zero_k}): {ceiling:.0f} steps/s steady; "
              f"goal >= 818 on 2 quiet cores: {'met' if ceiling >= 818 else 'NOT met'} here")
    for r in piped:
        if not r["latency_ms"]:
            continue
        kl = r["k"] / (r["latency_ms"] / 1000)
        bound = min(kl, ceiling) if ceiling else kl
        frac = (r["steady"] or r["overall"]) / bound
        print(f"K = {r['k']:3d}, L = {r['latency_ms']:g} ms: {100 * frac:.0f} % of "
              f"{'K/L' if bound == kl else 'the measured ceiling'} ({bound:.0f} steps/s); goal >= 90 %: "
              f"{'met' if frac >= 0.9 else 'NOT met'}; max in flight {r['max_in_flight']} (K = {r['k']})")


if __name__ == "__main__":
    main()
