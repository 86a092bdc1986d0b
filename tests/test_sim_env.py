"""The simulation environment: errors in the observation, limits, the shop over HTTP with the
same observations as in process, concurrent visitors, and prompts byte-identical to training."""

from __future__ import annotations

import random
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from customer_r1.actions import Action
from customer_r1.data.examples import BuildConfig, ExampleBuilder
from customer_r1.domain import Step
from customer_r1.sim.env import EnvConfig, ShopEnv
from customer_r1.sim.http_env import HttpShop
from customer_r1.sim.prompts import PromptBuilder
from customer_r1.sim.site import create_app, serve_in_thread
from customer_r1.world.generate import WorldConfig, generate_world, world_base


@pytest.fixture(scope="module")
def world():
    return world_base(WorldConfig(users=4, sessions_per_user=2, seed=3), population=False)


@pytest.fixture(scope="module")
def shop_url(world):
    with serve_in_thread(create_app(world)) as url:
        yield url


def _user(world) -> str:
    return next(iter(world.users))


def random_run(env: ShopEnv, user: str, seed: int, max_actions: int = 60, variant=None) -> list[tuple]:
    """A random shopper that also sends every kind of invalid action; the full trace."""
    rng = random.Random(seed)
    obs = env.reset(user, seed, variant)
    trace: list[tuple] = [(obs.html, obs.url, obs.page_kind, obs.last_action_error)]
    for _ in range(max_actions):
        names = list(env.page_view.elements)
        r = rng.random()
        if r < 0.05:
            a = Action.click("no.such.element")
        elif r < 0.08:
            a = '{"type": "click"'  # malformed JSON
        elif r < 0.10:
            a = {"type": "input", "name": names[0] if names else "x"}  # missing text
        elif r < 0.12 or not names:
            a = Action.terminate()
        else:
            nm = rng.choice(names)
            if env.page_view.elements[nm] is None:
                a = Action.input(nm, rng.choice(["coffee beans", "desk lamp", "zzz"]))
            else:
                a = Action.click(nm) if rng.random() < 0.9 else Action.input(nm, "x")
        res = env.step(a)
        o = res.observation
        trace.append((o.html, o.url, o.page_kind, o.last_action_error, res.done,
                      res.info.get("end_reason"), res.info.get("click_type"), res.info.get("products"),
                      res.info.get("element_meta"), res.info.get("error_kind"), dict(res.info["errors"])))
        if res.done:
            break
    return trace


def test_invalid_actions_are_reported_not_raised_and_change_nothing(world):
    env = ShopEnv(world, EnvConfig(max_consecutive_errors=10))
    obs = env.reset(_user(world), seed=1)
    assert obs.page_kind == "home" and obs.last_action_error == "" and "nav_bar.search_input" in obs.html
    cases = [
        (Action.click("no.such.element"), "unknown_element", "no element named"),
        (Action.input("nav_bar.search_button", "x"), "not_an_input", "not a text field"),
        ("{not json", "malformed", "malformed action"),
        ({"type": "fly"}, "malformed", "unknown action type"),
        (None, "malformed", "malformed action"),
    ]
    for i, (action, kind, words) in enumerate(cases, 1):
        res = env.step(action)
        assert not res.done
        assert res.info["error_kind"] == kind and words in res.observation.last_action_error
        assert res.observation.html == obs.html  # the shop did not move
        assert res.info["errors"][kind] >= 1 and sum(res.info["errors"].values()) == i
    ok = env.step(Action.input("nav_bar.search_input", "coffee beans"))
    assert ok.info["error_kind"] == "" and ok.observation.last_action_error == ""
    assert "coffee beans" in ok.observation.html  # typed text and its suggestions
    end = env.step(Action.terminate())
    assert end.done and end.info["end_reason"] == "terminate"
    after = env.step(Action.click("nav_bar.home"))
    assert after.done and after.info["error_kind"] == "after_end"
    assert "ended" in after.observation.last_action_error


def test_limits_end_the_session_and_say_which(world):
    env = ShopEnv(world, EnvConfig(max_steps=3, max_consecutive_errors=2))
    env.reset(_user(world), seed=2)
    assert not env.step(Action.click("nav_bar.home")).done
    assert not env.step(Action.click("nav_bar.cart")).done
    res = env.step(Action.click("nav_bar.home"))
    assert res.done and res.info["end_reason"] == "max_steps"
    env.reset(_user(world), seed=2)
    assert not env.step(Action.click("nope")).done
    res = env.step(Action.click("nope"))
    assert res.done and res.info["end_reason"] == "max_errors"
    assert res.info["errors"] == {"unknown_element": 2}
    # an error streak is broken by a valid action
    env = ShopEnv(world, EnvConfig(max_steps=10, max_consecutive_errors=2))
    env.reset(_user(world), seed=2)
    for a in ("nope", "nav_bar.home", "nope", "nav_bar.home", "nope"):
        assert not env.step(Action.click(a)).done


