"""Context compression (issue 19): each strategy alone, the builder with them, the
world's recorded evidence, and the ``--compress`` option."""

from __future__ import annotations

import html as html_lib
import json
import re

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from customer_r1.actions import Action
from customer_r1.data.budget import BudgetError, DropOldestPages, ExampleCosts
from customer_r1.data.compress import (
    COMPRESSIONS,
    TEXT_FLOOR,
    ParsedPage,
    check_compress,
    cut_text,
    dedupe_furniture,
    history_change,
    parse_compress,
    raw_lines,
    split_regions,
    trim_page,
    trim_region,
)
from customer_r1.data.examples import BuildConfig, ExampleBuilder, page_names, write_examples
from customer_r1.data.tokens import TokenCounter
from customer_r1.world import WorldConfig, export_world, generate_world, load_policy
from customer_r1.world.stats import evidence_stats

NAV = ('<div name="nav_bar" role="navigation" aria-label="Primary"><input name="nav_bar.search_input" '
       'type="text" value="" aria-label="Search"/><a name="nav_bar.cart" href="/cart">Cart</a></div>')
FOOTER = ('<div name="footer" role="contentinfo"><h3>Get to Know Us</h3>'
          + "".join(f'<a name="footer.link_{i}" href="/help">Link number {i}</a>' for i in range(6))
          + "<p>" + "© 1996-2025, shop.example, Inc. or its affiliates. " * 4 + "</p></div>")
LONG = "This kettle boils water fast and keeps it warm for hours; " * 20


def page(body: str) -> str:
    return f"<html><head></head><body>{NAV}{body}{FOOTER}</body></html>"


PRODUCT = page(
    '<div name="product_detail" role="main"><h1>Acme Kettle</h1><span>$24.99 · 4.3★ · 65 ratings</span>'
    '<a name="see_all_reviews" href="/r">See all reviews</a>'
    f'<img alt="Acme Kettle"/><p>{LONG}</p>'
    '<div name="options.color" role="radiogroup"><button name="options.color.red" aria-pressed="true">red'
    '</button><span>$24.99</span><button name="options.color.blue" aria-pressed="false">blue</button>'
    "<span>$22.99</span></div></div>"
)
RESULTS = page(
    '<div name="results" role="main"><span>Results for kettle</span>'
    + "".join(f'<div><a name="results.kettle_{i}" href="/dp/B{i}">Kettle {i}</a><span>${10 + i}.99 4.{i}★ '
              f"({i * 7})</span><span>{LONG[:150]}</span></div>" for i in range(5))
    + "</div>"
)


# --------------------------------------------------------------------------- regions


def test_regions_are_named_containers_or_lines():
    names = [r.name for r in split_regions(PRODUCT)]
    assert names == ["nav_bar", "product_detail", "footer"]  # html/body opened, head skipped
    compact = ('<html><body>\n<input name="nav_bar.search_input" value=""/><a name="nav_bar.home">Home</a>\n'
               ' Acme Kettle $24.99 <a name="see_all_reviews">See all reviews</a>\n</body></html>')
    regions = split_regions(compact)
    assert [r.names() for r in regions] == [["nav_bar.search_input", "nav_bar.home"], ["see_all_reviews"]]
    assert raw_lines(compact)[1] == 'Acme Kettle $24.99 <a name="see_all_reviews">See all reviews</a>'


def test_parser_tolerates_broken_markup():
    html = '<div name="a"><p>open <b>bold</div><span name="b">x</span></i>tail<!-- c --><br>'
    regions = split_regions(html)
    assert [n for r in regions for n in r.names()] == ["a", "b"]
    assert "c --" not in "".join(raw_lines(html))


# --------------------------------------------------------------------------- trim_current


def test_trim_keeps_every_name_and_label_and_short_facts():
    lines = trim_page(PRODUCT)
    text = "\n".join(lines)
    assert page_names(text)[0] == page_names(PRODUCT)[0]  # never a name
    for label in ("See all reviews", "red", "blue", "Cart", "Link number 5"):
        assert f">{label}</" in text
    for fact in ("$24.99 · 4.3★ · 65 ratings", "$22.99", "Acme Kettle"):
        assert fact in text
    # Markup is the name and state: no href, role or decorative image text.
    assert "href=" not in text and "role=" not in text and 'aria-pressed="true"' in text
    assert 'aria-label="Search"' in text  # an input's only label stays
    assert text.count("Acme Kettle") == 1  # the img alt repeating the heading is gone
    assert len(text) < 0.65 * len(PRODUCT) and LONG not in text and "…" in text


