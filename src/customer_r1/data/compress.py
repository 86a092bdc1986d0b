"""Context compression: the same evidence in far fewer tokens.

The paper keeps whole pages and drops the oldest history pages to fit its budget. On
OPeRA-sized pages (~100k characters, ~35k tokens) that leaves room for one or two
pages, and the current page itself is often cut. Most of a page's tokens are markup
(``href``, ``role``, ``aria-*``, ``<img alt>`` repeating a link's text), furniture shown
on every page (nav bar, footer, side bar, identical carousels) and long prose (product
descriptions, review bodies, spec tables), while what a shopper decides on is short:
the names and labels of the elements they can act on, prices, ratings, option values.

Three strategies, each a small pure function of page texts (and so of the session's
own steps up to the one predicted: training and simulation get the same prompt):

``furniture`` (:func:`dedupe_furniture`)
    A page region identical to one already shown earlier in the same prompt becomes a
    one-line reference, ``(same as step 3: nav_bar)``.
``history_diff`` (:func:`history_change`)
    An earlier page becomes what changed from the page before it, plus the
    neighbourhood of the element acted on, in a few hundred characters.
``trim_current`` (:func:`trim_page`)
    The current page keeps every named element with its name and label and every short
    text (prices, ratings, option values) in full; markup is reduced to the name and
    state attributes, and long text is cut to a budget per region. Never a name.
``handles`` (:func:`with_handles`)
    The current page's names become short handles (``name="17"``: the name's index
    among the page's names), which the model reads and writes instead; everything
    outside the model keeps real names (``actions.to_handle`` / ``from_handle``). On
    OPeRA-sized pages names are half of a trimmed page (dotted names of ~33 tokens);
    this is the only strategy that changes what the model writes.

Pages are split into *regions* (:func:`split_regions`): the top-most named elements
(``<div name="nav_bar">``, ``<div name="footer">``, a carousel) and, where a page has
no containers (the world's compact pages), its lines. A compressed page is written one
region per line, so each line starts with a non-space character and ends with a
newline: token counts of lines add up (see ``tokens.py``) and each distinct line is
tokenized once. The builder (``examples.py``) plans the budget from those counts.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from customer_r1.data.names import page_names

#: The strategies ``--compress`` accepts, in the order they are applied.
COMPRESSIONS: tuple[str, ...] = ("furniture", "history_diff", "trim_current", "handles")

#: Prose characters per region of the current page (``trim_current``). Text pieces share
#: it fairly: each keeps min(its length, a common cap), the cap never below TEXT_FLOOR.
CURRENT_REGION_TEXT = 400
#: A text piece this short is never cut: prices, ratings, counts, option values, headings
#: (``$14.99 · 4.4★ · 47954 ratings`` is 29 characters); a longer one keeps its start.
TEXT_FLOOR = 40
#: ``history_diff``: characters of a changed region shown in a history page, of the
#: whole change shown (before the neighbourhood), and either side of the acted element.
HISTORY_REGION_CHARS = 300
HISTORY_PAGE_CHARS = 1200
NEIGHBOURHOOD_CHARS = 300
#: ``furniture``: only regions at least this long become references (a reference costs
#: about 30 characters, so shorter regions are cheaper shown again).
FURNITURE_MIN_CHARS = 120

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})
_BLOCK = frozenset({"div", "section", "nav", "header", "footer", "main", "aside", "form", "ul",
                    "ol", "table", "tbody", "thead", "select", "fieldset", "article", "dl"})
_INTERACTIVE = frozenset({"a", "button", "input", "select", "option", "textarea", "label",
                          "summary"})
#: Attributes a trimmed named element keeps: what it is and what state it is in.
_STATE_ATTRS = ("type", "value", "placeholder", "aria-checked", "aria-pressed", "aria-selected",
                "aria-expanded", "checked", "selected", "disabled")
_INPUT_ROLES = frozenset({"searchbox", "textbox", "combobox"})
_INTERACTIVE_ROLES = _INPUT_ROLES | {"button", "link", "checkbox", "radio", "option", "tab",
                                     "menuitem", "switch"}
_LABEL_ATTRS = ("aria-label", "alt", "title")
_SKIP = frozenset({"script", "style", "head", "noscript", "template"})

_TOKEN = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>|<!--.*?-->|<![^>]*>|[^<]+|<",
    re.S,
)
_ATTR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:.-]*)\s*=\s*\"([^\"]*)\"")
_NAME_ATTR = re.compile(r"(?:^|\s)name=\"([^\"]*)\"")
_LINE_NAME = re.compile(r"\sname=\"([^\"]*)\"")


def check_compress(names: Iterable[str]) -> tuple[str, ...]:
    """The strategies in canonical order, or ValueError naming an unknown one."""
    given = [n.strip() for n in names if n.strip() and n.strip() != "none"]
    unknown = sorted(set(given) - set(COMPRESSIONS))
    if unknown:
        raise ValueError(f"unknown compression(s) {unknown}; known: {', '.join(COMPRESSIONS)}")
    return tuple(c for c in COMPRESSIONS if c in given)


def uses_handles(compress: Iterable[str]) -> bool:
    """Whether prompts built under ``compress`` show (and targets use) name handles."""
    return "handles" in compress


def parse_compress(text: str) -> tuple[str, ...]:
    """``"trim_current,furniture"`` → ``("furniture", "trim_current")``; ``""``/``none``: ()."""
    return check_compress(text.split(","))


# ---------------------------------------------------------------------------
# Parsing: a tolerant tree of the simplified HTML (attributes are always quoted).


@dataclass(slots=True, eq=False)
class Node:
    """An element: lower-case tag, raw attribute text, children (nodes and raw text)."""

    tag: str
    attrs: str
    children: list[Node | str] = field(default_factory=list)
    named_inside: bool = False  # a descendant has a name attribute

    @property
    def name(self) -> str | None:
        m = _NAME_ATTR.search(self.attrs)
        return m.group(1) if m else None

    def attr_map(self) -> dict[str, str]:
        return {k.lower(): v for k, v in _ATTR.findall(self.attrs)}


def parse_html(html: str) -> Node:
    """The element tree under a synthetic root. Unclosed elements close at the end,
    stray closing tags are ignored, comments and declarations dropped."""
    root = Node("", "")
    stack = [root]
    for m in _TOKEN.finditer(html):
        tag = m.group(2)
        if tag is None:
            s = m.group(0)
            if not s.startswith("<!"):
                stack[-1].children.append(s)
            continue
        t = tag.lower()
        if m.group(1):
            for i in range(len(stack) - 1, 0, -1):
                if stack[i].tag == t:
                    del stack[i:]
                    break
            continue
        node = Node(t, m.group(3))
        stack[-1].children.append(node)
        if not m.group(4) and t not in _VOID:
            stack.append(node)
    _mark_named(root)
    return root


def _mark_named(node: Node) -> bool:
    """Set ``named_inside`` bottom-up; True when the node or a descendant is named."""
    inside = False
    for ch in node.children:
        if isinstance(ch, Node) and _mark_named(ch):
            inside = True
    node.named_inside = inside
    return inside or node.name is not None


@dataclass(slots=True, eq=False)
class Region:
    """A page region: one named container, or a line of loose elements and text."""

    items: list[Node | str]

    @property
    def name(self) -> str | None:
        first = self.items[0] if len(self.items) == 1 else None
        return first.name if isinstance(first, Node) else None

    def names(self) -> list[str]:
        """Every name in the region, in document order, unescaped."""
        out: list[str] = []
        for it in self.items:
            if isinstance(it, Node):
                _collect_names(it, out)
        return [html_lib.unescape(n) for n in out]


def _collect_names(node: Node, out: list[str]) -> None:
    n = node.name
    if n is not None:
        out.append(n)
    if node.named_inside:
        for ch in node.children:
            if isinstance(ch, Node):
                _collect_names(ch, out)


def split_regions(html: str) -> list[Region]:
    """The page's regions in document order.

    Nameless wrappers that hold named elements (``<html>``, ``<body>``, layout divs) are
    opened; a named element that contains other named elements or is a block
    (``<div name="footer">``) is a region of its own; everything else (loose links,
    buttons, text) is grouped into lines, split at newlines and at wrapper boundaries.
    """
    regions: list[Region] = []
    line: list[Node | str] = []

    def flush() -> None:
        nonlocal line
        if any(isinstance(x, Node) or x.strip() for x in line):
            regions.append(Region(line))
        line = []

    def walk(node: Node) -> None:
        for ch in node.children:
            if isinstance(ch, str):
                parts = ch.split("\n")
                for i, p in enumerate(parts):
                    if i:
                        flush()
                    if p:
                        line.append(p)
            elif ch.tag in _SKIP:
                continue
            elif ch.name is None and ch.named_inside:
                flush()
                walk(ch)
                flush()
            elif ch.name is not None and (ch.named_inside or ch.tag in _BLOCK):
                flush()
                regions.append(Region([ch]))
            else:
                line.append(ch)
        return None

    walk(parse_html(html))
    flush()
    return regions


# ---------------------------------------------------------------------------
# Rendering a region as one line: raw (markup kept) or trimmed.


def _ws(text: str) -> str:
    """Whitespace runs (newlines included) as one space, ends stripped."""
    return " ".join(text.split())


def _raw_node(node: Node, out: list[str]) -> None:
    attrs = _ws(node.attrs)
    attrs = f" {attrs}" if attrs else ""
    if node.tag in _VOID:
        out.append(f"<{node.tag}{attrs}/>")
        return
    out.append(f"<{node.tag}{attrs}>")
    for ch in node.children:
        if isinstance(ch, str):
            out.append(ch)
        else:
            _raw_node(ch, out)
    out.append(f"</{node.tag}>")


def raw_line(region: Region) -> str:
    """The region's markup as written, whitespace runs (newlines included) collapsed."""
    out: list[str] = []
    for it in region.items:
        if isinstance(it, str):
            out.append(it)
        else:
            _raw_node(it, out)
    return _ws("".join(out))


