"""Syntax errors in words: a P100 that says what was found and what was expected, at the
spot, with the friendly message of ``dsl.syntax.hints`` when it knows the mistake."""

from __future__ import annotations

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostic, make
from . import ast as A
from . import hints
from .driver import accepts_before, keywords
from .tree import lex_error_offset

_TERMINAL_WORDS = {
    "NAME": "a name",
    "BQNAME": "a name",
    "STRING": "a string such as 'Blockchain Miners'",
    "NUMLIKE": "a number or a date such as 2021-10-15",
    "REGEX": "a regular expression such as /^CM-[0-9]+$/",
    "CMP": "a comparison (==, !=, <, <=, >, >=)",
    "EFFECT": "an effect (block, flag or allow)",
    "LSQB": "'['", "RSQB": "']'", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'",
    "COMMA": "','", "COLON": "':'", "DOT": "'.'", "EQUAL": "'='",
    "$END": "the end of the file",
}
_STATEMENT_STARTS = {"RULE", "FROM", "UNTIL", "EFFECT", "SET", "LADDER", "FIELD", "POLICY", "TEST", "ASSERT", "TESTS"}


_KEYWORD_GROUPS = {"EFFECT": {"BLOCK", "FLAG", "ALLOW"}}
"""Keywords that are described together: where all three effects are expected, the
message says "an effect (block, flag or allow)"."""


def _describe_expected(expected: set[str]) -> list[str]:
    words: list[str] = []
    exp = set(expected)
    for group, members in _KEYWORD_GROUPS.items():
        if members <= exp:
            exp = (exp - members) | {group}
    if _STATEMENT_STARTS & exp and len(_STATEMENT_STARTS & exp) >= 4:
        words.append("a new statement (a rule such as `block category 'X'`, or `rule`, `set`, `ladder`, `field`)")
        exp -= _STATEMENT_STARTS
    if {"CATEGORY", "MENTIONS", "NAME"} <= exp:
        words.append("a condition such as `category 'X'`, `mentions 'phrase'` or `price > 10`")
        exp -= {"CATEGORY", "MENTIONS", "NAME", "BQNAME", "NOT", "LPAR", "TRUE", "FALSE"}
    for t in sorted(exp):
        if t in _TERMINAL_WORDS:
            w = _TERMINAL_WORDS[t]
        elif t.isupper() and t.isalpha():
            w = f"`{t.lower()}`"
        else:
            continue
        if w not in words:
            words.append(w)
    return words


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    v = tok.value
    if tok.type == "NAME" and v in keywords().values():
        return f"`{v}`"  # a keyword, read as a name where the parser takes no keyword: said as the keyword
    if tok.type in ("NAME", "BQNAME"):
        return f"the name '{v}'"
    if tok.type == "STRING":
        return f"the string {v}"
    if tok.type == "NUMLIKE":
        return f"'{v}'"
    return f"`{v}`"


_Reading = tuple[tuple[int, int, int], str, str | None]
"""How a syntax error reads: where it is in the statement (line, column, length), the
message and the hint."""


def syntax_error(e: UnexpectedInput, chunk: str, path: str, offset: tuple[int, int, int],
                  following: tuple[str, int, int] | None = None) -> Diagnostic:
    """A P100 that says what was found and what was expected, in words. ``following`` is
    the first word of the next statement (and its position), which is what the author
    sees after a statement that ended too early."""
    line0, col0, pos0 = offset
    (line, col, length), msg, hint = _reading(e, chunk, offset, following)
    advice = hints.advise(_error_site(e, chunk))
    if advice is not None:  # a mistake dsl.syntax.hints knows: its words and spot
        msg, hint = advice.message, advice.hint
        line, col, length = advice.position(chunk)
    aline = line + line0 - 1
    acol = col + (col0 - 1 if line == 1 else 0)
    span = A.Span(path, aline, acol, aline, acol + length, pos0, pos0)
    return make("P100", msg, span, hint=hint)