def test_trim_cuts_long_text_fairly_and_never_short_text():
    region = split_regions(f'<div name="r"><p>{LONG}</p><p>{LONG}</p><span>$9.99</span></div>')[0]
    line = trim_region(region, text_budget=300)
    assert "$9.99" in line and len(line) < 400
    pieces = re.findall(r"This kettle[^…]*…", line)
    assert len(pieces) == 2 and abs(len(pieces[0]) - len(pieces[1])) <= 2  # equal shares
    tight = trim_region(region, text_budget=10)  # below the floor: every piece keeps TEXT_FLOOR
    assert all(len(p) <= TEXT_FLOOR for p in re.findall(r"This kettle[^…]*…", tight))
    assert cut_text("one two three four", 12) == "one two…" and cut_text("short", 12) == "short"


def test_trim_of_world_pages_keeps_every_name():
    world = generate_world(WorldConfig(users=2, sessions_per_user=2, seed=1, population=20,
                                       page_size="opera"))
    for s in world.sessions[:2]:
        for st in s.steps:
            html = world.page(st).html
            text = "\n".join(trim_page(html))
            assert page_names(text) == page_names(html)
            assert len(text) < 0.8 * len(html)


# --------------------------------------------------------------------------- history_diff


def test_history_change_keeps_what_changed_and_the_acted_neighbourhood():
    first = history_change(None, RESULTS, "results.kettle_3")
    assert any('name="results.kettle_3"' in ln for ln in first)
    # From results to the product page the nav bar and footer did not change.
    lines = history_change(RESULTS, PRODUCT, "options.color.blue")
    text = "\n".join(lines)
    assert lines[-1] == "(2 unchanged)" and "footer" not in text and "nav_bar" not in text
    assert 'name="options.color.blue"' in text and "$22.99" in text  # acted, and beside it
    # The acted element is shown even in a region that did not change.
    lines = history_change(PRODUCT, PRODUCT, "nav_bar.cart")
    assert any('name="nav_bar.cart"' in ln for ln in lines) and lines[-1] == "(2 unchanged)"
    assert history_change(PRODUCT, PRODUCT, None) == ["(3 unchanged)"]


def test_history_change_is_bounded_and_counts_the_rest():
    many = page("".join(f'<div name="box_{i}"><a name="box_{i}.x">Box {i}</a><p>{LONG}</p></div>'
                        for i in range(20)))
    lines = history_change(None, many, None, region_chars=100, page_chars=400)
    assert sum(len(ln) for ln in lines) < 1200
    assert lines[-1].startswith("(+") and "more changed: " in lines[-1]
    assert history_change(ParsedPage(RESULTS), ParsedPage(PRODUCT), None) == \
        history_change(RESULTS, PRODUCT, None)


# --------------------------------------------------------------------------- furniture


def test_furniture_refers_to_the_first_showing_within_the_prompt():
    nav = "<div name=\"nav_bar\">" + "x" * 200 + "</div>"
    short = "Results for kettle"
    pages = [(2, [nav, short]), (3, [nav, "b" * 150, short]), (5, [nav, "b" * 150, "b" * 150])]
    out = dedupe_furniture(pages)
    assert out[0] == [nav, short]
    assert out[1] == ["(same as step 3: nav_bar)", "b" * 150, short]  # short lines stay
    ref = "(same as step 4: " + "b" * 39 + "…)"
    assert out[2] == ["(same as step 3: nav_bar)", ref, ref]
    assert dedupe_furniture([(0, [nav])]) == [[nav]]


# --------------------------------------------------------------------------- names and config


