"""Pretraining text from shopping sessions: the pages shoppers saw and the reasons they gave.

A language model is pretrained on web text before it is fine-tuned; for the tiny demo
decoder the web is the world's shop. Each document is one step: the page's simplified
HTML, then the shopper's reason (when the step has one). There is deliberately no
persona and no action, so pretraining teaches what pages and reasons look like, never
which shopper does what; and only sessions of the given splits (``train`` by default)
are read, so nothing from a test session reaches the model before it is evaluated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from customer_r1.domain import ShoppingData


@dataclass
class CorpusStats:
    """What went into a corpus (saved with the pretraining run's metrics)."""

    sessions: int = 0
    documents: int = 0
    with_reason: int = 0
    characters: int = 0
    splits: list[str] = field(default_factory=list)


def step_document(html: str, rationale: str | None) -> str:
    """One document: the page, then the reason given on it."""
    text = f"# Page\n{html.strip()}\n"
    if rationale and rationale.strip():
        text += f"Reason: {' '.join(rationale.split())}\n"
    return text


def held_out(session_id: str, fraction: float) -> bool:
    """A stable pick of ``fraction`` of the sessions (hash of the id), for a validation loss."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def corpus_rows(
    data: Iterable[ShoppingData], splits: Sequence[str] = ("train",), eval_fraction: float = 0.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], CorpusStats]:
    """(train rows, validation rows, stats): ``{"text", "session_id"}`` per step document.

    Validation rows come from whole sessions of the same splits (never the test split).
    """
    if any(s == "test" for s in splits):
        raise ValueError("pretraining never reads test sessions")
    stats = CorpusStats(splits=list(splits))
    train: list[dict[str, Any]] = []
    valid: list[dict[str, Any]] = []
    for d in data:
        for session in d.sessions:
            if session.split not in splits:
                continue
            stats.sessions += 1
            rows = valid if held_out(session.session_id, eval_fraction) else train
            for step in session.steps:
                if not step.observation.html.strip():
                    continue
                text = step_document(step.observation.html, step.rationale)
                rows.append({"text": text, "session_id": session.session_id})
                stats.documents += 1
                stats.characters += len(text)
                stats.with_reason += bool(step.rationale and step.rationale.strip())
    return train, valid, stats
