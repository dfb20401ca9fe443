"""Suppression comments (spec section 6): ``# policy: ignore[P301, P304]``.

At the end of any line of a statement, the comment suppresses those codes for findings
located in that statement (in each of the statements on that line, where several share
it); alone on a line, it covers the statement that starts on the very next line (not
across a blank line). A suppressed finding is kept, marked with the comment
(``Diagnostic.suppressed_by``); each code that suppresses nothing is a P601 at the code.

Codes that configuration cannot change (the errors of P0xx–P2xx, ``diagnostics.is_fixed``)
cannot be suppressed either, and P6xx findings are about configuration and suppression
themselves."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping

import attrs

from ..diagnostics import CODES, Diagnostic, is_fixed, make
from ..syntax import ast as A

SUPPRESSION_FINDINGS = "P6"  # about configuration and suppression themselves
ANALYSIS = "P3"  # the consistency analysis's codes
UNDECIDED = "P399"  # a question the analysis did not answer

_DIRECTIVE = A.SUPPRESSION
_CODE = re.compile(r"P\d{3}")
_OTHER_CASE = re.compile(_DIRECTIVE.pattern, re.IGNORECASE)  # `# Policy: Ignore[…]`: taken for one, and is none


def unsuppressible(code: str) -> bool:
    """Whether no comment may suppress ``code``: an error that stops a set from loading
    (``is_fixed``), or a P6xx finding."""
    return is_fixed(code) or code.startswith(SUPPRESSION_FINDINGS)


@attrs.frozen
class Code:
    """One code written in a comment, and where."""

    code: str
    span: A.Span


@attrs.frozen
class Suppression:
    """One ``# policy: ignore[…]`` comment: its codes and the statements it covers (none,
    one, or each of the statements on the line it ends)."""

    comment: A.Span
    codes: tuple[Code, ...]
    statements: tuple[A.Span, ...]


def read_suppressions(file: A.File, text: str) -> tuple[list[Suppression], list[Diagnostic]]:
    """The suppression comments of a parsed file, and P601 for those that cannot work
    whatever the findings are (malformed, a code that does not exist or cannot be
    suppressed)."""
    statements = _statement_spans(file)
    lines = text.split("\n")
    found: list[Suppression] = []
    problems: list[Diagnostic] = []
    for comment in file.comments:
        span = comment.span
        m = _DIRECTIVE.search(comment.text)
        if span is not None and m is None and (near := _OTHER_CASE.search(comment.text)) is not None:
            problems.append(make(
                "P601", f"'{near.group()}' is not the directive `policy: ignore` (it is written in lower case), "
                        "so this comment suppresses nothing",
                _part(span, near.start(), near.end()),
                hint="write # policy: ignore[…]"))
            continue
        if span is None or m is None:
            continue
        codes, bad = _codes(comment.text, m.end(), span)
        problems.extend(bad)
        if codes:
            found.append(Suppression(span, codes, _covered(span, statements, lines)))
    return found, problems


def _codes(text: str, after: int, span: A.Span) -> tuple[tuple[Code, ...], list[Diagnostic]]:
    def at(start: int, end: int) -> A.Span:
        return _part(span, start, end)

    rest = text[after:]
    opening = len(rest) - len(rest.lstrip())
    close = rest.find("]")
    if not rest[opening:].startswith("[") or close < 0:
        return (), [make("P601", "this suppression names no codes, so it suppresses nothing",
                         at(0, len(text)), hint="name the codes: # policy: ignore[P301]")]
    codes: list[Code] = []
    problems: list[Diagnostic] = []
    start = after + opening + 1
    for piece in rest[opening + 1:close].split(","):
        word = piece.strip()
        begin = start + len(piece) - len(piece.lstrip())
        start += len(piece) + 1
        where = at(begin, begin + max(len(word), 1))
        if not _CODE.fullmatch(word) or word not in CODES:
            problems.append(make("P601", f"'{word}' is not a diagnostic code, so it suppresses nothing", where,
                                 hint="docs/checks.md lists every code"))
        elif unsuppressible(word):
            hint = ("the errors of P0xx, P1xx and P2xx stop the policy set from loading: fix what they report"
                    if is_fixed(word) else "set its severity in the configuration instead")
            problems.append(make("P601", f"{word} cannot be suppressed", where, hint=hint))
        else:
            codes.append(Code(word, where))
    if not codes and not problems:
        problems.append(make("P601", "this suppression names no codes, so it suppresses nothing",
                             at(0, len(text)), hint="name the codes: # policy: ignore[P301]"))
    return tuple(codes), problems


def _part(comment: A.Span, start: int, end: int) -> A.Span:
    """The span of the characters ``start:end`` of a comment (on one line) at ``comment``."""
    return A.Span(comment.file, comment.line, comment.column + start, comment.line, comment.column + end,
                  comment.start + start, comment.start + end)


def _statement_spans(file: A.File) -> list[A.Span]:
    nodes: list[object] = [file.header, *file.statements]
    return [s for s in (getattr(n, "span", None) for n in nodes if n is not None) if s is not None]


def _covered(comment: A.Span, statements: list[A.Span], lines: list[str]) -> tuple[A.Span, ...]:
    """The statements a comment covers: those it ends a line of (several, where they share
    the line), or, alone on its line, the one that starts on the next line. ``statements``
    are in file order and do not overlap, so the ones before the comment are found by
    bisection."""
    i = bisect.bisect_left(statements, (comment.line, comment.column), key=lambda s: (s.line, s.column))
    j = i
    while j and statements[j - 1].end_line >= comment.line:
        j -= 1
    if j < i:
        return tuple(statements[j:i])
    before = lines[comment.line - 1][:comment.column - 1] if comment.line <= len(lines) else ""
    if before.strip():
        return ()
    if i < len(statements) and statements[i].line == comment.line + 1:
        return (statements[i],)
    return ()


def _inside(d: Diagnostic, s: A.Span) -> bool:
    p = d.span
    return (p is not None and p.file == s.file
            and (s.line, s.column) <= (p.line, p.column) <= (s.end_line, s.end_column))


def apply_suppressions(diags: Iterable[Diagnostic], files: Iterable[A.File], sources: Mapping[str, str], *,
                       judged: Callable[[str], bool]) -> list[Diagnostic]:
    """``diags`` with the findings that comments suppress marked, plus P601 for each code
    that suppresses nothing. ``judged(code)`` says whether the checks that report ``code``
    ran on the whole set: a code is only called unused when they did, and a P3xx code not
    in a statement where the analysis left a question undecided (a P399 there, the budget's
    included: the finding it names may be the answer it did not give). Files with syntax
    errors get no P601 (their statements are not all known)."""
    diags = list(diags)
    broken = {d.file for d in diags if d.code.startswith("P1")}
    undecided = [d for d in diags if d.code == UNDECIDED]
    out: list[Diagnostic] = []
    used: set[tuple[A.Span, str]] = set()
    table: list[Suppression] = []
    for file in files:
        found, problems = read_suppressions(file, sources.get(file.path, ""))
        table.extend(found)
        if file.path not in broken:
            out.extend(problems)
    by_code = _by_file_and_code(table)
    for d in diags:
        candidates = by_code.get((d.file, d.code), ()) if not unsuppressible(d.code) else ()
        by = next((s for s in candidates if any(_inside(d, t) for t in s.statements)), None)
        if by is not None:
            used.update((t.comment, d.code) for t in candidates if any(_inside(d, u) for u in t.statements))
            d = attrs.evolve(d, suppressed_by=by.comment)
        out.append(d)
    for s in table:
        if s.comment.file in broken:
            continue
        for c in s.codes:
            if (s.comment, c.code) not in used and (not s.statements or judged(c.code)) \
                    and not _left_open(c.code, s.statements, undecided):
                out.append(_unused(s, c))
    return out


def _left_open(code: str, statements: tuple[A.Span, ...], undecided: list[Diagnostic]) -> bool:
    """Whether the analysis's ``code`` was left undecided in one of ``statements``: a P399
    lies in it (each undecided question is reported where its finding would be)."""
    return code.startswith(ANALYSIS) and any(_inside(d, s) for d in undecided for s in statements)


def _by_file_and_code(table: list[Suppression]) -> dict[tuple[str | None, str], list[Suppression]]:
    """The suppressions by the file they are in and each code they name, in file order:
    a finding is compared only with those that could suppress it."""
    index: dict[tuple[str | None, str], list[Suppression]] = {}
    for s in table:
        for code in dict.fromkeys(c.code for c in s.codes):
            index.setdefault((s.comment.file, code), []).append(s)
    return index


def _unused(s: Suppression, c: Code) -> Diagnostic:
    if not s.statements:
        return make("P601", f"this suppression of {c.code} covers no statement", c.span,
                    hint="put it at the end of a line of the statement, or alone on the line just before it")
    return make("P601", f"no {c.code} finding in this statement: the suppression of {c.code} suppresses nothing",
                c.span, hint=f"remove {c.code} from the comment")
