"""Page kinds on any site: from the URL and the page's structure, or the user's own rules.

A report's funnel and "where shoppers leave" need to know what each page is: home (or a
category listing), search results, product detail, reviews, cart, checkout (or sign-in),
order confirmation, or other. Our shop says so itself; on another site :func:`classify`
works it out, in this order:

1. the user's rules (``--page-kinds FILE``: URL pattern -> kind, first match wins),
   recorded in the run's manifest;
2. the URL's words, as the common shop platforms spell them (WooCommerce ``/product/``,
   ``/product-category/``, ``/cart/``, ``/checkout/order-received/``; Shopify
   ``/products/``, ``/collections/``, ``/search?q=``; Magento ``/checkout/cart/``,
   ``/catalogsearch/``; OpenCart ``?route=product/product``; Amazon ``/dp/``, ``/s?k=``);
3. the page's structure, read in the page by the simplifier (``pageFacts``): how many
   product cards and buy buttons it shows, quantity fields, password / card / address
   fields, a filled search box, schema.org types (``Product``), ``og:type``, its heading
   and a few phrases ("thank you for your order", "subtotal");
4. ``/`` is the home page; anything else is ``other``.

Kinds use the names the funnel already has (``compare.FUNNEL``): a category listing is a
``home``-kind page (both are where a shopper browses), sign-in is ``checkout``, an order
confirmation ``order``. A basket's lines and total are read from a cart page when it
shows them (:func:`cart_meta`, best effort: labelled so wherever shown).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from customer_r1.errors import BadInput, MissingInput

#: Every kind a page can have (``home`` includes category listings, ``checkout`` sign-in).
KINDS = ("home", "search", "product", "reviews", "cart", "checkout", "order", "other")
BEST_EFFORT = "read from the site's cart page (best effort)"

_ORDER_WORDS = {"order-received", "order-confirmation", "orderconfirmation", "thank-you", "thankyou",
                "thanks", "order-complete", "order-success", "confirmation"}
_CHECKOUT_WORDS = {"checkout", "checkouts", "login", "signin", "sign-in", "log-in", "logon", "register",
                   "my-account", "account", "payment", "auth", "ap"}
_CART_WORDS = {"cart", "basket", "bag", "shopping-cart", "shoppingcart", "trolley", "minicart"}
_REVIEW_WORDS = {"reviews", "review", "product-reviews", "customer-reviews", "ratings"}
_PRODUCT_WORDS = {"product", "products", "p", "dp", "item", "items", "pd", "prod", "gp"}
_LISTING_WORDS = {"category", "categories", "collections", "collection", "c", "shop", "product-category",
                  "catalog", "department", "departments", "browse", "store", "stores", "brands", "brand",
                  "deals", "sale", "new", "all"}
_SEARCH_WORDS = {"search", "s", "catalogsearch", "find", "results", "search-results"}
_SEARCH_KEYS = {"q", "k", "s", "search", "query", "keyword", "keywords", "term", "search_query", "text"}
_ROUTE_KEYS = {"route", "controller", "page", "action", "view", "fc", "module"}
_HOME_WORDS = {"", "index", "home", "default", "index.php"}

_ORDER_TEXT = re.compile(r"thank\s*you[^.]{0,20}\border\b|\border\b[^.]{0,30}\b(received|placed|confirmed|"
                         r"complete)|order\s*(number|no\.?|#|id)\s*[:#]?\s*[A-Z0-9-]{3,}", re.I)
_CHECKOUT_HEAD = re.compile(r"check\s*out|sign\s*in|log\s*in|shipping|delivery address|payment|"
                            r"create an account|your details", re.I)
_CART_HEAD = re.compile(r"\b(shopping\s+)?(cart|basket|bag|trolley)\b", re.I)
_REVIEW_HEAD = re.compile(r"\breviews?\b|\bratings?\b", re.I)
_SEARCH_HEAD = re.compile(r"search results|results for|you searched for|\bsearch\b", re.I)
_MONEY = re.compile(r"(?:[$£€¥]|USD|EUR|GBP)\s?(\d[\d.,]*)|(\d[\d.,]*)\s?(?:[$£€]|USD|EUR|GBP|kr)")
_TOTAL = re.compile(r"\b(sub\s*-?total|order total|basket total|cart total|total)\b[^0-9$£€]{0,30}"
                    r"((?:[$£€¥]|USD|EUR|GBP)\s?\d[\d.,]*|\d[\d.,]*\s?(?:[$£€]|USD|EUR|GBP))", re.I)


@dataclass(frozen=True, slots=True)
class PageKindRule:
    """One user rule: URLs matching ``pattern`` are pages of ``kind``. A pattern with
    ``://`` is matched against the whole URL, else against its path (and query, when the
    pattern has a ``?``); ``*`` matches anything, ``/`` included; ``re:`` starts a regex."""

    pattern: str
    kind: str

    def matches(self, url: str) -> bool:
        u = urlsplit(url)
        if self.pattern.startswith("re:"):
            return re.search(self.pattern[3:], url) is not None
        query = f"?{u.query}" if "?" in self.pattern else ""
        target = url if "://" in self.pattern else (u.path or "/") + query
        return fnmatch.fnmatchcase(target, self.pattern)


@dataclass(frozen=True, slots=True)
class PageKinds:
    """The user's rules (``--page-kinds FILE``), first match wins."""

    rules: tuple[PageKindRule, ...]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> PageKinds:
        """A YAML (or JSON) mapping of URL pattern -> kind; a mistake names the file and key."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise MissingInput(f"no page-kinds file {p}", "--page-kinds",
                               "a YAML file of `PATTERN: kind` lines")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
            raise BadInput(f"not valid YAML: {getattr(exc, 'problem', exc)}", where,
                           "one `\"/products/*\": product` line per rule") from exc
        if not isinstance(data, Mapping) or not data:
            raise BadInput("expected a mapping of URL pattern -> page kind", str(p),
                           f"e.g. \"/products/*\": product; kinds: {', '.join(KINDS)}")
        rules = []
        for pattern, kind in data.items():
            where = f"{p}: {pattern!r}"
            if not isinstance(pattern, str) or not pattern.strip():
                raise BadInput("a pattern must be a non-empty string", where)
            if kind not in KINDS:
                raise BadInput(f"unknown page kind {kind!r}", where, f"one of {', '.join(KINDS)}")
            if pattern.startswith("re:"):
                try:
                    re.compile(pattern[3:])
                except re.error as exc:
                    raise BadInput(f"not a regular expression: {exc}", where) from exc
            rules.append(PageKindRule(pattern.strip(), str(kind)))
        return cls(tuple(rules), str(p))

    def kind_of(self, url: str) -> str:
        for r in self.rules:
            if r.matches(url):
                return r.kind
        return ""

    def describe(self) -> dict[str, Any]:
        return {"file": self.source, "rules": {r.pattern: r.kind for r in self.rules}}


def _tokens(url: str) -> tuple[list[str], dict[str, str]]:
    u = urlsplit(url)
    segs = [s for s in u.path.lower().split("/") if s]
    words = [re.sub(r"\.(html?|php|aspx?|jsp)$", "", s) for s in segs]
    query = {k.lower(): v for k, v in parse_qsl(u.query, keep_blank_values=True)}
    for k in _ROUTE_KEYS & set(query):  # index.php?route=product/product, ?controller=cart
        words += [query[k].lower(), *(w for w in re.split(r"[/_.-]", query[k].lower()) if w)]
    return words, query


def kind_from_url(url: str) -> str:
    """The kind a URL's words say, or "" when they say nothing."""
    words, query = _tokens(url)
    ws = set(words)
    if ws & _ORDER_WORDS or ({"success", "complete"} & ws and ws & {"checkout", "order", "orders"}):
        return "order"
    if ws & _CART_WORDS and (words[-1] in _CART_WORDS or not ws & {"checkout", "checkouts"}):
        return "cart"
    if ws & _CHECKOUT_WORDS:
        return "checkout"
    if ws & _REVIEW_WORDS:
        return "reviews"
    for i, w in enumerate(words):
        keyed = any(k in query for k in ("id", "product_id", "sku", "pid"))
        if w in _PRODUCT_WORDS and (i + 1 < len(words) or keyed
                                    or re.search(r"product\.html?$|/p/|/dp/", urlsplit(url).path.lower())):
            return "product"
    if ws & _SEARCH_WORDS or any(query.get(k) for k in _SEARCH_KEYS):
        return "search"
    if ws & _LISTING_WORDS:
        return "home"
    if not words or words == ["index"] or (len(words) == 1 and words[0] in _HOME_WORDS):
        return "home"
    return ""


