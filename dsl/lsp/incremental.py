"""Parsing an edited buffer again from the statement the edit is in, not from the top.

The statements before it are the old parse's: their text and their places have not
changed. The rest of the text is parsed by the parser itself (``checking.loader.
parse_source``), with everything before the cut blanked (each character but line breaks
made a space), so that every line, column and offset it gives is the file's. Where the
two parses could differ, the whole text is parsed instead: when the old parse found a
problem before the cut (the recovery from a syntax error looks past a statement's end),
or when the rest holds a `policy` header or `tests for` (they must come first, which
only the whole file can tell). tests/test_lsp_units.py compares the two on edits."""

from __future__ import annotations

import re

from ..checking.loader import Parsed, parse_source
from ..syntax import ast as A

_WORD = re.compile(r"[A-Za-z_]+")
_NOT_NEWLINE = re.compile(r"[^\n]")
_FIRST_ONLY = ("`policy` header", "`tests for`")


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (slices compared in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _items(file: A.File) -> list[A.Header | A.TestsFor | A.Statement]:
    found: list[A.Header | A.TestsFor | A.Statement] = [x for x in (file.header, file.tests_for) if x is not None]
    found.extend(file.statements)
    return sorted((x for x in found if x.span is not None), key=lambda x: x.span.start)  # type: ignore[union-attr]


def _cut(old: Parsed, edited_at: int) -> int:
    """Where to parse from: the start of the last statement whose first word ends before
    the edit (the edit may extend it), 0 when there is none or when the old parse found a
    problem before it."""
    _name, text, file, diags = old
    cut = 0
    for item in _items(file):
        span = item.span
        assert span is not None
        word = _WORD.match(text, span.start)
        if (word.end() if word else span.start + 1) >= edited_at:
            break
        cut = span.start
    if any(d.span is None or d.span.start < cut or (d.span.start == 0 and d.span.line > 1) for d in diags):
        return 0
    return cut


def reparse(old: Parsed, text: str) -> Parsed:
    """``parse_source(name, text)`` for a text that was ``old``'s before an edit."""
    name = old[0]
    cut = _cut(old, common_prefix(old[1], text))
    if cut == 0:
        return (name, text, *parse_source(name, text))
    kept = [x for x in _items(old[2]) if x.span is not None and x.span.start < cut]
    rest, diags = parse_source(name, _NOT_NEWLINE.sub(" ", text[:cut]) + text[cut:])
    if (rest.header is not None or rest.tests_for is not None
            or any(any(w in d.message for w in _FIRST_ONLY) for d in diags)):
        return (name, text, *parse_source(name, text))
    header = next((x for x in kept if isinstance(x, A.Header)), None)
    scope = next((x for x in kept if isinstance(x, A.TestsFor)), None)
    statements = tuple(x for x in kept if not isinstance(x, (A.Header, A.TestsFor))) + rest.statements
    comments = tuple(c for c in old[2].comments if c.span is not None and c.span.start < cut) + rest.comments
    file = A.File(name, header, statements, comments, span=rest.span, tests_for=scope, unparsed=rest.unparsed)
    return name, text, file, diags
