"""The body of ``customer-r1 sim run`` as functions: options -> world, personas, policy,
environments -> a finished run. ``sim run``, ``sim ab`` (:func:`customer_r1.sim.ab.run_ab`),
the demo and the benchmarks call :func:`simulate`; it lives in the library so that none of
them imports the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from customer_r1.errors import BadInput, BadOption

_err = Console(stderr=True)


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


#: The policies ``--policy`` names (the others come as ``--model`` or ``--endpoint``).
POLICIES = ("world", "baseline", "random")


def check_policy_args(policy: str | None, model: str | None, endpoint: str | None,
                      model_name: str | None, build_config: Path | None) -> None:
    """One policy, named consistently, its checkpoint or endpoint there: answered before
    any run starts (``sim run`` and ``sim ab`` take the same policy options)."""
    if len([x for x in (policy, model, endpoint) if x]) != 1:
        raise BadOption("give exactly one of --policy world|baseline|random, --model CKPT or --endpoint URL",
                        "--policy / --model / --endpoint")
    if policy is not None and policy not in POLICIES:
        raise BadOption(f"unknown policy {policy!r}", "--policy",
                        f"one of {', '.join(POLICIES)}, or --model / --endpoint")
    if endpoint is not None and not model_name:
        raise BadOption("--endpoint needs --model-name", "--model-name", "the name the server serves")
    if build_config is not None and policy is not None:
        raise BadOption("--build-config is for --model or --endpoint", "--build-config",
                        "the world's shopper and the baseline build no prompts")
    if model is not None:
        from customer_r1.models import resolve_model

        resolve_model(model, "--model")
    if endpoint is not None:
        from customer_r1.evaluation.backends.base import probe_endpoint

        probe_endpoint(endpoint, "--endpoint")


def _check_browser_options(backend: str, *, start_url: str | None, shop_url: str | None,
                           allow: list[str] | None, screenshots: bool, policy: str | None) -> None:
    """The browser backend's options: only with it, one site at a time, hosts that parse,
    and the world's shopper (which reads our shop's state) only on our shop."""
    from urllib.parse import urlsplit

    from customer_r1.sim.fence import parse_host

    if backend != "browser":
        opts = (("--start-url", start_url), ("--allow", allow), ("--screenshots", screenshots))
        given = [o for o, v in opts if v]
        if given:
            raise BadOption(f"{given[0]} needs --backend browser", given[0])
        return
    for a in allow or []:
        parse_host(a)
    if start_url is None:
        return
    if shop_url is not None:
        raise BadOption("give --shop-url (our shop) or --start-url (another site), not both", "--start-url")
    u = urlsplit(start_url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise BadOption(f"not an http(s) address: {start_url!r}", "--start-url", "e.g. https://staging.example.com/")
    if policy == "world":
        raise BadOption("the world's shopper reads our shop's state, which another site does not have",
                        "--policy", "simulate another site with --model CKPT or --endpoint URL")


def _answers(url: str) -> None:
    """The start page's server answers (one line now rather than every session failing)."""
    import httpx

    from customer_r1.errors import EndpointUnreachable

    try:
        httpx.get(url, timeout=10, follow_redirects=False, trust_env=False)
    except httpx.HTTPError as exc:
        raise EndpointUnreachable(f"{url} does not answer: {exc}", "--start-url",
                                  "start the site first, or check the address") from exc