def kind_from_page(facts: Mapping[str, Any] | None) -> str:
    """The kind a page's structure says (``pageFacts`` of the simplifier), or ""."""
    if not facts:
        return ""
    head = str(facts.get("h1") or "")
    title = str(facts.get("title") or "")
    text = str(facts.get("text") or "")
    fields = facts.get("fields") or {}
    cards, buy, qty = int(facts.get("cards") or 0), int(facts.get("buy") or 0), int(facts.get("qty") or 0)
    ld = {str(t).lower() for t in facts.get("ld") or []}
    if _ORDER_TEXT.search(head) or (_ORDER_TEXT.search(text[:1500]) and buy == 0):
        return "order"
    if fields.get("password") or fields.get("payment") or int(fields.get("personal") or 0) >= 2 or \
            (_CHECKOUT_HEAD.search(head) and not cards):
        return "checkout"
    if _CART_HEAD.search(head or title) and (qty or facts.get("cart") or re.search(r"total", text, re.I)):
        return "cart"
    if _REVIEW_HEAD.search(head) and cards <= 1:
        return "reviews"
    if "product" in ld or str(facts.get("og") or "").lower() == "product" or \
            (head and cards <= 1 and 1 <= buy <= 2):
        return "product"
    if (fields.get("search_value") or _SEARCH_HEAD.search(head)) and (cards or buy):
        return "search"
    if cards >= 2 or buy >= 2 or "itemlist" in ld or "collectionpage" in ld:
        return "home"
    return ""


