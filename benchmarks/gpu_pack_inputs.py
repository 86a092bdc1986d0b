"""Pack what `make demo-model` trains from into .devcheck/ for a lent GPU (benchmarks/gpu_demo_model.sh).

The lent machine receives the working tree plus at most 64 MiB of carried paths, so the
prepared world, base and examples (runs/demo-model after `stages: []`) go as a copy whose
Parquet files are recompressed with zstd level 19 (about 3-4x smaller; same rows). Only
what the training stages read travels: the world's config and OPeRA tables (not its
per-step policy, which only scoring needs), the base, and the built examples. A run that
fine-tunes a pretrained base (a recipe's ``pretrained_base``, e.g. demo-model/pretrained) has
no base/ folder: its examples name that base as their tokenizer, which is tracked in git and
travels with the working tree, so only the world and the examples are packed.

    python benchmarks/gpu_pack_inputs.py [--src runs/demo-model] [--dest .devcheck/demo-model]
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq


def pretrained_bases(src: Path) -> list[str]:
    """The bases outside ``src`` that ``src/built``'s examples were built with (their
    build.json's tokenizer, a folder with model weights); [] when any example folder names
    none (a run of its own base/)."""
    folders = sorted(p.parent for p in (src / "built").glob("*/build.json"))
    names = set()
    for folder in folders:
        tokenizer = json.loads((folder / "build.json").read_text()).get("config", {}).get("tokenizer")
        path = Path(tokenizer) if tokenizer else None
        if path is None or not (path / "model.safetensors").exists() or path.resolve().is_relative_to(
            src.resolve()
        ):
            return []
        names.add(str(tokenizer))
    return sorted(names)


def pack(src: Path, dest: Path, say: Callable[[str], object] = print) -> int:
    world_json = src / "world" / "world" / "world.json"
    if not world_json.exists():
        raise SystemExit(f"{src} has no prepared world and base: run the recipe with `stages: []` first")
    wanted = [world_json, src / "world" / "OPeRA_filtered", src / "base", src / "built"]
    if not (src / "base" / "model.safetensors").exists():
        bases = pretrained_bases(src)
        if not bases:
            raise SystemExit(
                f"{src} has no prepared world and base: no base/, and its built examples name no "
                "pretrained base (run the recipe with `stages: []` first)"
            )
        say(f"{src} has no base/: its examples were built on the pretrained base {', '.join(bases)}, "
            "which travels with the working tree (tracked in git); packing the world and examples only")
        wanted.remove(src / "base")
    shutil.rmtree(dest, ignore_errors=True)
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
