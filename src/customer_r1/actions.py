"""The action space and the model's output format.

A prediction is one JSON object ``{"rationale": ..., "action": {...}}`` where the
action is ``click(name)``, ``input(name, text)`` or ``terminate``. Parsing is strict
on purpose: rewards and metrics both go through :func:`parse_completion`, so anything
looser here would be a way to game the reward.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ActionType = Literal["click", "input", "terminate"]
ACTION_TYPES: tuple[str, ...] = ("click", "input", "terminate")

#: The 13 click subtypes of OPeRA-filtered.
CLICK_TYPES: tuple[str, ...] = (
    "purchase",
    "search",
    "review",
    "filter",
    "quantity",
    "product_option",
    "cart_side_bar",
    "suggested_term",
    "nav_bar",
    "page_related",
    "cart_page_select",
    "product_link",
    "other",
)

_ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "click": ("type", "name"),
    "input": ("type", "name", "text"),
    "terminate": ("type",),
}


class ParseError(ValueError):
    """A completion is not exactly one valid prediction object; the message says why."""


@dataclass(frozen=True, slots=True)
class Action:
    """One shopper action. ``name`` is the element's ``name`` attribute (OPeRA's semantic_id)."""

    type: ActionType
    name: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.type not in _ACTION_KEYS:
            raise ValueError(f"unknown action type {self.type!r}; expected one of {ACTION_TYPES}")
        if self.type in ("click", "input") and not self.name:
            raise ValueError(f"{self.type} needs a non-empty name")
        if self.type == "input" and self.text is None:
            raise ValueError("input needs a text")
        if self.type == "click" and self.text is not None:
            raise ValueError("click takes no text")
        if self.type == "terminate" and (self.name is not None or self.text is not None):
            raise ValueError("terminate takes no name or text")

    @classmethod
    def click(cls, name: str) -> Action:
        return cls("click", name)

    @classmethod
    def input(cls, name: str, text: str) -> Action:
        return cls("input", name, text)

    @classmethod
    def terminate(cls) -> Action:
        return cls("terminate")

    def to_dict(self) -> dict[str, str]:
        """Keys in the fixed order type, name, text: the canonical form."""
        d: dict[str, str] = {"type": self.type}
        if self.name is not None:
            d["name"] = self.name
        if self.text is not None:
            d["text"] = self.text
        return d

    def to_json(self) -> str:
        """Canonical serialisation: fixed key order, UTF-8 kept, no extra whitespace variants."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, obj: Any) -> Action:
        """Validate a decoded action object; raise :class:`ParseError` naming what is wrong."""
        if not isinstance(obj, dict):
            raise ParseError(f"'action' must be an object, got {type(obj).__name__}")
        if "type" not in obj:
            raise ParseError("action is missing key 'type'")
        kind = obj["type"]
        if not isinstance(kind, str):
            raise ParseError(f"action 'type' must be a string, got {type(kind).__name__}")
        if kind not in _ACTION_KEYS:
            raise ParseError(f"unknown action type {kind!r}; expected one of {ACTION_TYPES}")
        allowed = _ACTION_KEYS[kind]
        extra = sorted(set(obj) - set(allowed))
        if extra:
            raise ParseError(f"{kind} action has extra keys {extra}; allowed {list(allowed)}")
        for key in allowed[1:]:
            if key not in obj:
                raise ParseError(f"{kind} action is missing key {key!r}")
            if not isinstance(obj[key], str):
                raise ParseError(f"action {key!r} must be a string, got {type(obj[key]).__name__}")
        if "name" in allowed and not obj["name"].strip():
            raise ParseError("action 'name' is empty")
        return cls(kind, obj.get("name"), obj.get("text"))  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> Action:
        try:
            obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ParseError(f"action is not valid JSON: {exc.msg}") from exc
        return cls.from_dict(obj)

    def __str__(self) -> str:
        if self.type == "click":
            return f"click({self.name})"
        if self.type == "input":
            return f"input({self.name}, {self.text!r})"
        return "terminate"


