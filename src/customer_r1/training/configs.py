"""Script arguments of the training entry points (TRL's own configs do the rest).

A recipe is one YAML file holding the fields of these dataclasses together with TRL's
``SFTConfig``/``GRPOConfig`` and ``ModelConfig`` (open-r1's layout); any field can be
overridden on the command line (``--learning_rate 1e-5``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    """Which built examples to train on, and what to do with steps lacking a rationale."""

    dataset_path: str = field(
        default="", metadata={"help": "Built examples folder (customer-r1 data build)."}
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(default=None, metadata={"help": "Optional split for evaluation loss."})
    max_train_examples: int | None = field(default=None, metadata={"help": "Use at most this many examples."})
    missing_rationales: str = field(
        default="error",
        metadata={
            "help": "Steps whose rationale is missing (rationale mode on): 'error' (synthesise them first "
            "with `customer-r1 data rationales`), 'drop' them (counted), or 'keep' (train on the empty "
            "rationale)."
        },
    )
    max_train_minutes: float | None = field(
        default=None,
        metadata={"help": "Stop training (and save) after this many minutes, whatever the step count."},
    )
    lr_schedule_over_time: bool = field(
        default=False,
        metadata={
            "help": "With max_train_minutes: after warmup_steps, decay the learning rate (the recipe's "
            "cosine, linear or constant) over the wall-clock budget instead of the step count, so a run "
            "capped by time still ends annealed. The clock starts when training starts."
        },
    )
    rank_fingerprints: bool = field(
        default=False,
        metadata={"help": "Write a hash of the final weights per rank (distributed checks)."},
    )
    cpu_bf16: str | None = field(
        default=None,
        metadata={
            "help": "CPU runs only: 'auto' trains in bf16 autocast where the CPU has native bf16 "
            "(avx512_bf16 / amx_bf16) and says in the log when it falls back to fp32; 'true' forces it, "
            "'false' keeps fp32; unset leaves TRL's bf16 as the recipe has it. Ignored on a GPU. "
            "See training/cpu_speed.py."
        },
    )


@dataclass
class SFTScriptArguments(DataArguments):
    """SFT script arguments."""

    pack_sessions: bool = field(
        default=False,
        metadata={
            "help": "Train each session's steps in one sequence (examples built with prompt_style chat; "
            "see customer_r1/training/packing.py). Steps that do not chain start a new sequence."
        },
    )
    cpu_padding_free: bool = field(
        default=False,
        metadata={
            "help": "CPU runs only, batch size > 1: TRL's padding-free batches (examples end to end, no "
            "padding) with causal attention computed per example; max_length is then not applied. "
            "See training/cpu_speed.py."
        },
    )
    cpu_compile_layers: bool = field(
        default=False,
        metadata={
            "help": "CPU runs only: torch.compile each decoder layer (dynamic shapes; the per-example "
            "attention stays eager), fusing the elementwise work around the matmuls. See "
            "training/cpu_speed.py and docs/cpu-training.md for when it pays."
        },
    )


@dataclass
class GRPOScriptArguments(DataArguments):
    """GRPO script arguments: which rewards, and the action reward's weights."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["format", "action"],
        metadata={"help": "Reward names from customer_r1.rewards.REWARD_REGISTRY."},
    )
    weight_input: float = field(default=2000.0, metadata={"help": "Reward of a correct input."})
    weight_click: float = field(default=1000.0, metadata={"help": "Reward of a correct click (most types)."})
    weight_product_option: float = field(default=10.0, metadata={"help": "Correct product_option click."})
    weight_review: float = field(default=1.0, metadata={"help": "Correct review click."})
    weight_search: float = field(default=1.0, metadata={"help": "Correct search click."})
    weight_terminate: float = field(default=1.0, metadata={"help": "Correct terminate."})
    wrong_click: float = field(default=-1.0, metadata={"help": "Reward of a wrong predicted click."})
    rl_only: bool = field(default=False, metadata={"help": "RL-only setting: a wrong click costs 0."})

    def reward_config(self):  # the import stays lazy: configs load before any model code
        from customer_r1.rewards import RewardConfig

        return RewardConfig(
            weight_input=self.weight_input,
            weight_click=self.weight_click,
            click_weights={
                "product_option": self.weight_product_option,
                "review": self.weight_review,
                "search": self.weight_search,
            },
            weight_terminate=self.weight_terminate,
            wrong_click=self.wrong_click,
            rl_only=self.rl_only,
        )
