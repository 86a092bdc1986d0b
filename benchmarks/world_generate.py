"""Time world generation and export, and measure page sizes.

Run: ``.venv/bin/python benchmarks/world_generate.py [--sessions 500] [--opera-sessions 40]``.
Prints one line per measurement: compact (CPU training) and OPeRA-sized pages.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from customer_r1.world import WorldConfig, export_world, generate_world


def measure(page_size: str, users: int, sessions_per_user: int, seed: int) -> dict[str, float]:
    cfg = WorldConfig(users=users, sessions_per_user=sessions_per_user, page_size=page_size,
                      seed=seed)
    t0 = time.perf_counter()
    world = generate_world(cfg)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        info = export_world(world, out)
    t2 = time.perf_counter()
    steps = [st for s in world.sessions for st in s.steps]
    chars = [len(world.page(st).html) for st in steps[:: max(1, len(steps) // 400)]]
    c = info["ceilings"]["all"]
    return {
        "sessions": len(world.sessions), "steps": len(steps), "generate_s": t1 - t0,
        "export_s": t2 - t1, "steps_per_s": len(steps) / (t1 - t0),
        "page_chars_median": float(np.median(chars)),
        "page_tokens_est_median": float(np.median(chars)) / 4,  # ~4 chars per BPE token
        "ceiling_persona": c["ceiling_persona"], "ceiling_blind": c["ceiling_blind"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=500, help="compact sessions (10 per user)")
    ap.add_argument("--opera-sessions", type=int, default=40, help="OPeRA-sized sessions")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    for size, n in (("compact", a.sessions), ("opera", a.opera_sessions)):
        r = measure(size, max(1, n // 10), 10 if n >= 10 else n, a.seed)
        print(f"{size:8s} sessions={r['sessions']:4d} steps={r['steps']:5d} "
              f"generate={r['generate_s']:.2f}s export={r['export_s']:.2f}s "
              f"({r['steps_per_s']:.0f} steps/s) median page chars={r['page_chars_median']:,.0f} "
              f"(~{r['page_tokens_est_median']:,.0f} tokens) "
              f"ceilings persona={r['ceiling_persona']:.3f} blind={r['ceiling_blind']:.3f}")


if __name__ == "__main__":
    main()
