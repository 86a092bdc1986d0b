"""A reward with variance for an untrained model, so a GRPO step changes the weights."""

from __future__ import annotations

from typing import Any

from customer_r1.rewards import completion_text


def char_diversity(prompts: Any = None, completions: Any = (), **kw: Any) -> list[float]:
    return [float(len(set(completion_text(c)))) for c in completions]