def test_strategy_names_are_checked_and_ordered():
    assert parse_compress("trim_current, furniture") == ("furniture", "trim_current")
    assert parse_compress("") == () and parse_compress("none") == ()
    assert check_compress(COMPRESSIONS[::-1]) == COMPRESSIONS
    with pytest.raises(ValueError, match="unknown compression"):
        parse_compress("furniture,zip")
    assert BuildConfig(compress="history_diff,furniture").compress == ["furniture", "history_diff"]
    with pytest.raises(ValueError):
        BuildConfig(compress=["gzip"])


def test_planner_drops_reasons_then_steps_only_when_compressed():
    costs = ExampleCosts(fixed=100, history_full=(50, 50, 50), history_dropped=(30, 30, 30),
                         current_page=100, cut_marker=3, history_brief=(12, 12, 12),
                         history_omitted=(0, 0, 0))
    plan = DropOldestPages().plan(costs, 280)  # all pages dropped (290), then one reason
    assert plan.keep_history == (False, False, False) and plan.history_level == (2, 1, 1)
    assert plan.total_tokens == 272 and plan.steps_brief == 1 and plan.current_page_tokens is None
    plan = DropOldestPages().plan(costs, 220)
    assert plan.history_level == (3, 3, 2) and plan.total_tokens == 212 and plan.steps_omitted == 2
    assert [plan.level(j) for j in range(3)] == [3, 3, 2]
    plan = DropOldestPages().plan(costs, 150)  # nothing left to drop: the page is cut
    assert plan.history_level == (3, 3, 3) and plan.current_page_tokens == 150 - 100 - 3 - 4
    plain = ExampleCosts(fixed=190, history_full=(50,), history_dropped=(30,), current_page=100,
                         cut_marker=3)
    with pytest.raises(BudgetError):
        DropOldestPages().plan(plain, 150)


# --------------------------------------------------------------------------- the builder


@pytest.fixture(scope="module")
def opera_world():
    return generate_world(WorldConfig(users=2, sessions_per_user=2, seed=2, population=30,
                                      page_size="opera"))


def _gold_present(row) -> bool:
    if row["action_type"] == "terminate":
        return True
    text = "".join(m["content"] for m in row["prompt"])
    if row["name_handles"]:  # the gold element's handle, on its current page
        handle = list(row["page_names"]).index(row["semantic_id"])
        return f'name="{handle}"' in text.rsplit("# Current page", 1)[-1]
    return f'name="{html_lib.escape(row["semantic_id"])}"' in text


@pytest.mark.parametrize("compress", [[c] for c in COMPRESSIONS] + [list(COMPRESSIONS)])
def test_compressed_builds_count_exactly_and_keep_gold_and_evidence(opera_world, tiny_tokenizer, compress):
    data = opera_world.to_shopping_data()
    evidence = {st.action_id: st.evidence for s in opera_world.sessions for st in s.steps}
    counter = TokenCounter(tiny_tokenizer)
    # The whole session at any length: what each strategy saves, with nothing dropped.
    plain = ExampleBuilder(data, BuildConfig(tokenizer="t", token_budget=10**8, progress=False), counter)
    base = {r["example_id"]: r["prompt_tokens"] for r in plain.iter_rows(data.sessions)}
    cfg = BuildConfig(tokenizer="t", token_budget=10**8, compress=compress, progress=False)
    b = ExampleBuilder(data, cfg, counter)
    rows = list(b.iter_rows(data.sessions))
    assert b.stats.exact_checked == 8 and b.stats.exact_mismatches == 0
    assert not b.stats.history_pages_dropped and not b.stats.pages_truncated
    assert all(r["prompt_tokens"] < base[r["example_id"]] for r in rows if r["step_index"] > 0)
    # (trim_current or handles alone shorten the current page only: a few percent of whole
    # sessions)
    factor = 0.97 if compress in (["trim_current"], ["handles"]) else 0.9
    assert sum(r["prompt_tokens"] for r in rows) < factor * sum(base.values())
    if compress != ["history_diff"]:  # (its history pages show only what changed)
        assert all(_gold_present(r) for r in rows)
    cur = [r["prompt"][-1]["content"].split("# Current page")[-1] for r in rows]
    kept = [t in c for r, c in zip(rows, cur, strict=True) for _, t in evidence[r["action_id"]]]
    # Furniture alone may show a repeated region of the current page as a reference.
    assert kept and (all(kept) if compress != ["furniture"] else sum(kept) / len(kept) > 0.5)
    if "trim_current" in compress and "furniture" not in compress:
        shown = [set(page_names(c)[0]) for c in cur]
        if "handles" in compress:  # every name of the page, as its handle, and no real name
            assert all(s == {str(i) for i in range(len(r["page_names"]))}
                       for r, s in zip(rows, shown, strict=True))
        else:
            assert all(set(r["page_names"]) <= s for r, s in zip(rows, shown, strict=True))


