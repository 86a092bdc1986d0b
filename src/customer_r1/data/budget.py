"""Context-budget strategies: which history pages stay and how much of the current page fits.

A strategy sees only token costs, never text, so it is cheap to run per example and
easy to swap (a compression strategy plugs in the same way). The default is the
paper's rule (section 4.1): replace the HTML of the earliest history steps first by a
short marker, keeping their actions and rationales and the most recent pages whole;
if the prompt is still over budget, cut the current page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from customer_r1.errors import BadValue


class BudgetError(BadValue):
    """The prompt cannot fit the budget even with every page dropped or cut: a setting the
    user chose (the budget, the history kept), so the CLI says it in one line, exit 2."""


@dataclass(frozen=True, slots=True)
class ExampleCosts:
    """Token costs of one example's prompt pieces.

    ``fixed`` covers everything that never changes: chat template, system message,
    persona, headers, and each history step's action and rationale. A history step
    costs ``history_full[k]`` with its page and ``history_dropped[k]`` with the marker.

    Compressed histories (``--compress history_diff``) may go further when even every
    page dropped does not fit: ``history_brief[k]`` is the step with its action alone
    (no reason) and ``history_omitted[k]`` the step left out. Then the step's action and
    reason are part of the ``history_*`` costs, not of ``fixed``. Empty: no such levels
    (the paper's rule, and every uncompressed build).
    """

    fixed: int
    history_full: tuple[int, ...]
    history_dropped: tuple[int, ...]
    current_page: int
    cut_marker: int
    history_brief: tuple[int, ...] = ()
    history_omitted: tuple[int, ...] = ()

    def total(self, keep: list[bool]) -> int:
        hist = sum(
            f if k else d for f, d, k in zip(self.history_full, self.history_dropped, keep, strict=True)
        )
        return self.fixed + hist + self.current_page

    def level_cost(self, k: int, level: int) -> int:
        """History step ``k`` at a level: 0 page, 1 no page, 2 action only, 3 left out."""
        return (self.history_full, self.history_dropped, self.history_brief,
                self.history_omitted)[level][k]


@dataclass(frozen=True, slots=True)
class BudgetPlan:
    """What to keep: a flag per history page, and the current page's token cap (None: whole)."""

    keep_history: tuple[bool, ...]
    current_page_tokens: int | None
    total_tokens: int
    #: Per history step: 0 page shown, 1 page dropped, 2 reason dropped too (action
    #: only), 3 step left out. Empty when no step went past 1 (``keep_history`` says it).
    history_level: tuple[int, ...] = ()

    def level(self, j: int) -> int:
        """The level of the j-th history step of the prompt."""
        if self.history_level:
            return self.history_level[j]
        return 0 if self.keep_history[j] else 1

    @property
    def pages_dropped(self) -> int:
        return sum(not k for k in self.keep_history)

    @property
    def steps_brief(self) -> int:
        """History steps shown by their action alone (reason dropped to fit)."""
        return sum(lv == 2 for lv in self.history_level)

    @property
    def steps_omitted(self) -> int:
        """History steps left out entirely to fit."""
        return sum(lv == 3 for lv in self.history_level)

    @property
    def page_truncated(self) -> bool:
        return self.current_page_tokens is not None


class BudgetStrategy(Protocol):
    """Decides, from costs alone, which pages stay within ``budget`` tokens."""

    name: str

    def plan(self, costs: ExampleCosts, budget: int, *, max_pages: int | None = None) -> BudgetPlan:
        """``max_pages``: keep at most this many (the latest) history pages, budget or not."""
        ...


#: Tokens kept free when the current page is cut: a cut prefix may tokenize one token
#: longer than its cut point, and the cut marker may merge differently at the seam.
CUT_SLACK = 4


class DropOldestPages:
    """The paper's rule: drop history pages oldest first, then cut the current page.

    With the deeper levels of a compressed history, the same rule goes on before the
    current page is cut: the oldest steps lose their reason, then the oldest steps go.
    """

    name = "drop_oldest_pages"

    def plan(self, costs: ExampleCosts, budget: int, *, max_pages: int | None = None) -> BudgetPlan:
        keep = [True] * len(costs.history_full)
        total = costs.total(keep)
        n = len(keep)
        for k in range(n):
            if total <= budget and (max_pages is None or n - k <= max_pages):
                break
            keep[k] = False
            total += costs.history_dropped[k] - costs.history_full[k]
        if total <= budget:
            return BudgetPlan(tuple(keep), None, total)
        levels: tuple[int, ...] = ()
        if costs.history_brief and costs.history_omitted:
            lv = [1] * n
            for to in (2, 3):
                for k in range(n):
                    if total <= budget:
                        break
                    total += costs.level_cost(k, to) - costs.level_cost(k, lv[k])
                    lv[k] = to
            levels = tuple(lv)
            if total <= budget:
                return BudgetPlan(tuple(keep), None, total, levels)
        rest = total - costs.current_page
        allowed = budget - rest - costs.cut_marker - CUT_SLACK
        if allowed < 0:
            raise BudgetError(
                f"prompt needs {rest + costs.cut_marker + CUT_SLACK} tokens without any page "
                f"(persona, system message, history actions and rationales), over the budget "
                f"of {budget}",
                where="--budget",
                hint="raise the budget or keep fewer history steps (--max-history-steps)",
            )
        return BudgetPlan(tuple(keep), allowed, rest + allowed + costs.cut_marker, levels)


STRATEGIES: dict[str, Callable[[], BudgetStrategy]] = {DropOldestPages.name: DropOldestPages}


def get_strategy(name: str) -> BudgetStrategy:
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(f"unknown budget strategy {name!r}; known: {sorted(STRATEGIES)}") from None


def register_strategy(name: str, factory: Callable[[], BudgetStrategy]) -> None:
    """Make a strategy selectable by name (``--budget-strategy``)."""
    STRATEGIES[name] = factory
