"""The OPeRA loader: layouts, decoding, joins, ordering, the full config, and bad input."""

from __future__ import annotations

import json
import logging
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from opera_layout import (
    REAL_ROW0,
    action_row,
    encode_rows,
    real_action_row0,
    session_id_of,
    sessions_for,
    timestamp,
    user_row,
    users_for,
    write_opera,
    write_table,
)

from customer_r1.actions import Action
from customer_r1.data.opera import OperaFormatError, is_hub_id, is_missing, load_opera
from customer_r1.domain import ShoppingData

FILTERED_SHARD = "OPeRA_filtered/action/train-00000-of-00001.parquet"


def _steps(data: ShoppingData, sid: str) -> list:
    (session,) = [s for s in data.sessions if s.session_id == sid]
    return session.steps


# ---------------------------------------------------------------- the real first row


def test_real_row0_decodes(tmp_path: Path) -> None:
    row = real_action_row0()
    sid = row["session_id"]
    end = action_row(sid, "terminate", timestamp="2025-04-14T21:55:50.785Z")
    write_opera(tmp_path, actions={"train": [row, end]})
    data = load_opera(tmp_path)

    user_id = "324934a2-5d58-49d9-bae8-545fba660731"
    assert set(data.users) == {user_id}
    (session,) = data.sessions
    assert session.user_id == user_id and session.split == "train"
    step = session.steps[0]
    raw = json.loads(REAL_ROW0.read_text())
    assert step.action_id == raw["action_id"]
    assert step.timestamp == "2025-04-14T21:52:57.792Z"
    assert step.kind == "click"
    assert step.action == Action.click(raw["semantic_id"])
    assert step.click_type == "product_link"
    assert step.rationale is None and step.rationale_source is None
    assert step.products is None
    assert step.observation.url.endswith("/dp/B00WO6EK54?URL_MASKED")
    assert step.observation.page_meta == {"search_term": [{"term": ""}], "cart_items": []}
    assert f'name="{raw["semantic_id"]}"' in step.observation.html
    # element_meta: JSON whose `data` is itself a JSON string
    assert step.extra["element_meta"] == {
        "name": "promotion_items",
        "data": {
            "title": "Tiger JBV-S18U 10-Cup Microcomputer Controlled 4-in-1 Rice Cooker (White)",
            "asin": "B01L9SD3K0",
            "price": "$139.99",
            "quantity": "",
        },
    }
    assert step.extra["mouse_position"]["pageY"] == 1421
    assert step.extra["window_size"] == {"width": 1920, "height": 934}
    assert "image" not in step.extra  # unknown in the fixture -> written as missing
    assert session.outcome == "terminate"
    assert data.skipped == {}


# ---------------------------------------------------------------- layouts


def _two_split_actions() -> dict[str, list[dict[str, Any]]]:
    a, b, c = session_id_of("ua", 1), session_id_of("ub", 2), session_id_of("ua", 3)
    return {
        "train": [action_row(a, "input"), action_row(a), action_row(a, "terminate"),
                  action_row(b), action_row(b, "terminate")],
        "test": [action_row(c), action_row(c, "click", click_type="purchase",
                                            semantic_id="buybox.add_to_cart")],
    }


def _summary(data: ShoppingData) -> list[tuple]:
    return [
        (s.session_id, s.user_id, s.split, s.outcome,
         [(st.action_id, st.action) for st in s.steps])
        for s in data.sessions
    ]


def test_sharded_and_single_file_layouts_agree(tmp_path: Path) -> None:
    actions = _two_split_actions()
    write_opera(tmp_path / "sharded", actions=actions, shards=2)
    write_opera(tmp_path / "single", actions=actions, sharded=False)
    assert sorted(p.name for p in (tmp_path / "sharded/OPeRA_filtered/action").iterdir()) == [
        "test-00000-of-00002.parquet", "test-00001-of-00002.parquet",
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
    ]
    assert (tmp_path / "single/OPeRA_filtered/action/train/train.parquet").is_file()

    sharded = load_opera(tmp_path / "sharded")
    single = load_opera(tmp_path / "single")
    assert _summary(sharded) == _summary(single)
    assert sharded.splits == ["test", "train"]
    assert [len(sharded.split("train")), len(sharded.split("test"))] == [2, 1]
    assert [s.outcome for s in sharded.sessions] == ["terminate", "terminate", "purchase"]
    assert set(sharded.users) == {"ua", "ub"}  # ua is in both splits' user tables


