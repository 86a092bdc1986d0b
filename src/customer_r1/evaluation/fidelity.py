"""How well predictions reproduce each shopper, beyond per-step accuracy.

The paper's claim is per user: a personalised simulator's action mix should look like
that user's. So per user we compare the predicted and true distributions of action
types and of click types with the Jensen–Shannon divergence (base 2, in [0, 1]) and
average over users (each user counts once, however many steps they have).

Rules:

* Action types: the true distribution is over the user's gold actions; the predicted
  one over the user's predictions, with unparsable ones as their own category
  ``invalid`` (dropping them would let a mostly-broken model look faithful).
* Click types: each side's distribution is over its own clicks (gold clicks vs
  predicted clicks, typed by the lookup). When neither side has a click the divergence
  is undefined (None, left out of the mean); when only one side has clicks it is 1,
  the value for disjoint supports.

On the synthetic world, exact match is also put beside the world's Bayes ceilings
(the best any predictor can do given the persona, and given no persona); see
:func:`load_ceilings` for what is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from customer_r1.actions import ACTION_TYPES, CLICK_TYPES
from customer_r1.errors import BadInput, MissingFile
from customer_r1.evaluation.metrics import INVALID, ScoredRow

ACTION_TYPE_CATEGORIES: tuple[str, ...] = (*ACTION_TYPES, INVALID)

FIDELITY_RULE = (
    "Per-user fidelity: Jensen-Shannon divergence (base 2, 0 = same, 1 = disjoint) between "
    "the user's true and predicted action-type distributions (unparsable predictions are "
    "their own category `invalid`) and click-type distributions (each side over its own "
    "clicks; no clicks on either side = undefined and left out, on one side only = 1). "
    "Means are over users, each user weighted once."
)


def js_divergence(p: ArrayLike, q: ArrayLike) -> float | np.ndarray:
    """Jensen–Shannon divergence in bits (base 2), so 0 = identical, 1 = disjoint: the one
    definition in the package (per-user fidelity here, session mixes in ``sim.compare``).

    ``p`` and ``q`` are counts or probabilities over the same categories (normalised here;
    0·log 0 = 0): two vectors give a float, two ``(n, k)`` matrices the divergence of each
    row pair. A vector without mass, a negative count or mismatched shapes is a mistake
    (ValueError); a matrix row without mass (a bootstrap or permutation replicate that drew
    nothing) gives NaN. Computed by scipy, whose ``jensenshannon`` returns the *distance*,
    the square root of the divergence.
    """
    from scipy.spatial.distance import jensenshannon

    a = np.asarray(p, dtype=float)
    b = np.asarray(q, dtype=float)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] == 0:
        raise ValueError(f"distributions must be 1-D (or rows of 2-D), same shape: {a.shape} vs {b.shape}")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("distributions must be non-negative")
    mass = (a.sum(axis=-1) > 0) & (b.sum(axis=-1) > 0)
    if a.ndim == 1 and not mass:
        raise ValueError("distributions must have positive mass")
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = jensenshannon(a, b, base=2, axis=-1)
    # The square root of a divergence that rounding left a hair below 0 is NaN; clip the
    # last float bits back into [0, 1], the true range.
    js = np.where(mass, np.clip(np.nan_to_num(np.square(distance), nan=0.0), 0.0, 1.0), np.nan)
    return float(js) if a.ndim == 1 else js


def _dist(values: Sequence[str], categories: Sequence[str]) -> dict[str, float]:
    counts = Counter(values)
    total = sum(counts[c] for c in categories)
    return {c: (counts[c] / total if total else 0.0) for c in categories}


def _js_or_rule(true: dict[str, float], pred: dict[str, float]) -> float | None:
    """JS of two distributions, with the module's rule for empty sides."""
    t_mass = sum(true.values())
    p_mass = sum(pred.values())
    if t_mass == 0 and p_mass == 0:
        return None
    if t_mass == 0 or p_mass == 0:
        return 1.0
    keys = list(true)
    return js_divergence([true[k] for k in keys], [pred[k] for k in keys])


@dataclass(slots=True)
class UserFidelity:
    """One user's predicted vs true behaviour."""

    user_id: str
    n_steps: int
    exact_match: float
    action_type_true: dict[str, float]
    action_type_pred: dict[str, float]
    click_type_true: dict[str, float]
    click_type_pred: dict[str, float]
    n_true_clicks: int
    n_pred_clicks: int
    js_action_type: float | None
    js_click_type: float | None


