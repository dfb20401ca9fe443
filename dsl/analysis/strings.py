"""z3 strings for the fields that a ``matches`` of the question reads.

A regular expression has no general witness (``dsl.analysis.textpreds``), so a field that
a ``matches`` in the question reads is modelled piece by piece with z3 strings: ``R[k]``,
the raw piece (what ``matches`` and ``==`` read), and, when ``mentions``/``contains`` read
the field too, ``T[k]``, the normalised piece.

The alphabet. Every string is drawn from a finite alphabet: the characters of the
constants involved (literals, their normalised forms, phrases, needles) plus, for each class
of characters that the question can tell apart (the character classes of the patterns,
crossed with "word character of a spaced script", the only property a phrase boundary
looks at), one representative that is not a constant character. This loses nothing: in
any real listing, replacing every non-constant character by the representative of its
class changes no predicate (no constant can occur across a replaced character, and every
class test gives the same answer), so a question with a real answer has one over this
alphabet. A phrase boundary is then "the neighbour is one of the alphabet's characters
that are not word characters of a spaced script, or there is no neighbour": exact.

Raw and normalised text. ``matches`` reads the raw text and ``mentions``/``contains`` the
normalised text (``dsl.text``: NFKC_Casefold, ignorables removed, punctuation folded,
white space collapsed), which z3 cannot express. The first solve leaves ``R`` and ``T``
independent (a sound over-approximation: an "unsat" is final); a "sat" is then confirmed
by solving again with ``R == T`` and ``T`` a normal form, made of characters that
normalisation leaves alone, with no two spaces in a row (an under-approximation whose
models are real listings: zero-width spaces, soft hyphens, U+2019 and U+02BC are never in
it, so a word boundary in ``T`` is one in the evaluators' normalised text). When the first
is sat and the second unsat, the analysis cannot tell, and says so (P399).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable

import attrs
import z3

from .. import regex_syntax as RS
from .. import text as TX
from . import regex as RX
from .textpreds import Pred, needs_boundary, regex_reason
from .world import LIST, STR, Field


def _stable(c: str) -> bool:
    return TX.normalize(c) == c and c.isprintable()


def _ok_char(cp: int) -> bool:
    return not (0xD800 <= cp <= 0xDFFF) and cp <= RX.Z3_MAX_CP


def alphabet(constants: set[str], charsets: list[RS.CharSet], boundary: bool) -> list[str]:
    """Constant characters plus one representative (outside the constants) of each class."""
    chars = {c for c in constants if _ok_char(ord(c))}
    chars.add(" ")
    wants: list[bool | None] = [True, False] if boundary else [None]
    for intervals in _classes(charsets):
        for want in wants:
            found = _representative(intervals, constants, want)
            if found:
                chars.add(found)
    return sorted(chars)


def unheld_class(charsets: list[RS.CharSet]) -> bool:
    """Whether ``charsets`` tell apart a class of characters none of which z3's strings
    hold (all beyond U+2FFFF: ``/\\x{30000}/``): the alphabet would have no representative
    of it, and a pattern that needs one would seem never to match."""
    return any(not any(lo <= RX.Z3_MAX_CP and not (0xD800 <= lo and min(hi, RX.Z3_MAX_CP) <= 0xDFFF)
                       for lo, hi in intervals)
               for intervals in _classes(charsets))


def _classes(charsets: list[RS.CharSet]) -> Iterable[list[tuple[int, int]]]:
    """The classes of code points that ``charsets`` tell apart, each as its intervals."""
    points = {0, RS.MAX_CP + 1}
    for cs in charsets:
        for lo, hi in cs.ranges:
            points.add(lo)
            points.add(hi + 1)
    bounds = sorted(points)
    by_sig: dict[tuple[bool, ...], list[tuple[int, int]]] = defaultdict(list)
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1] - 1
        by_sig[tuple(lo in cs for cs in charsets)].append((lo, hi))
    return by_sig.values()


def _representative(intervals: list[tuple[int, int]], constants: set[str], want: bool | None) -> str | None:
    """The first character of the class outside the constants (needing a phrase boundary
    when ``want`` says so), a stable printable one if there is any."""
    for prefer in (True, False):
        for lo, hi in intervals:
            for cp in range(lo, min(hi, RX.Z3_MAX_CP) + 1):
                if _ok_char(cp) and _fits(chr(cp), constants, want, prefer):
                    return chr(cp)
    return None


def _fits(c: str, constants: set[str], want: bool | None, prefer: bool) -> bool:
    if c in constants:
        return False
    if want is not None and needs_boundary(c) != want:
        return False
    return not prefer or (_stable(c) and unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn"))


def _union_chars(chars: Iterable[str]) -> z3.ReRef:
    cps = sorted({ord(c) for c in chars})
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    parts = [z3.Range(chr(lo), chr(hi)) for lo, hi in ranges]
    if not parts:
        return z3.Empty(z3.ReSort(z3.StringSort()))
    return parts[0] if len(parts) == 1 else z3.Union(*parts)


def decode(model: z3.ModelRef, s: z3.SeqRef) -> str:
    """A z3 string's value, character by character (no escape ambiguity)."""
    n = model.eval(z3.Length(s), model_completion=True).as_long()
    out = []
    for i in range(n):
        code = model.eval(z3.StrToCode(z3.SubString(s, i, 1)), model_completion=True).as_long()
        out.append(chr(code))
    return "".join(out)


