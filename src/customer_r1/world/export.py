"""Write a world in OPeRA-filtered's layout, with the policy sidecar and world.json,
and read the sidecar and world.json back.

``OUT/OPeRA_filtered/{action,session,user}`` is what the OPeRA loader reads unchanged;
``OUT/world/policy_{split}.parquet`` holds, per action id, every possible action on the
page (canonical action JSON) with the true policy's and the persona-blind probabilities,
the motive drawn, and the evidence: the page facts the decision consulted (each a kind
and the text exactly as the page shows it), which compressed prompts must keep.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from customer_r1.actions import Action
from customer_r1.data.opera_write import (
    ACTION_SCHEMA,
    SESSION_SCHEMA,
    USER_SCHEMA,
    WINDOW,
    user_row,
    write_table,
)
from customer_r1.world.stats import OPERA_REFERENCE, world_stats

if TYPE_CHECKING:
    from customer_r1.world.generate import Progress, World, WorldConfig, WorldStep
    from customer_r1.world.pages import Page

FORMAT_VERSION = 1
POLICY_SCHEMA = pa.schema([
    ("action_id", pa.string()), ("session_id", pa.string()), ("step_index", pa.int32()),
    ("actions", pa.list_(pa.string())), ("probs", pa.list_(pa.float64())),
    ("blind_probs", pa.list_(pa.float64())), ("motive", pa.string()),
    ("evidence", pa.list_(pa.struct([("kind", pa.string()), ("text", pa.string())]))),
])
CHUNK = 256  # rows rendered and written at a time (OPeRA-sized pages are ~100k chars)


def _dumps(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def page_candidates(page: Page, support: list[Action]) -> list[Action]:
    """Every action possible on a page, in page order: a click per named element, the
    policy's texts for each text input, and terminate last. Orders agree with the
    support's, so argmax ties break the same way in both."""
    inputs: dict[str, list[Action]] = {}
    for a in support:
        if a.type == "input":
            inputs.setdefault(a.name, []).append(a)  # type: ignore[arg-type]
    out: list[Action] = []
    for name, el in page.elements.items():
        if el.is_input:
            out.extend(sorted(inputs.get(name, []), key=lambda a: a.text or ""))
        else:
            out.append(Action.click(name))
    out.append(Action.terminate())
    return out


def _expand(cands: list[Action], support: list[Action], p: np.ndarray) -> list[float]:
    idx = {a: i for i, a in enumerate(support)}
    missing = set(support) - set(cands)
    if missing:
        raise AssertionError(f"policy support not on the page: {sorted(map(str, missing))}")
    return [float(p[idx[a]]) if a in idx else 0.0 for a in cands]


def _action_row(world: World, session_id: str, st: WorldStep, page: Page) -> dict[str, Any]:
    a = st.action
    return {
        "session_id": session_id,
        "action_id": st.action_id,
        "timestamp": st.timestamp,
        "action_type": a.type,
        "click_type": st.click_type,
        "semantic_id": a.name,
        "mouse_position": _dumps(st.mouse),
        "element_meta": _dumps(st.element_meta) if st.element_meta else "{}",
        "url": page.url,
        "window_size": WINDOW,
        "page_meta": _dumps(page.page_meta),
        "simplified_html": page.html,
        "rationale": st.rationale,
        "products": _dumps(st.products) if st.products else None,
        "input_text": a.text if a.type == "input" else None,
        "image": "",
    }


