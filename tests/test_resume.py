"""Training resumes from the last checkpoint in output_dir (open-r1's rule)."""

from __future__ import annotations

import json

from trainkit import common_args, tiny_setup

from customer_r1.training import sft


def test_sft_resumes_from_last_checkpoint(tmp_path):
    base, built = tiny_setup(tmp_path, n_sessions=4)
    out = tmp_path / "sft"
    args = [
        "--dataset_path",
        str(built),
        "--model_name_or_path",
        str(base),
        "--max_length",
        "2048",
        "--per_device_train_batch_size",
        "2",
        *common_args(out),
    ]
    args[args.index("--save_strategy") + 1] = "steps"
    first = sft.main([*args, "--max_steps", "2", "--save_steps", "1"])
    assert first["global_step"] == 2 and (out / "checkpoint-2").exists()
    again = sft.main([*args, "--max_steps", "3", "--save_steps", "1"])
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    # Resumed: only step 3 was run, and the log continues the first run's history.
    assert again["global_step"] == 3 and [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 3
    assert (out / "resolved_config.yaml").exists() and (out / "tokenizer.json").exists()
