"""Nothing irreversible, nothing personal: the browser backend on a site that is not ours.

A fixture store on loopback (``tests/fixtures/sites/shop/``: a product page, a checkout
with shipping and card fields, a sign-in form, a newsletter box, and an "express" button
whose script posts an order by itself) logs every request it gets. Clicks that would
order, pay, sign in or send personal data end the session as a purchase intent and are
never sent (the server's log proves it); typing into password, card, email, phone or
address fields is refused in ``last_action_error``; harmless posts (add to cart) go
through. On our own simulated shop purchases happen as before (``test_sim_browser``).
"""

from __future__ import annotations

import json

import pytest
from sitekit import SiteServer, require_chromium

from customer_r1.actions import Action
from customer_r1.sim.browser import Browser, BrowserShop, allowlist_for
from customer_r1.sim.checkout import purchase_intent, sensitive_field, unsafe_request
from customer_r1.sim.env import EnvConfig, ShopEnv


@pytest.fixture(scope="module")
def store():
    server = SiteServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(store):
    require_chromium()
    with Browser(allowlist_for(None, store.origin + "/")) as b:
        yield b


def visit(browser, store, page: str) -> ShopEnv:
    env = ShopEnv(None, EnvConfig(max_steps=20, max_consecutive_errors=20),  # type: ignore[arg-type]
                  backend=BrowserShop(browser, start_url=f"{store.origin}/shop/{page}"))
    env.reset("u", 0)
    return env


def posts(store) -> list[str]:
    return store.paths("POST")


@pytest.mark.parametrize(("page", "name", "intent"), [
    ("checkout.html", "review.place_your_order", "order"),  # by its text
    ("checkout.html", "shipping_and_payment.continue", "pay"),  # a neutral button sending card fields
    ("signin.html", "account.go", "sign_in"),  # a neutral button sending a password
    ("index.html", "main.proceed_to_checkout", "checkout"),  # a link, by its text
    ("index.html", "header.sign_in", "sign_in"),
    ("index.html", "main.newsletter.subscribe_to_news", "personal_data"),  # sends an email field
])
def test_irreversible_clicks_end_the_session_and_are_never_sent(page, name, intent, browser, store):
    env = visit(browser, store, page)
    seen = len(store.log)
    assert name in env.page_view.elements, list(env.page_view.elements)
    res = env.step(Action.click(name))
    assert res.done and res.info["end_reason"] == "purchase_intent", res.observation.last_action_error
    assert res.info["error_kind"] == "" and res.info["intent"]["intent"] == intent
    assert res.info["click_type"] == ("purchase" if intent in ("order", "pay", "checkout") else "other")
    assert store.log[seen:] == []  # not a request more: the click never happened
    env.close()


def test_a_script_that_posts_an_order_is_stopped_below_the_page(browser, store):
    """The "Continue" button's text says nothing, but its script posts to /api/orders/create:
    the request is aborted before it leaves, and the session ends as a purchase intent."""
    env = visit(browser, store, "index.html")
    res = env.step(Action.click("main.continue"))
    assert res.done and res.info["end_reason"] == "purchase_intent"
    assert "/api/orders/create" in res.info["intent"]["reason"]
    assert "/api/orders/create" not in posts(store)
    env.close()


def test_typing_personal_or_payment_data_is_refused(browser, store):
    env = visit(browser, store, "checkout.html")
    fields = {
        "shipping.fullname": "name", "shipping.email": "email", "shipping.phone": "phone",
        "shipping.addressline1": "address", "shipping.zip": "address", "card.cardnumber": "card",
        "card.exp": "card", "card.cvc": "card",
    }
    fields = {f"shipping_and_payment.{k}": v for k, v in fields.items()}
    for name, what in fields.items():
        assert name in env.page_view.elements, list(env.page_view.elements)
        res = env.step(Action.input(name, "4111 1111 1111 1111"))
        assert res.info["error_kind"] == "sensitive_field" and not res.done, name
        assert f"asks for {what} data" in res.observation.last_action_error, res.observation.last_action_error
    assert "4111" not in env.page_view.html  # nothing was typed anywhere
    ok = env.step(Action.input("shipping_and_payment.gift_message", "Happy birthday"))
    assert ok.info["error_kind"] == "" and 'value="Happy birthday"' in ok.observation.html
    env.close()
    env = visit(browser, store, "signin.html")
    res = env.step(Action.input("account.password", "hunter2"))
    assert res.info["error_kind"] == "sensitive_field" and "password" in res.observation.last_action_error
    res = env.step(Action.input("account.user", "shopper1"))
    assert res.info["error_kind"] == "sensitive_field"  # a username is an account's too
    env.close()
    assert posts(store) == [] or all(p == "/cart/add" for p in posts(store))


