"""Text normalisation and matching, shared by the evaluators and the analysis.

Every comparison of text in the language goes through this module so that the reference
evaluator, the compiled evaluator and the consistency analysis can never disagree about
what ``mentions``, ``contains``, ``matches`` or ``category`` mean (spec section 4).

Normalisation (``normalize``) is Unicode's NFKC_Casefold: NFKC, then full case folding,
then NFKC again, with every Default_Ignorable_Code_Point removed (zero-width spaces and
joiners, soft hyphens, variation selectors, bidirectional controls); then the typographic
apostrophes (U+2018, U+2019, U+02BC, U+FF07) become ``'``, the curly double quotes ``"``,
and the hyphens and dashes U+2010..U+2015 and the minus sign U+2212 ``-``.  NFKC makes
full-width, ligature and compatibility forms equal to their plain forms, case folding
removes case (``ß`` folds to ``ss``), and the rest defeats the invisible characters and
look-alike punctuation that merchants use to slip past filters: "Bit\u200bcoin" and
"bit\u00adcoin" are "bitcoin", "Rhino’s horn" is "rhino's horn".  Every run of white
space then counts as one space, in ``mentions`` (``normalize_text``, ``normalize_phrase``:
ends stripped), ``contains`` (``normalize_needle``: ends kept, so ``' eth '`` wants its
spaces) and category segments (stripped).

All matching happens on whole normalised strings and never maps offsets back to the raw
text: NFKC and folding change lengths, so an offset in one is meaningless in the other.

Word boundaries (``phrase_matches``).  A *word character* is one of Unicode general
categories L, M, N or Pc.  An end of a phrase needs a boundary when the phrase's character
at that end is a word character that is not of a script written without spaces (Han,
Hiragana, Katakana, Thai, Lao, Khmer, Myanmar).  An end that needs a boundary matches only
when the neighbouring character of the text is not a word character of a spaced script
(or is the start or end of the piece): a spaceless-script character never needs a
boundary, on either side, so ``'bitcoin'`` is mentioned by ``"二手bitcoin矿机"`` (Unicode
word segmentation, UAX #29, breaks between Latin and Han too), but not by "bitcoins".  An
end that is a spaceless-script character, or not a word character at all, never needs
one: ``'比特币'`` is mentioned by ``"二手比特币矿机"``.

Results depend on the Unicode database of the running Python
(``unicodedata.unidata_version``); within one interpreter every function is pure and
deterministic.  Nothing here reads global mutable state apart from bounded
``functools.lru_cache`` caches, which are thread-safe in CPython.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import ahocorasick  # type: ignore[import-untyped, import-not-found, unused-ignore]
import attrs
import re2  # type: ignore[import-untyped, import-not-found, unused-ignore]

__all__ = [
    "CompiledRegex",
    "PhraseMatcher",
    "category_matches",
    "category_segments",
    "compile_regex",
    "DEFAULT_IGNORABLE_RANGES",
    "PUNCTUATION_FOLDS",
    "contains",
    "is_default_ignorable",
    "is_spaceless_script",
    "is_word_char",
    "mentions",
    "normalize",
    "normalize_needle",
    "normalize_phrase",
    "normalize_text",
    "pattern_segments",
    "phrase_matches",
    "regex_search",
]


# --------------------------------------------------------------------------- normalisation

# Default_Ignorable_Code_Point, as listed in Unicode's DerivedCoreProperties.txt, version
# 14.0.0 (the Unicode version of Python 3.11's unicodedata): 4,174 code points.  Python's
# unicodedata does not expose the property, nor does RE2 (it knows scripts and general
# categories only) or any installed package; the third-party `regex` module would, but
# from its own, newer Unicode database than the NFKC it would be paired with, and as one
# more dependency on the hot path.  DerivedCoreProperties.txt derives the property as
#   Other_Default_Ignorable_Code_Point + Cf + Variation_Selector - White_Space
#   - FFF9..FFFB (interlinear annotation) - 13430..1343F (Egyptian hieroglyph format)
#   - Prepended_Concatenation_Mark,
# and tests/test_text.py checks this table against that definition, computed from the
# running Python's general categories, so a newer Unicode version with more format
# characters is noticed.
DEFAULT_IGNORABLE_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x00AD, 0x00AD, "SOFT HYPHEN"),
    (0x034F, 0x034F, "COMBINING GRAPHEME JOINER"),
    (0x061C, 0x061C, "ARABIC LETTER MARK"),
    (0x115F, 0x1160, "HANGUL CHOSEONG FILLER..HANGUL JUNGSEONG FILLER"),
    (0x17B4, 0x17B5, "KHMER VOWEL INHERENT AQ..KHMER VOWEL INHERENT AA"),
    (0x180B, 0x180D, "MONGOLIAN FREE VARIATION SELECTOR ONE..THREE"),
    (0x180E, 0x180E, "MONGOLIAN VOWEL SEPARATOR"),
    (0x180F, 0x180F, "MONGOLIAN FREE VARIATION SELECTOR FOUR"),
    (0x200B, 0x200F, "ZERO WIDTH SPACE..RIGHT-TO-LEFT MARK (ZWSP, ZWNJ, ZWJ, LRM, RLM)"),
    (0x202A, 0x202E, "LEFT-TO-RIGHT EMBEDDING..RIGHT-TO-LEFT OVERRIDE"),
    (0x2060, 0x2064, "WORD JOINER..INVISIBLE PLUS"),
    (0x2065, 0x2065, "<reserved-2065>"),
    (0x2066, 0x206F, "LEFT-TO-RIGHT ISOLATE..NOMINAL DIGIT SHAPES"),
    (0x3164, 0x3164, "HANGUL FILLER"),
    (0xFE00, 0xFE0F, "VARIATION SELECTOR-1..VARIATION SELECTOR-16"),
    (0xFEFF, 0xFEFF, "ZERO WIDTH NO-BREAK SPACE (byte order mark)"),
    (0xFFA0, 0xFFA0, "HALFWIDTH HANGUL FILLER"),
    (0xFFF0, 0xFFF8, "<reserved-FFF0>..<reserved-FFF8>"),
    (0x1BCA0, 0x1BCA3, "SHORTHAND FORMAT LETTER OVERLAP..SHORTHAND FORMAT UP STEP"),
    (0x1D173, 0x1D17A, "MUSICAL SYMBOL BEGIN BEAM..MUSICAL SYMBOL END PHRASE"),
    (0xE0000, 0xE0000, "<reserved-E0000>"),
    (0xE0001, 0xE0001, "LANGUAGE TAG"),
    (0xE0002, 0xE001F, "<reserved-E0002>..<reserved-E001F>"),
    (0xE0020, 0xE007F, "TAG SPACE..CANCEL TAG"),
    (0xE0080, 0xE00FF, "<reserved-E0080>..<reserved-E00FF>"),
    (0xE0100, 0xE01EF, "VARIATION SELECTOR-17..VARIATION SELECTOR-256"),
    (0xE01F0, 0xE0FFF, "<reserved-E01F0>..<reserved-E0FFF>"),
)

# The punctuation that the spec folds after NFKC_Casefold (section 4): typographic and
# modifier apostrophes to ', curly double quotes to ", hyphens, dashes and minus to -.
# (U+FF07 FULLWIDTH APOSTROPHE is already ' after NFKC; it is listed as the spec lists it.)
PUNCTUATION_FOLDS: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\uff07": "'",
    "\u201c": '"', "\u201d": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
}  # fmt: skip


def is_default_ignorable(ch: str) -> bool:
    """Whether ``ch`` is a Default_Ignorable_Code_Point (``DEFAULT_IGNORABLE_RANGES``)."""
    cp = ord(ch)
    i = bisect.bisect_right(_IGNORABLE_STARTS, cp) - 1
    return i >= 0 and cp <= _IGNORABLE_ENDS[i]


_IGNORABLE_STARTS = tuple(lo for lo, _, _ in DEFAULT_IGNORABLE_RANGES)
_IGNORABLE_ENDS = tuple(hi for _, hi, _ in DEFAULT_IGNORABLE_RANGES)


def _char_class(ranges: Iterable[tuple[int, int]]) -> str:
    """A regular-expression class of the ranges, adjacent ones merged (`re` tests a class
    range by range, so fewer is faster)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return "".join(re.escape(chr(lo)) + ("-" + re.escape(chr(hi)) if hi > lo else "") for lo, hi in merged)


