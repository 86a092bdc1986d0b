"""OPeRA's element naming rule, as one tested function.

The recorder names an interactive element after its parent's name plus either a
fixed part name (``nav_bar.search_input``), the element's text turned into a slug
(``results.acme_pro_kettle``) or its child index (``pagination.2``); a select's
options become ``<select name>.<value>``. The synthetic shop builds every name here
so its pages look like OPeRA's to a model.
"""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"[^A-Za-z0-9_]+")


def slug(text: str) -> str:
    """Text lower-cased, every run of chars outside ``[A-Za-z0-9_]`` turned into ``_``,
    outer ``_`` stripped (``"$3.99 - Cashmere"`` -> ``"3_99_cashmere"``)."""
    return _NON_WORD.sub("_", text.lower()).strip("_")


def element_name(
    parent: str | None = None,
    *,
    part: str | None = None,
    text: str | None = None,
    index: int | None = None,
) -> str:
    """Name of an element under ``parent`` (None or "" for a top-level element).

    Exactly one of ``part`` (a fixed part name, used as is), ``text`` (slugged) or
    ``index`` (the child index) is given. A text that slugs to nothing falls back to
    the index when one is given, as the recorder does for icon-only elements.
    """
    given = [x is not None for x in (part, text, index)]
    if sum(given) == 0:
        raise ValueError("element_name needs one of part, text or index")
    if part is not None and (text is not None or index is not None):
        raise ValueError("give part alone, or text with an optional index fallback")
    if part is not None:
        own = part
    elif text is not None:
        own = slug(text)
        if not own:
            if index is None:
                raise ValueError(f"text {text!r} slugs to nothing and no index was given")
            own = str(index)
    else:
        own = str(index)
    if not own:
        raise ValueError("empty element name part")
    return f"{parent}.{own}" if parent else own


def option_name(select: str, value: str) -> str:
    """Name of a select option: ``<select name>.<value>``."""
    if not value:
        raise ValueError("option value is empty")
    return f"{select}.{value}"
