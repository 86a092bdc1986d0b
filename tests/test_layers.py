"""The package's import graph: no module imports itself round a circle (lazy imports and
TYPE_CHECKING imports count), and the simulator sits on top, imported by the CLI only."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "customer_r1"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> modules of the package it imports anywhere in its body."""
    files = {_module_name(p): p for p in (SRC / PKG).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod and t.startswith(PKG):
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _ignore_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its modules is not an arrow upwards."""
    return {m: {t for t in ts if not (t == m.rpartition(".")[0] or m.startswith(t + "."))}
            for m, ts in graph.items()}


def test_no_import_cycles():
    assert _cycles(_ignore_packages(import_graph())) == []


def test_the_simulator_is_imported_by_the_cli_and_the_demo_only():
    graph = import_graph()
    users = sorted(m for m, ts in graph.items()
                   if any(t.startswith(f"{PKG}.sim") for t in ts) and not m.startswith(f"{PKG}.sim"))
    assert users and all(m.startswith(f"{PKG}.cli") or m == f"{PKG}.demo" for m in users), users


def test_lower_layers_never_import_upper_ones():
    graph = import_graph()
    below = {"world": ("sim", "cli", "evaluation", "training", "demo"),
             "data": ("sim", "cli", "evaluation", "training", "world", "demo"),
             "evaluation": ("sim", "cli", "demo"),
             "training": ("sim", "cli", "evaluation", "demo")}
    bad = []
    for mod, targets in graph.items():
        layer = mod.split(".")[1] if mod.count(".") else ""
        for t in targets:
            up = t.split(".")[1] if t.count(".") else ""
            if up in below.get(layer, ()):
                bad.append(f"{mod} -> {t}")
    assert bad == []


def test_library_code_never_imports_the_cli():
    """The command line sits on top: the demo, the simulator and every stage are called by it,
    never the other way round (the A/B runner and ``simulate`` live in ``sim``)."""
    bad = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if not m.startswith(f"{PKG}.cli")
                 for t in ts if t == f"{PKG}.cli" or t.startswith(f"{PKG}.cli."))
    assert bad == []
