"""``ShopEnv``: a shopping session as an environment any policy drives (``reset`` / ``step``).

Gymnasium-style and BrowserGym-like: an :class:`~customer_r1.domain.Observation` carries the
simplified HTML with OPeRA's names exactly as the world renders it, the URL, the page kind
and ``last_action_error``; ``step`` returns a :class:`StepResult`. Nothing a policy sends is
ever raised back at it: a malformed action, a name not on the page, typing into a button or
acting after the end is reported in ``last_action_error``, counted in ``info["errors"]``,
and leaves the shop as it was. A session ends on terminate, on a purchase (the shop's
purchase effects: buy now, subscribe, checkout), after ``max_steps`` actions or after
``max_consecutive_errors`` invalid ones in a row; ``info["end_reason"]`` says which.

The shop runs in process (:class:`InProcessShop`, fast) or behind the web app of
``sim/site.py`` (:class:`~customer_r1.sim.http_env.HttpShop`, real HTTP): both are a
*backend* with ``start`` / ``act`` returning :class:`~customer_r1.sim.session.PageView`s, and
give identical observations and outcomes for the same seeds.

A real browser (:class:`~customer_r1.sim.browser.BrowserShop`) is a backend too, with
outcomes the shop has no word for: a start page off the allowlist (the page comes back
with ``ended`` set to ``fence_violation``: the session ends at once; an action leaving
the allowlist is only an invalid action, ``off_allowlist``), a click
that would order or pay on another site (the page comes back with ``ended`` set to
``purchase_intent``: a valid step that ends the session, nothing was sent), or a crash
(:class:`BackendCrashed`, raised: the runner restarts the browser and reruns the
session). A backend may also say more about a step through ``extra_info()`` (a
screenshot, the fence's log), which lands in ``info``. Budgets beyond ``max_steps``:
``max_seconds`` of wall time and ``max_tokens`` of pages shown (estimated as characters
/ 4, the bulk of a prompt), both checked after each action (``time_budget``,
``token_budget``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from customer_r1.actions import Action, ParseError
from customer_r1.domain import Observation
from customer_r1.sim.session import PageView, ShopSession

if TYPE_CHECKING:
    from customer_r1.world.generate import World
    from customer_r1.world.variants import SiteVariant

END_REASONS = ("terminate", "purchase", "max_steps", "max_errors", "purchase_intent", "fence_violation",
               "time_budget", "token_budget", "browser_crash")
#: Error kinds of a backend that end the session (the end reason is the kind).
FATAL_ERRORS = frozenset({"fence_violation"})
#: ``PageView.ended`` values a backend sets that end the session with that reason.
BACKEND_ENDS = frozenset({"purchase_intent", "fence_violation"})


class BackendCrashed(RuntimeError):
    """The backend's page or browser died: the session cannot go on, but a rerun from its
    seed can (the runner restarts the backend with ``recover()`` and reruns it)."""


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """Limits of one session. ``max_steps`` counts every action sent, valid or not."""

    max_steps: int = 40
    max_consecutive_errors: int = 5
    max_seconds: float | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_consecutive_errors < 1:
            raise ValueError(f"max_consecutive_errors must be >= 1, got {self.max_consecutive_errors}")


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one action did. ``info``: ``step`` (actions so far), ``errors`` (kind -> count),
    ``error_kind`` ("" if the action worked), ``click_type`` of a click, ``products`` bought
    or added, ``element_meta``, ``end_reason`` (set when ``done``)."""

    observation: Observation
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


class ShopBackend(Protocol):
    """Where the shop runs: in this process or behind HTTP."""

    def start(self, user: str, seed: int, variant: SiteVariant | None,
              deals: tuple[str, ...] | None = None) -> PageView: ...

    def act(self, action: Action) -> tuple[PageView, str, str]:
        """(page after, error kind, error message); on an error the page is unchanged."""
        ...

    def leave(self) -> None: ...

    def close(self) -> None: ...


