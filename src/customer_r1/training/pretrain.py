"""Language-model pretraining of a base on the world's pages and reasons, over TRL's SFTTrainer.

    customer-r1 demo --config recipes/tiny-cpu/demo-randomised.yaml   # world, tokenizer + base
    customer-r1 train pretrain --config recipes/tiny-cpu/pretrain.yaml  # `make pretrained-base`

``dataset_path`` is a world (or OPeRA) folder; its training sessions become step
documents (data/corpus.py: page HTML, then the reason; no persona, no action, nothing
from test sessions). The documents are packed end to end into ``max_length`` rows
(TRL's best-fit-decreasing packing, no padding) and trained on every token, as an LLM
is pretrained on web text. On a CPU each document attends only to itself through
training/cpu_speed.py's per-example causal attention; bf16 as ``cpu_bf16`` says. The
output is an ordinary HF folder (model + tokenizer) that ``train sft`` fine-tunes.
Resumes from the last checkpoint in ``output_dir``; ``--max_train_minutes`` caps it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from customer_r1.training.common import (
    callbacks_for,
    load_model,
    load_tokenizer_for,
    resolve_model_path,
    run_main,
    train_and_save,
)
from customer_r1.training.configs import DataArguments
from customer_r1.training.cpu_speed import apply_cpu_precision, on_cpu, register_varlen_attention

log = logging.getLogger(__name__)


@dataclass
class PretrainScriptArguments(DataArguments):
    """Pretraining script arguments (``dataset_path``: a world or OPeRA folder)."""

    corpus_splits: list[str] = field(
        default_factory=lambda: ["train"],
        metadata={"help": "Splits whose sessions make the corpus ('test' is refused)."},
    )
    eval_fraction: float = field(
        default=0.02,
        metadata={"help": "Share of those sessions (whole, stable by id) held out for a validation loss."},
    )
    ship_to: str | None = field(
        default=None,
        metadata={"help": "When training ends, copy the base here (bf16, tokenizer) with card.json "
                  "(command, minutes, hardware, losses); `make demo` fine-tunes demo-model/pretrained."},
    )


def corpus_datasets(script_args: PretrainScriptArguments) -> tuple[Any, Any, dict[str, Any]]:
    """(train, validation or None, stats) as ``datasets.Dataset`` of ``text`` rows."""
    from datasets import Dataset

    from customer_r1.data.corpus import corpus_rows
    from customer_r1.data.opera import load_opera
    from customer_r1.errors import BadFile

    data = load_opera(script_args.dataset_path, splits=None)
    train, valid, stats = corpus_rows([data], script_args.corpus_splits, script_args.eval_fraction)
    if not train:
        splits = "/".join(script_args.corpus_splits)
        raise BadFile(f"no {splits} sessions with pages in {script_args.dataset_path}", where="dataset_path")
    ds = Dataset.from_list(train).shuffle(seed=0)
    if script_args.max_train_examples is not None:
        ds = ds.select(range(min(script_args.max_train_examples, len(ds))))
    evals = Dataset.from_list(valid).select_columns(["text"]) if valid else None
    info = {"corpus_" + k: v for k, v in asdict(stats).items()}
    info.update(corpus_train_documents=len(ds), corpus_eval_documents=len(valid))
    return ds.select_columns(["text"]), evals, info


def train_pretrain(
    script_args: PretrainScriptArguments, training_args: Any, model_args: Any,
    command: str = "customer-r1 train pretrain",
) -> dict[str, Any]:
    """Pretrain, save model + tokenizer + resolved config + metrics in output_dir; return metrics.
    ``command`` is what the shipped base's card says made it."""
    from transformers import set_seed
    from trl import SFTTrainer

    from customer_r1.errors import BadValue

    if "test" in script_args.corpus_splits:
        raise BadValue("pretraining never reads test sessions", where="corpus_splits",
                       hint="use the train split (the default)")
    set_seed(training_args.seed)
    precision = apply_cpu_precision(script_args, training_args)
    # Plain language modelling: every token of the text is a label.
    training_args.completion_only_loss = False
    training_args.assistant_only_loss = False
    training_args.dataset_text_field = "text"
    if training_args.packing and training_args.packing_strategy.startswith("bfd") and on_cpu(training_args):
        model_args.attn_implementation = register_varlen_attention()
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer_for(path)
    model = load_model(path, model_args, training_args)
    train, evals, info = corpus_datasets(script_args)
    log.info("pretraining corpus: %d documents (%d held out) from %d sessions",
             info["corpus_train_documents"], info["corpus_eval_documents"], info["corpus_sessions"])
    if precision is not None:
        info.update(cpu_bf16=precision.bf16, cpu_precision_reason=precision.reason)
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        callbacks=callbacks_for(script_args, training_args),
    )
    metrics = train_and_save(
        trainer, tokenizer, "pretrain", script_args, training_args, model_args, metrics=info
    )
    if script_args.ship_to and trainer.is_world_process_zero():
        from customer_r1.training.bases import ship_pretrained_base

        dest = ship_pretrained_base(training_args.output_dir, script_args.ship_to, command)
        log.info("pretrained base shipped to %s (card.json says how it was made)", dest)
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import functools
    import shlex
    import sys

    from trl import SFTConfig

    args = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["customer-r1", "train", "pretrain", *args])
    train = functools.partial(train_pretrain, command=command)
    return run_main(SFTConfig, PretrainScriptArguments, train, argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
