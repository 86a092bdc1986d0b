"""A local Hugging Face causal LM as a backend (also the model the ranker scores with).

The chat template is applied with ``add_generation_prompt=True`` and the text is
tokenized without extra special tokens, which is how TRL tokenizes the prompt half
of a conversational example: the model is asked exactly the way it was trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from customer_r1.evaluation.backends.base import Generation, Messages
from customer_r1.runtime import resolve_device as resolve_device

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` → bf16 on a GPU that has it, fp16 on other GPUs, fp32 on CPU
    (CPU half precision is slow and, for scoring, needlessly imprecise)."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {DTYPES}")
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


class HFBackend:
    """Batched chat generation with a local ``AutoModelForCausalLM``.

    Greedy unless ``temperature > 0``. Prompts are left-padded so every row's new
    tokens start at the same column. ``model`` and ``tokenizer`` are public: the
    ranker (:mod:`customer_r1.evaluation.ranking`) scores candidates with them.
    """

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 8, name: str = "") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
        self.name = name or str(getattr(model, "name_or_path", "") or "hf")
        if tokenizer.pad_token_id is None:
            # Left padding needs some pad id; masked out, so its identity does not matter.
            tokenizer.pad_token = tokenizer.eos_token
        self.model.eval()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 8,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
    ) -> HFBackend:
        """Load a model directory (or hub id already in the local cache)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dev = resolve_device(device)
        kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype, dev)}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        if dev.startswith("cuda"):
            kwargs["device_map"] = dev  # load straight onto the GPU, not via host memory
        model = AutoModelForCausalLM.from_pretrained(
            str(path), trust_remote_code=trust_remote_code, **kwargs
        )
        if not dev.startswith("cuda"):
            model = model.to(dev)
        return cls(model, tok, batch_size=batch_size, name=str(path))

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def chat_text(self, messages: Messages) -> str:
        """The prompt string the model sees, ending with the assistant turn opener."""
        return self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=False
        )

    def encode_prompt(self, messages: Messages) -> list[int]:
        """Token ids of :meth:`chat_text`; the template already holds any BOS token."""
        return list(self.tokenizer(self.chat_text(messages), add_special_tokens=False)["input_ids"])

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for v in (gen_eos, self.tokenizer.eos_token_id):
            if v is None:
                continue
            ids.extend(v if isinstance(v, list) else [v])
        return sorted(set(ids))

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
    ) -> list[Generation]:
        """Generate for every prompt, ``batch_size`` at a time; texts decoded without
        special tokens and stripped of surrounding whitespace."""
        import torch

        out: list[Generation] = []
        sample = temperature > 0
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": sample,
            "num_return_sequences": n,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self._eos_ids() or None,
        }
        if sample:
            gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
        else:
            # Explicit so a checkpoint's sampling defaults do not trigger warnings or sampling.
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            texts = [self.chat_text(m) for m in chunk]
            enc = self.tokenizer(
                texts, return_tensors="pt", padding=True, padding_side="left",
                add_special_tokens=False,
            ).to(self.device)
            with torch.inference_mode():
                seqs = self.model.generate(**enc, **gen_kwargs)
            new = seqs[:, enc["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            for i in range(len(chunk)):
                outs = tuple(t.strip() for t in decoded[i * n : (i + 1) * n])
                out.append(Generation(texts=outs))
        return out

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees."""
