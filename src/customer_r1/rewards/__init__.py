"""Verifiable rewards for GRPO (format + difficulty-weighted exact action match)."""

from customer_r1.rewards.functions import (
    REWARD_REGISTRY,
    RewardConfig,
    completion_text,
    make_rewards,
)

__all__ = ["REWARD_REGISTRY", "RewardConfig", "completion_text", "make_rewards"]