def test_src_forms_and_split_selection(tmp_path: Path) -> None:
    base = write_opera(tmp_path, actions=_two_split_actions())
    assert _summary(load_opera(base)) == _summary(load_opera(tmp_path))
    assert _summary(load_opera(str(tmp_path))) == _summary(load_opera(tmp_path))
    test_only = load_opera(tmp_path, splits=["test"])
    assert test_only.splits == ["test"] and set(test_only.users) == {"ua"}
    assert _summary(load_opera(tmp_path, splits="test")) == _summary(test_only)
    assert load_opera(tmp_path, splits=[]).splits == ["test", "train"]  # empty: all
    with pytest.raises(FileNotFoundError, match="valid"):
        load_opera(tmp_path, splits=["valid"])
    with pytest.raises(FileNotFoundError, match="OPeRA_full"):
        load_opera(tmp_path, config="full")
    with pytest.raises(ValueError, match="config='filtered'"):
        load_opera(base, config="full")
    with pytest.raises(FileNotFoundError):
        load_opera(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="config must be"):
        load_opera(tmp_path, config="raw")  # type: ignore[arg-type]


def test_missing_session_or_user_file(tmp_path: Path) -> None:
    base = write_opera(tmp_path, actions=_two_split_actions())
    (base / "user/test/test.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="no user table for split 'test'"):
        load_opera(tmp_path)
    assert load_opera(tmp_path, splits=["train"]).splits == ["train"]


# ---------------------------------------------------------------- rules


def test_steps_ordered_by_timestamp_stable_on_ties(tmp_path: Path) -> None:
    sid = session_id_of("u", 0)
    rows = [
        action_row(sid, "terminate", action_id="t", timestamp=timestamp(50)),
        action_row(sid, action_id="tie1", timestamp=timestamp(10)),
        action_row(sid, action_id="first", timestamp="2025-04-14T21:00:01.500Z"),
        action_row(sid, action_id="tie2", timestamp=timestamp(10)),
        action_row(sid, action_id="naive", timestamp="2025-04-14T21:00:20"),  # no Z: UTC
    ]
    write_opera(tmp_path, actions={"train": rows[:3]}, shards=1)
    # rows across two shards: the order key is global, not per file
    write_opera(tmp_path / "two", actions={"train": rows}, shards=2)
    assert [s.action_id for s in load_opera(tmp_path).sessions[0].steps] == ["first", "tie1", "t"]
    assert [s.action_id for s in load_opera(tmp_path / "two").sessions[0].steps] == [
        "first", "tie1", "tie2", "naive", "t"
    ]


@pytest.mark.parametrize("missing", [None, "", "NaN", "nan", "  "])
def test_null_nan_and_empty_are_missing(tmp_path: Path, missing: Any) -> None:
    sid = session_id_of("u", 0)
    rows = [
        action_row(sid, rationale=missing, products=missing, page_meta=missing, url=missing,
                   element_meta=missing, mouse_position=missing, image=missing),
        action_row(sid, "terminate", semantic_id=missing, click_type=missing),
    ]
    write_opera(tmp_path, actions={"train": rows})
    first, last = load_opera(tmp_path).sessions[0].steps
    assert first.rationale is None and first.rationale_source is None
    assert first.products is None
    assert first.observation.page_meta is None and first.observation.url == ""
    assert "element_meta" not in first.extra and "mouse_position" not in first.extra
    assert "image" not in first.extra
    assert last.action == Action.terminate() and last.click_type is None


def test_float_nan_column_and_json_null_are_missing(tmp_path: Path) -> None:
    """A column of only NaN is written by pandas as float64; JSON 'null'/'NaN' decode to None."""
    sid = session_id_of("u", 0)
    rows = [
        action_row(sid, rationale=float("nan"), products="null", page_meta="NaN"),
        action_row(sid, "terminate", rationale=float("nan")),
    ]
    base = write_opera(tmp_path, actions={"train": rows})
    schema = pq.read_schema(base / "action/train-00000-of-00001.parquet")
    assert str(schema.field("rationale").type) == "double"
    step = load_opera(tmp_path).sessions[0].steps[0]
    assert step.rationale is None and step.products is None
    assert step.observation.page_meta is None


def test_is_missing() -> None:
    assert all(is_missing(v) for v in (None, float("nan"), "", "NaN", "nan", " \n"))
    assert not any(is_missing(v) for v in ("0", "x", 0, {}, [], " a"))


def test_json_inside_json_and_products(tmp_path: Path) -> None:
    sid = session_id_of("u", 0)
    products = [{"asin": "B01", "title": "[2-Pack] Pan", "price": "$9.99", "quantity": "1",
                 "options": json.dumps({"Color": "Red"})}]
    rows = [
        action_row(
            sid,
            page_meta={
                "search_term": json.dumps([{"term": "rice cooker"}]),  # JSON string value
                "cart_items": [{"asin": "B02"}],
                "promotion_items": "",
                "note": "plain text",
            },
            element_meta={"name": "search_results", "data": json.dumps({"asin": "B03"})},
            products=products,
            rationale="I want the cheaper one",
        ),
        action_row(sid, "terminate", element_meta={"name": "x", "data": ""}),
    ]
    write_opera(tmp_path, actions={"train": rows})
    first, last = load_opera(tmp_path).sessions[0].steps
    assert first.observation.page_meta == {
        "search_term": [{"term": "rice cooker"}],
        "cart_items": [{"asin": "B02"}],
        "promotion_items": None,
        "note": "plain text",
    }
    assert first.extra["element_meta"] == {"name": "search_results", "data": {"asin": "B03"}}
    assert first.products == [{**products[0], "options": {"Color": "Red"}}]
    assert first.rationale == "I want the cheaper one" and first.rationale_source == "human"
    assert last.extra["element_meta"] == {"name": "x", "data": None}


def test_users_are_decoded(tmp_path: Path) -> None:
    sid = session_id_of("u1", 0)
    users = [user_row("u1", raw_survey="Q: age? A: 30", interview_transcript="hello"),
             user_row("lurker", survey="")]
    write_opera(tmp_path, actions={"train": [action_row(sid, "terminate")]},
                users={"train": users})
    data = load_opera(tmp_path)
    u1 = data.users["u1"]
    assert u1.survey is not None
    assert u1.survey["Demographic Information"]["Age"] == "25-34 years old"
    assert u1.interview_processed == "### Shopping Preference\nLikes deals."
    assert u1.raw_survey == "Q: age? A: 30" and u1.interview_transcript == "hello"
    assert data.users["lurker"].survey is None  # users without sessions are kept


def test_session_table_without_actions_is_counted(tmp_path: Path) -> None:
    sid = session_id_of("u1", 0)
    idle = session_id_of("u1", 9)
    sessions = [{"session_id": sid, "user_id": "u1"}, {"session_id": idle, "user_id": "u1"}]
    write_opera(tmp_path, actions={"train": [action_row(sid, "terminate")]},
                sessions={"train": sessions})
    data = load_opera(tmp_path)
    assert [s.session_id for s in data.sessions] == [sid]
    assert data.skipped == {"sessions_without_actions": 1}


# ---------------------------------------------------------------- full config


def _full_rows() -> tuple[str, str, list[dict[str, Any]]]:
    a, b = session_id_of("uf", 1), session_id_of("uf", 2)
    rows = [
        action_row(a, "navigation", navigation_type="link", semantic_id=None,
                   simplified_html_new_page="<html>new</html>"),
        action_row(a, "scroll", scroll_detail={"deltaY": 300}, target="div.results",
                   semantic_id="search_results"),
        action_row(a, "input", input_text=None),  # empty input: kept only without reduction
        action_row(a, "tabActivate"),
        action_row(a, "tab_activate"),
        action_row(a, "click"),
        action_row(a, "terminate"),
        action_row(b, "scroll"),  # a session of only scrolls vanishes when reduced
    ]
    return a, b, rows


def test_full_config_without_reduction_keeps_every_kind(tmp_path: Path) -> None:
    a, b, rows = _full_rows()
    write_opera(tmp_path, actions={"train": rows}, config="full")
    data = load_opera(tmp_path, config="full", reduce=False)
    steps = _steps(data, a)
    assert [s.kind for s in steps] == [
        "navigation", "scroll", "input", "tab_activate", "tab_activate", "click", "terminate"
    ]
    nav, scroll, empty_input = steps[:3]
    assert nav.action is None and nav.extra["navigation_type"] == "link"
    assert nav.extra["simplified_html_new_page"] == "<html>new</html>"
    assert scroll.action is None and scroll.extra["scroll_detail"] == {"deltaY": 300}
    assert scroll.extra["target"] == "div.results"
    assert scroll.extra["semantic_id"] == "search_results"
    assert empty_input.action == Action.input("nav_bar.search_input", "")
    assert len(_steps(data, b)) == 1
    assert data.skipped == {}


def test_full_config_reduced_by_default(tmp_path: Path) -> None:
    a, _, rows = _full_rows()
    base = write_opera(tmp_path, actions={"train": rows}, config="full")
    data = load_opera(base, config="full")
    assert [s.session_id for s in data.sessions] == [a]
    assert [s.kind for s in data.sessions[0].steps] == ["click", "terminate"]
    assert data.skipped == {"sessions_empty_after_reduction": 1}


def test_filtered_config_rejects_full_only_kinds(tmp_path: Path) -> None:
    sid = session_id_of("u", 0)
    write_opera(tmp_path, actions={"train": [action_row(sid, "scroll"),
                                             action_row(sid, "terminate")]})
    with pytest.raises(OperaFormatError) as info:
        load_opera(tmp_path)
    assert (info.value.row, info.value.column) == (0, "action_type")
    assert "filtered config" in info.value.message


# ---------------------------------------------------------------- the Hub


def test_hub_id_goes_through_load_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    actions = _two_split_actions()
    tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for split, rows in actions.items():
        sessions = sessions_for(rows)
        tables["filtered_action", split] = encode_rows(rows)
        tables["filtered_session", split] = sessions
        tables["filtered_user", split] = encode_rows(users_for(sessions))
    calls: list[tuple[str, str, str]] = []

    def fake_load_dataset(path: str, name: str, split: str, **_: Any) -> datasets.Dataset:
        calls.append((path, name, split))
        return datasets.Dataset.from_list(tables[name, split])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert is_hub_id("NEU-HAI/OPeRA")
    data = load_opera("NEU-HAI/OPeRA")
    assert calls == [("NEU-HAI/OPeRA", f"filtered_{t}", s)
                     for s in ("train", "test") for t in ("action", "session", "user")]
    write_opera(tmp_path, actions=actions)
    assert _summary(data) == _summary(load_opera(tmp_path))
    assert data.source == "NEU-HAI/OPeRA"

    # errors name the Hub config and split as the file
    tables["filtered_action", "test"][1]["click_type"] = "teleport"
    with pytest.raises(OperaFormatError) as info:
        load_opera("NEU-HAI/OPeRA", splits=["test"])
    assert info.value.file == "NEU-HAI/OPeRA [filtered_action, test]"
    assert (info.value.row, info.value.column) == (1, "click_type")


def test_is_hub_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_hub_id("NEU-HAI/OPeRA") and is_hub_id("someone/my.data-set_2")
    assert not is_hub_id("OPeRA") and not is_hub_id("/abs/path") and not is_hub_id("a/b/c")
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("owner/name")  # an existing local path wins


# ---------------------------------------------------------------- bad input

# Every case starts from two sessions: "good" (rows 0-1) and "bad" (rows 2-3), all in
# one action file; a mutation breaks one thing. Each case says where the strict error
# points (table, row, column, reason) and what a lenient load counts and keeps.

GOOD, BAD = session_id_of("good", 1), session_id_of("bad", 2)
TABLE_FILES = {
    "action": FILTERED_SHARD,
    "session": "OPeRA_filtered/session/train/train.parquet",
    "user": "OPeRA_filtered/user/train/train.parquet",
}


def _base_tables() -> dict[str, Any]:
    actions = [
        action_row(GOOD, "input"),
        action_row(GOOD, "terminate"),
        action_row(BAD, "click"),
        action_row(BAD, "terminate"),
    ]
    sessions = sessions_for(actions)
    return {"actions": actions, "sessions": sessions, "users": users_for(sessions)}


def _set(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(t: dict[str, Any]) -> None:
        t["actions"][index].update(changes)

    return mutate


def _drop_column(column: str) -> Callable[[dict[str, Any]], None]:
    def mutate(t: dict[str, Any]) -> None:
        for row in t["actions"]:
            row.pop(column)

    return mutate


def _duplicate_action_id(t: dict[str, Any]) -> None:
    t["actions"][3]["action_id"] = t["actions"][0]["action_id"]


def _session_not_in_table(t: dict[str, Any]) -> None:
    t["sessions"] = [s for s in t["sessions"] if s["session_id"] != BAD]


def _user_not_in_table(t: dict[str, Any]) -> None:
    t["users"] = [u for u in t["users"] if u["user_id"] != "bad"]


def _user_id_mismatch(t: dict[str, Any]) -> None:
    t["sessions"][1]["user_id"] = "good"


def _bad_survey(t: dict[str, Any]) -> None:
    t["users"][1]["survey"] = "{not json"


SESSION_GONE = {"session_skipped": 2, "sessions_emptied": 1}

BAD_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, int | None, str, dict]] = [
    # (id, mutation, table, row, column, lenient skipped)
    ("missing_column", _drop_column("action_type"), "action", None, "action_type",
     {"missing_column": 4, "sessions_emptied": 2}),
    ("bad_json", _set(2, mouse_position="{clientX: 1"), "action", 2, "mouse_position",
     {"bad_json": 1}),
    ("bad_json_window", _set(2, window_size="[1,"), "action", 2, "window_size", {"bad_json": 1}),
    ("bad_json_page_meta", _set(2, page_meta="{'a': 1}"), "action", 2, "page_meta",
     {"bad_json": 1}),
    ("page_meta_not_object", _set(2, page_meta="[1, 2]"), "action", 2, "page_meta",
     {"bad_json": 1}),
    ("bad_json_in_page_meta_value", _set(2, page_meta={"search_term": "[{\"term\": "}),
     "action", 2, "page_meta.search_term", {"bad_json": 1}),
    ("bad_json_element_meta_data", _set(2, element_meta={"name": "x", "data": "{oops"}),
     "action", 2, "element_meta.data", {"bad_json": 1}),
    ("bad_json_products", _set(2, products="[{]"), "action", 2, "products", {"bad_json": 1}),
    ("products_not_list", _set(2, products={"asin": "B0"}), "action", 2, "products",
     {"bad_json": 1}),
    ("unknown_action_type", _set(2, action_type="hover"), "action", 2, "action_type",
     {"unknown_action_type": 1}),
    ("missing_action_type", _set(2, action_type=""), "action", 2, "action_type",
     {"unknown_action_type": 1}),
    ("click_without_semantic_id", _set(2, semantic_id=None), "action", 2, "semantic_id",
     {"missing_semantic_id": 1}),
    ("input_without_semantic_id", _set(0, semantic_id=""), "action", 0, "semantic_id",
     {"missing_semantic_id": 1}),
    ("click_without_click_type", _set(2, click_type="NaN"), "action", 2, "click_type",
     {"bad_click_type": 1}),
    ("invalid_click_type", _set(2, click_type="teleport"), "action", 2, "click_type",
     {"bad_click_type": 1}),
    ("input_without_text", _set(0, input_text=""), "action", 0, "input_text",
     {"missing_input_text": 1}),
    ("missing_action_id", _set(2, action_id=None), "action", 2, "action_id",
     {"missing_value": 1}),
    ("duplicate_action_id", _duplicate_action_id, "action", 3, "action_id",
     {"duplicate_action_id": 1}),
    ("bad_timestamp", _set(2, timestamp="yesterday"), "action", 2, "timestamp",
     {"bad_timestamp": 1}),
    ("missing_timestamp", _set(2, timestamp=None), "action", 2, "timestamp",
     {"bad_timestamp": 1}),
    ("session_not_in_session_table", _session_not_in_table, "action", 2, "session_id",
     {"session_not_in_session_table": 2}),
    ("user_not_in_user_table", _user_not_in_table, "session", 1, "user_id",
     {"user_not_in_user_table": 1, **SESSION_GONE}),
    ("user_id_mismatch", _user_id_mismatch, "session", 1, "user_id",
     {"user_id_mismatch": 1, **SESSION_GONE}),
    ("bad_survey_json", _bad_survey, "user", 1, "survey",
     {"bad_json": 1, "user_not_in_user_table": 1, **SESSION_GONE}),
]


