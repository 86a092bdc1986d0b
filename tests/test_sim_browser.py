"""The browser backend end to end: headless Chromium through ``ShopEnv`` and ``sim run``.

On our shop the world's own shopper gives byte-identical traces through the browser and
in process for the same seeds (so the browser adds nothing but real clicks), with every
page's simplifier names checked against the recorder's. Problems of a page (an element
gone, covered or disabled, a page that does not load in time) land in
``last_action_error``; screenshots land in the trace and in the report's example
sessions; a crashed page or browser is restarted and its sessions rerun from their seeds,
with the same result; per-session time and token budgets end sessions by name.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from killkit import invoke
from sitekit import SiteServer, require_chromium

from customer_r1.actions import Action
from customer_r1.sim.browser import Browser, BrowserConfig, BrowserEnv, BrowserShop, allowlist_for
from customer_r1.sim.env import EnvConfig, ShopEnv
from customer_r1.sim.simulate import simulate
from customer_r1.world import WorldConfig, export_world, generate_world

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    require_chromium()
    d = tmp_path_factory.mktemp("bworld")
    export_world(generate_world(WorldConfig(users=6, sessions_per_user=2, seed=7, population=30)), d)
    return d


@pytest.fixture(scope="module")
def world(world_dir):
    from customer_r1.world.load import load_world

    return load_world(world_dir)


@pytest.fixture(scope="module")
def site():
    server = SiteServer().start()
    yield server
    server.stop()


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_the_worlds_shopper_gives_the_same_sessions_through_the_browser(world_dir, tmp_path):
    common = dict(world=world_dir, policy="world", max_users=4, sessions_per_user=2, seed=3, progress=False)
    local = simulate(out=tmp_path / "inprocess", concurrency=1, **common)
    real = simulate(out=tmp_path / "browser", concurrency=3, backend="browser", **common)
    a = (tmp_path / "inprocess" / "sessions.jsonl").read_text()
    assert a == (tmp_path / "browser" / "sessions.jsonl").read_text()  # byte for byte
    assert real["counts"] == local["counts"] and real["counts"]["sessions"] == 8
    assert set(real["counts"]["end_reasons"]) <= {"purchase", "terminate", "max_steps"}
    b = real["browser"]
    assert b["pages"] >= real["counts"]["steps"] and b["name_checks"] == b["pages"]
    assert b["name_mismatches"] == 0 and b["fence_violations"] == 0 and b["crashes"] == 0
    assert b["settings"]["chromium"] and b["settings"]["allowlist"].startswith("127.0.0.1:")
    assert real["backend"] == "browser" and "browser" not in local


def same(a, b) -> bool:
    """Observations equal: the shop's state compared as the JSON it travels in, without
    ``ended`` (a terminate is the shopper leaving: the HTTP and browser shops, like a real
    site, never hear of it, so their last state does not say it)."""
    from dataclasses import replace

    def norm(o):
        extra = json.loads(json.dumps(o.extra))
        extra["state"].pop("ended", None)
        return replace(o, extra=extra)

    return norm(a) == norm(b)


def test_browser_env_observes_what_the_shop_renders(world):
    """``BrowserEnv`` is ``ShopEnv`` over the browser: the same observation as in process,
    invalid actions refused with the same words, and real typing and clicking."""
    from customer_r1.sim.site import create_app, serve_in_thread

    user = next(iter(world.users))
    with serve_in_thread(create_app(world)) as url, Browser(allowlist_for(url, None)) as b:
        env = BrowserEnv(world, browser=b, shop_url=url)
        local = ShopEnv(world)
        assert same(env.reset(user, 5), local.reset(user, 5))
        for action in (Action.click("no.such.element"), Action.input("nav_bar.search_button", "x"),
                       Action.input("nav_bar.search_input", "kettle"), Action.click("nav_bar.search_input"),
                       Action.click("nav_bar.search_button"), Action.click("nav_bar.cart"),
                       Action.terminate()):
            got, want = env.step(action), local.step(action)
            assert same(got.observation, want.observation), action
            assert {k: v for k, v in got.info.items() if k != "errors"} == \
                {k: v for k, v in want.info.items() if k != "errors"}
        assert got.done and got.info["end_reason"] == "terminate"
        env.close()


def test_problems_of_the_page_go_into_last_action_error(site):
    """An element covered by another, a disabled one, one removed by the page after it was
    seen, a link whose page does not load within the step timeout: reported, never raised."""
    require_chromium()
    with Browser(allowlist_for(None, site.origin + "/")) as b:
        env = ShopEnv(None, EnvConfig(max_steps=20, max_consecutive_errors=20),  # type: ignore[arg-type]
                      backend=BrowserShop(b, start_url=f"{site.origin}/simplify/errors.html",
                                          config=BrowserConfig(step_timeout_s=1.5)))
        env.reset("u", 0)
        res = env.step(Action.click("covered_button"))
        assert res.info["error_kind"] == "not_clickable" and "covered by <div#overlay>" in \
            res.observation.last_action_error
        res = env.step(Action.click("sold_out"))
        assert res.info["error_kind"] == "not_clickable" and "disabled" in res.observation.last_action_error
        res = env.step(Action.click("hide_the_banner_soon"))
        assert res.info["error_kind"] == "" and "flash_sale" in env.page_view.elements
        time.sleep(1.8)  # the page removes the banner 1.5 s after the click
        res = env.step(Action.click("flash_sale"))
        assert res.info["error_kind"] == "element_gone" and "no longer on the page" in \
            res.observation.last_action_error
        t0 = time.monotonic()
        res = env.step(Action.click("slow_page"))  # the server answers after 4 s
        assert res.info["error_kind"] == "timeout" and "did not settle within 1.5 s" in \
            res.observation.last_action_error
        assert time.monotonic() - t0 < 4
        assert not res.done and res.info["errors"] == {"not_clickable": 2, "element_gone": 1, "timeout": 1}
        env.close()


def test_screenshots_go_into_the_trace_and_the_reports_examples(world_dir, tmp_path):
    run = tmp_path / "run"
    m = simulate(world=world_dir, out=run, policy="world", max_users=2, sessions_per_user=1, seed=1,
                 backend="browser", screenshots=True, progress=False)
    rows = _lines(run / "sessions.jsonl")
    for r in rows:
        shots = [run / e["screenshot"] for e in r["steps"]]
        assert len(shots) == len(r["steps"]) and r["final_screenshot"]
        for f in [*shots, run / r["final_screenshot"]]:
            assert f.read_bytes()[:8] == PNG
    assert m["browser"]["settings"]["screenshots"] is True
    from customer_r1.sim.report import write_sim_report

    page = write_sim_report([run], tmp_path / "report", n_boot=20, examples=1)
    html = page.read_text()
    assert "shots/example1_step1.png" in html and (page.parent / "shots" / "example1_step1.png").is_file()


def test_a_crashed_page_or_browser_is_restarted_and_the_session_rerun(world, world_dir, tmp_path):
    """The page of one session crashes, later the whole browser does: the run goes on,
    reruns those sessions from their seeds, and ends with the same sessions as in process."""
    from customer_r1.sim.policies import WorldPolicy
    from customer_r1.sim.runner import Runner, RunSpec
    from customer_r1.sim.simulate import _users
    from customer_r1.sim.site import create_app, serve_in_thread

    people = dict(list(_users(world, None, None).items())[:3])
    envs: list[ShopEnv] = []

    class Crashing(WorldPolicy):
        calls = 0

        def act_batch(self, requests):
            self.calls += 1
            if self.calls == 3:
                envs[0].backend.crash_page()  # type: ignore[attr-defined]
            if self.calls == 12:
                chromium.call(chromium.crash(), timeout=30)
            return super().act_batch(requests)

    def spec(backend: str) -> RunSpec:
        return RunSpec(world=str(world_dir), world_config={}, policy={"kind": "world"}, variant=None,
                       variant_name="control", seed=9, users=list(people), sessions_per_user=2,
                       max_steps=world.config.max_steps, max_consecutive_errors=5, split="test",
                       backend=backend)

    Runner(world, WorldPolicy(world), spec("inprocess"), tmp_path / "local", users=people,
           env_factory=lambda: ShopEnv(world), concurrency=3, progress=False).run()
    with serve_in_thread(create_app(world)) as url, Browser(allowlist_for(url, None)) as chromium:
        def factory() -> ShopEnv:
            envs.append(ShopEnv(world, backend=BrowserShop(chromium, shop_url=url)))
            return envs[-1]

        m = Runner(world, Crashing(world), spec("browser"), tmp_path / "real", users=people,
                   env_factory=factory, concurrency=3, progress=False).run()
    b = m["browser"]
    assert b["crashes"] >= 2 and b["reruns"] == b["crashes"] and b["browser_restarts"] == 1, b
    assert b["sessions_lost_to_crashes"] == 0
    local = (tmp_path / "local" / "sessions.jsonl").read_text()
    assert local == (tmp_path / "real" / "sessions.jsonl").read_text()


def test_time_and_token_budgets_end_sessions_by_name(world):
    user = next(iter(world.users))
    env = ShopEnv(world, EnvConfig(max_steps=40, max_tokens=1))
    env.reset(user, 1)
    res = env.step(Action.click("nav_bar.cart"))
    assert res.done and res.info["end_reason"] == "token_budget"
    env = ShopEnv(world, EnvConfig(max_steps=40, max_seconds=0.05))
    env.reset(user, 1)
    time.sleep(0.1)
    res = env.step(Action.click("no.such.thing"))  # an invalid action counts too
    assert res.done and res.info["end_reason"] == "time_budget"
    assert res.info["error_kind"] == "unknown_element"


def test_the_command_line(world_dir, tmp_path, monkeypatch):
    out = tmp_path / "cli"
    code, _, err = invoke(["sim", "run", "--world", str(world_dir), "--policy", "world", "--max-users", "2",
                           "--backend", "browser", "--time-budget", "60", "--out", str(out), "--no-progress"])
    assert code == 0, err
    assert "browser: " in err and "0 mismatched" in err
    m = json.loads((out / "manifest.json").read_text())
    assert m["limits"]["max_seconds"] == 60 and m["browser"]["fence_violations"] == 0
    refused = [
        (["--policy", "world", "--backend", "browser", "--start-url", "http://127.0.0.1:9/"], "--policy"),
        (["--policy", "world", "--start-url", "http://127.0.0.1:9/"], "--start-url needs --backend browser"),
        (["--policy", "world", "--backend", "browser", "--allow", "exa mple.com"], "not a host"),
        (["--policy", "world", "--screenshots"], "--screenshots needs --backend browser"),
        (["--policy", "baseline", "--backend", "browser", "--start-url", "ftp://x/"],
         "not an http(s) address"),
        (["--policy", "baseline", "--backend", "browser", "--start-url", "http://127.0.0.1:9/"],
         "http://127.0.0.1:9/ does not answer"),
    ]
    for extra, words in refused:
        code, _, err = invoke(["sim", "run", "--world", str(world_dir), "--out", str(tmp_path / "x"), *extra])
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 2 and len(lines) == 1 and words in lines[0], (extra, err)
    monkeypatch.setenv("CUSTOMER_R1_CHROMIUM", str(tmp_path / "no-chromium"))
    code, _, err = invoke(["sim", "run", "--world", str(world_dir), "--policy", "world", "--backend",
                           "browser", "--out", str(tmp_path / "y"), "--no-progress"])
    assert code == 2 and "no-chromium is not an executable" in err and "apt-get install -y chromium" in err


def test_a_checkpoint_shops_another_site_with_new_personas(world, world_dir, site, tmp_path):
    """Another site: no world shop there, so a model policy (here a tiny checkpoint) with
    personas from a file; its actions name the simplifier's elements, nothing leaves the
    allowlist, and the run is written in OPeRA's layout like any other."""
    from tiny_lm import one_thread, save_tiny

    from customer_r1.data.opera import load_opera

    ckpt = save_tiny(tmp_path / "m", seed=1)
    (ckpt / "build.json").write_text(json.dumps({"config": {
        "prompt_style": "compact", "token_budget": 3000, "max_history_steps": 2, "persona_mode": "real"}}))
    personas = tmp_path / "personas.jsonl"
    surveys = [u.survey for u in world.users.values()][:2]
    personas.write_text("".join(json.dumps({"user_id": f"staging{i}", "survey": s}) + "\n"
                                for i, s in enumerate(surveys)))
    with one_thread():
        m = simulate(world=world_dir, out=tmp_path / "run", model=str(ckpt), persona_file=personas,
                     sessions_per_user=1, max_steps=4, seed=2, concurrency=2, device="cpu",
                     backend="browser", start_url=f"{site.origin}/simplify/retailer.html", progress=False)
    assert m["counts"]["sessions"] == 2 and m["browser"]["fence_violations"] == 0
    assert m["browser"]["settings"]["site"].endswith("/simplify/retailer.html")
    rows = _lines(tmp_path / "run" / "sessions.jsonl")
    assert {r["user_id"] for r in rows} == {"staging0", "staging1"}
    for r in rows:
        for e in r["steps"]:
            assert e["observation"]["url"].startswith(site.origin)
            if e["action"] and e["action"].get("name") and not e["error_kind"]:
                assert f'name="{e["action"]["name"]}"' in e["observation"]["html"]
    data = load_opera(tmp_path / "run")
    assert {s.user_id for s in data.sessions} <= {"staging0", "staging1"}