class InProcessShop:
    """The shop as Python objects: a :class:`ShopSession` per reset."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.session: ShopSession | None = None

    def start(self, user: str, seed: int, variant: SiteVariant | None,
              deals: tuple[str, ...] | None = None) -> PageView:
        order_id = f"{seed:016x}"[-16:]
        self.session = ShopSession.start(self.world.shop, self.world.page_size, seed,
                                         self.world.config.deals, variant, order_id=order_id, deals=deals)
        return self.session.view()

    def act(self, action: Action) -> tuple[PageView, str, str]:
        assert self.session is not None, "start() first"
        kind, msg, before = self.session.act(action)
        if kind:
            return self.session.view(), kind, msg
        return self.session.view(action, before), "", ""

    def leave(self) -> None:
        self.session = None

    def close(self) -> None:
        self.session = None


def observation_of(view: PageView, error: str = "", variant: SiteVariant | None = None) -> Observation:
    extra = {"state": view.state, "variant": variant.to_dict() if variant is not None else None}
    return Observation(view.html, view.url, view.page_meta, page_kind=view.kind,
                       last_action_error=error, extra=extra)


class ShopEnv:
    """One shopping session at a time over a backend (see the module doc).

    >>> env = ShopEnv(world)                      # doctest: +SKIP
    >>> obs = env.reset(user_id, seed=7)
    >>> res = env.step(Action.input("nav_bar.search_input", "coffee beans"))
    """

    def __init__(self, world: World, config: EnvConfig | None = None,
                 backend: ShopBackend | None = None) -> None:
        self.world = world
        self.config = config or EnvConfig(max_steps=world.config.max_steps)
        self.backend = backend if backend is not None else InProcessShop(world)
        self._view: PageView | None = None
        self._done = True
        self._steps = 0
        self._errors: Counter[str] = Counter()
        self._consecutive = 0
        self._end = ""
        self._variant: SiteVariant | None = None
        self._t0 = 0.0
        self._tokens = 0
        self.reset_info: dict[str, Any] = {}

    @property
    def page_view(self) -> PageView | None:
        """The last page as the backend described it (click types of its names)."""
        return self._view

    def reset(self, user: str, seed: int, variant: SiteVariant | None = None, *,
              deals: tuple[str, ...] | None = None) -> Observation:
        """Start a session of ``user`` on the home page; ``seed`` fixes today's deals
        (``deals`` sets them instead, e.g. to replay a recorded session)."""
        self._variant = variant
        self._t0 = time.monotonic()
        self._view = self.backend.start(user, seed, variant, deals)
        self._done, self._steps, self._consecutive, self._end = False, 0, 0, ""
        self._errors = Counter()
        self._tokens = len(self._view.html) // 4
        self.reset_info = self._backend_info()
        error = ""
        if self._view.ended in BACKEND_ENDS:  # e.g. the first page already broke the fence
            self._done, self._end = True, self._view.ended
            error = str(self.reset_info.get("message", ""))
            self.backend.leave()
        return observation_of(self._view, error, variant)

    @property
    def done(self) -> bool:
        """True once the session has ended (also right after a reset that ended it)."""
        return self._done

    def _backend_info(self) -> dict[str, Any]:
        get = getattr(self.backend, "extra_info", None)
        return dict(get()) if get is not None else {}

    def _budget_end(self, view: PageView) -> str:
        self._tokens += len(view.html) // 4
        cfg = self.config
        if cfg.max_tokens is not None and self._tokens > cfg.max_tokens:
            return "token_budget"
        if cfg.max_seconds is not None and time.monotonic() - self._t0 > cfg.max_seconds:
            return "time_budget"
        return ""

    def step(self, action: Action | str | dict[str, Any] | None) -> StepResult:
        """Do one action (an :class:`Action`, its JSON text or dict); never raises for a
        bad action."""
        if self._view is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            return self._error("after_end", "the session has ended; no action is possible")
        parsed, why = _coerce(action)
        if parsed is None:
            return self._count(self._error("malformed", why))
        before = self._view
        view, kind, msg = self.backend.act(parsed)
        self._view = view
        extra = self._backend_info()
        if kind:
            res = self._error(kind, msg)
            res.info.update(extra)
            return self._count(res, kind if kind in FATAL_ERRORS else "")
        self._steps += 1
        self._consecutive = 0
        info: dict[str, Any] = {"step": self._steps, "error_kind": "",
                                "click_type": None, "products": view.products,
                                "element_meta": view.element_meta}
        if parsed.type == "click":
            info["click_type"] = before.elements.get(parsed.name or "")
        info.update(extra)
        end = ""
        if parsed.type == "terminate":
            end = "terminate"
        elif view.ended == "purchase":
            end = "purchase"
        elif view.ended in BACKEND_ENDS:
            end = view.ended
        elif self._steps >= self.config.max_steps:
            end = "max_steps"
        else:
            end = self._budget_end(view)
        return self._finish(view, info, end)

    def _finish(self, view: PageView, info: dict[str, Any], end: str) -> StepResult:
        info["errors"] = dict(self._errors)
        if end:
            self._done, self._end = True, end
            info["end_reason"] = end
            self.backend.leave()
        return StepResult(observation_of(view, "", self._variant), bool(end), info)

    def _error(self, kind: str, msg: str) -> StepResult:
        assert self._view is not None
        self._errors[kind] += 1
        info = {"step": self._steps, "error_kind": kind, "errors": dict(self._errors),
                "click_type": None, "products": None, "element_meta": None}
        if self._done:
            info["end_reason"] = self._end
        return StepResult(observation_of(self._view, msg, self._variant), self._done, info)

    def _count(self, res: StepResult, end: str = "") -> StepResult:
        """An invalid action still counts towards the limits (``end``: it ends the session)."""
        self._steps += 1
        self._consecutive += 1
        if not end and self._consecutive >= self.config.max_consecutive_errors:
            end = "max_errors"
        elif not end and self._steps >= self.config.max_steps:
            end = "max_steps"
        elif not end and self._view is not None:
            end = self._budget_end(self._view)
        if not end:
            res.info["step"] = self._steps
            return res
        self._done, self._end = True, end
        self.backend.leave()
        res.info.update(step=self._steps, end_reason=end)
        return StepResult(res.observation, True, res.info)

    @property
    def end_reason(self) -> str:
        return self._end

    @property
    def errors(self) -> dict[str, int]:
        return dict(self._errors)

    def close(self) -> None:
        self.backend.close()


def _coerce(action: Action | str | dict[str, Any] | None) -> tuple[Action | None, str]:
    if isinstance(action, Action):
        return action, ""
    try:
        if isinstance(action, str):
            return Action.from_json(action), ""
        if isinstance(action, dict):
            return Action.from_dict(action), ""
    except (ParseError, ValueError) as exc:
        return None, f"malformed action: {exc}"
    return None, f"malformed action: expected an action, got {type(action).__name__}"
