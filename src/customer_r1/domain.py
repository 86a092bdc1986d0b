"""The domain as plain data: users, sessions, steps and what the shopper saw.

Loaders (OPeRA, the synthetic world) produce these; the example builder consumes them.
Nothing here knows about tokenizers, prompts or models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from customer_r1.actions import Action

#: Action kinds of OPeRA's full config that the filtered config drops.
FULL_ONLY_KINDS: tuple[str, ...] = ("scroll", "navigation", "tab_activate")
#: Every kind a Step can carry (``tabActivate`` is normalised to ``tab_activate``).
STEP_KINDS: tuple[str, ...] = ("click", "input", "terminate", *FULL_ONLY_KINDS)


@dataclass(frozen=True, slots=True)
class Observation:
    """The page before the action: simplified HTML whose interactive elements carry ``name``.

    Recorded data fills ``html``, ``url`` and ``page_meta``. An environment
    (``customer_r1.sim``) also sets ``page_kind`` (home, search, product, ...) and
    ``last_action_error`` (why the previous action changed nothing; "" when it worked), and
    may put privileged data in ``extra`` (our shop's state, read only by the world's own
    policy, as WebShop's oracle reads its session state).
    """

    html: str
    url: str = ""
    page_meta: dict[str, Any] | None = None
    page_kind: str = ""
    last_action_error: str = ""
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class Step:
    """One recorded step. ``action`` is set for click/input/terminate, None for full-only kinds."""

    action_id: str
    timestamp: str
    kind: str
    observation: Observation
    action: Action | None = None
    click_type: str | None = None
    rationale: str | None = None
    rationale_source: str | None = None  # "human", "synthetic", "world" or None
    products: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_filtered_kind(self) -> bool:
        return self.kind in ("click", "input", "terminate")


@dataclass(slots=True)
class User:
    """A shopper and the survey their persona is rendered from."""

    user_id: str
    survey: dict[str, Any] | None = None
    interview_processed: str | None = None
    interview_transcript: str | None = None
    raw_survey: str | None = None


@dataclass(slots=True)
class Session:
    """One shopping session: steps ordered by timestamp."""

    session_id: str
    user_id: str
    split: str
    steps: list[Step]

    @property
    def outcome(self) -> str:
        """``purchase`` if the session ends on a purchase click, else ``terminate``.

        OPeRA-filtered sessions end either with a purchase click (checkout, buy now,
        add to cart, subscribe) or with ``terminate``; this is the rule the evaluator
        also applies to predicted last actions.
        """
        last = self.steps[-1] if self.steps else None
        if last is not None and last.kind == "click" and last.click_type == "purchase":
            return "purchase"
        return "terminate"


@dataclass(slots=True)
class ShoppingData:
    """Users and sessions of one or more splits, plus what a lenient load skipped."""

    users: dict[str, User]
    sessions: list[Session]
    skipped: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def split(self, name: str) -> list[Session]:
        return [s for s in self.sessions if s.split == name]

    @property
    def splits(self) -> list[str]:
        return sorted({s.split for s in self.sessions})


def reduce_to_filtered(session: Session) -> Session:
    """Reduce a full-config session to the filtered set's three action types.

    The rule (OPeRA's own, documented in opera-schema.md): drop ``scroll``,
    ``navigation`` and ``tab_activate`` steps and inputs whose text is empty; keep
    every click, non-empty input and terminate in timestamp order.
    """
    kept = [
        s
        for s in session.steps
        if s.action is not None and not (s.action.type == "input" and not (s.action.text or "").strip())
    ]
    return Session(session.session_id, session.user_id, session.split, kept)
