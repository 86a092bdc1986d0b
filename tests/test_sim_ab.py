"""`sim ab`: both arms with common random numbers, effects with paired intervals, the true
shopper's effect beside, and the sample size a wanted interval needs."""

from __future__ import annotations

import json

import pytest

from customer_r1.cli.sim_ab import run_ab
from customer_r1.sim import ab, stats
from customer_r1.world import WorldConfig, export_world, generate_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("abworld")
    export_world(generate_world(WorldConfig(users=24, sessions_per_user=3, seed=4, population=50)), d)
    return d


def test_a_lever_the_shopper_ignores_changes_no_session(world_dir, tmp_path):
    """add_to_cart_below moves the buy box; the world's shopper does not care where it is, so
    with common random numbers every session is the same in both arms: effect exactly 0."""
    res = run_ab(world=world_dir, out=tmp_path / "ab", control=None, treatment=["add_to_cart_below"],
                 policy="world", sessions_per_user=3, seed=1, progress=False, n_boot=200)
    c = res["metrics"]["conversion"]
    assert c["effect"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert c["significant"] is False and res["warnings"]  # too small to tell from zero: said so
    def steps(arm: str) -> list:
        lines = (tmp_path / "ab" / arm / "sessions.jsonl").read_text().splitlines()
        return [json.loads(x)["steps"] for x in lines]

    a, b = steps("control"), steps("treatment")
    assert [[s["action"] for s in x] for x in a] == [[s["action"] for s in x] for x in b]


def test_common_random_numbers_narrow_the_interval_and_match_the_truth(world_dir, tmp_path):
    res = run_ab(world=world_dir, out=tmp_path / "ab", control=None, treatment=["reviews_hidden"],
                 policy="world", reference_policy="world", sessions_per_user=6, seed=2, progress=False,
                 n_boot=300, ci_width=0.04)
    c = res["metrics"]["conversion"]
    # The policy is the true shopper itself: the simulated effect is the true effect.
    assert c["effect"]["value"] == c["true"]["effect"]["value"]
    # Paired resampling is narrower than independent seeds would be on the same sessions.
    assert c["crn_shrink"] > 0.2
    indep = c["effect_independent"]
    assert indep["high"] - indep["low"] > c["effect"]["high"] - c["effect"]["low"]
    # reviews hidden: nobody reaches the reviews page in the treatment arm
    r = res["metrics"]["reach_reviews"]
    assert r["treatment"]["value"] == 0.0 and r["control"]["value"] > 0.2
    size = res["sample_size"]
    assert size["target_width"] == 0.04 and size["conversion_sessions_per_arm"] > 0
    assert res["runs"] == {"control": "control", "treatment": "treatment", "true_control": "true-control",
                           "true_treatment": "true-treatment"}
    md = (tmp_path / "ab" / "ab.md").read_text()
    assert "true effect" in md and "reviews_hidden" in md
    assert json.loads((tmp_path / "ab" / "ab.json").read_text())["design"].startswith("common random")


def test_sample_size_scales_with_the_square_of_the_width():
    rows = [stats.SessionRow(f"u{i % 10}", i % 3 == 0, 5, {}, {}, ("home",), "home", 0.0, 0)
            for i in range(40)]
    e = ab.effects(ab.ArmRows(rows, rows[::-1]), n_boot=50)["conversion"]
    e.effect = stats.Interval(0.02, -0.04, 0.08)  # observed width 0.12 on 10 users
    assert ab.sessions_needed(e, users=10, sessions_per_user=4, width=0.06) == 40 * 4
    assert ab.sessions_needed(e, users=10, sessions_per_user=4, width=0.12) == 10 * 4


def test_cli_ab_prints_the_table_and_refuses_unknown_variants(world_dir, tmp_path):
    from customer_r1.cli import run as cli

    code = cli(["sim", "ab", "--world", str(world_dir), "--policy", "world", "--treatment", "no_deals",
                "--sessions-per-user", "1", "--boot", "100", "--no-progress", "--out", str(tmp_path / "c")])
    assert code == 0 and (tmp_path / "c" / "ab.json").exists()
    code = cli(["sim", "ab", "--world", str(world_dir), "--policy", "world", "--treatment", "no_such_lever",
                "--out", str(tmp_path / "d")])
    assert code == 2 and not (tmp_path / "d" / "control").exists()


def test_placebo_arms_say_how_far_to_trust_the_simulator(world_dir, tmp_path, capsys):
    """`sim ab --placebo 2`: two cosmetic arms beside the test, same shoppers and seeds. The
    world's shopper ignores them, so its placebo effects are exactly 0, nothing is a false
    positive, and a real effect larger than its own interval is beyond placebo noise."""
    from customer_r1.cli import run as cli

    code = cli(["sim", "ab", "--world", str(world_dir), "--policy", "world", "--treatment", "reviews_hidden",
                "--sessions-per-user", "3", "--seed", "2", "--boot", "200", "--placebo", "2", "--no-progress",
                "--out", str(tmp_path / "p")])
    assert code == 0
    res = json.loads((tmp_path / "p" / "ab.json").read_text())
    pl = res["placebo"]
    assert pl["n"] == 2 and pl["arms"] == sorted(["placebo_labels", "placebo_nav_order"])
    assert {"placebo:placebo_labels", "placebo:placebo_nav_order"} <= set(res["runs"])
    c = pl["per_metric"]["conversion"]
    assert c["false_positive_rate"] == 0.0 and c["noise_floor"] == 0.0 and c["significant"] == []
    assert all(e == {"value": 0.0, "low": 0.0, "high": 0.0} for e in c["effects"].values())
    eff = res["metrics"]["conversion"]["effect"]
    assert c["beyond_placebo"] is (eff["low"] > 0 or eff["high"] < 0)
    assert c["smallest_separable"] == pytest.approx((eff["high"] - eff["low"]) / 2)
    out = capsys.readouterr().out
    assert "placebo noise" in out and "beyond placebo noise" in out
    assert "larger than what this simulator invents on cosmetic changes" in out
    # the report shows the verdict beside the effect
    from customer_r1.sim.report import write_sim_report

    report = write_sim_report([tmp_path / "p" / "control"], tmp_path / "rep", ab=[tmp_path / "p"])
    html = (report if report.suffix == ".html" else report / "index.html").read_text()
    assert "beyond placebo noise" in html and "invents on cosmetic changes" in html
    code = cli(["sim", "ab", "--world", str(world_dir), "--policy", "world", "--treatment", "no_deals",
                "--placebo", "99", "--out", str(tmp_path / "q")])
    assert code == 2 and not (tmp_path / "q" / "control").exists()


def test_placebo_summary_counts_false_positives_and_the_noise_floor():
    """A simulator that invents effects on placebos: its false-positive rate and noise floor,
    and an effect inside the floor is not beyond it while one outside is."""
    def eff(v, lo, hi):
        e = ab.Effect("conversion", stats.Interval(0.5, 0.4, 0.6), stats.Interval(0.5, 0.4, 0.6),
                      stats.Interval(v, lo, hi), stats.Interval(v, lo - 0.1, hi + 0.1))
        return {"conversion": e}

    placebos = {"a": eff(0.08, 0.02, 0.14), "b": eff(-0.03, -0.09, 0.03), "c": eff(0.01, -0.05, 0.07)}
    s = ab.placebo_summary(eff(0.10, 0.04, 0.16), placebos)["per_metric"]["conversion"]
    assert s["false_positive_rate"] == pytest.approx(1 / 3) and s["significant"] == ["a"]
    assert s["noise_floor"] == pytest.approx(0.08) and s["smallest_separable"] == pytest.approx(0.14)
    assert s["beyond_placebo"] is False  # +10 [+4, +16] is not clear of an invented +8
    s = ab.placebo_summary(eff(-0.20, -0.26, -0.14), placebos)["per_metric"]["conversion"]
    assert s["beyond_placebo"] is True
