"""Token counting for the context budget.

Pages are the expensive part of a prompt (OPeRA's median page is ~100k characters),
and each page appears in many prompts (as the current page once, then in every later
step's history). So each page is tokenized exactly once, in batches that the Rust
tokenizer spreads over all cores, and prompts are budgeted from cached counts.

The counts add up exactly because the prompt is assembled from pieces that each end
with a newline and start with a non-space character: byte-level BPE pre-tokenizers
(GPT-2, Llama-3, Qwen2 and SmolLM2 families) never merge across such a boundary. The
builder checks this assumption on real examples (see ``examples.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Pages per call into the Rust tokenizer: enough work to keep every core busy.
ENCODE_BATCH = 32


@dataclass(slots=True)
class PageCount:
    """Tokens of one page piece, and where it may be cut (set only for pages that may need it)."""

    tokens: int
    # (token index, char offset) pairs at pre-token starts, ascending; a prefix that ends
    # at one of these offsets tokenizes to exactly that many tokens.
    cut_points: list[tuple[int, int]] | None = None


def load_tokenizer(name_or_path: str) -> Any:
    """Load a tokenizer by path or Hub id; ``smollm2`` means the bundled SmolLM2-135M one."""
    from transformers import AutoTokenizer

    if name_or_path == "smollm2":
        from customer_r1.assets import smollm2_dir

        name_or_path = str(smollm2_dir(with_model=False))
    if os.path.isdir(name_or_path) or not Path(name_or_path).exists():
        return AutoTokenizer.from_pretrained(name_or_path)
    raise FileNotFoundError(f"tokenizer path {name_or_path!r} is a file; pass its folder")


class TokenCounter:
    """Counts tokens with a Hugging Face fast tokenizer, batched and parallel."""

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TypeError(f"token counting needs a fast (Rust) tokenizer; got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self._backend = backend
        self._small: dict[str, int] = {}

    @property
    def name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__)

    def count(self, text: str) -> int:
        """Tokens of a short text, memoised (headers, actions and rationales repeat a lot)."""
        n = self._small.get(text)
        if n is None:
            n = len(self._backend.encode(text, add_special_tokens=False))
            if len(text) < 512:
                self._small[text] = n
        return n

    def count_pages(
        self,
        pages: Sequence[str],
        needs_cut: Callable[[int, int], bool],
        *,
        progress: Callable[[int], None] | None = None,
        cut_stride: int = 64,
    ) -> list[PageCount]:
        """Tokenize every page once; keep cut points only where ``needs_cut(i, tokens)``.

        Cut points are pre-token starts, at most every ``cut_stride`` tokens apart, so a
        later cut needs no second pass over the page.
        """
        out: list[PageCount] = []
        for start in range(0, len(pages), ENCODE_BATCH):
            batch = list(pages[start : start + ENCODE_BATCH])
            encs = self._backend.encode_batch(batch, add_special_tokens=False)
            for j, enc in enumerate(encs):
                n = len(enc)
                cuts = _cut_points(enc, cut_stride) if needs_cut(start + j, n) else None
                out.append(PageCount(n, cuts))
            if progress is not None:
                progress(len(batch))
        return out

    def count_many(self, texts: Sequence[str], batch: int = 256) -> list[int]:
        """Tokens of many texts (compressed page lines), batched over all cores."""
        out: list[int] = []
        for start in range(0, len(texts), batch):
            encs = self._backend.encode_batch(list(texts[start : start + batch]), add_special_tokens=False)
            out.extend(len(e) for e in encs)
        return out

    def exact_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of a chat prompt exactly as the trainer will see it (template included)."""
        ids = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=True, return_dict=False
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    def cut_points(self, text: str, stride: int = 64) -> list[tuple[int, int]]:
        return _cut_points(self._backend.encode(text, add_special_tokens=False), stride)


def _cut_points(enc: Any, stride: int) -> list[tuple[int, int]]:
    """Pre-token starts about every ``stride`` tokens: (token index, char offset).

    The Encoding's lists are materialised once and only ~n/stride positions visited,
    so this costs a few milliseconds even for a 60k-token page.
    """
    word_ids = enc.word_ids
    offsets = enc.offsets
    points: list[tuple[int, int]] = [(0, 0)]
    for target in range(stride, len(word_ids), stride):
        i = target
        floor = points[-1][0]
        while i > floor and word_ids[i] == word_ids[i - 1]:
            i -= 1
        if i > floor:
            points.append((i, offsets[i][0]))
    return points
