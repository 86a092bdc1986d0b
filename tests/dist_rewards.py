"""A reward with variance for an untrained model, so a GRPO step changes the weights."""

from __future__ import annotations

from typing import Any

from customer_r1.rewards import completion_text


def char_diversity(prompts: Any = None, completions: Any = (), **kw: Any) -> list[float]:
    return [float(len(set(completion_text(c)))) for c in completions]


def record_columns(prompts: Any = None, completions: Any = (), **kw: Any) -> list[float]:
    """Append the columns TRL passed (page names, handles flag) to $CR1_REWARD_SPY."""
    import json
    import os

    with open(os.environ["CR1_REWARD_SPY"], "a") as fh:
        for i in range(len(completions)):
            fh.write(json.dumps({k: kw[k][i] for k in ("page_names", "name_handles", "action_json")
                                 if k in kw}) + "\n")
    return [0.0] * len(completions)
