"""`customer-r1 data rationales`: fill missing training rationales with an LLM.

Registered by the lead as ``app.command("rationales")(rationales)`` in ``cli/data.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from rich.console import Console

from customer_r1.cli.eval_predict import (
    ConcOpt,
    DeviceOpt,
    DtypeOpt,
    Engine,
    EngineOpt,
    KeyEnvOpt,
    MaxNewOpt,
    ModelNameOpt,
    ProgressOpt,
    RetriesOpt,
    TempOpt,
    TimeoutOpt,
    _opt,
    backend_from_flags,
)
from customer_r1.cli.params import input_option, output_option

_err = Console(stderr=True)


def _say(msg: str) -> None:
    """Plain text on stderr: paths and reasons may hold [brackets] rich would eat."""
    _err.print(msg, markup=False, highlight=False, soft_wrap=True)  # paths stay copyable


def rationales(
    data: Annotated[
        Path, input_option("built", "--data", help="Built-examples directory (or a parquet file).")
    ],
    out: Annotated[Path, output_option("--out", help="Directory for the copy; resumed if it exists.")],
    endpoint: Annotated[str | None, _opt("--endpoint", help="OpenAI-compatible base URL.")] = None,
    model_name: ModelNameOpt = None,
    model: Annotated[
        str | None, input_option("model", "--model", help="Local model instead of an endpoint.")
    ] = None,
    split: Annotated[list[str] | None, _opt("--split", help="Split(s) to fill; repeatable.")] = None,
    limit: Annotated[int | None, _opt("--limit", min=1, help="At most N new this run.")] = None,
    batch_size: Annotated[int, _opt("--batch-size", min=1)] = 16,
    concurrency: ConcOpt = 8,
    max_new_tokens: MaxNewOpt = 160,
    temperature: TempOpt = 0.0,
    engine: EngineOpt = Engine.hf,
    dtype: DtypeOpt = "auto",
    device: DeviceOpt = "auto",
    api_key_env: KeyEnvOpt = "OPENAI_API_KEY",
    timeout: TimeoutOpt = 120.0,
    max_retries: RetriesOpt = 6,
    progress: ProgressOpt = True,
) -> None:
    """Write a copy of the built data whose flagged training rows get synthetic rationales."""
    from customer_r1.evaluation.rationales import check_paths, synthesize_rationales

    check_paths(data, out)  # before the model loads
    backend = backend_from_flags(
        model, endpoint, model_name, engine=engine.value, dtype=dtype, device=device,
        batch_size=batch_size, concurrency=concurrency, api_key_env=api_key_env,
        timeout=timeout, max_retries=max_retries,
    )
    try:
        stats = synthesize_rationales(
            backend, data, out, splits=tuple(split or ("train",)), batch_size=batch_size,
            max_new_tokens=max_new_tokens, temperature=temperature, limit=limit, progress=progress,
        )
    finally:
        backend.close()
    rep = stats.repair
    if rep.rewritten:
        _say(
            f"resumed {out / 'rationales.jsonl'}: torn last line dropped={rep.torn_tail}, invalid "
            f"lines={rep.invalid_lines}, failed rows to redo={rep.dropped_by_filter}, "
            f"duplicates={rep.duplicates}"
        )
    _say(
        f"{stats.needed} rows need a rationale: {stats.cached} cached, {stats.synthesised} new, "
        f"{stats.failed} failed {stats.failures or ''}; {stats.applied} applied → {out}"
    )
    if stats.applied < stats.needed:
        _say(f"{stats.needed - stats.applied} still missing: re-run to resume.")
