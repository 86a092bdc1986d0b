"""SFT examples/s and achieved GFLOP/s on CPU for the demo's tiny model: today's recipe
against the earlier fp32 one, beside the machine's own matmul peaks.

The settings run through the project's own ``train sft`` entry point on the same
examples in the same order, with the demo's world, prompt budget and tiny model:

* **before**: the earlier fp32 recipe: batch 1 x 8 accumulated, no gradient
  checkpointing (``--cpu_bf16 false --cpu_padding_free false``);
* **after**: ``recipes/tiny-cpu/sft.yaml`` as it is (8 examples per padding-free batch,
  causal attention per example, bf16 autocast where the CPU has it);
* with ``--ablations``: bf16 autocast alone (batch 1 x 8), the recipe with bf16 forced
  off, ``torch.compile`` on top of the recipe, compiled decoder layers, and (``wide``) the
  recipe on a 2 x 256 model of about the same parameters (a different model: its loss is
  compared on the same examples), that shape with compiled layers (``wide_layers``) and in 4
  heads of 64 or 2 of 128 instead of 8 of 32 (``wide64_layers``, ``wide128_layers``).

The cores may be shared, so the settings are interleaved in rounds (before, after,
before, after, ...) and each setting's rate is its median over the rounds; ``uptime``'s
load is printed with every round. ``loss_delta`` is the relative difference of the mean
training loss over the last 5 updates (the same examples in both), after over before.
Achieved GFLOP/s counts the useful work only: 6 x (matmul parameters) per token, causal
attention (6 x layers x hidden x L^2 per example of L tokens) and the vocabulary
projection for completion tokens only (the fused LM head scores nothing else).
The peaks are a 2048 x 2048 matmul in fp32 and bf16 on the same cores.

``--profile`` instead trains each setting for 22 updates under ``torch.profiler`` (updates
11-18 recorded) and splits the time per update into attention (PyTorch's CPU flash kernel,
forward and backward), matmuls and the rest: the attention is the same kernel in every
setting, so it bounds what any other lever can buy.

Run: ``.venv/bin/python benchmarks/cpu_sft_throughput.py [--quick] [--ablations]
[--shapes] [--profile]``; ``--quick`` (one round of 96 examples per setting, ~3 minutes on 2 quiet
cores). ``--shapes`` instead trains the demo's shape and wider, shallower ones side by
side for the same wall time (``--shape-arms demo_layers,wide128_layers``: which) and prints
the loss each reaches (learning per second, not just throughput).
The last line is ``examples_per_s=E before_examples_per_s=B speedup=S gflops=G
peak_bf16_gflops=P loss_delta=D steady_speedup=T``. E and B are whole runs (start-up and any
compiling included); ``steady`` rates time only the second half of each run's updates, the rate
a long run settles at (T: after over before).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from small_demo import small_demo

from customer_r1.training import sft

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/tiny-cpu/sft.yaml"

BEFORE = ["--cpu_bf16", "false", "--cpu_padding_free", "false",
          "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "8"]
AFTER: list[str] = []  # the recipe as it is
ABLATIONS = {  # --ablations NAME,NAME (bf16, pf, compile) or all
    "bf16 only (batch 1 x 8)": ["--cpu_bf16", "auto", "--cpu_padding_free", "false",
                                "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "8"],
    "after without bf16 (padding-free, fp32)": ["--cpu_bf16", "false"],
    "after + torch.compile": ["--torch_compile", "true"],
    "after + compiled decoder layers": ["--cpu_compile_layers", "true"],
}
# A wider, shallower decoder of about the same FLOPs per token (2 layers of 256 against 4 of 192).
WIDE = {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 2,
        "num_attention_heads": 8, "num_key_value_heads": 2}
# The same width in 4 heads of 64: the same attention FLOPs, in a kernel whose inner
# products are twice as long (PyTorch's CPU flash kernel runs head size 32 poorly).
WIDE64 = {**WIDE, "num_attention_heads": 4}
# And in 2 heads of 128 (no grouped key/value heads left: 2 of each).
WIDE128 = {**WIDE, "num_attention_heads": 2}
ABLATION_KEYS = {"bf16": 0, "pf": 1, "compile": 2, "layers": 3}  # --ablations name -> ABLATIONS entry
#: --ablations names of the other shapes: (model, extra arguments, label).
SHAPES = {
    "wide": (WIDE, AFTER, "after, 2 x 256 shape (a different model)"),
    "wide_layers": (WIDE, ABLATIONS["after + compiled decoder layers"],
                    "after + compiled layers, 2 x 256 shape (a different model)"),
    "wide64_layers": (WIDE64, ABLATIONS["after + compiled decoder layers"],
                      "after + compiled layers, 2 x 256 in 4 heads of 64 (a different model)"),
    "wide128_layers": (WIDE128, ABLATIONS["after + compiled decoder layers"],
                       "after + compiled layers, 2 x 256 in 2 heads of 128 (a different model)"),
}

#: --shape-arms names: the demo's shape (eager or with compiled layers) and the shapes above.
SHAPE_ARMS = {
    "demo": ({}, AFTER, "the recipe, 4 x 192"),
    "demo_layers": ({}, ABLATIONS["after + compiled decoder layers"],
                    "the recipe + compiled layers, 4 x 192"),
    **SHAPES,
}


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def matmul_peak(dtype: Any, n: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of an n x n x n matmul in ``dtype`` on this process's threads."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def useful_flops(base: Path, built: Path, examples: int) -> tuple[float, float]:
    """(FLOPs per example, tokens per example) of the first ``examples`` training examples."""
    from transformers import AutoConfig, AutoTokenizer

    from customer_r1.training.common import load_examples
    from customer_r1.training.configs import SFTScriptArguments
    from customer_r1.training.packing import step_tokens

    cfg = AutoConfig.from_pretrained(base)
    tok = AutoTokenizer.from_pretrained(base)
    rows = load_examples(SFTScriptArguments(dataset_path=str(built), max_train_examples=examples), "train")
    d, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = d // cfg.num_attention_heads * cfg.num_key_value_heads
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * inter  # q, o, k, v, gate/up/down
    flops = tokens = 0.0
    for r in rows:
        ids, start = step_tokens(tok, r["prompt"], r["completion"])
        n, scored = len(ids), len(ids) - start
        flops += 6 * per_layer * layers * n + 6 * layers * d * n * n + 6 * d * cfg.vocab_size * scored
        tokens += n
    return flops / len(rows), tokens / len(rows)


@contextlib.contextmanager
def on_every_update(fn: Callable[[], None]) -> Iterator[None]:
    """Call ``fn`` after every optimizer update of any Trainer built inside the block (the
    trainers are built deep inside ``train sft``; this is how a benchmark sees their steps)."""
    import transformers

    class Step(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            fn()

    original = transformers.Trainer.__init__

    def init(self: Any, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        self.add_callback(Step())

    transformers.Trainer.__init__ = init
    try:
        yield
    finally:
        transformers.Trainer.__init__ = original


def measure(work: Path, tag: str, built: Path, base: Path, examples: int, extra: list[str],
            minutes: float | None = None) -> dict[str, Any]:
    out = work / f"sft-{tag}"
    steps = examples // 8
    ends: list[float] = []
    with on_every_update(lambda: ends.append(time.perf_counter())):
        sft.main([
            "--config", str(RECIPE), "--dataset_path", str(built), "--model_name_or_path", str(base),
            "--output_dir", str(out), "--max_train_examples", str(examples), "--max_steps", str(steps),
            "--warmup_steps", "0", "--logging_steps", "1", "--disable_tqdm", "true",
            *(["--max_train_minutes", str(minutes)] if minutes else []), *extra,
        ])
    # The steady rate: the second half of the updates, after start-up, compiling and the
    # first shapes' recompiles.
    half = len(ends) // 2
    steady = 8 * (len(ends) - 1 - half) / (ends[-1] - ends[half]) if len(ends) >= 4 else float("nan")
    m = json.loads((out / "metrics.json").read_text())
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    done = int(m["global_step"]) * 8
    return {"seconds": m["train_runtime"], "examples_per_s": done / m["train_runtime"], "steady": steady,
            "loss_last5": sum(losses[-5:]) / len(losses[-5:]), "losses": losses, "updates": m["global_step"],
            "bf16": m.get("cpu_bf16"), "reason": m.get("cpu_precision_reason")}


def throughput(work: Path, base: Path, built: Path, a: argparse.Namespace) -> None:
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; {load()}")
    peak32 = matmul_peak(torch.float32)
    peak16 = matmul_peak(torch.bfloat16)
    print(f"matmul 2048^3 peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s; {load()}")
    flops, tokens = useful_flops(base, built, a.examples)
    print(f"{a.examples} examples, {tokens:.0f} tokens each on average, {flops / 1e9:.2f} GFLOP of useful "
          "training work each")
    # label -> (extra arguments, base, examples, useful FLOPs per example)
    settings = {"before: fp32, batch 1 x 8 accumulated": (BEFORE, base, built, flops),
                "after: the recipe": (AFTER, base, built, flops)}
    if a.ablations:
        keys = ABLATION_KEYS
        wanted = [*keys, *SHAPES] if a.ablations == "all" else a.ablations.split(",")
        names = list(ABLATIONS)
        settings.update({names[keys[w]]: (ABLATIONS[names[keys[w]]], base, built, flops)
                         for w in wanted if w in keys})
        for w in (w for w in wanted if w in SHAPES):
            # Another model (same tokenizer texts, same examples in the same order): what a
            # shape with half the layers and so a third less attention buys.
            model, extra, label = SHAPES[w]
            wbase, wbuilt = small_demo(work / w, a.users, **model)
            wflops, _ = useful_flops(wbase, wbuilt, a.examples)
            settings[label] = (extra, wbase, wbuilt, wflops)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in settings}
    for rnd in range(a.rounds):
        for i, (label, (extra, sbase, sbuilt, sflops)) in enumerate(settings.items()):
            r = measure(work, f"r{rnd}-{i}", sbuilt, sbase, a.examples, extra)
            runs[label].append(r)
            print(f"round {rnd + 1} {label}: seconds={r['seconds']:.1f} "
                  f"examples_per_s={r['examples_per_s']:.2f} steady={r['steady']:.2f} "
                  f"gflops={r['examples_per_s'] * sflops / 1e9:.0f} loss_last5={r['loss_last5']:.4f}"
                  + (f" bf16={r['bf16']} ({r['reason']})" if r["bf16"] is not None else "")
                  + f"; {load()}", flush=True)
    rate = {k: statistics.median(r["examples_per_s"] for r in v) for k, v in runs.items()}
    steady = {k: statistics.median(r["steady"] for r in v) for k, v in runs.items()}
    loss = {k: v[0]["loss_last5"] for k, v in runs.items()}
    b, aft = list(settings)[:2]
    print("\nmedian over rounds:")
    for k in settings:
        print(f"  {k}: examples_per_s={rate[k]:.2f} speedup={rate[k] / rate[b]:.2f} "
              f"steady={steady[k]:.2f} steady_speedup={steady[k] / steady[b]:.2f} "
              f"gflops={rate[k] * settings[k][3] / 1e9:.0f} loss_last5={loss[k]:.4f} "
              f"loss_delta={(loss[k] - loss[b]) / loss[b] * 100:+.2f}%")
    print(f"examples_per_s={rate[aft]:.2f} before_examples_per_s={rate[b]:.2f} "
          f"speedup={rate[aft] / rate[b]:.2f} "
          f"gflops={rate[aft] * flops / 1e9:.0f} peak_bf16_gflops={peak16:.0f} "
          f"loss_delta={(loss[aft] - loss[b]) / loss[b] * 100:+.2f}% "
          f"steady_speedup={steady[aft] / steady[b]:.2f}")


def profile(work: Path, base: Path, built: Path) -> None:
    """Per update: attention, matmul and other CPU time of before, the recipe and the
    recipe with compiled layers, each through ``train sft`` under ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, schedule
    from torch.profiler import profile as torch_profile

    active = 8
    settings = {"before: fp32, batch 1 x 8 accumulated": BEFORE, "after: the recipe": AFTER,
                "after + compiled decoder layers": ABLATIONS["after + compiled decoder layers"]}

    for i, (label, extra) in enumerate(settings.items()):
        prof = torch_profile(activities=[ProfilerActivity.CPU],
                             schedule=schedule(wait=10, warmup=2, active=active))
        # Advance the profiler's schedule after every update.
        with prof, on_every_update(prof.step):
            measure(work, f"prof-{i}", built, base, 8 * (10 + 2 + active + 2), extra)
        _print_profile(label, prof, active)


