"""Nothing irreversible, nothing personal: the browser backend's rule on other sites.

On a site that is not our simulated shop, a simulated shopper must never place an order,
pay, sign in or send a checkout form, and never type into fields that hold personal or
payment data: a staging build may be wired to a real payment provider or a real account
system, and the shopper's text is a model's output. Before any click the backend asks
:func:`purchase_intent` about the element (its label, where a link leads, the form a
button submits and that form's fields); a hit ends the session as a *purchase intent*
(``end_reason`` ``purchase_intent``: the shopper's decision is recorded, nothing is
sent). Typing into a field that :func:`sensitive_field` flags is refused with an error
in ``last_action_error``. Below the page, :func:`unsafe_request` is the backstop: a
non-GET request to a checkout, payment, order or sign-in address, or one whose body
carries card or password fields, is aborted even if a script sends it on its own.

The rules read what real retailers show (URL paths, field names, ``autocomplete``
tokens, button text); they are deliberately broad: a false alarm ends one simulated
session, a miss could buy something.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

#: Kinds of sensitive form fields.
FIELD_KINDS = ("password", "card", "email", "phone", "address", "name")

_AUTOCOMPLETE = {
    "password": ("current-password", "new-password", "one-time-code"),
    "card": ("cc-name", "cc-given-name", "cc-family-name", "cc-number", "cc-exp", "cc-exp-month",
             "cc-exp-year", "cc-csc", "cc-type", "transaction-amount"),
    "email": ("email", "username"),
    "phone": ("tel", "tel-national", "tel-country-code", "tel-area-code", "tel-local"),
    "address": ("street-address", "address-line1", "address-line2", "address-line3", "address-level1",
                "address-level2", "postal-code", "country", "country-name", "shipping", "billing"),
    "name": ("name", "given-name", "family-name", "additional-name", "honorific-prefix", "honorific-suffix",
             "nickname", "bday", "bday-day", "bday-month", "bday-year", "sex"),
}
_FIELD_WORDS = {
    "password": re.compile(r"pass(word|wd|code)?\b|\bpin\b|\botp\b|one[\s_-]?time", re.I),
    "card": re.compile(r"card|\bcc[\s_-]?(num|number|name|exp|csc)?\b|cvv|cvc|csc|security[\s_-]?code|"
                       r"expir|\biban\b|routing|account[\s_-]?number|sort[\s_-]?code", re.I),
    "email": re.compile(r"e[\s_-]?mail|\buser(name)?\b|\blogin\b", re.I),
    "phone": re.compile(r"phone|\btel\b|mobile|\bcell\b", re.I),
    "address": re.compile(r"address|street|\bzip\b|postal|post[\s_-]?code|\bcity\b|\bstate\b|province|"
                          r"country|shipping|billing|\bssn\b|social[\s_-]?security", re.I),
    "name": re.compile(r"(full|first|last|given|family|middle|sur)[\s_-]?name|\bsurname\b|birth|\bdob\b|"
                       r"recipient", re.I),
}
_INTENT_TEXT = [
    ("order", re.compile(r"place\s+(your\s+)?order|submit\s+(your\s+)?order|complete\s+(your\s+)?"
                         r"(order|purchase)|confirm\s+(your\s+)?(order|purchase)|buy\s+now|order\s+now|"
                         r"purchase\s+now|\bcomplete\s+checkout|one[\s-]?click", re.I)),
    ("pay", re.compile(r"\bpay\b|pay\s+now|payment|\bpaypal\b|apple\s+pay|google\s+pay", re.I)),
    ("checkout", re.compile(r"check\s*out|proceed\s+to\s+(checkout|payment)|continue\s+to\s+"
                            r"(payment|shipping|checkout)", re.I)),
    ("sign_in", re.compile(r"sign\s*in|log\s*in|sign\s*on|sign\s*up|register|create\s+(an\s+)?account|"
                           r"my\s+account|your\s+account", re.I)),
]
_INTENT_PATH = [
    ("order", re.compile(r"/(place[-_]?order|orders?/(new|create|submit|confirm)|purchase|buy)(/|$|\?|\.)",
                         re.I)),
    ("pay", re.compile(r"/(pay|payments?|billing|wallet)(/|$|\?|\.)", re.I)),
    ("checkout", re.compile(r"/(checkout|check-out|cart/checkout|gp/buy)(/|$|\?|\.|-)", re.I)),
    ("sign_in", re.compile(r"/(sign[-_]?in|log[-_]?in|signon|sign[-_]?up|register|account|auth|"
                           r"ap/signin|session)(/|$|\?|\.)", re.I)),
]


def sensitive_field(field: dict[str, Any] | None) -> str:
    """The kind of personal or payment data a form field holds (``FIELD_KINDS``), or ""."""
    if not field:
        return ""
    ftype = str(field.get("type", "")).lower()
    if ftype == "password":
        return "password"
    if ftype == "email":
        return "email"
    if ftype == "tel":
        return "phone"
    tokens = str(field.get("autocomplete", "")).lower().split()
    for kind, names in _AUTOCOMPLETE.items():
        if any(t in names for t in tokens):
            return kind
    if ftype in ("search", "hidden", "submit", "button", "checkbox", "radio"):
        return ""
    text = " ".join(str(field.get(k, "")) for k in ("name", "id", "placeholder", "label"))
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)  # cardNumber -> card Number
    if re.search(r"\bsearch\b|\bquery\b|\bkeywords?\b|^\s*q\s*$", text, re.I):
        return ""
    for kind in FIELD_KINDS:
        if _FIELD_WORDS[kind].search(text):
            return kind
    if str(field.get("inputmode", "")).lower() == "tel":
        return "phone"
    return ""


def _path_intent(url: str) -> str:
    try:
        u = urlsplit(url)
    except ValueError:
        return ""
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    for kind, rx in _INTENT_PATH:
        if rx.search(target):
            return kind
    return ""


#: What a refused click would have done.
INTENTS = ("order", "pay", "checkout", "sign_in", "personal_data")


def purchase_intent(facts: dict[str, Any] | None) -> tuple[str, str]:
    """``(intent, reason)`` if clicking the element described by ``facts`` (from the
    in-page simplifier) would order, pay, sign in or send a form of personal data
    (``INTENTS``); else ("", "")."""
    if not facts:
        return "", ""
    label = " ".join(str(facts.get("label", "")).split())
    for kind, rx in _INTENT_TEXT:
        if rx.search(label):
            return kind, f"its text {label[:60]!r}"
    href = str(facts.get("href") or "")
    if href:
        kind = _path_intent(href)
        if kind:
            return kind, f"it leads to {href[:120]}"
    form = facts.get("form")
    if form and facts.get("submits"):
        kinds = sorted({k for f in form.get("fields", []) if (k := sensitive_field(f))})
        if kinds:
            intent = ("pay" if "card" in kinds else "sign_in" if "password" in kinds
                      else "checkout" if "address" in kinds else "personal_data")
            return intent, f"it sends a form with {', '.join(kinds)} fields"
        kind = _path_intent(str(form.get("action", "")))
        if kind:
            return kind, f"it sends a form to {str(form.get('action'))[:120]}"
    return "", ""


def unsafe_request(method: str, url: str, body: str | None) -> tuple[str, str]:
    """``(intent, why)`` if a request a page sends must not leave (the network-level
    backstop: a non-GET to an order, payment, checkout or sign-in address, or carrying
    card or password fields); else ("", "")."""
    if method.upper() in ("GET", "HEAD", "OPTIONS"):
        return "", ""
    kind = _path_intent(url)
    if kind:
        return kind, f"a {method.upper()} to a {kind.replace('_', ' ')} address ({url[:120]})"
    text = (body or "")[:20000]
    if re.search(r"(card|cc)[-_]?(num|number)|\bcvv\b|\bcvc\b|\bcsc\b", text, re.I):
        return "pay", f"a {method.upper()} whose body carries card fields ({url[:120]})"
    if re.search(r"passw(or)?d", text, re.I):
        return "sign_in", f"a {method.upper()} whose body carries a password ({url[:120]})"
    return "", ""


def intent_click_type(intent: str) -> str:
    """OPeRA's click type of a purchase-intent click (purchase for order, pay, checkout)."""
    return "purchase" if intent in ("order", "pay", "checkout") else "other"