def simulate(*, world: Path, out: Path, policy: str | None = None, model: str | None = None,
             endpoint: str | None = None, model_name: str | None = None,
             build_config: Path | None = None, users: list[str] | None = None,
             persona_file: Path | None = None, max_users: int | None = None, sessions_per_user: int = 1,
             variant: list[str] | None = None, seed: int = 0, concurrency: int = 1,
             shard: tuple[int, int] = (0, 1), backend: str = "inprocess", shop_url: str | None = None,
             temperature: float = 1.0, rationale: str = "sample", rationale_temperature: float = 1.0,
             max_steps: int | None = None, max_errors: int = 5, split: str = "test",
             device: str = "auto", progress: bool = True, console: Any = None,
             start_url: str | None = None, allow: list[str] | None = None, screenshots: bool = False,
             step_timeout: float = 10.0, time_budget: float | None = None,
             token_budget: int | None = None, page_kinds: Path | None = None,
             words: Path | None = None, pipeline: bool | None = None) -> dict[str, Any]:
    """The body of ``sim run`` as a function (the demo and ``sim ab`` call it).
    ``pipeline=False`` keeps an endpoint's sessions in lockstep rounds (the runner's code
    path before pipelining, for benchmarks)."""
    from contextlib import ExitStack

    from customer_r1.sim.env import EnvConfig, ShopEnv
    from customer_r1.sim.runner import Runner, RunSpec
    from customer_r1.world.load import load_world

    w = load_world(world)
    v = _variant(variant)
    if page_kinds is not None and (backend != "browser" or not start_url):
        raise BadOption("--page-kinds is for another site", "--page-kinds",
                        "use it with --backend browser --start-url URL (our shop names its own pages)")
    if words is not None and policy != "random":
        raise BadOption("--words is for --policy random", "--words")
    kinds = None
    if page_kinds is not None:
        from customer_r1.sim.pagekind import PageKinds

        kinds = PageKinds.load(page_kinds)
    word_list = _words(words) if words is not None else None
    people = _users(w, users, persona_file)
    if max_users is not None:
        people = dict(list(people.items())[:max_users])
    pol = make_policy(w, people, world_dir=world, policy=policy, model=model, endpoint=endpoint,
                      model_name=model_name,
                      build_config=build_config, temperature=temperature, rationale=rationale,
                      rationale_temperature=rationale_temperature, device=device, concurrency=concurrency,
                      words=word_list)
    _check_browser_options(backend, start_url=start_url, shop_url=shop_url, allow=allow,
                           screenshots=screenshots, policy=policy)
    env_cfg = EnvConfig(max_steps=max_steps or w.config.max_steps, max_consecutive_errors=max_errors,
                        max_seconds=time_budget, max_tokens=token_budget)
    budgets = {k: v for k, v in (("max_seconds", time_budget), ("max_tokens", token_budget)) if v is not None}
    browser_spec = None
    if backend == "browser":
        browser_spec = {"site": start_url or "our shop", "allow": list(allow or []),
                        "screenshots": screenshots, "step_timeout_s": step_timeout}
        if kinds is not None:  # the user's URL -> kind rules (they change the trace's page kinds)
            browser_spec["page_kinds"] = kinds.describe()
    spec = RunSpec(world=str(world), world_config=json.loads(json.dumps(vars_of(w.config))),
                   policy=pol.describe(), variant=v.to_dict() if v is not None else None,
                   variant_name=v.name if v is not None else "control", seed=seed, users=list(people),
                   sessions_per_user=sessions_per_user, max_steps=env_cfg.max_steps,
                   max_consecutive_errors=env_cfg.max_consecutive_errors, split=split, backend=backend,
                   shard=list(shard), browser=browser_spec, budgets=budgets or None)
    with ExitStack() as stack:
        stack.callback(getattr(pol, "close", lambda: None))
        from customer_r1.sim.site import create_app, serve_in_thread

        if backend == "http":
            from customer_r1.sim.http_env import HttpShop

            url = shop_url or stack.enter_context(serve_in_thread(create_app(w)))

            def factory() -> ShopEnv:
                return ShopEnv(w, env_cfg, backend=HttpShop(url))
        elif backend == "browser":
            from customer_r1.sim.browser import Browser, BrowserConfig, BrowserShop, allowlist_for

            if start_url:
                _answers(start_url)
            shop = None if start_url else (shop_url or stack.enter_context(serve_in_thread(create_app(w))))
            fence = allowlist_for(shop, start_url, allow or [])
            chromium = stack.enter_context(Browser(fence))
            assert browser_spec is not None
            browser_spec.update(allowlist=str(fence), chromium=chromium.version)
            spec.browser = browser_spec
            bcfg = BrowserConfig(step_timeout_s=step_timeout, screenshots=screenshots, page_kinds=kinds)

            def factory() -> ShopEnv:
                return ShopEnv(w, env_cfg, backend=BrowserShop(chromium, shop_url=shop, start_url=start_url,
                                                               config=bcfg))
        else:
            def factory() -> ShopEnv:
                return ShopEnv(w, env_cfg)
        runner = Runner(w, pol, spec, out, users=people, env_factory=factory, variant=v,
                        concurrency=concurrency, progress=progress, console=console or _err,
                        pipeline=pipeline)
        return runner.run()


def _words(path: Path) -> list[str]:
    """The random shopper's words: one per line (blank lines and ``#`` comments skipped)."""
    if not path.is_file():
        raise BadOption(f"no words file {path}", "--words", "a text file with one word or phrase per line")
    out = [x.strip() for x in path.read_text(encoding="utf-8").splitlines()
           if x.strip() and not x.lstrip().startswith("#")]
    if not out:
        raise BadInput("the words file holds no words", str(path), "one word or phrase per line")
    return out


def vars_of(cfg: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)


def make_policy(world: Any, users: dict[str, Any], *, world_dir: Path, policy: str | None, model: str | None,
                endpoint: str | None, model_name: str | None, build_config: Path | None,
                temperature: float, rationale: str, rationale_temperature: float, device: str,
                concurrency: int, words: list[str] | None = None) -> Any:
    """The policy the flags describe."""
    from customer_r1.sim import policies

    if policy == "world":
        return policies.WorldPolicy(world)
    if policy == "random":
        return policies.RandomPolicy(words or policies.WORDS)
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