@dataclass(frozen=True, slots=True)
class Prediction:
    """A parsed completion: the rationale (None when the format has none) and the action."""

    action: Action
    rationale: str | None = None

    def to_json(self, with_rationale: bool = True) -> str:
        if with_rationale:
            obj: dict[str, Any] = {"rationale": self.rationale or "", "action": self.action.to_dict()}
        else:
            obj = {"action": self.action.to_dict()}
        return json.dumps(obj, ensure_ascii=False)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = [k for k, n in Counter(keys).items() if n > 1]
    if dup:
        raise ParseError(f"duplicate key(s) {dup} in one object")
    return dict(pairs)


_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*)\n[ \t]*```\Z", re.DOTALL)
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    m = _FENCE.match(stripped)
    return m.group("body").strip() if m else stripped


def parse_completion(text: Any, *, require_rationale: bool = True) -> Prediction:
    """Parse a model completion into a :class:`Prediction`, or raise :class:`ParseError`.

    Accepted: one JSON object, optionally wrapped in whitespace and a ```json fence.
    Refused: no JSON, prose around it, two objects, missing or extra keys, wrong types.
    With ``require_rationale=False`` (the no-rationale ablation) the object is
    ``{"action": ...}`` and a rationale key is an error: the format is fixed per run.
    """
    if not isinstance(text, str):
        raise ParseError(f"completion must be a string, got {type(text).__name__}")
    body = _strip_fence(text)
    if not body:
        raise ParseError("completion is empty")
    if not body.startswith("{"):
        raise ParseError("no JSON object at the start of the completion")
    try:
        obj, end = _DECODER.raw_decode(body)
    except ParseError:
        raise
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at char {exc.pos}") from exc
    except RecursionError as exc:
        raise ParseError("JSON nested too deeply") from exc
    rest = body[end:].strip()
    if rest:
        if rest.startswith("{"):
            raise ParseError("more than one JSON object in the completion")
        raise ParseError(f"unexpected text after the JSON object: {rest[:40]!r}")
    if not isinstance(obj, dict):
        raise ParseError(f"top level must be an object, got {type(obj).__name__}")
    expected = {"rationale", "action"} if require_rationale else {"action"}
    missing = sorted(expected - set(obj))
    if missing:
        raise ParseError(f"missing key(s) {missing}")
    extra = sorted(set(obj) - expected)
    if extra:
        raise ParseError(f"extra key(s) {extra}; expected exactly {sorted(expected)}")
    rationale = None
    if require_rationale:
        rationale = obj["rationale"]
        if not isinstance(rationale, str):
            raise ParseError(f"'rationale' must be a string, got {type(rationale).__name__}")
        if not rationale.strip():
            raise ParseError("'rationale' is empty")
    return Prediction(action=Action.from_dict(obj["action"]), rationale=rationale)


def try_parse(text: Any, *, require_rationale: bool = True) -> tuple[Prediction | None, str | None]:
    """Like :func:`parse_completion` but returns ``(prediction, None)`` or ``(None, reason)``."""
    try:
        return parse_completion(text, require_rationale=require_rationale), None
    except ParseError as exc:
        return None, str(exc)


def format_target(action: Action, rationale: str | None, *, with_rationale: bool = True) -> str:
    """The training target: the same canonical JSON the parser accepts."""
    return Prediction(action, rationale).to_json(with_rationale=with_rationale)


# --------------------------------------------------------------------------- handles
# ``--compress handles`` writes the current page's names as short handles: the index of
# each name among the page's names in document order (``data.examples.page_names``), the
# way BrowserGym numbers elements. The model reads and writes handles; everything outside
# the model (gold columns, metrics, the environment) keeps real names, converted here at
# the boundary.


def handle_names(page_names: Sequence[str] | None) -> list[str]:
    """The handles of a page's names, in the same order: ``["0", "1", ...]``."""
    return [str(i) for i in range(0 if page_names is None else len(page_names))]


