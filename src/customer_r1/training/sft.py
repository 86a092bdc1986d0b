"""Supervised fine-tuning on next-action examples: a thin layer over TRL's SFTTrainer.

    customer-r1 train sft --config recipes/tiny-cpu/sft.yaml [--learning_rate 1e-4 ...]
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m customer_r1.training.sft \
        --config recipes/qwen2.5-7b/sft.yaml

The examples are conversational prompt/completion pairs, so TRL trains on the
completion only; the fused LM head scores only completion positions (lm_head.py).
``pack_sessions`` trains a whole ``chat``-style session per sequence (packing.py).
"""

from __future__ import annotations

import logging
from typing import Any

from customer_r1.errors import BadValue
from customer_r1.training.common import (
    callbacks_for,
    load_examples,
    load_model,
    load_tokenizer_for,
    resolve_model_path,
    run_main,
    train_and_save,
)
from customer_r1.training.configs import SFTScriptArguments
from customer_r1.training.cpu_speed import apply_cpu_precision, apply_padding_free, compile_layers
from customer_r1.training.lm_head import score_only_labelled_positions

log = logging.getLogger(__name__)


def train_sft(script_args: SFTScriptArguments, training_args: Any, model_args: Any) -> dict[str, Any]:
    """Train, save model + tokenizer + resolved config + metrics in output_dir; return metrics."""
    from transformers import set_seed
    from trl import SFTTrainer, get_peft_config

    set_seed(training_args.seed)
    score_only_labelled_positions()
    precision = apply_cpu_precision(script_args, training_args)
    padding_free = apply_padding_free(script_args, training_args, model_args)
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer_for(path)
    model = load_model(path, model_args, training_args)
    compiled = compile_layers(script_args, training_args, model)
    keep = ["prompt", "completion"]
    if script_args.pack_sessions:
        keep += ["session_id", "step_index"]
    train = load_examples(script_args, script_args.train_split, keep=keep)
    evals = load_examples(script_args, script_args.eval_split, keep=keep) if script_args.eval_split else None
    extra: dict[str, Any] = {"train_examples": len(train), "cpu_padding_free": padding_free,
                             "cpu_compiled_layers": compiled}
    if precision is not None:
        extra.update(cpu_bf16=precision.bf16, cpu_precision_reason=precision.reason)
    if script_args.pack_sessions:
        if training_args.completion_only_loss is False:
            raise BadValue("pack_sessions needs completion_only_loss (the loss mask is the packing)",
                           where="completion_only_loss")
        training_args.completion_only_loss = True
        train, stats = _pack(train, tokenizer, training_args.max_length)
        extra.update(
            train_sequences=stats.sequences,
            pack_breaks=stats.breaks,
            pack_token_ratio=round(stats.token_ratio, 3),
        )
        if evals is not None:
            evals, _ = _pack(evals, tokenizer, training_args.max_length)
    elif training_args.completion_only_loss is False:
        log.warning("completion_only_loss=False: the prompt (persona, pages) is trained on too")
    callbacks = callbacks_for(script_args, training_args)
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    return train_and_save(
        trainer,
        tokenizer,
        "sft",
        script_args,
        training_args,
        model_args,
        metrics=extra,
    )


def _pack(ds: Any, tokenizer: Any, max_length: int | None) -> tuple[Any, Any]:
    from customer_r1.training.packing import packed_dataset

    packed, stats = packed_dataset(ds, tokenizer, max_length=max_length)
    if stats.breaks and stats.breaks * 2 > stats.steps:
        log.warning(
            "pack_sessions: %d of %d steps did not chain onto the step before; build the examples "
            "with prompt_style chat and no history window for packing to pay",
            stats.breaks,
            stats.steps,
        )
    return packed, stats


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from trl import SFTConfig

    return run_main(SFTConfig, SFTScriptArguments, train_sft, argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