def raw_lines(html: str) -> list[str]:
    """Every region of a page as a raw line (``furniture`` / ``history_diff`` without trim)."""
    return [s for s in (raw_line(r) for r in split_regions(html)) if s]


def _text_of(node: Node) -> str:
    out: list[str] = []

    def go(n: Node) -> None:
        for ch in n.children:
            if isinstance(ch, str):
                out.append(ch)
            elif ch.tag not in _SKIP:
                go(ch)

    go(node)
    return _ws(" ".join(out))


class _Piece:
    """A rendered part of a trimmed region: markup, a label (never cut) or prose (cut)."""

    __slots__ = ("kind", "name", "text")

    def __init__(self, kind: str, text: str, name: str | None = None) -> None:
        self.kind = kind  # "tag" | "label" | "text"
        self.text = text
        self.name = name  # the element a "tag" piece opens


def _open_tag(node: Node, label_attr: str | None = None) -> str:
    """``<tag name=".." state..`` (no closing bracket): the name and what state it is in."""
    a = node.attr_map()
    keep = [f'name="{a["name"]}"'] if "name" in a else []
    text = _text_of(node) if node.tag == "option" else None
    for k in _STATE_ATTRS:
        if k not in a or (k == "type" and node.tag != "input"):
            continue
        if k.startswith("aria-") and a[k] == "false":
            continue  # the state that is set says it; "false" on every other one is noise
        if k == "value" and text is not None and a[k] == text:
            continue  # an option's value repeating its label
        keep.append(f'{k}="{a[k]}"')
    if a.get("role", "").lower() in _INPUT_ROLES:
        keep.append(f'role="{a["role"]}"')
    if label_attr is not None:
        keep.append(label_attr)
    return f"<{node.tag} {' '.join(keep)}" if keep else f"<{node.tag}"


