"""A seeded product catalog: categories, brands and products with options and reviews.

Titles are short (brand + adjective + noun) so that compact pages stay a few tokens
per element; prices, ratings and option price differences are spread enough that
budget and rating checks in the shopper policy bite on some products and not others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from customer_r1.world.naming import slug


@dataclass(frozen=True, slots=True)
class CategorySpec:
    """Fixed description of a product category (what varies per seed lives in Product)."""

    key: str
    label: str  # plural phrase used in persona text and rationales
    noun: str  # last word of every product title
    queries: tuple[str, ...]  # search phrasings, unique across categories
    base_price: float
    option_dim: str  # color / size / style / "" (no options)
    option_values: tuple[str, ...]
    adjectives: tuple[str, ...]
    subscribable: bool = False


CATEGORY_SPECS: tuple[CategorySpec, ...] = (
    CategorySpec("headphones", "headphones", "Headphones",
                 ("wireless headphones", "bluetooth headphones", "noise cancelling headphones"),
                 70.0, "color", ("black", "white", "navy", "rose"),
                 ("Pro", "Air", "Bass", "Studio", "Sport", "Quiet", "Max", "Lite")),
    CategorySpec("coffee", "coffee", "Coffee",
                 ("coffee beans", "ground coffee", "espresso beans"),
                 16.0, "size", ("12 oz", "2 lb", "5 lb"),
                 ("Dark", "Bold", "House", "Morning", "Smooth", "Roast", "Mountain", "Gold"),
                 subscribable=True),
    CategorySpec("shoes", "running shoes", "Sneakers",
                 ("running shoes", "trail running shoes", "lightweight sneakers"),
                 85.0, "size", ("8", "9", "10", "11"),
                 ("Swift", "Trail", "Cloud", "Road", "Flex", "Race", "Tempo", "Glide")),
    CategorySpec("backpacks", "backpacks", "Backpack",
                 ("laptop backpack", "travel backpack", "hiking backpack"),
                 45.0, "color", ("black", "gray", "olive", "blue"),
                 ("Urban", "Travel", "Daypack", "Roll", "Commuter", "Slim", "Trek", "City")),
    CategorySpec("lamps", "desk lamps", "Lamp",
                 ("desk lamp", "led desk lamp", "reading lamp"),
                 35.0, "style", ("classic", "modern", "clamp"),
                 ("Arc", "Halo", "Beam", "Glow", "Task", "Swing", "Dim", "Nova")),
    CategorySpec("yoga", "yoga gear", "Mat",
                 ("yoga mat", "exercise mat", "thick yoga mat"),
                 30.0, "color", ("purple", "teal", "black", "pink"),
                 ("Grip", "Zen", "Flow", "Thick", "Travel", "Eco", "Cork", "Balance")),
    CategorySpec("vitamins", "vitamins", "Vitamins",
                 ("vitamin d", "daily multivitamin", "vitamin c gummies"),
                 18.0, "size", ("60 count", "120 count", "240 count"),
                 ("Daily", "Immune", "Gummy", "Prime", "Vital", "Pure", "Active", "Plus"),
                 subscribable=True),
    CategorySpec("kettles", "kitchen gadgets", "Kettle",
                 ("electric kettle", "tea kettle", "gooseneck kettle"),
                 40.0, "style", ("steel", "glass", "matte"),
                 ("Rapid", "Pour", "Temp", "Boil", "Smart", "Classic", "Mini", "Brew")),
    CategorySpec("cases", "phone accessories", "Case",
                 ("phone case", "clear phone case", "rugged phone case"),
                 15.0, "color", ("clear", "black", "red", "green"),
                 ("Armor", "Slim", "Clear", "Grip", "Wallet", "Shock", "Soft", "Edge")),
    CategorySpec("dogfood", "pet supplies", "Kibble",
                 ("dog food", "puppy food", "grain free dog food"),
                 38.0, "size", ("5 lb", "15 lb", "30 lb"),
                 ("Hearty", "Puppy", "Salmon", "Lamb", "Senior", "Wild", "Farm", "Lean"),
                 subscribable=True),
)

BRAND_NAMES: tuple[str, ...] = (
    "Acme", "Zenit", "Nova", "Orbit", "Koda", "Lumo", "Brio", "Vela", "Tessa", "Pico",
    "Ardo", "Miro",
)

_GOOD_REVIEWS = (
    ("Works great", "Does exactly what I needed and feels well made."),
    ("Love it", "Great value for the price, I would buy it again."),
    ("Solid choice", "Arrived quickly and has held up well so far."),
    ("Very happy", "Better than the one I had before."),
)
_BAD_REVIEWS = (
    ("Disappointed", "Stopped working after two weeks."),
    ("Not as described", "Feels cheap and the color is off."),
    ("Returned it", "Quality is poor for what it costs."),
    ("Meh", "It is okay but I expected more."),
)


@dataclass(frozen=True, slots=True)
class Review:
    stars: int
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Product:
    """One product. ``option_prices`` holds the price of each option value (first = default)."""

    pid: str  # ASIN-like id
    category: str
    brand: str
    title: str
    price: float
    rating: float
    review_count: int
    reviews: tuple[Review, ...]
    option_dim: str
    option_values: tuple[str, ...]
    option_prices: tuple[float, ...]
    description: str
    subscribable: bool

    @property
    def slug(self) -> str:
        return slug(self.title)

    def price_for(self, option: str = "") -> float:
        """Price of the chosen option value (the default when empty or unknown)."""
        if option and option in self.option_values:
            return self.option_prices[self.option_values.index(option)]
        return self.price


@dataclass(slots=True)
class Catalog:
    """Categories (specs), brands and products, with lookups the shop and policy need."""

    categories: tuple[CategorySpec, ...]
    brands: tuple[str, ...]
    products: dict[str, Product]
    by_category: dict[str, tuple[str, ...]] = field(default_factory=dict)
    query_category: dict[str, str] = field(default_factory=dict)

    def category(self, key: str) -> CategorySpec:
        for c in self.categories:
            if c.key == key:
                return c
        raise KeyError(key)

    def queries(self, key: str) -> tuple[str, ...]:
        return tuple(q for q, c in self.query_category.items() if c == key)

    def search(self, query: str) -> tuple[str, ...]:
        """Product ids matching a query in relevance order (a fixed order per query)."""
        cat = self.query_category.get(query)
        if cat is None:
            return ()
        ids = list(self.by_category[cat])
        # Relevance: a stable pseudo-random order per query, so different phrasings of
        # the same category show different first results.
        rng = np.random.default_rng(_stable_hash(query))
        order = rng.permutation(len(ids))
        return tuple(ids[i] for i in order)


def _stable_hash(text: str) -> int:
    h = 2166136261
    for ch in text.encode("utf-8"):
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def generate_catalog(
    rng: np.random.Generator,
    *,
    n_categories: int = 8,
    n_brands: int = 8,
    products_per_category: int = 12,
    queries_per_category: int = 2,
) -> Catalog:
    """Draw a catalog. Titles are unique; each category mixes brands with a skew so a few
    brands dominate its brand filter, like a real marketplace."""
    if not 1 <= n_categories <= len(CATEGORY_SPECS):
        raise ValueError(f"n_categories must be in 1..{len(CATEGORY_SPECS)}")
    if not 2 <= n_brands <= len(BRAND_NAMES):
        raise ValueError(f"n_brands must be in 2..{len(BRAND_NAMES)}")
    if not 1 <= queries_per_category <= 3:
        raise ValueError("queries_per_category must be in 1..3")
    if not 3 <= products_per_category <= 8 * n_brands:
        raise ValueError("products_per_category out of range")
    cats = CATEGORY_SPECS[:n_categories]
    brands = BRAND_NAMES[:n_brands]
    products: dict[str, Product] = {}
    by_category: dict[str, tuple[str, ...]] = {}
    query_category: dict[str, str] = {}
    used_ids: set[str] = set()
    for cat in cats:
        for q in cat.queries[:queries_per_category]:
            query_category[q] = cat.key
        brand_w = rng.dirichlet(np.full(n_brands, 0.8))
        titles: set[str] = set()
        ids: list[str] = []
        while len(ids) < products_per_category:
            brand = brands[int(rng.choice(n_brands, p=brand_w))]
            adj = cat.adjectives[int(rng.integers(len(cat.adjectives)))]
            title = f"{brand} {adj} {cat.noun}"
            if title in titles:
                continue
            titles.add(title)
            pid = _asin(rng, used_ids)
            price = _price(cat.base_price * float(rng.lognormal(0.0, 0.45)))
            rating = round(float(np.clip(rng.normal(4.15, 0.45), 2.8, 4.9)), 1)
            review_count = int(rng.lognormal(5.0, 1.3)) + 3
            reviews = _reviews(rng, rating)
            if cat.option_dim and rng.random() < 0.85:
                k = int(rng.integers(2, len(cat.option_values) + 1))
                values = tuple(cat.option_values[:k])
                deltas = [0.0] + [float(rng.choice([-0.15, -0.08, 0.08, 0.15, 0.3]))
                                  for _ in values[1:]]
                prices = tuple(_price(price * (1 + d)) if d else price for d in deltas)
                dim = cat.option_dim
            else:
                values, prices, dim = (), (), ""
            desc = (f"The {title} is a {adj.lower()} {cat.noun.lower()} from {brand}. "
                    f"Rated {rating} out of 5 by {review_count} shoppers.")
            products[pid] = Product(
                pid=pid, category=cat.key, brand=brand, title=title, price=price,
                rating=rating, review_count=review_count, reviews=reviews, option_dim=dim,
                option_values=values, option_prices=prices, description=desc,
                subscribable=cat.subscribable,
            )
            ids.append(pid)
        by_category[cat.key] = tuple(ids)
    return Catalog(cats, brands, products, by_category, query_category)


def _asin(rng: np.random.Generator, used: set[str]) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    while True:
        s = "B0" + "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=8))
        if s not in used:
            used.add(s)
            return s


def _price(x: float) -> float:
    return max(4.99, float(np.floor(x)) + 0.99)


def _reviews(rng: np.random.Generator, rating: float) -> tuple[Review, ...]:
    out = []
    for _ in range(int(rng.integers(3, 7))):
        stars = int(np.clip(round(rng.normal(rating, 0.9)), 1, 5))
        pool = _GOOD_REVIEWS if stars >= 4 else _BAD_REVIEWS
        title, text = pool[int(rng.integers(len(pool)))]
        out.append(Review(stars, title, text))
    return tuple(out)