class StringMode:
    """The string encoding of the fields a question's ``matches`` read."""

    def __init__(self, fields: dict[tuple[str, ...], tuple[Field, set[Pred]]]):
        self.constraints: list[z3.BoolRef] = []
        self.refinements: list[z3.BoolRef] = []
        self.reasons: list[str] = []
        """Why the second solve's model may be missed (``refinements``)."""
        self.approximate: list[str] = []
        """Why even the first solve over-approximates (a listing it finds may not hold)."""
        self.raw: dict[tuple[str, ...], list[z3.SeqRef]] = {}
        self.count: dict[tuple[str, ...], z3.ArithRef] = {}
        constants: set[str] = set()
        charsets: list[RS.CharSet] = []
        boundary = False
        for f, preds in fields.values():
            for lit in f.literals:
                constants.update(lit, TX.normalize(lit), TX.normalize_text(lit), TX.normalize_needle(lit))
            for p in sorted(preds):
                if p.kind == "regex":
                    if regex_reason(p.text, p.icase) is None:
                        charsets.extend(RS.parse(p.text, p.icase).charsets)
                else:
                    constants.update(p.text)
                    boundary = boundary or p.kind == "mention"
        # beyond U+2FFFF the patterns are left free (an over-approximation), and a listing
        # found is replayed: where it does not hold, the question is undecided (P399)
        self.unheld = unheld_class(charsets)
        if self.unheld:
            self.approximate.append("a regular expression here tells apart characters beyond U+2FFFF, which the "
                                    "solver's strings do not hold")
            charsets = []
        sigma = alphabet(constants, charsets, boundary)
        self.alphabet = sigma
        any_char = _union_chars(sigma)
        anything = z3.Star(any_char)
        not_blocking = _union_chars(c for c in sigma if not needs_boundary(c))
        normal_chars = [c for c in sigma if _stable(c) and not c.isspace()]
        word = _union_chars(normal_chars)
        for _path, (f, preds) in sorted(fields.items()):
            self._field(f, preds, anything, not_blocking, word)

    def _field(self, f: Field, preds: set[Pred], anything: z3.ReRef, not_blocking: z3.ReRef,
               word: z3.ReRef) -> None:
        name = f.name
        n = max(1, len(preds))
        ordered = sorted(preds)
        plain = [p for p in ordered if p.kind != "regex"]
        has_mention = any(p.kind == "mention" for p in plain)
        ws_needle = [p for p in plain if p.kind == "contains" and p.text != p.text.strip()]
        raw = [z3.String(f"R[{name}][{k}]") for k in range(n)]
        norm = [z3.String(f"T[{name}][{k}]") for k in range(n)] if plain else []
        # `contains` and `mentions` both read a run of white space as one space, but
        # `mentions` strips the ends and `contains` keeps them: a needle with white space at
        # an end, on a field that `mentions` reads too, gets its own, unstripped view.
        spaced = [z3.String(f"N[{name}][{k}]") for k in range(n)] if has_mention and ws_needle else []
        count = z3.Int(f"count[{name}]")
        self.raw[f.path] = raw
        self.count[f.path] = count
        v = _Pieces(raw, norm, spaced, count, has_mention, ws_needle)
        self._shape(f, v, n, anything)
        self._literals(f, v)
        for p in ordered:
            if p.kind == "regex" and (self.unheld or regex_reason(p.text, p.icase) is not None):
                continue  # left free: its atom's reason (or ``reasons``) is reported if it matters
            terms = [z3.And(count > k, _piece_holds(p, v, k, anything, not_blocking)) for k in range(n)]
            self.constraints.append(f.pred(p) == z3.Or(*terms))
        if norm:
            self._refine(name, v, n, word)

    def _shape(self, f: Field, v: _Pieces, n: int, anything: z3.ReRef) -> None:
        """How many pieces the field has, by its kind; every piece over the alphabet."""
        c = self.constraints
        c.append(z3.Implies(f.kind == STR, v.count == 1))
        c.append(z3.Implies(f.kind == LIST, z3.And(v.count >= 0, v.count <= n)))
        c.append(z3.Implies(z3.And(f.kind != STR, f.kind != LIST), v.count == 0))
        c.append(f.has_piece == (v.count >= 1))
        for s in v.raw + v.norm + v.spaced:
            c.append(z3.InRe(s, anything))

    def _literals(self, f: Field, v: _Pieces) -> None:
        """A text field that is literal ``i`` (``sel``) has its text, and its views'."""
        c = self.constraints
        view = TX.normalize_text if v.has_mention else TX.normalize_needle
        for i, lit in enumerate(f.literals, start=1):
            c.append(z3.Implies(f.kind == STR, (f.sel == i) == (v.raw[0] == z3.StringVal(lit))))
            is_lit = z3.And(f.kind == STR, f.sel == i)
            if v.norm:
                c.append(z3.Implies(is_lit, v.norm[0] == z3.StringVal(view(lit))))
            if v.spaced:
                c.append(z3.Implies(is_lit, v.spaced[0] == z3.StringVal(TX.normalize_needle(lit))))

    def _refine(self, name: str, v: _Pieces, n: int, word: z3.ReRef) -> None:
        """The second solve's constraints: the raw piece is its own normal form."""
        for k in range(n):
            self.refinements.append(v.raw[k] == v.norm[k])
            if v.spaced:
                self.refinements.append(v.spaced[k] == v.norm[k])
            if v.has_mention:
                collapsed = z3.Union(z3.Re(""), z3.Concat(z3.Plus(word),
                                                          z3.Star(z3.Concat(z3.Re(" "), z3.Plus(word)))))
                self.refinements.append(z3.InRe(v.norm[k], collapsed))
            else:  # white space collapsed, the ends kept: no two spaces in a row
                space = z3.Re(" ")
                self.refinements.append(z3.InRe(v.norm[k], z3.Concat(
                    z3.Option(space), z3.Star(z3.Concat(z3.Plus(word), space)), z3.Star(word))))
        self.reasons.append(f"`matches` reads the raw text of '{name}' while `mentions`/`contains` read its "
                            "normalised text, and no listing satisfying both was found")
        if v.spaced:
            self.reasons.append(f"`contains` {v.ws_needle[0].text!r} reads white space at the ends of '{name}', "
                                "which `mentions` strips")

    def pieces(self, model: z3.ModelRef, path: tuple[str, ...]) -> list[str]:
        n = model.eval(self.count[path], model_completion=True).as_long()
        return [decode(model, s) for s in self.raw[path][:n]]


