"""Messages an author can act on, for the mistakes authors actually make.

The parser's error path (``dsl.syntax.errors.syntax_error``) hands each syntax error to
``advise``; when one of the rules below recognises the mistake (a date written as the
author thinks of it, a word that is nearly a keyword, a typographic quote, an apostrophe
inside single quotes, a duration in words, a missing `:` after a rule name, a date-time
with a space for `T`), it returns the message, the hint and the spot to point at. The
lowering (P101, P103) and the timezone check (P104) ask ``date_hint``, ``duration_hint``
and ``timezone_hint`` for theirs. Each hint says what was found, what is expected and how
to write it; docs/checks.md shows them, tests/test_messages.py pins them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import attrs
from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..diagnostics import _edit_distance, did_you_mean
from .driver import keywords
from .tree import lex_error_offset, start_of


@attrs.frozen
class Advice:
    """A message and hint for a syntax error, and where to point: ``start`` and ``end``
    are offsets into the statement's text."""

    message: str
    hint: str
    start: int
    end: int

    def position(self, chunk: str) -> tuple[int, int, int]:
        """(line, column, length) inside ``chunk``, as the parser's error path counts them."""
        line = chunk.count("\n", 0, self.start) + 1
        column = self.start - (chunk.rfind("\n", 0, self.start) + 1) + 1
        stop = chunk.find("\n", self.start)
        end = self.end if stop < 0 else min(self.end, stop)
        return line, column, max(1, end - self.start)


@attrs.frozen
class ErrorSite:
    """What the parser knows about a syntax error in one statement (``chunk``): the
    terminals it would take (``accepted``), the terminals it would take at an earlier
    offset (``accepts_before``), and how it words a set of terminals (``describe``)."""

    chunk: str
    error: UnexpectedInput
    accepted: frozenset[str]
    accepts_before: Callable[[int], frozenset[str]]
    describe: Callable[[Iterable[str]], str]


def advise(site: ErrorSite) -> Advice | None:
    """The first rule that recognises the mistake, or None (the parser's own message)."""
    if isinstance(site.error, UnexpectedCharacters):
        return _typographic_quote(site.chunk, lex_error_offset(site.error))
    if not isinstance(site.error, UnexpectedToken) or site.error.token.type == "$END":
        return None
    for rule in _TOKEN_RULES:
        advice = rule(site, site.error.token)
        if advice is not None:
            return advice
    return None


# ---------------------------------------------------------------- words of the text

_CLIP = 60


def _clip(text: str) -> str:
    """``text``, or its start and end around an ellipsis when it is long."""
    return text if len(text) <= _CLIP else f"{text[:_CLIP // 2]}…{text[-_CLIP // 2:]}"


_WORD = r"[A-Za-z_][A-Za-z0-9_-]*"
_TOKENS = re.compile(
    r"""(?P<skip>\s+|\#[^\n]*)
    |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`[^`\n]+`
    |""" + _WORD + r"""|-?[0-9][A-Za-z0-9_.:+\-]*|.""", re.VERBOSE | re.DOTALL)


def _prefix(pattern: str, text: str) -> str:
    """What ``pattern``, a pattern that may match nothing, matches at the start of ``text``."""
    m = re.match(pattern, text)
    assert m is not None, "the pattern matches the empty string"
    return m.group()


def _previous(chunk: str, pos: int) -> tuple[str, int] | None:
    """The token that ends before ``pos`` (comments aside), and its offset. The text is
    read forward, once: a search anchored at the end would go quadratic on a long word."""
    last = None
    for m in _TOKENS.finditer(chunk, 0, pos):
        if m.lastgroup != "skip":
            last = m
    return (last.group(), last.start()) if last else None


def _keyword_words(terminals: Iterable[str]) -> list[str]:
    """The words of the keywords among ``terminals``."""
    words = keywords()
    return [words[t] for t in terminals if t in words]