def _plane_hulls(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    hulls: dict[int, tuple[int, int]] = {}
    for lo, hi in ranges:
        low, high = hulls.get(lo >> 16, (lo, hi))
        hulls[lo >> 16] = (min(low, lo), max(high, hi))
    return sorted(hulls.values())


# Python's `re` is used here only for these fixed character classes (never for a policy's
# pattern): a search is one C loop over the text.  Every normalised text is searched once
# for what there may be to remove or fold: the BMP part exactly (`re` tests a class of BMP
# characters with a bitmap), the ignorables beyond U+FFFF through the hull of their ranges
# in each plane (U+1BCA0..U+1D17A, U+E0000..U+E0FFF), since `re` tests a class beyond the
# BMP range by range, several times slower; a hit there that is not ignorable (a musical
# symbol) only costs the exact search.
_IGNORABLE_BMP = [(lo, hi) for lo, hi, _ in DEFAULT_IGNORABLE_RANGES if hi <= 0xFFFF]
_IGNORABLE_ASTRAL = [(lo, hi) for lo, hi, _ in DEFAULT_IGNORABLE_RANGES if lo > 0xFFFF]
_FOLD_RANGES = [(ord(c), ord(c)) for c in PUNCTUATION_FOLDS]
_SPECIAL_BMP_RE = re.compile(f"[{_char_class(_IGNORABLE_BMP + _FOLD_RANGES)}]")
_MAYBE_SPECIAL_ASTRAL_RE = re.compile(f"[{_char_class(_plane_hulls(_IGNORABLE_ASTRAL))}]")
_IGNORABLE_BMP_RE = re.compile(f"[{_char_class(_IGNORABLE_BMP)}]")
_IGNORABLE_RE = re.compile(f"[{_char_class(_IGNORABLE_BMP + _IGNORABLE_ASTRAL)}]+")
_FOLDS = tuple(PUNCTUATION_FOLDS.items())
"""Folded with one `str.replace` each where present: faster than `re.sub`, whose
replacement costs a call per hit, or `str.translate`, a dictionary look-up per character."""


def _nfkc_casefold(s: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", s).casefold())


def normalize(s: str) -> str:
    """Return ``s`` normalised as the spec's section 4 says: NFKC, Unicode full case
    folding, NFKC again, every Default_Ignorable_Code_Point removed (zero-width spaces and
    joiners, soft hyphens, variation selectors, …), then ``PUNCTUATION_FOLDS``.

    Ignorables are removed before NFKC, so that "e\\u200b\\u0301" composes to "é" like
    "e\\u0301".  Done in that order only when the text has one: they are starters that
    compose with nothing and NFKC maps them to ignorables only, so they survive the first
    pass and one search afterwards finds both them and the punctuation to fold, which NFKC
    may have produced (U+FE58 SMALL EM DASH is U+2014 after NFKC).  Folding comes last; its
    results are ASCII starters that compose with nothing, so the result is stable:
    ``normalize(normalize(s)) == normalize(s)``.

    Uncached on purpose: listing text is untrusted and may be large, so memoising it would
    let merchants fill memory.  ASCII text takes a fast path, because NFKC leaves ASCII
    unchanged, folding ASCII is lower-casing, and no ASCII character is ignorable or folded;
    this is the common case on the hot path.  White space is left as it is.
    """
    if s.isascii():
        return s.lower()
    out = _nfkc_casefold(s)
    special = _SPECIAL_BMP_RE.search(out)
    astral = _MAYBE_SPECIAL_ASTRAL_RE.search(out)
    if special is None and astral is None:
        return out
    if astral is not None:  # (no ignorable in `out` means none in `s`, and the other way)
        out = _nfkc_casefold(_IGNORABLE_RE.sub("", s))
    elif special is not None and _IGNORABLE_BMP_RE.search(out, special.start()) is not None:
        out = _nfkc_casefold(_IGNORABLE_BMP_RE.sub("", s))
    for char, folded in _FOLDS:
        if char in out:
            out = out.replace(char, folded)
    return out


def _collapse_keeping_ends(s: str) -> str:
    """Every run of white space in ``s`` replaced by one space, the ends kept (as one
    space each) rather than stripped."""
    core = " ".join(s.split())
    if not core:
        return " " if s else ""
    lead = " " if s[0].isspace() else ""
    trail = " " if s[-1].isspace() else ""
    return lead + core + trail if lead or trail else core


def normalize_needle(s: str) -> str:
    """Return ``normalize(s)`` with every run of white space replaced by one space, not
    stripped: how ``contains`` reads both its needle and the text (spec section 4), so
    ``contains 'plastic straw'`` is found in "Plastic   straws" and ``contains ' eth '``
    still wants a space (or any white space) on each side."""
    if s.isascii():  # the common case on the hot path: ``normalize`` is lower-casing
        low = s.lower()
        # Printable ASCII holds no white space but the space (the others are control
        # characters): without two spaces in a row, there is nothing to collapse.
        if "  " not in low and low.isprintable():
            return low
        return _collapse_keeping_ends(low)
    return _collapse_keeping_ends(normalize(s))


def normalize_text(s: str) -> str:
    """Return ``normalize(s)`` with every run of white space replaced by one space.

    This is how a piece of listing text is prepared for ``mentions``: "Mining   Rig" and
    "Mining\\u3000Rig" both become "mining rig".  White space is what ``str.split`` splits
    on (Unicode White_Space plus the ASCII separators U+001C..U+001F).  The ends are
    stripped; that cannot change a match, since a white space character is not a word
    character and the start and end of a piece already count as boundaries.
    """
    if s.isascii():  # normalize's fast path, inlined: this runs on every listing
        return " ".join(s.lower().split())
    return " ".join(normalize(s).split())


# Phrases, category segments and the category paths of listings are short and repeat a
# lot (a marketplace has a few thousand categories), so a bounded cache pays; longer input
# bypasses it so that untrusted text cannot crowd it out or hold much memory.
_PHRASE_CACHE_MAX_LEN = 128


@functools.lru_cache(maxsize=8192)
def _normalize_short_phrase(s: str) -> str:
    return normalize_text(s)


def normalize_phrase(s: str) -> str:
    """Return the normalised form of a phrase or a category segment.

    The same string as ``normalize_text(s)`` (normalised, white space collapsed, ends
    stripped), memoised for short strings.  Policies normalise their ``mentions`` phrases
    with this at compile time.  ``contains`` needles must NOT use it: they are normalised
    with ``normalize_needle``, which collapses white space but keeps it at the ends.
    """
    if len(s) <= _PHRASE_CACHE_MAX_LEN:
        return _normalize_short_phrase(s)
    return normalize_text(s)


# --------------------------------------------------------------------------- characters

_WORD_CATEGORIES = frozenset(
    {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc"}
)
_ASCII_WORD_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
)


def is_word_char(ch: str) -> bool:
    """Whether the single character ``ch`` is a word character: general category L*, M*,
    N* or Pc (spec section 4).

    Combining marks (M*) count, so a phrase never ends in the middle of a base character
    and its accents, and Pc makes ``_`` join words as it does in identifiers.
    """
    if ch < "\x80":
        return ch in _ASCII_WORD_CHARS
    return unicodedata.category(ch) in _WORD_CATEGORIES


# Code-point ranges (inclusive) of the scripts written without spaces that the spec names.
# They are whole Unicode blocks (a superset of each script's characters: a block also holds
# some punctuation of script Common), except in the CJK Symbols and Punctuation block, where
# only the letters and numbers used in Chinese and Japanese text are listed so that the
# ideographic space and CJK punctuation are not called spaceless.  Only word characters
# are ever asked about by the matcher, so the punctuation in the other blocks is harmless.
_SPACELESS_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x1000, 0x109F, "Myanmar"),
    (0x1780, 0x17FF, "Khmer"),
    (0x19E0, 0x19FF, "Khmer Symbols"),
    (0x2E80, 0x2EFF, "CJK Radicals Supplement (Han)"),
    (0x2F00, 0x2FDF, "Kangxi Radicals (Han)"),
    (0x3005, 0x3007, "ideographic iteration mark, closing mark, number zero (Han)"),
    (0x3021, 0x3029, "Hangzhou numerals (Han)"),
    (0x3031, 0x3035, "vertical kana repeat marks"),
    (0x3038, 0x303C, "Hangzhou numerals, vertical iteration mark, masu mark"),
    (0x3040, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),
    (0x31F0, 0x31FF, "Katakana Phonetic Extensions"),
    (0x32D0, 0x32FE, "circled katakana"),
    (0x3300, 0x3357, "squared katakana words"),
    (0x3400, 0x4DBF, "CJK Unified Ideographs Extension A"),
    (0x4E00, 0x9FFF, "CJK Unified Ideographs"),
    (0xA9E0, 0xA9FF, "Myanmar Extended-B"),
    (0xAA60, 0xAA7F, "Myanmar Extended-A"),
    (0xF900, 0xFAFF, "CJK Compatibility Ideographs"),
    (0xFF66, 0xFF9F, "halfwidth katakana"),
    (0x116D0, 0x116FF, "Myanmar Extended-C"),
    (0x16FE3, 0x16FE3, "old Chinese iteration mark"),
    (0x16FF0, 0x16FF1, "Vietnamese alternate reading marks (Han)"),
    (0x1AFF0, 0x1B16F, "Kana Extended-B, Kana Supplement, Kana Extended-A, Small Kana"),
    # Planes 2 and 3 hold only CJK ideographs: Extensions B to I and the CJK
    # Compatibility Ideographs Supplement, with room for future extensions.
    (0x20000, 0x3FFFF, "CJK ideographs of the SIP and TIP"),
)
_SPACELESS_STARTS = tuple(start for start, _, _ in _SPACELESS_RANGES)
_SPACELESS_ENDS = tuple(end for _, end, _ in _SPACELESS_RANGES)