def test_compressed_prompts_fit_the_budget_and_count_exactly(opera_world, tiny_tokenizer):
    data = opera_world.to_shopping_data()
    counter = TokenCounter(tiny_tokenizer)
    plain = ExampleBuilder(data, BuildConfig(tokenizer="t", token_budget=150_000, progress=False), counter)
    dropped = {r["example_id"]: r["history_pages_dropped"] for r in plain.iter_rows(data.sessions)}
    for compress in (["furniture"], list(COMPRESSIONS)):
        cfg = BuildConfig(tokenizer="t", token_budget=150_000, compress=compress, exact_check="all",
                          progress=False)
        b = ExampleBuilder(data, cfg, counter)
        rows = list(b.iter_rows(data.sessions))
        assert b.stats.exact_checked == len(rows) and b.stats.exact_mismatches == 0
        assert all(r["prompt_tokens"] <= 150_000 for r in rows)
        # What compression saves makes room for more of the history.
        assert all(r["history_pages_dropped"] <= dropped[r["example_id"]] for r in rows)
        assert sum(r["history_pages_dropped"] for r in rows) < sum(dropped.values())


def test_whole_session_fits_a_small_budget_when_history_is_compressed(tiny_tokenizer):
    world = generate_world(WorldConfig(users=3, sessions_per_user=3, seed=5, population=50))
    data = world.to_shopping_data()
    counter = TokenCounter(tiny_tokenizer)
    with pytest.raises(BudgetError):
        list(ExampleBuilder(data, BuildConfig(tokenizer="t", token_budget=2600, prompt_style="compact",
                                              progress=False), counter).iter_rows(data.sessions))
    cfg = BuildConfig(tokenizer="t", token_budget=2600, prompt_style="compact", compress=list(COMPRESSIONS),
                      exact_check="all", progress=False)
    b = ExampleBuilder(data, cfg, counter)
    rows = list(b.iter_rows(data.sessions))
    assert b.stats.exact_mismatches == 0 and max(r["prompt_tokens"] for r in rows) <= 2600
    assert b.stats.history_steps_brief > 0 and not any(r["page_truncated"] for r in rows)
    long = max(rows, key=lambda r: r["step_index"])
    text = long["prompt"][1]["content"]
    s = next(s for s in data.sessions if s.session_id == long["session_id"])
    # Every step of the session is still there (by its action), even where its reason went.
    shown = [k for k in range(long["step_index"]) if f"Action: {s.steps[k].action.to_json()}" in text]
    assert len(shown) >= long["step_index"] - b.stats.history_steps_omitted


def test_build_json_records_compress_and_loads_back(tmp_path, tiny_tokenizer):
    from customer_r1.sim.prompts import load_build_config

    world = generate_world(WorldConfig(users=2, sessions_per_user=2, seed=1, population=20))
    cfg = BuildConfig(tokenizer="smollm2", token_budget=4000, compress=["trim_current", "furniture"],
                      progress=False)
    write_examples(world.to_shopping_data(), cfg, tmp_path / "b", counter=TokenCounter(tiny_tokenizer))
    meta = json.loads((tmp_path / "b" / "build.json").read_text())
    assert meta["config"]["compress"] == ["furniture", "trim_current"]
    loaded = load_build_config(tmp_path / "b")
    assert loaded.compress == ["furniture", "trim_current"] and loaded == BuildConfig(
        **{**meta["config"], "splits": None, "progress": False})


# --------------------------------------------------------------------------- evidence


