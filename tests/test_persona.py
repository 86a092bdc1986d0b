from __future__ import annotations

import pytest
from shopdata import survey

from customer_r1.data.persona import (
    NO_PERSONA_TEXT,
    assign_personas,
    build_personas,
    render_persona,
    render_survey,
)
from customer_r1.domain import User


def test_render_survey_has_every_answer_in_order():
    text = render_survey(survey(0))
    assert text.index("## Demographics") < text.index("## About me") < text.index("## Shopping preferences")
    assert "I am shopper 0. I like deals." in text
    assert "- I compare prices before buying: Strongly agree" in text
    assert "- Openness: High" in text and "- Neuroticism: Low" in text
    assert "- Age: 20-29 years old" in text


def test_render_survey_skips_only_empty_values_and_keeps_unknown_sections():
    s = {"Demographic Information": {"Age": "", "City": None, "Gender": "Man"}, "Hobbies": ["chess", ""]}
    text = render_survey(s)
    assert "Age" not in text and "City" not in text and "- Gender: Man" in text
    assert "## Hobbies\n- chess" in text


def test_interview_is_optional():
    u = User("u", survey(1), interview_processed="### Shopping Preference\nLoves sales.")
    assert "Loves sales" not in render_persona(u)
    assert "Loves sales" in render_persona(u, include_interview=True)
    assert render_persona(User("v", None)) == NO_PERSONA_TEXT


def test_modes():
    ids = [f"u{i}" for i in range(7)]
    assert assign_personas(ids, "real") == {u: u for u in ids}
    assert set(assign_personas(ids, "none").values()) == {None}
    a = assign_personas(ids, "shuffled", seed=3)
    assert a == assign_personas(ids, "shuffled", seed=3)
    assert a != assign_personas(ids, "shuffled", seed=4)
    assert all(k != v for k, v in a.items()) and sorted(a.values()) == ids
    with pytest.raises(ValueError, match="two users"):
        assign_personas(["only"], "shuffled")
    with pytest.raises(ValueError, match="unknown persona mode"):
        assign_personas(ids, "random")  # type: ignore[arg-type]


def test_shuffled_personas_show_another_users_survey():
    users = {f"u{i}": User(f"u{i}", survey(i)) for i in range(3)}
    p = build_personas(users, "shuffled", seed=0)
    for uid, persona in p.items():
        assert persona.source_user_id != uid
        assert persona.text == render_persona(users[persona.source_user_id])
    assert {x.text for x in build_personas(users, "none").values()} == {NO_PERSONA_TEXT}
