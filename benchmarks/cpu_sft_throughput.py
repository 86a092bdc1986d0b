"""SFT examples/s on CPU for the demo's tiny model: the old recipe against the new one.

Two things made the tiny CPU recipe slow. PyTorch's CPU ``scaled_dot_product_attention``
takes its fused causal kernel only when a batch has no padding; a padded batch gets a
mask and the much slower masked path. And TRL's configs default to gradient
checkpointing, which recomputes every forward during the backward pass: right for a 7B
model at 65k tokens, pure waste for a 2.4M-parameter one. ``recipes/tiny-cpu/sft.yaml``
therefore trains with batch 1, gradient accumulation and no checkpointing. This script
measures the three settings through the project's own ``train sft`` entry point, on the
same examples, with the demo's world, prompt budget and tiny model, in one run.

Run: ``.venv/bin/python benchmarks/cpu_sft_throughput.py [--examples 192]``.
Prints one line per setting and a last line ``speedup=...`` (after over before).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from small_demo import small_demo

from customer_r1.data.examples import read_examples
from customer_r1.training import sft

ROOT = Path(__file__).resolve().parents[1]


def measure(
    work: Path, built: Path, base: Path, examples: int, batch: int, accum: int, checkpointing: bool
) -> dict[str, float]:
    out = work / f"sft-b{batch}-ga{accum}-gc{int(checkpointing)}"
    sft.main([
        "--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"),
        "--dataset_path", str(built), "--model_name_or_path", str(base), "--output_dir", str(out),
        "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", str(accum),
        "--max_train_examples", str(examples), "--max_steps", str(examples // (batch * accum)),
        "--warmup_steps", "0", "--logging_steps", "1000", "--disable_tqdm", "true",
        "--gradient_checkpointing", str(checkpointing).lower(),
        # The old recipe grouped padded batches by length, which keeps padding low.
        *(["--train_sampling_strategy", "group_by_length"] if batch > 1 else []),
    ])
    m = json.loads((out / "metrics.json").read_text())
    return {"seconds": m["train_runtime"], "examples_per_s": examples / m["train_runtime"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", type=int, default=192, help="examples per setting (a multiple of 16)")
    ap.add_argument("--users", type=int, default=20, help="world users (5 sessions each)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, built = small_demo(work, a.users)
        tokens = [r["prompt_tokens"] for r in read_examples(built, "train")]
        print(f"prompts: {len(tokens)} train examples, mean {sum(tokens) / len(tokens):.0f} tokens")
        settings = {
            "before: padded batches of 16, checkpointing (TRL default)": (16, 1, True),
            "batch 1 x 16 accumulated, checkpointing": (1, 16, True),
            "after: batch 1 x 16 accumulated, no checkpointing": (1, 16, False),
        }
        rate = {}
        for label, (batch, accum, ckpt) in settings.items():
            r = measure(work, built, base, a.examples, batch, accum, ckpt)
            rate[label] = r["examples_per_s"]
            print(f"{label}: examples={a.examples} seconds={r['seconds']:.1f} "
                  f"examples_per_s={r['examples_per_s']:.2f}")
        before, after = rate[next(iter(settings))], rate[list(settings)[-1]]
        print(f"speedup={after / before:.2f} (after over before)")


if __name__ == "__main__":
    main()
