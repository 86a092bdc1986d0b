"""The paper-scale recipes (recipes/qwen2.5-7b) run through our entry points: on a tiny
model on the CPU, with only what a CPU cannot do overridden (bf16, flash-attention, vLLM,
the step count), so a setting TRL refuses fails here rather than on a rented cluster."""

from __future__ import annotations

from trainkit import common_args, tiny_setup

from customer_r1.training import grpo, sft

CPU = ["--dtype", "float32", "--bf16", "false", "--attn_implementation", "sdpa",
       "--max_steps", "1", "--gradient_accumulation_steps", "1", "--warmup_steps", "0"]


def test_the_7b_sft_recipe_trains_through_the_entry_point(tmp_path):
    base, built = tiny_setup(tmp_path, n_sessions=3)
    out = tmp_path / "sft"
    m = sft.main(["--config", "recipes/qwen2.5-7b/sft.yaml", "--model_name_or_path", str(base),
                  "--dataset_path", str(built), *CPU, *common_args(out)])
    assert m["global_step"] == 1 and (out / "model.safetensors").exists()


def test_the_7b_grpo_recipe_trains_through_the_entry_point(tmp_path):
    base, built = tiny_setup(tmp_path, n_sessions=3)
    out = tmp_path / "grpo"
    m = grpo.main(["--config", "recipes/qwen2.5-7b/grpo.yaml", "--model_name_or_path", str(base),
                   "--dataset_path", str(built), *CPU, "--use_vllm", "false",
                   "--per_device_train_batch_size", "2", "--num_generations", "2",
                   "--max_completion_length", "8", "--gradient_checkpointing", "false",
                   *common_args(out)])
    assert m["global_step"] == 1 and (out / "model.safetensors").exists()
