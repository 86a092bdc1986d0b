"""A tiny model and built examples in a temp folder, for training tests (seconds on a CPU)."""

from __future__ import annotations

from pathlib import Path

from shopdata import make_data

from customer_r1.data.examples import BuildConfig, write_examples
from customer_r1.training.bases import TinyModelConfig, init_tiny_model

TINY = TinyModelConfig(
    vocab_size=700,
    hidden_size=48,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
)


def tiny_setup(
    root: Path, n_sessions: int = 6, budget: int = 1200, prompt_style: str = "compact"
) -> tuple[Path, Path]:
    """(base model folder, built examples folder) with every step carrying a rationale."""
    data = make_data(n_sessions=n_sessions, items=3)
    for s in data.sessions:
        for st in s.steps:
            st.rationale = st.rationale or "I just do it"
    raw = root / "raw"
    write_examples(
        data, BuildConfig(tokenizer=None, token_budget=None, progress=False, prompt_style="compact"), raw
    )
    base = init_tiny_model(root / "base", built=raw, config=TINY)
    built = root / "built"
    write_examples(
        data,
        BuildConfig(tokenizer=str(base), token_budget=budget, progress=False, prompt_style=prompt_style),
        built,
    )
    return base, built


def common_args(out: Path) -> list[str]:
    return [
        "--output_dir",
        str(out),
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--logging_steps",
        "1",
        "--seed",
        "0",
    ]
