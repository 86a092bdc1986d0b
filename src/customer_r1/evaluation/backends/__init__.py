"""Inference backends behind one interface (:class:`Backend`).

``HFBackend`` (local transformers model; also what ranked mode scores with),
``OpenAIBackend`` (any OpenAI-compatible HTTP endpoint) and ``VLLMBackend`` (vLLM
offline engine). The heavy ones import torch/vllm lazily so that an HTTP-only run
starts in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from customer_r1.evaluation.backends.base import (
    Backend,
    BackendUnavailable,
    EndpointError,
    Generation,
    Messages,
)

if TYPE_CHECKING:
    from customer_r1.evaluation.backends.hf import HFBackend
    from customer_r1.evaluation.backends.openai_api import OpenAIBackend
    from customer_r1.evaluation.backends.vllm_offline import VLLMBackend

__all__ = [
    "ENGINES",
    "Backend",
    "BackendUnavailable",
    "EndpointError",
    "Generation",
    "HFBackend",
    "Messages",
    "OpenAIBackend",
    "VLLMBackend",
    "load_backend",
]

#: Engines for a local ``--model PATH``.
ENGINES = ("hf", "vllm")

_LAZY = {
    "HFBackend": "customer_r1.evaluation.backends.hf",
    "OpenAIBackend": "customer_r1.evaluation.backends.openai_api",
    "VLLMBackend": "customer_r1.evaluation.backends.vllm_offline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_backend(
    *,
    model: str | Path | None = None,
    endpoint: str | None = None,
    model_name: str | None = None,
    engine: str = "hf",
    dtype: str = "auto",
    device: str = "auto",
    batch_size: int = 8,
    concurrency: int = 8,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 120.0,
    max_retries: int = 6,
) -> Backend:
    """The backend the CLI flags describe: ``model`` (local path) xor ``endpoint``
    (with ``model_name``, the name the server knows the model by)."""
    if (model is None) == (endpoint is None):
        raise ValueError("give exactly one of a local model path (--model) or an --endpoint URL")
    if endpoint is not None:
        if not model_name:
            raise ValueError("--endpoint needs --model-name (the model name the server serves)")
        from customer_r1.evaluation.backends.openai_api import OpenAIBackend

        return OpenAIBackend(
            endpoint, model_name, api_key_env=api_key_env, timeout=timeout,
            max_retries=max_retries, concurrency=concurrency,
        )
    if engine == "hf":
        from customer_r1.evaluation.backends.hf import HFBackend

        return HFBackend.from_pretrained(model, dtype=dtype, device=device, batch_size=batch_size)  # type: ignore[arg-type]
    if engine == "vllm":
        from customer_r1.evaluation.backends.vllm_offline import VLLMBackend

        return VLLMBackend(model, dtype=dtype)  # type: ignore[arg-type]
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
