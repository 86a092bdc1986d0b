"""Issue 17, point 2: session-level fidelity (``sim compare``).

The world's own shopper run through the shop must be indistinguishable from the world's
generated sessions on every figure, the page-kind baseline must be told apart clearly,
the fast user-bootstrap must equal ``stats.bootstrap`` / ``stats.bootstrap_diff``, and
segments must come from any survey (the world's and OPeRA-style ones).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from killkit import invoke

from customer_r1.domain import User
from customer_r1.errors import BadInput, MissingInput
from customer_r1.sim import stats
from customer_r1.sim.compare import (
    compare_sessions,
    flatten_survey,
    load_sessions,
    segment_questions,
    write_comparison,
)
from customer_r1.sim.simulate import simulate
from customer_r1.world import WorldConfig, export_world, generate_world

N_BOOT = 300


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("simcompare")
    world = root / "world"
    export_world(generate_world(WorldConfig(users=30, sessions_per_user=4, seed=11, population=50)), world)
    out = {"world": world}  # the world's generated sessions; "true": its own shopper run through the shop
    for name, policy in (("true", "world"), ("baseline", "baseline")):
        out[name] = root / name
        simulate(world=world, out=out[name], policy=policy, sessions_per_user=4, seed=1, concurrency=8,
                 progress=False)
    return out


def test_load_sessions_reads_runs_and_worlds(study: dict[str, Path]) -> None:
    run = load_sessions(study["world"])
    assert run.kind == "opera" and len(run.rows) == 120 and "generated" in run.description
    sim = load_sessions(study["baseline"])
    assert sim.kind == "run" and len(sim.rows) == 120 and len(sim.records) == 120
    assert sim.description.startswith("simulated by page-kind baseline")
    # every session keeps its trace: the step it left at has the shopper's own reason
    left = [r for r in sim.rows if not r.converted]
    assert left and all(sim.trace(r)[-1].rationale for r in left)
    test = load_sessions(study["world"], split="test")
    assert len(test.rows) == 30 and test.split == "test"
    with pytest.raises(MissingInput, match=r"split\(s\) \['nope'\] not found"):
        load_sessions(study["world"], split="nope")


def test_world_policy_matches_its_own_world(study: dict[str, Path]) -> None:
    """The true shopper through the environment vs the world's generated sessions for the same
    users: no figure differs (99% intervals of paired differences hold 0, divergences no larger
    than between two samples of the same shoppers)."""
    sim, ref = load_sessions(study["true"]), load_sessions(study["world"])
    r = compare_sessions(sim, ref, n_boot=N_BOOT, seed=3, level=0.99)
    assert r["bootstrap"]["paired"] and r["scope"]["n_shared_users"] == 30
    assert r["significant"] == [], r["significant"]
    for name, f in r["figures"].items():
        assert f["diff"]["low"] <= 0 <= f["diff"]["high"], name
    for key in ("action_types", "click_types"):
        assert r[key]["js"]["value"] < 0.05 and r[key]["js"]["p_value"] > 0.01
    assert r["length"]["wasserstein"]["p_value"] > 0.01
    seg = r["segments"]
    assert seg["tests"] > 20 and seg["significant"] <= max(3, 3 * seg["expected_by_chance"])
    # the same shoppers convert alike: per-user conversion correlates across the two sets
    assert r["per_user"]["users"] == 30 and r["per_user"]["pearson"]["value"] > 0.3


def test_baseline_is_told_apart(study: dict[str, Path]) -> None:
    sim, ref = load_sessions(study["baseline"]), load_sessions(study["world"])
    r = compare_sessions(sim, ref, n_boot=N_BOOT, seed=3, level=0.99)
    for name in ("conversion", "reach_product", "reach_reviews", "end_js", "click_type_js"):
        assert name in r["significant"], (name, r["significant"])
    conv = r["figures"]["conversion"]["diff"]
    assert conv["high"] < -0.15  # the baseline buys far less often
    assert r["funnel"]["reach"]["product"]["diff"]["high"] < -0.3
    assert r["click_types"]["js"]["low"] > 0.1 and r["click_types"]["js"]["p_value"] < 0.01
    assert r["funnel"]["end"]["js"]["value"] > 0.1
    assert r["segments"]["significant"] > r["segments"]["tests"] / 2


def test_fast_bootstrap_equals_the_stats_module(study: dict[str, Path]) -> None:
    """The per-user-sum bootstrap draws exactly as stats.bootstrap / bootstrap_diff draw."""
    sim, ref = load_sessions(study["baseline"]), load_sessions(study["world"])
    r = compare_sessions(sim, ref, n_boot=200, seed=7)
    checks = {"conversion": stats.conversion, "mean_length": stats.mean_length,
              "order_value_per_session": stats.order_value}
    for name, fn in checks.items():
        want = stats.bootstrap_diff(sim.rows, ref.rows, fn, n_boot=200, seed=7, paired=True)
        got = r["figures"][name]["diff"]
        assert got == pytest.approx(want.to_dict(), abs=1e-9), name
        one = stats.bootstrap(sim.rows, fn, n_boot=200, seed=7)
        assert r["figures"][name]["sim"] == pytest.approx(one.to_dict(), abs=1e-9), name
    want = stats.bootstrap_diff(sim.rows, ref.rows, stats.reach("cart"), n_boot=200, seed=7, paired=True)
    assert r["funnel"]["reach"]["cart"]["diff"] == pytest.approx(want.to_dict(), abs=1e-9)
    # unpaired: different users on the two sides
    users = sorted(sim.user_ids)
    a, b = sim.restrict(users[:20]), ref.restrict(users[10:])
    u = compare_sessions(a, b, n_boot=200, seed=7, users="all")
    assert not u["bootstrap"]["paired"] and u["scope"]["n_shared_users"] == 10
    want = stats.bootstrap_diff(a.rows, b.rows, stats.conversion, n_boot=200, seed=7, paired=False)
    assert u["figures"]["conversion"]["diff"] == pytest.approx(want.to_dict(), abs=1e-9)
    # JS of the whole sets is the textbook one (base 2)
    p = np.array(list(r["action_types"]["sim"].values()))
    q = np.array([r["action_types"]["reference"][c] for c in r["action_types"]["sim"]])
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        return float(sum(xi * np.log2(xi / mi) for xi, mi in zip(x, m, strict=True) if xi > 0))

    assert r["action_types"]["js"]["value"] == pytest.approx((kl(p) + kl(q)) / 2, abs=1e-9)


def test_paired_intervals_are_narrower_than_unpaired(study: dict[str, Path]) -> None:
    """Same shoppers on both sides: drawing them together cancels the persona's own effect."""
    sim, ref = load_sessions(study["true"]), load_sessions(study["world"])
    paired = compare_sessions(sim, ref, n_boot=400, seed=1)["figures"]["conversion"]["diff"]
    unpaired = stats.bootstrap_diff(sim.rows, ref.rows, stats.conversion, n_boot=400, seed=1, paired=False)
    assert paired["high"] - paired["low"] < 0.9 * unpaired.width
    users = sorted(sim.user_ids)
    with pytest.raises(BadInput, match="share no users"):
        compare_sessions(sim.restrict(users[:15]), ref.restrict(users[15:]), n_boot=50)
    r = compare_sessions(sim.restrict(users[:15]), ref.restrict(users[15:]), n_boot=50, users="all")
    assert not r["bootstrap"]["paired"] and r["per_user"]["users"] == 0
    assert "unpaired" in r["bootstrap"]["resampling"]


