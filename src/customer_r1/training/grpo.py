"""GRPO with the verifiable reward: a thin layer over TRL's GRPOTrainer.

    customer-r1 train grpo --config recipes/tiny-cpu/grpo.yaml --model_name_or_path runs/sft
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m customer_r1.training.grpo \
        --config recipes/qwen2.5-7b/grpo.yaml

Rewards come from ``customer_r1.rewards`` by name; their ground truth comes from the
example columns, which GRPOTrainer passes to every reward function. vLLM generation,
DeepSpeed/FSDP and liger kernels are TRL/accelerate settings in the recipe.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from customer_r1.rewards import make_rewards
from customer_r1.training.common import (
    callbacks_for,
    check_lengths,
    finish_distributed,
    last_checkpoint,
    load_examples,
    load_model,
    load_tokenizer_for,
    parse_config,
    resolve_model_path,
    save_run_record,
)
from customer_r1.training.configs import GRPOScriptArguments
from customer_r1.training.lm_head import score_only_labelled_positions

log = logging.getLogger(__name__)

#: Columns the reward functions read (plus ids that make logs traceable).
REWARD_COLUMNS = ["prompt", "action_json", "click_type", "require_rationale", "example_id", "prompt_tokens"]


def train_grpo(script_args: GRPOScriptArguments, training_args: Any, model_args: Any) -> dict[str, Any]:
    """Train from ``model_name_or_path`` (typically the SFT output) and save like SFT does."""
    from transformers import set_seed
    from trl import GRPOTrainer, get_peft_config

    set_seed(training_args.seed)
    score_only_labelled_positions()
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer_for(path)
    tokenizer.padding_side = "left"
    model = load_model(path, model_args, training_args)
    train = load_examples(script_args, script_args.train_split, keep=REWARD_COLUMNS)
    longest = check_lengths(train, tokenizer, model, training_args.max_completion_length)
    log.info("GRPO on %d prompts, longest %d tokens", len(train), longest)
    rewards = make_rewards(script_args.reward_funcs, script_args.reward_config())
    callbacks = callbacks_for(script_args)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=training_args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    result = trainer.train(resume_from_checkpoint=last_checkpoint(training_args))
    metrics = dict(result.metrics)
    metrics["global_step"] = trainer.state.global_step
    metrics["train_prompts"] = len(train)
    history = [h for h in trainer.state.log_history if "reward" in h]
    if history:
        metrics["reward_first"] = history[0]["reward"]
        metrics["reward_last"] = history[-1]["reward"]
        zero_std = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
        if zero_std:
            metrics["frac_reward_zero_std_mean"] = sum(zero_std) / len(zero_std)
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.padding_side = "right"
        tokenizer.save_pretrained(training_args.output_dir)
        trainer.save_state()
        save_run_record(
            training_args.output_dir, "grpo", script_args, training_args, model_args, metrics=metrics
        )
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from trl import GRPOConfig

    script_args, training_args, model_args = parse_config(
        GRPOConfig, GRPOScriptArguments, list(sys.argv[1:] if argv is None else argv)
    )
    try:
        return train_grpo(script_args, training_args, model_args)
    finally:
        if argv is None:  # a launched script, not a call from the demo or a test
            finish_distributed()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
