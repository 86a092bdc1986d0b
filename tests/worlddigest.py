"""Fingerprints of a generated world: what is sampled or written exactly, floats to a tolerance.

Sampled sessions, actions, texts and pages must not move a byte between machines; the
world's probabilities are computed floats, whose last digits depend on the BLAS kernel
OpenBLAS picks for the processor (``OPENBLAS_CORETYPE``). So a fingerprint has two parts:
a SHA-256 over everything exact, and a few fixed projections of every probability vector,
compared with :data:`FLOAT_TOL`. Run as a script it prints one world's fingerprint as JSON
(the kernel test runs it in subprocesses under several kernels).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import numpy as np

from customer_r1.world import World, WorldConfig, generate_world
from customer_r1.world.pages import Page

#: Floats from two kernels agree to this (observed differences are ~1e-9).
FLOAT_TOL = 1e-6
#: How many fixed projections of the probabilities a fingerprint keeps.
N_PROJ = 4


def page_digest(h: Any, page: Page) -> None:
    h.update(f"{page.kind}|{page.url}\n".encode())
    h.update(page.html.encode())
    h.update(json.dumps(page.page_meta, sort_keys=True).encode())
    for n, e in page.elements.items():
        h.update(f"{n}|{e.click_type}|{e.effect.kind}|{e.effect.arg}|{e.effect.n}|"
                 f"{json.dumps(e.meta, sort_keys=True)}\n".encode())
    h.update(json.dumps(page.roles).encode())
    h.update(json.dumps(list(page.listing)).encode())


def _projections(vectors: list[np.ndarray]) -> list[float]:
    """Fixed pseudo-random projections of the concatenated vectors: any real change moves
    them by far more than float noise, kernel noise moves them by ~1e-9."""
    flat = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in vectors]) \
        if vectors else np.zeros(0)
    idx = np.arange(flat.size, dtype=np.float64)
    return [float(np.sum(flat * np.cos(idx * (k + 1) * 0.618))) for k in range(N_PROJ)]


def world_fingerprint(world: World) -> dict[str, Any]:
    """``exact``: hex digest of sessions, actions, texts and pages; ``floats``: projections of
    the persona and persona-blind probabilities; ``ceilings``: the world's own ceilings."""
    h = hashlib.sha256()
    probs: list[np.ndarray] = []
    blind: list[np.ndarray] = []
    for s in world.sessions:
        h.update(f"{s.session_id}|{s.user_id}|{s.split}\n".encode())
        for st in s.steps:
            h.update(f"{st.action_id}|{st.timestamp}|{st.action.to_json()}|{st.click_type}|"
                     f"{st.motive.key}|{st.rationale}\n".encode())
            h.update(json.dumps([a.to_json() for a in st.actions]).encode())
            h.update(json.dumps([st.products, st.element_meta, st.mouse],
                                sort_keys=True).encode())
            page_digest(h, world.page(st))
            probs.append(st.probs)
            blind.append(st.blind_probs)
    c = world.ceilings()
    return {"exact": h.hexdigest(), "floats": _projections(probs) + _projections(blind),
            "ceilings": [c["ceiling_persona"], c["ceiling_blind"]]}


def same_fingerprint(a: dict[str, Any], b: dict[str, Any], tol: float = FLOAT_TOL) -> bool:
    """Exact parts byte-equal, floats within ``tol``."""
    return (a["exact"] == b["exact"]
            and np.allclose(a["floats"], b["floats"], rtol=0, atol=tol)
            and np.allclose(a["ceilings"], b["ceilings"], rtol=0, atol=tol))


#: Two small worlds, one per page size (the same ones the control-site test pins).
WORLDS = {
    "world_compact": dict(users=8, sessions_per_user=5, seed=3, population=400),
    "world_opera": dict(users=3, sessions_per_user=3, seed=5, population=300, page_size="opera"),
}


if __name__ == "__main__":
    names = sys.argv[1:] or list(WORLDS)
    out = {n: world_fingerprint(generate_world(WorldConfig(**WORLDS[n]))) for n in names}
    print(json.dumps(out))
