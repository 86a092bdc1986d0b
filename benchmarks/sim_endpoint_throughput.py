"""Steps/s of simulated shoppers behind an OpenAI-compatible endpoint, lockstep vs pipelined.

Lockstep rounds (the runner before issue 25) against pipelined sessions, K requests in flight.

    python benchmarks/sim_endpoint_throughput.py [--quick] [--before-rev REV] [--ks 16,64,256]
        [--latencies 50,200] [--zero-k 64] [--per-k 4] [--modes before,lockstep,pipelined]

Modes, each run in a fresh process: ``pipelined`` (this tree), ``lockstep`` (this tree
with ``pipeline=False``: the rounds, but this tree's HTTP client) and ``before`` (the
``src`` of git revision ``--before-rev``, e.g. the commit before the pipelined runner,
read with ``git archive``: the runner and the HTTP client as they were). Default:
before and pipelined with ``--before-rev``, else lockstep and pipelined.

A fake endpoint (Starlette + uvicorn on 127.0.0.1, in its own process so its CPU is not
the runner's) answers every request a fixed latency L after it reached the handler (its own
parsing and answering inside L; ``asyncio.sleep`` for the rest; the mean time it took is
the "answer ms" column: what the runner cannot be blamed for) with a
valid action for the page in the prompt: a click on one of the page's names, or
terminate, picked from a hash of the prompt, so the same prompt always gets the same
answer and the two code paths must write byte-identical ``sessions.jsonl`` (checked).
For each K and L it runs ``sim run --endpoint`` (through :func:`simulate`) over
``per_k * K`` sessions of the demo world (in process shop) and reports steps/s against
the K / L the latency allows: overall (the run's wall time, the tail of the last
sessions included) and steady (the requests the endpoint answered, as it saw
them: from the 10th percentile of the answers to the arrival of the last session's first
request, while every slot has a session), the most requests the endpoint had in flight,
and the CPU per step of the runner's process (around ``simulate``, modules imported before;
the OPeRA export at the end included) and of the endpoint's.
L = 0 gives the CPU ceiling. Goals (issue 25): >= 90 % of K / L until the ceiling;
ceiling >= 818 steps/s on 2 cores. ``--quick``: 1.5 K sessions per K (at least 64),
about 3 minutes on 2 quiet cores.
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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_NAME = re.compile(r'<(\w+)[^>]*?\bname="([^"]+)"')
_STEP = re.compile(r"\(step (\d+)\)")


def answer(content: str) -> str:
    """A valid action for the page at the end of ``content``: a click on one of its names
    (not a form field), or terminate; the same for the same prompt."""
    page = content.rsplit("# Current page", 1)[-1]
    h = int.from_bytes(hashlib.blake2b(content.encode(), digest_size=8).digest(), "little")
    names = [n for tag, n in _NAME.findall(page) if tag not in ("input", "select", "textarea")]
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

    state: dict = {"latency": 0.0, "times": [], "starts": [], "in_flight": 0, "max_in_flight": 0,
                   "answer_s": []}

    async def chat(request: Request) -> JSONResponse:
        t_in = time.monotonic()  # the answer is due L after this (as far as this CPU allows)
        body = await request.json()
        content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if "(this is the first step)" in content:  # a session's first request
            state["starts"].append(time.time())
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            text = answer(content)
            wait = state["latency"] - (time.monotonic() - t_in)
            if wait > 0:
                await asyncio.sleep(wait)
        finally:
            state["in_flight"] -= 1
        state["times"].append(time.time())
        state["answer_s"].append(time.monotonic() - t_in)
        return JSONResponse({"object": "chat.completion", "model": body.get("model", ""), "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})

    async def config(request: Request) -> JSONResponse:
        body = await request.json()
        state.update(latency=float(body["latency_s"]), times=[], starts=[], max_in_flight=0, answer_s=[])
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"times": state["times"], "starts": state["starts"],
                             "max_in_flight": state["max_in_flight"],
                             "answer_ms": 1000 * sum(state["answer_s"]) / max(1, len(state["answer_s"])),
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


def child(spec: dict) -> None:
    """One run, in its own process (``--child JSON``): a fresh interpreter for each code path,
    the source tree on PYTHONPATH (this one, or the ``before`` revision's)."""
    import importlib

    try:
        from customer_r1.sim.simulate import simulate
    except ImportError:  # a revision from before sim.simulate existed (the body lived in the CLI)
        from customer_r1.cli.simulate import simulate  # type: ignore[no-redef]

    for mod in ("customer_r1.sim.runner", "customer_r1.sim.policies", "customer_r1.world.load",
                "customer_r1.evaluation.predict", "customer_r1.evaluation.backends.openai_api",
                "customer_r1.data.opera_write", "customer_r1.world.export", "customer_r1.world.stats",
                "rich.progress", "pandas", "pyarrow"):  # imported before the CPU is counted
        importlib.import_module(mod)
    kw = {} if spec["mode"] == "before" else {"pipeline": spec["mode"] == "pipelined"}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    m = simulate(world=Path(spec["world"]), out=Path(spec["out"]), endpoint=spec["url"], model_name="fake",
                 build_config=Path(spec["build"]), users=spec["users"], sessions_per_user=spec["spu"],
                 seed=0, concurrency=spec["k"], progress=False, **kw)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(json.dumps({"counts": m["counts"], "seconds": m["timing"]["seconds"], "wall": wall, "cpu": cpu}))


def one_run(ep: Endpoint, world_dir: Path, build: Path, users: list[str], out: Path, *, k: int,
            latency_ms: float, sessions: int, mode: str, src: Path) -> dict:
    ep.call("/config", {"latency_s": latency_ms / 1000})
    n_users = min(len(users), sessions)
    spec = {"mode": mode, "world": str(world_dir), "out": str(out), "url": ep.url, "build": str(build),
            "users": users[:n_users], "spu": math.ceil(sessions / n_users), "k": k}
    srv0 = ep.call("/stats")["cpu_s"]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                         capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"the {mode} run (K={k}, L={latency_ms:g} ms) failed:\n{res.stderr[-3000:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    st = ep.call("/stats")
    times = sorted(st["times"])
    steps = got["counts"]["steps"]
    # steady: from the 10th percentile of the answers to the last session's first request
    # (until then every slot has a session: the rate with K sessions in flight)
    t_lo, t_hi = times[int(0.1 * len(times))], max(st["starts"])
    n_mid = sum(1 for t in times if t_lo < t <= t_hi)
    steady = n_mid / (t_hi - t_lo) if n_mid >= 20 and t_hi > t_lo else None
    return {"k": k, "latency_ms": latency_ms, "mode": mode,
            "sessions": got["counts"]["sessions"], "steps": steps, "requests": len(times),
            "seconds": got["seconds"], "wall": got["wall"], "overall": steps / got["seconds"],
            "steady": steady,
            "max_in_flight": st["max_in_flight"], "answer_ms": st["answer_ms"],
            "cpu_ms_per_step": 1000 * got["cpu"] / max(1, steps),
            "server_cpu_ms_per_step": 1000 * (st["cpu_s"] - srv0) / max(1, steps),
            "errors": got["counts"]["error_steps"],
            "sessions_file": (out / "sessions.jsonl").read_bytes()}


def before_tree(rev: str, into: Path) -> Path:
    """The ``src`` folder of revision ``rev`` of this repository (read with ``git archive``;
    the repository and its worktrees are left as they are)."""
    repo = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "-C", str(repo), "archive", rev, "src"], check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return into / "src"