def is_spaceless_script(ch: str) -> bool:
    """Whether ``ch`` belongs to a script written without spaces between words: Han,
    Hiragana, Katakana, Thai, Lao, Khmer or Myanmar (spec section 4).

    Such a character at an end of a phrase needs no word boundary, since the text around
    it has no spaces to mark one.  Decided by the code-point ranges in
    ``_SPACELESS_RANGES`` (Python's ``unicodedata`` has no Script property).
    """
    cp = ord(ch)
    i = bisect.bisect_right(_SPACELESS_STARTS, cp) - 1
    return i >= 0 and cp <= _SPACELESS_ENDS[i]


def _needs_boundary(ch: str) -> bool:
    return is_word_char(ch) and not is_spaceless_script(ch)


# --------------------------------------------------------------------------- phrases


def _boundary_ok(
    norm_text: str, start: int, end: int, need_left: bool, need_right: bool
) -> bool:
    """Whether the occurrence ``norm_text[start:end]`` has the boundaries it needs."""
    if need_left and start > 0 and _needs_boundary(norm_text[start - 1]):
        return False
    if need_right and end < len(norm_text) and _needs_boundary(norm_text[end]):
        return False
    return True


def phrase_matches(norm_text: str, norm_phrase: str) -> bool:
    """Whether ``norm_text`` mentions ``norm_phrase`` (both already normalised, with
    ``normalize_text`` and ``normalize_phrase``).

    The phrase must occur with a boundary at each end that needs one: an end whose
    character is a word character not of a spaceless script is rejected exactly when the
    neighbouring text character is a word character of a spaced script (a neighbour of a
    spaceless script, such as Han, is a boundary).
    Every occurrence is tried, overlapping ones too, so "ethernet ether" mentions 'ether'.
    Punctuation in the phrase matches literally ('li-ion').

    The empty phrase is never mentioned: a phrase that normalises to nothing (``''`` or
    ``'   '``) names nothing, and matching every listing would turn a typo into a ban.

    Cost: one C-level ``str.find`` per occurrence; characters are only inspected next to
    occurrences.
    """
    if not norm_phrase:
        return False
    need_left = _needs_boundary(norm_phrase[0])
    need_right = _needs_boundary(norm_phrase[-1])
    if not (need_left or need_right):
        return norm_phrase in norm_text
    length = len(norm_phrase)
    start = norm_text.find(norm_phrase)
    while start >= 0:
        if _boundary_ok(norm_text, start, start + length, need_left, need_right):
            return True
        start = norm_text.find(norm_phrase, start + 1)
    return False


