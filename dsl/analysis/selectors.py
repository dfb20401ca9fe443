"""Which rules may apply on one concrete listing: the rules filed by category segment.

The analysis reads many concrete listings (each rule's sample, every model the solver
returns) and asks which rules apply on each. Asking every rule makes that quadratic in
the size of the set; most rules select a category, and a rule that requires ``category
'A > B'`` (or ``category in ['A', 'C > D']``) can only apply to a listing whose category
path holds a segment ``A`` (or ``A`` or ``C``), the first segment of one of its patterns.
So, as in the compiled evaluator (``dsl.evaluate.compiled``), each rule with such a
conjunct is filed under those first segments, and a listing's candidates are the rules
filed under the segments of its path plus the rules filed under none.

The index is an over-approximation and nothing more: a rule it leaves out cannot apply
on the listing; a candidate is still decided by the reference evaluator's functions
(``concrete.Reader``). Which rules can apply *together* somewhere is
``dsl.analysis.index``'s question (two category patterns always can: a path may hold
both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..evaluate import values as V
from ..model import RuleInfo
from ..syntax import ast as A
from ..text import category_segments, pattern_segments


def category_keys(cond: A.Expr) -> frozenset[str] | None:
    """The first segments of the patterns of one category conjunct that ``cond`` requires
    (the conjunct with the fewest), or None when it requires none. An empty set: the
    conjunct never holds (only empty patterns, which match nothing)."""
    best: frozenset[str] | None = None
    for c in A.conjuncts(cond):
        keys = _conjunct_keys(c)
        if keys is not None and (best is None or len(keys) < len(best)):
            best = keys
    return best


def _conjunct_keys(c: A.Expr) -> frozenset[str] | None:
    if isinstance(c, A.Category):
        patterns = [c.pattern.value]
    elif isinstance(c, A.CategoryIn) and isinstance(c.items, A.ListLit) and all(
            isinstance(i, A.Str) for i in c.items.items):
        patterns = [i.value for i in c.items.items if isinstance(i, A.Str)]
    else:
        return None
    return frozenset(segs[0] for p in patterns if (segs := pattern_segments(p)))


class SelectorIndex:
    """The rules of a set filed under the first segments of the category they require;
    ``candidates(listing)`` over-approximates the rules that apply on the listing."""

    def __init__(self, rules: Iterable[RuleInfo]):
        by_segment: dict[str, list[str]] = {}
        fixed: list[str] = []
        for r in rules:
            keys = category_keys(r.condition)
            if keys is None:
                fixed.append(r.qid)
            for k in sorted(keys or ()):
                by_segment.setdefault(k, []).append(r.qid)
        self._by_segment = {k: tuple(v) for k, v in by_segment.items()}
        self._fixed = tuple(fixed)

    def candidates(self, listing: Mapping[str, Any]) -> set[str]:
        """Every rule that may apply on ``listing`` (whatever ``at``): the rules that
        require no category, and those filed under a segment of the listing's category."""
        out = set(self._fixed)
        segments = category_segments(V.read_path(listing, ("category",))) if isinstance(listing, dict) else None
        for s in segments or ():
            out.update(self._by_segment.get(s, ()))
        return out
