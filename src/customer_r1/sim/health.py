"""Site health: what a browser run on another site noticed about the site itself.

A smoke test (``sim run --policy random``) or any browser run on a site of yours leaves,
in each step of its trace, what the page did (``browser.health``: the page's HTTP status,
4xx/5xx answers, JavaScript errors, how long the step took to load and settle, and the
hosts the fence blocked) and what the shopper could not do (``error_kind`` and the element
named). :func:`site_health` sums these over a run, for the manifest and the report's
"Site health" section: invalid actions by element and reason, HTTP errors, page errors,
slow pages (p50 / p90 of load time, the slowest pages) and the blocked hosts with the
``--allow`` flags that would let them through.

Read from the trace alone, so a report can be rebuilt from a finished run folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from customer_r1.sim.pagekind import BEST_EFFORT

#: How many rows each table keeps (the counts cover everything).
TOP = 15


def healths(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page load of a session record: the start page's, then each step's."""
    start = record.get("start_health")
    if isinstance(start, dict):
        yield start
    for e in record.get("steps", []):
        h = (e.get("browser") or {}).get("health")
        if isinstance(h, dict):
            yield h


def allow_hint(hosts: Sequence[str]) -> str:
    """The flags that would let ``hosts`` through the fence."""
    return " ".join(f"--allow {h}" for h in hosts)


def blocked_hosts(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """host -> requests blocked and sessions that met the block, most blocked first."""
    reqs: Counter[str] = Counter()
    sessions: Counter[str] = Counter()
    for r in records:
        seen: set[str] = set()
        for h in healths(r):
            for host, n in (h.get("blocked") or {}).items():
                reqs[host] += int(n)
                seen.add(host)
        sessions.update(seen)
    return {h: {"requests": n, "sessions": sessions[h]}
            for h, n in sorted(reqs.items(), key=lambda kv: (-kv[1], kv[0]))}


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values, dtype=float), q)), 1) if values else None


def site_health(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's site health (see the module doc); empty tables when the trace has no
    health notes (runs on our own shop, runs made before they existed)."""
    invalid: Counter[tuple[str, str]] = Counter()
    off: Counter[str] = Counter()
    http: Counter[tuple[int, str]] = Counter()
    js: Counter[str] = Counter()
    loads: list[float] = []
    slow: list[tuple[float, str]] = []
    pages = 0
    for r in records:
        for e in r.get("steps", []):
            kind = e.get("error_kind") or ""
            if kind and kind != "after_end":
                name = ((e.get("action") or {}).get("name")) or "(no element)"
                invalid[(name, kind)] += 1
                if kind == "off_allowlist":
                    off[(e.get("observation") or {}).get("url", "")] += 1
        for h in healths(r):
            pages += 1
            for x in h.get("http_errors") or []:
                http[(int(x.get("status", 0)), str(x.get("url", "")))] += 1
            status = h.get("status")
            if isinstance(status, int) and status >= 400 and not h.get("http_errors"):
                http[(status, str(h.get("url", "")))] += 1
            for m in h.get("js_errors") or []:
                js[str(m)] += 1
            if isinstance(h.get("load_ms"), int | float):
                loads.append(float(h["load_ms"]))
                slow.append((float(h["load_ms"]), str(h.get("url", ""))))
    hosts = blocked_hosts(records)
    slow.sort(key=lambda x: -x[0])
    baskets = [b for b in (last_basket(r) for r in records) if b is not None]
    return {
        "pages": pages,
        "invalid_actions": [{"element": n, "reason": k, "count": c}
                            for (n, k), c in sorted(invalid.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "invalid_total": sum(invalid.values()),
        "invalid_by_reason": dict(_by_reason(invalid).most_common()),
        "off_allowlist": sum(off.values()),
        "http_errors": [{"status": s, "url": u, "count": c}
                        for (s, u), c in sorted(http.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "http_error_total": sum(http.values()),
        "js_errors": [{"message": m, "count": c}
                      for m, c in sorted(js.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "js_error_total": sum(js.values()),
        "load_ms": {"p50": _pct(loads, 50), "p90": _pct(loads, 90), "max": max(loads) if loads else None,
                    "slowest": [{"ms": int(ms), "url": u} for ms, u in slow[:5]]},
        "blocked_hosts": hosts,
        "allow_hint": allow_hint(list(hosts)),
        "basket": {"sessions": len(baskets), "source": BEST_EFFORT,
                   "mean_items": float(np.mean([b["items"] for b in baskets])) if baskets else None,
                   "mean_value": float(np.mean([b["value"] or 0.0 for b in baskets])) if baskets else None},
    }


def last_basket(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The basket as the last cart page of a session showed it (best effort), or None."""
    found = None
    for e in record.get("steps", []):
        meta = (e.get("observation") or {}).get("page_meta") or {}
        total = meta.get("cart_total")
        if isinstance(total, list) and total and isinstance(total[0], dict):
            found = {"items": int(total[0].get("items") or 0), "value": total[0].get("value")}
    return found


def _by_reason(invalid: Counter[tuple[str, str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for (_, kind), c in invalid.items():
        out[kind] += c
    return out


def manifest_part(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The compact form kept in a run's manifest (``browser.site_health``)."""
    h = site_health(records)
    return {"pages": h["pages"], "blocked_hosts": {k: v["requests"] for k, v in h["blocked_hosts"].items()},
            "allow_hint": h["allow_hint"], "off_allowlist": h["off_allowlist"],
            "http_errors": h["http_error_total"], "js_errors": h["js_error_total"],
            "load_ms_p50": h["load_ms"]["p50"], "load_ms_p90": h["load_ms"]["p90"],
            "invalid_by_reason": h["invalid_by_reason"]}