def _write_case(root: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    t = _base_tables()
    mutate(t)
    write_opera(root, actions={"train": t["actions"]}, sessions={"train": t["sessions"]},
                users={"train": t["users"]})


@pytest.mark.parametrize(
    ("mutate", "table", "row", "column", "lenient_skipped"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CASES],
)
def test_bad_input(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mutate: Callable[[dict[str, Any]], None],
    table: str,
    row: int | None,
    column: str,
    lenient_skipped: dict[str, int],
) -> None:
    _write_case(tmp_path, mutate)
    with pytest.raises(OperaFormatError) as info:
        load_opera(tmp_path)
    err = info.value
    assert isinstance(err, ValueError)
    assert Path(err.file) == tmp_path / TABLE_FILES[table]
    assert (err.row, err.column) == (row, column)
    text = str(err)
    assert err.file in text and repr(column) in text
    assert (f"row {row}" if row is not None else "all rows") in text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="customer_r1.data.opera"):
        data = load_opera(tmp_path, lenient=True)
    assert data.skipped == lenient_skipped
    (record,) = [r for r in caplog.records if r.name == "customer_r1.data.opera"]
    assert all(f"{k}={v}" in record.getMessage() for k, v in lenient_skipped.items())
    kept_rows = sum(len(s.steps) for s in data.sessions)
    dropped_rows = sum(v for k, v in lenient_skipped.items() if not k.startswith("sessions_"))
    # every action row is either kept or counted (user/session table rows counted apart)
    table_rows = sum(v for k, v in lenient_skipped.items()
                     if k in ("user_not_in_user_table", "user_id_mismatch")
                     or (table == "user" and k == "bad_json"))
    assert kept_rows + dropped_rows - table_rows == 4
    if "sessions_emptied" not in lenient_skipped or lenient_skipped["sessions_emptied"] < 2:
        assert GOOD in {s.session_id for s in data.sessions}