def mentions(pieces: Iterable[str], norm_phrase: str) -> bool:
    """Whether some raw text piece (a title, a description, one tag) mentions the phrase.

    Each piece is normalised on its own, so a phrase never matches across two pieces.
    For many phrases over the same pieces, ``PhraseMatcher`` does one pass instead.
    """
    if not norm_phrase:
        return False
    return any(phrase_matches(normalize_text(piece), norm_phrase) for piece in pieces)


@attrs.frozen(repr=False)
class _PhraseEntry:
    """What the automaton stores per phrase: the phrase and its precomputed boundaries."""

    phrase: str
    length: int
    need_left: bool
    need_right: bool


def _build_automaton(phrases: frozenset[str]) -> object | None:
    words = sorted(p for p in phrases if p)  # sorted: construction independent of hash seed
    if not words:
        return None  # pyahocorasick refuses to search with an empty automaton
    automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
    for phrase in words:
        entry = _PhraseEntry(
            phrase, len(phrase), _needs_boundary(phrase[0]), _needs_boundary(phrase[-1])
        )
        automaton.add_word(phrase, entry)
    automaton.make_automaton()
    built: object = automaton
    return built


def _phrase_set(phrases: Iterable[str]) -> frozenset[str]:
    return frozenset(phrases)


@attrs.frozen
class PhraseMatcher:
    """Finds which of many normalised phrases a text mentions, in one pass.

    Built once per text field for all the ``mentions`` phrases of a compiled policy set.
    ``find`` runs one Aho-Corasick pass (pyahocorasick, in C) over the text and applies
    the boundary check of ``phrase_matches`` at each hit, so its answer is exactly
    ``{p for p in phrases if phrase_matches(norm_text, p)}``.

    ``phrases`` must already be normalised with ``normalize_phrase``; they are not
    normalised again so that the strings ``find`` returns are the caller's own keys.
    Duplicates are fine, and the empty phrase is never found (as in ``phrase_matches``).

    Immutable after construction and safe to share between threads: the automaton is
    finished in ``__init__`` and never modified afterwards, and ``Automaton.iter`` only
    reads it (each call gets its own iterator state).  Pickling rebuilds the automaton
    from the phrases.
    """

    phrases: frozenset[str] = attrs.field(converter=_phrase_set)
    _automaton: object | None = attrs.field(init=False, repr=False, eq=False)
    _findable: int = attrs.field(init=False, repr=False, eq=False)
    _joinable: bool = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_automaton", _build_automaton(self.phrases))
        object.__setattr__(self, "_findable", sum(1 for p in self.phrases if p))
        object.__setattr__(self, "_joinable", not any("\x00" in p for p in self.phrases))

    def __reduce__(self) -> tuple[type[PhraseMatcher], tuple[tuple[str, ...]]]:
        return (PhraseMatcher, (tuple(sorted(self.phrases)),))

    def find(self, norm_text: str) -> set[str]:
        """The phrases that ``norm_text`` (normalised with ``normalize_text``) mentions."""
        found: set[str] = set()
        self._find_into(norm_text, found)
        return found

    def find_in_pieces(self, pieces: Sequence[str]) -> set[str]:
        """The phrases that some raw piece mentions; each piece is normalised here with
        ``normalize_text`` and searched as if on its own (no match across pieces).

        When no phrase holds NUL, the pieces are joined with NUL and searched in one
        pass, which gives exactly the same answer in about half the time: NUL is not
        white space, not a word character, not ignorable, and a starter that composes
        with nothing under NFKC, and case folding, the removal of ignorables and the
        folding of punctuation are per character, so normalising the joined text
        normalises each piece in place; a phrase without NUL cannot match across it;
        and as a non-word character it is a boundary, just as the end of a piece is."""
        found: set[str] = set()
        if self._joinable:
            if not pieces:
                return found
            self._find_into(normalize_text(pieces[0] if len(pieces) == 1 else "\x00".join(pieces)), found)
            return found
        for piece in pieces:
            if len(found) == self._findable:
                break
            self._find_into(normalize_text(piece), found)
        return found

    def _find_into(self, norm_text: str, found: set[str]) -> None:
        automaton = self._automaton
        if automaton is None or not norm_text:
            return
        text_len = len(norm_text)
        is_word = _needs_boundary
        for last, entry in automaton.iter(norm_text):  # type: ignore[attr-defined]
            phrase = entry.phrase
            if phrase in found:
                continue
            if entry.need_left:
                start = last - entry.length + 1
                if start > 0 and is_word(norm_text[start - 1]):
                    continue
            if entry.need_right and last + 1 < text_len and is_word(norm_text[last + 1]):
                continue
            found.add(phrase)
            if len(found) == self._findable:
                return