@pytest.mark.parametrize("cfg", [
    WorldConfig(users=4, sessions_per_user=3, seed=1, population=50),
    WorldConfig(users=4, sessions_per_user=3, seed=3, population=50,
                variant_mix=("ratings_hidden", "reviews_hidden", "no_brand_filters", "price_up_10")),
])
def test_every_recorded_fact_is_on_its_page(cfg):
    world = generate_world(cfg)
    kinds = set()
    for s in world.sessions:
        for st in s.steps:
            html = world.page(st).html
            for kind, text in st.evidence:
                assert text in html, (kind, text, st.motive)
                kinds.add(kind)
    assert {"price", "rating", "title", "option", "option_price", "filter", "sort"} <= kinds
    # A decision on a results page reads the results (unless the shopper is typing or tired).
    searches = [st for s in world.sessions for st in s.steps if st.state.page == "search"
                and not st.state.typed and st.motive.kind != "fatigue"]
    assert all(any(k == "price" for k, _ in st.evidence) for st in searches if world.page(st).listing)


def test_evidence_is_exported_and_reported(tmp_path):
    from customer_r1.cli import app

    world = generate_world(WorldConfig(users=3, sessions_per_user=2, seed=4, population=40))
    info = export_world(world, tmp_path)
    rows = load_policy(tmp_path, "train")
    by_id = {st.action_id: st.evidence for s in world.sessions for st in s.steps}
    assert all(r.evidence == by_id[a] for a, r in rows.items())
    assert sum(len(r.evidence) for r in rows.values()) > 0
    table = pq.read_table(tmp_path / "world" / "policy_train.parquet")
    assert table.schema.field("evidence").type.value_type.names == ["kind", "text"]
    ev = info["stats"]["evidence"]
    assert ev == evidence_stats(st.evidence for s in world.sessions for st in s.steps)
    assert ev["facts"] > 0 and 0 < ev["steps_with_evidence"] <= 1 and ev["by_kind"]["price"] > 0
    res = CliRunner().invoke(app, ["world", "stats", str(tmp_path)])
    assert res.exit_code == 0 and "Evidence" in res.output
    res = CliRunner().invoke(app, ["world", "stats", str(tmp_path), "--json"])
    assert json.loads(res.output)["evidence"] == ev


def test_evidence_never_moves_a_draw():
    """Recording facts reads the page only: the world's actions are those of a policy
    whose evidence is thrown away (same motives, actions, probabilities)."""
    from customer_r1.world import policy

    cfg = WorldConfig(users=3, sessions_per_user=2, seed=9, population=40)
    a = generate_world(cfg)
    orig = policy._Builder.see
    policy._Builder.see = lambda self, page, *keys: None  # type: ignore[method-assign]
    try:
        b = generate_world(cfg)
    finally:
        policy._Builder.see = orig  # type: ignore[method-assign]
    def draws(w):
        return [(st.action, st.motive, st.rationale, st.probs.tolist()) for s in w.sessions for st in s.steps]

    assert draws(a) == draws(b)
    assert all(not st.evidence for s in b.sessions for st in s.steps)


# --------------------------------------------------------------------------- CLI


def test_cli_compress_option(tmp_path):
    from customer_r1.cli import app

    world_dir = tmp_path / "w"
    export_world(generate_world(WorldConfig(users=2, sessions_per_user=2, seed=1, population=20)), world_dir)
    runner = CliRunner()
    res = runner.invoke(app, ["data", "build", str(world_dir), "--out", str(tmp_path / "bad"),
                              "--compress", "furniture,gzip"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown compression 'gzip' (--compress)")
    assert not (tmp_path / "bad").exists()
    res = runner.invoke(app, ["data", "build", str(world_dir), "--out", str(tmp_path / "ok"),
                              "--budget", "8000", "--compress", "trim_current,history_diff"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "ok" / "build.json").read_text())
    assert meta["config"]["compress"] == ["history_diff", "trim_current"]
    rows = pq.read_table(tmp_path / "ok" / "train.parquet").to_pylist()
    assert any(" unchanged)" in r["prompt"][1]["content"] for r in rows)
    assert Action.from_json(rows[0]["action_json"]).type in ("click", "input", "terminate")
