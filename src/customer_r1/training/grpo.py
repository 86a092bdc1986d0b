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
from typing import Any

from customer_r1.rewards import make_rewards
from customer_r1.training.common import (
    callbacks_for,
    check_lengths,
    load_examples,
    load_model,
    load_tokenizer_for,
    resolve_model_path,
    run_main,
    train_and_save,
)
from customer_r1.training.configs import GRPOScriptArguments
from customer_r1.training.cpu_speed import apply_cpu_precision
from customer_r1.training.lm_head import score_only_labelled_positions

log = logging.getLogger(__name__)

#: Columns the reward functions read (plus ids that make logs traceable).
REWARD_COLUMNS = ["prompt", "action_json", "click_type", "require_rationale", "example_id", "prompt_tokens",
                  "page_names", "name_handles"]


def train_grpo(script_args: GRPOScriptArguments, training_args: Any, model_args: Any) -> dict[str, Any]:
    """Train from ``model_name_or_path`` (typically the SFT output) and save like SFT does."""
    from transformers import set_seed
    from trl import GRPOTrainer, get_peft_config

    set_seed(training_args.seed)
    score_only_labelled_positions()
    apply_cpu_precision(script_args, training_args)
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer_for(path)
    tokenizer.padding_side = "left"
    model = load_model(path, model_args, training_args)
    train = load_examples(script_args, script_args.train_split, keep=REWARD_COLUMNS)
    longest = check_lengths(train, tokenizer, model, training_args.max_completion_length)
    log.info("GRPO on %d prompts, longest %d tokens", len(train), longest)
    rewards = make_rewards(script_args.reward_funcs, script_args.reward_config())
    callbacks = callbacks_for(script_args, training_args)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=training_args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    return train_and_save(
        trainer,
        tokenizer,
        "grpo",
        script_args,
        training_args,
        model_args,
        metrics={"train_prompts": len(train)},
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from trl import GRPOConfig

    return run_main(GRPOConfig, GRPOScriptArguments, train_grpo, argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
