"""Pack what `make demo-model` trains from into .devcheck/ for a lent GPU (benchmarks/gpu_demo_model.sh).

The lent machine receives the working tree plus at most 64 MiB of carried paths, so the
prepared world, base and examples (runs/demo-model after `stages: []`) go as a copy whose
Parquet files are recompressed with zstd level 19 (about 3-4x smaller; same rows). Only
what the training stages read travels: the world's config and OPeRA tables (not its
per-step policy, which only scoring needs), the base, and the built examples.

    python benchmarks/gpu_pack_inputs.py [--src runs/demo-model] [--dest .devcheck/demo-model]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pyarrow.parquet as pq


def pack(src: Path, dest: Path) -> int:
    world_json = src / "world" / "world" / "world.json"
    if not world_json.exists() or not (src / "base" / "model.safetensors").exists():
        raise SystemExit(f"{src} has no prepared world and base: run the recipe with `stages: []` first")
    shutil.rmtree(dest, ignore_errors=True)
    wanted = [world_json, src / "world" / "OPeRA_filtered", src / "base", src / "built"]
    total = 0
    for item in wanted:
        files = [item] if item.is_file() else sorted(p for p in item.rglob("*") if p.is_file())
        for f in files:
            out = dest / f.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".parquet":
                pq.write_table(pq.read_table(f), out, compression="zstd", compression_level=19)
            else:
                shutil.copy2(f, out)
            total += out.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path("runs/demo-model"))
    ap.add_argument("--dest", type=Path, default=Path(".devcheck/demo-model"))
    a = ap.parse_args()
    size = pack(a.src, a.dest)
    print(f"packed {a.src} into {a.dest}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
