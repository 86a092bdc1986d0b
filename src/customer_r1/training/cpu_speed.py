"""CPU training at the hardware's speed: bf16 where the CPU has it, batches without padding.

Two levers, each one recipe flag away from off (``cpu_bf16``, ``cpu_padding_free``):

* **bf16 autocast.** CPUs with AVX512-BF16 or AMX run bf16 matmuls through oneDNN at about
  twice their fp32 rate; the weights and the optimizer stay fp32 (mixed precision, as on a
  GPU). ``cpu_bf16: auto`` turns it on only where the CPU has the instructions, and says
  in the log which path it took and why: without them bf16 is emulated and slower than fp32.
  For the 192-wide demo model it pays on top of padding-free batches (1.29x on one
  thread), not much alone at batch 1, where the casts around every linear layer eat most
  of the faster matmuls (docs/cpu-training.md).
* **Padding-free batches with a per-sequence causal kernel.** At hidden size 192 one
  example's matmuls (730 x 192 x 512) leave most of a core idle; eight examples in one
  batch give the linear layers eight times the rows. Padding them would waste compute and
  push PyTorch's CPU attention onto its masked path, so the batch is TRL's padding-free
  one: the examples laid end to end in one row, position ids restarting at each (the
  collator also passes the sequence boundaries, ``cu_seq_lens_q``). On a GPU flash
  attention reads those boundaries; on the CPU :func:`varlen_sdpa_attention` does,
  calling PyTorch's fused causal SDPA once per example, so no token attends across an
  example and no mask is built. The loss and gradients are those of the examples trained
  one at a time (``tests/test_cpu_speed.py``).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The attention implementation name registered with transformers (and its mask function).
VARLEN_ATTENTION = "cpu_varlen_sdpa"

#: /proc/cpuinfo flags that give native bf16 matmuls (AVX512-BF16 on Zen 4 / Cooper Lake+,
#: AMX on Sapphire Rapids+).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class CpuPrecision:
    """The precision a CPU run trains in, and why (logged, saved in the run's metrics)."""

    bf16: bool
    reason: str


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not there, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16() -> tuple[bool, str]:
    """Whether this CPU runs bf16 matmuls natively: (answer, the evidence)."""
    import torch

    flags = cpu_flags()
    found = [f for f in BF16_FLAGS if f in flags]
    if found:
        return True, f"CPU flags {', '.join(found)}"
    mkldnn_says = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if not flags and mkldnn_says is not None and bool(mkldnn_says()):
        return True, "oneDNN reports bf16 support"
    return False, f"no {' / '.join(BF16_FLAGS)} in the CPU flags"


def choose_cpu_precision(setting: str) -> CpuPrecision:
    """``cpu_bf16`` (auto / true / false) → the precision a CPU run uses."""
    value = str(setting).strip().lower()
    if value in ("false", "off", "no", "0"):
        return CpuPrecision(False, "cpu_bf16 is false")
    if value not in ("auto", "true", "on", "yes", "1"):
        from customer_r1.errors import BadValue

        raise BadValue(f"cpu_bf16 must be auto, true or false, got {setting!r}", where="cpu_bf16")
    ok, why = native_bf16()
    if ok:
        return CpuPrecision(True, why)
    if value != "auto":
        return CpuPrecision(True, f"cpu_bf16 is true although there is {why} (emulated bf16 is slow)")
    return CpuPrecision(False, why)


def on_cpu(training_args: Any) -> bool:
    import torch

    return bool(getattr(training_args, "use_cpu", False)) or not torch.cuda.is_available()


def apply_cpu_precision(script_args: Any, training_args: Any) -> CpuPrecision | None:
    """Set ``training_args.bf16`` for a CPU run from ``cpu_bf16``; None on a GPU or with
    ``cpu_bf16`` unset (the recipe's own bf16 stands). Weights and optimizer state stay
    fp32 either way (``load_model``)."""
    setting = getattr(script_args, "cpu_bf16", None)
    if setting is None or not on_cpu(training_args):
        return None
    if training_args.fp16:
        log.info("CPU training: fp16 set by the recipe; cpu_bf16 not applied")
        return None
    choice = choose_cpu_precision(setting)
    training_args.bf16 = choice.bf16
    # TrainingArguments reads bf16 once, into mixed_precision (what accelerate's autocast
    # follows), when it is built; set both or the flag changes nothing.
    training_args.mixed_precision = "bf16" if choice.bf16 else "no"
    if choice.bf16:
        log.info("CPU training in bf16 autocast (fp32 weights and optimizer): %s", choice.reason)
    elif str(setting).strip().lower() == "auto":
        log.warning("CPU training falls back to fp32: %s", choice.reason)
    else:
        log.info("CPU training in fp32: %s", choice.reason)
    return choice


def register_varlen_attention() -> str:
    """Register :func:`varlen_sdpa_attention` (and a mask function that builds no mask)
    with transformers under :data:`VARLEN_ATTENTION`; idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN_ATTENTION, varlen_sdpa_attention)
    AttentionMaskInterface.register(VARLEN_ATTENTION, _no_mask)
    return VARLEN_ATTENTION


def _no_mask(*args: Any, **kwargs: Any) -> None:
    # Causality and example boundaries come from cu_seq_lens in the attention itself.
    return None


def _eager(fn: Any) -> Any:
    """Never traced by torch.compile (a Python loop over data-dependent boundaries)."""
    try:
        import torch

        return torch.compiler.disable(fn, recursive=True)
    except (ImportError, AttributeError):  # pragma: no cover - torch < 2.1
        return fn


def varlen_sdpa_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Causal SDPA per example of a padding-free row (``cu_seq_lens_q`` boundaries).

    Without boundaries (generation, an ordinary padded batch) it is transformers' SDPA.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1 or attention_mask is not None or query.shape[2] <= 1:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal,
            **kwargs,
        )
    groups = getattr(module, "num_key_value_groups", 1)
    bounds = [int(x) for x in cu.tolist()]
    outs = []
    for start, end in itertools.pairwise(bounds):
        if end <= start:
            continue
        outs.append(
            torch.nn.functional.scaled_dot_product_attention(
                query[:, :, start:end],
                key[:, :, start:end],
                value[:, :, start:end],
                dropout_p=dropout if module.training else 0.0,
                scale=scaling,
                is_causal=True,
                enable_gqa=groups > 1,
            )
        )
    out = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
    return out.transpose(1, 2).contiguous(), None


varlen_sdpa_attention = _eager(varlen_sdpa_attention)


def apply_padding_free(script_args: Any, training_args: Any, model_args: Any) -> bool:
    """With ``cpu_padding_free`` on a CPU: TRL's padding-free batches, attended per example.

    TRL refuses ``max_length`` with padding-free batches (it would not cut them); the
    examples are built within a token budget and :func:`check_lengths` holds them to the
    model's positions, so it is dropped. A batch of one is left as it is (nothing to pad).
    Returns whether it is on.
    """
    if not getattr(script_args, "cpu_padding_free", False) or not on_cpu(training_args):
        return False
    if getattr(script_args, "pack_sessions", False):
        log.info("cpu_padding_free: off with pack_sessions (whole sessions are already one sequence each)")
        return False
    if training_args.per_device_train_batch_size <= 1:
        log.info("cpu_padding_free: batch size 1 has no padding; nothing to change")
        return False
    training_args.padding_free = True
    training_args.max_length = None
    model_args.attn_implementation = register_varlen_attention()
    log.info(
        "CPU padding-free batches of %d examples, causal SDPA per example (%s)",
        training_args.per_device_train_batch_size,
        VARLEN_ATTENTION,
    )
    return True



def compile_layers(script_args: Any, training_args: Any, model: Any) -> int:
    """With ``cpu_compile_layers`` on a CPU: ``torch.compile`` every decoder layer (regional
    compilation: the layers are alike, so one compiled graph serves all of them, and the
    embedding, LM head and loss stay eager). RMSNorm, rotary embeddings, SwiGLU, the residual
    adds and the bf16 casts then run as a few fused loops instead of dozens of passes over
    memory. Sequence lengths change every batch (padding-free), so shapes are dynamic; the
    per-example attention (a Python loop over ``cu_seq_lens``) is left eager. Returns the
    number of layers compiled."""
    if not getattr(script_args, "cpu_compile_layers", False) or not on_cpu(training_args):
        return 0
    import os
    import shutil

    compilers = [os.environ.get("CXX") or "", "g++", "clang++", "c++"]
    if not any(c and shutil.which(c) for c in compilers):
        log.warning("cpu_compile_layers: no C++ compiler (g++, clang++ or $CXX) for torch.compile's CPU "
                    "kernels; training eager")
        return 0
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        log.warning("cpu_compile_layers: %s has no model.layers; nothing compiled", type(model).__name__)
        return 0
    for layer in layers:
        layer.compile(dynamic=True)
    log.info("CPU training: %d decoder layers compiled with torch.compile (dynamic shapes)", len(layers))
    return len(layers)
