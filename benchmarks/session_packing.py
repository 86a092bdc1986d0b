"""SFT examples/s with and without session packing, on the demo's world and tiny model.

The ``chat`` prompt style makes step t's prompt + completion a prefix of step t+1's
prompt, so ``--pack_sessions`` trains a whole session in one sequence instead of one
sequence per step (customer_r1/training/packing.py). This script builds chat-style
examples of a small demo world and trains the same whole sessions three ways through
the project's own ``train sft`` entry point, in one run:

* the demo's current format (compact, last 3 steps, one sequence per step);
* chat style, one sequence per step (what packing replaces);
* chat style, packed (one sequence per session).

Run: ``.venv/bin/python benchmarks/session_packing.py [--examples 400]``.
Prints tokens per epoch and examples/s per setting, then ``speedup=...`` (packed chat
over per-step chat, the same examples and context).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from small_demo import small_demo

from customer_r1.data.examples import BuildConfig, write_examples
from customer_r1.data.opera import load_opera
from customer_r1.training import sft
from customer_r1.training.common import _whole_sessions
from customer_r1.training.packing import pack_sessions

ROOT = Path(__file__).resolve().parents[1]


def measure(work: Path, built: Path, base: Path, examples: int, packed: bool, steps: int) -> float:
    out = work / f"sft-{built.name}-{int(packed)}"
    sft.main([
        "--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"),
        "--dataset_path", str(built), "--model_name_or_path", str(base), "--output_dir", str(out),
        "--max_train_examples", str(examples), "--pack_sessions", str(packed).lower(),
        "--per_device_train_batch_size", "1", "--cpu_bf16", "false", "--cpu_padding_free", "false",
        "--gradient_accumulation_steps", "1" if packed else "8", "--max_steps", str(steps),
        "--max_length", "8192", "--warmup_steps", "0", "--logging_steps", "1000", "--disable_tqdm", "true",
    ])
    m = json.loads((out / "metrics.json").read_text())
    return float(m["train_runtime"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", type=int, default=400, help="examples (whole sessions) per setting")
    ap.add_argument("--users", type=int, default=20, help="world users (5 sessions each)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, compact = small_demo(work, a.users, max_position_embeddings=8192)
        data = load_opera(work / "demo" / "world")
        chat = work / "chat"
        write_examples(data, BuildConfig(tokenizer=str(base), token_budget=8192, prompt_style="chat",
                                         progress=False), chat)
        from datasets import load_dataset
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base)
        rows = _whole_sessions(load_dataset("parquet", data_files=str(chat / "train.parquet"), split="train"),
                               a.examples)
        n = len(rows)
        packed, stats = pack_sessions(rows, tok)
        print(f"{n} examples in {stats.sessions} sessions; tokens per epoch: chat per step "
              f"{stats.tokens_unpacked}, chat packed {stats.tokens_packed} ({stats.token_ratio:.2f}x fewer)")
        settings = {
            "compact, last 3 steps, per step (the demo's format)": (compact, False, n // 8),
            "before: chat, per step": (chat, False, n // 8),
            "after: chat, packed sessions": (chat, True, len(packed)),
        }
        rate = {}
        for label, (built, pack, steps) in settings.items():
            seconds = measure(work, built, base, n, pack, steps)
            done = steps * 8 if not pack else n
            rate[label] = done / seconds
            print(f"{label}: examples={done} seconds={seconds:.1f} examples_per_s={rate[label]:.2f}")
        labels = list(settings)
        print(f"speedup={rate[labels[2]] / rate[labels[1]]:.2f} (packed chat over per-step chat); "
              f"{rate[labels[2]] / rate[labels[0]]:.2f} over the compact format")


if __name__ == "__main__":
    main()
