"""Two processes (torchrun, gloo on CPU) train SFT then GRPO and end with identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from trainkit import common_args, tiny_setup

from customer_r1.training.common import weights_fingerprint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(module: str, args: list[str], cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            "-m",
            module,
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        noise = ("it/s]", "examples/s]", "Warning", "warnings.warn")
        lines = [ln for ln in proc.stderr.splitlines() if not any(n in ln for n in noise)]
        raise AssertionError("\n".join(lines[-80:]))


def fingerprints(out: Path) -> list[str]:
    files = sorted(out.glob("fingerprint-rank*.txt"))
    assert [f.name for f in files] == ["fingerprint-rank0.txt", "fingerprint-rank1.txt"]
    return [f.read_text() for f in files]


@pytest.mark.slow
def test_two_ranks_train_identical_weights(tmp_path):
    from transformers import AutoModelForCausalLM

    base, built = tiny_setup(tmp_path)
    initial = weights_fingerprint(AutoModelForCausalLM.from_pretrained(base))
    sft_out = tmp_path / "sft"
    run(
        "customer_r1.training.sft",
        [
            "--dataset_path",
            str(built),
            "--model_name_or_path",
            str(base),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "2",
            "--max_length",
            "2048",
            "--rank_fingerprints",
            "true",
            *common_args(sft_out),
        ],
        tmp_path,
    )
    a, b = fingerprints(sft_out)
    assert a == b != initial

    grpo_out = tmp_path / "grpo"
    run(
        "customer_r1.training.grpo",
        [
            "--dataset_path",
            str(built),
            "--model_name_or_path",
            str(sft_out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--num_generations",
            "4",
            "--max_completion_length",
            "12",
            "--reward_funcs",
            "dist_rewards:char_diversity",
            "--learning_rate",
            "1e-3",
            "--rank_fingerprints",
            "true",
            *common_args(grpo_out),
        ],
        tmp_path,
    )
    c, d = fingerprints(grpo_out)
    assert c == d != a