def test_shopping_itself_goes_on(browser, store):
    """Search, pick a quantity, add to cart: harmless, so sent as a person would."""
    env = visit(browser, store, "index.html")
    res = env.step(Action.input("header.search.q", "kettle"))
    assert res.info["error_kind"] == ""
    res = env.step(Action.click("header.search.search"))
    assert res.info["error_kind"] == "" and not res.done and store.log[-1].path == "/shop/index.html?q=kettle"
    res = env.step(Action.click("main.buy_box.qty.2"))
    assert res.info["error_kind"] == ""
    res = env.step(Action.input("main.newsletter.promo", "SPRING"))  # not personal: allowed
    assert res.info["error_kind"] == ""
    res = env.step(Action.click("main.buy_box.add_to_cart"))
    assert res.info["error_kind"] == "" and not res.done and res.info["click_type"] == "purchase"
    hit = store.log[-1]
    assert hit.method == "POST" and hit.path == "/cart/add"
    assert "sku=kettle-12" in hit.body and "qty=2" in hit.body
    env.close()


def test_a_purchase_intent_counts_as_the_sessions_purchase(browser, store, tmp_path):
    """Through the runner: recorded as a valid purchase click, ``end_reason``
    purchase_intent, outcome purchase, counted in the manifest."""
    from customer_r1.domain import User
    from customer_r1.sim.policies import BasePolicy, PolicyAction
    from customer_r1.sim.runner import Runner, RunSpec
    from customer_r1.world.generate import WorldConfig, world_base

    class Scripted(BasePolicy):
        name = "scripted"

        def act_one(self, r):
            want = "review.place_your_order"
            assert f'name="{want}"' in r.observation.html
            return PolicyAction(Action.click(want), "ready to buy")

    world = world_base(WorldConfig(users=2, sessions_per_user=2, seed=1), population=False)
    users = {u: User(u) for u in list(world.users)[:2]}
    spec = RunSpec(world="w", world_config={}, policy={"kind": "scripted"}, variant=None,
                   variant_name="control", seed=0, users=list(users), sessions_per_user=1, max_steps=5,
                   max_consecutive_errors=3, split="test", backend="browser", browser={"site": "fixture"})
    runner = Runner(world, Scripted(), spec, tmp_path / "run", users=users, progress=False,
                    env_factory=lambda: ShopEnv(world, EnvConfig(max_steps=5), backend=BrowserShop(
                        browser, start_url=f"{store.origin}/shop/checkout.html")), concurrency=2)
    seen = len(store.log)
    m = runner.run()
    assert m["counts"]["end_reasons"] == {"purchase_intent": 2} and m["counts"]["conversion"] == 1.0
    assert m["browser"]["purchase_intents"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run" / "sessions.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["outcome"] == "purchase" and r["intent"]["intent"] == "order"
        assert r["steps"][-1]["click_type"] == "purchase" and r["steps"][-1]["browser"]["intent"]
    assert [h for h in store.log[seen:] if h.method == "POST"] == []


# --------------------------------------------------------------------------- the rules alone


def f(**kw: str) -> dict[str, str]:
    """A form field as the simplifier describes it."""
    return {"type": "text", "autocomplete": "", "name": "", "id": "", "placeholder": "", "label": "", **kw}


def test_sensitive_fields_are_recognised():
    assert sensitive_field(f(type="password")) == "password"
    assert sensitive_field(f(autocomplete="cc-number")) == "card"
    assert sensitive_field(f(name="cardNumber")) == "card"
    assert sensitive_field(f(name="billing_zip")) == "address"
    assert sensitive_field(f(label="E-mail address")) == "email"
    assert sensitive_field(f(type="tel")) == "phone"
    assert sensitive_field(f(name="q", type="search")) == ""
    assert sensitive_field(f(name="field-keywords", label="Search Amazon")) == ""
    assert sensitive_field(f(autocomplete="given-name")) == "name"
    assert sensitive_field(f(name="lastName")) == "name"
    assert sensitive_field(f(name="gift_message")) == "" and sensitive_field(f(name="promo")) == ""
    assert sensitive_field(f(name="product_name")) == ""


def test_purchase_intents_and_unsafe_requests_are_recognised():
    assert purchase_intent({"label": "Place your order"})[0] == "order"
    assert purchase_intent({"label": "Buy now"})[0] == "order"
    assert purchase_intent({"label": "Proceed to checkout"})[0] == "checkout"
    assert purchase_intent({"label": "Pay now"})[0] == "pay"
    assert purchase_intent({"label": "Sign in"})[0] == "sign_in"
    assert purchase_intent({"label": "Go", "href": "https://shop.example/ap/signin?x=1"})[0] == "sign_in"
    assert purchase_intent({"label": "Next", "href": "https://shop.example/checkout/step1"})[0] == "checkout"
    assert purchase_intent({"label": "Add to cart", "submits": True,
                            "form": {"action": "/cart/add", "fields": [{"type": "hidden", "name": "sku"}]}}) \
        == ("", "")
    assert purchase_intent({"label": "Acme Kettle", "href": "https://shop.example/p/kettle"}) == ("", "")
    assert unsafe_request("POST", "https://shop.example/api/orders/create", "{}")[0] == "order"
    assert unsafe_request("POST", "https://shop.example/api/track", "cardNumber=4111")[0] == "pay"
    assert unsafe_request("GET", "https://shop.example/checkout", None) == ("", "")
    assert unsafe_request("POST", "https://shop.example/cart/add", "sku=1") == ("", "")