def test_a_purchase_ends_the_session_on_an_order_page(world):
    env = ShopEnv(world)
    obs = env.reset(_user(world), seed=4)
    deal = re.search(r'name="(deals\.[^"]+|[^"]*)"', obs.html)
    assert deal is not None
    pv = env.page_view
    product = next(n for n, t in pv.elements.items() if t == "product_link")
    env.step(Action.click(product))
    res = env.step(Action.click("buybox.buy_now"))
    assert res.done and res.info["end_reason"] == "purchase" and res.info["click_type"] == "purchase"
    assert res.observation.page_kind == "order" and "order has been placed" in res.observation.html
    assert res.info["products"] and res.info["products"][0]["quantity"] == "1"


def test_http_shop_gives_identical_observations_and_outcomes(world, shop_url):
    local = ShopEnv(world)
    remote = ShopEnv(world, backend=HttpShop(shop_url))
    ends = set()
    for seed in range(25):
        a = random_run(local, _user(world), seed)
        b = random_run(remote, _user(world), seed)
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        assert a == b, f"seed {seed}: first difference at step {first}"
        ends.add(a[-1][5])
    assert {"purchase", "terminate"} <= ends  # both endings were exercised
    remote.close()


@pytest.mark.parametrize("names", [["sort_by_price", "results_halved"], ["reviews_hidden", "no_deals"],
                                   ["price_up_10", "no_brand_filters", "add_to_cart_below"]])
def test_variants_apply_alike_in_process_and_over_http(world, shop_url, names):
    from customer_r1.world.variants import resolve_variants

    v = resolve_variants(names)
    local, remote = ShopEnv(world), ShopEnv(world, backend=HttpShop(shop_url))
    control = [random_run(local, _user(world), s) for s in range(6)]
    a = [random_run(local, _user(world), s, variant=v) for s in range(6)]
    b = [random_run(remote, _user(world), s, variant=v) for s in range(6)]
    assert a == b and a != control
    remote.close()


def test_every_named_element_is_a_real_link_or_form(world, shop_url):
    import httpx

    env = ShopEnv(world, backend=HttpShop(shop_url))
    seen_kinds = set()
    for seed in range(8):
        rng = random.Random(seed)
        env.reset(_user(world), seed)
        for _ in range(25):
            html = env.backend.html
            view = env.page_view
            seen_kinds.add(view.kind)
            served = re.findall(r'<(a|button|input|option)\b[^>]*\sname="([^"]*)"', html)
            names = {n for _, n in served}
            assert names == set(view.elements)  # the served page carries exactly the renderer's names
            for tag, name in served:
                pattern = r"<" + tag + r'\b[^>]*\sname="' + re.escape(name) + r'"[^>]*>'
                tag_html = re.search(pattern, html).group(0)
                if tag == "a":
                    assert 'href="/go/' in tag_html
                elif tag == "button":
                    assert 'type="submit"' in tag_html and 'form="' in tag_html
                elif tag == "input":
                    assert 'form="search"' in tag_html
                else:
                    assert 'value="' in tag_html
            cands = [n for n, t in view.elements.items() if t is not None and t != "purchase"]
            if not cands:
                break
            res = env.step(Action.click(rng.choice(cands)))
            if res.done:
                break
    assert {"home", "search", "product"} <= seen_kinds
    # a browser-style visit without the simulator's start: a cookie and a home page
    with httpx.Client(base_url=shop_url, follow_redirects=True) as c:
        r = c.get("/")
        assert r.status_code == 200 and "shop_sid" in c.cookies and 'action="/act"' in r.text
        r = c.get("/s", params={"k": "coffee beans"})  # typing an address navigates
        assert r.status_code == 200 and "coffee" in r.text.lower()


def test_concurrent_visitors_do_not_see_each_others_state(world, shop_url):
    seeds = list(range(100, 124))
    expected = {s: random_run(ShopEnv(world), _user(world), s) for s in seeds}

    def remote(seed: int) -> list[tuple]:
        env = ShopEnv(world, backend=HttpShop(shop_url))
        try:
            return random_run(env, _user(world), seed)
        finally:
            env.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        got = dict(zip(seeds, pool.map(remote, seeds), strict=True))
    assert got == expected


