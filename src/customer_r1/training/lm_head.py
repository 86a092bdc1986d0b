"""Logits only where there is a label: never for prompt positions.

At 65k tokens a 7B model's full-vocabulary logits do not fit a 141 GB GPU. TRL 1.16
already trains SFT and GRPO through a fused LM head (``trl.trainer.utils.
add_fused_lm_head``) that projects hidden states to the vocabulary in tiles and never
builds the ``(batch, seq, vocab)`` tensor. On CUDA/XPU it projects only positions whose
label is not -100, i.e. completion tokens; elsewhere (CPU) it projects every position,
prompt included, in tiles. :func:`score_only_labelled_positions` makes the compact
choice on the CPU too, so no device ever computes logits for prompt positions.
``tests/test_lm_head.py`` proves the loss equals the full-logits completion-only loss
and that only completion rows reach the projection.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: Device types for which selecting the labelled rows is safe (no recompilation cost).
_COMPACT_DEVICES = ("cpu", "cuda", "xpu", "mps")


def score_only_labelled_positions() -> bool:
    """Have TRL's fused LM head project only labelled positions on every listed device.

    Returns False (and logs why) when the installed TRL lacks the hook, in which case
    its own behaviour (compact on CUDA/XPU) stands.
    """
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:  # pragma: no cover - TRL is a dependency
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        log.warning("this TRL has no fused-LM-head device switch; prompt positions may be scored on CPU")
        return False
    if getattr(original, "_customer_r1_compact", False):
        return True

    def compact_everywhere(device: Any) -> bool:
        return bool(original(device)) or getattr(device, "type", None) in _COMPACT_DEVICES

    compact_everywhere._customer_r1_compact = True  # type: ignore[attr-defined]
    compact_everywhere.__wrapped__ = original  # type: ignore[attr-defined]
    trl_utils._use_triton = compact_everywhere
    return True