def export_world(world: World, out_dir: str | Path,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Write the OPeRA layout, the sidecars and world.json; return world.json's content."""
    from customer_r1.world.generate import config_dict

    out = Path(out_dir)
    root = out / "OPeRA_filtered"
    (root / "action").mkdir(parents=True, exist_ok=True)
    (out / "world").mkdir(parents=True, exist_ok=True)
    total = sum(len(s.steps) for s in world.sessions)
    done = 0
    for split in world.splits:
        sessions = world.split(split)
        rows = [(s.session_id, i, st) for s in sessions for i, st in enumerate(s.steps)]
        with pq.ParquetWriter(root / "action" / f"{split}-00000-of-00001.parquet",
                              ACTION_SCHEMA) as aw, \
                pq.ParquetWriter(out / "world" / f"policy_{split}.parquet", POLICY_SCHEMA) as pw:
            for c0 in range(0, len(rows), CHUNK):
                arows, prows = [], []
                for sid, i, st in rows[c0:c0 + CHUNK]:
                    page = world.page(st)
                    arows.append(_action_row(world, sid, st, page))
                    cands = page_candidates(page, st.actions)
                    prows.append({
                        "action_id": st.action_id, "session_id": sid, "step_index": i,
                        "actions": [a.to_json() for a in cands],
                        "probs": _expand(cands, st.actions, st.probs),
                        "blind_probs": _expand(cands, st.actions, st.blind_probs),
                        "motive": st.motive.key,
                        "evidence": [{"kind": k, "text": v} for k, v in st.evidence],
                    })
                aw.write_table(pa.Table.from_pylist(arows, schema=ACTION_SCHEMA))
                pw.write_table(pa.Table.from_pylist(prows, schema=POLICY_SCHEMA))
                done += len(arows)
                if progress is not None:
                    progress(done, total)
        write_table(root / "session" / split / f"{split}.parquet", SESSION_SCHEMA, [
            {"session_id": s.session_id, "user_id": s.user_id, "action_count": len(s.steps)}
            for s in sessions])
        uids = list(dict.fromkeys(s.user_id for s in sessions))
        write_table(root / "user" / split / f"{split}.parquet", USER_SCHEMA,
                    [user_row(u, world.users[u].survey) for u in uids])
    info = {
        "format": FORMAT_VERSION,
        "config": config_dict(world.config),
        "ceilings": {sp: world.ceilings(sp) for sp in world.splits} | {"all": world.ceilings()},
        "stats": world_stats(world),
        "opera_reference": OPERA_REFERENCE,
        "ceiling_method": (
            "persona: mean over steps of max_a p(a | page, history, persona). blind: mean of "
            "p(argmax_a p_blind(a) | persona) with p_blind(a) = sum_theta p(theta | motives "
            "so far) p(a | page, history, theta), a particle filter over a population drawn "
            "from the trait prior (traits no decision has read yet redrawn each step)."),
        "catalog": {"categories": [c.key for c in world.catalog.categories],
                    "brands": list(world.catalog.brands),
                    "products": len(world.catalog.products)},
    }
    if world.config.randomise is not None:
        info["randomise"] = randomise_info(world)
    (out / "world" / "world.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def randomise_info(world: World) -> dict[str, Any]:
    """A randomised world's record: the held-out variants (what each changes), ceilings on
    the control test split and on the held-out sessions (all, and per variant), and the
    training sites drawn (sessions per site, what each changes)."""
    from collections import Counter

    from customer_r1.world.randomise import HELD_OUT_SPLIT
    from customer_r1.world.variants import BUILTIN_VARIANTS

    rc = world.config.randomise
    assert rc is not None
    train = world.split("train")
    per_site = Counter(s.variant for s in train)
    sites = {n: {"sessions": c, "changes": (world.variants.get(n) or BUILTIN_VARIANTS[n]).changes()}
             for n, c in sorted(per_site.items(), key=lambda kv: (-kv[1], kv[0]))}
    levers = Counter(k for s in train for k in world.site(s.variant).variant.changes())
    return {
        "held_out": {n: BUILTIN_VARIANTS[n].changes() for n in rc.held_out},
        "ceilings": {
            "control_test": world.ceilings("test"),
            "held_out_test": world.ceilings(HELD_OUT_SPLIT),
            "by_held_out_variant": {n: world.ceilings(HELD_OUT_SPLIT, n) for n in rc.held_out},
        },
        "train_sites": {
            "distinct": len(per_site), "sessions": len(train),
            "control_sessions": per_site.get("control", 0),
            "sessions_per_lever": dict(sorted(levers.items(), key=lambda kv: (-kv[1], kv[0]))),
            "sites": sites,
        },
    }


def ensure_world(config: WorldConfig, out: str | Path, say: Callable[[str], Any] = print) -> Path:
    """``out`` holds the world ``config`` generates, in today's format: reused when it already
    does (a rerun, an interrupted demo), else (re)generated and exported."""
    import shutil

    from customer_r1.world.generate import WorldConfig, generate_world

    out = Path(out)
    if (out / "world" / "world.json").exists():
        info = load_world_info(out)
        # Through the dataclass: a world written before a config field existed has its default.
        if WorldConfig(**info["config"]) == config and info.get("format") == FORMAT_VERSION:
            say(f"world exists at {out}")
            return out
        say(f"[yellow]{out} was made with other settings or an older format; remaking it[/]")
    shutil.rmtree(out, ignore_errors=True)
    export_world(generate_world(config), out)
    return out


def load_world_info(out_dir: str | Path) -> dict[str, Any]:
    """world.json of an exported world: config, ceilings per split, stats."""
    return json.loads((Path(out_dir) / "world" / "world.json").read_text())


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One step of the sidecar: possible actions (canonical JSON) and both distributions."""

    action_id: str
    session_id: str
    step_index: int
    actions: list[str]
    probs: np.ndarray
    blind_probs: np.ndarray
    motive: str
    #: (kind, shown text) of each page fact the decision consulted; empty for sidecars
    #: written before evidence was recorded.
    evidence: tuple[tuple[str, str], ...] = ()

    def prob_of(self, action: Action | str) -> float:
        """The policy's probability of an action (0 when it is not possible here)."""
        key = action.to_json() if isinstance(action, Action) else action
        try:
            return float(self.probs[self.actions.index(key)])
        except ValueError:
            return 0.0


def load_policy(out_dir: str | Path, split: str) -> dict[str, PolicyRow]:
    """The sidecar of one split, by action id."""
    t = pq.read_table(Path(out_dir) / "world" / f"policy_{split}.parquet").to_pylist()
    return {r["action_id"]: PolicyRow(r["action_id"], r["session_id"], r["step_index"],
                                      r["actions"], np.asarray(r["probs"]),
                                      np.asarray(r["blind_probs"]), r["motive"],
                                      tuple((e["kind"], e["text"]) for e in r.get("evidence") or ()))
            for r in t}


def ceilings_from_policy(rows: dict[str, PolicyRow] | list[PolicyRow]) -> dict[str, float]:
    """Both ceilings recomputed from a sidecar alone (what a report can check)."""
    rs = list(rows.values()) if isinstance(rows, dict) else list(rows)
    if not rs:
        return {"ceiling_persona": 0.0, "ceiling_blind": 0.0, "gap": 0.0, "steps": 0}
    cp = float(np.mean([r.probs.max() for r in rs]))
    cb = float(np.mean([r.probs[int(np.argmax(r.blind_probs))] for r in rs]))
    return {"ceiling_persona": cp, "ceiling_blind": cb, "gap": cp - cb, "steps": len(rs)}
