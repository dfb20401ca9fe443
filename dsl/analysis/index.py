"""Cheap, sound pruning: which rules certainly cannot apply together.

Each rule gets a signature from the conjuncts that its condition requires (scope,
selector and ``if`` flattened, and ``not unless``): its window; for each field, the set of
values an ``==``/``in`` conjunct allows and the interval numeric comparisons allow; the
atoms it requires true and those it requires false; the fields it requires present or
absent. Two rules whose signatures conflict can never apply together, so no solver call
is spent on them. The test is one-sided: compatible signatures prove nothing.

Category patterns never prune: a path can hold any number of patterns (`Knives > Swords`
matches both ``category 'Knives'`` and ``category 'Swords'``).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import attrs

from ..model import RuleInfo
from ..syntax import ast as A
from . import timeline as TL
from .world import _date_dependent, _items, atom_key

DAY = TL.DAY_US


@attrs.frozen
class Signature:
    lo: int | None
    hi: int | None
    tz: str
    eq: dict[tuple[str, ...], frozenset[Any]] = attrs.field(eq=False)
    ranges: dict[tuple[str, ...], tuple[Any, bool, Any, bool]] = attrs.field(eq=False)
    pos: frozenset[Any] = attrs.field(eq=False)
    neg: frozenset[Any] = attrs.field(eq=False)
    present: frozenset[tuple[str, ...]] = attrs.field(eq=False)
    absent: frozenset[tuple[str, ...]] = attrs.field(eq=False)
    empty: bool = False


def _value_key(lit: A.Scalar) -> Any:
    if isinstance(lit, A.Str):
        return ("s", lit.value)
    if isinstance(lit, A.Bool):
        return ("b", lit.value)
    if isinstance(lit, A.Num):
        return ("n", Fraction(lit.value))
    return None


def _path_of(node: A.Expr) -> tuple[str, ...] | None:
    path = getattr(node, "path", None)
    return path.parts if isinstance(path, A.Path) else None


def signature(rule: RuleInfo) -> Signature:
    return expr_signature(rule.condition, rule.tz, rule.start, rule.end, rule.timezone)


def expr_signature(cond: A.Expr, tz: Any, start: Any, end: Any, tz_key: str) -> Signature:
    lo = None if start is None else TL.to_us(start)
    hi = None if end is None else TL.to_us(end)
    parts = _Parts(tz)
    for c in A.conjuncts(cond):
        parts.add(c)
    empty = (lo is not None and hi is not None and lo >= hi) or parts.empty
    return Signature(lo, hi, tz_key, parts.eq, parts.ranges, frozenset(parts.pos), frozenset(parts.neg),
                     frozenset(parts.present), frozenset(parts.absent), empty)


Range = tuple[Any, bool, Any, bool]
"""An interval of numbers: ``(lo, lo_strict, hi, hi_strict)``, None for an open end."""

_RANGE_OF: dict[str, Callable[[Fraction], Range]] = {
    "<": lambda v: (None, False, v, True),
    "<=": lambda v: (None, False, v, False),
    ">": lambda v: (v, True, None, False),
    ">=": lambda v: (v, False, None, False),
    "==": lambda v: (v, False, v, False),
}


@attrs.define
class _Parts:
    """What ``expr_signature`` gathers from a condition's conjuncts, one at a time."""

    tz: Any
    eq: dict[tuple[str, ...], frozenset[Any]] = attrs.Factory(dict)
    ranges: dict[tuple[str, ...], Range] = attrs.Factory(dict)
    pos: set[Any] = attrs.Factory(set)
    neg: set[Any] = attrs.Factory(set)
    present: set[tuple[str, ...]] = attrs.Factory(set)
    absent: set[tuple[str, ...]] = attrs.Factory(set)
    empty: bool = False

    def add(self, c: A.Expr) -> None:
        if isinstance(c, A.Const):
            self.empty = self.empty or not c.value
        elif isinstance(c, A.Not):
            self._add_negated(c.operand)
        elif not isinstance(c, A.Or):
            self._add_positive(c)

    def _add_negated(self, inner: A.Expr) -> None:
        if isinstance(inner, (A.And, A.Or, A.Not)):
            return
        self.neg.add(atom_key(inner, self.tz))
        if isinstance(inner, A.Exists):
            self.absent.add(inner.path.parts)

    def _add_positive(self, c: A.Expr) -> None:
        self.pos.add(atom_key(c, self.tz))
        path = _path_of(c)
        if path is not None:
            self.present.add(path)
        if isinstance(c, A.Compare) and not _date_dependent(c):
            self._add_compare(c)
        elif isinstance(c, A.In) and not c.negated and not _date_dependent(c):
            keys = frozenset(k for k in (_value_key(i) for i in _items(c.items)) if k is not None)
            self._narrow(c.path.parts, keys)

    def _add_compare(self, c: A.Compare) -> None:
        path = c.path.parts
        key = _value_key(c.value)
        if c.op == "==" and key is not None:
            self._narrow(path, frozenset([key]))
        if isinstance(c.value, A.Num) and c.op in _RANGE_OF:
            self.ranges[path] = _intersect(self.ranges.get(path), _RANGE_OF[c.op](Fraction(c.value.value)))

    def _narrow(self, path: tuple[str, ...], keys: frozenset[Any]) -> None:
        self.eq[path] = self.eq.get(path, keys) & keys