def _pct(v: float | None, kl: float | None) -> str:
    return f"{100 * v / kl:5.0f}" if kl and v else f"{'':5}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="1.5 K sessions per K: about 3 minutes on 2 quiet cores (5 on busy ones)")
    ap.add_argument("--ks", default="16,64,256")
    ap.add_argument("--latencies", default="50,200", help="milliseconds")
    ap.add_argument("--zero-k", type=int, default=64, help="K of the L = 0 (CPU ceiling) rows")
    ap.add_argument("--per-k", type=float, default=4, help="sessions per run = per_k * K (at least 64)")
    ap.add_argument("--modes", default=None,
                    help="lockstep (this tree, pipeline=False), pipelined (this tree), before (the "
                         "--before-rev revision's runner, as it was)")
    ap.add_argument("--before-rev", help="a git revision before the pipelined runner: adds mode 'before'")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each mode (interleaved); the best is reported (a shared machine)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.child:
        child(json.loads(args.child))
        return
    if args.quick:
        args.per_k = 1.5

    from customer_r1.world import WorldConfig
    from customer_r1.world.generate import config_dict, world_base

    ks = [int(x) for x in args.ks.split(",")]
    lats = [float(x) for x in args.latencies.split(",")]
    modes = (args.modes or ("before,pipelined" if args.before_rev else "lockstep,pipelined")).split(",")
    if "before" in modes and not args.before_rev:
        ap.error("mode 'before' needs --before-rev")
    here = Path(__file__).resolve().parents[1] / "src"
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
        (root / "world" / "world" / "world.json").write_text(
            json.dumps({"format": 1, "config": config_dict(cfg)}))
        build = root / "build.json"
        build.write_text(json.dumps({"config": {"prompt_style": "compact", "token_budget": None,
                                                "tokenizer": None, "max_history_steps": 3}}))
        srcs = {m: here for m in modes}
        if "before" in modes:
            (root / "before").mkdir()
            srcs["before"] = before_tree(args.before_rev, root / "before")
        for k, lat in configs:
            n = max(64, int(args.per_k * k))
            got: dict[str, dict] = {}
            for rep in range(args.repeat):  # modes interleaved; the best run of each is kept
                for mode in modes:
                    out = root / f"{mode}-{k}-{lat:g}-{rep}"
                    load_now = os.getloadavg()[0]
                    r = one_run(ep, root / "world", build, users, out, k=k, latency_ms=lat, sessions=n,
                                mode=mode, src=srcs[mode])
                    r["load"] = load_now
                    shutil.rmtree(out)
                    print(f"  K={k:4d} L={lat:5g} ms {mode:10s} {r['overall']:7.1f} steps/s overall, "
                          f"{r['steady'] or 0:7.1f} steady ({r['steps']} steps, {r['wall']:.1f} s, "
                          f"load {load_now:.1f})", file=sys.stderr, flush=True)
                    best = got.get(mode)
                    if best is not None:
                        assert r["sessions_file"] == best["sessions_file"]
                    if best is None or (r["steady"] or r["overall"]) > (best["steady"] or best["overall"]):
                        got[mode] = r
            rows.extend(got[m] for m in modes)
            if len(got) > 1:
                same = len({r["sessions_file"] for r in got.values()}) == 1
                for r in got.values():
                    r["identical"] = same
                assert same, f"K={k} L={lat}: the sessions of {', '.join(got)} differ"
    total = time.perf_counter() - t_all
    load_after = os.getloadavg()

    print(f"\nendpoint-policy throughput (fake endpoint in its own process; demo world, in-process shop; "
          f"{os.cpu_count()} CPUs; load average before {load[0]:.2f}, after {load_after[0]:.2f}; "
          f"{total:.0f} s in all)")
    head = (f"{'K':>4} {'L ms':>5} {'mode':10} {'sessions':>8} {'steps':>6} {'K/L':>7} {'overall':>8} "
            f"{'%K/L':>5} {'steady':>7} {'%K/L':>5} {'max in flight':>13} {'answer ms':>9} "
            f"{'cpu ms/step':>11} {'srv ms/step':>11} {'load':>5} {'same':>4}")
    print(head)
    if "before" in modes:
        print(f"(before: the runner of {args.before_rev}, lockstep rounds and one shared HTTP pool)")
    for r in rows:
        kl = r["k"] / (r["latency_ms"] / 1000) if r["latency_ms"] else None
        steady = f"{r['steady']:7.1f}" if r["steady"] else f"{'':7}"
        print(f"{r['k']:4d} {r['latency_ms']:5g} {r['mode']:10} {r['sessions']:8d} {r['steps']:6d} "
              f"{(f'{kl:7.0f}' if kl else '    inf')} {r['overall']:8.1f} {_pct(r['overall'], kl)} {steady} "
              f"{_pct(r['steady'], kl)} {r['max_in_flight']:13d} {r['answer_ms']:9.2f} "
              f"{r['cpu_ms_per_step']:11.2f} {r['server_cpu_ms_per_step']:11.2f} {r['load']:5.1f} "
              f"{('yes' if r.get('identical') else '-'):>4}")
    piped = [r for r in rows if r["mode"] == "pipelined"]
    zero = [r for r in piped if not r["latency_ms"]]
    ceiling = max((r["steady"] or r["overall"]) for r in zero) if zero else None
    if ceiling:
        print(f"\nCPU ceiling (pipelined, L = 0, K = {args.zero_k}): {ceiling:.0f} steps/s steady; "
              f"goal >= 818 on 2 quiet cores: {'met' if ceiling >= 818 else 'NOT met'} here")
    cpu = {r["mode"]: r["cpu_ms_per_step"] for r in rows if not r["latency_ms"]}
    if "pipelined" in cpu and len(cpu) > 1:
        print("runner CPU per step at L = 0 (the ceiling's cost, less sensitive to the load than "
              "steps/s): " + ", ".join(f"{m} {v:.2f} ms" for m, v in cpu.items()))
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
