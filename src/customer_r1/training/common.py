"""What SFT and GRPO share: model and data loading, resuming, saving the run's record."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from customer_r1.errors import BadFile, BadValue, MissingFile, UserError
from customer_r1.training.configs import DataArguments

log = logging.getLogger(__name__)


def resolve_model_path(name_or_path: str | None) -> str:
    """``smollm2`` names the bundled SmolLM2-135M-Instruct; anything else is an HF id or path."""
    if not name_or_path:
        raise BadValue("model_name_or_path is required (an HF id, a path, or 'smollm2')",
                       where="model_name_or_path", hint="set it in the recipe or as --model_name_or_path")
    if name_or_path == "smollm2":
        from customer_r1.training.bases import smollm2_dir

        return str(smollm2_dir())
    return name_or_path


def load_tokenizer_for(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise BadFile(f"tokenizer at {path} has no chat template; the examples are chat messages",
                      where="model_name_or_path",
                      hint="start from an instruct model or `customer-r1 model init`")
    return tok


def load_model(path: str, model_args: Any, training_args: Any) -> Any:
    """A causal LM from a path; a LoRA checkpoint (e.g. SFT with PEFT) is merged first."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype: Any = getattr(model_args, "dtype", None) or "auto"
    if dtype not in ("auto", None):
        dtype = getattr(torch, dtype)
    if getattr(training_args, "use_cpu", False) and dtype in ("auto", torch.bfloat16, torch.float16):
        dtype = torch.float32  # CPU training runs in float32
    kwargs = {"dtype": dtype, "attn_implementation": getattr(model_args, "attn_implementation", None)}
    if (Path(path) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        log.info("merging the LoRA adapter at %s into its base", path)
        return AutoPeftModelForCausalLM.from_pretrained(path, **kwargs).merge_and_unload()
    return AutoModelForCausalLM.from_pretrained(path, **kwargs)


def load_examples(args: DataArguments, split: str, keep: list[str] | None = None) -> Any:
    """A built split as a ``datasets.Dataset``, with the missing-rationale policy applied."""
    from datasets import load_dataset

    path = Path(args.dataset_path)
    file = path / f"{split}.parquet" if path.is_dir() else path
    if not file.exists():
        raise MissingFile(f"no built split at {file}", where="dataset_path",
                          hint=f"run `customer-r1 data build ... --out {path}` "
                          "(or check train_split/eval_split)")
    ds = load_dataset("parquet", data_files=str(file), split="train")
    if "needs_rationale" in ds.column_names:
        missing = sum(ds["needs_rationale"])
        if missing:
            if args.missing_rationales == "error":
                raise BadFile(
                    f"{missing} of {len(ds)} examples in {file} have no rationale (rationale mode on)",
                    where="missing_rationales",
                    hint="synthesise them (`customer-r1 data rationales`), or set missing_rationales to "
                    "'drop' or 'keep'",
                )
            if args.missing_rationales == "drop":
                ds = ds.filter(lambda r: not r["needs_rationale"])
                log.warning(
                    "dropped %d examples without a rationale from %s (%d left)", missing, file, len(ds)
                )
            elif args.missing_rationales != "keep":
                raise BadValue(
                    f"missing_rationales must be error, drop or keep, got {args.missing_rationales!r}",
                    where="missing_rationales",
                )
    if args.max_train_examples is not None and split == args.train_split:
        if getattr(args, "pack_sessions", False):
            ds = _whole_sessions(ds, args.max_train_examples)
        else:  # a seeded random subset: the file is ordered by user and session
            ds = ds.shuffle(seed=0).select(range(min(args.max_train_examples, len(ds))))
    if keep is not None:
        ds = ds.select_columns([c for c in keep if c in ds.column_names])
    if len(ds) == 0:
        raise BadFile(f"no examples left to train on in {file}", where="dataset_path")
    return ds


def _whole_sessions(ds: Any, limit: int) -> Any:
    """At most ``limit`` examples made of whole sessions (seeded), so packing still chains."""
    import random

    by_session: dict[str, list[int]] = {}
    for i, sid in enumerate(ds["session_id"]):
        by_session.setdefault(sid, []).append(i)
    order = list(by_session)
    random.Random(0).shuffle(order)
    keep: list[int] = []
    for sid in order:
        if len(keep) + len(by_session[sid]) <= limit:
            keep.extend(by_session[sid])
    return ds.select(sorted(keep))


def check_lengths(ds: Any, tokenizer: Any, model: Any, completion_tokens: int) -> int:
    """Fail early when prompts (built within a budget) plus completions exceed the model's context."""
    if "prompt_tokens" not in ds.column_names:
        return 0
    counts = [c for c in ds["prompt_tokens"] if c is not None]
    longest = max(counts) if counts else 0
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and longest + completion_tokens > limit:
        raise BadValue(
            f"the longest prompt has {longest} tokens and completions up to {completion_tokens}, over the "
            f"model's {limit} positions", where="dataset_path",
            hint=f"rebuild the examples with --budget {limit - completion_tokens}",
        )
    return longest


def last_checkpoint(training_args: Any) -> str | None:
    """Resume from the last checkpoint in output_dir unless told otherwise (open-r1's rule)."""
    from transformers.trainer_utils import get_last_checkpoint

    if training_args.resume_from_checkpoint:
        return str(training_args.resume_from_checkpoint)
    out = training_args.output_dir
    if out and os.path.isdir(out):
        ckpt = get_last_checkpoint(out)
        if ckpt is not None:
            log.info("resuming from %s", ckpt)
        return ckpt
    return None


def save_run_record(
    output_dir: str, stage: str, *dataclass_args: Any, metrics: dict[str, Any] | None = None
) -> None:
    """The resolved config (every field of every config) and metrics beside the model."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved: dict[str, Any] = {"stage": stage}
    for obj in dataclass_args:
        d = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
        resolved[type(obj).__name__] = json.loads(json.dumps(d, default=str))
    (out / "resolved_config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    if metrics is not None:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))


def weights_fingerprint(model: Any) -> str:
    """SHA-256 over every parameter (name, dtype, bytes): equal iff the weights are equal."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        t = p.detach().float().cpu().contiguous()
        h.update(name.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def fingerprint_callback() -> Any:
    from transformers import TrainerCallback

    class RankFingerprint(TrainerCallback):
        """Writes each rank's weight hash at the end of training."""

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            rank = int(os.environ.get("RANK", "0"))
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            (Path(args.output_dir) / f"fingerprint-rank{rank}.txt").write_text(weights_fingerprint(model))

    return RankFingerprint()


def clock() -> float:
    """Seconds on the clock that wall-time budgets read (a test replaces it with a clock
    that ticks per call, so a budgeted run has the same steps on a busy machine)."""
    return time.monotonic()


def time_limit_callback(minutes: float) -> Any:
    """Stops training cleanly after ``minutes`` of wall time (the model is then saved as usual)."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        def __init__(self) -> None:
            self.start = clock()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if clock() - self.start > minutes * 60:
                log.warning("time limit of %.1f min reached at step %d: stopping", minutes, state.global_step)
                control.should_training_stop = True

    return TimeLimit()


#: Decay shapes a time-budgeted schedule follows (HF's scheduler names).
TIME_SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup")


def time_budget_lr_factor(
    step: int, elapsed: float, budget: float, warmup_steps: int, warmup_seconds: float | None, kind: str
) -> float:
    """The learning-rate multiplier of a schedule whose decay runs over wall time.

    Warmup is linear over ``warmup_steps`` (steps, as in HF); the decay then covers the
    budget left after warmup (``warmup_seconds``: how long warmup took), ending at 0 for
    cosine and linear.
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    if kind.startswith("constant"):
        return 1.0
    spent = warmup_seconds or 0.0
    frac = min(1.0, max(0.0, (elapsed - spent) / max(budget - spent, 1e-9)))
    if kind == "linear":
        return 1.0 - frac
    return 0.5 * (1.0 + math.cos(math.pi * frac))


def time_budget_callback(minutes: float, warmup_steps: int, kind: str) -> Any:
    """Decays the LR over ``minutes`` of training (from the first step) and then stops.

    A step-based cosine cut short by a time limit ends at a high learning rate; on
    hardware whose speed is not known in advance (a lent GPU) this anneals to 0 exactly
    when the budget runs out. It swaps the lambdas of the trainer's ``LambdaLR``.
    """
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import TrainerCallback

    if kind not in TIME_SCHEDULES:
        raise BadValue(f"lr_schedule_over_time supports lr_scheduler_type {TIME_SCHEDULES}, not {kind!r}",
                       where="lr_scheduler_type")
    budget = minutes * 60

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.warmup_seconds: float | None = None

        def factor(self, step: int) -> float:
            if self.start is None:
                return time_budget_lr_factor(step, 0.0, budget, warmup_steps, None, kind)
            elapsed = clock() - self.start
            if step >= warmup_steps and self.warmup_seconds is None:
                self.warmup_seconds = elapsed
            return time_budget_lr_factor(step, elapsed, budget, warmup_steps, self.warmup_seconds, kind)

        def on_train_begin(
            self, args: Any, state: Any, control: Any, lr_scheduler: Any = None, **kw: Any
        ) -> None:
            if not isinstance(lr_scheduler, LambdaLR):
                raise TypeError(
                    f"lr_schedule_over_time needs a LambdaLR scheduler, the trainer has {type(lr_scheduler)}"
                )
            self.start = clock()
            lr_scheduler.lr_lambdas = [self.factor] * len(lr_scheduler.base_lrs)
            for group, base in zip(lr_scheduler.optimizer.param_groups, lr_scheduler.base_lrs, strict=True):
                group["lr"] = base * self.factor(lr_scheduler.last_epoch)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.start is not None and clock() - self.start > budget:
                log.info("time budget of %.1f min spent at step %d: stopping", minutes, state.global_step)
                control.should_training_stop = True

    return TimeBudget()


def callbacks_for(args: DataArguments, training_args: Any = None) -> list[Any] | None:
    cbs = []
    if args.rank_fingerprints:
        cbs.append(fingerprint_callback())
    if args.lr_schedule_over_time:
        if args.max_train_minutes is None or training_args is None:
            raise BadValue("lr_schedule_over_time needs max_train_minutes (the budget to decay over)",
                           where="lr_schedule_over_time")
        warmup = training_args.warmup_steps
        if 0 < warmup < 1:
            raise BadValue("lr_schedule_over_time needs warmup_steps as a step count (>= 1), not a ratio",
                           where="warmup_steps")
        kind = getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)
        cbs.append(time_budget_callback(args.max_train_minutes, int(warmup), str(kind)))
    elif args.max_train_minutes is not None:
        cbs.append(time_limit_callback(args.max_train_minutes))
    return cbs or None


def finish_distributed() -> None:
    """Tear the process group down in step, so no rank aborts on a peer that already left."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def train_and_save(
    trainer: Any, tokenizer: Any, stage: str, *configs: Any, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Train (resuming when output_dir has checkpoints), then save model, tokenizer, state and record."""
    args = trainer.args
    result = trainer.train(resume_from_checkpoint=last_checkpoint(args))
    metrics = {**result.metrics, "global_step": trainer.state.global_step, **metrics}
    if stage == "grpo":
        history = [h for h in trainer.state.log_history if "reward" in h]
        if history:
            metrics["reward_first"] = history[0]["reward"]
            metrics["reward_last"] = history[-1]["reward"]
            zero_std = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
            if zero_std:
                metrics["frac_reward_zero_std_mean"] = sum(zero_std) / len(zero_std)
    elif trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(args.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.padding_side = "right"
        tokenizer.save_pretrained(args.output_dir)
        trainer.save_state()
        save_run_record(args.output_dir, stage, *configs, metrics=metrics)
        copy_build_config(configs, args.output_dir)
    return metrics


def copy_build_config(configs: tuple[Any, ...], output_dir: str) -> None:
    """Keep the examples' ``build.json`` beside the model: how its prompts were built is
    part of the checkpoint (a simulator builds its prompts the same way from it)."""
    import shutil

    for c in configs:
        path = getattr(c, "dataset_path", None)
        src = Path(path) / "build.json" if path else None
        if src is not None and src.is_file():
            shutil.copyfile(src, Path(output_dir) / "build.json")
            return


def run_main(config_cls: type, script_cls: type, train: Any, argv: list[str] | None) -> dict[str, Any]:
    """Parse ``--config`` + overrides and train; a launched script (argv None) also tears down."""
    import sys

    script_args, training_args, model_args = parse_config(
        config_cls, script_cls, list(sys.argv[1:] if argv is None else argv)
    )
    try:
        return train(script_args, training_args, model_args)
    finally:
        if argv is None:
            finish_distributed()


def _recipe_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def check_recipe_keys(parser: Any, recipe: str) -> None:
    """Every key of the recipe must be a field of the parser's dataclasses (or ``env``):
    TRL would name them only as a list of command-line strings."""
    try:
        data = yaml.safe_load(Path(recipe).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadFile(f"cannot read recipe: {type(exc).__name__}", where=recipe) from exc
    if not isinstance(data, dict):
        raise BadFile("the recipe is not a YAML mapping of settings", where=recipe)
    known = {a.dest for a in parser._actions} | {"env"}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise BadFile(f"unknown setting(s) {', '.join(unknown)}", where=recipe,
                      hint="check the spelling against recipes/tiny-cpu/*.yaml or TRL's config docs")


def parse_config(config_cls: type, script_cls: type, argv: list[str]) -> tuple[Any, Any, Any]:
    """(script args, TRL training config, model config) from ``--config FILE`` plus overrides.

    Every mistake is a :class:`~customer_r1.errors.UserError` raised before any model or
    data loads: an unknown recipe key, a bad override (argparse would print its usage
    and exit), an inconsistent TRL setting, a missing ``dataset_path`` or a model that is
    not there (:func:`customer_r1.models.resolve_model`).
    """
    from trl import ModelConfig, TrlParser

    from customer_r1.models import resolve_model

    parser = TrlParser((script_cls, config_cls, ModelConfig))
    recipe = _recipe_path(argv)

    def _argparse_error(message: str) -> Any:
        raise BadValue(message, where=recipe or "command line",
                       hint="fields are overridden as --name value (see the recipe)")

    parser.error = _argparse_error  # type: ignore[method-assign]
    if recipe is not None:
        check_recipe_keys(parser, recipe)
    try:
        with warnings.catch_warnings():  # library deprecation notes are not the user's business here
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    except UserError:
        raise
    except (ValueError, TypeError, yaml.YAMLError) as exc:  # TRL/transformers checks of the settings
        raise BadFile(" ".join(str(exc).split())[:300], where=recipe or "command line") from exc
    if not script_args.dataset_path:
        raise BadValue("dataset_path is required", where="dataset_path",
                       hint="set it in the recipe or as --dataset_path")
    if not Path(script_args.dataset_path).exists():
        raise MissingFile(f"no built examples at {script_args.dataset_path}", where="dataset_path",
                          hint="build them with `customer-r1 data build SRC --out DIR`")
    name = model_args.model_name_or_path
    if name and name != "smollm2":
        resolve_model(str(name), "model_name_or_path")
    return script_args, training_args, model_args
