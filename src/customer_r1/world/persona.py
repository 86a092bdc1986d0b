"""Synthetic shoppers: latent traits, their OPeRA-style survey, and a reader that gets
the traits back from the rendered persona text.

Every trait is discrete (a Likert level 0..4, a budget bucket, a favourite brand and two
favourite categories) and is written into the survey one-to-one, so the persona text a
model sees determines the policy exactly: nothing about the shopper stays hidden.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LIKERT: tuple[str, ...] = (
    "Strongly disagree",
    "Disagree",
    "Neither agree nor disagree",
    "Agree",
    "Strongly agree",
)

#: One Likert statement per behavioural trait; the policy reads only the level.
STATEMENTS: dict[str, str] = {
    "price": "I always look for the lowest price before I buy",
    "research": "I read customer reviews carefully before I buy",
    "loyalty": "I stick with brands I already know and trust",
    "impulse": "I often buy things on impulse",
    "patience": "I am happy to browse many pages to find the right product",
    "picky": "I care about choosing the exact color, size or style",
    "bulk": "I like to buy several of an item to stock up",
}
LIKERT_TRAITS: tuple[str, ...] = tuple(STATEMENTS)

#: Monthly spend bucket (survey) and the most the shopper pays for one item's cart line.
SPEND_BUCKETS: tuple[str, ...] = (
    "Less than $50",
    "$50 - $100",
    "$100 - $200",
    "$200 - $500",
    "More than $500",
)
ITEM_CAPS: tuple[float, ...] = (30.0, 60.0, 120.0, 250.0, 1_000_000.0)

AGREE_KEY = "To what extent do you agree with the following statements"
BIG_FIVE = ("Openness", "Conscientiousness", "Extraversion", "Agreeableness", "Neuroticism")
_LEVELS3 = ("Low", "Medium", "High")

_AGES = ("18-24 years old", "25-34 years old", "35-44 years old", "45-54 years old",
         "55-64 years old")
_GENDERS = ("Female", "Male", "Non-binary")
_CITIES = ("Boston, MA", "Austin, TX", "Seattle, WA", "Chicago, IL", "Denver, CO",
           "Atlanta, GA", "San Jose, CA", "Portland, OR")
_JOBS = ("Employed full-time", "Employed part-time", "Student", "Self-employed")
_EDU = ("High school", "Bachelor's degree", "Master's degree", "Doctorate")
_INCOME = ("Less than $25,000", "$25,000 - $50,000", "$50,000 - $100,000",
           "$100,000 - $150,000", "More than $150,000")
_FREQ = ("A few times a month", "Once a week", "Several times a week")


@dataclass(frozen=True, slots=True)
class Traits:
    """One shopper's latent traits. Likert traits and budget are levels 0..4."""

    price: int
    research: int
    loyalty: int
    impulse: int
    patience: int
    picky: int
    bulk: int
    budget: int
    fav_brand: str
    cat1: str  # main category interest
    cat2: str  # secondary category interest

    @property
    def cap(self) -> float:
        """The most this shopper pays for one cart line."""
        return ITEM_CAPS[self.budget]


def sample_traits(rng: np.random.Generator, brands: Sequence[str],
                  categories: Sequence[str]) -> Traits:
    """Independent uniform traits: any one decision says nothing about another trait."""
    lv = rng.integers(0, 5, size=len(LIKERT_TRAITS) + 1)
    c1, c2 = rng.choice(len(categories), size=2, replace=False)
    return Traits(
        *(int(x) for x in lv),
        fav_brand=brands[int(rng.integers(len(brands)))],
        cat1=categories[int(c1)],
        cat2=categories[int(c2)],
    )


def balanced_traits(rng: np.random.Generator, n: int, brands: Sequence[str],
                    categories: Sequence[str]) -> list[Traits]:
    """``n`` shoppers whose every trait level (and favourite brand and main category) occurs
    equally often: each user is still a draw from the uniform prior, but a small world
    shows every level and its figures vary less from seed to seed."""
    def column(k: int) -> np.ndarray:
        return rng.permutation(np.resize(np.arange(k), n))

    lv = {k: column(5) for k in (*LIKERT_TRAITS, "budget")}
    fav = column(len(brands))
    c1 = column(len(categories))
    c2 = (c1 + rng.integers(1, len(categories), size=n)) % len(categories)
    return [Traits(**{k: int(v[i]) for k, v in lv.items()}, fav_brand=brands[int(fav[i])],
                   cat1=categories[int(c1[i])], cat2=categories[int(c2[i])])
            for i in range(n)]