def _reading(e: UnexpectedInput, chunk: str, offset: tuple[int, int, int],
             following: tuple[str, int, int] | None) -> _Reading:
    if isinstance(e, UnexpectedToken):
        return _unexpected_token(e, chunk, offset, following)
    if isinstance(e, UnexpectedCharacters):
        return _unexpected_character(e, chunk)
    if isinstance(e, UnexpectedEOF):
        return end_position(chunk), "the statement is not finished at the end of the file", None
    return (1, 1, 1), str(e), None  # pragma: no cover - Lark raises only the three above


def _unexpected_token(e: UnexpectedToken, chunk: str, offset: tuple[int, int, int],
                      following: tuple[str, int, int] | None) -> _Reading:
    tok = e.token
    where, found = _found_token(tok, chunk, offset, following)
    accepted = _accepted(e)
    expected = _describe_expected(accepted)
    msg = f"found {found} where {_join_or(expected)} was expected" if expected else f"unexpected {found}"
    hint = None
    before = chunk[:tok.start_pos].split()[-1:] if tok.type != "$END" else []
    if before in (["assert"], ["test"]) and accepted == {"STRING"}:
        kind = "assertion" if before == ["assert"] else "test"
        msg = f"found {found} where the name of the {kind} was expected, in quotes"
        hint = (f'write `assert "what the policy promises" {tok.value} …`: results and reports cite the name'
                if kind == "assertion" else 'write `test "what it shows" given {…} at … expect …`')
    elif tok.type == "NAME":
        hint = hints.name_hint(tok.value, accepted)
    return where, msg, hint


def _found_token(tok: Token, chunk: str, offset: tuple[int, int, int],
                 following: tuple[str, int, int] | None) -> tuple[tuple[int, int, int], str]:
    """Where the unexpected token is and how it reads. Where the statement ended too early,
    that is the first word of the next statement."""
    if tok.type == "$END" and following is not None:
        line0, col0, _ = offset
        word, fline, fcol = following
        return (fline - line0 + 1, fcol - (col0 - 1 if fline == line0 else 0), len(word)), f"`{word}`"
    if tok.type == "$END":
        return end_position(chunk), "the end of the file"
    line, column = tok.line, tok.column
    assert line is not None and column is not None, "Lark's lexer sets every token's position"
    return (line, column, max(1, len(tok.value))), _describe_token(tok)


def _unexpected_character(e: UnexpectedCharacters, chunk: str) -> _Reading:
    at = lex_error_offset(e)
    ch = chunk[at] if 0 <= at < len(chunk) else "?"
    if ch in "'\"":
        return ((e.line, e.column, 1), "this string is not closed before the end of the line",
                f"close it with {ch}; a string cannot span lines (write \\n for a line break)")
    if ch == "/":
        return ((e.line, e.column, 1), "this regular expression is not closed before the end of the line",
                "close it with /; write \\/ for a slash inside it")
    if ch == "`":
        return (e.line, e.column, 1), "this backquoted name is not closed", None
    return (e.line, e.column, 1), f"unexpected character {_describe_char(ch)}", None


def _error_site(e: UnexpectedInput, chunk: str) -> hints.ErrorSite:
    accepted = frozenset(_accepted(e)) if isinstance(e, UnexpectedToken) else frozenset()
    return hints.ErrorSite(chunk, e, accepted, lambda pos: accepts_before(chunk, pos),
                           lambda terminals: _join_or(_describe_expected(set(terminals))))


def _accepted(e: UnexpectedToken) -> set[str]:
    """The terminals the parser would really take here. LALR's table lists every token
    that may follow a merged state (`expect` after a date in a rule window, say); the
    interactive parser tells the ones that lead somewhere."""
    try:
        acc = set(e.interactive_parser.accepts())  # type: ignore[no-untyped-call]  # lark leaves accepts() unannotated
        if acc:
            return acc
    except Exception:  # noqa: BLE001 - fall back to the table's view
        pass
    return set(e.expected)


def _describe_char(ch: str) -> str:
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}' (U+{ord(ch):04X})"
    return f"U+{ord(ch):04X}"


def end_position(chunk: str) -> tuple[int, int, int]:
    stripped = chunk.rstrip()
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col, 1


def _join_or(words: list[str]) -> str:
    if len(words) > 6:
        words = words[:6] + ["…"]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]

