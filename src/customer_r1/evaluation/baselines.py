"""A non-learned baseline: the most frequent action for the kind of page.

Any learned model should beat it; when one does not, the model has learned little more
than "on a product page people usually add to cart". The page kind comes from the URL
(OPeRA keeps the path and masks the query), and the prediction is the action seen most
often on that kind of page in training that is available on the current page.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from customer_r1.actions import Action, format_target, to_handle

PAGE_KINDS = ("home", "search", "product", "reviews", "cart", "checkout", "other")


def page_kind(url: str | None) -> str:
    """Amazon-style URL path → page kind."""
    path = urlparse(url or "").path.lower()
    if "/product-reviews/" in path:
        return "reviews"
    if "/dp/" in path or "/gp/product/" in path:
        return "product"
    if "/cart" in path:
        return "cart"
    if "checkout" in path or "/buy/" in path:
        return "checkout"
    if path == "/s" or path.startswith("/s/"):
        return "search"
    if path in ("", "/") or path.startswith("/home"):
        return "home"
    return "other"


class PageKindBaseline:
    """Counts training actions per page kind; predicts the most frequent one the page offers."""

    name = "most frequent action for the page kind"

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def fit(self, rows: Iterable[Mapping[str, Any]]) -> PageKindBaseline:
        for r in rows:
            self.counts[page_kind(r.get("url"))][r["action_json"]] += 1
        return self

    def predict(self, row: Mapping[str, Any]) -> Action:
        names = set(row.get("page_names") or [])
        inputs = set(row.get("input_names") or [])
        for action_json, _ in self.counts.get(page_kind(row.get("url")), Counter()).most_common():
            a = Action.from_json(action_json)
            if (
                a.type == "terminate"
                or (a.type == "click" and a.name in names)
                or (a.type == "input" and a.name in inputs)
            ):
                return a
        return Action.terminate()

    def completion(self, row: Mapping[str, Any]) -> str:
        """A completion in the model's format, so the same scorer reads it (with handles
        where the row's prompts have them, ``--compress handles``)."""
        action = self.predict(row)
        if row.get("name_handles"):
            action = to_handle(action, row.get("page_names"))
        return format_target(
            action,
            "most frequent action here",
            with_rationale=bool(row.get("require_rationale", True)),
        )
