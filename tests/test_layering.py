"""The layering of the package: no import cycle among the modules of dsl/, and imports
that run one way through the stages.

Every module's imports are read with ``ast`` (at the top, inside functions, under
``TYPE_CHECKING``: every ``import`` statement counts), resolved to the dsl modules they
name; the graph is searched for cycles, and every edge is held to the order of the stages
(``STAGES``): a module may import its own stage and the stages below it, never one above.
docs/architecture.md describes the stages."""

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
            component = _pop_component(stack, on_stack, v)
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> set[str]:
    """Tarjan's step: the modules on the stack down to ``root``, taken off it."""
    component = set()
    while True:
        w = stack.pop()
        on_stack.discard(w)
        component.add(w)
        if w == root:
            return component


STAGES = ("base", "syntax", "model", "check", "evaluate", "analysis", "testing", "scan", "diff", "api", "lsp", "cli")
"""The stages, lowest first."""

STAGE_OF: dict[str, str] = {
    # leaf utilities every stage may import
    "dsl.span": "base", "dsl.diagnostics": "base", "dsl.gcpause": "base", "dsl.atomic": "base",
    "dsl.forking": "base", "dsl.signals": "base",
    "dsl.text": "base",  # normalisation and text atoms: the checks validate regexes with it
    "dsl.regex_syntax": "base",  # RE2's syntax tree, no solver: the analysis and the scan's pushdown read it
    "dsl.output": "base",  # CommandResult/Lines, plain data: testing.run returns them too
    "dsl.syntax": "syntax",
    "dsl.model": "model", "dsl.fingerprint": "model",
    "dsl.checking": "check",
    "dsl.evaluate": "evaluate",
    "dsl.analysis": "analysis",
    "dsl.testing": "testing",
    "dsl.scan": "scan",  # policy scan: reads, decides (evaluate) and writes catalogues
    "dsl.versions": "diff",  # policy diff: two versions compared by the analysis, catalogues by the scan
    "dsl.api": "api", "dsl.eval_stream": "api",
    # the package itself is the public API (dsl.load, dsl.check, …): only the CLI imports it
    "dsl": "api",
    "dsl.lsp": "lsp",  # policy lsp: the language server, over the API's stages
    "dsl.cli": "cli",
    "dsl.entry": "cli",  # the console script: imports the CLI, a ^C meanwhile told as one
}
"""A module's stage is that of its longest prefix listed here (a package's entry covers
its modules)."""

EXCLUDED = {"dsl", "dsl.__main__"}
"""The public API's re-exports and ``python -m dsl``: they import from every stage."""


def stage_of(module: str) -> str | None:
    name = module
    while name and name not in STAGE_OF:
        name = name.rpartition(".")[0]
    return STAGE_OF.get(name)


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Every import of a module of a higher stage than the importer's."""
    found = []
    for importer in sorted(edges):
        if importer in EXCLUDED:
            continue
        rank = STAGES.index(stage_of(importer) or "cli")
        for target in sorted(edges[importer]):
            if STAGES.index(stage_of(target) or "cli") > rank:
                found.append(f"{importer} ({stage_of(importer)}) imports {target} ({stage_of(target)})")
    return found


def test_every_module_has_a_stage() -> None:
    assert [m for m in sorted(modules()) if stage_of(m) is None and m not in EXCLUDED] == []


def test_imports_run_down_the_stages() -> None:
    found = upward_imports(graph())
    assert found == [], "imports from a higher stage: " + "; ".join(found)


def test_an_upward_import_is_found() -> None:
    edges = {"dsl.model": {"dsl.syntax.ast", "dsl.evaluate.values"}, "dsl.syntax.ast": {"dsl.span"},
             "dsl.__main__": {"dsl.cli"}}
    assert upward_imports(edges) == ["dsl.model (model) imports dsl.evaluate.values (evaluate)"]


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
