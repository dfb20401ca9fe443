"""``parse``: one file's text to its AST and its syntax diagnostics (P100, P101, P103).

The whole file is parsed at once (``driver.run``) and lowered (``lower``). When that
fails, ``recovery`` parses it statement by statement, and ``errors`` words each syntax
error."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, make
from ..gcpause import no_gc
from ..span import Lines
from . import ast as A

if TYPE_CHECKING:
    from lark import Token


def parse(text: str, path: str = "<string>", *, test_file: bool | None = None) -> tuple[A.File, list[Diagnostic]]:
    """Parse one file. Returns the AST (statements with syntax errors left out) and the
    diagnostics. ``test_file`` says whether tests (True) or rules (False) belong here;
    None accepts both."""
    # the parser's modules, and Lark, on the first parse: a policy set read from the parse
    # cache (``cache``), or formatted (``policy_hash``), never needs them
    from lark.exceptions import UnexpectedInput

    from .lower import arrange, tests_for, token_span
    from .recovery import parse_statements

    if text.startswith("\ufeff"):
        text = " " + text[1:]  # a byte order mark is not part of the policy; offsets stay put
    with no_gc():
        diags: list[Diagnostic] = []
        try:
            items, comments = _parse_file(text, path, diags)
        except UnexpectedInput:
            diags = []
            items, comments = parse_statements(text, path, diags)
    if "\r" in text:
        _lone_carriage_return(text, path, diags)
    unparsed = tuple(i for i in items if isinstance(i, A.Unparsed))
    items = [i for i in items if not isinstance(i, A.Unparsed)] if unparsed else items
    scope, items = tests_for(items, diags, test_file)
    header, statements = arrange(items, path, diags, test_file)
    misplaced = next((i for i in items if isinstance(i, A.Header)), None) if header is None else None
    if misplaced is not None and test_file is not True:  # its P100 said it must come first
        unparsed += (A.Unparsed("policy", misplaced.name.name, span=misplaced.span),)
    comment_nodes = tuple(
        A.Comment(c.value, span=token_span(path, c, (1, 1, 0))) for c in comments
    )
    file = A.File(path, header, tuple(statements), comment_nodes,
                  span=A.Span(path, 1, 1, text.count("\n") + 1, 1, 0, len(text)), tests_for=scope,
                  unparsed=unparsed)
    return file, diags


def _parse_file(text: str, path: str, diags: list[Diagnostic]) -> tuple[list[Any], list[Token]]:
    """The whole file in one parse. The parse tree is dropped on return, before the
    collector runs again (while alive, a collection would walk all of it)."""
    from .driver import run
    from .lower import Lowering

    comments: list[Token] = []
    tree = run(text, "start", comments)
    low = Lowering(path, diags, text=text)
    items = []
    for child in tree.children:
        item = low.item(child)
        if item is not None:
            items.append(item)
    return items, comments


_LONE_CR = re.compile(r"\r(?!\n)")


def _lone_carriage_return(text: str, path: str, diags: list[Diagnostic]) -> None:
    """A P100 at the file's first carriage return that no line feed follows. Lines end
    in ``\n`` or ``\r\n``; a lone ``\r`` (an old Mac line end) ends no line, so a comment
    before one would run on over what an editor shows as the next lines, and the
    statements there would be left unread without a word."""
    found = _LONE_CR.search(text)
    if found is None:
        return
    at = found.start()
    diags.append(make("P100", "a carriage return that no line feed follows: lines end in \\n or \\r\\n here, so "
                              "a comment before it would run on to the next \\n and hide the statements between",
                      A.Span.within(Lines(path, text), at, at + 1),
                      hint="save the file with LF (\\n) or CRLF (\\r\\n) line ends"))