def test_segments_of_the_worlds_surveys(study: dict[str, Path]) -> None:
    world = load_sessions(study["world"])
    qs = {q["question"]: q for q in segment_questions(world.users, min_users=5)}
    assert "Personality / Big Five Scores / Openness" in qs
    assert "Self Description / Two sentence description" not in qs  # free text: too many answers
    likert = [q for q in qs if q.startswith("Shopping Preference / To what extent")]
    assert likert
    for q in qs.values():
        assert 2 <= len(q["segments"]) <= 6
        assert all(len(us) >= 5 for us in q["segments"].values())
    order = list(qs[likert[0]]["segments"])
    scale = ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"]
    assert order == [a for a in scale if a in order]


def test_segments_of_an_opera_style_survey() -> None:
    """Real OPeRA surveys: nested Likert statements, Big Five levels, free text and cities."""
    ages = ["18-24 years old", "25-34 years old", "35-44 years old", "45-54 years old"]
    users = {}
    for i in range(14):
        survey = {
            "Demographic Information": {"Age": ages[i % 4] if i < 12 else "65+ years old",
                                        "Gender": ["Female", "Male"][i % 2], "City": f"City {i}",
                                        "Yearly household income or stipend": [
                                            "$100,000+", "$50,000 - $100,000", "$25,000 - $50,000"][i % 3]},
            "Self Description": {"Two sentence description": f"I am shopper {i}. I like things."},
            "Shopping Preference": {
                "Amazon Prime membership": "Yes" if i % 3 else "No",
                "To what extent do you agree with the following statements": {
                    "I compare prices": ["Agree", "Strongly agree", "Disagree"][i % 3]}},
            "Personality": {"Big Five Scores": {"Openness": ["High", "Low"][i % 2]}},
        }
        users[f"u{i}"] = User(f"u{i}", survey=survey)
    flat = flatten_survey(users["u0"].survey)
    assert flat["Shopping Preference / To what extent do you agree with the following statements / "
                "I compare prices"] == "Agree"
    assert flat["Personality / Big Five Scores / Openness"] == "High"
    qs = {q["question"]: q for q in segment_questions(users, min_users=3)}
    assert "Demographic Information / City" not in qs
    assert "Self Description / Two sentence description" not in qs
    age = qs["Demographic Information / Age"]
    assert list(age["segments"]) == ages and age["left_out"] == 2  # "65+" has 2 users: left out
    income = list(qs["Demographic Information / Yearly household income or stipend"]["segments"])
    assert income == ["$25,000 - $50,000", "$50,000 - $100,000", "$100,000+"]  # by amount, not text
    assert list(qs["Shopping Preference / Amazon Prime membership"]["segments"]) == ["No", "Yes"]
    assert list(qs["Shopping Preference / To what extent do you agree with the following statements / "
                   "I compare prices"]["segments"]) == ["Disagree", "Agree", "Strongly agree"]
    assert not segment_questions(users, min_users=8)[:1] or all(
        len(us) >= 8 for q in segment_questions(users, min_users=8) for us in q["segments"].values())