# --------------------------------------------------------------------------- contains


def contains(raw: str, norm_needle: str) -> bool:
    """Whether the normalised ``raw`` contains ``norm_needle`` as a plain substring.

    ``norm_needle`` is the policy's needle passed through ``normalize_needle``, and the
    text is read the same way: normalised, every run of white space one space, the ends
    not stripped (spec section 4).  No word boundaries: "Basic monitor stand" contains
    'asic', and "Plastikstrohhalme" contains 'strohhalme' where it does not mention it.
    Like any substring test, the empty needle is contained in every text.
    """
    return norm_needle in normalize_needle(raw)


# --------------------------------------------------------------------------- regexes


class CompiledRegex(Protocol):
    """What callers may rely on of a compiled pattern (``compile_regex``): the pattern's
    UTF-8 bytes, searched in UTF-8 bytes (``regex_search``) for a yes (a true value) or
    a no (None)."""

    @property
    def pattern(self) -> bytes: ...

    def search(self, text: bytes) -> object | None: ...


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str, ignore_case: bool = False) -> CompiledRegex:
    """Compile a policy's ``/pattern/`` (or ``/pattern/i`` with ``ignore_case``) with RE2.

    RE2 matches in time linear in the text, which matters because listing text is written
    by untrusted merchants; Python's ``re`` backtracks and is never used for policy
    patterns.  Raises ``ValueError`` carrying RE2's message (for example
    ``"missing ): (a"``) when RE2 rejects the pattern, including features RE2 lacks
    (backreferences, lookaround) and patterns too large for its memory budget.
    Compiled patterns are immutable and thread-safe, so the result is cached.

    The pattern is given to RE2 as its UTF-8 bytes with the UTF-8 encoding, the very
    RE2 object the wrapper makes of a ``str`` pattern, and is searched in the text's
    UTF-8 bytes: the wrapper's ``str`` search also maps the match's offsets back to
    characters, which a yes-or-no search does not need (a third of its cost). The search
    is a set of that one pattern (``_Searched``).
    """
    options = re2.Options()
    options.log_errors = False  # the error goes into the ValueError, not to stderr
    options.case_sensitive = not ignore_case
    options.encoding = re2.Options.Encoding.UTF8
    try:
        encoded = pattern.encode("utf-8")
        re2.compile(encoded, options)  # (RE2's message for a pattern it rejects)
    except re2.error as error:
        message = error.args[0] if error.args else "invalid regular expression"
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        raise ValueError(str(message)) from None
    except UnicodeEncodeError:
        raise ValueError("pattern contains a lone surrogate code point") from None
    return _Searched(encoded, options)