def name_hint(word: str, accepted: Iterable[str]) -> str | None:
    """A name where keywords were expected (``accepted`` the parser's terminals): the
    keyword it nearly is, or the keyword glued to the rest of it."""
    keywords = _keyword_words(accepted)
    guess = did_you_mean(word, keywords)
    if guess:
        return f"did you mean `{guess}`?"
    glued = max((k for k in keywords if word.startswith(k)), key=len, default=None)
    if glued:
        return (f"did you mean `{glued} {word[len(glued):]}`? A word is read whole: "
                f"put a space after `{glued}`")
    return None  # (a keyword out of place is said as the keyword: errors._describe_token)


_INFLECTIONS = re.compile(r"^(block|flag|allow|mention|contain|match|exist)(s|es|ed|ged|ing|ging)?$")


def _keyword_for(word: str, keywords: list[str]) -> str | None:
    """The keyword that ``word`` stands for: an inflection of it (`blocked`, `flagged`,
    `mention`) or a likely typo."""
    m = _INFLECTIONS.match(word.lower())
    if m:
        stem = m.group(1)
        for k in keywords:
            if k == stem or k == stem + "s":
                return k if k != word else None
    guess = did_you_mean(word, keywords)
    return guess if guess != word else None


# ---------------------------------------------------------------- a missing `:`

_RULE_HEAD = re.compile(r"\brule\s+(`[^`\n]+`|" + _WORD + r")\s*$")


def _missing_colon(site: ErrorSite, tok: Token) -> Advice | None:
    if site.accepted != {"COLON"}:
        return None
    m = _RULE_HEAD.search(site.chunk[:tok.start_pos])
    if m is None:
        return None
    name = m.group(1)
    return Advice(f"a `:` is expected after the rule name `{_clip(name)}`",
                  f"write `rule {_clip(name)}: {_clip(tok.value)} …`", m.end(1), m.end(1) + 1)


# ---------------------------------------------------------------- an apostrophe in '…'

_STRINGS = re.compile(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"")


def _apostrophe(site: ErrorSite, tok: Token) -> Advice | None:
    chunk, pos = site.chunk, tok.start_pos
    if pos is None or pos < 2 or chunk[pos - 1] != "'" or not chunk[pos].isalnum():
        return None
    line_start = chunk.rfind("\n", 0, pos) + 1
    opening = next((m.start() for m in _STRINGS.finditer(chunk[line_start:pos])
                    if line_start + m.end() == pos and m.group().startswith("'")), None)
    if opening is None:
        return None
    opening += line_start
    closing = chunk.find("'", pos)
    line_end = chunk.find("\n", pos) % (len(chunk) + 1)
    if closing < 0 or closing > line_end:
        closing = pos + len(_prefix(r"\w*", chunk[pos:]))
        body = chunk[opening + 1:closing]
    else:
        body = chunk[opening + 1:closing]
    before = _prefix(r"\w*", chunk[opening + 1:pos - 1][::-1])[::-1]
    word = before + "'" + _prefix(r"\w*", chunk[pos:])
    if '"' in body:
        fix = "escape it: '" + _clip(body).replace("'", "\\'") + "'"
    else:
        fix = f'write the string in double quotes: "{_clip(body)}"'
    return Advice(f"the string {_clip(chunk[opening:pos])} ends at the apostrophe of `{_clip(word)}`",
                  f"an apostrophe inside single quotes ends the string; {fix}", pos - 1, pos)


# ---------------------------------------------------------------- typographic quotes

_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033"


def _typographic_quote(chunk: str, pos: int) -> Advice | None:
    if not 0 <= pos < len(chunk):
        return None
    ch = chunk[pos]
    line_end = chunk.find("\n", pos) % (len(chunk) + 1)
    if ch in "'\"":
        curly = next((c for c in chunk[pos + 1:line_end] if c in _SINGLE_QUOTES + _DOUBLE_QUOTES), None)
        if curly is None:
            return None
        return Advice("this string is not closed before the end of the line",
                      f"it ends with '{curly}' (U+{ord(curly):04X}), a typographic quote: "
                      f"close it with the straight quote that opens it, {ch} (U+{ord(ch):04X})",
                      pos, pos + 1)
    if ch not in _SINGLE_QUOTES + _DOUBLE_QUOTES:
        return None
    rest = chunk[pos + 1:line_end]
    # The closing quote: the last typographic quote before a delimiter, not an apostrophe
    # inside a word (‘Kaspersky’s’).
    segment = _prefix(r"[^,\]\)\n]*", rest)
    ends = [i for i, c in enumerate(segment) if c in _SINGLE_QUOTES + _DOUBLE_QUOTES
            and not (i + 1 < len(segment) and segment[i + 1].isalnum())]
    body = segment[:ends[-1]] if ends else None
    double = ch in _DOUBLE_QUOTES or (body is not None and "'" in body)
    straight = '"' if double else "'"
    kind = "double quote" if double else "single quote"
    shown = f"{straight}{_clip(body)}{straight}" if body is not None else f"{straight}…{straight}"
    return Advice(f"found the typographic quote '{ch}' (U+{ord(ch):04X}): a string is written between straight quotes",
                  f"type the straight {kind} {straight} (U+{ord(straight):04X}) on both sides: {shown}; "
                  "word processors turn quotes into typographic ones, a code editor does not",
                  pos, pos + 1)


