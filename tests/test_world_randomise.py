"""A domain-randomised world (world/randomise.py): training sites drawn from the variant
space, held-out variants in a split of their own, ceilings for both, the default unchanged."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from worlddigest import same_fingerprint, world_fingerprint

from customer_r1.cli import run
from customer_r1.world import WorldConfig, export_world, generate_world, load_world_info
from customer_r1.world.generate import config_dict
from customer_r1.world.randomise import (
    DEFAULT_HELD_OUT,
    HELD_OUT_SPLIT,
    RandomiseConfig,
    draw_site,
    site_rng,
)
from customer_r1.world.variants import BUILTIN_VARIANTS, PLACEBO_VARIANTS, REAL_VARIANTS

CFG = dict(users=5, sessions_per_user=4, seed=2, population=200)


@pytest.fixture(scope="module")
def plain():
    return generate_world(WorldConfig(**CFG))


@pytest.fixture(scope="module")
def rand():
    return generate_world(WorldConfig(**CFG, randomise={}))


def test_default_world_is_unchanged(plain) -> None:
    assert WorldConfig().randomise is None
    assert "randomise" not in config_dict(WorldConfig(**CFG))  # world.json as before
    again = generate_world(WorldConfig(**CFG, randomise=None))
    assert same_fingerprint(world_fingerprint(again), world_fingerprint(plain))
    assert not again.variants and HELD_OUT_SPLIT not in again.splits


def _only(world, split):
    return dataclasses.replace(world, sessions=world.split(split))


def test_test_split_is_the_same_sessions(plain, rand) -> None:
    assert [s.split for s in rand.sessions if s.split != HELD_OUT_SPLIT] == \
        [s.split for s in plain.sessions]
    assert {s.variant for s in rand.split("test")} == {"control"}
    assert same_fingerprint(world_fingerprint(_only(rand, "test")),
                            world_fingerprint(_only(plain, "test")), tol=0.0)
    # A user's training sessions on other sites take other steps; a test session after
    # them is still the plain world's (this config has such sessions: variant_mix's
    # shared stream would move them).
    cfg = dict(users=8, sessions_per_user=10, seed=0, population=200)
    a = generate_world(WorldConfig(**cfg))
    b = generate_world(WorldConfig(**cfg, randomise={"max_variants": 2}))
    assert same_fingerprint(world_fingerprint(_only(b, "test")),
                            world_fingerprint(_only(a, "test")), tol=0.0)
    assert b.ceilings("test") == a.ceilings("test")
    assert len({s.variant for s in b.split("train")}) > 40


def test_training_sites_vary_and_are_reproducible(rand) -> None:
    train = rand.split("train")
    sites = [s.variant for s in train]
    assert len(set(sites)) >= len(sites) // 2  # most sessions on a site of their own
    again = generate_world(WorldConfig(**CFG, randomise={}))
    assert [s.variant for s in again.split("train")] == sites
    assert again.variants == rand.variants
    assert same_fingerprint(world_fingerprint(again), world_fingerprint(rand))
    other = generate_world(WorldConfig(**{**CFG, "seed": 3}, randomise={}))
    assert [s.variant for s in other.split("train")] != sites
    # a site is a function of (seed, user, session) alone
    rc = RandomiseConfig()
    assert draw_site(rc, site_rng(2, 1, 3)) == draw_site(rc, site_rng(2, 1, 3))
    # every step renders on its session's site, the policy's support on its page
    for s in train:
        for st in s.steps:
            assert st.variant == s.variant
            page = rand.page(st)
            assert all(a.type == "terminate" or a.name in page.elements for a in st.actions)


def test_draws_cover_compositions_and_continuous_parameters() -> None:
    rc = RandomiseConfig()
    sites = [draw_site(rc, site_rng(0, u, j)) for u in range(20) for j in range(20)]
    sizes = {s.name.count("+") + (not s.is_control) for s in sites}
    assert {0, 1, 2, 3} <= sizes  # control, single variants and compositions
    changed = {k for s in sites for k in s.changes()}
    assert {"price_factor", "results_per_page_factor", "shipping_fee", "coupon",
            "out_of_stock", "deals", "brand_filters", "label_synonyms",
            "add_to_cart_below_details"} <= changed
    prices = {s.price_factor for s in sites} - {1.0}
    assert len(prices) > 10 and all(0.75 <= p <= 1.5 for p in prices)


def test_control_share_keeps_that_share_of_sessions_on_the_control_site() -> None:
    """``control_share``: replay of the control site; 0 takes no draw, so the sites (and the
    world) are those of a config without it."""
    draws = [(u, j) for u in range(20) for j in range(20)]
    default = [draw_site(RandomiseConfig(), site_rng(3, u, j)) for u, j in draws]
    assert default == [draw_site(RandomiseConfig(control_share=0.0), site_rng(3, u, j)) for u, j in draws]
    half = [draw_site(RandomiseConfig(control_share=0.5), site_rng(3, u, j)) for u, j in draws]
    on_control = sum(s.is_control for s in half) / len(half)
    base_rate = sum(s.is_control for s in default) / len(default)
    assert 0.5 + 0.3 * base_rate < on_control < 0.5 + 0.7 * base_rate + 0.1, (on_control, base_rate)
    assert all(draw_site(RandomiseConfig(control_share=1.0), site_rng(3, u, j)).is_control for u, j in draws)


def test_held_out_variants_never_train() -> None:
    rc = RandomiseConfig()
    held = {n: BUILTIN_VARIANTS[n] for n in rc.held_out}
    assert set(rc.held_out) & set(REAL_VARIANTS) and set(rc.held_out) & set(PLACEBO_VARIANTS)
    assert not set(rc.draw_pool) & set(rc.held_out) and "control" not in rc.draw_pool
    for u in range(30):
        for j in range(30):
            site = draw_site(rc, site_rng(7, u, j))
            parts = set(site.name.split("+"))
            assert not parts & set(held), site.name
            assert site.changes() not in [v.changes() for v in held.values()]
            # continuous draws keep their distance from the held-out values
            assert not 1.125 <= site.price_factor <= 1.375 or site.price_factor == 1.5
            assert not 0.45 <= site.out_of_stock <= 0.55
            assert not 8.99 <= site.shipping_fee <= 10.99


def test_held_out_split(rand) -> None:
    rc = rand.config.randomise
    held = rand.split(HELD_OUT_SPLIT)
    assert len(held) == CFG["users"] * len(DEFAULT_HELD_OUT) * rc.held_out_sessions_per_user
    assert {s.variant for s in held} == set(DEFAULT_HELD_OUT)
    assert not {s.variant for s in rand.split("train")} & set(DEFAULT_HELD_OUT)
    ids = [st.action_id for s in rand.sessions for st in s.steps]
    assert len(ids) == len(set(ids))
    assert len({s.session_id for s in rand.sessions}) == len(rand.sessions)
    assert rand.config.total_sessions == len(rand.sessions)


def test_ceilings_per_group(rand, tmp_path) -> None:
    info = export_world(rand, tmp_path)
    assert load_world_info(tmp_path)["randomise"]["held_out"] == {
        n: BUILTIN_VARIANTS[n].changes() for n in DEFAULT_HELD_OUT}
    c = info["randomise"]["ceilings"]
    assert c["control_test"] == info["ceilings"]["test"]
    assert c["held_out_test"] == info["ceilings"][HELD_OUT_SPLIT]
    assert set(c["by_held_out_variant"]) == set(DEFAULT_HELD_OUT)
    for v in [c["control_test"], c["held_out_test"], *c["by_held_out_variant"].values()]:
        assert v["steps"] > 0
        assert 0.0 < v["ceiling_blind"] <= v["ceiling_persona"] <= 1.0
    per = c["by_held_out_variant"]
    assert sum(v["steps"] for v in per.values()) == c["held_out_test"]["steps"]
    ts = info["randomise"]["train_sites"]
    assert ts["sessions"] == sum(x["sessions"] for x in ts["sites"].values())
    # world.json's config rebuilds the same config (ensure_world, load_world)
    assert WorldConfig(**load_world_info(tmp_path)["config"]) == rand.config


@pytest.mark.parametrize("settings, match", [
    ({"held_out": ["nope"]}, "unknown variant"),
    ({"held_out": "reviews_hidden"}, "list of built-in"),
    ({"pool": ["reviews_hidden"]}, "also in the pool"),
    ({"pool": ["control"]}, "control"),
    ({"min_variants": 3, "max_variants": 1}, "exceeds"),
    ({"max_variants": 2, "pool": ["no_deals"]}, "exceeds the pool"),
    ({"continuous": {"banner": [0, 1]}}, "not a continuous field"),
    ({"continuous": {"price_factor": [1.2, 0.8]}}, "low < high"),
    ({"continuous": {"price_factor": [0.5, 20]}}, "price_factor"),
    ({"continuous": {"coupon": 0.3}}, r"\[low, high\]"),
    ({"continuous_share": 2}, r"\[0, 1\]"),
    ({"control_share": -0.1}, r"control_share must be in \[0, 1\]"),
    ({"colour": "red"}, "unknown randomise setting"),
])
def test_validation(settings, match) -> None:
    with pytest.raises(ValueError, match=match):
        WorldConfig(randomise=settings)


def test_validation_more() -> None:
    with pytest.raises(ValueError, match="not both"):
        WorldConfig(variant_mix=("no_deals",), randomise={})
    with pytest.raises(ValueError, match="mapping"):
        WorldConfig(randomise="yes")  # type: ignore[arg-type]
    cfg = WorldConfig(randomise={"continuous": {"price_factor": [0.8, 1.2]}, "max_variants": 1})
    assert hash(cfg) and cfg.randomise.continuous == (("price_factor", 0.8, 1.2),)
    assert WorldConfig(**json.loads(json.dumps(config_dict(cfg)))) == cfg


def test_cli(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"randomise": {"held_out": ["nope"]}}))
    assert run(["world", "generate", "--out", str(tmp_path / "w"), "--randomise-config",
                str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown variant(s) in randomise.held_out")
    assert str(bad) in err[0]
    good = tmp_path / "r.yaml"
    good.write_text(yaml.safe_dump({"max_variants": 2, "held_out_sessions_per_user": 1}))
    out = tmp_path / "w"
    assert run(["world", "generate", "--out", str(out), "--users", "3", "--sessions-per-user",
                "3", "--population", "100", "--randomise-config", str(good),
                "--held-out", "no_deals", "--held-out", "placebo_labels", "--quiet"]) == 0
    info = load_world_info(out)
    assert list(info["randomise"]["held_out"]) == ["no_deals", "placebo_labels"]
    assert info["config"]["randomise"]["max_variants"] == 2
    capsys.readouterr()
    assert run(["world", "stats", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown["randomise"]["ceilings"]["by_held_out_variant"]) == {"no_deals",
                                                                           "placebo_labels"}


def test_recipe_world_section() -> None:
    from customer_r1.demo import DemoConfig

    cfg = DemoConfig.from_yaml("recipes/tiny-cpu/demo-randomised.yaml")
    wc = WorldConfig(**cfg.world)
    assert wc.randomise is not None and set(wc.randomise.held_out) == set(DEFAULT_HELD_OUT)
    with pytest.raises(ValueError, match=r"world: .*unknown variant"):
        DemoConfig(world={"randomise": {"held_out": ["nope"]}})


def test_cli_reads_a_recipe_world_section(tmp_path, capsys) -> None:
    out = tmp_path / "w"
    assert run(["world", "generate", "--out", str(out), "--users", "2", "--sessions-per-user",
                "3", "--population", "50", "--randomise-config",
                "recipes/tiny-cpu/demo-randomised.yaml", "--quiet"]) == 0
    cfg = load_world_info(out)["config"]["randomise"]
    assert cfg["held_out_sessions_per_user"] == 2 and cfg["continuous_share"] == 0.25
    capsys.readouterr()
    assert run(["world", "generate", "--out", str(tmp_path / "x"), "--randomise-config",
                "recipes/tiny-cpu/demo.yaml", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no randomise settings" in err[0]