class _Searched:
    """A pattern RE2 compiled, searched for a yes or no: a ``re2.Set`` of that one pattern
    (unanchored), whose ``Match`` is one call into RE2. The wrapper's ``search`` makes a
    generator and a match object for each text (0.8 µs a search of a short title, against
    0.5 µs). ``search`` gives a true value where the pattern matches, else None."""

    __slots__ = ("_set", "pattern")

    def __init__(self, pattern: bytes, options: Any):
        self.pattern = pattern
        self._set = re2.Set.SearchSet(options)
        try:
            self._set.Add(pattern)
            self._set.Compile()
        except re2.error as error:  # pragma: no cover - re2.compile took it, with the same options
            raise ValueError(f"the pattern cannot be searched: {error}") from None

    def search(self, text: bytes) -> object | None:
        found: object | None = self._set.Match(text)  # (the indices of the patterns that match, or None)
        return found


def regex_search(compiled: CompiledRegex, raw: str) -> bool:
    """Whether the RE2 pattern matches somewhere in the raw, unnormalised text.

    Raw on purpose: a pattern is written against what the merchant typed (SKUs, codes),
    and normalising would change what ``^``, ``[A-Z]`` or ``\\s`` see.  Lone surrogates,
    which JSON allows but UTF-8 cannot encode, are searched as U+FFFD.
    """
    try:
        encoded = raw.encode("utf-8")
    except UnicodeEncodeError:
        encoded = raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")
    return compiled.search(encoded) is not None