# ---------------------------------------------------------------- dates

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WRITTEN_DATE = re.compile(
    r"""(?P<q>['"]?)
        (?P<date>\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4})
        (?P<time>[T\ ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?
        (?P=q)""", re.VERBOSE)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(:\d{2}(?:\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$")
_MONTHS = "January February March April May June July August September October November December".split()


def iso_dates(written: str) -> list[str]:
    """The ISO dates that a date written as ``written`` (20/07/2024, 2024/7/20, 20.07.2024,
    07-20-2024) can mean: none, one, or two when day and month could be swapped."""
    parts = re.split(r"[-/.]", written)
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return []
    a, b, c = parts
    if len(a) == 4:
        candidates = [(int(a), int(b), int(c))]
    elif len(c) == 4:
        candidates = [(int(c), int(b), int(a)), (int(c), int(a), int(b))]  # day first, month first
    else:
        return []
    out = []
    for y, m, d in candidates:
        try:
            iso = dt.date(y, m, d).isoformat()
        except ValueError:
            continue
        if iso not in out:
            out.append(iso)
    return out


def _dates_in_words(isos: list[str], time: str = "") -> str:
    if len(isos) == 1:
        return isos[0] + time
    return " or ".join(f"{iso}{time} ({_spoken(iso)})" for iso in isos)


def _spoken(iso: str) -> str:
    d = dt.date.fromisoformat(iso)
    return f"{d.day} {_MONTHS[d.month - 1]}"


def date_hint(written: str) -> str | None:
    """The hint for a date the parser read whole but cannot take (P101): 20.07.2024,
    2024-7-20, 07-20-2024."""
    m = re.match(r"^(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4})((?:T|\s)\S+)?$", written)
    if not m:
        return None
    isos = iso_dates(m.group(1))
    if not isos or (len(isos) == 1 and isos[0] == m.group(1)):
        return None
    time = _iso_time(m.group(2)[1:]) if m.group(2) else ""
    if time is None:
        return None
    return f"write dates as YYYY-MM-DD: {_dates_in_words(isos, time and 'T' + time)}"


def _iso_time(written: str) -> str | None:
    m = _TIME.match(written)
    if m is None:
        return None
    return f"{int(m.group(1)):02d}:{m.group(2)}{m.group(3) or ''}{m.group(4) or ''}"


def _double_equals(site: ErrorSite, tok: Token) -> Advice | None:
    """`set s == […]`, `ladder l == …`: where the parser takes `=` alone (and no
    comparison), its lexer reads `==` as two of them, and the second was the error."""
    pos = start_of(tok)
    if tok.value != "=" or pos < 1 or site.chunk[pos - 1] != "=":
        return None
    expected = site.accepts_before(pos - 1)
    if len(expected) != 1:
        return None
    return Advice(f"found `==` where {site.describe(expected)} was expected",
                  "a set or a ladder is declared with one `=`: `set NAME = [...]`, `ladder NAME = ...`",
                  pos - 1, pos + 1)


def _date_time_with_space(site: ErrorSite, tok: Token) -> Advice | None:
    if tok.type != "NUMLIKE" or _iso_time(tok.value) is None:
        return None
    prev = _previous(site.chunk, start_of(tok))
    if prev is None or not _ISO_DATE.match(prev[0]) or "\n" in site.chunk[prev[1]:tok.start_pos]:
        return None
    date, start = prev
    written = f"{date}T{_iso_time(tok.value)}"
    return Advice(f"found '{tok.value}' after the date {date}: a date-time is written as one word",
                  f"write `{written}`: a `T` joins the date and the time", start, tok.end_pos or start)


def _written_date(site: ErrorSite, tok: Token) -> Advice | None:
    """A date where `from`, `until` or `at` expects one, written otherwise than YYYY-MM-DD
    or in quotes: `from 20/07/2024`, `from '2024-07-20'`."""
    chunk, pos = site.chunk, start_of(tok)
    keyword = None
    for found in re.finditer(r"\b(?:from|until|at)\b", chunk[:pos + 1]):
        keyword = found
    if keyword is None:
        return None
    gap = len(_prefix(r"\s*", chunk[keyword.end():]))
    start = keyword.end() + gap
    m = _WRITTEN_DATE.match(chunk, start)
    if m is None or not start <= pos < m.end():
        return None
    time = ""
    if m.group("time"):
        time_iso = _iso_time(m.group("time")[1:])
        if time_iso is None:
            return None
        time = "T" + time_iso
    isos = iso_dates(m.group("date"))
    if not isos:
        return None
    what = "date-times as YYYY-MM-DDTHH:MM" if time else "dates as YYYY-MM-DD"
    shown = f"the string {m.group()}" if m.group("q") else f"`{m.group()}`"
    return Advice(f"found {shown} where a date was expected",
                  f"write {what} without quotes: {_dates_in_words(isos, time)}", m.start(), m.end())


# ---------------------------------------------------------------- durations

_UNITS = {
    "h": ("h", 1), "hr": ("h", 1), "hrs": ("h", 1), "hour": ("h", 1), "hours": ("h", 1),
    "d": ("d", 1), "day": ("d", 1), "days": ("d", 1),
    "w": ("w", 1), "wk": ("w", 1), "wks": ("w", 1), "week": ("w", 1), "weeks": ("w", 1),
    "month": ("d", 30), "months": ("d", 30), "mo": ("d", 30),
    "year": ("d", 365), "years": ("d", 365), "y": ("d", 365), "yr": ("d", 365),
}
_DURATION_FORM = "a whole number followed by h (hours), d (days) or w (weeks): 12h, 30d, 2w"


def _duration(number: int, unit: str) -> str | None:
    found = _UNITS.get(unit.lower())
    if found is None:
        return None
    letter, factor = found
    return f"{number * factor}{letter}"


def _counted_as(unit: str) -> str:
    factor = _UNITS[unit.lower()][1]
    if factor == 1:
        return ""
    name = "a month" if factor == 30 else "a year"
    return f" ({name} is written {factor}d)"


def duration_hint(written: str) -> str | None:
    """The hint for a duration read whole but not valid (P103): `7days`, `1month`."""
    m = re.match(r"^(\d+)\s*([A-Za-z]+)$", written)
    if m is None or int(m.group(1)) == 0:
        return None
    fixed = _duration(int(m.group(1)), m.group(2))
    if fixed is None or fixed == written:
        return None
    return f"write `{fixed}`{_counted_as(m.group(2))}: a duration is {_DURATION_FORM}"


def _duration_in_words(site: ErrorSite, tok: Token) -> Advice | None:
    if tok.type != "NAME":
        return None
    prev = _previous(site.chunk, start_of(tok))
    if prev is None or not prev[0].isdigit():
        return None
    before = _previous(site.chunk, prev[1])
    if before is None or before[0] != "for":
        return None
    fixed = _duration(int(prev[0]), tok.value)
    if fixed is None:
        return None
    return Advice(f"found `{prev[0]} {tok.value}` where a duration was expected",
                  f"write `for {fixed}`{_counted_as(tok.value)}: a duration is one word, {_DURATION_FORM}",
                  prev[1], tok.end_pos or prev[1])


# ---------------------------------------------------------------- near keywords


def _word_around(chunk: str, pos: int) -> tuple[str, int]:
    """The whole word that the token at ``pos`` is part of, as the author sees it
    (`blocked`, of which the lexer may have read `block` and `ed`), and its offset."""
    line_start = chunk.rfind("\n", 0, pos) + 1
    back = _prefix(r"[A-Za-z0-9_-]*", chunk[line_start:pos][::-1])
    start = pos - len(back)
    start += len(_prefix(r"[0-9-]*", chunk[start:pos]))
    return _prefix(r"[A-Za-z0-9_-]*", chunk[start:]), start


def _glued_word(site: ErrorSite, tok: Token) -> Advice | None:
    """A word the lexer cut after a keyword (`blocked` read as `block` + `ed`), or a whole
    word where only keywords fit, that stands for a keyword: `expect blocked` → `block`."""
    if tok.type != "NAME":
        return None
    word, start = _word_around(site.chunk, start_of(tok))
    accepted = site.accepted if start == tok.start_pos else site.accepts_before(start)
    keywords = _keyword_words(accepted)
    if start == tok.start_pos and (not _INFLECTIONS.match(word.lower()) or did_you_mean(word, keywords)):
        return None  # a whole word that is a near typo: the parser's own "did you mean"
    guess = _keyword_for(word, keywords)
    if guess is None or "NAME" in accepted:
        return None
    expected = site.describe(accepted)
    found = f"the name '{word}'"
    return Advice(f"found {found} where {expected} was expected" if expected else f"unexpected {found}",
                  f"did you mean `{guess}`?", start, start + len(word))


def _keyword_read_as_name(site: ErrorSite, tok: Token) -> Advice | None:
    """A near keyword that the parser took for a name, so that the next token fails:
    `mention any [...]` (a field `mention`), `categry 'X'`."""
    if tok.type == "NAME" and _keyword_for(tok.value, _keyword_words(site.accepted)):
        return None  # the parser's own "did you mean" covers it
    prev = _previous(site.chunk, start_of(tok))
    if prev is None or not re.fullmatch(_WORD, prev[0]):
        return None
    word, start = prev
    accepted = site.accepts_before(start)
    if "NAME" not in accepted:
        return None
    guess = _keyword_for(word, _keyword_words(accepted))
    if guess is None:
        return None
    return Advice(f"`{word}` is not a keyword, so it was read as a name, and `{_clip(tok.value)}` cannot follow it",
                  f"did you mean `{guess}`? write `{guess} {_clip(tok.value)} …`", start, start + len(word))


_TOKEN_RULES: tuple[Callable[[ErrorSite, Token], Advice | None], ...] = (
    _double_equals,
    _missing_colon,
    _apostrophe,
    _date_time_with_space,
    _written_date,
    _duration_in_words,
    _glued_word,
    _keyword_read_as_name,
)


# ---------------------------------------------------------------- timezones


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace(" ", "")


def suggest_timezone(name: str) -> str | None:
    """The IANA timezone ``name`` most likely means: the same name but for case and `_`
    (America/NewYork), else the nearest city of the same area (Europe/Bruxelles), else
    the nearest whole name, else the same city in any area (Brussels)."""
    zones = _zones()
    squashed = _squash(name)
    for z in zones:
        if _squash(z) == squashed:
            return z
    area, _, city = squashed.rpartition("/")
    if city:
        same_area = [z for z in zones if _squash(z).rpartition("/")[0] == area] if area else []
        best = _nearest(city, same_area, limit=max(1, len(city) // 2))
        if best:
            return best
    guess = did_you_mean(name, zones)
    if guess:
        return guess
    return _nearest(city, [z for z in zones if "/" in z], limit=max(1, len(city) // 3)) if city else None


def _nearest(city: str, zones: list[str], limit: int) -> str | None:
    scored = sorted((_edit_distance(city, _squash(z).rpartition("/")[2], limit), z) for z in zones)
    if scored and scored[0][0] <= limit:
        return scored[0][1]
    return None


def timezone_hint(name: str) -> str:
    """The hint of P104 for an unknown timezone ``name``."""
    guess = suggest_timezone(name)
    if guess:
        return f"did you mean '{guess}'? timezones are IANA names, written as in the tz database"
    return "use an IANA name such as 'Asia/Shanghai', 'Europe/London' or 'UTC'"
