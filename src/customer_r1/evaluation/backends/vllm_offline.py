"""The vLLM offline engine (``vllm.LLM(...).chat``): the fast path for big local models.

vLLM is an optional dependency (heavy, GPU-only), imported only when this backend
is built so everything else works without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from customer_r1.evaluation.backends.base import BackendUnavailable, Generation, Messages

INSTALL_HINT = "pip install 'customer-r1[vllm]'"


def import_vllm() -> Any:
    """``import vllm`` or a :class:`BackendUnavailable` that says how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailable(
            f"the vLLM backend needs the vllm package, which is not installed: {INSTALL_HINT} "
            "(or serve the model with `vllm serve` and use --endpoint)"
        ) from exc
    return vllm


class VLLMBackend:
    """Generation through one in-process ``vllm.LLM``; the engine batches internally,
    so a whole chunk of prompts goes in one call."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        **llm_kwargs: Any,
    ) -> None:
        self._vllm = import_vllm()
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "dtype": dtype,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
            **llm_kwargs,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        self.llm = self._vllm.LLM(**kwargs)
        self.name = str(model_path)

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
    ) -> list[Generation]:
        params = self._vllm.SamplingParams(
            max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=n
        )
        convs = [[{"role": m["role"], "content": m["content"]} for m in p] for p in prompts]
        outputs = self.llm.chat(convs, params, use_tqdm=False)
        return [Generation(texts=tuple(o.text.strip() for o in out.outputs)) for out in outputs]

    def close(self) -> None:
        """The engine frees its GPU memory when garbage-collected."""
