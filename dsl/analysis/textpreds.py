"""Text predicates on one piece of text, and the facts that relate them.

A *piece* is one string of a listing that ``mentions``/``contains``/``matches`` read: a
title, a description, one tag, one element of a list-valued field. A predicate on a piece
is ``Pred("mention", p)`` (the normalised phrase ``p`` occurs with word boundaries in the
normalised, white-space-collapsed piece), ``Pred("contains", n)`` (the normalised needle
``n`` is a substring of the normalised piece, white space collapsed there too but kept at
the ends) or ``Pred("regex", pattern)`` (an RE2 search on the raw piece). Their concrete meaning is
``dsl.text``'s, called here directly, so the analysis can never disagree with the evaluators
about a single piece.

Why mentions and contains need no string solver
-----------------------------------------------
Each non-regex predicate ``j`` has a *general witness* ``w_j``: a string that satisfies
``j`` and, among the other predicates, exactly those that every piece satisfying ``j``
satisfies. For a phrase it is the phrase itself: any text that mentions ``p`` contains
``p`` (normalised, white space collapsed, as ``contains`` reads it too) with a boundary
wherever ``p``'s own end needs one, so every phrase and every needle found inside ``p`` is
found in the text too. For a needle it is the needle
between two word characters that occur in no phrase or needle (``xneedlex``), which kills
every phrase occurrence that leans on the needle's ends. So ``j`` *implies* ``i`` exactly
when ``w_j`` satisfies ``i`` ("whoever mentions 'carved ivory' mentions 'ivory'"), and the
sets of predicates one piece can satisfy are exactly the sets closed under these
implications: the pieces ``w_j`` joined by a separator character that occurs in no phrase
or needle and is neither a word character nor white space realise any closed set, since
no occurrence of a phrase or needle can straddle the separator and the separator is a
boundary. Several pieces satisfy the union of their sets, which is closed too. So for
``mentions`` and ``contains`` the analysis only needs Boolean variables and implications,
and the realisation is checked again with ``dsl.text`` before it is used.

Regex predicates have no general witness; a field that a ``matches`` of the question reads
is modelled with z3 strings instead (``dsl.analysis.strings``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import attrs

from .. import regex_syntax as RS
from .. import text as T


@attrs.frozen(order=True)
class Pred:
    """A predicate on one piece of text."""

    kind: str  # "mention" | "contains" | "regex"
    text: str  # the normalised phrase or needle, or the pattern
    icase: bool = False

    def describe(self) -> str:
        if self.kind == "mention":
            return f"mentions {self.text!r}"
        if self.kind == "contains":
            return f"contains {self.text!r}"
        return f"matches /{self.text}/{'i' if self.icase else ''}"

    @property
    def trivial(self) -> bool:
        """True on every piece (``contains ''``)."""
        return self.kind == "contains" and self.text == ""


def holds_on(pred: Pred, raw: str) -> bool:
    """Whether the raw piece satisfies the predicate (``dsl.text``'s meaning)."""
    if pred.kind == "mention":
        return T.phrase_matches(T.normalize_text(raw), pred.text)
    if pred.kind == "contains":
        return T.contains(raw, pred.text)
    return T.regex_search(T.compile_regex(pred.text, pred.icase), raw)


def needs_boundary(ch: str) -> bool:
    """A word character of a spaced script: the only kind of neighbour that blocks a
    phrase end needing a boundary (``dsl.text``)."""
    return T.is_word_char(ch) and not T.is_spaceless_script(ch)


PAD_CANDIDATES = "xqzjkvwyfgbhpmdtnrlcsaeiouXжюψ"
SEPARATOR_CANDIDATES = ";|/·•,!?#%&*+=~^<>\"'()[]{}@$\\"


@attrs.frozen
class PredTable:
    """Facts about all the non-regex predicates of an analysis: the general witness of each
    and what it implies."""

    preds: tuple[Pred, ...]
    witness: dict[Pred, str] = attrs.field(eq=False)
    implied: dict[Pred, frozenset[Pred]] = attrs.field(eq=False)
    unwitnessed: frozenset[Pred] = attrs.field(eq=False)
    separator: str | None = attrs.field(eq=False)

    @staticmethod
    def build(preds: Iterable[Pred]) -> PredTable:
        plain = tuple(sorted({p for p in preds if p.kind != "regex"}))
        constant_chars = set("".join(p.text for p in plain))
        # normalisation leaves a pad and a separator as they are, so they never form a
        # constant's character (PAD_CANDIDATES holds an 'X' that folds to 'x')
        pad = next((c for c in PAD_CANDIDATES
                    if c not in constant_chars and needs_boundary(c) and T.normalize(c) == c), None)
        sep = next((c for c in SEPARATOR_CANDIDATES if c not in constant_chars), None)
        witness: dict[Pred, str] = {}
        unwitnessed: set[Pred] = set()
        for p in plain:
            if p.trivial:
                witness[p] = ""
                continue
            if p.kind == "mention":
                w = p.text
            elif pad is not None:
                w = pad + p.text + pad
            else:
                w = p.text
                unwitnessed.add(p)
            if not holds_on(p, w):
                unwitnessed.add(p)
            witness[p] = w
        phrases = [p for p in plain if p.kind == "mention"]
        needles = [p for p in plain if p.kind == "contains"]
        matcher = T.PhraseMatcher(frozenset(p.text for p in phrases))
        by_text = {p.text: p for p in phrases}
        implied: dict[Pred, frozenset[Pred]] = {}
        for p in plain:
            w = witness[p]
            found = {by_text[t] for t in matcher.find(T.normalize_text(w))}
            found.update(n for n in needles if T.contains(w, n.text))
            found.discard(p)
            implied[p] = frozenset(found)
        return PredTable(plain, witness, implied, frozenset(unwitnessed), sep)


def realise_piece(preds_true: Sequence[Pred], question_preds: Iterable[Pred], table: PredTable,
                  avoid: Iterable[str] = ()) -> str | None:
    """One raw piece that satisfies every predicate of ``preds_true`` and, among
    ``question_preds``, no other (trivial ones aside); it differs from every string in
    ``avoid``. None when no such string was found (the caller reports it)."""
    qp = [p for p in question_preds if p.kind != "regex"]
    want = set(preds_true)
    avoid = set(avoid)
    maximal = [p for p in preds_true if not p.trivial and not any(
        p in table.implied.get(o, ()) and o != p and o not in table.implied.get(p, ()) for o in preds_true)]
    maximal = sorted(set(maximal), key=lambda p: (-len(p.text), p.text))

    def ok(raw: str) -> bool:
        got = {p for p in qp if holds_on(p, raw)}
        return {p for p in got if not p.trivial} == {p for p in want if not p.trivial} and raw not in avoid

    return next((raw for raw in _piece_candidates(maximal, table) if ok(raw)), None)


def _piece_candidates(maximal: Sequence[Pred], table: PredTable) -> list[str]:
    """The strings ``realise_piece`` tries, in order: the ``maximal`` predicates' texts (or
    their general witnesses) joined by a few separators, then variants of those."""
    options: list[list[str]] = []
    for p in maximal:
        alts = [p.text]
        if table.witness.get(p) not in (None, p.text):
            alts.append(table.witness[p])
        options.append(alts)
    seps = [" ", ", ", " / "] + ([table.separator] if table.separator else [])
    candidates: list[str] = []
    if not maximal:
        candidates = ["", "-", "n/a", "…"]
    else:
        for sep in seps:
            for variant in range(2):
                parts = [alts[min(variant, len(alts) - 1)] for alts in options]
                candidates.append(sep.join(parts))
    extra = []
    for c in candidates:
        if table.separator:
            extra.append(c + table.separator)
        extra.append(c.upper())
    return candidates + extra


@functools.lru_cache(maxsize=4096)
def regex_reason(pattern: str, icase: bool) -> str | None:
    """Why a pattern is outside the translated subset, or None."""
    return RS.check_supported(pattern, icase)