def test_damaged_and_partial_runs_are_one_clear_error(study: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(study["true"], bad)
    lines = (bad / "sessions.jsonl").read_text().splitlines()
    lines[3] = lines[3][: len(lines[3]) // 2]
    (bad / "sessions.jsonl").write_text("\n".join(lines) + "\n")
    before = (bad / "sessions.jsonl").read_bytes()
    with pytest.raises(BadInput, match=r"sessions.jsonl:4"):
        load_sessions(bad)
    assert (bad / "sessions.jsonl").read_bytes() == before  # a reader never repairs someone's run
    recs = [json.loads(x) for x in (study["true"] / "sessions.jsonl").read_text().splitlines()]
    del recs[5]["steps"][2]["action"]
    (bad / "sessions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(BadInput, match=r"malformed step .*sessions.jsonl:6"):
        load_sessions(bad)
    with pytest.raises(MissingInput):
        load_sessions(tmp_path / "nothing-here")


def test_sessions_without_a_valid_step_still_count(study: dict[str, Path], tmp_path: Path) -> None:
    """A session whose every action was invalid is a session that did not buy (as the manifest counts it)."""
    d = tmp_path / "errs"
    shutil.copytree(study["baseline"], d)
    recs = [json.loads(x) for x in (d / "sessions.jsonl").read_text().splitlines()]
    for e in recs[0]["steps"]:
        e["error_kind"], e["error"] = "unknown_element", "no such element"
    recs[0]["outcome"], recs[0]["end_reason"] = "terminate", "max_errors"
    (d / "sessions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    s = load_sessions(d)
    assert len(s.rows) == 120
    row = next(r for r in s.rows if r.extra["record"] == 0)
    assert row.n_steps == 0 and not row.converted and row.extra["end_reason"] == "max_errors"


def test_cli_compare_end_to_end(study: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    code, stdout, err = invoke(["sim", "compare", str(study["baseline"]), str(study["world"]),
                                "--out", str(out), "--n-boot", "100", "--split", "train"])
    assert code == 0, err
    result = json.loads((out / "compare.json").read_text())
    assert result["reference"]["split"] == "train" and result["scope"]["reference_sessions"] == 90
    assert "conversion" in result["significant"]
    md = (out / "compare.md").read_text()
    assert "| conversion |" in md and "**significant**" in md and "## Conversion by persona segment" in md
    assert "conversion" in stdout and "click type JS" in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 80, stdout
    assert "shared users (paired)" in err
    code, _, err = invoke(["sim", "compare", str(study["baseline"]), str(study["world"]),
                           "--out", str(out), "--users", "some"])
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_write_comparison_is_valid_json(study: dict[str, Path], tmp_path: Path) -> None:
    sim, ref = load_sessions(study["true"]), load_sessions(study["world"])
    r = compare_sessions(sim.restrict(sorted(sim.user_ids)[:4]), ref, n_boot=20)
    j, m = write_comparison(r, tmp_path / "w")
    text = j.read_text()
    assert "NaN" not in text and json.loads(text)["schema"] == 1 and m.is_file()
    assert not [p for p in (tmp_path / "w").iterdir() if ".tmp-" in p.name]
