"""Synthetic shopping world: OPeRA-format sessions from a known persona-conditioned policy.

Shoppers with discrete latent traits (written one-to-one into an OPeRA survey) browse a
seeded mini shop rendered as simplified HTML; each step records the policy's exact
probability over the page's actions and the persona-blind predictive distribution, so
the world knows the best accuracy a model could reach with and without the persona.

Modules: ``naming`` (OPeRA's element naming rule), ``catalog``, ``persona`` (traits,
survey, trait reader), ``shop`` (state transitions), ``pages`` (state -> HTML),
``policy`` (motive -> action), ``rationale``, ``generate`` (WorldConfig, generate_world,
World), ``export`` (OPeRA layout, sidecar, world.json), ``stats``.
"""

from customer_r1.world.export import (
    PolicyRow,
    ceilings_from_policy,
    export_world,
    load_policy,
    load_world_info,
)
from customer_r1.world.generate import World, WorldConfig, generate_world

__all__ = [
    "PolicyRow",
    "World",
    "WorldConfig",
    "ceilings_from_policy",
    "export_world",
    "generate_world",
    "load_policy",
    "load_world_info",
]
