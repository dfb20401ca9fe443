"""The vocabulary of a policy set: the categories, phrases, values and instants its rules
(and an assertion) talk about. The shrinker cuts strings down to these phrases; the
Hypothesis attack builds listings from them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..evaluate.values import instant_in
from ..model import FieldInfo, PolicySet, when_value
from ..syntax import ast as A
from ..text import pattern_segments

__all__ = ["Vocabulary"]

TEXT_FIELDS: tuple[tuple[str, ...], ...] = (("title",), ("description",), ("tags",))


@attrs.frozen
class Vocabulary:
    segments: tuple[str, ...]                                   # category pattern segments
    patterns: tuple[str, ...]                                   # category patterns as written
    phrases: tuple[str, ...]                                    # mentions phrases and contains needles
    values: dict[tuple[str, ...], tuple[Any, ...]]              # literals compared with each path (JSON form)
    text_paths: tuple[tuple[str, ...], ...]                     # paths read as text
    regexes: dict[tuple[str, ...], tuple[A.Regex, ...]]
    instants: tuple[dt.datetime, ...]                           # rule and window bounds
    max_steps: int                                              # the longest ladder

    @classmethod
    def of(cls, ps: PolicySet, exprs: Iterable[A.Expr] = (),
           extra_instants: Iterable[dt.datetime | None] = ()) -> Vocabulary:
        found = _Found(tz=ps.policies[0].tz if ps.policies else dt.UTC)
        for cond in [r.condition for r in ps.rules] + list(exprs):
            for node in A.walk(cond):
                read = _READERS.get(type(node))
                if read is not None:
                    read(found, node)
        for path, info in ps.schema.items():
            found.declared(path, info)
        segments: set[str] = set()
        for p in found.patterns:
            segments.update(s for s in (x.strip() for x in p.split(">")) if s and pattern_segments(s))
        instants = {b for r in ps.rules for b in (r.start, r.end) if b is not None}
        instants.update(i for i in extra_instants if i is not None)
        max_steps = max((len(lad.steps) for lad in ps.ladders.values()), default=1)
        return cls(tuple(sorted(segments)), tuple(sorted(found.patterns)), tuple(sorted(found.phrases)),
                   {k: tuple(sorted(v, key=_sort_key)) for k, v in sorted(found.values.items())},
                   tuple(sorted(found.text_paths)),
                   {k: tuple(sorted(v, key=repr)) for k, v in sorted(found.regexes.items())},
                   tuple(sorted(instants)), max_steps)

    def strings(self) -> list[str]:
        """Every string worth keeping whole when a counterexample is shrunk."""
        out = set(self.phrases) | set(self.segments) | set(self.patterns)
        for vals in self.values.values():
            out.update(v for v in vals if isinstance(v, str))
        return sorted(out)


@attrs.define
class _Found:
    """What the conditions (and the schema) mention, gathered node by node."""

    tz: Any                                                     # the zone date literals are read in
    patterns: set[str] = attrs.Factory(set)
    phrases: set[str] = attrs.Factory(set)
    values: defaultdict[tuple[str, ...], set[Any]] = attrs.Factory(lambda: defaultdict(set))
    text_paths: set[tuple[str, ...]] = attrs.Factory(set)
    regexes: defaultdict[tuple[str, ...], set[A.Regex]] = attrs.Factory(lambda: defaultdict(set))

    def declared(self, path: tuple[str, ...], info: FieldInfo) -> None:
        """The values and text paths a declared field contributes."""
        kind = info.kind
        if kind == "one_of":
            self.values[path].update(info.values)
        elif kind in ("text", "list_text"):
            self.text_paths.add(path)
        elif kind == "number":
            self.values[path].update((0, 1))
        elif kind == "bool":
            self.values[path].update((True, False))
        elif kind == "date":
            self.values[path].add("2021-01-01")


def _category(f: _Found, node: A.Category) -> None:
    f.patterns.add(node.pattern.value)


def _category_in(f: _Found, node: A.CategoryIn) -> None:
    if isinstance(node.items, A.ListLit):
        f.patterns.update(i.value for i in node.items.items if isinstance(i, A.Str))


def _mentions(f: _Found, node: A.Mentions) -> None:
    f.phrases.add(node.phrase.value)
    f.text_paths.add(node.path.parts if node.path else ())


def _mentions_any(f: _Found, node: A.MentionsAny) -> None:
    if isinstance(node.items, A.ListLit):
        f.phrases.update(str(i.value) for i in node.items.items if isinstance(i, A.Str))
        f.text_paths.add(node.path.parts if node.path else ())


def _contains(f: _Found, node: A.Contains) -> None:
    f.phrases.add(node.needle.value)
    f.text_paths.add(node.path.parts)


def _matches(f: _Found, node: A.Matches) -> None:
    f.regexes[node.path.parts].add(node.regex)
    f.text_paths.add(node.path.parts)


def _compare(f: _Found, node: A.Compare) -> None:
    f.values[node.path.parts].update(_neighbours(node.value, f.tz))


def _in(f: _Found, node: A.In) -> None:
    if isinstance(node.items, A.ListLit):
        for item in node.items.items:
            f.values[node.path.parts].update(_neighbours(item, f.tz))


def _exists(f: _Found, node: A.Exists) -> None:
    f.values.setdefault(node.path.parts, set())


# What each kind of atom contributes to the vocabulary (the other nodes: nothing).
_READERS: dict[type, Callable[[_Found, Any], None]] = {
    A.Category: _category, A.CategoryIn: _category_in, A.Mentions: _mentions, A.MentionsAny: _mentions_any,
    A.Contains: _contains, A.Matches: _matches, A.Compare: _compare, A.In: _in, A.Exists: _exists,
}


def _sort_key(v: Any) -> tuple[str, str]:
    return (type(v).__name__, repr(v))


def _neighbours(lit: A.Scalar, tz: Any) -> set[Any]:
    """A literal's JSON value and the values just around it, so that comparisons go
    both ways: numbers ± 1 and ± 0.5, dates a day either side (and as date-times)."""
    if isinstance(lit, A.Bool):
        return {lit.value}
    if isinstance(lit, A.Num):
        v = lit.value
        return {v, v + 1, v - 1, v + 0.5, v - 0.5}
    if isinstance(lit, A.Str):
        return {lit.value, lit.value + "x"}
    base = when_value(lit)  # a Date or a DateTime: the last kind of scalar
    assert base is not None
    out: set[Any] = set()
    for delta in (dt.timedelta(0), dt.timedelta(days=1), dt.timedelta(days=-1), dt.timedelta(seconds=-1)):
        d = base + delta
        out.add(d.isoformat())
        if delta.seconds == 0 and not delta.microseconds:
            out.add(d.date().isoformat())
        instant = instant_in(d, tz)
        if instant is not None:
            out.add(instant.isoformat())
    return out
