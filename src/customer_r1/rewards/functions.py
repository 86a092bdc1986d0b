"""Verifiable rewards, as small pure functions with TRL's reward signature.

``reward(prompts, completions, **columns) -> list[float]``: ground truth comes from
the example columns (``action_json``, ``click_type``, ``require_rationale``), which
TRL's GRPOTrainer passes through. Every function parses with the same strict parser
as evaluation (``actions.parse_completion``), so a completion with two actions, extra
keys or prose around the JSON earns nothing, and none of them ever raises.

R = R_format + R_action (Customer-R1, section 3.2):
- R_format: 1 if the completion is exactly ``{"rationale": non-empty, "action": valid}``.
- R_action: the difficulty weight of the true action if the prediction matches it
  exactly: input 2000; most click types 1000; product_option 10; review and search 1;
  terminate 1. A wrong *predicted click* gets -1 (0 in the RL-only setting); any other
  wrong or unparsable prediction gets 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from customer_r1.actions import Action, ParseError, exact_match, from_handle, parse_completion

RewardFn = Callable[..., list[float]]

#: Name → factory(config) building a reward function. ``make_rewards`` reads it.
REWARD_REGISTRY: dict[str, Callable[[RewardConfig], RewardFn]] = {}


@dataclass
class RewardConfig:
    """Weights of the action reward; every number of the paper is a field here."""

    weight_input: float = 2000.0
    weight_click: float = 1000.0  # click types not listed in click_weights
    click_weights: dict[str, float] = field(
        default_factory=lambda: {"product_option": 10.0, "review": 1.0, "search": 1.0}
    )
    weight_terminate: float = 1.0
    wrong_click: float = -1.0
    wrong_other: float = 0.0
    #: The paper's RL-only setting: a wrong click costs nothing.
    rl_only: bool = False
    format_weight: float = 1.0

    def weight_of(self, gold: Action, click_type: str | None) -> float:
        if gold.type == "input":
            return self.weight_input
        if gold.type == "terminate":
            return self.weight_terminate
        return self.click_weights.get(click_type or "", self.weight_click)


def register(name: str) -> Callable[[Callable[[RewardConfig], RewardFn]], Callable[[RewardConfig], RewardFn]]:
    def deco(factory: Callable[[RewardConfig], RewardFn]) -> Callable[[RewardConfig], RewardFn]:
        REWARD_REGISTRY[name] = factory
        return factory

    return deco


def completion_text(completion: Any) -> str:
    """TRL passes plain strings, or for chat data a list of messages: take the assistant text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        last = completion[-1]
        if isinstance(last, dict):
            content = last.get("content")
            if isinstance(content, str):
                return content
    return ""


def _column(values: Any, i: int, default: Any = None) -> Any:
    if values is None:
        return default
    try:
        v = values[i]
    except (IndexError, TypeError, KeyError):
        return default
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return default
    return v


def _gold(action_json: Any, i: int) -> Action | None:
    raw = _column(action_json, i)
    if not isinstance(raw, str):
        return None
    try:
        return Action.from_json(raw)
    except (ParseError, ValueError):
        return None


def _parse(completion: Any, require_rationale: bool) -> Action | None:
    try:
        return parse_completion(completion_text(completion), require_rationale=require_rationale).action
    except ParseError:
        return None
    except Exception:
        return None


def _predicted(completion: Any, i: int, kw: dict[str, Any]) -> Action | None:
    """Row ``i``'s parsed action with real names: a ``--compress handles`` row
    (``name_handles``) has the model write handles of its ``page_names``."""
    pred = _parse(completion, bool(_column(kw.get("require_rationale"), i, True)))
    if pred is not None and _column(kw.get("name_handles"), i, False):
        pred = from_handle(pred, _column(kw.get("page_names"), i))
    return pred


@register("format")
def make_format_reward(cfg: RewardConfig) -> RewardFn:
    def format_reward(prompts: Any = None, completions: Sequence[Any] = (), **kw: Any) -> list[float]:
        """1 for exactly one well-formed prediction object, else 0."""
        req = kw.get("require_rationale")
        return [
            cfg.format_weight if _parse(c, bool(_column(req, i, True))) is not None else 0.0
            for i, c in enumerate(completions)
        ]

    return format_reward


@register("action")
def make_action_reward(cfg: RewardConfig) -> RewardFn:
    def action_reward(prompts: Any = None, completions: Sequence[Any] = (), **kw: Any) -> list[float]:
        """Difficulty-weighted exact match of the predicted action (paper section 3.2)."""
        gold_json, click_types = kw.get("action_json"), kw.get("click_type")
        out: list[float] = []
        for i, c in enumerate(completions):
            gold = _gold(gold_json, i)
            pred = _predicted(c, i, kw)
            if gold is None or pred is None:
                out.append(0.0)
            elif exact_match(pred, gold):
                out.append(cfg.weight_of(gold, _column(click_types, i)))
            elif pred.type == "click":
                out.append(0.0 if cfg.rl_only else cfg.wrong_click)
            else:
                out.append(cfg.wrong_other)
        return out

    return action_reward


@register("action_binary")
def make_binary_action_reward(cfg: RewardConfig) -> RewardFn:
    def action_binary_reward(prompts: Any = None, completions: Sequence[Any] = (), **kw: Any) -> list[float]:
        """1 for an exact match, else 0: the ablation without difficulty weights."""
        gold_json = kw.get("action_json")
        out: list[float] = []
        for i, c in enumerate(completions):
            gold = _gold(gold_json, i)
            pred = _predicted(c, i, kw)
            out.append(1.0 if gold is not None and exact_match(pred, gold) else 0.0)
        return out

    return action_binary_reward


def make_rewards(names: Sequence[str], cfg: RewardConfig | None = None) -> list[RewardFn]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)``.

    A name is a registry key (``format``, ``action``, ``action_binary``) or an import
    path ``package.module:function`` naming a function with TRL's reward signature, so
    a recipe can add a reward without touching this module.
    """
    cfg = cfg or RewardConfig()
    out: list[RewardFn] = []
    for name in names:
        if name in REWARD_REGISTRY:
            out.append(REWARD_REGISTRY[name](cfg))
        elif ":" in name:
            out.append(_import_reward(name))
        else:
            known = sorted(REWARD_REGISTRY)
            raise ValueError(f"unknown reward {name!r}; known: {known} or 'module:function'")
    return out


def _import_reward(path: str) -> RewardFn:
    import importlib

    module, _, attr = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import reward {path!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"reward {path!r} is not callable")
    return fn
