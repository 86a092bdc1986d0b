"""SFT and GRPO never compute logits for prompt positions, and the loss is unchanged by it."""

from __future__ import annotations

import pytest
import torch
from trainkit import common_args, tiny_setup

from customer_r1.training.lm_head import score_only_labelled_positions


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_setup(tmp_path_factory.mktemp("lmhead"))


class RowRecorder:
    """Wraps TRL's chunked log-prob function to record how many positions it projects."""

    def __init__(self, monkeypatch):
        import trl.trainer.utils as u

        self.rows: list[int] = []
        original = u._ChunkedLogProbFunction
        recorder = self

        class Recording:
            @staticmethod
            def apply(hidden, *args):
                recorder.rows.append(hidden.shape[0])
                return original.apply(hidden, *args)

        monkeypatch.setattr(u, "_ChunkedLogProbFunction", Recording)


def test_sft_loss_equals_full_logits_completion_loss(setup, monkeypatch, tmp_path):
    from trl import SFTConfig, SFTTrainer

    from customer_r1.training.common import load_examples, load_tokenizer_for
    from customer_r1.training.configs import SFTScriptArguments

    base, built = setup
    assert score_only_labelled_positions()
    rec = RowRecorder(monkeypatch)
    tok = load_tokenizer_for(str(base))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    ds = load_examples(SFTScriptArguments(dataset_path=str(built)), "train", keep=["prompt", "completion"])
    args = SFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to="none",
        per_device_train_batch_size=3,
        max_length=2048,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v.to(model.device) for k, v in batch.items()}
    labels = batch["labels"]
    loss = trainer.compute_loss(model, dict(batch))

    # Reference: the model's ordinary forward with full logits, completion-only cross-entropy.
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    ref = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100
    )
    assert torch.allclose(loss.detach(), ref, atol=1e-5), (loss.item(), ref.item())
    labelled = int((shift_labels != -100).sum())
    total = shift_labels.numel()
    assert rec.rows and rec.rows[-1] == labelled < total / 4  # prompts dominate; only completions scored


def test_grpo_scores_only_completion_positions(setup, monkeypatch, tmp_path):
    from customer_r1.training import grpo

    base, built = setup
    rec = RowRecorder(monkeypatch)
    metrics = grpo.main(
        [
            "--dataset_path",
            str(built),
            "--model_name_or_path",
            str(base),
            "--max_steps",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--num_generations",
            "4",
            "--max_completion_length",
            "16",
            *common_args(tmp_path / "grpo"),
        ]
    )
    assert metrics["train_prompts"] > 0
    # Each call projects at most batch x completion-length positions, never prompt positions.
    assert rec.rows and max(rec.rows) <= 4 * 16
