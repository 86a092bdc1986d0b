"""Open a generated world's folder as a live shop: catalog, shop and shoppers.

``world generate`` writes sessions, but a simulator needs the world itself. Every part of
it is drawn from its own seeded stream (``generate.world_base``), so the config in
``world/world.json`` rebuilds the exact catalog and shoppers without regenerating a
session; the shoppers' ids are checked against the exported user table so a folder
whose config and data disagree is refused rather than silently simulated.
"""

from __future__ import annotations

import json
from pathlib import Path

from customer_r1.errors import BadInput, MissingInput
from customer_r1.world.export import load_world_info
from customer_r1.world.generate import World, WorldConfig, world_base


def is_world_dir(path: str | Path) -> bool:
    """A folder written by ``world generate`` (or a simulation run that carries one)."""
    return (Path(path) / "world" / "world.json").is_file()


def load_world(path: str | Path, *, check_users: bool = True) -> World:
    """The world of a ``world generate`` folder, without its sessions (see module doc)."""
    p = Path(path)
    if not p.exists():
        raise MissingInput(f"no world folder at {p}", str(p),
                           "make one with `customer-r1 world generate --out DIR`")
    if not is_world_dir(p):
        raise BadInput(f"{p} is not a generated world (no world/world.json)", str(p),
                       "pass a folder written by `customer-r1 world generate`")
    try:
        info = load_world_info(p)
        cfg = WorldConfig(**info["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"unreadable world config: {exc}", str(p / "world" / "world.json"),
                       "regenerate the world with `customer-r1 world generate`") from exc
    world = world_base(cfg, population=False)
    if check_users:
        _check_users(p, world)
    return world


def _check_users(p: Path, world: World) -> None:
    import pyarrow.parquet as pq

    files = sorted((p / "OPeRA_filtered" / "user").glob("*/*.parquet"))
    if not files:
        return  # a world.json without exported sessions: nothing to check against
    found: set[str] = set()
    for f in files:
        try:
            found.update(pq.read_table(f, columns=["user_id"]).column("user_id").to_pylist())
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise BadInput(f"unreadable user table: {exc}", str(f),
                           "regenerate the world with `customer-r1 world generate`") from exc
    unknown = found - set(world.users)
    if unknown:
        raise BadInput(
            f"{len(unknown)} user(s) of the exported data are not the shoppers its world.json "
            f"config draws (e.g. {sorted(unknown)[0]})", str(p),
            "the folder was edited or written by another version; regenerate it")
