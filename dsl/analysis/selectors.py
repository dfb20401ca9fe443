"""Which rules may apply on one concrete listing: the rules filed by category segment or
by field value.

The analysis reads many concrete listings (each rule's sample, every model the solver
returns) and asks which rules apply on each. Asking every rule makes that quadratic in
the size of the set; most rules select a category, and a rule that requires ``category
'A > B'`` (or ``category in ['A', 'C > D']``) can only apply to a listing whose category
path holds a segment ``A`` (or ``A`` or ``C``), the first segment of one of its patterns.
So, as in the compiled evaluator (``dsl.evaluate.compiled``), each rule with such a
conjunct is filed under those first segments, and a listing's candidates are the rules
filed under the segments of its path plus the rules filed under none. A rule that
requires no category but a field equal to a value (``platform == 'taobao'``, ``seller in
['S-1', 'S-2']``: text, numbers, booleans) is filed under the field and each value, read
as ``semantics.compare_test`` reads ``==`` (a value of the literal's kind, equal to it: a
bool is not a number, ``1`` equals ``1.0``). A rule that requires neither but a phrase
(``mentions 'p'``, ``title mentions any [...]``) is filed under the text it reads and its
phrases, and a listing's text is searched for all of them in one pass
(``text.PhraseMatcher``, which answers exactly as ``mentions`` does).

The index is an over-approximation and nothing more: a rule it leaves out cannot apply
on the listing; a candidate is still decided by the reference evaluator's functions
(``concrete.Reader``). Which rules can apply *together* somewhere is
``dsl.analysis.index``'s question (two category patterns always can: a path may hold
both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..evaluate import semantics as S
from ..evaluate import values as V
from ..model import RuleInfo
from ..syntax import ast as A
from ..text import PhraseMatcher, category_segments


def category_keys(cond: A.Expr) -> frozenset[str] | None:
    """The first segments of the patterns of one category conjunct that ``cond`` requires
    (the conjunct with the fewest; ``semantics.category_keys``, the compiled evaluator's
    rule), or None when it requires none. An empty set: the conjunct never holds (only
    empty patterns, which match nothing)."""
    best: frozenset[str] | None = None
    for c in A.conjuncts(cond):
        keys = S.category_keys(c)
        if keys is not None and (best is None or len(keys) < len(best)):
            best = keys
    return best


ValueKey = S.IndexKey


def value_key(v: Any) -> ValueKey | None:
    """The key of a listing's value (None: no ``==`` on a text, number or bool holds)."""
    if isinstance(v, str):
        return ("text", v)
    if isinstance(v, bool):
        return ("bool", v)
    if V.is_number(v):
        return ("number", v)
    return None


def equality_keys(cond: A.Expr) -> tuple[tuple[str, ...], frozenset[ValueKey]] | None:
    """The path and the values of one ``PATH == literal`` or ``PATH in [...]`` conjunct
    (texts, numbers, booleans; ``semantics.equality_keys``) that ``cond`` requires, the one
    with the fewest values; None when it requires none."""
    best: tuple[tuple[str, ...], frozenset[ValueKey]] | None = None
    for c in A.conjuncts(cond):
        found = S.equality_keys(c)
        if found is not None and (best is None or len(found[1]) < len(best[1])):
            best = found
    return best


def phrase_keys(cond: A.Expr) -> tuple[S.Source, frozenset[str]] | None:
    """The text source (a field path, None for title, description and tags) and the
    normalised phrases of one ``mentions`` conjunct that ``cond`` requires (the one with
    the fewest phrases); None when it requires none."""
    best: tuple[S.Source, frozenset[str]] | None = None
    for c in A.conjuncts(cond):
        if isinstance(c, (A.Mentions, A.MentionsAny)):
            found = (c.path.parts if c.path is not None else None, S.mention_phrases(S.atom_texts(c)))
            if best is None or len(found[1]) < len(best[1]):
                best = found
    return best


class SelectorIndex:
    """The rules of a set filed under the first segments of the category they require, or
    else under a field and the values it must equal; ``candidates(listing)``
    over-approximates the rules that apply on the listing."""

    def __init__(self, rules: Iterable[RuleInfo]):
        by_segment: dict[str, list[str]] = {}
        by_value: dict[tuple[str, ...], dict[ValueKey, list[str]]] = {}
        by_phrase: dict[S.Source, dict[str, list[str]]] = {}
        fixed: list[str] = []
        for r in rules:
            keys = category_keys(r.condition)
            equal = equality_keys(r.condition) if keys is None else None
            said = phrase_keys(r.condition) if keys is None and equal is None else None
            if keys is not None:
                for k in sorted(keys):
                    by_segment.setdefault(k, []).append(r.qid)
            elif equal is not None:
                table = by_value.setdefault(equal[0], {})
                for v in equal[1]:
                    table.setdefault(v, []).append(r.qid)
            elif said is not None:
                phrases = by_phrase.setdefault(said[0], {})
                for p in said[1]:
                    phrases.setdefault(p, []).append(r.qid)
            else:
                fixed.append(r.qid)
        self._by_segment = {k: tuple(v) for k, v in by_segment.items()}
        self._by_value = {p: {k: tuple(v) for k, v in t.items()} for p, t in by_value.items()}
        self._by_phrase = {src: (PhraseMatcher(frozenset(t)), {k: tuple(v) for k, v in t.items()})
                           for src, t in by_phrase.items()}
        self._fixed = tuple(fixed)

    def candidates(self, listing: Mapping[str, Any]) -> set[str]:
        """Every rule that may apply on ``listing`` (whatever ``at``): the rules filed
        under nothing, those filed under a segment of the listing's category, under a
        field's value that the listing holds, or under a phrase that its text mentions."""
        out = set(self._fixed)
        if not isinstance(listing, dict):
            return out
        for s in category_segments(V.read_path(listing, ("category",))) or ():
            out.update(self._by_segment.get(s, ()))
        for path, table in self._by_value.items():
            key = value_key(V.read_path(listing, path))
            if key is not None:
                out.update(table.get(key, ()))
        for source, (matcher, filed) in self._by_phrase.items():
            for p in matcher.find_in_pieces(S.source_pieces(listing, source)):
                out.update(filed.get(p, ()))
        return out
