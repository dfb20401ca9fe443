"""The layering of the package: no import cycle among the modules of dsl/.

Every module's imports are read with ``ast`` (at the top, inside functions, under
``TYPE_CHECKING``: every ``import`` statement counts), resolved to the dsl modules they
name, and the graph is searched for cycles. A later step extends this to the order of the
stages (syntax, checks, model, evaluate, analysis / testing, api, cli)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dsl"

KNOWN_CYCLES: list[frozenset[str]] = []
"""Cycles that other work in progress removes, each with its reason."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The dsl modules that the module ``name`` (at ``path``) imports, wherever the
    import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from X import y` imports the module X.y when there is one, else X
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import dsl.a.b` names dsl.a.b; a name inside it names it
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "dsl.api" in edges and "dsl.cli" in edges
    assert "dsl.api" in edges["dsl.cli"]
    assert "dsl.syntax.canonical" in edges["dsl.model"]  # `from .syntax.canonical import …`
    assert "dsl.syntax.ast" in edges["dsl.syntax.format"]  # `from . import ast as A`
    assert "dsl.analysis.findings" in edges["dsl.analysis"]  # a package's own submodule


def test_no_import_cycle() -> None:
    found = [sorted(c) for c in cycles(graph()) if c not in KNOWN_CYCLES]
    assert found == [], "import cycles among dsl modules: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [frozenset({"a", "b", "c"})]
