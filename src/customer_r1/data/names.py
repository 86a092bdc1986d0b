"""Page names: the candidates a valid prediction can refer to.

Every ``name`` attribute on a page, in document order, is something the shopper can act
on; the builder stores them with each example (``page_names``), ranked decoding scores
them, and ``--compress handles`` numbers them.
"""

from __future__ import annotations

import html as html_lib
import re

_TAG_WITH_NAME = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)\b([^>]*?)\sname=\"([^\"]*)\"([^>]*)>")
_TYPE_ATTR = re.compile(r"\stype=\"([^\"]*)\"")
_ROLE_ATTR = re.compile(r"\srole=\"([^\"]*)\"")
_NON_TEXT_INPUT = {"submit", "button", "checkbox", "radio", "hidden", "image", "reset", "file"}


def page_names(html: str) -> tuple[list[str], list[str]]:
    """Every ``name`` on the page in document order (deduplicated), and those of text fields.

    A regular expression rather than an HTML parser: simplified HTML always quotes
    attributes, and this runs on every page (median ~100k characters) of a build.
    """
    names: list[str] = []
    inputs: list[str] = []
    seen: set[str] = set()
    for m in _TAG_WITH_NAME.finditer(html):
        tag = m.group(1).lower()
        name = html_lib.unescape(m.group(3))
        if not name or name in seen:
            continue
        seen.add(name)
        names.append(name)
        attrs = m.group(2) + " " + m.group(4)
        if tag == "textarea":
            inputs.append(name)
        elif tag == "input":
            t = _TYPE_ATTR.search(" " + attrs)
            if (t.group(1).lower() if t else "text") not in _NON_TEXT_INPUT:
                inputs.append(name)
        else:
            r = _ROLE_ATTR.search(" " + attrs)
            if r and r.group(1).lower() in ("searchbox", "textbox", "combobox"):
                inputs.append(name)
    return names, inputs