def test_session_whose_rows_all_fail_disappears_counted(tmp_path: Path) -> None:
    def mutate(t: dict[str, Any]) -> None:
        t["actions"][2]["timestamp"] = "not a time"
        t["actions"][3]["action_type"] = "wave"

    _write_case(tmp_path, mutate)
    data = load_opera(tmp_path, lenient=True)
    assert [s.session_id for s in data.sessions] == [GOOD]
    assert data.skipped == {"bad_timestamp": 1, "unknown_action_type": 1, "sessions_emptied": 1}


def test_error_in_second_shard_names_that_shard(tmp_path: Path) -> None:
    t = _base_tables()
    t["actions"][3]["timestamp"] = "13/13/2025"
    write_opera(tmp_path, actions={"train": t["actions"]}, shards=2)
    with pytest.raises(OperaFormatError) as info:
        load_opera(tmp_path)
    assert info.value.file.endswith("train-00001-of-00002.parquet")
    assert (info.value.row, info.value.column) == (1, "timestamp")  # row within the shard


def test_duplicate_session_and_user_rows(tmp_path: Path) -> None:
    t = _base_tables()
    write_opera(tmp_path, actions={"train": t["actions"]},
                sessions={"train": [*t["sessions"], t["sessions"][0]]},
                users={"train": [*t["users"], t["users"][0]]})
    with pytest.raises(OperaFormatError) as info:
        load_opera(tmp_path)
    assert (Path(info.value.file), info.value.row) == (tmp_path / TABLE_FILES["user"], 2)
    data = load_opera(tmp_path, lenient=True)
    assert data.skipped == {"duplicate_user_id": 1, "duplicate_session_id": 1}
    assert len(data.sessions) == 2


