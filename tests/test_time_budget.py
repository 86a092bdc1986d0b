"""A wall-clock budget: the LR decays over the time left and training stops, annealed, at 0."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from trainkit import common_args, tiny_setup

from customer_r1.training import sft
from customer_r1.training.common import callbacks_for, time_budget_lr_factor
from customer_r1.training.configs import SFTScriptArguments


def test_factor_warms_up_by_steps_then_decays_over_the_time_left():
    f = time_budget_lr_factor
    assert f(0, 0.0, 100.0, 10, None, "cosine") == 0.0
    assert f(5, 3.0, 100.0, 10, None, "cosine") == 0.5
    # Warmup took 20 s: the decay spans the 80 s left.
    assert f(10, 20.0, 100.0, 10, 20.0, "cosine") == 1.0
    assert f(50, 60.0, 100.0, 10, 20.0, "cosine") == pytest.approx(0.5)
    assert f(50, 60.0, 100.0, 10, 20.0, "linear") == pytest.approx(0.5)
    assert f(50, 40.0, 100.0, 10, 20.0, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert f(99, 100.0, 100.0, 10, 20.0, "cosine") == pytest.approx(0.0)
    assert f(99, 500.0, 100.0, 10, 20.0, "linear") == 0.0  # past the budget: clamped
    assert f(99, 500.0, 100.0, 10, 20.0, "constant_with_warmup") == 1.0


def test_bad_time_budget_settings_are_rejected():
    class Args:
        warmup_steps = 0.1
        lr_scheduler_type = "cosine"

    with pytest.raises(ValueError, match="needs max_train_minutes"):
        callbacks_for(SFTScriptArguments(dataset_path="x", lr_schedule_over_time=True), Args())
    timed = SFTScriptArguments(dataset_path="x", lr_schedule_over_time=True, max_train_minutes=1)
    with pytest.raises(ValueError, match="step count"):
        callbacks_for(timed, Args())
    Args.warmup_steps = 2
    Args.lr_scheduler_type = "polynomial"
    with pytest.raises(ValueError, match="supports lr_scheduler_type"):
        callbacks_for(timed, Args())


def test_sft_over_a_time_budget_ends_annealed(tmp_path, monkeypatch):
    from customer_r1.training import common

    # A clock that ticks 0.1 s each time a budget reads it: the run stops after the same
    # number of steps however busy the machine is (the real clock made this flaky).
    ticks = iter(range(10**6))
    monkeypatch.setattr(common, "clock", lambda: 0.1 * next(ticks))
    base, built = tiny_setup(tmp_path, n_sessions=4)
    out = tmp_path / "sft"
    metrics = sft.main(
        [
            "--dataset_path", str(built),
            "--model_name_or_path", str(base),
            "--max_length", "2048",
            "--per_device_train_batch_size", "2",
            "--learning_rate", "1e-3",
            "--lr_scheduler_type", "cosine",
            "--warmup_steps", "2",
            # Far more epochs than the budget allows: time, not steps, ends the run.
            "--num_train_epochs", "10000",
            "--max_train_minutes", "0.05",
            "--lr_schedule_over_time", "true",
            *common_args(out),
        ]
    )
    state = json.loads((out / "trainer_state.json").read_text())
    lrs = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert metrics["global_step"] < state["max_steps"]  # stopped by the clock
    assert len(lrs) >= 5
    # Each step logs the rate it trained at: 0, half, then the peak once 2 warmup steps are done.
    assert lrs[:3] == pytest.approx([0.0, 5e-4, 1e-3])
    # Decays monotonically after warmup, to under a tenth of the peak at the end.
    after = lrs[2:]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(after))
    assert after[-1] < 1e-4
