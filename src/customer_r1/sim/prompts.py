"""Step prompts for simulated shoppers, from the same builder as training examples.

A checkpoint is only as good as the match between the prompts it was trained on and
the prompts it is run on, so the simulator never formats a prompt itself: it hands the
session so far to :meth:`customer_r1.data.examples.ExampleBuilder.prompt_messages` with
the build config the model was trained with (``build.json``, saved beside checkpoints by
training, or given explicitly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from customer_r1.data.compress import uses_handles
from customer_r1.data.examples import BuildConfig, ExampleBuilder
from customer_r1.data.names import page_names
from customer_r1.domain import Observation, Session, ShoppingData, Step, User
from customer_r1.errors import BadInput, MissingInput
from customer_r1.io import read_json

#: Step kind of the step being decided (its action is not known yet).
PENDING = "pending"


def load_build_config(path: str | Path, **overrides: Any) -> BuildConfig:
    """A :class:`BuildConfig` from a ``build.json`` (of ``data build`` or a checkpoint
    folder holding one); ``overrides`` replace fields (e.g. the tokenizer)."""
    p = Path(path)
    f = p / "build.json" if p.is_dir() else p
    if not f.is_file():
        raise MissingInput(f"no build.json at {p}", str(p),
                           "give --build-config with the build.json of the examples the model "
                           "was trained on (written by `customer-r1 data build`)")
    try:
        raw = read_json(f)
        cfg = raw.get("config", raw)
        known = {fl.name for fl in fields(BuildConfig)}
        kw = {k: v for k, v in cfg.items() if k in known and k not in ("splits", "progress")}
        kw.update(overrides)
        return BuildConfig(**kw, progress=False)
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
        raise BadInput(f"unreadable build config: {exc}", str(f),
                       "rebuild the examples with `customer-r1 data build`") from exc


class PromptBuilder:
    """Builds step ``t``'s prompt of a session in progress; personas of ``users``."""

    def __init__(self, config: BuildConfig, users: Mapping[str, User], counter: Any = None) -> None:
        self.config = config
        self.builder = ExampleBuilder(ShoppingData(dict(users), []), config, counter)
        self.with_rationale = config.rationale_mode == "on"
        #: ``--compress handles``: the model reads and writes handles, not names.
        self.handles = uses_handles(config.compress)

    def messages(self, session_id: str, user_id: str, history: Sequence[Step],
                 observation: Observation) -> list[dict[str, str]]:
        current = Step(action_id="", timestamp="", kind=PENDING, observation=observation)
        session = Session(session_id, user_id, "sim", [*history, current])
        return self.builder.prompt_messages(session, len(history))


def candidates_of(observation: Observation) -> tuple[list[str], list[str]]:
    """The page's names and text-field names, exactly as ``data build`` lists them."""
    return page_names(observation.html)