def test_session_in_two_splits_is_an_error(tmp_path: Path) -> None:
    sid = session_id_of("u", 0)
    write_opera(tmp_path, actions={"train": [action_row(sid, "terminate")],
                                   "test": [action_row(sid, "terminate")]})
    with pytest.raises(OperaFormatError, match="duplicate session_id") as info:
        load_opera(tmp_path)
    assert info.value.file.endswith("session/test/test.parquet")


def test_missing_session_table_column(tmp_path: Path) -> None:
    t = _base_tables()
    for s in t["sessions"]:
        s.pop("user_id")
    base = write_opera(tmp_path, actions={"train": t["actions"]},
                       sessions={"train": t["sessions"]}, users={"train": t["users"]})
    with pytest.raises(OperaFormatError) as info:
        load_opera(base)
    assert (info.value.row, info.value.column) == (None, "user_id")
    data = load_opera(base, lenient=True)
    assert data.sessions == []
    assert data.skipped == {"missing_column": 2, "session_skipped": 4, "sessions_emptied": 2}


def test_error_pickles_and_reads_well() -> None:
    err = OperaFormatError("bad", file="a.parquet", row=3, column="x", reason="bad_json")
    assert str(err) == "a.parquet: row 3, column 'x': bad"
    back = pickle.loads(pickle.dumps(err))
    assert (back.file, back.row, back.column, back.reason, str(back)) == (
        "a.parquet", 3, "x", "bad_json", str(err))


