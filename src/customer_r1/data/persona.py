"""Persona text from an OPeRA ``survey`` and the persona modes used for ablations.

Real and synthetic users go through the same renderer, so whatever the synthetic
world encodes in a survey reaches the model exactly as a real user's answers would.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from customer_r1.domain import User

PersonaMode = Literal["real", "none", "shuffled"]
PERSONA_MODES: tuple[str, ...] = ("real", "none", "shuffled")

_SECTION_ORDER = (
    "Demographic Information",
    "Self Description",
    "Shopping Preference",
    "Personality",
)
_HEADINGS = {
    "Demographic Information": "Demographics",
    "Self Description": "About me",
    "Shopping Preference": "Shopping preferences",
    "Personality": "Personality",
}
NO_PERSONA_TEXT = "(no persona given)"


@dataclass(frozen=True, slots=True)
class Persona:
    """The rendered persona of one user, with the user it was taken from (differs when shuffled)."""

    user_id: str
    source_user_id: str | None
    text: str


def render_survey(survey: Mapping[str, Any] | None) -> str:
    """Render a survey as compact markdown: known sections first, unknown ones after.

    Nested mappings become indented ``key: value`` lines, so the Likert statements
    ("To what extent do you agree ...") and the Big Five levels each get one line.
    Empty values are left out; nothing else is.
    """
    if not survey:
        return ""
    lines: list[str] = []
    keys = [k for k in _SECTION_ORDER if k in survey] + [k for k in survey if k not in _SECTION_ORDER]
    for key in keys:
        body = survey[key]
        if _is_empty(body):
            continue
        lines.append(f"## {_HEADINGS.get(key, key)}")
        if isinstance(body, Mapping):
            if key == "Self Description" and len(body) == 1:
                lines.append(str(next(iter(body.values()))).strip())
            else:
                _render_mapping(body, lines, indent=0)
        elif isinstance(body, list):
            lines.extend(f"- {_scalar(v)}" for v in body if not _is_empty(v))
        else:
            lines.append(_scalar(body))
    return "\n".join(lines)


def render_persona(user: User | None, *, include_interview: bool = False) -> str:
    """The persona block of the prompt for one user (empty survey -> the no-persona text)."""
    if user is None:
        return NO_PERSONA_TEXT
    text = render_survey(user.survey)
    if include_interview and user.interview_processed and user.interview_processed.strip():
        text = f"{text}\n## Interview summary\n{user.interview_processed.strip()}".strip()
    return text or NO_PERSONA_TEXT


def assign_personas(user_ids: Sequence[str], mode: PersonaMode, *, seed: int = 0) -> dict[str, str | None]:
    """Map each user to the user whose persona they are shown (None: no persona).

    ``shuffled`` is a derangement fixed by the seed: every user gets another user's
    persona, so the shuffled ablation never shows a user their own survey.
    """
    ids = sorted(set(user_ids))
    if mode == "real":
        return {u: u for u in ids}
    if mode == "none":
        return dict.fromkeys(ids)
    if mode == "shuffled":
        if len(ids) < 2:
            raise ValueError("persona mode 'shuffled' needs at least two users")
        rng = random.Random(seed)
        perm = ids[:]
        # Sattolo's algorithm: a uniformly random single cycle, hence no fixed points.
        for i in range(len(perm) - 1, 0, -1):
            j = rng.randrange(i)
            perm[i], perm[j] = perm[j], perm[i]
        return dict(zip(ids, perm, strict=True))
    raise ValueError(f"unknown persona mode {mode!r}; expected one of {PERSONA_MODES}")


def build_personas(
    users: Mapping[str, User],
    mode: PersonaMode,
    *,
    seed: int = 0,
    include_interview: bool = False,
) -> dict[str, Persona]:
    """Rendered persona per user id under a persona mode."""
    mapping = assign_personas(list(users), mode, seed=seed)
    out: dict[str, Persona] = {}
    for uid, src in mapping.items():
        text = (
            NO_PERSONA_TEXT
            if src is None
            else render_persona(users[src], include_interview=include_interview)
        )
        out[uid] = Persona(uid, src, text)
    return out


def _render_mapping(d: Mapping[str, Any], lines: list[str], indent: int) -> None:
    pad = "  " * indent
    for k, v in d.items():
        if _is_empty(v):
            continue
        if isinstance(v, Mapping):
            lines.append(f"{pad}- {k}:")
            _render_mapping(v, lines, indent + 1)
        elif isinstance(v, list):
            lines.append(f"{pad}- {k}: {', '.join(_scalar(x) for x in v if not _is_empty(x))}")
        else:
            lines.append(f"{pad}- {k}: {_scalar(v)}")


def _scalar(v: Any) -> str:
    return " ".join(str(v).split())


def _is_empty(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and v != v:  # NaN
        return True
    if isinstance(v, str):
        return not v.strip()
    if isinstance(v, Mapping | list):
        return all(_is_empty(x) for x in (v.values() if isinstance(v, Mapping) else v))
    return False