def classify(url: str, facts: Mapping[str, Any] | None = None,
             rules: PageKinds | None = None) -> tuple[str, str]:
    """``(kind, how)``: how is ``rule`` (the user's file), ``url``, ``page`` or ``default``."""
    if rules is not None:
        k = rules.kind_of(url)
        if k:
            return k, "rule"
    k = kind_from_url(url)
    if k and k != "home":  # a listing's words ("shop", "store", "/") are weak: the page may say more
        return k, "url"
    p = kind_from_page(facts)
    if p:
        return p, "page"
    return (k or "other"), "url" if k else "default"


def money(text: str) -> float | None:
    """The amount in a price text ("£1,234.50", "12,50 €"), or None."""
    m = _MONEY.search(text or "")
    if not m:
        return None
    raw = m.group(1) or m.group(2) or ""
    if "," in raw and "." in raw:
        european = raw.rfind(",") > raw.rfind(".")
        raw = raw.replace(".", "").replace(",", ".") if european else raw.replace(",", "")
    elif "," in raw:
        head, _, tail = raw.rpartition(",")
        raw = f"{head.replace(',', '')}.{tail}" if len(tail) == 2 else raw.replace(",", "")
    try:
        return float(raw)
    except ValueError:
        return None


def cart_meta(facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """A cart page's lines and total as OPeRA's ``page_meta`` keeps them (``cart_items``:
    title, price, quantity), labelled best effort; {} when the page shows none."""
    if not facts:
        return {}
    lines = [{"title": str(x.get("title", "")), "price": str(x.get("price", "")),
              "quantity": str(x.get("quantity", "1"))} for x in facts.get("cart") or []]
    out: dict[str, Any] = {}
    if lines:
        out["cart_items"] = lines
    m = _TOTAL.search(str(facts.get("text") or ""))
    total = money(m.group(2)) if m else None
    if total is None and lines:
        total = round(sum((money(x["price"]) or 0.0) * _qty(x["quantity"]) for x in lines), 2)
    if out or total:
        out["cart_total"] = [{"value": total, "items": sum(_qty(x["quantity"]) for x in lines),
                              "source": BEST_EFFORT}]
    return out


def _qty(q: str) -> int:
    try:
        return max(1, int(float(q)))
    except ValueError:
        return 1