def _print_profile(label: str, prof: Any, active: int) -> None:
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6 / active
    attn = sum(e.self_cpu_time_total for e in events if "scaled_dot_product" in e.key) / 1e6 / active
    mm = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm", "aten::addmm_",
                                                                  "aten::bmm")) / 1e6 / active
    print(f"profile {label}: {total:.3f} s per update: attention {attn:.3f} s ({attn / total:.0%}), "
          f"matmuls {mm:.3f} s ({mm / total:.0%}), the rest {total - attn - mm:.3f} s "
          f"({(total - attn - mm) / total:.0%}); {load()}", flush=True)


def shapes(work: Path, a: argparse.Namespace) -> None:
    """The demo's shape against wider, shallower ones (``--shape-arms``): the same recipe and
    examples, all trained at once (one thread each, so a shared machine slows them alike) for
    the same wall-clock budget, the LR decayed over it. Same tokenizer (trained on the same texts)."""
    import subprocess
    import sys

    procs = {}
    for name in a.shape_arms.split(","):
        model, extra, label = SHAPE_ARMS[name]
        label = f"{name}: {label}"
        base, built = small_demo(work / f"shape-{name}", a.users, **model)
        out = work / f"shape-out-{name}"
        argv = ["--config", str(RECIPE), "--dataset_path", str(built), "--model_name_or_path", str(base),
                "--output_dir", str(out), "--max_train_minutes", str(a.shape_minutes),
                "--lr_schedule_over_time", "true", "--num_train_epochs", "20", "--logging_steps", "1",
                "--disable_tqdm", "true", *extra]
        code = f"from customer_r1.training import sft; sft.main({argv!r})"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        procs[label] = (subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL), out, base)
    for label, (proc, out, base) in procs.items():
        if proc.wait() != 0:
            print(f"shape {label}: training failed (exit {proc.returncode})")
            continue
        m = json.loads((out / "metrics.json").read_text())
        losses = [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"]
                  if "loss" in h]
        params = json.loads((base / "customer_r1_base.json").read_text())["parameters"]
        tail = losses[-max(1, len(losses) // 5):]
        print(f"shape {label} ({params / 1e6:.2f}M parameters): {m['global_step']} updates in "
              f"{m['train_runtime']:.0f} s ({m['global_step'] * 8 / m['train_runtime']:.2f} examples/s), "
              f"mean loss of the last fifth {sum(tail) / len(tail):.4f}; {load()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=192, help="examples per setting (a multiple of 8)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of all settings")
    ap.add_argument("--users", type=int, default=20, help="world users (5 sessions each)")
    ap.add_argument("--quick", action="store_true", help="one round of 96 examples (~3 min on quiet cores)")
    ap.add_argument("--ablations", nargs="?", const="all", default=None,
                    help="bf16 alone, recipe without bf16, + compile, + compiled layers, the recipe on a "
                         "2 x 256 model (and it with compiled layers, in 4 heads of 64, in 2 of 128): all or "
                         "some of bf16,pf,compile,layers,wide,wide_layers,wide64_layers,wide128_layers")
    ap.add_argument("--shapes", action="store_true",
                    help="only compare the loss per second of shapes (--shape-arms)")
    ap.add_argument("--shape-minutes", type=float, default=4.0, help="training minutes per shape")
    ap.add_argument("--shape-arms", default="demo,wide",
                    help=f"--shapes: which models to train side by side, of {','.join(SHAPE_ARMS)}")
    ap.add_argument("--profile", action="store_true",
                    help="only split each setting's update time into attention, matmuls and the rest")
    a = ap.parse_args()
    unknown = set((a.ablations or "all").split(",")) - {"all", *ABLATION_KEYS, *SHAPES}
    if unknown:
        names = ", ".join([*ABLATION_KEYS, *SHAPES])
        ap.error(f"--ablations: unknown {sorted(unknown)}; choose from {names} or all")
    bad_arms = set(a.shape_arms.split(",")) - set(SHAPE_ARMS)
    if bad_arms:
        ap.error(f"--shape-arms: unknown {sorted(bad_arms)}; choose from {', '.join(SHAPE_ARMS)}")
    if a.quick:
        a.examples, a.rounds = 96, 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.shapes:
            shapes(work, a)
            return
        base, built = small_demo(work, a.users)
        if a.profile:
            profile(work, base, built)
            return
        throughput(work, base, built, a)


if __name__ == "__main__":
    main()
