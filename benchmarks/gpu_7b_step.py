"""Forward + backward seconds of a 7B-shaped causal LM at given prompt lengths (one GPU).

    python benchmarks/gpu_7b_step.py --lengths 4096,9400,16384,32768,47100

Why: context compression (issue 19) is worth what it saves in training time, and a 7B
step's cost is not linear in tokens (attention grows with the square). The model is
Qwen2-7B-shaped (28 layers, hidden 3584, GQA 28/4, vocab 152k), randomly initialised in
bf16 on the GPU (no download), gradient checkpointing on, SDPA attention, no optimizer
state: the time of one sequence's forward and backward, median of 3 after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="4096,9400,16384,32768,47100")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cfg = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                      num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                      max_position_embeddings=65536, rope_theta=1e6, tie_word_embeddings=False)
    cfg._attn_implementation = "sdpa"
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    model.train()
    n = sum(p.numel() for p in model.parameters())
    print(f"model: {n / 1e9:.2f}B parameters, built in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = []
    for length in [int(x) for x in args.lengths.split(",")]:
        ids = torch.randint(0, cfg.vocab_size, (1, length), device="cuda")
        times = []
        try:
            for i in range(args.repeats + 1):
                torch.cuda.synchronize()
                s = time.perf_counter()
                out = model(input_ids=ids, labels=ids)
                out.loss.backward()
                torch.cuda.synchronize()
                if i:
                    times.append(time.perf_counter() - s)
                model.zero_grad(set_to_none=True)
            peak = torch.cuda.max_memory_allocated() / 2**30
            row = {"tokens": length, "seconds": statistics.median(times), "peak_gib": round(peak, 1)}
        except torch.OutOfMemoryError:
            row = {"tokens": length, "seconds": None, "error": "out of memory"}
            model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(0), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