def _trim_children(node: Node, out: list[_Piece], labels: set[str]) -> None:
    for ch in node.children:
        if isinstance(ch, str):
            t = _ws(ch)
            if t:
                out.append(_Piece("text", t))
                labels.add(t)
        else:
            _trim_node(ch, out, labels)


def _trim_node(node: Node, out: list[_Piece], labels: set[str]) -> None:
    """Named elements keep tag, name, state and whole label; the rest is bare text.
    ``labels``: texts already shown in the region (an image's alt repeating one goes)."""
    if node.tag in _SKIP:
        return
    name = node.name
    if name is None:
        n = len(out)
        _trim_children(node, out, labels)
        if len(out) == n and "=" in node.attrs:  # an icon or image: its text alternative
            a = node.attr_map()
            alt = _ws(next((a[k] for k in _LABEL_ATTRS if a.get(k)), ""))
            if alt and alt not in labels:
                out.append(_Piece("text", alt))
        return
    a = node.attr_map()
    interactive = node.tag in _INTERACTIVE or a.get("role", "").lower() in _INTERACTIVE_ROLES
    if node.named_inside or (not interactive and any(isinstance(c, Node) for c in node.children)):
        # A named container (or block of text): its tags around its pieces, each cut alone.
        out.append(_Piece("tag", _open_tag(node) + ">", html_lib.unescape(name)))
        _trim_children(node, out, labels)
        out.append(_Piece("tag", f"</{node.tag}>"))
        return
    label = _text_of(node)
    if not label:
        k = next((k for k in _LABEL_ATTRS if a.get(k)), None)
        extra = f'{k}="{a[k]}"' if k is not None else None
        out.append(_Piece("tag", _open_tag(node, extra) + "/>", html_lib.unescape(name)))
        if k is not None:
            labels.add(_ws(a[k]))
        return
    labels.add(label)
    out.append(_Piece("tag", _open_tag(node) + ">", html_lib.unescape(name)))
    out.append(_Piece("label" if interactive else "text", label))
    out.append(_Piece("tag", f"</{node.tag}>"))