def to_handle(action: Action, page_names: Sequence[str] | None) -> Action:
    """``action`` with its name written as the page's handle for it (a name not on the
    page is kept: the example's gold element is not on its own page only in corrupt data)."""
    if action.name is None or page_names is None:
        return action
    index = {n: i for i, n in enumerate(page_names)}.get(action.name)
    return action if index is None else Action(action.type, str(index), action.text)


def handle_candidates(page_names: Sequence[str] | None, input_names: Sequence[str] | None,
                      ) -> tuple[list[str], list[str]]:
    """A page's names and text-field names as handles, for ranked decoding in handle space."""
    names = [] if page_names is None else list(page_names)
    index = {n: str(i) for i, n in enumerate(names)}
    inputs = [] if input_names is None else [index[n] for n in input_names if n in index]
    return handle_names(names), inputs


def probs_from_handles(probs: Mapping[str, float], page_names: Sequence[str] | None,
                       ) -> dict[str, float]:
    """Candidate probabilities keyed by action JSON in handle space, re-keyed by names."""
    out: dict[str, float] = {}
    for key, p in probs.items():
        k = from_handle(Action.from_json(key), page_names).to_json()
        out[k] = out.get(k, 0.0) + p
    return out


def from_handle(action: Action, page_names: Sequence[str] | None) -> Action:
    """``action`` with a handle replaced by the page's name for it. Anything that is not
    a handle of this page (a number out of range, a real name) is kept as written, so it
    scores as the wrong element rather than raising."""
    name = action.name
    if name is None or page_names is None or not (name.isascii() and name.isdigit()) \
            or name != str(int(name)):
        return action
    i = int(name)
    return Action(action.type, page_names[i], action.text) if i < len(page_names) else action


def normalize_text(text: str) -> str:
    """Input text compared case-insensitively with whitespace runs collapsed (a search box
    treats ``"Rice  Cooker"`` and ``"rice cooker"`` alike); everything else is exact."""
    return " ".join(text.split()).casefold()


def exact_match(pred: Action | None, gold: Action) -> bool:
    """The paper's next-action exact match: same type, same name, same text for input."""
    if pred is None or pred.type != gold.type:
        return False
    if gold.type == "terminate":
        return True
    if pred.name != gold.name:
        return False
    if gold.type == "input":
        return normalize_text(pred.text or "") == normalize_text(gold.text or "")
    return True


class ClickTypeLookup:
    """Click subtype of an element name, learned from labelled data.

    The model never outputs a click type: it follows from the name. Exact names come
    first; for unseen names the most common type of the name's last dotted part is used
    (``*.add_to_cart`` -> purchase), then ``other``.
    """

    def __init__(self, exact: Mapping[str, str], by_suffix: Mapping[str, str]) -> None:
        self.exact = dict(exact)
        self.by_suffix = dict(by_suffix)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> ClickTypeLookup:
        exact_counts: dict[str, Counter[str]] = {}
        suffix_counts: dict[str, Counter[str]] = {}
        for name, click_type in pairs:
            if not name or not click_type:
                continue
            exact_counts.setdefault(name, Counter())[click_type] += 1
            suffix_counts.setdefault(name.rsplit(".", 1)[-1], Counter())[click_type] += 1
        return cls(
            {k: _mode(c) for k, c in exact_counts.items()},
            {k: _mode(c) for k, c in suffix_counts.items()},
        )

    def __call__(self, name: str | None) -> str | None:
        if name is None:
            return None
        if name in self.exact:
            return self.exact[name]
        return self.by_suffix.get(name.rsplit(".", 1)[-1], "other")

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"exact": self.exact, "by_suffix": self.by_suffix}

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, str]]) -> ClickTypeLookup:
        return cls(d.get("exact", {}), d.get("by_suffix", {}))


def _mode(counter: Counter[str]) -> str:
    # Ties broken by name so the lookup is deterministic.
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