# --------------------------------------------------------------------------- categories


def _segments_uncached(s: str) -> tuple[str, ...]:
    # Normalise before splitting, so that a full-width '＞' separates like '>' and no
    # segment contains '>' afterwards.  (A '>' followed by U+0338 composes into '≯' and
    # so does not separate; the pattern literal is read the same way.)
    return tuple(filter(None, map(str.strip, normalize_text(s).split(">"))))


_segments_cached = functools.lru_cache(maxsize=8192)(_segments_uncached)

# Category paths repeat across listings (a marketplace has a few thousand categories), so
# short ones are memoised; long, untrusted values bypass the cache.
_CATEGORY_CACHE_MAX_LEN = 256


def _segments(s: str) -> tuple[str, ...]:
    if len(s) <= _CATEGORY_CACHE_MAX_LEN:
        return _segments_cached(s)
    return _segments_uncached(s)


_PATTERN_CACHE_SIZE = 1 << 17
"""``pattern_segments`` remembers this many patterns: a policy set of 100,000 rules,
each with its own category pattern, fits (with 1024, planning such a set evicted every
pattern before the first decision or the scan asked for it again). 100,000 distinct
one-segment patterns take about 20 MB, a third of it the segments (which the plan's index
holds anyway)."""


def category_segments(value: object) -> tuple[str, ...] | None:
    """The normalised segments of a listing's ``category``, or None when it is ill-typed.

    A string is split on ``>``; a list (or tuple) of strings gives one segment per item,
    and an item that itself contains ``>`` is split too, so ``"A > B"``, ``["A > B"]`` and
    ``["A", "B"]`` are the same path (a pattern cannot name a segment containing ``>``,
    so leaving it whole would make it unmatchable).  Splitting happens after
    normalisation, so the full-width ``＞`` separates too.  Segments are normalised and
    white space collapsed as by ``normalize_phrase``, and empty segments are dropped:
    ``""``, ``" > "`` and ``[]`` give ``()``.  Anything else (a number, None, a list
    holding a non-string) gives None.
    """
    if isinstance(value, str):
        return _segments(value)
    if isinstance(value, (list, tuple)):
        if not all(isinstance(item, str) for item in value):
            return None
        return tuple(segment for item in value for segment in _segments(item))
    return None


@functools.lru_cache(maxsize=_PATTERN_CACHE_SIZE)
def pattern_segments(pattern: str) -> tuple[str, ...]:
    """The normalised segments of a ``category 'A > B'`` pattern literal, split and
    normalised exactly as a listing's category string (cached: the reference evaluator
    asks for them on every listing, and planning, the first decision of each rule, the
    scan's pushdown and the analysis each ask once per rule)."""
    return _segments_uncached(pattern)


def category_matches(path: Sequence[str], pattern: Sequence[str]) -> bool:
    """Whether the pattern's segments occur as a contiguous run of the path's segments.

    Both come from ``category_segments``/``pattern_segments``.  Segments compare whole:
    'Blockchain Miner Accessories' does not match 'Blockchain Miners'.  An empty pattern
    (from ``''`` or ``' > '``) matches nothing, like the empty phrase.
    """
    size = len(pattern)
    if size == 0 or size > len(path):
        return False
    first = pattern[0]
    pattern_tuple = tuple(pattern)
    for i in range(len(path) - size + 1):
        if path[i] == first and tuple(path[i : i + size]) == pattern_tuple:
            return True
    return False
