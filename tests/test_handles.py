"""``--compress handles``: the current page's names as short numbers the model reads and
writes; everything outside the model (gold columns, metrics, rewards, the environment)
keeps real names, converted at each boundary."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from customer_r1.actions import (
    Action,
    format_target,
    from_handle,
    handle_candidates,
    parse_completion,
    probs_from_handles,
    to_handle,
)
from customer_r1.data.compress import with_handles
from customer_r1.data.examples import BuildConfig, ExampleBuilder
from customer_r1.data.names import page_names
from customer_r1.evaluation.backends.base import Generation
from customer_r1.evaluation.predict import _ranked_rows, pred_row
from customer_r1.rewards import make_rewards
from customer_r1.sim.policies import ActRequest, EndpointPolicy, RankerPolicy
from customer_r1.sim.prompts import PromptBuilder
from customer_r1.world import WorldConfig, generate_world

NAMES = ["nav.search", "results.a&b", "results.c", "quantity.2"]
HANDLES = ["furniture", "history_diff", "trim_current", "handles"]


def test_handles_round_trip_and_leave_anything_else_alone():
    for n in NAMES:
        a = Action.click(n)
        h = to_handle(a, NAMES)
        assert h.name == str(NAMES.index(n)) and from_handle(h, NAMES) == a
    typed = to_handle(Action.input("nav.search", "Rice Cooker"), NAMES)
    assert typed == Action.input("0", "Rice Cooker")
    assert from_handle(typed, NAMES) == Action.input("nav.search", "Rice Cooker")
    # Not a handle of this page: kept as written (and so scored as the wrong element).
    for name in ("4", "17", "01", "-1", "results.c", "²", "1.0"):
        assert from_handle(Action.click(name), NAMES) == Action.click(name)
    assert to_handle(Action.click("elsewhere"), NAMES) == Action.click("elsewhere")
    assert from_handle(Action.terminate(), NAMES) == Action.terminate()
    assert from_handle(Action.click("1"), None) == Action.click("1")
    assert handle_candidates(NAMES, ["nav.search", "gone"]) == (["0", "1", "2", "3"], ["0"])
    probs = {Action.click("1").to_json(): 0.25, Action.click("9").to_json(): 0.5,
             Action.terminate().to_json(): 0.25}
    assert probs_from_handles(probs, NAMES) == {Action.click("results.a&b").to_json(): 0.25,
                                                Action.click("9").to_json(): 0.5,
                                                Action.terminate().to_json(): 0.25}


def test_with_handles_rewrites_name_attributes_only():
    lines = ['<a name="results.a&amp;b" title="x>y">A &amp; B</a> $3 name="results.c" '
             '<input name="nav.search" value="a name=&quot;q&quot;"/>',
             '<div name="not.on.page">x</div>']
    assert with_handles(lines, NAMES) == [
        '<a name="1" title="x>y">A &amp; B</a> $3 name="results.c" '
        '<input name="0" value="a name=&quot;q&quot;"/>',
        '<div name="not.on.page">x</div>']


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig(users=3, sessions_per_user=2, seed=4, population=40))


def test_built_rows_show_and_target_handles_and_keep_names_elsewhere(world):
    data = world.to_shopping_data()
    cfg = BuildConfig(tokenizer=None, token_budget=None, compress=HANDLES, prompt_style="compact",
                      progress=False)
    rows = list(ExampleBuilder(data, cfg).iter_rows(data.sessions))
    plain = {r["example_id"]: r for r in ExampleBuilder(data, BuildConfig(
        tokenizer=None, token_budget=None, compress=HANDLES[:3], prompt_style="compact",
        progress=False)).iter_rows(data.sessions)}
    assert rows and all(r["name_handles"] for r in rows)
    assert not any(r["name_handles"] for r in plain.values())
    clicks = noted = 0
    for r in rows:
        names = list(r["page_names"])
        gold = Action.from_json(r["action_json"])
        pred = parse_completion(r["completion"][0]["content"]).action
        assert from_handle(pred, names) == gold  # the target is the gold action, in handles
        user = r["prompt"][-1]["content"]
        history, current = user.rsplit("# Current page", 1)
        # The current page names nothing but handles, and every name of it has one.
        assert set(page_names(current)[0]) == {str(i) for i in range(len(names))}
        if gold.name is not None:
            clicks += 1
            assert pred.name == str(names.index(gold.name))
            assert f'name="{pred.name}"' in current
        # Earlier steps keep their real names (what the shopper did, not page positions),
        # and say the acted element's handle when it is on the current page.
        twin = plain[r["example_id"]]["prompt"][-1]["content"]
        notes = re.findall(r'"name": "([^"]*)"[^\n]*?\} \(current page: name="(\d+)"\)', history)
        for name, handle in notes:
            assert names[int(handle)] == json.loads(f'"{name}"')
        noted += len(notes)
        assert re.sub(r' \(current page: name="\d+"\)', "", history) == twin.rsplit("# Current page", 1)[0]
        assert r["semantic_id"] == plain[r["example_id"]]["semantic_id"]
    assert clicks > 10 and noted > 10
    with pytest.raises(ValueError, match="needs prompt_style full or compact"):
        BuildConfig(compress=["handles"], prompt_style="chat")


def _row(names, gold: Action):
    return {"example_id": "s#0", "action_json": gold.to_json(), "page_names": names,
            "input_names": ["nav.search"], "name_handles": True, "require_rationale": True,
            "prompt": [{"role": "user", "content": "x"}], "action_type": gold.type}


def test_predictions_and_rewards_map_handles_back_to_names():
    gold = Action.click("results.c")
    row = _row(NAMES, gold)
    good = format_target(Action.click("2"), "why")
    out = pred_row(row, completion=good, mode="free",
                   candidate_probs={Action.click("2").to_json(): 0.75, Action.terminate().to_json(): 0.25})
    assert json.loads(out["action_json"]) == gold.to_dict()
    assert out["completion"] == good  # what the model wrote is kept as written
    assert out["candidate_probs"] == {gold.to_json(): 0.75, Action.terminate().to_json(): 0.25}
    # Without the flag the same text is a (wrong) element called "2".
    assert json.loads(pred_row({**row, "name_handles": False}, completion=good,
                               mode="free")["action_json"])["name"] == "2"
    bad = format_target(Action.click("1"), "why")
    action, binary = make_rewards(["action", "action_binary"])
    cols = {k: [row[k]] * 3 for k in ("action_json", "page_names", "name_handles", "require_rationale")}
    cols["click_type"] = ["product_link"] * 3
    completions = [good, bad, format_target(gold, "why")]
    # (a real name still designates its element: kept as written, so it matches)
    assert binary(completions=completions, **cols) == [1.0, 0.0, 1.0]
    assert action(completions=completions, **cols)[0] > 0 and action(completions=completions, **cols)[1] <= 0
    cols["name_handles"] = [False] * 3
    assert binary(completions=completions, **cols) == [0.0, 0.0, 1.0]

    seen = {}

    class Ranker:
        def predict(self, prompt, names, inputs, *, require_rationale):
            seen["names"], seen["inputs"] = names, inputs
            best = Action.click(names[2])
            return SimpleNamespace(completion=format_target(best, "r"),
                                   candidate_probs={best.to_json(): 1.0})

    [ranked] = _ranked_rows(Ranker(), [row], "m")
    assert seen == {"names": ["0", "1", "2", "3"], "inputs": ["0"]}
    assert json.loads(ranked["action_json"]) == gold.to_dict()
    assert ranked["candidate_probs"] == {gold.to_json(): 1.0}


def _request(world):
    data = world.to_shopping_data()
    s = data.sessions[0]
    obs = s.steps[1].observation
    return data, ActRequest(s.session_id, obs, [s.steps[0]], data.users[s.user_id], seed=3)


def test_simulated_shoppers_write_handles_and_act_on_names(world):
    data, req = _request(world)
    names = page_names(req.observation.html)[0]
    build = BuildConfig(tokenizer=None, token_budget=None, compress=HANDLES, prompt_style="compact",
                        progress=False)
    target = names[-1]

    class Backend:
        def generate(self, prompts, **kw):
            assert f'name="{len(names) - 1}"' in prompts[0][-1]["content"]
            return [Generation(texts=(format_target(Action.click(str(len(names) - 1)), "r"),))
                    for _ in prompts]

    [act] = EndpointPolicy(Backend(), build, data.users).act_batch([req])
    assert act.action == Action.click(target) and '"name": "' + str(len(names) - 1) in act.raw

    class Ranker:
        def predict_batch(self, reqs, rationale, rationale_temperature):
            assert list(reqs[0].page_names) == [str(i) for i in range(len(names))]
            key = Action.click(str(len(names) - 1)).to_json()
            return [SimpleNamespace(candidate_probs={key: 1.0}, rationale="r") for _ in reqs]

    policy = RankerPolicy.__new__(RankerPolicy)
    policy.ranker, policy.prompts, policy.temperature = Ranker(), PromptBuilder(build, data.users), 1.0
    policy.rationale, policy.rationale_temperature = "sample", 1.0
    [act] = policy.act_batch([req])
    assert act.action == Action.click(target) and act.info["argmax"] == act.action.to_json()


def test_a_handles_checkpoint_shops_the_world_by_name(world, tmp_path):
    """Closed loop with a real tiny checkpoint, fitted for a moment to the first steps of
    handles-built examples (an untrained one only terminates), whose build.json says
    ``handles``: it ranks handles, and every action the site gets is a real name on the
    page it was taken on; the recorded session reads back as OPeRA."""
    from tiny_lm import make_model, make_tokenizer, one_thread, train_on

    from customer_r1.data.opera import load_opera
    from customer_r1.sim.simulate import simulate
    from customer_r1.world import export_world

    wdir = tmp_path / "world"
    export_world(world, wdir)
    ckpt = tmp_path / "m"
    tok = make_tokenizer()
    tok.save_pretrained(ckpt)
    config = {"prompt_style": "compact", "token_budget": 3000, "persona_mode": "real", "compress": HANDLES}
    data = world.to_shopping_data()
    rows = [r for r in ExampleBuilder(data, BuildConfig(**config, tokenizer=str(ckpt), progress=False))
            .iter_rows(data.sessions) if r["step_index"] < 2][:6]
    assert all('"name": "' in r["completion"][0]["content"] for r in rows)
    with one_thread():
        model = train_on(make_model(tok, seed=1), tok,
                         [(r["prompt"], r["completion"][0]["content"]) for r in rows], steps=60)
    model.save_pretrained(ckpt)
    (ckpt / "build.json").write_text(json.dumps({"config": config}))
    with one_thread():
        m = simulate(world=wdir, out=tmp_path / "run", model=str(ckpt), max_users=2, sessions_per_user=1,
                     max_steps=5, seed=2, concurrency=2, device="cpu", progress=False)
    assert m["counts"]["sessions"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run" / "sessions.jsonl").read_text().splitlines()]
    acted = 0
    for r in rows:
        for e in r["steps"]:
            name = (e["action"] or {}).get("name")
            if name:
                acted += 1
                assert name in page_names(e["observation"]["html"])[0]
    assert acted > 0
    assert load_opera(tmp_path / "run").sessions


def test_the_baseline_writes_in_the_model_format_and_scores_the_same():
    from customer_r1.evaluation.baselines import PageKindBaseline

    gold = Action.click("quantity.2")
    names = ["2", "nav.search", "quantity.2"]  # a page whose first name looks like a handle
    row = {**_row(names, gold), "url": "https://shop.example/dp/1"}
    base = PageKindBaseline().fit([row])
    text = base.completion(row)
    assert parse_completion(text).action == Action.click("2")  # the handle of quantity.2
    assert json.loads(pred_row(row, completion=text, mode="baseline")["action_json"]) == gold.to_dict()
    plain = {**row, "name_handles": False}
    assert json.loads(pred_row(plain, completion=base.completion(plain), mode="baseline")["action_json"]) \
        == gold.to_dict()


def test_grpo_passes_page_names_to_the_rewards_on_a_handles_build(tmp_path, monkeypatch):
    """TRL hands every reward the row's ``page_names`` and ``name_handles``, which the
    action reward needs to map a handle back (REWARD_COLUMNS)."""
    from shopdata import make_data
    from trainkit import common_args, tiny_setup

    from customer_r1.data.examples import write_examples
    from customer_r1.training import grpo

    base, _ = tiny_setup(tmp_path, n_sessions=3)
    data = make_data(n_sessions=3, items=3)
    for s in data.sessions:
        for st in s.steps:
            st.rationale = st.rationale or "I just do it"
    built = tmp_path / "built-h"
    write_examples(data, BuildConfig(tokenizer=str(base), token_budget=1200, prompt_style="compact",
                                     compress=["handles"], progress=False), built)
    spy = tmp_path / "spy.jsonl"
    monkeypatch.setenv("CR1_REWARD_SPY", str(spy))
    m = grpo.main(["--dataset_path", str(built), "--model_name_or_path", str(base),
                   "--reward_funcs", "dist_rewards:record_columns", "action",
                   "--per_device_train_batch_size", "2", "--num_generations", "2",
                   "--max_completion_length", "8", "--max_steps", "1", *common_args(tmp_path / "g")])
    assert m["global_step"] == 1
    seen = [json.loads(x) for x in spy.read_text().splitlines()]
    assert seen and all(r["name_handles"] is True and r["page_names"] for r in seen)
    assert all(Action.from_json(r["action_json"]).name in (None, *r["page_names"]) for r in seen)
