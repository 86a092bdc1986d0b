"""`customer-r1 sim`: run persona-conditioned shoppers through the shop, closed loop.

``serve`` puts a world's shop on 127.0.0.1 as a web app; ``run`` simulates sessions with
a policy (the world's own shopper, the page-kind baseline, a checkpoint or an endpoint)
in process or over HTTP, resumably, in shards; ``merge`` joins shards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from customer_r1.cli.entry import new_app
from customer_r1.cli.params import input_argument, input_option, output_option
from customer_r1.errors import BadInput, BadOption

app = new_app(no_args_is_help=True)
_err = Console(stderr=True)

POLICIES = ("world", "baseline")


def _say(msg: str) -> None:
    _err.print(msg, markup=False, highlight=False, soft_wrap=True)


def _variant(specs: list[str] | None) -> Any:
    if not specs:
        return None
    from customer_r1.world.variants import resolve_variants

    return resolve_variants(list(specs))


def load_personas(path: Path) -> dict[str, Any]:
    """Users from a JSON list or JSONL file of ``{"user_id": ..., "survey": {...}}``."""
    from customer_r1.domain import User

    text = path.read_text(encoding="utf-8")
    items: list[tuple[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = [(f"{path}", x) for x in json.loads(text)]
        except json.JSONDecodeError as exc:
            raise BadInput(f"not valid JSON: {exc.msg}", f"{path}:{exc.lineno}",
                           "a JSON list of {\"user_id\", \"survey\"} objects") from exc
    else:
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((f"{path}:{i}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise BadInput(f"line is not valid JSON: {exc.msg}", f"{path}:{i}",
                               "one {\"user_id\": ..., \"survey\": {...}} object per line") from exc
    users: dict[str, Any] = {}
    for where, x in items:
        if not isinstance(x, dict) or not isinstance(x.get("user_id"), str) or not x["user_id"]:
            raise BadInput("a persona needs a non-empty string user_id", where,
                           "one {\"user_id\": ..., \"survey\": {...}} object per persona")
        survey = x.get("survey")
        if isinstance(survey, str):
            try:
                survey = json.loads(survey)
            except json.JSONDecodeError as exc:
                raise BadInput("survey is a string but not JSON", where) from exc
        if survey is not None and not isinstance(survey, dict):
            raise BadInput("survey must be an object (OPeRA's survey JSON)", where)
        users[x["user_id"]] = User(x["user_id"], survey=survey,
                                   raw_survey=json.dumps(survey) if survey is not None else None)
    if not users:
        raise BadInput("no personas in the file", str(path), "one {\"user_id\", \"survey\"} per line")
    return users


@app.command("serve")
def serve(
    world: Annotated[Path, input_option("world", "--world", help="A folder written by `world generate`.")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8000,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", help="Site variant: a built-in name or a YAML file (repeat to combine).")] = None,
) -> None:
    """Serve the world's shop as a web app on 127.0.0.1 (Ctrl-C stops it)."""
    import uvicorn

    from customer_r1.sim.site import check_port, create_app
    from customer_r1.world.load import load_world

    w = load_world(world)
    v = _variant(variant)
    check_port(port)
    _say(f"shop of {world} ({w.page_size} pages, variant {v.name if v else 'control'}) on "
         f"http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    uvicorn.run(create_app(w, v), host="127.0.0.1", port=port, log_level="warning")


def _users(world: Any, users: list[str] | None, persona_file: Path | None) -> dict[str, Any]:
    from customer_r1.domain import User

    known = {u.user_id: User(u.user_id, survey=u.survey, raw_survey=json.dumps(u.survey))
             for u in world.users.values()}
    if persona_file is not None:
        extra = load_personas(persona_file)
        if users:
            raise BadOption("give --users or --persona-file, not both", "--persona-file")
        return extra
    if not users:
        return known
    ids = [u.strip() for spec in users for u in spec.split(",") if u.strip()]
    unknown = [u for u in ids if u not in known]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise BadOption(f"unknown user {unknown[0]!r}{more}",
                        "--users", f"the world has {len(known)} users; see its user table or omit --users")
    return {u: known[u] for u in dict.fromkeys(ids)}


@app.command("run")
def run(
    world: Annotated[Path, input_option("world", "--world", help="A folder written by `world generate`.")],
    out: Annotated[Path, output_option("--out", help="Run folder (resumed if it holds this run).")],
    policy: Annotated[str | None, typer.Option(
        "--policy", help="world (the true shopper) or baseline (page-kind frequencies).")] = None,
    model: Annotated[str | None, input_option(
        "model", "--model", help="Checkpoint to simulate with.")] = None,
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="OpenAI-compatible base URL (free generation, parsed).")] = None,
    model_name: Annotated[str | None, typer.Option(
        "--model-name", help="Model name the endpoint serves.")] = None,
    build_config: Annotated[Path | None, input_option(
        "click_types", "--build-config",
        help="build.json of the examples the model was trained on (default: the checkpoint's).")] = None,
    users: Annotated[list[str] | None, typer.Option(
        "--users", help="User ids (comma-separated or repeated; default: every user of the world).")] = None,
    persona_file: Annotated[Path | None, input_option(
        "personas", "--persona-file", help="JSONL of {user_id, survey}: personas not in the world.")] = None,
    max_users: Annotated[int | None, typer.Option(
        "--max-users", min=1, help="Only the first N of the chosen users.")] = None,
    sessions_per_user: Annotated[int, typer.Option("--sessions-per-user", min=1)] = 1,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", help="Site variant: a built-in name or a YAML file (repeat to combine).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Run seed (each session's seed derives from it).")] = 0,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, help="Sessions in flight (a checkpoint batches their steps).")] = 1,
    shard: Annotated[str, typer.Option(
        "--shard", help="i/n: run every n-th session (merge with `sim merge`).")] = "0/1",
    backend: Annotated[str, typer.Option(
        "--backend", help="inprocess or http (the shop as a web app).")] = "inprocess",
    shop_url: Annotated[str | None, typer.Option(
        "--shop-url",
        help="With --backend http: a running `sim serve` (default: start one on loopback).")] = None,
    temperature: Annotated[float, typer.Option(
        "--temperature", min=0.0, help="Action sampling temperature (0: argmax).")] = 1.0,
    rationale: Annotated[str, typer.Option(
        "--rationale", help="Checkpoint: sample (each step's reason drawn, then its action: the "
                            "model's own distribution) or greedy (the likeliest reason).")] = "sample",
    rationale_temperature: Annotated[float, typer.Option("--rationale-temperature", min=0.0)] = 1.0,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Default: the world's.")] = None,
    max_errors: Annotated[int, typer.Option("--max-errors", min=1, help="Consecutive invalid actions.")] = 5,
    split: Annotated[str, typer.Option(
        "--split", help="Split name of the sessions in OPeRA's layout.")] = "test",
    device: Annotated[str, typer.Option("--device", help="Checkpoint: auto, cpu, cuda ...")] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Simulate sessions of the chosen personas with one policy; write them in OPeRA's layout."""
    from customer_r1.sim.runner import parse_shard

    chosen = [x for x in (policy, model, endpoint) if x]
    if len(chosen) != 1:
        raise BadOption("give exactly one of --policy world|baseline, --model CKPT or --endpoint URL",
                        "--policy / --model / --endpoint")
    if policy is not None and policy not in POLICIES:
        raise BadOption(f"unknown policy {policy!r}", "--policy",
                        f"one of {', '.join(POLICIES)}, or --model / --endpoint")
    if endpoint is not None and not model_name:
        raise BadOption("--endpoint needs --model-name", "--model-name", "the name the server serves")
    if backend not in ("inprocess", "http"):
        raise BadOption(f"unknown backend {backend!r}", "--backend", "inprocess or http")
    if rationale not in ("greedy", "sample"):
        raise BadOption(f"unknown rationale mode {rationale!r}", "--rationale", "greedy or sample")
    if shop_url is not None and backend != "http":
        raise BadOption("--shop-url needs --backend http", "--shop-url")
    if shop_url is not None:
        _loopback(shop_url)
    if build_config is not None and policy is not None:
        raise BadOption("--build-config is for --model or --endpoint", "--build-config",
                        "the world's shopper and the baseline build no prompts")
    if model is not None:
        from customer_r1.models import resolve_model

        resolve_model(model, "--model")
    if endpoint is not None:
        from customer_r1.evaluation.backends.base import probe_endpoint

        probe_endpoint(endpoint, "--endpoint")
    shard_t = parse_shard(shard)
    summary = simulate(
        world=world, out=out, policy=policy, model=model, endpoint=endpoint, model_name=model_name,
        build_config=build_config, users=users, persona_file=persona_file, max_users=max_users,
        sessions_per_user=sessions_per_user, variant=variant, seed=seed, concurrency=concurrency,
        shard=shard_t, backend=backend, shop_url=shop_url, temperature=temperature, rationale=rationale,
        rationale_temperature=rationale_temperature, max_steps=max_steps, max_errors=max_errors,
        split=split, device=device, progress=progress,
    )
    c = summary["counts"]
    t = summary["timing"]
    _say(f"{c['sessions']} sessions, {c['steps']} steps ({c['sessions_resumed']} sessions kept from an "
         f"earlier run), conversion {100 * c['conversion']:.1f}%, mean {c['mean_steps']:.1f} steps; "
         f"end reasons {c['end_reasons']}; invalid actions {c['errors'] or 0}; "
         f"{t['steps_per_second'] or 0} steps/s → {out}")


def _loopback(url: str) -> None:
    from urllib.parse import urlparse

    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise BadOption(f"{url} is not on this machine", "--shop-url",
                        "the simulator only drives a shop served on loopback (sim serve)")


def simulate(*, world: Path, out: Path, policy: str | None = None, model: str | None = None,
             endpoint: str | None = None, model_name: str | None = None,
             build_config: Path | None = None, users: list[str] | None = None,
             persona_file: Path | None = None, max_users: int | None = None, sessions_per_user: int = 1,
             variant: list[str] | None = None, seed: int = 0, concurrency: int = 1,
             shard: tuple[int, int] = (0, 1), backend: str = "inprocess", shop_url: str | None = None,
             temperature: float = 1.0, rationale: str = "sample", rationale_temperature: float = 1.0,
             max_steps: int | None = None, max_errors: int = 5, split: str = "test",
             device: str = "auto", progress: bool = True, console: Any = None) -> dict[str, Any]:
    """The body of ``sim run`` as a function (the demo and ``sim ab`` call it)."""
    from contextlib import ExitStack

    from customer_r1.sim.env import EnvConfig, ShopEnv
    from customer_r1.sim.runner import Runner, RunSpec
    from customer_r1.world.load import load_world

    w = load_world(world)
    v = _variant(variant)
    people = _users(w, users, persona_file)
    if max_users is not None:
        people = dict(list(people.items())[:max_users])
    pol = make_policy(w, people, world_dir=world, policy=policy, model=model, endpoint=endpoint,
                      model_name=model_name,
                      build_config=build_config, temperature=temperature, rationale=rationale,
                      rationale_temperature=rationale_temperature, device=device, concurrency=concurrency)
    env_cfg = EnvConfig(max_steps=max_steps or w.config.max_steps, max_consecutive_errors=max_errors)
    spec = RunSpec(world=str(world), world_config=json.loads(json.dumps(vars_of(w.config))),
                   policy=pol.describe(), variant=v.to_dict() if v is not None else None,
                   variant_name=v.name if v is not None else "control", seed=seed, users=list(people),
                   sessions_per_user=sessions_per_user, max_steps=env_cfg.max_steps,
                   max_consecutive_errors=env_cfg.max_consecutive_errors, split=split, backend=backend,
                   shard=list(shard))
    with ExitStack() as stack:
        stack.callback(getattr(pol, "close", lambda: None))
        if backend == "http":
            from customer_r1.sim.http_env import HttpShop
            from customer_r1.sim.site import create_app, serve_in_thread

            url = shop_url or stack.enter_context(serve_in_thread(create_app(w)))

            def factory() -> ShopEnv:
                return ShopEnv(w, env_cfg, backend=HttpShop(url))
        else:
            def factory() -> ShopEnv:
                return ShopEnv(w, env_cfg)
        runner = Runner(w, pol, spec, out, users=people, env_factory=factory, variant=v,
                        concurrency=concurrency, progress=progress, console=console or _err)
        return runner.run()


def vars_of(cfg: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)


def make_policy(world: Any, users: dict[str, Any], *, world_dir: Path, policy: str | None, model: str | None,
                endpoint: str | None, model_name: str | None, build_config: Path | None,
                temperature: float, rationale: str, rationale_temperature: float, device: str,
                concurrency: int) -> Any:
    """The policy the flags describe."""
    from customer_r1.sim import policies

    if policy == "world":
        return policies.WorldPolicy(world)
    if policy == "baseline":
        from customer_r1.data.opera import load_opera

        try:
            train = load_opera(world_dir, splits=["train"])
        except FileNotFoundError as exc:
            raise BadInput("the baseline needs the world's training sessions", str(world_dir),
                           "pass a world written by `world generate`") from exc
        return policies.BaselinePolicy(train, temperature=temperature)
    from customer_r1.sim.prompts import load_build_config

    if model is not None:
        cfg_src = build_config or Path(model)
        build = load_build_config(cfg_src, tokenizer=str(model))
        return policies.RankerPolicy(model, build, users, temperature=temperature, rationale=rationale,
                                     rationale_temperature=rationale_temperature, device=device)
    from customer_r1.evaluation.backends.openai_api import OpenAIBackend

    if build_config is None:
        raise BadOption("--endpoint needs --build-config", "--build-config",
                        "the build.json of the examples the served model was trained on")
    build = load_build_config(build_config, tokenizer=None, token_budget=None)
    backend = OpenAIBackend(str(endpoint), str(model_name), concurrency=max(1, concurrency))
    return policies.EndpointPolicy(backend, build, users, temperature=temperature)


@app.command("merge")
def merge(
    run_dir: Annotated[Path, input_argument("sim_shards", help="A run folder whose shards/ to merge.")],
) -> None:
    """Merge the shards of a run (``sim run --shard i/n --out DIR``) into DIR."""
    from customer_r1.sim.runner import RUN_FILE, load_personas_of, merge_shards
    from customer_r1.world.load import load_world

    shard0 = sorted((run_dir / "shards").glob("*-of-*/" + RUN_FILE))
    if not shard0:
        raise BadInput(f"no shards under {run_dir / 'shards'}", str(run_dir),
                       "run `sim run --shard i/n --out DIR` first")
    from customer_r1.io import read_json

    spec = read_json(shard0[0])["spec"]
    w = load_world(spec["world"])
    manifest = merge_shards(run_dir, w, load_personas_of(shard0[0].parent))
    assert manifest is not None
    c = manifest["counts"]
    _say(f"merged {manifest['shard']}: {c['sessions']} sessions, {c['steps']} steps → {run_dir}")
