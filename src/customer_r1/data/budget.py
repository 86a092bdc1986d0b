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


class BudgetError(ValueError):
    """The prompt cannot fit the budget even with every page dropped or cut."""


@dataclass(frozen=True, slots=True)
class ExampleCosts:
    """Token costs of one example's prompt pieces.

    ``fixed`` covers everything that never changes: chat template, system message,
    persona, headers, and each history step's action and rationale. A history step
    costs ``history_full[k]`` with its page and ``history_dropped[k]`` with the marker.
    """

    fixed: int
    history_full: tuple[int, ...]
    history_dropped: tuple[int, ...]
    current_page: int
    cut_marker: int

    def total(self, keep: list[bool]) -> int:
        hist = sum(
            f if k else d for f, d, k in zip(self.history_full, self.history_dropped, keep, strict=True)
        )
        return self.fixed + hist + self.current_page


@dataclass(frozen=True, slots=True)
class BudgetPlan:
    """What to keep: a flag per history page, and the current page's token cap (None: whole)."""

    keep_history: tuple[bool, ...]
    current_page_tokens: int | None
    total_tokens: int

    @property
    def pages_dropped(self) -> int:
        return sum(not k for k in self.keep_history)

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
    """The paper's rule: drop history pages oldest first, then cut the current page."""

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
        rest = total - costs.current_page
        allowed = budget - rest - costs.cut_marker - CUT_SLACK
        if allowed < 0:
            raise BudgetError(
                f"prompt needs {rest + costs.cut_marker + CUT_SLACK} tokens without any page "
                f"(persona, system message, history actions and rationales), over the budget "
                f"of {budget}; raise the budget or limit the history (max_history_steps)"
            )
        return BudgetPlan(tuple(keep), allowed, rest + allowed + costs.cut_marker)


STRATEGIES: dict[str, Callable[[], BudgetStrategy]] = {DropOldestPages.name: DropOldestPages}


def get_strategy(name: str) -> BudgetStrategy:
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(f"unknown budget strategy {name!r}; known: {sorted(STRATEGIES)}") from None


def register_strategy(name: str, factory: Callable[[], BudgetStrategy]) -> None:
    """Make a strategy selectable by name (``--budget-strategy``)."""
    STRATEGIES[name] = factory