@dataclass(frozen=True)
class TraitTable:
    """Traits of N shoppers as columns, so the policy scores a whole population at once.

    Brands and categories are indices into the catalog's brand and category lists.
    """

    price: np.ndarray
    research: np.ndarray
    loyalty: np.ndarray
    impulse: np.ndarray
    patience: np.ndarray
    picky: np.ndarray
    bulk: np.ndarray
    budget: np.ndarray
    fav_brand: np.ndarray
    cat1: np.ndarray
    cat2: np.ndarray
    cache: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n(self) -> int:
        return int(self.price.shape[0])

    @classmethod
    def from_traits(cls, traits: Sequence[Traits], brands: Sequence[str],
                    categories: Sequence[str]) -> TraitTable:
        bi = {b: i for i, b in enumerate(brands)}
        ci = {c: i for i, c in enumerate(categories)}
        cols = {k: np.array([getattr(t, k) for t in traits], dtype=np.int64)
                for k in (*LIKERT_TRAITS, "budget")}
        return cls(
            **cols,
            fav_brand=np.array([bi[t.fav_brand] for t in traits], dtype=np.int64),
            cat1=np.array([ci[t.cat1] for t in traits], dtype=np.int64),
            cat2=np.array([ci[t.cat2] for t in traits], dtype=np.int64),
        )

    def concat(self, other: TraitTable) -> TraitTable:
        return TraitTable(**{k: np.concatenate([getattr(self, k), getattr(other, k)])
                             for k in TABLE_FIELDS})

    def row(self, i: int) -> TraitTable:
        return TraitTable(**{k: getattr(self, k)[i:i + 1] for k in TABLE_FIELDS})

    def take(self, idx: np.ndarray) -> TraitTable:
        return TraitTable(**{k: getattr(self, k)[idx] for k in TABLE_FIELDS})

    def with_prior_draws(self, names: set[str], rng: np.random.Generator,
                         n_brands: int, n_categories: int) -> TraitTable:
        """A copy with the columns ``names`` drawn afresh from the trait prior."""
        cols = {k: getattr(self, k) for k in TABLE_FIELDS}
        n = self.n
        for k in sorted(names):
            if k in (*LIKERT_TRAITS, "budget"):
                cols[k] = rng.integers(0, 5, size=n)
            elif k == "fav_brand":
                cols[k] = rng.integers(0, n_brands, size=n)
        if "cat1" in names or "cat2" in names:
            # an ordered pair of distinct categories, uniform
            c1 = rng.integers(0, n_categories, size=n)
            c2 = (c1 + rng.integers(1, n_categories, size=n)) % n_categories
            cols["cat1"], cols["cat2"] = c1, c2
        return TraitTable(**cols)


class TrackedTable(TraitTable):
    """A TraitTable that records which trait columns a decision read: the likelihood of
    the decision's motive depends on no other trait."""

    def __init__(self, **cols: Any) -> None:
        super().__init__(**cols)
        object.__setattr__(self, "accessed", set())

    @property
    def n(self) -> int:
        return int(object.__getattribute__(self, "price").shape[0])

    def __getattribute__(self, name: str) -> Any:
        if name in TABLE_FIELDS:
            object.__getattribute__(self, "accessed").add(name)
        return object.__getattribute__(self, name)


TABLE_FIELDS: tuple[str, ...] = (*LIKERT_TRAITS, "budget", "fav_brand", "cat1", "cat2")


def survey_for(traits: Traits, rng: np.random.Generator,
               category_labels: dict[str, str]) -> dict:
    """The OPeRA ``survey`` JSON for a shopper: traits go into the self description, the
    spend bucket and one Likert statement each; demographics and Big Five are filler."""
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    lab1, lab2 = category_labels[traits.cat1], category_labels[traits.cat2]
    return {
        "Demographic Information": {
            "Age": pick(_AGES),
            "Gender": pick(_GENDERS),
            "City": pick(_CITIES),
            "Employment status": pick(_JOBS),
            "Education level": pick(_EDU),
            "Yearly household income or stipend": pick(_INCOME),
        },
        "Self Description": {
            "Two sentence description": (
                f"I mostly shop online for {lab1}, and sometimes for {lab2}. "
                f"{traits.fav_brand} is the brand I trust most."
            ),
        },
        "Shopping Preference": {
            "Online shopping frequency": pick(_FREQ),
            "Monthly online shopping spend $": SPEND_BUCKETS[traits.budget],
            "Amazon Prime membership": pick(("Yes", "No")),
            AGREE_KEY: {STATEMENTS[k]: LIKERT[getattr(traits, k)] for k in LIKERT_TRAITS},
        },
        "Personality": {"Big Five Scores": {b: pick(_LEVELS3) for b in BIG_FIVE}},
    }


_SELF = re.compile(
    r"I mostly shop online for (?P<c1>[^,]+), and sometimes for (?P<c2>[^.]+)\. "
    r"(?P<brand>\S+) is the brand I trust most\."
)


def read_traits(text: str, category_labels: dict[str, str]) -> Traits:
    """Rule-based reader of a rendered persona (``render_survey`` output): the proof that
    every trait level can be recovered from the text a model is shown."""
    levels: dict[str, int] = {}
    for key, stmt in STATEMENTS.items():
        m = re.search(re.escape(stmt) + r": (.+)", text)
        if not m:
            raise ValueError(f"statement for {key!r} not found")
        levels[key] = LIKERT.index(m.group(1).strip())
    m = re.search(r"Monthly online shopping spend \$: (.+)", text)
    if not m:
        raise ValueError("spend bucket not found")
    budget = SPEND_BUCKETS.index(m.group(1).strip())
    s = _SELF.search(text)
    if not s:
        raise ValueError("self description not found")
    by_label = {v: k for k, v in category_labels.items()}
    return Traits(**levels, budget=budget, fav_brand=s.group("brand"),
                  cat1=by_label[s.group("c1")], cat2=by_label[s.group("c2")])
