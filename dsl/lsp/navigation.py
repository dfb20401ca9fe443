"""Where names are declared and where they are used: the index of a policy set, and from
it go to definition, find references, document and workspace symbols.

Sets, ladders, rules, declared fields and policies are indexed from the parsed files (so
that navigation works while the set has errors): declarations, and references in rules
(conditions, `penalty`, `overrides`), policy headers (`scope`) and test files (`tests
for`, `expect … by`, `penalty LADDER`, assertions). A rule is known by its qualified id,
as `overrides` and `by` resolve it (``dsl.checking.passes``, ``dsl.testing.checks``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import attrs
from lsprotocol import types as T

from ..checking.passes import policy_name_of, rule_id
from ..model import BUILTIN_FIELDS
from ..syntax import ast as A
from .diagnostics import uri_of
from .positions import contains
from .project import Snapshot

SET, LADDER, RULE, FIELD, POLICY = "set", "ladder", "rule", "field", "policy"


@attrs.frozen
class Occurrence:
    """A name at a place: what it names (``kind`` and ``key``: a set's, ladder's or
    policy's name, a rule's qualified id, a field's dotted path), whether the place
    declares it, and the declaring statement (for hover)."""

    kind: str
    key: str
    span: A.Span
    declares: bool = False
    node: Any = attrs.field(default=None, eq=False)


class Index:
    """Every occurrence of every name in a set."""

    def __init__(self, snap: Snapshot):
        self.by_file: dict[str, list[Occurrence]] = defaultdict(list)
        self.by_key: dict[tuple[str, str], list[Occurrence]] = defaultdict(list)
        self.rules: dict[str, A.Rule] = {}
        self.policies: dict[str, A.File] = {}
        files = [f for f in snap.files.values() if not _is_test(f)]
        tests = [f for f in snap.files.values() if _is_test(f)]
        for f in files:
            for occ in _policy_file(f):
                self._add(occ)
                if occ.kind == RULE and occ.declares:
                    self.rules.setdefault(occ.key, occ.node)
            self.policies.setdefault(policy_name_of(f), f)
        for f in tests:
            for occ in _test_file(f, self.rules):
                self._add(occ)

    def _add(self, occ: Occurrence) -> None:
        self.by_file[occ.span.file].append(occ)
        self.by_key[occ.kind, occ.key].append(occ)

    def at(self, file: str, line: int, column: int) -> Occurrence | None:
        """The occurrence at a 1-based line and column of ``file`` (the narrowest)."""
        hits = [o for o in self.by_file.get(file, ()) if contains(o.span, line, column)]
        return min(hits, key=lambda o: (o.span.end_line - o.span.line, o.span.end_column - o.span.column),
                   default=None)

    def declarations(self, kind: str, key: str) -> list[Occurrence]:
        return [o for o in self.by_key.get((kind, key), ()) if o.declares]

    def occurrences(self, kind: str, key: str) -> list[Occurrence]:
        return list(self.by_key.get((kind, key), ()))


def _is_test(f: A.File) -> bool:
    return f.path.endswith("_test.policy")


def index_of(snap: Snapshot) -> Index:
    """The index of a set, made once per snapshot."""
    found: Index = snap.remember("navigation.index", lambda: Index(snap))
    return found


# ---------------------------------------------------------------- walking the files


def _policy_file(f: A.File) -> Iterator[Occurrence]:
    policy = policy_name_of(f)
    if f.header is not None and f.header.name.span is not None:
        yield Occurrence(POLICY, policy, f.header.name.span, True, f)
        for c in f.header.clauses:
            if c.kind == "scope" and not isinstance(c.value, A.Str):
                yield from _expr(c.value)
    for s in f.statements:
        yield from _statement(s, policy)


def _statement(s: A.Statement, policy: str) -> Iterator[Occurrence]:
    if isinstance(s, A.SetDecl) and s.name.span is not None:
        yield Occurrence(SET, s.name.name, s.name.span, True, s)
    elif isinstance(s, A.LadderDecl) and s.name.span is not None:
        yield Occurrence(LADDER, s.name.name, s.name.span, True, s)
    elif isinstance(s, A.FieldDecl) and s.path.span is not None:
        yield Occurrence(FIELD, str(s.path), s.path.span, True, s)
    elif isinstance(s, A.Rule):
        yield from _rule(s, policy)
    elif isinstance(s, A.Assertion):
        yield from _expr(s.expr)


def _rule(r: A.Rule, policy: str) -> Iterator[Occurrence]:
    span = r.name.span if r.name is not None else r.anchor
    if span is not None:
        yield Occurrence(RULE, f"{policy}.{rule_id(r)}", span, True, r)
    for e in (r.selector, r.if_, r.unless):
        if e is not None:
            yield from _expr(e)
    if isinstance(r.penalty, A.PenaltyLadder) and r.penalty.ladder.span is not None:
        yield Occurrence(LADDER, r.penalty.ladder.name, r.penalty.ladder.span)
    for ref in r.overrides:
        if ref.span is not None:
            yield Occurrence(RULE, ref.name if "." in ref.name else f"{policy}.{ref.name}", ref.span)


def _expr(e: A.Expr) -> Iterator[Occurrence]:
    for node in A.walk(e):
        items = getattr(node, "items", None)
        if isinstance(node, (A.CategoryIn, A.MentionsAny, A.In)) and isinstance(items, A.Ref) and items.span:
            yield Occurrence(SET, items.name, items.span)
        path = getattr(node, "path", None)
        if isinstance(path, A.Path) and path.span is not None:
            yield Occurrence(FIELD, str(path), path.span)


def _test_file(f: A.File, rules: dict[str, A.Rule]) -> Iterator[Occurrence]:
    scope = {p.name for p in f.tests_for.policies} if f.tests_for is not None else None
    if f.tests_for is not None:
        yield from (Occurrence(POLICY, p.name, p.span) for p in f.tests_for.policies if p.span is not None)
    for s in f.statements:
        if isinstance(s, A.Assertion):
            yield from _expr(s.expr)
        elif isinstance(s, A.TestCase):
            yield from _expectation(s.expect, rules, scope)


def _expectation(e: A.Expect, rules: dict[str, A.Rule], scope: set[str] | None) -> Iterator[Occurrence]:
    """The rules of a test's `by` and the ladder of its `penalty`."""
    for ref in e.by:
        if ref.span is not None:
            yield from (Occurrence(RULE, qid, ref.span) for qid in _resolve(ref.name, rules, scope))
    ladder = e.penalty.ladder if e.penalty is not None else None
    if ladder is not None and ladder.span is not None:
        yield Occurrence(LADDER, ladder.name, ladder.span)


def _resolve(name: str, rules: dict[str, A.Rule], scope: set[str] | None) -> list[str]:
    """The rules a test's `by` names: a qualified id, or a local id in the policies the
    file is decided against."""
    if name in rules or "." in name:
        return [name]
    return [q for q in rules if q.partition(".")[2] == name and (scope is None or q.partition(".")[0] in scope)]


# ---------------------------------------------------------------- requests


def _location(occ: Occurrence, snap: Snapshot, encoding: str) -> T.Location:
    return T.Location(uri_of(occ.span.file), snap.lines(occ.span.file, encoding).range(occ.span))


def definition(snap: Snapshot, file: str, line: int, column: int, encoding: str) -> list[T.Location]:
    index = index_of(snap)
    occ = index.at(file, line, column)
    if occ is None:
        return []
    return [_location(d, snap, encoding) for d in index.declarations(occ.kind, occ.key)]


def references(snap: Snapshot, file: str, line: int, column: int, encoding: str,
               declarations: bool) -> list[T.Location]:
    index = index_of(snap)
    occ = index.at(file, line, column)
    if occ is None:
        return []
    return [_location(o, snap, encoding) for o in index.occurrences(occ.kind, occ.key)
            if declarations or not o.declares]


_SYMBOL_KIND = {SET: T.SymbolKind.Array, LADDER: T.SymbolKind.Enum, RULE: T.SymbolKind.Function,
                FIELD: T.SymbolKind.Field, POLICY: T.SymbolKind.Module}


def document_symbols(snap: Snapshot, file: str, encoding: str) -> list[T.DocumentSymbol]:
    """The file's declarations, and its tests and assertions, in order."""
    text = snap.lines(file, encoding)
    out = [T.DocumentSymbol(o.key.partition(".")[2] if o.kind == RULE else o.key, _SYMBOL_KIND[o.kind],
                            text.range(getattr(o.node, "span", None) or o.span), text.range(o.span), detail=o.kind)
           for o in index_of(snap).by_file.get(file, ()) if o.declares]
    parsed = snap.files.get(file)
    for s in parsed.statements if parsed is not None else ():
        if isinstance(s, (A.TestCase, A.Assertion)) and s.span is not None and s.name.span is not None:
            kind = "test" if isinstance(s, A.TestCase) else "assert"
            out.append(T.DocumentSymbol(s.name.value, T.SymbolKind.Method if kind == "test" else T.SymbolKind.Event,
                                        text.range(s.span), text.range(s.name.span), detail=kind))
    out.sort(key=lambda s: (s.range.start.line, s.range.start.character))
    return out


def workspace_symbols(snaps: list[Snapshot], query: str, encoding: str) -> list[T.WorkspaceSymbol]:
    """The declarations whose name contains ``query`` (case ignored), in every set checked."""
    out: list[T.WorkspaceSymbol] = []
    seen: set[tuple[str, str, str]] = set()
    for snap in snaps:
        for (kind, key), occs in index_of(snap).by_key.items():
            if query.lower() not in key.lower():
                continue
            for o in occs:
                if o.declares and (kind, key, o.span.file) not in seen:
                    seen.add((kind, key, o.span.file))
                    out.append(T.WorkspaceSymbol(location=_location(o, snap, encoding), name=key,
                                                 kind=_SYMBOL_KIND[kind], container_name=kind))
    return out


def builtin_field(key: str) -> bool:
    return tuple(key.split(".")) in BUILTIN_FIELDS
