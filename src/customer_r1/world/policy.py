"""The shopper policy: motive -> action, scored for a whole population at once.

At each step a motive ``m ~ p(m | page, memory, traits)`` is drawn, then an action
``a ~ p(a | m, page)``; the rationale is written from ``m`` and page facts, so it reveals
``m``. Two rules keep the world's probabilities honest:

* ``p(a | m, page)`` never depends on the traits (a motive that needs a trait, such as
  the favourite brand or a category, carries it as ``Motive.arg``), so the motives of
  earlier steps are a sufficient statistic for what history says about the shopper;
* :class:`Memory` is built only from what a model sees (earlier actions and pages), and
  nothing else is random within a session, so ``p(a | persona, history, page)`` is
  exactly the policy's probability.

Each trait drives one kind of decision with sharp, level-dependent probabilities
(tables below), and traits are independent, so one decision says little about the next:
that is where a model that reads the persona can beat one that cannot.

On a site variant (``shop.variant``) the same rules meet a different page: a rule whose
element is missing (reviews, sort by rating, brand filters, deals, related searches)
passes its share on; a fresh listing in the site's default sort counts as the first look
(where the default already is by price or rating, the shopper who would sort opens the
first result); prices come scaled; and with ratings hidden a product's reviews are
judged by the average stars of the reviews read (:func:`seen_rating`). On the control
site every probability is unchanged. See :mod:`customer_r1.world.variants`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from customer_r1.actions import Action
from customer_r1.world.catalog import Product
from customer_r1.world.pages import Page
from customer_r1.world.persona import ITEM_CAPS, TraitTable
from customer_r1.world.shop import Shop, ShopState

# Probability of the trait-driven choice per Likert level 0..4 (Strongly disagree..agree).
T_SORT_PRICE = np.array([0.03, 0.10, 0.45, 0.85, 0.93])  # price: sort results by price
T_BRAND = np.array([0.03, 0.10, 0.45, 0.85, 0.93])  # loyalty: filter to the favourite brand
T_TOP_RATED = np.array([0.05, 0.12, 0.45, 0.85, 0.92])  # research: sort results by rating
T_REVIEWS = np.array([0.03, 0.10, 0.45, 0.85, 0.93])  # research: read a product's reviews
T_CRITICAL = np.array([0.02, 0.05, 0.20, 0.50, 0.70])  # research: also read critical reviews
T_OPTION = np.array([0.03, 0.10, 0.45, 0.85, 0.93])  # picky: choose a color/size/style
T_QTY = np.array([0.02, 0.08, 0.40, 0.85, 0.92])  # bulk: take two / subscribe
T_STORE = np.array([0.02, 0.08, 0.35, 0.75, 0.88])  # loyalty: visit the favourite's store
T_BUY_NOW = np.array([0.03, 0.10, 0.45, 0.85, 0.93])  # impulse: buy now instead of cart
T_SIDE_CHECKOUT = np.array([0.05, 0.15, 0.35, 0.60, 0.75])  # impulse: checkout from side bar
T_NOT_READY = np.array([0.55, 0.40, 0.25, 0.10, 0.05])  # impulse (low): put the cart off
T_DROP = np.array([0.10, 0.25, 0.55, 0.85, 0.95])  # price: drop an over-budget cart line
T_QUIT = np.array([0.80, 0.55, 0.30, 0.15, 0.06])  # patience (low): give up after a miss
T_COMPARE = np.array([0.03, 0.15, 0.45, 0.75, 0.88])  # patience: look at another before buying
T_STEP_LIMIT = np.array([8, 12, 16, 20, 26])  # patience: steps before fatigue sets in
# Only where a site charges shipping (never on the control site):
T_FEE_BALK = np.array([0.05, 0.15, 0.35, 0.60, 0.75])  # price: leave a cart over a shipping fee
FEE_REF = 10.0  # a fee this size (dollars) or more makes the balk above its full size
CAPS = np.array(ITEM_CAPS)

P_DEAL = 0.08  # open one of today's deals instead of searching
P_SUBMIT = 0.85  # press search rather than take an autocomplete suggestion
P_BROWSE = 0.10  # open some other result than the one the motive points at
P_FATIGUE = 0.5  # once tired, chance per step of giving up
P_REJECT_BAD = 0.85  # leave a product whose reviews (read) show a rating below 4
P_REJECT_OVER = 0.80  # leave a product over the budget
P_LEAVE_CART = 0.35  # after adding: leave it in the cart and stop
P_BACK = 0.93  # from reviews: go back to the product (else give up)
INTEREST_MAIN, INTEREST_SECOND = 0.6, 0.3
BAD_RATING = 4.0


@dataclass(frozen=True, slots=True)
class Motive:
    """Why the shopper acts; ``arg`` carries any trait-dependent target (brand, category)."""

    kind: str
    arg: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


@dataclass(slots=True)
class Memory:
    """What the shopper remembers of this session, rebuilt from observable history only."""

    n_steps: int = 0
    viewed: list[str] = field(default_factory=list)
    reviewed: set[str] = field(default_factory=set)
    critical: set[str] = field(default_factory=set)
    optioned: set[str] = field(default_factory=set)
    qty_done: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    rejected: list[str] = field(default_factory=list)
    compares: int = 0  # products left only to compare (the rationale says so)
    listing_fresh: bool = True  # nothing opened since the listing last changed

    def update(self, state: ShopState, page: Page, action: Action,
               motive: Motive | None = None) -> None:
        """Advance over one observed (page, action, rationale's motive) step."""
        self.n_steps += 1
        if motive is not None and motive.kind == "compare":
            self.compares += 1
        if action.type != "click":
            return
        assert action.name is not None
        e = page.elements[action.name].effect
        if e.kind == "product":
            if e.arg not in self.viewed:
                self.viewed.append(e.arg)
            self.listing_fresh = False
        elif e.kind == "reviews":
            (self.critical if e.arg == "critical" else self.reviewed).add(state.product)
        elif e.kind == "option":
            self.optioned.add(state.product)
        elif e.kind == "qty":
            self.qty_done.add(state.product)
        elif e.kind == "store":
            self.stores.add(e.arg)
        elif e.kind in ("search", "search_term", "sort", "brand", "page"):
            self.listing_fresh = True
        if (state.page == "product" and e.kind in ("back_results", "home")
                and not state.added and state.product not in self.rejected):
            self.rejected.append(state.product)


@dataclass(slots=True)
class Decision:
    """Motives with their probability per shopper, and each motive's action distribution."""

    motives: list[Motive]
    weights: np.ndarray  # [N, M], rows sum to 1 (a transposed view)
    actions: list[Action]  # the support, in page order (terminate last)
    amat: np.ndarray  # [M, K], rows sum to 1
    #: The page facts the decision consulted, as (kind, shown text), in the order read:
    #: prices, ratings, review counts, option values, review snippets, filter labels
    #: (``Page.facts``). What a prompt must still show for the decision to be made.
    evidence: tuple[tuple[str, str], ...] = ()

    def action_probs(self) -> np.ndarray:
        """p(a | page, memory, traits) for every shopper: [N, K]."""
        return self.weights @ self.amat


class _Builder:
    """Gates take a share of the probability mass still unassigned; ``share`` splits the rest."""

    def __init__(self, n: int) -> None:
        self.rest = np.ones(n)
        self.items: list[tuple[Motive, np.ndarray, list[tuple[Action, float]]]] = []
        self.read: dict[str, str] = {}  # fact key -> shown text, in the order consulted

    def see(self, page: Page, *keys: str) -> None:
        """Note page facts the decision reads (keys the page does not show are skipped:
        a site variant may hide ratings, reviews or filters). Never changes a draw."""
        for k in keys:
            if k in page.facts and k not in self.read:
                self.read[k] = page.facts[k]

    def gate(self, motive: Motive, p: float | np.ndarray,
             acts: list[tuple[Action, float]]) -> None:
        if not acts:
            return
        if np.ndim(p) == 0:
            if p <= 0:
                return
            w = self.rest * float(p)
        else:
            w = self.rest * p
            if not w.any():
                return
        self.rest = self.rest - w
        self.items.append((motive, w, acts))

    def share(self, opts: list[tuple[Motive, float | np.ndarray, list[tuple[Action, float]]]]
              ) -> None:
        opts = [o for o in opts if o[2]]
        if not opts:
            raise ValueError("no available motive to share the rest among")
        total = sum(f for _, f, _ in opts)
        scale = self.rest / total
        for m, f, acts in opts:
            if np.ndim(f) == 0 and f <= 0:
                continue
            w = scale * f
            if np.ndim(f) == 0 or w.any():
                self.items.append((m, w, acts))
        self.rest = np.zeros_like(self.rest)

    def done(self, page: Page) -> Decision:
        if np.any(np.abs(self.rest) > 1e-9):
            raise AssertionError("decision left probability mass unassigned")
        merged: dict[Motive, tuple[np.ndarray, list[tuple[Action, float]]]] = {}
        for m, w, acts in self.items:
            if m in merged:
                raise AssertionError(f"motive {m} listed twice")
            merged[m] = (w, acts)
        support = {a for _, (_, acts) in merged.items() for a, p in acts if p > 0}
        order = {n: i for i, n in enumerate(page.elements)}

        def pos(a: Action) -> tuple[int, str]:
            if a.type == "terminate":
                return (len(order), "")
            return (order[a.name], a.text or "")  # type: ignore[index]

        actions = sorted(support, key=pos)
        col = {a: i for i, a in enumerate(actions)}
        motives = list(merged)
        amat = np.zeros((len(motives), len(actions)))
        for i, m in enumerate(motives):
            for a, p in merged[m][1]:
                amat[i, col[a]] += p
        weights = np.stack([merged[m][0] for m in motives]).T
        evidence = tuple((k.split(":", 1)[0], v) for k, v in self.read.items())
        return Decision(motives, weights, actions, amat, evidence)


def _one(page: Page, role: str) -> list[tuple[Action, float]]:
    name = page.roles.get(role)
    return [(Action.click(name), 1.0)] if name else []


def _uniform(actions: list[Action]) -> list[tuple[Action, float]]:
    return [(a, 1.0 / len(actions)) for a in actions] if actions else []


_TERMINATE = [(Action.terminate(), 1.0)]


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What the policy may look at: the shop, the state and page shown, and memory."""

    shop: Shop
    state: ShopState
    page: Page
    memory: Memory
    max_steps: int


def decide(ctx: PolicyContext, t: TraitTable) -> Decision:
    """The policy's motive and action distributions at this step, for every row of ``t``."""
    b = _Builder(t.n)
    mem, state, page = ctx.memory, ctx.state, ctx.page
    if mem.n_steps >= ctx.max_steps - 1:
        b.gate(Motive("fatigue"), 1.0, _TERMINATE)
        return b.done(page)
    if not state.typed and mem.n_steps > 0:
        tired = (mem.n_steps >= T_STEP_LIMIT[t.patience]).astype(float)
        b.gate(Motive("fatigue"), P_FATIGUE * tired, _TERMINATE)
    if state.typed:
        _typed(b, ctx)
    elif state.page == "home":
        _home(b, ctx, t)
    elif state.page == "search":
        _search(b, ctx, t)
    elif state.page == "product":
        if state.added:
            _after_add(b, ctx, t)
        else:
            _product(b, ctx, t)
    elif state.page == "reviews":
        _reviews(b, ctx, t)
    elif state.page == "store":
        _store(b, ctx)
    elif state.page == "cart":
        _cart(b, ctx, t)
    return b.done(page)


def _typed(b: _Builder, ctx: PolicyContext) -> None:
    page = ctx.page
    sugg = [Action.click(n) for r, n in page.roles.items() if r.startswith("suggestion:")]
    b.see(page, *(r for r in page.roles if r.startswith("suggestion:")))
    b.share([(Motive("submit"), P_SUBMIT, _one(page, "search_button")),
             (Motive("suggestion"), 1 - P_SUBMIT, _uniform(sugg))])


def interest(t: TraitTable, n_categories: int) -> np.ndarray:
    """p(category | shopper): [N, C]; main interest 0.6, second 0.3, the rest share 0.1."""
    key = f"interest{n_categories}"
    if key in t.cache:
        return t.cache[key]
    other = (1.0 - INTEREST_MAIN - INTEREST_SECOND) / max(1, n_categories - 2)
    m = np.full((t.n, n_categories), other if n_categories > 2 else 0.0)
    rows = np.arange(t.n)
    m[rows, t.cat1] = INTEREST_MAIN
    m[rows, t.cat2] = INTEREST_SECOND
    t.cache[key] = m / m.sum(axis=1, keepdims=True)
    return t.cache[key]


def _items(page: Page, ids: list[str] | tuple[str, ...]) -> list[Action]:
    """Clicks on the listed products that the page links (all of them, on every site)."""
    return [Action.click(page.roles[f"item:{p}"]) for p in ids if f"item:{p}" in page.roles]


def _home(b: _Builder, ctx: PolicyContext, t: TraitTable) -> None:
    page, cat = ctx.page, ctx.shop.catalog
    box = page.roles.get("search_input")
    deals = _items(page, page.listing)  # none on a site without deals
    b.see(page, *(f"{k}:{p}" for p in page.listing for k in ("title", "price")))
    inter = interest(t, len(cat.categories))
    opts: list[tuple[Motive, float | np.ndarray, list[tuple[Action, float]]]] = [
        (Motive("deal"), P_DEAL, _uniform(deals))]
    for ci, c in enumerate(cat.categories):
        acts = _uniform([Action.input(box, q) for q in cat.queries(c.key)] if box else [])
        opts.append((Motive("search", c.key), (1 - P_DEAL) * inter[:, ci], acts))
    b.share(opts)


def _open(page: Page, pid: str | None) -> list[tuple[Action, float]]:
    return _one(page, f"item:{pid}") if pid else []


def _search(b: _Builder, ctx: PolicyContext, t: TraitTable) -> None:
    page, state, mem, shop = ctx.page, ctx.state, ctx.memory, ctx.shop
    ids = list(page.listing)
    browse = _uniform(_items(page, ids))
    brands = list(shop.catalog.brands)
    # The listing as scanned: each result's title, price, rating and review count.
    b.see(page, *(f"{k}:{p}" for p in ids for k in ("title", "price", "rating", "reviews")))
    if ids and mem.listing_fresh and state.sort == shop.variant.default_sort \
            and not state.brand and state.page_no == 1:
        # First look at a fresh search: loyalty, then price, then research decide. On a
        # site that already sorts by price (rating), the shopper who would sort by it
        # opens the first, cheapest (top-rated) result instead.
        b.see(page, *(f"filter:{r.split(':', 1)[1]}" for r in page.roles if r.startswith("brand:")))
        b.see(page, "sort:price", "sort:rating")
        for role, name in page.roles.items():
            if role.startswith("brand:"):
                bi = brands.index(role.split(":", 1)[1])
                b.gate(Motive("brand", role.split(":", 1)[1]),
                       T_BRAND[t.loyalty] * (t.fav_brand == bi), [(Action.click(name), 1.0)])
        if state.sort == "price":
            b.gate(Motive("cheapest"), T_SORT_PRICE[t.price], _open(page, ids[0]))
        else:
            b.gate(Motive("sort_price"), T_SORT_PRICE[t.price], _one(page, "sort_price"))
        tr = T_TOP_RATED[t.research]
        rated = (Motive("top_rated"), tr, _open(page, ids[0])) if state.sort == "rating" \
            else (Motive("sort_rating"), tr, _one(page, "sort_rating"))
        b.share([rated,
                 (Motive("first"), (1 - tr) * (1 - P_BROWSE), _open(page, ids[0])),
                 (Motive("browse"), (1 - tr) * P_BROWSE, browse)])
        return
    if ids and mem.listing_fresh:
        kind = {"price": "cheapest", "rating": "top_rated"}.get(
            state.sort, "brand_first" if state.brand else "first")
        if state.page_no > 1:
            kind = "next_page_first"
        b.share([(Motive(kind), 1 - P_BROWSE, _open(page, ids[0])),
                 (Motive("browse"), P_BROWSE, browse)])
        return
    # Back from a product that did not suit: patience decides whether to go on.
    if len(mem.rejected) > mem.compares:
        b.gate(Motive("quit"), T_QUIT[t.patience], _TERMINATE)
    unseen = [p for p in ids if p not in mem.viewed]
    related = [Action.click(n) for r, n in page.roles.items() if r.startswith("related:")]
    b.see(page, *(r for r in page.roles if r.startswith("related:")))
    cat = shop.catalog.query_category.get(state.query, "")
    others = [q for q in shop.catalog.queries(cat) if q != state.query] if cat else []
    box = page.roles.get("search_input")
    refine = _uniform([Action.input(box, q) for q in others] if box else [])
    if unseen:
        opts = [(Motive("next_unseen"), 0.8, _open(page, unseen[0])),
                (Motive("related"), 0.1, _uniform(related)),
                (Motive("refine"), 0.1, refine)]
    else:
        opts = [(Motive("next_page"), 0.7, _one(page, "next_page")),
                (Motive("related"), 0.15, _uniform(related)),
                (Motive("refine"), 0.15, refine)]
    if not any(acts for _, _, acts in opts):
        opts = [(Motive("nothing_left"), 1.0, _TERMINATE)]
    b.share(opts)


def option_choice(ctx: PolicyContext) -> tuple[str, str]:
    """(cheapest alternative, first alternative) option values of the current product."""
    p = ctx.shop.catalog.products[ctx.state.product]
    chosen = ctx.state.option or p.option_values[0]
    alts = [(v, pr) for v, pr in zip(p.option_values, p.option_prices, strict=True)
            if v != chosen]
    cheapest = min(alts, key=lambda x: (x[1], p.option_values.index(x[0])))[0]
    return cheapest, alts[0][0]


def _reject(page: Page) -> list[tuple[Action, float]]:
    return _one(page, "back_results") or _one(page, "home")


def _product(b: _Builder, ctx: PolicyContext, t: TraitTable) -> None:
    page, state, mem, shop = ctx.page, ctx.state, ctx.memory, ctx.shop
    p = shop.catalog.products[state.product]
    pid = p.pid
    if shop.variant.unavailable(pid):
        # Out of stock: nothing to buy here, so back to look for another.
        b.see(page, f"title:{pid}", "stock")
        b.gate(Motive("unavailable"), 1.0, _reject(page))
        return
    # Which product at what price (the budget), how rated and by how many, its options
    # and what each costs, and whose store.
    b.see(page, f"title:{pid}", f"price:{pid}", f"rating:{pid}", f"reviews:{pid}")
    b.see(page, *(f"{k}:{v}" for v in p.option_values for k in ("option", "option_price")))
    b.see(page, "brand")
    if pid not in mem.reviewed:
        b.gate(Motive("reviews"), T_REVIEWS[t.research], _one(page, "reviews"))
    if p.option_dim and pid not in mem.optioned:
        cheap, first = option_choice(ctx)
        po = T_OPTION[t.picky]
        b.gate(Motive("option_cheap", cheap), po * (t.price >= 3), _one(page, f"option:{cheap}"))
        b.gate(Motive("option", first), po * (t.price < 3), _one(page, f"option:{first}"))
    if pid not in mem.qty_done:
        if p.subscribable:
            b.gate(Motive("subscribe"), T_QTY[t.bulk], _one(page, "subscribe"))
        else:
            b.gate(Motive("quantity"), T_QTY[t.bulk], _one(page, "qty:2"))
    if p.brand not in mem.stores:
        bi = list(shop.catalog.brands).index(p.brand)
        b.gate(Motive("store", p.brand), T_STORE[t.loyalty] * (t.fav_brand == bi),
               _one(page, "store"))
    if pid in mem.reviewed and seen_rating(shop, p) < BAD_RATING:
        b.gate(Motive("bad_reviews"), P_REJECT_BAD, _reject(page))
    # The budget check weighs what the order costs: on a site with a coupon or a shipping
    # fee, the shown price with the coupon off and the fee on (``SiteVariant.pays``).
    b.see(page, "coupon", "shipping")
    cost = shop.variant.pays(p.price_for(state.option) * state.qty)
    over = (cost > CAPS[t.budget]).astype(float)
    b.gate(Motive("over_budget"), P_REJECT_OVER * over, _reject(page))
    if state.query:
        # Patient shoppers look at one (level 2), two (3) or three (4) alternatives first.
        wants = len(mem.viewed) < t.patience
        b.gate(Motive("compare"), T_COMPARE[t.patience] * wants, _reject(page))
    bn = T_BUY_NOW[t.impulse]
    b.share([(Motive("buy_now"), bn, _one(page, "buy_now")),
             (Motive("add_to_cart"), 1 - bn, _one(page, "add"))])


def seen_rating(shop: Shop, p: Product) -> float:
    """The rating a shopper who read a product's reviews judges it by: the shown rating,
    or where the site hides ratings the average stars of its reviews (one decimal)."""
    if not shop.variant.hide_ratings or not p.reviews:
        return p.rating
    return round(sum(r.stars for r in p.reviews) / len(p.reviews), 1)


def _after_add(b: _Builder, ctx: PolicyContext, t: TraitTable) -> None:
    page = ctx.page
    b.gate(Motive("side_checkout"), T_SIDE_CHECKOUT[t.impulse], _one(page, "side_checkout"))
    to_cart = [(a, 0.7 * p) for a, p in _one(page, "side_cart")] + \
              [(a, 0.3 * p) for a, p in _one(page, "cart")]
    b.share([(Motive("review_cart"), 1 - P_LEAVE_CART, to_cart),
             (Motive("leave_in_cart"), P_LEAVE_CART, _TERMINATE)])


def _reviews(b: _Builder, ctx: PolicyContext, t: TraitTable) -> None:
    page, state, mem = ctx.page, ctx.state, ctx.memory
    b.see(page, f"rating:{state.product}", *(k for k in page.facts if k.startswith("review:")))
    if state.review_view == "top" and state.product not in mem.critical:
        b.gate(Motive("critical"), T_CRITICAL[t.research], _one(page, "critical"))
    b.share([(Motive("back_to_product"), P_BACK, _one(page, "back_product")),
             (Motive("lost_interest"), 1 - P_BACK, _TERMINATE)])


def _store(b: _Builder, ctx: PolicyContext) -> None:
    page, mem = ctx.page, ctx.memory
    unseen = [p for p in page.listing if p not in mem.viewed]
    b.see(page, *(f"{k}:{p}" for p in page.listing for k in ("title", "price", "rating", "reviews")))
    b.share([(Motive("store_pick"), 0.85, _open(page, unseen[0] if unseen else None)),
             (Motive("store_leave"), 0.15, _reject(page))])


def _cart(b: _Builder, ctx: PolicyContext, t: TraitTable) -> None:
    page, state, shop = ctx.page, ctx.state, ctx.shop
    prods = shop.catalog.products
    if not state.cart:
        b.share([(Motive("cart_emptied"), 0.75, _TERMINATE),
                 (Motive("continue"), 0.25, _one(page, "continue"))])
        return
    total = shop.cart_total(state.cart)
    v = shop.variant
    b.see(page, *(f"price:{c.pid}" for c in state.cart), "subtotal", "coupon", "shipping",
          "order_total")
    priciest = max(state.cart, key=lambda c: prods[c.pid].price_for(c.option) * c.qty).pid
    over = (v.pays(total) > CAPS[t.budget]).astype(float)
    b.gate(Motive("drop"), T_DROP[t.price] * over, _one(page, f"delete:{priciest}"))
    fee = v.shipping(round(total * (1.0 - v.coupon), 2)) if v.shipping_fee else 0.0
    if fee > 0:
        # A shipping charge first seen at the cart: price-minded shoppers balk at it, the
        # more the larger the fee.
        b.gate(Motive("shipping_fee"), T_FEE_BALK[t.price] * min(1.0, fee / FEE_REF), _TERMINATE)
    b.gate(Motive("not_ready"), T_NOT_READY[t.impulse], _one(page, f"save:{state.cart[0].pid}"))
    b.share([(Motive("checkout"), 1.0, _one(page, "checkout"))])