def test_typed_timestamp_column(tmp_path: Path) -> None:
    """A parquet timestamp column (not OPeRA's string) still orders and round-trips."""
    from datetime import UTC, datetime

    sid = session_id_of("u", 0)
    rows = [action_row(sid, "terminate", timestamp=datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC)),
            action_row(sid, timestamp=datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC))]
    write_opera(tmp_path, actions={"train": rows})
    steps = load_opera(tmp_path).sessions[0].steps
    assert [s.kind for s in steps] == ["click", "terminate"]
    assert steps[0].timestamp.startswith("2025-01-01T00:00:01")


def test_loads_big_pages_fast(tmp_path: Path) -> None:
    """Linear work per cell: 400 rows of 100k-character pages load well under a second or two."""
    page = "<html><body>" + '<div name="x">item</div>' * 4200 + "</body></html>"
    rows = []
    for k in range(40):
        sid = session_id_of(f"u{k % 7}", k)
        rows += [action_row(sid, simplified_html=page) for _ in range(9)]
        rows.append(action_row(sid, "terminate", simplified_html=page))
    write_table(tmp_path / "scratch.parquet", rows[:1])  # warm pyarrow up
    write_opera(tmp_path, actions={"train": rows})
    start = time.perf_counter()
    data = load_opera(tmp_path)
    elapsed = time.perf_counter() - start
    assert sum(len(s.steps) for s in data.sessions) == 400
    assert len(data.sessions[0].steps[0].observation.html) > 100_000
    assert elapsed < 3.0, elapsed