def _intersect(a: Range | None, b: Range) -> Range:
    if a is None:
        return b
    lo, lo_s = a[0], a[1]
    if b[0] is not None and (lo is None or b[0] > lo or (b[0] == lo and b[1])):
        lo, lo_s = b[0], b[1]
    hi, hi_s = a[2], a[3]
    if b[2] is not None and (hi is None or b[2] < hi or (b[2] == hi and b[3])):
        hi, hi_s = b[2], b[3]
    return (lo, lo_s, hi, hi_s)


def _range_empty(r: Range) -> bool:
    lo, lo_s, hi, hi_s = r
    if lo is None or hi is None:
        return False
    return lo > hi or (lo == hi and (lo_s or hi_s))


def compatible(a: Signature, b: Signature) -> bool:
    """False only when the two can certainly not hold together."""
    if a.empty or b.empty:
        return False
    # a naive `at` reads differently per timezone (offsets differ by up to 26 h)
    margin = 0 if a.tz == b.tz else 2 * DAY
    if a.lo is not None and b.hi is not None and a.lo >= b.hi + margin:
        return False
    if b.lo is not None and a.hi is not None and b.lo >= a.hi + margin:
        return False
    if a.pos & b.neg or b.pos & a.neg:
        return False
    if a.present & b.absent or b.present & a.absent:
        return False
    for path, keys in a.eq.items():
        other = b.eq.get(path)
        if other is not None and not (keys & other):
            return False
    for path, r in a.ranges.items():
        other_r = b.ranges.get(path)
        if other_r is not None and _range_empty(_intersect(r, other_r)):
            return False
    return True


def self_consistent(s: Signature) -> bool:
    if s.empty or s.pos & s.neg or s.present & s.absent:
        return False
    if any(not keys for keys in s.eq.values()):
        return False
    return not any(_range_empty(r) for r in s.ranges.values())


class Index:
    """Signatures of all rules, grouped into classes that prune alike.

    Most of a signature cannot conflict with any other rule's: a start only with some
    rule's end, an atom required true only with one required false somewhere, a lower
    bound on a field only where some rule bounds it from above, and so on. Each signature
    is projected onto the parts that can conflict with *some* signature of the set, which
    changes no answer of ``compatible`` between rules of the set; rules with equal
    projections form a class, and a pair of classes is compared once, when some pair of
    their rules is first asked about (never all pairs up front: where most rules have a
    class of their own, say each its own ``seller == …``, that would be quadratic)."""

    def __init__(self, rules: list[RuleInfo]):
        self.sig = {r.qid: signature(r) for r in rules}
        sigs = list(self.sig.values())
        has_lo = any(s.lo is not None for s in sigs)
        has_hi = any(s.hi is not None for s in sigs)
        all_pos = frozenset().union(*[s.pos for s in sigs])
        all_neg = frozenset().union(*[s.neg for s in sigs])
        all_present = frozenset().union(*[s.present for s in sigs])
        all_absent = frozenset().union(*[s.absent for s in sigs])
        lo_paths = {p for s in sigs for p, r in s.ranges.items() if r[0] is not None}
        hi_paths = {p for s in sigs for p, r in s.ranges.items() if r[2] is not None}
        bounded = lo_paths & hi_paths

        def projected(s: Signature) -> Signature:
            lo = s.lo if has_hi else None
            hi = s.hi if has_lo else None
            return Signature(lo, hi, s.tz if lo is not None or hi is not None else "",
                             s.eq, {p: r for p, r in s.ranges.items() if p in bounded},
                             s.pos & all_neg, s.neg & all_pos, s.present & all_absent, s.absent & all_present,
                             s.empty)

        classes: dict[Any, int] = {}
        reps: list[Signature] = []
        self._class: dict[str, int] = {}
        for qid, s in self.sig.items():
            p = projected(s)
            key = (p.lo, p.hi, p.tz, tuple(sorted(p.eq.items(), key=lambda kv: kv[0])),
                   tuple(sorted(p.ranges.items(), key=lambda kv: kv[0])), p.pos, p.neg, p.present, p.absent, p.empty)
            if key not in classes:
                classes[key] = len(reps)
                reps.append(p)
            self._class[qid] = classes[key]
        self._reps = reps
        self._pairs: dict[tuple[int, int], bool] = {}

    def _classes_compatible(self, i: int, j: int) -> bool:
        key = (i, j) if i <= j else (j, i)
        found = self._pairs.get(key)
        if found is None:
            found = self._pairs[key] = compatible(self._reps[i], self._reps[j])
        return found

    def compatible(self, a: str, b: str) -> bool:
        return self._classes_compatible(self._class[a], self._class[b])

    def neighbours(self, qid: str, candidates: list[str]) -> list[str]:
        """The candidates (in their order) that may apply together with ``qid``."""
        k = self._class[qid]
        cls = self._class
        return [c for c in candidates if c != qid and self._classes_compatible(k, cls[c])]
