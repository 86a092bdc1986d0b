"""Rendering: shop state -> simplified HTML page in OPeRA's style.

Only the attributes OPeRA's simplifier keeps appear (alt, title, type, value, role,
aria-*, href, name). Every interactive element gets a dotted ``name`` from
:mod:`customer_r1.world.naming` and a fixed click type, and is registered with the
effect a click has, so the shop (``shop.step``) and the shopper policy read the same
page. ``compact`` pages keep a handful of short names for CPU training; ``opera``
pages add carousels, product details and long footers to reach OPeRA's page length
without changing what the shopper does.

The shop's site variant (``shop.variant``, see :mod:`customer_r1.world.variants`) decides
what is shown: on the control site the pages are exactly those of the shop without
variants; a variant hides reviews, ratings, brand filters, deals or related searches,
moves the buybox below the product details, or changes the default sort (search effects
carry it), while prices and results per page come scaled from ``variant.apply``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal

from customer_r1.world.catalog import Product
from customer_r1.world.naming import element_name, option_name, slug
from customer_r1.world.shop import Effect, Shop, ShopConfig, ShopState
from customer_r1.world.variants import CONTROL, SiteVariant

PageSize = Literal["compact", "opera"]
PAGE_SIZES: tuple[str, ...] = ("compact", "opera")
HOST = "https://www.shop.example"
_SPACES = re.compile(r" {2,}")
_NEWLINES = re.compile(r"\n{2,}")


def shop_config(size: PageSize) -> ShopConfig:
    """Listing sizes per page size: 3 results a page when compact, 12 when OPeRA-sized."""
    if size == "compact":
        return ShopConfig()
    if size == "opera":
        return ShopConfig(results_per_page=12, brand_filters=8, related_terms=2, suggestions=2,
                          store_products=6, quantity_max=10)
    raise ValueError(f"unknown page size {size!r}; expected one of {PAGE_SIZES}")


@dataclass(frozen=True, slots=True)
class Element:
    """An interactive element: its name, click type (None for a text input) and effect."""

    name: str
    click_type: str | None
    effect: Effect
    meta: dict[str, Any] | None = None

    @property
    def is_input(self) -> bool:
        return self.click_type is None


@dataclass(slots=True)
class Page:
    """A rendered page. ``roles`` maps what an element is for (``add``, ``sort_price``,
    ``item:<pid>``) to its name, so the policy never parses HTML."""

    kind: str
    url: str
    html: str
    page_meta: dict[str, Any]
    elements: dict[str, Element] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    listing: tuple[str, ...] = ()  # product ids shown as a list, in page order
    #: The page's decision facts, each exactly as its HTML shows it: a key such as
    #: ``price:<pid>``, ``rating:<pid>``, ``option_price:<value>``, ``filter:<brand>`` →
    #: the shown text (``$12.99``, ``4.3★``). The policy records which ones a decision
    #: consulted (``Decision.evidence``), so a compressed prompt can be checked for them.
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def effects(self) -> dict[str, Effect]:
        return {n: e.effect for n, e in self.elements.items()}

    def click_type(self, name: str) -> str | None:
        el = self.elements.get(name)
        return el.click_type if el else None


class _Doc:
    """Collects HTML pieces and registered elements while a page is built."""

    def __init__(self, opera: bool, variant: SiteVariant = CONTROL) -> None:
        self.opera = opera
        self.v = variant
        self.parts: list[str] = []
        self.elements: dict[str, Element] = {}
        self.roles: dict[str, str] = {}
        self.facts: dict[str, str] = {}

    def fact(self, key: str, shown: str) -> None:
        """Record a decision fact as the HTML shows it (text is escaped, quotes kept)."""
        self.facts.setdefault(key, escape(shown, quote=False))

    def w(self, s: str) -> None:
        self.parts.append(s)

    def text(self, tag: str, s: str, **attrs: str) -> None:
        if self.opera:
            self.parts.append(f"<{tag}{_attrs(attrs)}>{escape(s, quote=False)}</{tag}>")
        else:  # compact: bare text, one space either side
            self.parts.append(f" {escape(s, quote=False)} ")

    def open(self, tag: str, name: str | None = None, **attrs: str) -> None:
        """Open a container; its name and attributes are written only on OPeRA-sized pages."""
        if not self.opera:  # compact: no wrappers, only a line break between blocks
            self.parts.append("\n")
            return
        a = {"name": name} if name else {}
        a.update(attrs)
        self.parts.append(f"<{tag}{_attrs(a)}>")

    def close(self, tag: str) -> None:
        if self.opera:
            self.parts.append(f"</{tag}>")

    def el(self, tag: str, name: str, label: str, click_type: str | None, effect: Effect,
           key: str | None = None, meta: dict[str, Any] | None = None, **attrs: str) -> str:
        if name in self.elements:
            raise ValueError(f"duplicate element name {name!r}")
        self.elements[name] = Element(name, click_type, effect, meta)
        if key:
            self.roles[key] = name
        if self.opera:
            a = {"name": name, **attrs}
        else:  # compact: the name (and an input's value) is all a model needs
            a = {"name": name}
            if tag == "input":
                a["value"] = attrs.get("value", "")
        if tag == "input":
            self.parts.append(f"<input{_attrs(a)}/>")
        else:
            self.parts.append(f"<{tag}{_attrs(a)}>{escape(label, quote=False)}</{tag}>")
        return name


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())


def display_title(p: Product, size: PageSize, ratings: bool = True) -> str:
    """Short titles on compact pages; OPeRA-length marketplace titles otherwise (with the
    star rating unless ``ratings`` is False)."""
    if size == "compact":
        return p.title
    extra = {"color": "Multiple Colors", "size": "Several Sizes", "style": "Several Styles"}
    rated = f", Rated {p.rating} Stars" if ratings else ""
    return (f"{p.title}, Premium {p.category.title()} by {p.brand} - "
            f"{extra.get(p.option_dim, 'One Size')}{rated}")


def _money(x: float) -> str:
    return f"${x:,.2f}"


_SORT_LABELS = {"featured": "Featured", "price": "Price: low to high",
                "rating": "Avg. customer review"}
#: Synonyms a placebo site uses for its labels (``label_synonyms``): the same elements.
_SYNONYMS = {"Search": "Go", "Home": "Start", "Cart": "Basket", "See all reviews": "Read reviews",
             "Back to results": "Back to search results", "Add to Cart": "Add to Basket",
             "Go to Cart": "Go to Basket", "Continue shopping": "Keep shopping"}


def _label(v: SiteVariant, text: str) -> str:
    """A label as the site words it (a synonym on a ``label_synonyms`` placebo)."""
    return _SYNONYMS.get(text, text) if v.label_synonyms else text


def build_page(state: ShopState, shop: Shop, size: PageSize) -> Page:
    """Render the page for ``state``: HTML, URL, page_meta and the named elements."""
    opera = size == "opera"
    v = shop.variant
    d = _Doc(opera, v)
    cat = shop.catalog
    prods = cat.products
    d.w("<html><head></head><body>" if opera else "<html><body>")
    if v.banner:
        d.w(f'<div role="banner">{escape(v.banner, quote=False)}</div>')
    _nav(d, state, shop, size)
    listing: tuple[str, ...] = ()
    meta: dict[str, Any] = {"search_term": [{"term": state.query if state.page == "search"
                                             else ""}]}
    kind = state.page
    if kind == "home":
        url = f"{HOST}/"
        if v.deals:
            listing = state.deals
            d.open("div", "deals", role="region", aria_label="Today's deals")
            d.text("h2", "Today's deals")
            for pid in state.deals:
                _product_link(d, "deals", prods[pid], size, "promotion_items")
            d.close("div")
            meta["promotion_items"] = [_pmeta(prods[p], v) for p in state.deals]
    elif kind == "search":
        url = f"{HOST}/s?URL_MASKED"
        listing = _search(d, state, shop, size)
        meta["search_results"] = [_pmeta(prods[p], v) for p in listing]
    elif kind == "product":
        url = f"{HOST}/{slug(prods[state.product].title).replace('_', '-')}/dp/" \
              f"{state.product}?URL_MASKED"
        _product(d, state, shop, size)
        p = prods[state.product]
        meta["product_details"] = [{**_pmeta(p, v), "brand": p.brand}
                                   | ({} if v.hide_ratings
                                      else {"review_count": str(p.review_count)})]
        if p.option_dim:
            meta["product_options"] = [{"name": p.option_dim, "values": list(p.option_values),
                                        "selected": state.option or p.option_values[0]}]
    elif kind == "reviews":
        url = f"{HOST}/product-reviews/{state.product}?URL_MASKED"
        _reviews(d, state, shop, size)
        meta["product_details"] = [_pmeta(prods[state.product], v)]
    elif kind == "store":
        url = f"{HOST}/stores/{state.store_brand}/page?URL_MASKED"
        listing = shop.store(state)
        d.open("div", "store", role="main")
        d.text("h1", f"{state.store_brand} Store")
        for pid in listing:
            _product_link(d, "store", prods[pid], size, "search_results")
        if state.query:
            d.el("a", element_name(None, text="Back to results"), "Back to results",
                 "page_related", Effect("back_results"), key="back_results", href="/s")
        d.close("div")
        meta["search_results"] = [_pmeta(prods[p], v) for p in listing]
    elif kind == "cart":
        url = f"{HOST}/cart?URL_MASKED"
        _cart(d, state, shop, size)
    else:  # pragma: no cover - ShopState.page is a Literal
        raise ValueError(kind)
    if kind != "cart" and state.cart:
        _side_bar(d, state, shop)
    meta["cart_items"] = [
        {"title": prods[c.pid].title, "asin": c.pid, "price": _money(prods[c.pid].price_for(
            c.option)), "url": f"/gp/product/{c.pid}", "quantity": str(c.qty)}
        for c in state.cart
    ]
    if opera:
        _filler(d, state, shop, size)
    elif v.footer_links:
        d.w('<div role="contentinfo">')
        for label in ("Help", "Returns", "Conditions of Use"):
            d.el("a", element_name("footer", text=label), label, "other", Effect("noop"),
                 href="/help")
        d.w("</div>")
    d.w("</body></html>")
    text = "".join(d.parts)
    if not opera:
        text = _SPACES.sub(" ", text).replace(" \n", "\n").replace("\n ", "\n")
        text = _NEWLINES.sub("\n", text)
    page = Page(kind, url, text, meta, d.elements, d.roles, listing, d.facts)
    return page


def _nav(d: _Doc, state: ShopState, shop: Shop, size: PageSize) -> None:
    d.open("div", "nav_bar", role="navigation", aria_label="Primary")
    value = state.typed or (state.query if state.page == "search" else "")
    v = shop.variant

    def links() -> None:
        home, cart = _label(v, "Home"), _label(v, "Cart")
        if v.nav_reordered:  # a placebo: the cart link first
            d.el("a", element_name("nav_bar", text=cart), cart, "nav_bar", Effect("cart"),
                 key="cart", href="/cart")
        d.el("a", element_name("nav_bar", text=home), home, "nav_bar", Effect("home"),
             key="home", href="/")
        if not v.nav_reordered:
            d.el("a", element_name("nav_bar", text=cart), cart, "nav_bar", Effect("cart"),
                 key="cart", href="/cart")

    if v.nav_reordered:
        links()
    d.el("input", element_name("nav_bar", part="search_input"), "", None, Effect("type"),
         key="search_input", type="text", value=value, aria_label="Search")
    d.el("button", element_name("nav_bar", part="search_button"), _label(v, "Search"), "search",
         shop.search_effect(), key="search_button")
    if not v.nav_reordered:
        links()
    if state.cart or size == "opera":
        d.text("span", str(sum(c.qty for c in state.cart)))
    if size == "opera":
        for dept in _DEPARTMENTS:
            d.el("a", element_name("nav_bar.departments", text=dept), dept, "nav_bar",
                 Effect("noop"), href="/departments")
    if state.typed:
        parent = element_name("nav_bar", part="suggestions")
        d.open("ul", parent, role="listbox")
        for term in shop.suggestions(state.typed):
            d.open("li")
            d.el("a", element_name(parent, text=term), term, "suggested_term",
                 shop.search_effect(term), key=f"suggestion:{term}", role="option")
            d.fact(f"suggestion:{term}", term)
            d.close("li")
        d.close("ul")
    d.close("div")


def _product_link(d: _Doc, parent: str, p: Product, size: PageSize, meta_kind: str,
                  role_prefix: str = "item") -> None:
    ratings = not d.v.hide_ratings
    title = display_title(p, size, ratings)
    d.open("div")
    if d.v.extra_wrappers:  # a placebo: more markup around the same link
        d.w("<div><span>")
    d.el("a", element_name(parent, text=title), title, "product_link", Effect("product", p.pid),
         key=f"{role_prefix}:{p.pid}",
         meta={"name": meta_kind, "data": json.dumps(_pmeta(p, d.v))}, href=f"/dp/{p.pid}")
    if d.v.extra_wrappers:
        d.w("</span></div>")
    if d.v.image_alt and size == "compact":  # a placebo: a photo with alt text
        d.w(f'<img alt="{escape("Photo of the " + p.title)}"/>')
    if d.v.unavailable(p.pid):
        d.text("span", "Currently unavailable")
    d.fact(f"title:{p.pid}", title)
    d.fact(f"price:{p.pid}", _money(p.price))
    if ratings:
        d.fact(f"rating:{p.pid}", f"{p.rating}★")
        if size == "opera":
            d.fact(f"reviews:{p.pid}", f"({p.review_count})")
    if size == "opera":
        if ratings:
            d.text("span", f"{_money(p.price)} {p.rating}★ ({p.review_count})")
        else:
            d.text("span", _money(p.price))
        alt = f"Product photo: {p.title}" if d.v.image_alt else title
        d.w(f'<img alt="{escape(alt)}"/>')
        stars = f"{p.rating} out of 5 stars, {p.review_count} ratings. " if ratings else ""
        d.text("span", f"{stars}FREE delivery Tue, Apr 22 on orders shipped by the shop. "
                       f"Only {3 + p.review_count % 17} left in stock - order soon.")
    else:
        d.text("span", f"{_money(p.price)} {p.rating}★" if ratings else _money(p.price))
    d.close("div")


def _sorts(d: _Doc, size: PageSize, v: SiteVariant) -> None:
    sort_name = element_name(None, part="sort_by")
    d.w(f'<select{_attrs({"name": sort_name})}>')
    if size == "opera":
        sorts = [("featured", "Featured", "sort_featured"),
                 ("price", "Price: low to high", "sort_price"),
                 ("rating", "Avg. customer review", "sort_rating")]
    else:
        sorts = [("price", "Price", "sort_price"), ("rating", "Rating", "sort_rating")]
    if v.hide_ratings:
        sorts = [x for x in sorts if x[0] != "rating"]
    for value, label, role in sorts:
        d.el("option", option_name(sort_name, value), label, "filter", Effect("sort", value),
             key=role, value=value)
        d.fact(f"sort:{value}", label)
    d.w("</select>")


def _search(d: _Doc, state: ShopState, shop: Shop, size: PageSize) -> tuple[str, ...]:
    prods = shop.catalog.products
    d.open("div", "search_controls", role="region")
    v = shop.variant
    if v.sort_options:
        _sorts(d, size, v)
    if v.default_sort != "featured":  # a site that sorts by itself says how
        d.text("span", f"Sorted by: {_SORT_LABELS[state.sort]}")
    if v.brand_filters:
        d.text("span", "Brand")
        for b in shop.brand_filters(state):
            d.el("a", element_name("brand", text=b), b, "filter", Effect("brand", b),
                 key=f"brand:{b}", aria_checked="true" if state.brand == b else "false")
            d.fact(f"filter:{b}", b)
    d.close("div")
    ids = shop.results(state)
    d.open("div", "results", role="main")
    shown = f"{state.query}{' · ' + state.brand if state.brand else ''}"
    d.text("span", f"Results for {shown}" if ids else f"No results for {shown}")
    for pid in ids:
        _product_link(d, "results", prods[pid], size, "search_results")
    d.close("div")
    n = shop.n_pages(state)
    d.open("div", "pagination", role="navigation")
    if state.page_no > 1:
        d.el("a", element_name("pagination", text="Previous"), "Previous", "page_related",
             Effect("page", n=state.page_no - 1), key="prev_page")
    if size == "opera":
        for i in range(1, n + 1):
            if i != state.page_no:
                d.el("a", element_name("pagination", index=i), str(i), "page_related",
                     Effect("page", n=i))
    if state.page_no < n:
        d.el("a", element_name("pagination", text="Next"), "Next", "page_related",
             Effect("page", n=state.page_no + 1), key="next_page")
    d.close("div")
    related = shop.related(state)
    if related:
        d.open("div", "related_searches")
        d.text("span", "Related:")
        for term in related:
            d.el("a", element_name("related", text=term), term, "suggested_term",
                 shop.search_effect(term), key=f"related:{term}")
            d.fact(f"related:{term}", term)
        d.close("div")
    return ids


def _product(d: _Doc, state: ShopState, shop: Shop, size: PageSize) -> None:
    p = shop.catalog.products[state.product]
    v = shop.variant
    title = display_title(p, size, not v.hide_ratings)
    price = p.price_for(state.option)
    d.open("div", "product_detail", role="main")
    d.text("h1", title)
    d.fact(f"title:{p.pid}", title)
    d.fact(f"price:{p.pid}", _money(price))
    if v.hide_ratings:
        d.text("span", _money(price))
    else:
        d.text("span", f"{_money(price)} · {p.rating}★ · {p.review_count} ratings")
        d.fact(f"rating:{p.pid}", f"{p.rating}★")
        d.fact(f"reviews:{p.pid}", f"{p.review_count} ratings")
    _terms(d, v)
    if not v.hide_reviews:
        label = _label(v, "See all reviews")
        d.el("a", element_name(None, text=label), label, "review",
             Effect("reviews", "top"), key="reviews", href=f"/product-reviews/{p.pid}")
    store_label = f"Visit the {p.brand} Store"
    d.el("a", element_name(None, text=store_label), store_label, "other",
         Effect("store", p.brand), key="store", href=f"/stores/{p.brand}")
    d.fact("brand", store_label)
    if size == "opera":
        d.text("p", p.description)
    if p.option_dim:
        parent = element_name("options", part=p.option_dim)
        chosen = state.option or p.option_values[0]
        d.open("div", parent, role="radiogroup", aria_label=p.option_dim)
        d.text("span", f"{p.option_dim.title()}: {chosen}")
        for val, vp in zip(p.option_values, p.option_prices, strict=True):
            d.el("button", element_name(parent, text=val), val, "product_option",
                 Effect("option", val), key=f"option:{val}",
                 aria_pressed="true" if val == chosen else "false")
            d.text("span", _money(vp))  # price differences per option value
            d.fact(f"option:{val}", val)
            d.fact(f"option_price:{val}", _money(vp))
        d.close("div")
    if v.add_to_cart_below_details:
        _back_to_results(d, state)
        d.close("div")
        if size == "opera":
            _about(d, p, v)
        _buybox(d, state, shop, p)
        if size == "opera" and not v.hide_reviews:
            _top_reviews(d, p)
        return
    _buybox(d, state, shop, p)
    _back_to_results(d, state)
    d.close("div")
    if size == "opera":
        _about(d, p, v)
        if not v.hide_reviews:
            _top_reviews(d, p)


def _terms(d: _Doc, v: SiteVariant) -> None:
    """The shipping fee and the coupon, where the site has them (product page)."""
    if v.shipping_fee:
        free = f"; FREE on orders over {_money(v.free_shipping_over)}" if v.free_shipping_over else ""
        shown = f"Shipping: {_money(v.shipping_fee)}{free}"
        d.text("span", shown)
        d.fact("shipping", shown)
    if v.coupon:
        shown = f"Coupon: {v.coupon * 100:g}% off at checkout"
        d.text("span", shown)
        d.fact("coupon", shown)


def _back_to_results(d: _Doc, state: ShopState) -> None:
    if state.query:
        label = _label(d.v, "Back to results")
        d.el("a", element_name(None, text=label), label,
             "page_related", Effect("back_results"), key="back_results", href="/s")


def _buybox(d: _Doc, state: ShopState, shop: Shop, p: Product) -> None:
    """Quantity, add to cart, buy now and subscribe (none when out of stock)."""
    v = shop.variant
    if v.unavailable(p.pid):
        d.text("p", "Currently unavailable. We don't know when or if this item will be back in stock.")
        d.fact("stock", "Currently unavailable")
        return
    d.open("div", "buybox", role="form")
    if v.extra_wrappers:
        d.w("<div><div>")
    qname = element_name(None, part="quantity")
    d.w(f'<select{_attrs({"name": qname})}>')
    for i in range(1, shop.config.quantity_max + 1):
        d.el("option", option_name(qname, str(i)), str(i), "quantity", Effect("qty", n=i),
             key=f"qty:{i}", value=str(i), aria_selected="true" if i == state.qty else "false")
    d.w("</select>")
    if state.qty > 1:
        d.text("span", f"Qty: {state.qty}")
    d.el("button", element_name("buybox", part="add_to_cart"), _label(v, "Add to Cart"), "purchase",
         Effect("add", "cart" if v.add_goes_to_cart else ""), key="add")
    if v.buy_now:
        d.el("button", element_name("buybox", part="buy_now"), "Buy Now", "purchase",
             Effect("buy_now"), key="buy_now")
    if p.subscribable:
        d.el("button", element_name("buybox", part="subscribe"), "Subscribe & Save",
             "purchase", Effect("subscribe"), key="subscribe")
    if v.extra_wrappers:
        d.w("</div></div>")
    d.close("div")


def _reviews(d: _Doc, state: ShopState, shop: Shop, size: PageSize) -> None:
    p = shop.catalog.products[state.product]
    v = shop.variant
    critical = state.review_view == "critical"
    d.open("div", "reviews", role="main")
    d.text("h1", f"Reviews: {display_title(p, size, not v.hide_ratings)}")
    if not v.hide_ratings:
        d.text("span", f"{p.rating} out of 5 · {p.review_count} ratings")
        d.fact(f"rating:{p.pid}", f"{p.rating} out of 5")
    shown = [r for r in p.reviews if r.stars <= 3] if critical else list(p.reviews)
    if size == "compact":
        shown = shown[:3]
    if v.hide_reviews:  # only reachable by address: the site shows no reviews
        shown = []
        d.text("p", "Customer reviews are not available.")
    elif critical and not shown:
        d.text("p", "No critical reviews.")
    for i, r in enumerate(shown):
        d.text("p", f"{r.stars}★ {r.title}: {r.text}")
        d.fact(f"review:{i}", f"{r.stars}★ {r.title}")
    if not critical and not v.hide_reviews:
        d.el("a", element_name("reviews", text="Critical reviews"), "Critical reviews",
             "review", Effect("reviews", "critical"), key="critical")
    d.el("a", element_name(None, text="Back to product"), "Back to product", "page_related",
         Effect("back_product"), key="back_product", href=f"/dp/{p.pid}")
    d.close("div")


def _cart(d: _Doc, state: ShopState, shop: Shop, size: PageSize) -> None:
    prods = shop.catalog.products
    d.open("div", "active_cart", role="main")
    d.text("h1", "Shopping Cart")
    if not state.cart:
        d.text("p", "Your cart is empty.")
    ratings = not shop.variant.hide_ratings
    for c in state.cart:
        p = prods[c.pid]
        title = display_title(p, size, ratings)
        parent = element_name("active_item_list", text=title)
        d.open("div", parent)
        d.el("a", element_name(parent, part="product_detail"), title, "product_link",
             Effect("product", p.pid), key=f"detail:{p.pid}",
             meta={"name": "cart_items", "data": json.dumps(_pmeta(p, shop.variant))},
             href=f"/dp/{p.pid}")
        d.text("span", f"{c.option + ' · ' if c.option else ''}{_money(p.price_for(c.option))}")
        d.fact(f"price:{p.pid}", _money(p.price_for(c.option)))
        qname = element_name(parent, part="quantity")
        d.w(f'<select{_attrs({"name": qname})}>')
        for i in range(1, max(shop.config.quantity_max, c.qty) + 1):
            d.el("option", option_name(qname, str(i)), str(i), "quantity",
                 Effect("cart_qty", p.pid, i), value=str(i),
                 aria_selected="true" if i == c.qty else "false")
        d.w("</select>")
        d.el("button", element_name(parent, text="Delete"), "Delete", "cart_page_select",
             Effect("delete", p.pid), key=f"delete:{p.pid}")
        if shop.variant.save_for_later:
            d.el("button", element_name(parent, text="Save for later"), "Save for later",
                 "cart_page_select", Effect("save", p.pid), key=f"save:{p.pid}")
        d.close("div")
    if state.cart:
        d.text("span", f"Subtotal: {_money(shop.cart_total(state.cart))}")
        d.fact("subtotal", f"Subtotal: {_money(shop.cart_total(state.cart))}")
        _cart_terms(d, shop.variant, shop.cart_total(state.cart))
        d.el("button", element_name(None, text="Proceed to checkout"), "Proceed to checkout",
             "purchase", Effect("checkout"), key="checkout")
    cont = _label(shop.variant, "Continue shopping")
    d.el("a", element_name(None, text=cont), cont, "other",
         Effect("continue"), key="continue", href="/")
    for c in state.saved:
        p = prods[c.pid]
        parent = element_name("saved_items", text=display_title(p, size, ratings))
        d.text("span", display_title(p, size, ratings))
        d.el("button", element_name(parent, text="Move to cart"), "Move to cart",
             "cart_page_select", Effect("move", p.pid), key=f"move:{p.pid}")
    d.close("div")


def _cart_terms(d: _Doc, v: SiteVariant, subtotal: float) -> None:
    """The coupon, the shipping and the order total, where the site has them (cart)."""
    if not v.coupon and not v.shipping_fee:
        return
    if v.coupon:
        off = round(subtotal * v.coupon, 2)
        d.text("span", f"Coupon ({v.coupon * 100:g}% off): -{_money(off)}")
        d.fact("coupon", f"Coupon: -{_money(off)}")
    if v.shipping_fee:
        fee = v.shipping(round(subtotal * (1.0 - v.coupon), 2))
        d.text("span", f"Shipping: {_money(fee) if fee else 'FREE'}")
        d.fact("shipping", f"Shipping: {_money(fee) if fee else 'FREE'}")
    d.text("span", f"Order total: {_money(v.pays(subtotal))}")
    d.fact("order_total", f"Order total: {_money(v.pays(subtotal))}")


def _side_bar(d: _Doc, state: ShopState, shop: Shop) -> None:
    d.open("div", "cart_side_bar", role="complementary", aria_label="Cart")
    if state.added:
        d.text("span", "Added to cart")
    d.text("span", f"Subtotal: {_money(shop.cart_total(state.cart))}")
    go = _label(shop.variant, "Go to Cart")
    d.el("a", element_name("cart_side_bar", text=go), go, "cart_side_bar",
         Effect("cart"), key="side_cart", href="/cart")
    if shop.variant.side_checkout:
        d.el("button", element_name("cart_side_bar", text="Proceed to checkout"),
             "Proceed to checkout", "purchase", Effect("checkout"), key="side_checkout")
    d.close("div")


def _pmeta(p: Product, v: SiteVariant = CONTROL) -> dict[str, str]:
    if v.hide_ratings:
        return {"title": p.title, "asin": p.pid, "price": _money(p.price)}
    return {"title": p.title, "asin": p.pid, "price": _money(p.price), "rating": str(p.rating)}


# --- OPeRA-sized filler: never what the shopper acts on, but what makes real pages long ---

_DEPARTMENTS = ("All", "Today's Deals", "Customer Service", "Registry", "Gift Cards", "Sell",
                "Prime Video", "Music", "Books", "Fashion", "Home & Kitchen", "Electronics",
                "Toys & Games", "Beauty", "Health", "Sports", "Pet Supplies", "Automotive")
_FOOTER_COLS = {
    "Get to Know Us": ("Careers", "Blog", "About the shop", "Investor Relations", "Devices",
                       "Science", "Sustainability", "Press Center", "Accessibility"),
    "Make Money with Us": ("Sell products", "Sell apps", "Supply to us", "Protect your brand",
                           "Become an Affiliate", "Become a Delivery Driver", "Start a Package "
                           "Delivery Business", "Advertise Your Products", "Self-Publish",
                           "Host a Hub"),
    "Payment Products": ("Business Card", "Shop with Points", "Reload Your Balance",
                         "Currency Converter", "Gift Cards", "Rewards Visa"),
    "Let Us Help You": ("Your Account", "Your Orders", "Shipping Rates & Policies",
                        "Returns & Replacements", "Manage Your Content and Devices",
                        "Recalls and Product Safety Alerts", "Help", "Registry & Gift List"),
}
_CAROUSELS = ("Customers who viewed this item also viewed", "Inspired by your browsing history",
              "Top picks for you", "Products related to this item", "Deals on related items",
              "Frequently bought together", "Best sellers in this category",
              "Recommended for you", "More items to explore", "Your browsing history",
              "Sponsored products related to this search", "Highly rated, well priced")
_LEGAL = ("Conditions of Use", "Privacy Notice", "Consumer Health Data Privacy Disclosure",
          "Your Ads Privacy Choices", "Interest-Based Ads", "Cookie Notice")


def _carousel_ids(shop: Shop, key: str, k: int) -> list[str]:
    ids = sorted(shop.catalog.products)
    from customer_r1.world.catalog import _stable_hash  # local: private helper

    h = _stable_hash(key)
    n = len(ids)
    return [ids[(h + 7919 * i) % n] for i in range(min(k, n))]


def _filler(d: _Doc, state: ShopState, shop: Shop, size: PageSize) -> None:
    prods = shop.catalog.products
    # Tuned so the median page is about OPeRA's ~100k characters.
    n_car = {"home": 10, "search": 9, "product": 9, "reviews": 10, "store": 10,
             "cart": 10}[state.page]
    key = f"{state.page}|{state.query}|{state.product}|{state.page_no}"
    for ci, heading in enumerate(_CAROUSELS[:n_car]):
        parent = element_name(None, text=heading)
        d.open("div", parent, role="region", aria_label=heading)
        d.text("h2", heading)
        seen: set[str] = set()
        for j, pid in enumerate(_carousel_ids(shop, f"{key}|{ci}", 22)):
            if pid in seen:
                continue
            seen.add(pid)
            p = prods[pid]
            title = display_title(p, size, not d.v.hide_ratings)
            d.w("<div>")
            d.el("a", element_name(parent, text=title, index=j), title, "product_link",
                 Effect("product", pid),
                 meta={"name": "promotion_items", "data": json.dumps(_pmeta(p, d.v))},
                 href=f"/dp/{pid}")
            d.w(f'<img alt="{escape(title)}"/>')
            stars = "" if d.v.hide_ratings else \
                f"{p.rating} out of 5 stars · {p.review_count} ratings · "
            d.text("span", f"{_money(p.price)} · {stars}Prime · FREE Returns · "
                           f"Ships from and sold by the shop.")
            d.w("</div>")
        d.close("div")
    d.el("a", element_name(None, text="Back to top"), "Back to top", "other", Effect("noop"))
    d.open("div", "footer", role="contentinfo")
    cols = list(_FOOTER_COLS.items())
    for col, links in (cols[::-1] if d.v.footer_links else cols):  # a placebo: reordered
        d.text("h3", col)
        for label in links:
            d.el("a", element_name("footer", text=label), label, "other", Effect("noop"),
                 href="/help")
    for label in _LEGAL:
        d.el("a", element_name("footer.legal", text=label), label, "other", Effect("noop"),
             href="/legal")
    d.text("p", "© 1996-2025, shop.example, Inc. or its affiliates. " * 4)
    d.close("div")


def _about(d: _Doc, p: Product, v: SiteVariant) -> None:
    """OPeRA-sized product details: feature bullets, details table, description."""
    d.open("div", "feature_bullets")
    d.text("h2", "About this item")
    for i in range(12):
        d.text("li", f"{p.title} feature {i + 1}: designed by {p.brand} for everyday "
                     f"{p.category} use, tested for durability, comfort and value; backed by a "
                     f"30-day return policy and a one-year limited warranty from the maker.")
    d.close("div")
    d.open("table", "product_details")
    rows = {"Brand": p.brand, "Model": p.pid, "Category": p.category, "Rating": str(p.rating),
            "Reviews": str(p.review_count), "Options": ", ".join(p.option_values) or "none",
            "Item weight": f"{1 + p.review_count % 9}.{p.review_count % 7} pounds",
            "Dimensions": f"{p.review_count % 13 + 4} x 6 x 3 inches",
            "Country of origin": "USA", "Date first available": "January 5, 2024",
            "Manufacturer": f"{p.brand} Inc.", "Best sellers rank": f"#{p.review_count * 7}"}
    if v.hide_ratings:
        del rows["Rating"], rows["Reviews"]
    for k, val in rows.items():
        d.w(f"<tr><th>{escape(k)}</th><td>{escape(val)}</td></tr>")
    d.close("table")
    d.open("div", "product_description")
    d.text("h2", "Product description")
    d.text("p", (p.description + " ") * 12)
    d.close("div")


def _top_reviews(d: _Doc, p: Product) -> None:
    """OPeRA-sized review snippets under the product."""
    d.open("div", "top_reviews")
    d.text("h2", "Top reviews from the United States")
    for r in p.reviews:
        d.text("p", f"{r.stars}.0 out of 5 stars {r.title}. Reviewed in the United States on "
                    f"March 3, 2025. Verified Purchase. {r.text} " * 2)
    d.close("div")
