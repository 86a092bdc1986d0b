"""LoRA is one flag away: SFT with --use_peft, then GRPO initialised from the LoRA checkpoint."""

from __future__ import annotations

import json

from trainkit import common_args, tiny_setup

from customer_r1.training import grpo, sft


def test_lora_sft_then_grpo_from_it(tmp_path):
    base, built = tiny_setup(tmp_path, n_sessions=4)
    out = tmp_path / "sft-lora"
    m = sft.main(
        [
            "--dataset_path",
            str(built),
            "--model_name_or_path",
            str(base),
            "--max_steps",
            "1",
            "--per_device_train_batch_size",
            "2",
            "--max_length",
            "2048",
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--lora_alpha",
            "8",
            "--lora_target_modules",
            "q_proj",
            "v_proj",
            *common_args(out),
        ]
    )
    assert m["global_step"] == 1
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and not (out / "model.safetensors").exists()  # an adapter, not a full model
    g = grpo.main(
        [
            "--dataset_path",
            str(built),
            "--model_name_or_path",
            str(out),
            "--max_steps",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--num_generations",
            "4",
            "--max_completion_length",
            "8",
            *common_args(tmp_path / "grpo"),
        ]
    )
    assert g["global_step"] == 1 and (tmp_path / "grpo" / "model.safetensors").exists()
