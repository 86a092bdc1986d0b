"""One visitor's session with our shop: the state machine the environment and the web app share.

``ShopSession`` applies an action to the shop's state (``world.shop``) and renders the page
(``world.pages``); it knows nothing of step limits (``env``) or HTTP (``site``). Actions are
validated here, once, so the in-process environment and the HTTP shop refuse the same
actions with the same words: an invalid action leaves the state unchanged and returns
``(kind, message)``. A :class:`PageView` is everything an observation is made of, in a form
that travels as JSON (the web app embeds it in every page it serves, like a recorder).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from customer_r1.actions import Action
from customer_r1.world.generate import _element_meta, _products
from customer_r1.world.pages import HOST, Page, build_page
from customer_r1.world.shop import CartItem, Shop, ShopState, step

if TYPE_CHECKING:
    from customer_r1.world.variants import SiteVariant

#: Kinds of invalid actions, as counted in ``StepResult.info["errors"]`` and manifests.
ERROR_KINDS = ("malformed", "unknown_element", "not_an_input", "not_clickable", "after_end",
               "policy_error")
ORDER_KIND = "order"


@dataclass(frozen=True, slots=True)
class PageView:
    """What the shopper sees after an action, plus what a recorder notes about it.

    ``elements`` maps every name on the page to its click type (None: a text input), in
    page order; ``state`` is the shop's state (privileged: only the world's own policy
    reads it); ``products`` / ``element_meta`` describe the last action for the OPeRA row.
    """

    html: str
    url: str
    kind: str
    page_meta: dict[str, Any]
    elements: dict[str, str | None]
    state: dict[str, Any]
    ended: str = ""
    products: list[dict[str, str]] | None = None
    element_meta: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PageView:
        return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls)
                      if f.name in d or f.default is dataclasses.MISSING})


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(ShopState))
_LINE_FIELDS = tuple(f.name for f in dataclasses.fields(CartItem))


def state_to_dict(state: ShopState) -> dict[str, Any]:
    """``dataclasses.asdict(state)``, written out: it runs on every simulated step, and the
    generic version (a deepcopy per field) cost a tenth of the runner's CPU per step."""
    d = {n: getattr(state, n) for n in _STATE_FIELDS}
    for key in ("cart", "saved"):
        d[key] = tuple({n: getattr(line, n) for n in _LINE_FIELDS} for line in d[key])
    return d


def state_from_dict(d: dict[str, Any]) -> ShopState:
    """The inverse of :func:`state_to_dict` (tuples and cart lines restored)."""
    kw = dict(d)
    kw["cart"] = tuple(CartItem(**c) for c in d.get("cart", ()))
    kw["saved"] = tuple(CartItem(**c) for c in d.get("saved", ()))
    kw["deals"] = tuple(d.get("deals", ()))
    return ShopState(**kw)


def draw_deals(shop: Shop, n: int, seed: int) -> tuple[str, ...]:
    """Today's deals of a session: ``n`` distinct products, from the session's seed."""
    ids = sorted(shop.catalog.products)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xDEA1]))
    return tuple(ids[int(i)] for i in rng.choice(len(ids), size=min(n, len(ids)), replace=False))


def validate(action: Action, elements: dict[str, str | None], ended: bool) -> tuple[str, str]:
    """``(kind, message)`` when ``action`` cannot be done on a page with ``elements``
    (name -> click type, None for text inputs); ``("", "")`` when it can."""
    if ended:
        return "after_end", "the session has ended; no action is possible"
    if action.type == "terminate":
        return "", ""
    name = action.name or ""
    if name not in elements:
        return "unknown_element", f"no element named {name!r} on this page"
    is_input = elements[name] is None
    if action.type == "input" and not is_input:
        return "not_an_input", f"{name!r} is not a text field; click it instead"
    return "", ""


def confirmation_html(order_id: str, lines: list[dict[str, str]]) -> str:
    """The page a purchase ends on: the order's lines and no further actions."""
    items = "".join(f"<li>{_esc(x.get('title', ''))} x {_esc(x.get('quantity', '1'))} "
                    f"{_esc(x.get('price', ''))}</li>" for x in lines)
    return (f"<html><body><h1>Thank you, your order has been placed.</h1>"
            f"<p>Order {_esc(order_id)}</p><ul>{items}</ul></body></html>")


def _esc(s: str) -> str:
    from html import escape

    return escape(str(s), quote=False)


@dataclass
class ShopSession:
    """A visitor's state in a (variant of the) shop; see the module doc."""

    shop: Shop
    size: str
    state: ShopState
    variant: SiteVariant | None = None
    order_id: str = ""
    order_lines: list[dict[str, str]] = field(default_factory=list)
    _page: Page | None = None

    @classmethod
    def start(cls, shop: Shop, size: str, seed: int, n_deals: int,
              variant: SiteVariant | None = None, order_id: str = "",
              deals: tuple[str, ...] | None = None) -> ShopSession:
        """A new visit on the home page, today's deals drawn from ``seed`` (or given)."""
        site = shop.with_variant(variant) if variant is not None else shop
        if deals is None:
            deals = draw_deals(site, n_deals, seed)
        unknown = [d for d in deals if d not in site.catalog.products]
        if unknown:
            raise ValueError(f"deals name products the catalog lacks: {unknown}")
        return cls(site, size, ShopState(deals=tuple(deals)), variant, order_id=order_id)

    @property
    def page(self) -> Page:
        if self._page is None:
            self._page = build_page(self.state, self.shop, self.size)  # type: ignore[arg-type]
        return self._page

    @property
    def ended(self) -> str:
        return self.state.ended

    def view(self, last: Action | None = None, before: tuple[ShopState, Page] | None = None) -> PageView:
        """The current page as a :class:`PageView`; ``last``/``before`` describe the action
        that led here (for the purchased lines and element metadata of the OPeRA row)."""
        products = meta = None  # of the action that led here (none for terminate or a focus)
        if last is not None and before is not None and last.type != "terminate":
            st, pg = before
            el = pg.elements.get(last.name or "")
            if el is not None and last.type == "click":
                products = _products(self.shop, st, el.effect.kind)
            meta = _element_meta(self.shop, st, el.meta if el is not None else None, last)
        if self.state.ended == "purchase":
            return PageView(confirmation_html(self.order_id, self.order_lines),
                            f"{HOST}/order/{self.order_id}", ORDER_KIND, {}, {},
                            state_to_dict(self.state), "purchase", products, meta)
        p = self.page
        return PageView(p.html, p.url, p.kind, p.page_meta,
                         {n: e.click_type for n, e in p.elements.items()},
                         state_to_dict(self.state), self.state.ended, products, meta)

    def act(self, action: Action) -> tuple[str, str, tuple[ShopState, Page] | None]:
        """Apply ``action``: ``(error kind, message, (state, page) before)``; on an error
        the state is unchanged and the third item is None."""
        page = self.page if not self.state.ended else None
        elements = {n: e.click_type for n, e in page.elements.items()} if page else {}
        kind, msg = validate(action, elements, bool(self.state.ended))
        if kind:
            return kind, msg, None
        assert page is not None
        before = (self.state, page)
        if action.type == "click" and page.elements[action.name].is_input:  # type: ignore[index]
            return "", "", None  # clicking a text field focuses it: nothing changes
        self.state = step(self.state, action, page.effects)
        self._page = None
        if self.state.ended == "purchase":
            el = page.elements.get(action.name or "")
            self.order_lines = (_products(self.shop, before[0], el.effect.kind) or []) if el else []
        return "", "", before
