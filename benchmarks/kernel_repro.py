"""Do the demo's shipped rows come out the same under two CPU kernel settings?

Runs `customer-r1 demo --stage eval` (world, examples, the page-kind baseline and the shipped
checkpoints in demo-model/; no training) twice, each in its own process and output folder:
once as the machine chooses, once with numpy's OpenBLAS, torch's vectorised kernels and MKL
forced down to AVX2-era code paths (``OPENBLAS_CORETYPE=Haswell``, ``ATEN_CPU_CAPABILITY=avx2``,
``MKL_ENABLE_INSTRUCTIONS=AVX2``). Prints every row's exact match and E[exact] under both, to the
decimal the demo prints, and ends with ``rows=N identical=K max_abs_diff=D``.

    python benchmarks/kernel_repro.py --out /tmp/kernel-repro
    python benchmarks/kernel_repro.py --out /tmp/kernel-repro --ranked-only   # no sampled / free rows

``--ranked-only`` scores every row in ranked decoding only (no rationale sampling, no free
generation): the same checkpoints and steps at a fraction of the time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "native": {},
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def run(name: str, extra: dict[str, str], out: Path, config: Path) -> list[dict]:
    env = {**os.environ, **extra}
    env.pop("OPENBLAS_L2_SIZE", None)
    if not extra:
        env.pop("OPENBLAS_CORETYPE", None)
    d = out / name
    t0 = time.perf_counter()
    cli = [sys.executable, "-c", "from customer_r1.cli import main; main()"]
    subprocess.run([*cli, "demo", "--config", str(config), "--out", str(d), "--stage", "eval"],
                   env=env, check=True, cwd=REPO)
    rows = json.loads((d / "results.json").read_text())["rows"]
    print(f"{name}: {time.perf_counter() - t0:.0f} s, {len(rows)} rows", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/kernel-repro"))
    ap.add_argument("--config", type=Path, default=REPO / "recipes/tiny-cpu/demo.yaml")
    ap.add_argument("--fresh", action="store_true", help="delete --out first")
    ap.add_argument("--ranked-only", action="store_true", help="no sampled-rationale or free rows")
    a = ap.parse_args()
    if a.fresh and a.out.exists():
        shutil.rmtree(a.out)
    if a.ranked_only:
        cfg = yaml.safe_load(a.config.read_text())
        cfg.update(rationale_samples=0, eval_free=False)
        a.out.mkdir(parents=True, exist_ok=True)
        a.config = a.out / "demo-ranked.yaml"
        a.config.write_text(yaml.safe_dump(cfg))
    got = {name: run(name, extra, a.out, a.config) for name, extra in SETTINGS.items()}
    rows_a, rows_b = got["native"], got["avx2"]
    same, worst = 0, 0.0
    print(f"{'row':48} {'mode':>12} {'native exact / E':>18} {'avx2 exact / E':>18}")
    for ra, rb in zip(rows_a, rows_b, strict=True):
        pa = [100 * (ra.get(k) or 0.0) for k in ("exact_match", "expected_exact_match")]
        pb = [100 * (rb.get(k) or 0.0) for k in ("exact_match", "expected_exact_match")]
        ok = ra["name"] == rb["name"] and [f"{x:.1f}" for x in pa] == [f"{x:.1f}" for x in pb]
        same += ok
        worst = max(worst, *(abs(x - y) for x, y in zip(pa, pb, strict=True)))
        print(f"{ra['name'][:48]:48} {ra['mode']:>12} {pa[0]:8.1f} / {pa[1]:5.1f}   "
              f"{pb[0]:8.1f} / {pb[1]:5.1f}{'' if ok else '   DIFFERS'}")
    print(f"rows={len(rows_a)} identical={same} max_abs_diff={worst:.6f}")


if __name__ == "__main__":
    main()
