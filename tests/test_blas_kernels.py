"""The world comes out the same whichever BLAS kernel OpenBLAS picks for the processor.

OpenBLAS chooses its kernel per CPU (``OPENBLAS_CORETYPE`` forces one), so the world's
probabilities differ in the last digits between machines. Sessions, actions, texts and pages
must not differ at all, and the probabilities and ceilings only below ``FLOAT_TOL``. Each kernel
runs world generation in its own process (the kernel is chosen when numpy loads OpenBLAS).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from worlddigest import FLOAT_TOL, WORLDS, same_fingerprint

HERE = Path(__file__).resolve().parent

#: Kernels and the CPU flag each needs (forcing a kernel the CPU cannot run dies with SIGILL).
KERNELS = {"Prescott": "sse3", "Haswell": "avx2", "Zen": "avx2", "SkylakeX": "avx512f"}


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}


def _runnable() -> list[str]:
    flags = _cpu_flags()
    return [k for k, need in KERNELS.items() if need in flags]


def _fingerprints(kernel: str) -> dict:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "PYTHONPATH": os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run([sys.executable, str(HERE / "worlddigest.py")], env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout)


def _kernel_in_use(kernel: str) -> str:
    """The kernel numpy's OpenBLAS actually runs when ``kernel`` is forced (threadpoolctl)."""
    code = ("import json, numpy, threadpoolctl; "
            "print(json.dumps([i.get('architecture') for i in threadpoolctl.threadpool_info() "
            "if i.get('internal_api') == 'openblas']))")
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True, timeout=120)
    return ",".join(a or "?" for a in json.loads(out.stdout))


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
                    reason="the forced kernels are x86-64 ones, listed in /proc/cpuinfo on Linux")
def test_world_is_the_same_under_every_kernel() -> None:
    kernels = _runnable()
    # every x86-64 processor runs Prescott and Haswell-era kernels; fewer than 3 would test little
    assert len(kernels) >= 3, f"only {kernels} runnable on this CPU"
    used = {k: _kernel_in_use(k) for k in kernels}
    assert len(set(used.values())) >= 2, f"forcing kernels changed nothing: {used}"
    prints = {k: _fingerprints(k) for k in kernels}
    ref_kernel = kernels[0]
    for k, fp in prints.items():
        for world in WORLDS:
            a, b = prints[ref_kernel][world], fp[world]
            assert a["exact"] == b["exact"], f"{world}: sessions differ under {k} ({used[k]})"
            assert same_fingerprint(a, b), (
                f"{world}: floats under {k} differ from {ref_kernel} by more than {FLOAT_TOL}: "
                f"{a['floats']} vs {b['floats']}")
