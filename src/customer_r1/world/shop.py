"""The shop's state and its transitions: (state, action) -> state.

Kept apart from page rendering (``pages``) so a later HTTP simulator can serve the same
pages: it renders ``pages.build_page(state)`` and, on a click or input, calls
:func:`step` with the page's name -> effect map. Everything here is deterministic.

A shop carries its :class:`~customer_r1.world.variants.SiteVariant` (``Shop.variant``,
the control site by default; build a variant's shop with ``shop.with_variant(variant)``): the
listing queries below honour it, the pages read it, and a new search starts in the
variant's default sort, which the page's search effects carry (``Effect.sort``) so that
:func:`step` needs nothing but the page's effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from customer_r1.actions import Action
from customer_r1.world.catalog import Catalog
from customer_r1.world.variants import CONTROL, SiteVariant

PageKind = Literal["home", "search", "product", "reviews", "cart", "store"]
PURCHASE_EFFECTS = frozenset({"buy_now", "subscribe", "checkout"})


@dataclass(frozen=True, slots=True)
class ShopConfig:
    """Listing sizes; compact pages show few results, OPeRA-sized pages many."""

    results_per_page: int = 3
    brand_filters: int = 3
    related_terms: int = 1
    suggestions: int = 2
    store_products: int = 3
    quantity_max: int = 2


@dataclass(frozen=True, slots=True)
class CartItem:
    pid: str
    option: str
    qty: int


@dataclass(frozen=True, slots=True)
class ShopState:
    """Everything a page depends on. ``typed`` is text in the search box not yet submitted."""

    page: PageKind = "home"
    query: str = ""
    typed: str = ""
    sort: str = "featured"  # featured | price | rating
    brand: str = ""  # brand filter of the listing
    page_no: int = 1
    product: str = ""
    review_view: str = "top"  # top | critical
    option: str = ""  # chosen option value on the product page ("" = default)
    qty: int = 1
    store_brand: str = ""
    cart: tuple[CartItem, ...] = ()
    saved: tuple[CartItem, ...] = ()
    added: bool = False  # "added to cart" banner in the side bar
    deals: tuple[str, ...] = ()
    ended: str = ""  # "" | purchase | terminate


@dataclass(frozen=True, slots=True)
class Effect:
    """What clicking (or typing into) a named element does. ``sort``: the order a new
    search (``search``, ``search_term``) starts in; "" is featured."""

    kind: str
    arg: str = ""
    n: int = 0
    sort: str = ""


@dataclass(frozen=True, slots=True)
class Shop:
    """Catalog + listing sizes + site variant: the queries the pages and transitions
    both need."""

    catalog: Catalog
    config: ShopConfig
    variant: SiteVariant = CONTROL

    def with_variant(self, variant: SiteVariant) -> Shop:
        """This (control) shop as ``variant``'s site: prices scaled, rating sentences dropped
        from descriptions, results per page scaled, and the variant recorded on the shop for
        the pages and transitions. Variants of variants are built with ``combine``."""
        if self.variant == variant:
            return self
        if not self.variant.is_control:
            raise ValueError(f"apply variants to the control shop, not to the "
                             f"{self.variant.name!r} shop; combine() them instead")
        catalog = self.catalog
        if variant.price_factor != 1.0 or variant.hide_ratings:
            products = {pid: variant.product(p) for pid, p in catalog.products.items()}
            catalog = replace(catalog, products=products)
        config = self.config
        k = variant.results_per_page(config.results_per_page)
        if k != config.results_per_page:
            config = replace(config, results_per_page=k)
        return replace(self, catalog=catalog, config=config, variant=variant)

    def search_effect(self, term: str | None = None) -> Effect:
        """The effect of starting a search on this site: of the typed text (``None``) or
        of ``term``, in the site's default sort."""
        sort = self.variant.sort_key
        if term is None:
            return Effect("search", sort=sort)
        return Effect("search_term", term, sort=sort)

    def listing(self, state: ShopState) -> tuple[str, ...]:
        """All product ids of the current search listing after sort and filter."""
        ids = list(self.catalog.search(state.query))
        prods = self.catalog.products
        if state.brand:
            ids = [i for i in ids if prods[i].brand == state.brand]
        if state.sort == "price":
            ids.sort(key=lambda i: prods[i].price)
        elif state.sort == "rating":
            ids.sort(key=lambda i: -prods[i].rating)
        elif self.variant.ranking == "sponsored":
            # Sponsored placements first: the featured order puts the products that most
            # need the visibility, the lowest rated, on top (stable within a rating).
            ids.sort(key=lambda i: prods[i].rating)
        return tuple(ids)

    def results(self, state: ShopState) -> tuple[str, ...]:
        k = self.config.results_per_page
        ids = self.listing(state)
        return ids[(state.page_no - 1) * k: state.page_no * k]

    def n_pages(self, state: ShopState) -> int:
        k = self.config.results_per_page
        return max(1, -(-len(self.listing(state)) // k))

    def brand_filters(self, state: ShopState) -> tuple[str, ...]:
        """The most common brands of the query's results (ties by name), sorted by name;
        none on a site without brand filters."""
        if not self.variant.brand_filters:
            return ()
        prods = self.catalog.products
        counts: dict[str, int] = {}
        for i in self.catalog.search(state.query):
            counts[prods[i].brand] = counts.get(prods[i].brand, 0) + 1
        top = sorted(counts, key=lambda b: (-counts[b], b))[: self.config.brand_filters]
        return tuple(sorted(top))

    def related(self, state: ShopState) -> tuple[str, ...]:
        """Related searches under a listing: the category's other phrasings."""
        if not self.variant.related_searches:
            return ()
        cat = self.catalog.query_category.get(state.query)
        if cat is None:
            return ()
        others = [q for q in self.catalog.queries(cat) if q != state.query]
        return tuple(others[: self.config.related_terms])

    def suggestions(self, typed: str) -> tuple[str, ...]:
        """Autocomplete under the search box: the typed query's category phrasings (none
        on a site without suggestions)."""
        if not self.variant.search_suggestions:
            return ()
        cat = self.catalog.query_category.get(typed)
        if cat is None:
            return ()
        others = [q for q in self.catalog.queries(cat) if q != typed]
        return tuple(others[: self.config.suggestions])

    def store(self, state: ShopState) -> tuple[str, ...]:
        """The brand store: that brand's products in the current product's category."""
        prods = self.catalog.products
        if not state.product:
            return ()
        cat = prods[state.product].category
        ids = [i for i in self.catalog.by_category[cat] if prods[i].brand == state.store_brand]
        ids.sort(key=lambda i: -prods[i].rating)
        return tuple(ids[: self.config.store_products])

    def cart_total(self, cart: tuple[CartItem, ...]) -> float:
        prods = self.catalog.products
        return round(sum(prods[c.pid].price_for(c.option) * c.qty for c in cart), 2)


def step(state: ShopState, action: Action, effects: Mapping[str, Effect]) -> ShopState:
    """Apply an action to a state. ``effects`` maps the current page's names to effects."""
    if state.ended:
        raise ValueError("the session has ended")
    if action.type == "terminate":
        return replace(state, ended="terminate", added=False)
    assert action.name is not None
    effect = effects.get(action.name)
    if effect is None:
        raise KeyError(f"no element named {action.name!r} on this page")
    if action.type == "input":
        if effect.kind != "type":
            raise ValueError(f"{action.name!r} is not a text input")
        return replace(state, typed=action.text or "", added=False)
    return apply_effect(state, effect)


def apply_effect(state: ShopState, e: Effect) -> ShopState:
    """The state after a click with effect ``e``."""
    k = e.kind
    s = replace(state, added=False, typed="")
    listing = dict(sort=e.sort or "featured", brand="", page_no=1)
    if k == "search":
        return replace(s, page="search", query=state.typed or state.query, **listing)
    if k == "search_term":
        return replace(s, page="search", query=e.arg, **listing)
    if k == "home":
        return replace(s, page="home")
    if k == "cart":
        return replace(s, page="cart")
    if k == "sort":
        return replace(s, page="search", sort=e.arg, page_no=1)
    if k == "brand":
        return replace(s, page="search", brand="" if state.brand == e.arg else e.arg, page_no=1)
    if k == "page":
        return replace(s, page="search", page_no=e.n)
    if k == "product":
        return replace(s, page="product", product=e.arg, option="", qty=1)
    if k == "reviews":
        return replace(s, page="reviews", review_view=e.arg or "top")
    if k == "back_product":
        return replace(s, page="product")
    if k == "back_results":
        return replace(s, page="search")
    if k == "option":
        return replace(s, option=e.arg)
    if k == "qty":
        return replace(s, qty=e.n)
    if k == "add":
        cart = _add(state.cart, CartItem(state.product, state.option, state.qty))
        if e.arg == "cart":  # a site that shows the cart after adding
            return replace(s, page="cart", cart=cart)
        return replace(s, cart=cart, added=True)
    if k in ("buy_now", "subscribe"):
        return replace(s, ended="purchase")
    if k == "checkout":
        return replace(s, ended="purchase")
    if k == "store":
        return replace(s, page="store", store_brand=e.arg)
    if k == "delete":
        return replace(s, cart=tuple(c for c in state.cart if c.pid != e.arg))
    if k == "save":
        saved = state.saved
        for c in state.cart:
            if c.pid == e.arg:
                saved = _add(saved, c)
        return replace(s, cart=tuple(c for c in state.cart if c.pid != e.arg), saved=saved)
    if k == "move":
        cart = state.cart
        for c in state.saved:
            if c.pid == e.arg:
                cart = _add(cart, c)
        return replace(s, saved=tuple(c for c in state.saved if c.pid != e.arg), cart=cart)
    if k == "cart_qty":
        return replace(s, cart=tuple(replace(c, qty=e.n) if c.pid == e.arg else c
                                     for c in state.cart))
    if k == "continue":
        return replace(s, page="home")
    if k == "noop":
        return replace(state, typed="")
    raise ValueError(f"unknown effect {k!r}")


def _add(cart: tuple[CartItem, ...], item: CartItem) -> tuple[CartItem, ...]:
    """One line per product (the page names lines by product): adding it again adds the
    quantity and takes the newly chosen option."""
    for i, c in enumerate(cart):
        if c.pid == item.pid:
            return (*cart[:i], CartItem(c.pid, item.option, c.qty + item.qty), *cart[i + 1:])
    return (*cart, item)
