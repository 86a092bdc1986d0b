"""Seconds per SFT step of a 7B-shaped model on compressed and uncompressed prompts,
through the project's SFT entry point (issue 19, point 4b).

    python benchmarks/gpu_compression_sft.py --out /tmp/gcs && cp /tmp/gcs/results.json $OUT/
    python benchmarks/gpu_compression_sft.py --shape tiny --budget 4096 --steps 2 --users 2 \
        --sessions 1 --out /tmp/gcs          # the mechanics on a CPU, in ~25 s

(The 7B model is saved under ``--out``, ~15 GB: keep it off the device tool's ``$OUT``.)
Expected on one H200 from ``benchmarks/gpu_7b_step.py``'s figures: ~8-10 s per step
uncompressed (47k tokens), ~2-3 s compressed; not yet run (no GPU lent since it was written).

Why: compression is worth what it saves in training time. ``benchmarks/gpu_7b_step.py``
times a bare forward and backward; this runs the real thing on real examples: an
OPeRA-sized synthetic world is built twice at the same budget (the paper's oldest-page
drop, and ``--compress furniture,history_diff,trim_current,handles``), and
``customer_r1.training.sft`` trains a randomly initialised Qwen2-7B-shaped model (no
download; the bundled SmolLM2 tokenizer, so the vocabulary is 49k rather than 152k) on
each for ``--steps`` optimizer steps of one sequence, with the 7B recipe's settings
(``recipes/qwen2.5-7b/sft.yaml``: bf16, gradient checkpointing, padding-free,
completion-only loss; SDPA attention instead of flash-attention, which may not be
installed). Each arm runs ``--steps`` and then ``2 * --steps`` steps from scratch; the
difference of their train runtimes over ``--steps`` is the seconds per step with load,
warm-up and saving taken out. Printed, and written to ``OUT/results.json``::

    arm=drop mean_prompt_tokens=... s_per_step=...
    arm=compressed mean_prompt_tokens=... s_per_step=...
    ratio_tokens=... ratio_seconds=...

``--optim`` defaults to ``sgd``: AdamW's two fp32 moments of 7B parameters (56 GB) do not
fit beside the activations of a 47k-token sequence on one GPU without ZeRO sharding, and
the optimizer's share of a step is small at these lengths either way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

SHAPES = {
    "7b": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}
ARMS = {"drop": [], "compressed": ["furniture", "history_diff", "trim_current", "handles"]}


def build(out: Path, users: int, sessions: int, budget: int) -> dict[str, tuple[Path, float]]:
    """The world (train split only), built once per arm; each arm's mean prompt tokens."""
    import pyarrow.parquet as pq

    from customer_r1.data.examples import BuildConfig, write_examples
    from customer_r1.world import WorldConfig, generate_world

    world = generate_world(WorldConfig(users=users, sessions_per_user=sessions, page_size="opera", seed=0,
                                       population=200, test_fraction=0.0))
    data = world.to_shopping_data()
    built: dict[str, tuple[Path, float]] = {}
    for arm, compress in ARMS.items():
        d = out / "built" / arm
        if not (d / "train.parquet").exists():
            t0 = time.perf_counter()
            write_examples(data, BuildConfig(tokenizer="smollm2", token_budget=budget, compress=compress,
                                             prompt_style="full", progress=False), d)
            print(f"built {arm} in {time.perf_counter() - t0:.0f} s", flush=True)
        tokens = pq.read_table(d / "train.parquet", columns=["prompt_tokens"]).column(0).to_pylist()
        built[arm] = (d, statistics.mean(tokens))
    return built


def make_model(out: Path, shape: str, budget: int) -> Path:
    """A randomly initialised Qwen2-shaped model with the SmolLM2 tokenizer, saved."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from customer_r1.data.tokens import load_tokenizer

    d = out / f"model-{shape}"
    if (d / "config.json").exists():
        return d
    tok = load_tokenizer("smollm2")
    cfg = Qwen2Config(**SHAPES[shape], vocab_size=len(tok), max_position_embeddings=budget + 2048,
                      rope_theta=1e6, tie_word_embeddings=False, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    t0 = time.perf_counter()
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    print(f"model {shape}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters, "
          f"saved in {time.perf_counter() - t0:.0f} s", flush=True)
    return d


def sft_runtime(model: Path, data: Path, out: Path, steps: int, optim: str, budget: int) -> float:
    """``train_runtime`` of ``steps`` SFT steps through the entry point, from scratch."""
    import torch

    from customer_r1.training import sft

    if out.exists():
        shutil.rmtree(out)
    gpu = torch.cuda.is_available()
    argv = ["--config", "recipes/qwen2.5-7b/sft.yaml", "--model_name_or_path", str(model),
            "--dataset_path", str(data), "--output_dir", str(out), "--max_steps", str(steps),
            "--gradient_accumulation_steps", "1", "--warmup_steps", "0", "--save_strategy", "no",
            "--attn_implementation", "sdpa", "--missing_rationales", "keep", "--optim", optim,
            "--max_length", str(budget + 1024), "--logging_steps", "1",
            "--dtype", "bfloat16" if gpu else "float32", "--bf16", str(gpu).lower()]
    if not gpu:
        argv += ["--use_cpu", "true"]
    metrics = sft.main(argv)
    runtime = float(metrics["train_runtime"])
    shutil.rmtree(out, ignore_errors=True)
    return runtime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/gpu-compress-sft")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--budget", type=int, default=65_536)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--optim", default="sgd")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    built = build(out, a.users, a.sessions, a.budget)
    model = make_model(out, a.shape, a.budget)
    results: dict[str, dict[str, float]] = {}
    for arm, (data, tokens) in built.items():
        short = sft_runtime(model, data, out / f"sft-{arm}", a.steps, a.optim, a.budget)
        long = sft_runtime(model, data, out / f"sft-{arm}", 2 * a.steps, a.optim, a.budget)
        per_step = (long - short) / a.steps
        results[arm] = {"mean_prompt_tokens": tokens, "s_per_step": per_step,
                        "runtime_short": short, "runtime_long": long}
        print(f"arm={arm} mean_prompt_tokens={tokens:,.0f} s_per_step={per_step:.2f}", flush=True)
    d, c = results["drop"], results["compressed"]
    summary = {"shape": a.shape, "budget": a.budget, "steps": a.steps, "optim": a.optim, "arms": results,
               "ratio_tokens": c["mean_prompt_tokens"] / d["mean_prompt_tokens"],
               "ratio_seconds": c["s_per_step"] / d["s_per_step"] if d["s_per_step"] > 0 else None}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    rs = summary["ratio_seconds"]
    print(f"ratio_tokens={summary['ratio_tokens']:.3f} ratio_seconds={'-' if rs is None else f'{rs:.3f}'}")


if __name__ == "__main__":
    main()
