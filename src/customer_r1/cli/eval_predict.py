"""`customer-r1 eval predict`: next-action predictions for built examples → preds.jsonl.

Registered by the lead as ``app.command("predict")(predict)`` in ``cli/evaluate.py``.
The option types below are shared with ``data rationales``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from customer_r1.cli.params import input_option, output_option
from customer_r1.errors import BadInput, BadOption

_err = Console(stderr=True)


def _say(msg: str) -> None:
    """Plain text on stderr: paths and reasons may hold [brackets] rich would eat."""
    _err.print(msg, markup=False, highlight=False, soft_wrap=True)  # paths stay copyable


class Mode(StrEnum):
    free = "free"
    ranked = "ranked"


class Engine(StrEnum):
    hf = "hf"
    vllm = "vllm"


def _opt(*names: str, **kw: Any) -> Any:
    return typer.Option(*names, **kw)


DataOpt = Annotated[
    Path,
    input_option("built", "--data",
                 help="Built-examples directory (BUILT/{split}.parquet) or a parquet file."),
]
ModelOpt = Annotated[
    str | None, input_option("model", "--model", help="Local model directory (or a Hub id).")
]
EndpointOpt = Annotated[
    str | None, _opt("--endpoint", help="OpenAI-compatible base URL (http://host:8000/v1).")
]
ModelNameOpt = Annotated[str | None, _opt("--model-name", help="Model name the endpoint serves.")]
LimitOpt = Annotated[int | None, _opt("--limit", min=1, help="Only the first N examples.")]
BatchOpt = Annotated[int, _opt("--batch-size", min=1, help="Examples per batch (and per fsync).")]
MaxNewOpt = Annotated[int, _opt("--max-new-tokens", min=1)]
TempOpt = Annotated[float, _opt("--temperature", min=0.0, help="0 = greedy.")]
ConcOpt = Annotated[int, _opt("--concurrency", min=1, help="HTTP requests in flight (--endpoint).")]
EngineOpt = Annotated[Engine, _opt("--engine", help="Engine for --model.")]
DtypeOpt = Annotated[str, _opt("--dtype", help="auto, float32, bfloat16 or float16.")]
DeviceOpt = Annotated[str, _opt("--device", help="auto, cpu, cuda, cuda:1 ...")]
KeyEnvOpt = Annotated[
    str, _opt("--api-key-env", help="Variable holding the API key (local servers need none).")
]
TimeoutOpt = Annotated[float, _opt("--timeout", help="Seconds per HTTP request.")]
RetriesOpt = Annotated[int, _opt("--max-retries", min=0, help="Retries on 429/5xx/timeouts.")]
ProgressOpt = Annotated[bool, _opt("--progress/--no-progress")]


def backend_from_flags(
    model: str | None,
    endpoint: str | None,
    model_name: str | None,
    *,
    engine: str,
    dtype: str,
    device: str,
    batch_size: int,
    concurrency: int,
    api_key_env: str,
    timeout: float,
    max_retries: int,
) -> Any:
    """Flags → backend. Every mistake is a :class:`~customer_r1.errors.UserError`
    (one line, exit 2): inconsistent flags, a model that is not there (checked before
    anything loads), a server that does not answer, an engine that is not installed."""
    from customer_r1.evaluation.backends import load_backend
    from customer_r1.evaluation.backends.base import probe_endpoint
    from customer_r1.models import resolve_model

    if (model is None) == (endpoint is None):
        raise BadOption("give exactly one of --model PATH or --endpoint URL", where="--model / --endpoint")
    if endpoint is not None and not model_name:
        raise BadOption("--endpoint needs --model-name (the name the server serves)", where="--model-name")
    if endpoint is not None:
        probe_endpoint(endpoint)
    if model is not None:
        resolve_model(model, "--model")
    try:
        return load_backend(
            model=model, endpoint=endpoint, model_name=model_name, engine=engine, dtype=dtype,
            device=device, batch_size=batch_size, concurrency=concurrency,
            api_key_env=api_key_env, timeout=timeout, max_retries=max_retries,
        )
    except (OSError, ValueError) as exc:  # a checkpoint transformers cannot read
        if not model:
            raise
        raise BadInput(f"cannot load model {model}: {type(exc).__name__}: {exc}", where="--model",
                       hint="is the checkpoint complete? re-save it with save_pretrained") from exc


def predict(
    data: DataOpt,
    out: Annotated[
        Path, output_option("--out", kind="file", help="preds.jsonl to write; an existing one is resumed.")
    ],
    model: ModelOpt = None,
    endpoint: EndpointOpt = None,
    model_name: ModelNameOpt = None,
    mode: Annotated[
        Mode, _opt("--mode", help="free: generate + parse; ranked: pick among the page's actions.")
    ] = Mode.free,
    split: Annotated[str, _opt("--split", help="Split to predict from a directory.")] = "test",
    limit: LimitOpt = None,
    batch_size: BatchOpt = 8,
    max_new_tokens: MaxNewOpt = 512,
    temperature: TempOpt = 0.0,
    top_p: Annotated[float, _opt("--top-p", min=0.0, max=1.0)] = 1.0,
    concurrency: ConcOpt = 8,
    engine: EngineOpt = Engine.hf,
    dtype: DtypeOpt = "auto",
    device: DeviceOpt = "auto",
    api_key_env: KeyEnvOpt = "OPENAI_API_KEY",
    timeout: TimeoutOpt = 120.0,
    max_retries: RetriesOpt = 6,
    retry_failed: Annotated[
        bool, _opt("--retry-failed/--keep-failed", help="On resume, redo rows whose backend failed.")
    ] = True,
    strategy: Annotated[
        str, _opt("--strategy", help="Ranked scoring: auto, packed, expand or naive.")
    ] = "auto",
    max_rationale_tokens: Annotated[
        int, _opt("--max-rationale-tokens", min=1, help="Ranked mode: rationale length cap.")
    ] = 192,
    rationale_samples: Annotated[
        int, _opt("--rationale-samples", min=0,
                  help="Ranked mode: 0 decodes the rationale greedily; K > 0 samples K rationales "
                       "and picks the action most likely on average over them.")
    ] = 0,
    rationale_temperature: Annotated[
        float, _opt("--rationale-temperature", min=0.0,
                    help="Ranked mode with --rationale-samples: sampling temperature (> 0).")
    ] = 1.0,
    seed: Annotated[int, _opt("--seed", help="Ranked mode: seed of rationale sampling.")] = 0,
    progress: ProgressOpt = True,
) -> None:
    """Predict the next action of every example (resumable: a re-run skips finished ids)."""
    from customer_r1.evaluation.predict import load_examples, run_predict

    if mode is Mode.ranked and endpoint is not None:
        raise BadOption(
            "ranked mode needs a local model (--model PATH): it scores every candidate with the "
            "model's log-probabilities, which an endpoint does not expose", where="--mode",
            hint="use --mode free",
        )
    if mode is Mode.ranked and engine is Engine.vllm:
        raise BadOption("ranked mode runs on the hf engine", where="--engine", hint="drop --engine vllm")
    from customer_r1.evaluation.ranking import STRATEGIES

    if strategy not in STRATEGIES:
        raise BadOption(f"--strategy must be one of {', '.join(STRATEGIES)}", where="--strategy")
    if rationale_samples and mode is not Mode.ranked:
        raise BadOption("--rationale-samples works in ranked mode (--mode ranked)",
                        where="--rationale-samples")
    if rationale_samples and not rationale_temperature > 0:
        raise BadOption("--rationale-temperature must be > 0 to sample rationales",
                        where="--rationale-temperature")
    examples = load_examples(data, split, limit)  # a bad file fails before the model loads
    backend = backend_from_flags(
        model, endpoint, model_name, engine=engine.value, dtype=dtype, device=device,
        batch_size=batch_size, concurrency=concurrency, api_key_env=api_key_env,
        timeout=timeout, max_retries=max_retries,
    )
    try:
        stats = run_predict(
            backend, examples, out, mode=mode.value, split=split, batch_size=batch_size,
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
            retry_failed=retry_failed, progress=progress,
            ranker_kwargs={"strategy": strategy, "max_rationale_tokens": max_rationale_tokens,
                           "rationale_samples": rationale_samples,
                           "temperature": rationale_temperature, "seed": seed},
        )
    finally:
        backend.close()
    rep = stats.repair
    if rep.rewritten:
        _say(
            f"resumed {out}: torn last line dropped={rep.torn_tail}, invalid lines="
            f"{rep.invalid_lines}, failed rows to redo={rep.dropped_by_filter}, "
            f"duplicates={rep.duplicates}"
        )
    _say(
        f"{stats.written} predicted ({stats.already_done} of {stats.total} already done) in "
        f"{stats.seconds:.1f}s ({stats.rate:.2f} rows/s); parse failures {stats.parse_failures}, "
        f"backend failures {stats.backend_failures} → {out}"
    )
    req = getattr(backend, "stats", None)
    if req is not None:
        _say(
            f"HTTP: {req.requests} requests, {req.retries} retries {req.retry_reasons or ''}, "
            f"{req.failures} failed {req.failure_reasons or ''}"
        )