@dataclass(slots=True)
class Fidelity:
    """Per-user fidelity and its means over users; ``ceilings`` only on the synthetic world."""

    users: list[UserFidelity]
    mean_js_action_type: float | None
    mean_js_click_type: float | None
    ceilings: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def user_fidelity(rows: Sequence[ScoredRow]) -> list[UserFidelity]:
    """Per-user distributions and JS divergences, users sorted by id."""
    by_user: dict[str, list[ScoredRow]] = {}
    for r in rows:
        by_user.setdefault(r.user_id, []).append(r)
    out: list[UserFidelity] = []
    for uid in sorted(by_user):
        urows = by_user[uid]
        at_true = _dist([r.true_type for r in urows], ACTION_TYPE_CATEGORIES)
        at_pred = _dist([r.pred_type for r in urows], ACTION_TYPE_CATEGORIES)
        true_clicks = [r.true_click_type for r in urows if r.true_click_type is not None]
        pred_clicks = [r.pred_click_type for r in urows if r.pred_click_type is not None]
        ct_true = _dist(true_clicks, CLICK_TYPES)
        ct_pred = _dist(pred_clicks, CLICK_TYPES)
        out.append(
            UserFidelity(
                user_id=uid,
                n_steps=len(urows),
                exact_match=float(np.mean([r.correct for r in urows])),
                action_type_true=at_true,
                action_type_pred=at_pred,
                click_type_true=ct_true,
                click_type_pred=ct_pred,
                n_true_clicks=len(true_clicks),
                n_pred_clicks=len(pred_clicks),
                js_action_type=_js_or_rule(at_true, at_pred),
                js_click_type=_js_or_rule(ct_true, ct_pred),
            )
        )
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def fidelity(
    rows: Sequence[ScoredRow],
    ceilings: Mapping[str, float] | None = None,
    exact_match: float | None = None,
) -> Fidelity:
    """Per-user fidelity with means; adds the ceiling comparison when ceilings are given."""
    users = user_fidelity(rows)
    cmp = None
    if ceilings is not None:
        em = exact_match if exact_match is not None else (
            float(np.mean([r.correct for r in rows])) if rows else 0.0
        )
        cmp = ceiling_comparison(em, ceilings)
    return Fidelity(
        users=users,
        mean_js_action_type=_mean([u.js_action_type for u in users]),
        mean_js_click_type=_mean([u.js_click_type for u in users]),
        ceilings=cmp,
    )


# ---------------------------------------------------------------------------- ceilings


class CeilingsError(BadInput, KeyError):
    """world.json has no ceilings for what was asked (a user mistake, also a ``KeyError``)."""


def _world_json(path: Path) -> Path:
    for cand in (path, path / "world" / "world.json", path / "world.json"):
        if cand.is_file():
            return cand
    raise MissingFile(f"no world.json at {path} (looked for world/world.json, world.json)")


def _as_fraction(value: Any) -> float:
    v = float(value)
    # A probability ceiling is at most 1, so a larger number was written in percent.
    return v / 100.0 if v > 1.0 else v


def load_ceilings(
    source: str | Path | Mapping[str, Any], split: str | None = None
) -> dict[str, float]:
    """The world's exact-match ceilings for one split, as fractions.

    ``source`` is ``WORLD_DIR`` (reads ``WORLD_DIR/world/world.json``), a ``world``
    folder, a ``world.json`` file, or that file's decoded content. Read, in order:

    1. ``ceilings[split]["ceiling_persona"|"ceiling_blind"]``; without ``split``,
       ``test`` if present, else the only split (several splits and no choice is an error);
    2. top-level ``ceiling_persona`` / ``ceiling_blind``.

    Values above 1 are taken as percentages. ``ceiling_blind`` may be missing.
    """
    if isinstance(source, Mapping):
        data: Mapping[str, Any] = source
    else:
        from customer_r1.io import read_json

        data = read_json(_world_json(Path(source)))
        if not isinstance(data, Mapping):
            raise CeilingsError(f"{source}: world.json is not a JSON object")
    block: Mapping[str, Any] | None = None
    table = data.get("ceilings")
    if isinstance(table, Mapping) and table:
        if "ceiling_persona" in table:
            block = table
        elif split is not None:
            if split not in table:
                raise CeilingsError(f"no ceilings for split {split!r}; have {sorted(table)}", where="--split")
            block = table[split]
        elif "test" in table:
            block = table["test"]
        elif len(table) == 1:
            block = next(iter(table.values()))
        else:
            raise CeilingsError(f"several splits have ceilings ({sorted(table)})",
                                hint="pick one with --split")
    elif "ceiling_persona" in data:
        block = data
    if block is None or "ceiling_persona" not in block:
        raise CeilingsError("world.json has no ceiling_persona (under ceilings.<split> or top level)")
    out = {"ceiling_persona": _as_fraction(block["ceiling_persona"])}
    if block.get("ceiling_blind") is not None:
        out["ceiling_blind"] = _as_fraction(block["ceiling_blind"])
    return out


def ceiling_comparison(exact_match: float, ceilings: Mapping[str, float]) -> dict[str, Any]:
    """Exact match against the Bayes ceilings.

    ``fraction_of_ceiling`` = EM / persona ceiling; ``fraction_of_blind`` = EM / blind
    ceiling (above 1 means the model uses the persona); ``persona_gain_captured`` =
    (EM − blind) / (persona − blind), the share of the persona-attributable headroom won.
    """
    persona = float(ceilings["ceiling_persona"])
    blind = ceilings.get("ceiling_blind")
    out: dict[str, Any] = {
        "exact_match": exact_match,
        "ceiling_persona": persona,
        "ceiling_blind": None if blind is None else float(blind),
        "fraction_of_ceiling": exact_match / persona if persona > 0 else None,
        "fraction_of_blind": None,
        "persona_gain_captured": None,
    }
    if blind is not None:
        out["fraction_of_blind"] = exact_match / blind if blind > 0 else None
        if persona > blind:
            out["persona_gain_captured"] = (exact_match - blind) / (persona - blind)
    return out
