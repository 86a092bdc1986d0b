"""`customer-r1 sim`: run persona-conditioned shoppers through the shop, closed loop.

``serve`` puts a world's shop on 127.0.0.1 as a web app; ``run`` simulates sessions with
a policy (the world's own shopper, the page-kind baseline, a checkpoint or an endpoint)
in process or over HTTP, resumably, in shards; ``merge`` joins shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from customer_r1.cli.entry import new_app
from customer_r1.cli.params import input_argument, input_option, output_option
from customer_r1.errors import BadInput, BadOption
from customer_r1.sim.simulate import _check_browser_options, _variant, check_policy_args, simulate

app = new_app(no_args_is_help=True)
_err = Console(stderr=True)



def _say(msg: str) -> None:
    _err.print(msg, markup=False, highlight=False, soft_wrap=True)


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


@app.command("run")
def run(
    world: Annotated[Path, input_option("world", "--world", help="A folder written by `world generate`.")],
    out: Annotated[Path, output_option("--out", help="Run folder (resumed if it holds this run).")],
    policy: Annotated[str | None, typer.Option(
        "--policy", help="world (the true shopper), baseline (page-kind frequencies) or random "
                         "(a seeded monkey: a site's smoke test).")] = None,
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
        "--concurrency", min=1,
        help="Sessions in flight (a checkpoint batches their steps; with --endpoint each advances "
             "on its own, up to N requests in flight).")] = 1,
    shard: Annotated[str, typer.Option(
        "--shard", help="i/n: run every n-th session (merge with `sim merge`).")] = "0/1",
    backend: Annotated[str, typer.Option(
        "--backend", help="inprocess, http (the shop as a web app) or browser (headless Chromium).")
    ] = "inprocess",
    shop_url: Annotated[str | None, typer.Option(
        "--shop-url",
        help="With --backend http or browser: a running `sim serve` (default: start one on loopback).")
    ] = None,
    start_url: Annotated[str | None, typer.Option(
        "--start-url", help="With --backend browser: another site's first page (its host is allowed; "
                            "needs a model or endpoint policy).")] = None,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="With --backend browser: one more host the browser may reach, HOST[:PORT] or "
                        "*.DOMAIN (repeat; default: only the shop or the start page's host).")] = None,
    screenshots: Annotated[bool, typer.Option(
        "--screenshots", help="With --backend browser: a PNG of every page, named in the trace.")] = False,
    step_timeout: Annotated[float, typer.Option(
        "--step-timeout", min=0.5, help="With --backend browser: seconds an action may take to load.")
    ] = 10.0,
    time_budget: Annotated[float | None, typer.Option(
        "--time-budget", min=1.0, help="Seconds of wall time per session (then it ends: time_budget).")
    ] = None,
    token_budget: Annotated[int | None, typer.Option(
        "--token-budget", min=1,
        help="Tokens of pages shown per session, estimated as characters / 4 (then it ends).")] = None,
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
    page_kinds: Annotated[Path | None, input_option(
        "page_kinds", "--page-kinds",
        help="With --start-url: a YAML file of URL pattern -> page kind, tried before the classifier.")
    ] = None,
    words: Annotated[Path | None, input_option(
        "words", "--words", help="With --policy random: what it types, one word or phrase per line.")] = None,
) -> None:
    """Simulate sessions of the chosen personas with one policy; write them in OPeRA's layout."""
    from customer_r1.sim.runner import parse_shard

    if backend not in BACKENDS:
        raise BadOption(f"unknown backend {backend!r}", "--backend", ", ".join(BACKENDS))
    if rationale not in ("greedy", "sample"):
        raise BadOption(f"unknown rationale mode {rationale!r}", "--rationale", "greedy or sample")
    if shop_url is not None and backend not in ("http", "browser"):
        raise BadOption("--shop-url needs --backend http or browser", "--shop-url")
    if shop_url is not None:
        _loopback(shop_url)
    _check_browser_options(backend, start_url=start_url, shop_url=shop_url, allow=allow,
                           screenshots=screenshots, policy=policy)
    check_policy_args(policy, model, endpoint, model_name, build_config)
    shard_t = parse_shard(shard)
    summary = simulate(
        world=world, out=out, policy=policy, model=model, endpoint=endpoint, model_name=model_name,
        build_config=build_config, users=users, persona_file=persona_file, max_users=max_users,
        sessions_per_user=sessions_per_user, variant=variant, seed=seed, concurrency=concurrency,
        shard=shard_t, backend=backend, shop_url=shop_url, temperature=temperature, rationale=rationale,
        rationale_temperature=rationale_temperature, max_steps=max_steps, max_errors=max_errors,
        split=split, device=device, progress=progress, start_url=start_url, allow=allow,
        screenshots=screenshots, step_timeout=step_timeout, time_budget=time_budget,
        token_budget=token_budget, page_kinds=page_kinds, words=words,
    )
    c = summary["counts"]
    t = summary["timing"]
    _say(f"{c['sessions']} sessions, {c['steps']} steps ({c['sessions_resumed']} sessions kept from an "
         f"earlier run), conversion {100 * c['conversion']:.1f}%, mean {c['mean_steps']:.1f} steps; "
         f"end reasons {c['end_reasons']}; invalid actions {c['errors'] or 0}; "
         f"{t['steps_per_second'] or 0} steps/s → {out}")
    b = summary.get("browser")
    if b:
        _say(f"browser: {b['pages']} pages, fence violations {b['fence_violations']}, purchase intents "
             f"{b['purchase_intents']}, crashes {b['crashes']} (reruns {b['reruns']}), name checks "
             f"{b['name_checks']} ({b['name_mismatches']} mismatched)")
        h = b.get("site_health") or {}
        if h.get("blocked_hosts"):
            hosts = ", ".join(f"{k} ({v})" for k, v in list(h["blocked_hosts"].items())[:8])
            _say(f"blocked hosts (requests): {hosts}; to let them through: {h['allow_hint']}")


BACKENDS = ("inprocess", "http", "browser")


def _loopback(url: str) -> None:
    from urllib.parse import urlparse

    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise BadOption(f"{url} is not on this machine", "--shop-url",
                        "the simulator only drives a shop served on loopback (sim serve)")


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


from customer_r1.cli.sim_ab import ab_command as _ab  # noqa: E402  (registered last: it imports simulate)

app.command("ab")(_ab)

from customer_r1.cli.sim_study import compare as _compare  # noqa: E402  (issue 17: session-level studies)
from customer_r1.cli.sim_study import report as _report  # noqa: E402

app.command("compare")(_compare)
app.command("report")(_report)
