"""Site variants: UX levers of the shop that can be changed without retraining.

A :class:`SiteVariant` is a small frozen config whose defaults are the control site
(:data:`CONTROL`). ``shop.with_variant(variant)`` returns a new :class:`~customer_r1.world.shop.Shop`
that implements it; the pages (``pages.build_page``) and the transitions (``shop.step``)
read it from there, so the same variant runs in process, over HTTP and in
:func:`~customer_r1.world.generate.generate_world` (``WorldConfig.variant_mix``). On the
control site every page is byte-identical to the shop without variants.

Fields (each a real UX lever; :data:`BUILTIN_VARIANTS` holds one built-in per lever):

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
_FACTOR_MAX = 10.0
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

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _check(f.name, getattr(self, f.name)))
        if self.hide_ratings and self.default_sort == "rating":
            raise ValueError("default_sort 'rating' needs the ratings shown (hide_ratings)")

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
        if not (math.isfinite(x) and 0.0 < x <= _FACTOR_MAX):
            raise ValueError(f"{key} must be in (0, {_FACTOR_MAX:g}], got {value!r}")
        return x
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    if key == "default_sort" and value not in SORTS:
        raise ValueError(f"default_sort must be one of {', '.join(SORTS)}, got {value!r}")
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
)}


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
