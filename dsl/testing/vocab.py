"""The vocabulary of a policy set: the categories, phrases, values and instants its rules
(and an assertion) talk about. The shrinker cuts strings down to these phrases; the
Hypothesis attack builds listings from them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs

from ..checking.passes import walk
from ..evaluate.values import instant_in
from ..model import PolicySet, when_value
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
    def of(cls, ps: PolicySet, exprs: Iterable[A.Expr] = (), extra_instants: Iterable[dt.datetime | None] = ()) -> Vocabulary:
        conditions = [r.condition for r in ps.rules] + list(exprs)
        segments: set[str] = set()
        patterns: set[str] = set()
        phrases: set[str] = set()
        values: dict[tuple[str, ...], set[Any]] = defaultdict(set)
        text_paths: set[tuple[str, ...]] = set()
        regexes: dict[tuple[str, ...], set[A.Regex]] = defaultdict(set)
        tz_of_lit = ps.policies[0].tz if ps.policies else dt.UTC
        for cond in conditions:
            for node in walk(cond):
                if isinstance(node, A.Category):
                    patterns.add(node.pattern.value)
                elif isinstance(node, A.CategoryIn) and isinstance(node.items, A.ListLit):
                    patterns.update(i.value for i in node.items.items if isinstance(i, A.Str))
                elif isinstance(node, A.Mentions):
                    phrases.add(node.phrase.value)
                    text_paths.add(node.path.parts if node.path else ())
                elif isinstance(node, A.MentionsAny) and isinstance(node.items, A.ListLit):
                    phrases.update(str(i.value) for i in node.items.items if isinstance(i, A.Str))
                    text_paths.add(node.path.parts if node.path else ())
                elif isinstance(node, A.Contains):
                    phrases.add(node.needle.value)
                    text_paths.add(node.path.parts)
                elif isinstance(node, A.Matches):
                    regexes[node.path.parts].add(node.regex)
                    text_paths.add(node.path.parts)
                elif isinstance(node, A.Compare):
                    values[node.path.parts].update(_neighbours(node.value, tz_of_lit))
                elif isinstance(node, A.In) and isinstance(node.items, A.ListLit):
                    for item in node.items.items:
                        values[node.path.parts].update(_neighbours(item, tz_of_lit))
                elif isinstance(node, A.Exists):
                    values.setdefault(node.path.parts, set())
        for path, info in ps.schema.items():
            if info.kind == "one_of":
                values[path].update(info.values)
            elif info.kind in ("text", "list_text"):
                text_paths.add(path)
            elif info.kind == "number":
                values[path].update((0, 1))
            elif info.kind == "bool":
                values[path].update((True, False))
            elif info.kind == "date":
                values[path].add("2021-01-01")
        for p in patterns:
            segments.update(s for s in (x.strip() for x in p.split(">")) if s and pattern_segments(s))
        instants: set[dt.datetime] = set()
        for r in ps.rules:
            for b in (r.start, r.end):
                if b is not None:
                    instants.add(b)
        instants.update(i for i in extra_instants if i is not None)
        max_steps = max((len(lad.steps) for lad in ps.ladders.values()), default=1)
        return cls(tuple(sorted(segments)), tuple(sorted(patterns)), tuple(sorted(phrases)),
                   {k: tuple(sorted(v, key=_sort_key)) for k, v in sorted(values.items())},
                   tuple(sorted(text_paths)), {k: tuple(sorted(v, key=repr)) for k, v in sorted(regexes.items())},
                   tuple(sorted(instants)), max_steps)

    def strings(self) -> list[str]:
        """Every string worth keeping whole when a counterexample is shrunk."""
        out = set(self.phrases) | set(self.segments) | set(self.patterns)
        for vals in self.values.values():
            out.update(v for v in vals if isinstance(v, str))
        return sorted(out)


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
    if isinstance(lit, (A.Date, A.DateTime)):
        base = when_value(lit)
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
    return set()
