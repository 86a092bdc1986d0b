"""Supervised fine-tuning on next-action examples: a thin layer over TRL's SFTTrainer.

    customer-r1 train sft --config recipes/tiny-cpu/sft.yaml [--learning_rate 1e-4 ...]
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m customer_r1.training.sft \
        --config recipes/qwen2.5-7b/sft.yaml

The examples are conversational prompt/completion pairs, so TRL trains on the
completion only; the fused LM head scores only completion positions (lm_head.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from customer_r1.training.common import (
    callbacks_for,
    finish_distributed,
    last_checkpoint,
    load_examples,
    load_model,
    load_tokenizer_for,
    parse_config,
    resolve_model_path,
    save_run_record,
)
from customer_r1.training.configs import SFTScriptArguments
from customer_r1.training.lm_head import score_only_labelled_positions

log = logging.getLogger(__name__)


def train_sft(script_args: SFTScriptArguments, training_args: Any, model_args: Any) -> dict[str, Any]:
    """Train, save model + tokenizer + resolved config + metrics in output_dir; return metrics."""
    from transformers import set_seed
    from trl import SFTTrainer, get_peft_config

    set_seed(training_args.seed)
    score_only_labelled_positions()
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer_for(path)
    model = load_model(path, model_args, training_args)
    train = load_examples(script_args, script_args.train_split, keep=["prompt", "completion"])
    evals = (
        load_examples(script_args, script_args.eval_split, keep=["prompt", "completion"])
        if script_args.eval_split
        else None
    )
    if training_args.completion_only_loss is False:
        log.warning("completion_only_loss=False: the prompt (persona, pages) is trained on too")
    callbacks = callbacks_for(script_args)
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    result = trainer.train(resume_from_checkpoint=last_checkpoint(training_args))
    metrics = dict(result.metrics)
    metrics["global_step"] = trainer.state.global_step
    metrics["train_examples"] = len(train)
    if evals is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(training_args.output_dir)
        trainer.save_state()
        save_run_record(
            training_args.output_dir, "sft", script_args, training_args, model_args, metrics=metrics
        )
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from trl import SFTConfig

    script_args, training_args, model_args = parse_config(
        SFTConfig, SFTScriptArguments, list(sys.argv[1:] if argv is None else argv)
    )
    try:
        return train_sft(script_args, training_args, model_args)
    finally:
        if argv is None:  # a launched script, not a call from the demo or a test
            finish_distributed()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
