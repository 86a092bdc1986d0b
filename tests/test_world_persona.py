"""Synthetic personas: survey shape, rendering through the shared renderer, trait recovery."""

from __future__ import annotations

from collections import Counter

import numpy as np

from customer_r1.data.persona import render_survey
from customer_r1.world.catalog import BRAND_NAMES, CATEGORY_SPECS
from customer_r1.world.persona import (
    AGREE_KEY,
    LIKERT,
    LIKERT_TRAITS,
    STATEMENTS,
    TraitTable,
    read_traits,
    sample_traits,
    survey_for,
)

CATS = [c.key for c in CATEGORY_SPECS[:8]]
LABELS = {c.key: c.label for c in CATEGORY_SPECS[:8]}
BRANDS = list(BRAND_NAMES[:8])


def test_survey_has_operas_sections() -> None:
    rng = np.random.default_rng(0)
    t = sample_traits(rng, BRANDS, CATS)
    s = survey_for(t, rng, LABELS)
    assert list(s) == ["Demographic Information", "Self Description", "Shopping Preference",
                       "Personality"]
    assert set(s["Self Description"]) == {"Two sentence description"}
    pref = s["Shopping Preference"]
    assert {"Online shopping frequency", "Monthly online shopping spend $",
            "Amazon Prime membership", AGREE_KEY} <= set(pref)
    assert set(pref[AGREE_KEY].values()) <= set(LIKERT)
    assert set(pref[AGREE_KEY]) == set(STATEMENTS.values())
    assert set(s["Personality"]["Big Five Scores"]) == {
        "Openness", "Conscientiousness", "Extraversion", "Agreeableness", "Neuroticism"}


def test_rule_based_reader_recovers_every_trait_from_rendered_text() -> None:
    rng = np.random.default_rng(1)
    seen: Counter[tuple[str, int]] = Counter()
    for _ in range(300):
        t = sample_traits(rng, BRANDS, CATS)
        text = render_survey(survey_for(t, rng, LABELS))
        assert read_traits(text, LABELS) == t
        for k in LIKERT_TRAITS:
            seen[(k, getattr(t, k))] += 1
    # every level of every trait occurs: levels spread over Strongly disagree..agree
    assert all(seen[(k, lv)] > 0 for k in LIKERT_TRAITS for lv in range(5))


def test_each_statement_is_one_line_of_the_rendered_persona() -> None:
    rng = np.random.default_rng(2)
    t = sample_traits(rng, BRANDS, CATS)
    text = render_survey(survey_for(t, rng, LABELS))
    for k, stmt in STATEMENTS.items():
        lines = [ln for ln in text.splitlines() if stmt in ln]
        assert len(lines) == 1 and lines[0].strip().endswith(LIKERT[getattr(t, k)])
    assert f"{t.fav_brand} is the brand I trust most." in text


def test_trait_table_columns_match_traits() -> None:
    rng = np.random.default_rng(3)
    ts = [sample_traits(rng, BRANDS, CATS) for _ in range(5)]
    tab = TraitTable.from_traits(ts, BRANDS, CATS)
    assert tab.n == 5
    assert list(tab.research) == [t.research for t in ts]
    assert [BRANDS[i] for i in tab.fav_brand] == [t.fav_brand for t in ts]
    assert [CATS[i] for i in tab.cat2] == [t.cat2 for t in ts]
    both = tab.concat(tab.row(0))
    assert both.n == 6 and both.price[-1] == ts[0].price
    fresh = tab.with_prior_draws({"cat1", "cat2", "price"}, np.random.default_rng(0), 8, 8)
    assert np.all(fresh.cat1 != fresh.cat2)
    assert list(fresh.research) == list(tab.research)