def _cap_for(lengths: list[int], budget: int, floor: int) -> int:
    """The largest cap c >= floor with sum(min(l, c)) <= budget (max-min fair shares)."""
    if sum(lengths) <= budget:
        return max(lengths, default=0)
    lo, hi = floor, max(lengths)
    if sum(min(n, lo) for n in lengths) > budget:
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def cut_text(text: str, cap: int) -> str:
    """``text`` cut at a word boundary to at most ``cap`` characters, marked with "…"."""
    if len(text) <= cap:
        return text
    head = text[: max(1, cap - 1)]
    sp = head.rfind(" ")
    if sp > cap // 2:
        head = head[:sp]
    return head.rstrip() + "…"


def _trimmed_pieces(region: Region, text_budget: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    labels: set[str] = set()
    for it in region.items:
        if isinstance(it, str):
            t = _ws(it)
            if t:
                pieces.append(_Piece("text", t))
        else:
            _trim_node(it, pieces, labels)
    prose = [p for p in pieces if p.kind == "text"]
    cap = _cap_for([len(p.text) for p in prose], text_budget, TEXT_FLOOR)
    for p in prose:
        p.text = cut_text(p.text, cap)
    return pieces


def _space(a: _Piece, b: _Piece) -> bool:
    """A space between two pieces, except at tag seams and inside an element's label."""
    a_text, b_text = a.kind != "tag", b.kind != "tag"
    if a_text and b_text:
        return True
    if a_text:
        return not b.text.startswith("</")
    if b_text:
        return a.text.startswith("</") or a.text.endswith("/>")
    return False


def _join(pieces: Sequence[_Piece]) -> str:
    out: list[str] = []
    prev: _Piece | None = None
    for p in pieces:
        if prev is not None and _space(prev, p):
            out.append(" ")
        out.append(p.text)
        prev = p
    return _ws("".join(out))


def trim_region(region: Region, text_budget: int = CURRENT_REGION_TEXT) -> str:
    """One region as a trimmed line: named elements with name, state and whole label;
    prose outside them shared out within ``text_budget`` characters (short pieces whole)."""
    return _join(_trimmed_pieces(region, text_budget))


def trim_page(html: str, text_budget: int = CURRENT_REGION_TEXT) -> list[str]:
    """``trim_current``: the page as trimmed lines, one per region. Every name on the page
    stays (with its label); only prose longer than the region's budget is cut."""
    return [s for s in (trim_region(r, text_budget) for r in split_regions(html)) if s]


# ---------------------------------------------------------------------------
# history_diff


def _window(pieces: list[_Piece], name: str, chars: int, head: int = 0) -> str:
    """The pieces within ``chars`` characters either side of element ``name``'s tag,
    starting at an element or text (never inside one). With ``head``: the region's first
    ``head`` characters too (its heading, the product's title and price), when the
    window starts after them."""
    idx = next(i for i, p in enumerate(pieces) if p.name == name)
    lo, left = idx, 0
    while lo > 0 and left + len(pieces[lo - 1].text) <= chars:
        lo -= 1
        left += len(pieces[lo].text)
    while lo < idx and (pieces[lo].kind == "label" or pieces[lo].text.startswith("</")):
        lo += 1
    hi, right = idx + 1, 0
    while hi < len(pieces) and right + len(pieces[hi].text) <= chars:
        right += len(pieces[hi].text)
        hi += 1
    while hi > idx + 1 and hi < len(pieces) and _opens(pieces[hi - 1]):
        hi -= 1
    body = _join(pieces[lo:hi]) + (" …" if hi < len(pieces) else "")
    if lo == 0:
        return body
    if head:
        first = _head(pieces[:lo], head)
        return first + ("" if first.endswith("…") else " …") + " " + body
    return "… " + body


def _opens(p: _Piece) -> bool:
    return p.kind == "tag" and not p.text.startswith("</") and not p.text.endswith("/>")


def _head(pieces: list[_Piece], chars: int) -> str:
    """The leading pieces of a region within ``chars`` characters (whole pieces)."""
    used, hi = 0, 0
    while hi < len(pieces) and (hi == 0 or used + len(pieces[hi].text) <= chars):
        used += len(pieces[hi].text)
        hi += 1
    while hi > 1 and hi < len(pieces) and _opens(pieces[hi - 1]):
        hi -= 1  # never end on an element whose label did not fit
    body = _join(pieces[:hi])
    if hi < len(pieces):
        body = cut_text(body, chars + 40) if len(body) > chars + 40 else body + " …"
    return body


def region_label(line: str) -> str:
    """How a reference names a region: its first name, else its first words."""
    m = _LINE_NAME.search(" " + line)
    if m:
        return m.group(1)
    text = _ws(re.sub(r"<[^>]*>", " ", line))
    return cut_text(text, 40) or "region"


class ParsedPage:
    """A page split into regions once, each region's raw line and trimmed pieces computed
    once on demand (a page is current once and history many times; the builder keeps one
    per step)."""

    __slots__ = ("_pieces", "_raw", "_regions", "_trimmed", "html")

    def __init__(self, html: str) -> None:
        self.html = html
        self._regions: list[Region] | None = None
        self._raw: list[str] | None = None
        self._pieces: list[list[_Piece]] | None = None
        self._trimmed: list[str] | None = None

    @property
    def regions(self) -> list[Region]:
        if self._regions is None:
            self._regions = split_regions(self.html)
        return self._regions

    def region_raw(self) -> list[str]:
        """The raw line of every region (empty for a region without content)."""
        if self._raw is None:
            self._raw = [raw_line(r) for r in self.regions]
        return self._raw

    def region_pieces(self) -> list[list[_Piece]]:
        """The trimmed pieces of every region (current-page text budget)."""
        if self._pieces is None:
            self._pieces = [_trimmed_pieces(r, CURRENT_REGION_TEXT) for r in self.regions]
        return self._pieces

    @property
    def raw(self) -> list[str]:
        """One raw line per region (empty regions dropped): see :func:`raw_lines`."""
        return [s for s in self.region_raw() if s]

    @property
    def trimmed(self) -> list[str]:
        """One trimmed line per region: see :func:`trim_page`."""
        if self._trimmed is None:
            self._trimmed = [s for s in (_join(p) for p in self.region_pieces()) if s]
        return self._trimmed


def history_change(prev_html: str | ParsedPage | None, html: str | ParsedPage,
                   acted: str | None = None, *,
                   region_chars: int = HISTORY_REGION_CHARS,
                   page_chars: int = HISTORY_PAGE_CHARS,
                   neighbourhood: int = NEIGHBOURHOOD_CHARS) -> list[str]:
    """``history_diff``: an earlier page as what differs from the page before it.

    Regions identical to one of the previous page are left out (``(3 unchanged)``);
    each changed region shows its trimmed head (``region_chars``), up to ``page_chars``
    in all, and the rest are counted by name; the region holding ``acted`` (the element
    the step acted on) shows the acted element with ``neighbourhood`` characters of
    context either side whatever the budget: what the shopper acted on and what it
    said beside it.
    """
    page = html if isinstance(html, ParsedPage) else ParsedPage(html)
    prev = prev_html if isinstance(prev_html, ParsedPage) or prev_html is None \
        else ParsedPage(prev_html)
    before = set(prev.region_raw()) if prev is not None else set()
    lines: list[str] = []
    unchanged = 0
    more: list[str] = []
    used = 0
    for r, raw, pieces in zip(page.regions, page.region_raw(), page.region_pieces(), strict=True):
        if not raw:
            continue
        holds = acted is not None and acted in r.names()
        if raw in before and not holds:
            unchanged += 1
            continue
        if not pieces:
            continue
        if holds:
            lines.append(_window(pieces, str(acted), neighbourhood, head=region_chars // 2))
        elif used >= page_chars:
            more.append(region_label(_join(pieces)))
        else:
            text = _head(pieces, region_chars)
            used += len(text)
            lines.append(text)
    if more:
        shown = ", ".join(more[:3]) + (", …" if len(more) > 3 else "")
        lines.append(f"(+{len(more)} more changed: {shown})")
    if unchanged:
        lines.append(f"({unchanged} unchanged)")
    return lines


# ---------------------------------------------------------------------------
# furniture


def reference_line(step: int, line: str) -> str:
    """What a repeated region becomes: ``(same as step 3: nav_bar)`` (``step`` 0-based)."""
    return f"(same as step {step + 1}: {region_label(line)})"


def dedupe_furniture(pages: Sequence[tuple[int, Sequence[str]]],
                     min_chars: int = FURNITURE_MIN_CHARS) -> list[list[str]]:
    """``furniture``: pages in prompt order as (step, lines); a line identical to one
    shown earlier in the prompt (an earlier page, or earlier on the same page) becomes a
    reference to the step that showed it. Lines shorter than ``min_chars`` stay."""
    shown: dict[str, int] = {}
    out: list[list[str]] = []
    for step, lines in pages:
        page: list[str] = []
        for ln in lines:
            if len(ln) >= min_chars and ln in shown:
                page.append(reference_line(shown[ln], ln))
            else:
                page.append(ln)
                shown.setdefault(ln, step)
        out.append(page)
    return out


_TAG = re.compile(r"<[A-Za-z](?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
_TAG_NAME = re.compile(r"(\sname=\")([^\"]*)(\")")


def with_handles(lines: Sequence[str], names: Sequence[str]) -> list[str]:
    """``handles``: every ``name="..."`` in the page's lines written as its index among
    ``names`` (the page's names, :func:`~customer_r1.data.names.page_names`). A name not
    in ``names`` (none, for lines of the same page) is kept."""
    index = {n: str(i) for i, n in enumerate(names)}

    def attr(m: re.Match[str]) -> str:
        h = index.get(html_lib.unescape(m.group(2)))
        return m.group(0) if h is None else f"{m.group(1)}{h}{m.group(3)}"

    def tag(m: re.Match[str]) -> str:
        return _TAG_NAME.sub(attr, m.group(0))

    return [_TAG.sub(tag, ln) for ln in lines]


def session_forms(compress: Sequence[str], pages: Sequence[str], acted: Sequence[str | None],
                  ) -> tuple[list[list[str]], list[list[str]]]:
    """Every page of a session as shown in a later step's history and as the current page,
    under ``compress``: a pure function of the pages (and acted names), so the builder
    may compute it in worker processes. ``acted[k]``: the name step k acted on."""
    parsed = [ParsedPage(p) for p in pages]
    if "history_diff" in compress:
        hist = [history_change(parsed[k - 1] if k else None, parsed[k], acted[k])
                for k in range(len(parsed))]
    else:
        hist = [p.raw for p in parsed]
    cur = [p.trimmed if "trim_current" in compress else p.raw for p in parsed]
    if "handles" in compress:
        cur = [with_handles(c, page_names(p.html)[0]) for c, p in zip(cur, parsed, strict=True)]
    return hist, cur


def session_forms_job(job: tuple[Sequence[str], Sequence[str], Sequence[str | None]],
                      ) -> tuple[list[list[str]], list[list[str]]]:
    """:func:`session_forms` of one (compress, pages, acted) job: a worker's entry point,
    here so that a spawned worker imports this module alone."""
    return session_forms(*job)


def lines_text(lines: Sequence[str]) -> str:
    """A compressed page piece: one line per region (every line ends with a newline)."""
    return "".join(ln + "\n" for ln in lines)
