"""RE2 patterns (the supported subset, parsed by ``dsl.regex_syntax``) as z3 regular
expressions, for the analysis of ``matches``."""

from __future__ import annotations

import z3

from ..regex_syntax import WORD, Alt, Chars, CharSet, Node, Pattern, Repeat, Seq, Unsupported, edge, subset

Z3_MAX_CP = 0x2FFFF
"""z3's strings hold code points up to U+2FFFF."""


def charset_to_z3(cs: CharSet) -> z3.ReRef:
    parts = [z3.Range(chr(lo), chr(min(hi, Z3_MAX_CP))) for lo, hi in cs.ranges if lo <= Z3_MAX_CP]
    if not parts:
        return z3.Empty(z3.ReSort(z3.StringSort()))
    return parts[0] if len(parts) == 1 else z3.Union(*parts)


def _to_z3(node: Node) -> z3.ReRef:
    if isinstance(node, Chars):
        return charset_to_z3(node.set)
    if isinstance(node, Seq):
        if not node.items:
            return z3.Re(z3.StringVal(""))
        parts = [_to_z3(i) for i in node.items]
        return parts[0] if len(parts) == 1 else z3.Concat(*parts)
    if isinstance(node, Alt):
        parts = [_to_z3(i) for i in node.items]
        return parts[0] if len(parts) == 1 else z3.Union(*parts)
    if isinstance(node, Repeat):
        inner = _to_z3(node.item)
        if node.max is None:
            if node.min == 0:
                return z3.Star(inner)
            if node.min == 1:
                return z3.Plus(inner)
            return z3.Concat(z3.Loop(inner, node.min, node.min), z3.Star(inner))
        return z3.Loop(inner, node.min, node.max) if node.max > 0 else z3.Re(z3.StringVal(""))
    raise Unsupported("an anchor in the middle of the pattern")


def search_regex(pattern: Pattern, anything: z3.ReRef) -> z3.ReRef:
    """The z3 language of the texts in which the pattern matches somewhere; ``anything``
    is the language of all texts (the analysis passes the star of its alphabet)."""
    empty = z3.Re(z3.StringVal(""))
    word, non_word = charset_to_z3(WORD), charset_to_z3(WORD.complement())
    alts = []
    for b in pattern.branches:
        parts = []
        if b.word_start:
            first_is_word = subset(edge(b.body, "first")[0], WORD)
            # at a boundary the neighbour is of the other kind, or the text starts there
            other = non_word if first_is_word else word
            if b.start:
                if not first_is_word:
                    alts.append(z3.Empty(z3.ReSort(z3.StringSort())))
                    continue
            else:
                before = z3.Concat(anything, other)
                parts.append(z3.Union(empty, before) if first_is_word else before)
        elif not b.start:
            parts.append(anything)
        parts.append(_to_z3(b.body))
        if b.word_end:
            last_is_word = subset(edge(b.body, "last")[0], WORD)
            other = non_word if last_is_word else word
            if b.end:
                if not last_is_word:
                    alts.append(z3.Empty(z3.ReSort(z3.StringSort())))
                    continue
            else:
                after = z3.Concat(other, anything)
                parts.append(z3.Union(empty, after) if last_is_word else after)
        elif not b.end:
            parts.append(anything)
        alts.append(parts[0] if len(parts) == 1 else z3.Concat(*parts))
    return alts[0] if len(alts) == 1 else z3.Union(*alts)
