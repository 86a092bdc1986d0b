"""Site variants: UX levers of the shop that can be changed without retraining.

A :class:`SiteVariant` is a small frozen config whose defaults are the control site
(:data:`CONTROL`). ``shop.with_variant(variant)`` returns a new :class:`~customer_r1.world.shop.Shop`
that implements it; the pages (``pages.build_page``) and the transitions (``shop.step``)
read it from there, so the same variant runs in process, over HTTP and in
:func:`~customer_r1.world.generate.generate_world` (``WorldConfig.variant_mix``). On the
control site every page is byte-identical to the shop without variants.

Fields (each a real UX lever; :data:`BUILTIN_VARIANTS` holds at least one built-in per lever):

``name``
    How the variant is reported (``control``; combined variants join names with ``+``).
``hide_reviews``
    No "See all reviews" link, no review snippets on the product page; the reviews page
    (reachable only by typing its address) says reviews are not available.
``hide_ratings``
    No aggregate star rating or rating count anywhere (listings, titles, product page,
    reviews page, product details, descriptions, page_meta) and no "sort by rating"
    option. Individual reviews keep their stars.
``price_factor``
    Every price (base and option prices) multiplied and rounded to cents.
``default_sort``
    The order a new search starts in: ``featured`` (relevance), ``price`` or ``rating``.
``results_per_page_factor``
    Results per search page scaled (rounded half up, at least 1).
``brand_filters`` / ``deals`` / ``related_searches``
    ``False`` removes the brand filter (links and label), the home page's "Today's deals"
    region, the related searches under a listing.
``add_to_cart_below_details``
    The buybox (quantity, add to cart, buy now, subscribe) comes after the product
    details and description (compact pages: after the rest of the product block).
``add_goes_to_cart``
    Add to Cart opens the cart page instead of showing the "added" side bar.
``ranking``
    ``relevance``, or ``sponsored``: the featured order puts the lowest-rated products
    (sponsored placements) on top.
``sort_options`` / ``search_suggestions`` / ``buy_now`` / ``side_checkout`` / ``save_for_later``
    ``False`` removes the sort select, the autocomplete under the search box, the Buy Now
    button, the side bar's Proceed to checkout, the cart's Save for later.
``shipping_fee`` / ``free_shipping_over``
    A flat shipping fee per order (dollars, stated on the product page, charged in the
    cart), free at or above ``free_shipping_over`` (0: never free).
``coupon``
    A share taken off every order at checkout (stated on the product page and the cart).
``out_of_stock``
    The share of products shown as "Currently unavailable" (no buybox): a fixed set
    chosen by a hash of the product id, nested as the share grows.
``label_synonyms`` / ``nav_reordered`` / ``extra_wrappers`` / ``banner`` / ``image_alt`` / ``footer_links``
    Cosmetic levers (:data:`COSMETIC_FIELDS`): other words for the same labels, the cart
    link first in the navigation, more markup around the same elements, a banner's text,
    photos' alt text, a footer's links (reordered on OPeRA-sized pages). The world's
    shopper never reads them, so a variant that changes only these (a *placebo*,
    :data:`PLACEBO_VARIANTS`) has a true effect of exactly zero under common random
    numbers: every draw and every decision is the same as on the control site.

How the world's true shopper (``policy.decide``) responds, so every A/B test has a known
true effect (the policy's probabilities on the control site are unchanged):

* ``reviews_hidden``: research-minded shoppers cannot read reviews; the "reviews" motive's
  share passes on to the next decisions (options, quantity, store, budget, buy), and no
  product is left for bad reviews, so they buy products they would have rejected.
* ``ratings_hidden``: research-minded shoppers cannot sort by rating and open the first
  result instead; they still read reviews and judge a product by the average stars of
  the reviews they read (not the hidden aggregate rating).
* ``price_up_10`` / ``price_down_10``: the budget checks (leave an over-budget product,
  drop an over-budget cart line) bite more / less often; rationales quote shown prices.
* ``sort_by_price``: a fresh listing is already sorted by price, so a price-minded
  shopper opens the cheapest result at once (motive ``cheapest``) instead of sorting;
  everyone else's first pick is the cheapest product.
* ``results_halved`` / ``results_doubled``: fewer / more results per page, so the shopper's
  "next unseen" and "next page" rules page through the listing more / less often.
* ``no_brand_filters``: loyal shoppers cannot filter to their favourite brand; that share
  goes to the price, research and first-result rules (they can still visit the brand's
  store from a product page).
* ``no_deals``: nobody opens a deal from the home page; the deal share searches instead.
* ``no_related_searches``: the "related" motive's share goes to the other ways on
  (next unseen result, refine the search, next page).
* ``add_to_cart_below``: ignored by the world's shopper (it reads elements, not their
  position): the same probabilities over the same actions, so its true effect is zero by
  construction. A model that reads page order may still react to it.
* ``price_up_25`` / ``price_up_50`` / ``price_down_25``: the budget checks again, further
  across the shoppers' caps.
* ``sort_by_rating``: a fresh listing is sorted by rating: the research-minded open the
  top-rated result at once, everyone else's first pick is top rated, so fewer products
  fail the bad-reviews check.
* ``sponsored_first``: the first result, which most shoppers open, is the lowest rated:
  more products fail the bad-reviews check, more shoppers give up after a miss.
* ``no_sort``: the price- and research-minded cannot sort; their share opens the first
  (relevance-ranked) result or browses.
* ``no_search_suggestions``: the few who would take a suggestion press search.
* ``no_buy_now``: impulsive shoppers add to the cart instead, where the "added" side bar's
  rules (leave it in the cart, review it) lose some of them.
* ``no_side_checkout``: after adding, nobody checks out from the side bar; that share
  reviews the cart or leaves it there.
* ``no_save_for_later``: the not-ready shopper cannot put the cart off; the share passes
  on to checkout (the builder's rule for a missing element).
* ``add_goes_to_cart``: after adding, the shopper is on the cart page, so the side bar's
  "leave it in the cart" decision never comes; the cart's own checks still do.
* ``shipping_fee_5`` / ``shipping_fee_10`` / ``free_shipping_over_50``: the budget checks
  weigh what the order costs with shipping (``SiteVariant.pays``); and a new rule, only
  where a fee is charged: at the cart price-minded shoppers balk at the fee and leave
  (``T_FEE_BALK`` by the price trait, scaled by the fee up to ``FEE_REF`` dollars).
* ``coupon_30``: the budget checks weigh the price with the coupon off.
* ``out_of_stock_10`` / ``out_of_stock_50``: a new rule, only on an unavailable product:
  the shopper goes back (motive ``unavailable``), and the usual "give up after a miss"
  rule (patience) follows.
* placebos (``placebo_*``): no rule reads a cosmetic field; the same decisions, draws and
  outcomes as on the control site, session by session.

Variants combine (:func:`combine`: the union of their changes; setting one field to two
values is an error) and load from a built-in name or a YAML file (:func:`load_variant`)::

    name: cheap_no_reviews
    extends: [price_down_10]      # optional: built-in names, combined first
    hide_reviews: true            # any field above; explicit fields override extends
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customer_r1.errors import BadInput, BadOption, MissingInput

if TYPE_CHECKING:
    from customer_r1.world.catalog import Product

SORTS: tuple[str, ...] = ("featured", "price", "rating")
RANKINGS: tuple[str, ...] = ("relevance", "sponsored")
_FACTOR_MAX = 10.0
#: (low, high, low excluded) of the number fields that are not factors.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "shipping_fee": (0.0, 100.0, False), "free_shipping_over": (0.0, 10_000.0, False),
    "coupon": (0.0, 0.9, False), "out_of_stock": (0.0, 1.0, False)}
_RATING_SENTENCE = re.compile(r"\s*Rated [0-9.]+ out of 5 by [0-9]+ shoppers\.")


@dataclass(frozen=True, slots=True)
class SiteVariant:
    """A site variant; the defaults are the control site (see the module doc)."""

    name: str = "control"
    hide_reviews: bool = False
    hide_ratings: bool = False
    price_factor: float = 1.0
    default_sort: str = "featured"
    results_per_page_factor: float = 1.0
    brand_filters: bool = True
    deals: bool = True
    related_searches: bool = True
    add_to_cart_below_details: bool = False
    add_goes_to_cart: bool = False
    ranking: str = "relevance"
    sort_options: bool = True
    search_suggestions: bool = True
    buy_now: bool = True
    side_checkout: bool = True
    save_for_later: bool = True
    shipping_fee: float = 0.0
    free_shipping_over: float = 0.0
    coupon: float = 0.0
    out_of_stock: float = 0.0
    # cosmetic levers (placebos: the world's shopper never reads them)
    label_synonyms: bool = False
    nav_reordered: bool = False
    extra_wrappers: bool = False
    banner: str = ""
    image_alt: bool = False
    footer_links: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _check(f.name, getattr(self, f.name)))
        if self.hide_ratings and self.default_sort == "rating":
            raise ValueError("default_sort 'rating' needs the ratings shown (hide_ratings)")
        if not self.sort_options and self.default_sort != "featured":
            raise ValueError("a default_sort needs the sort options (sort_options)")
        if self.free_shipping_over and not self.shipping_fee:
            raise ValueError("free_shipping_over needs a shipping_fee")

    # --- what it changes

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the control site (``name`` aside)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "name" and getattr(self, f.name) != f.default}

    @property
    def is_control(self) -> bool:
        """True when nothing differs from the control site (whatever the name)."""
        return not self.changes()

    @property
    def is_cosmetic(self) -> bool:
        """True when only cosmetic levers differ (:data:`COSMETIC_FIELDS`): a placebo, whose
        true effect is zero by construction (the world's shopper never reads them)."""
        ch = self.changes()
        return bool(ch) and set(ch) <= set(COSMETIC_FIELDS)

    def shipping(self, subtotal: float) -> float:
        """The shipping fee charged on an order of ``subtotal`` (0 on the control site)."""
        if not self.shipping_fee or (self.free_shipping_over and subtotal >= self.free_shipping_over):
            return 0.0
        return self.shipping_fee

    def pays(self, subtotal: float) -> float:
        """What an order of ``subtotal`` (shown prices) costs the shopper: the coupon taken
        off, shipping added. On a site without either it is ``subtotal`` itself."""
        if not self.coupon and not self.shipping_fee:
            return subtotal
        after = round(subtotal * (1.0 - self.coupon), 2)
        return round(after + self.shipping(after), 2)

    def unavailable(self, pid: str) -> bool:
        """Whether product ``pid`` shows as out of stock: a fixed share of the catalog,
        chosen by a hash of the id (no random draws), nested as the share grows."""
        if not self.out_of_stock:
            return False
        from customer_r1.world.catalog import _stable_hash

        return (_stable_hash(f"stock|{pid}") % 10_000) < self.out_of_stock * 10_000

    @property
    def sort_key(self) -> str:
        """The sort a new search starts with, as a search ``Effect`` carries it
        (``""`` for featured, so the control site's effects are unchanged)."""
        return "" if self.default_sort == "featured" else self.default_sort

    def results_per_page(self, k: int) -> int:
        """``k`` results per page scaled by the variant: rounded half up, at least 1."""
        if self.results_per_page_factor == 1.0:
            return k
        return max(1, math.floor(k * self.results_per_page_factor + 0.5))

    def price(self, x: float) -> float:
        """A price as this site shows it (scaled, rounded to cents)."""
        return x if self.price_factor == 1.0 else round(x * self.price_factor, 2)

    def product(self, p: Product) -> Product:
        """A product as this site shows it: prices scaled, rating sentences dropped from
        its description when ratings are hidden (the shop applies it to its catalog)."""
        kw: dict[str, Any] = {}
        if self.price_factor != 1.0:
            kw["price"] = self.price(p.price)
            kw["option_prices"] = tuple(self.price(x) for x in p.option_prices)
        if self.hide_ratings:
            kw["description"] = _RATING_SENTENCE.sub("", p.description)
        return dataclasses.replace(p, **kw)

    # --- serialisation

    def to_dict(self) -> dict[str, Any]:
        """Every field (JSON-serialisable); :meth:`from_dict` reads it back."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "variant") -> SiteVariant:
        """The variant of a :meth:`to_dict` mapping (missing fields take control's
        values). An unknown key or a bad value raises ``BadInput`` naming ``where``."""
        if not isinstance(d, Mapping):
            raise BadInput(f"a site variant must be a mapping, got {type(d).__name__}", where,
                           f"give fields among {', '.join(FIELD_NAMES)}")
        kw: dict[str, Any] = {}
        for key, value in d.items():
            kw[str(key)] = _field_value(str(key), value, where)
        try:
            return cls(**kw)
        except ValueError as exc:
            raise BadInput(f"inconsistent site variant: {exc}", where,
                           "drop one of the conflicting fields") from exc


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SiteVariant))
#: The cosmetic levers: what a person would call the same site (labels, order of links,
#: markup, banner and alt text, a footer). The world's shopper never reads them.
COSMETIC_FIELDS: tuple[str, ...] = ("label_synonyms", "nav_reordered", "extra_wrappers", "banner",
                                    "image_alt", "footer_links")
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(SiteVariant)}


def _check(key: str, value: Any) -> Any:
    """A field's value, checked (and ints made floats for the factors); ValueError if bad."""
    default = _DEFAULTS[key]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number, got {value!r}")
        x = float(value)
        lo, hi, open_lo = _RANGES.get(key, (0.0, _FACTOR_MAX, True))
        if not (math.isfinite(x) and (lo < x if open_lo else lo <= x) and x <= hi):
            raise ValueError(f"{key} must be in {'(' if open_lo else '['}{lo:g}, {hi:g}], "
                             f"got {value!r}")
        return x
    if key == "banner":
        if not isinstance(value, str):
            raise ValueError(f"banner must be a string, got {value!r}")
        return value.strip()
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    if key == "default_sort" and value not in SORTS:
        raise ValueError(f"default_sort must be one of {', '.join(SORTS)}, got {value!r}")
    if key == "ranking" and value not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {value!r}")
    return value


def _field_value(key: str, value: Any, where: str) -> Any:
    if key not in _DEFAULTS:
        raise BadInput(f"unknown site variant field {key!r}", f"{where}: {key}",
                       f"known fields: {', '.join(FIELD_NAMES)}")
    try:
        return _check(key, value)
    except ValueError as exc:
        raise BadInput(f"bad value for {key!r}: {exc}", f"{where}: {key}",
                       "see customer_r1.world.variants for the fields") from exc


CONTROL = SiteVariant()

#: The built-in variants, one per UX lever (and the control site).
BUILTIN_VARIANTS: dict[str, SiteVariant] = {v.name: v for v in (
    CONTROL,
    SiteVariant("reviews_hidden", hide_reviews=True),
    SiteVariant("ratings_hidden", hide_ratings=True),
    SiteVariant("price_up_10", price_factor=1.1),
    SiteVariant("price_down_10", price_factor=0.9),
    SiteVariant("sort_by_price", default_sort="price"),
    SiteVariant("results_halved", results_per_page_factor=0.5),
    SiteVariant("results_doubled", results_per_page_factor=2.0),
    SiteVariant("no_brand_filters", brand_filters=False),
    SiteVariant("no_deals", deals=False),
    SiteVariant("no_related_searches", related_searches=False),
    SiteVariant("add_to_cart_below", add_to_cart_below_details=True),
    SiteVariant("price_up_25", price_factor=1.25),
    SiteVariant("price_up_50", price_factor=1.5),
    SiteVariant("price_down_25", price_factor=0.75),
    SiteVariant("sort_by_rating", default_sort="rating"),
    SiteVariant("sponsored_first", ranking="sponsored"),
    SiteVariant("no_sort", sort_options=False),
    SiteVariant("no_search_suggestions", search_suggestions=False),
    SiteVariant("no_buy_now", buy_now=False),
    SiteVariant("no_side_checkout", side_checkout=False),
    SiteVariant("no_save_for_later", save_for_later=False),
    SiteVariant("add_goes_to_cart", add_goes_to_cart=True),
    SiteVariant("shipping_fee_5", shipping_fee=4.99),
    SiteVariant("shipping_fee_10", shipping_fee=9.99),
    SiteVariant("free_shipping_over_50", shipping_fee=9.99, free_shipping_over=50.0),
    SiteVariant("coupon_30", coupon=0.3),
    SiteVariant("out_of_stock_10", out_of_stock=0.1),
    SiteVariant("out_of_stock_50", out_of_stock=0.5),
    # placebos: cosmetic changes the world's shopper ignores by construction
    SiteVariant("placebo_labels", label_synonyms=True),
    SiteVariant("placebo_nav_order", nav_reordered=True),
    SiteVariant("placebo_wrappers", extra_wrappers=True),
    SiteVariant("placebo_banner", banner="New arrivals every week. Free returns on most items."),
    SiteVariant("placebo_alt_text", image_alt=True),
    SiteVariant("placebo_footer", footer_links=True),
)}

#: The built-in placebos (cosmetic only; true effect exactly zero under common random numbers).
PLACEBO_VARIANTS: tuple[str, ...] = tuple(n for n, v in BUILTIN_VARIANTS.items() if v.is_cosmetic)
#: The built-in variants with a real change (neither control nor a placebo).
REAL_VARIANTS: tuple[str, ...] = tuple(n for n, v in BUILTIN_VARIANTS.items()
                                       if not v.is_control and not v.is_cosmetic)


def combine(variants: Iterable[SiteVariant]) -> SiteVariant:
    """One variant with every change of ``variants``; names joined with ``+`` (control
    and repeated names left out). Two variants that set a field to different values
    raise ``BadOption`` naming both."""
    vs = list(variants)
    changes: dict[str, Any] = {}
    setter: dict[str, str] = {}
    names: list[str] = []
    for v in vs:
        for key, value in v.changes().items():
            if key in changes and changes[key] != value:
                raise BadOption(
                    f"site variants {setter[key]!r} and {v.name!r} both set {key} "
                    f"({changes[key]!r} vs {value!r})", "--variant",
                    "combine variants that change different things")
            changes[key] = value
            setter.setdefault(key, v.name)
        if not v.is_control and v.name not in names:
            names.append(v.name)
    if not changes:
        return vs[0] if len(vs) == 1 else CONTROL
    changed = [v for v in vs if not v.is_control]
    if all(v == changed[0] for v in changed):
        return changed[0]
    try:
        return SiteVariant("+".join(names), **changes)
    except ValueError as exc:
        raise BadOption(f"site variants {', '.join(names)} do not combine: {exc}",
                        "--variant", "combine variants that change different things") from exc


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec


def load_variant(spec: str) -> SiteVariant:
    """A built-in variant by name, or a variant from a YAML file (see the module doc)."""
    spec = str(spec).strip()
    if spec in BUILTIN_VARIANTS:
        return BUILTIN_VARIANTS[spec]
    path = Path(spec)
    if path.is_file():
        return _load_yaml(path)
    if _looks_like_path(spec):
        raise MissingInput(f"no site variant file at {spec}", spec,
                           f"give a YAML file or a built-in: {', '.join(BUILTIN_VARIANTS)}")
    raise BadOption(f"unknown site variant {spec!r}", "--variant",
                    f"built-in variants: {', '.join(BUILTIN_VARIANTS)}; or a YAML file")


def _load_yaml(path: Path) -> SiteVariant:
    import yaml

    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadInput(f"unreadable site variant file: {' '.join(str(exc).split())}", where,
                       "write a YAML mapping of variant fields") from exc
    if not isinstance(data, dict):
        raise BadInput("a site variant file must hold a YAML mapping", where,
                       f"fields: extends, {', '.join(FIELD_NAMES)}")
    data = dict(data)
    extends = data.pop("extends", [])
    if isinstance(extends, str):
        extends = [extends]
    if not isinstance(extends, list) or not all(isinstance(x, str) for x in extends):
        raise BadInput("extends must be a list of built-in variant names", f"{where}: extends",
                       f"built-in variants: {', '.join(BUILTIN_VARIANTS)}")
    unknown = [x for x in extends if x not in BUILTIN_VARIANTS]
    if unknown:
        raise BadInput(f"unknown built-in variant(s) {', '.join(map(repr, unknown))}",
                       f"{where}: extends", f"built-in variants: {', '.join(BUILTIN_VARIANTS)}")
    own = {str(k): _field_value(str(k), v, where) for k, v in data.items()}
    try:
        base = combine(BUILTIN_VARIANTS[x] for x in extends)
    except BadOption as exc:
        raise BadInput(exc.what, f"{where}: extends", exc.hint) from exc
    kw = base.changes() | {k: v for k, v in own.items() if k != "name"}
    name = own.get("name") or path.stem
    try:
        return SiteVariant(name, **kw)
    except ValueError as exc:
        raise BadInput(f"inconsistent site variant: {exc}", where,
                       "drop one of the conflicting fields") from exc


def resolve_variants(specs: Iterable[str] | None) -> SiteVariant:
    """The variant of repeated ``--variant`` options: CONTROL when none, else the
    combination of each one's :func:`load_variant`."""
    specs = list(specs or [])
    if not specs:
        return CONTROL
    return combine(load_variant(s) for s in specs)