@attrs.frozen
class _Pieces:
    """The z3 strings of one field: its raw pieces, their normalised views (when
    ``mentions``/``contains`` read the field), the unstripped views for needles with white
    space at an end, and how many pieces there are."""

    raw: list[z3.SeqRef]
    norm: list[z3.SeqRef]
    spaced: list[z3.SeqRef]
    count: z3.ArithRef
    has_mention: bool
    ws_needle: list[Pred]


def _piece_holds(p: Pred, v: _Pieces, k: int, anything: z3.ReRef, not_blocking: z3.ReRef) -> z3.BoolRef:
    """Predicate ``p`` on piece ``k``."""
    if p.kind == "regex":
        return z3.InRe(v.raw[k], RX.search_regex(RS.parse(p.text, p.icase), anything))
    if p.kind == "contains":
        return z3.Contains(v.spaced[k] if v.spaced and p in v.ws_needle else v.norm[k], z3.StringVal(p.text))
    return z3.InRe(v.norm[k], _mention_re(p.text, anything, not_blocking))


def _mention_re(phrase: str, anything: z3.ReRef, not_blocking: z3.ReRef) -> z3.ReRef:
    empty = z3.Re("")
    left = z3.Union(empty, z3.Concat(anything, not_blocking)) if needs_boundary(phrase[0]) else anything
    right = z3.Union(empty, z3.Concat(not_blocking, anything)) if needs_boundary(phrase[-1]) else anything
    return z3.Concat(left, z3.Re(z3.StringVal(phrase)), right)
