from __future__ import annotations

from customer_r1.actions import Action
from customer_r1.evaluation.baselines import PageKindBaseline, page_kind


def test_page_kind_from_amazon_urls():
    assert page_kind("https://www.amazon.com/-/zh_TW/Zojirushi/dp/B00WO6EK54?URL_MASKED") == "product"
    assert page_kind("https://www.amazon.com/s?URL_MASKED") == "search"
    assert page_kind("https://www.amazon.com/product-reviews/B01?URL_MASKED") == "reviews"
    assert page_kind("https://www.amazon.com/cart?URL_MASKED") == "cart"
    assert page_kind("https://www.amazon.com/") == "home"
    assert page_kind(None) == "home" and page_kind("https://x.com/gp/help") == "other"


def test_most_frequent_action_available_on_the_page():
    add, buy = Action.click("buybox.add_to_cart"), Action.click("buybox.buy_now")
    rows = [{"url": "https://a.com/x/dp/1", "action_json": add.to_json()}] * 3 + [
        {"url": "https://a.com/x/dp/2", "action_json": buy.to_json()}
    ] * 2
    b = PageKindBaseline().fit(rows)
    page = {"url": "https://a.com/y/dp/9", "page_names": ["buybox.add_to_cart", "buybox.buy_now"]}
    assert b.predict(page) == add
    assert b.predict({**page, "page_names": ["buybox.buy_now"]}) == buy  # the top one is not on the page
    assert b.predict({**page, "page_names": []}) == Action.terminate()
    assert b.predict({"url": "https://a.com/cart", "page_names": ["x"]}) == Action.terminate()