def test_http_client_never_leaves_the_shop(world, shop_url):
    shop = HttpShop(shop_url)
    with pytest.raises(ValueError, match="not on"):
        shop._url("http://example.com/x")
    with pytest.raises(ValueError, match="not on"):
        shop._url("//evil.example/x")
    shop.close()


_ALL = ("furniture", "history_diff", "trim_current")


@pytest.mark.parametrize("style,budget,history,compress", [
    ("compact", 2200, 3, ()), ("chat", 3400, 6, ()), ("full", 3400, 8, ()),
    # Compressed prompts: furniture references, page changes and trimmed current pages,
    # with the whole session (steps lose their reasons, then go, to fit).
    ("compact", 2600, None, _ALL), ("chat", 3400, 6, _ALL), ("full", 3400, 8, ("furniture",)),
    ("full", 4000, None, ("history_diff", "trim_current")),
    # Handles: the current page's names as numbers (the target too).
    ("compact", 2600, None, (*_ALL, "handles")), ("full", 3800, 8, ("handles",)),
])
def test_replayed_sessions_get_the_prompts_data_build_writes(tiny_tokenizer, style, budget, history,
                                                             compress):
    """Every prompt of recorded world sessions, replayed through the environment, is
    byte-identical to the built example of that step (budget drops and cuts included)."""
    from customer_r1.data.tokens import TokenCounter

    world = generate_world(WorldConfig(users=3, sessions_per_user=3, seed=5, population=50))
    data = world.to_shopping_data()
    cfg = BuildConfig(tokenizer="tiny", token_budget=budget, max_history_steps=history, prompt_style=style,
                      compress=list(compress), exact_check="all", progress=False)
    counter = TokenCounter(tiny_tokenizer)
    builder = ExampleBuilder(data, cfg, counter)
    rows = {r["example_id"]: r for r in builder.iter_rows(data.sessions)}
    assert builder.stats.exact_mismatches == 0
    assert any(r["history_pages_dropped"] for r in rows.values())  # the budget bit
    if compress:
        assert all(r["prompt_tokens"] <= budget for r in rows.values())
        text = "".join(m["content"] for r in rows.values() for m in r["prompt"])
        marks = {"furniture": "(same as step ", "history_diff": " unchanged)", "trim_current": None,
                 "handles": 'name="0"'}
        if "handles" in compress:  # a current page with handles never repeats an earlier line
            marks["furniture"] = None
        assert all(marks[c] in text for c in compress if marks[c])  # each strategy bit
    prompts = PromptBuilder(cfg, data.users, counter)
    env = ShopEnv(world)
    checked = 0
    for ws, s in zip(world.sessions, data.sessions, strict=True):
        obs = env.reset(s.user_id, seed=0, deals=ws.steps[0].state.deals)
        history: list[Step] = []
        for t, (wst, st) in enumerate(zip(ws.steps, s.steps, strict=True)):
            assert obs.html == st.observation.html and obs.url == st.observation.url
            msgs = prompts.messages(s.session_id, s.user_id, history, obs)
            assert msgs == rows[f"{s.session_id}#{t}"]["prompt"]
            checked += 1
            history.append(Step(st.action_id, st.timestamp, st.kind, obs, st.action, st.click_type,
                                st.rationale))
            res = env.step(wst.action)
            obs = res.observation
        ending = "purchase" if ws.outcome == "purchase" else "terminate"
        assert res.done and res.info["end_reason"] == ending
    assert checked == len(rows)


def test_state_to_dict_is_asdict_and_round_trips():
    """The hand-written state_to_dict (it runs every step) is dataclasses.asdict, exactly."""
    import dataclasses

    from customer_r1.sim.session import state_from_dict, state_to_dict
    from customer_r1.world.shop import CartItem, ShopState

    lines = (CartItem("p1", "red", 2), CartItem("p2", "", 1))
    states = [ShopState(), ShopState(page="cart", query="mug", cart=lines, saved=(CartItem("p3", "xl", 1),),
                                     deals=("p4", "p5"), added=True, ended="terminate", page_no=3)]
    for st in states:
        d = state_to_dict(st)
        assert d == dataclasses.asdict(st) and type(d["cart"]) is tuple and type(d["deals"]) is tuple
        assert state_from_dict(d) == st
