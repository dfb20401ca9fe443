"""Syntax errors in words: a P100 that says what was found and what was expected, at the
spot, with the friendly message of ``dsl.syntax.hints`` when it knows the mistake."""

from __future__ import annotations

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostic, did_you_mean, make
from . import ast as A
from . import hints
from .driver import accepts_before
from .grammar import RESERVED

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
    if tok.type in ("NAME", "BQNAME"):
        return f"the name '{v}'"
    if tok.type == "STRING":
        return f"the string {v}"
    if tok.type == "NUMLIKE":
        return f"'{v}'"
    return f"`{v}`"


def syntax_error(e: UnexpectedInput, chunk: str, path: str, offset: tuple[int, int, int],
                  following: tuple[str, int, int] | None = None) -> Diagnostic:
    """A P100 that says what was found and what was expected, in words. ``following`` is
    the first word of the next statement (and its position), which is what the author
    sees after a statement that ended too early."""
    line0, col0, pos0 = offset
    hint = None
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END" and following is not None:
            word, fline, fcol = following
            line, col, length = fline - line0 + 1, fcol - (col0 - 1 if fline == line0 else 0), len(word)
            found = f"`{word}`"
        elif tok.type == "$END":
            line, col, length = end_position(chunk)
            found = "the end of the file"
        else:
            line, col, length = tok.line, tok.column, max(1, len(tok.value))
            found = _describe_token(tok)
        expected = _describe_expected(_accepted(e))
        msg = f"found {found} where {_join_or(expected)} was expected" if expected else f"unexpected {found}"
        before = chunk[:tok.start_pos].split()[-1:] if tok.type != "$END" else []
        if before in (["assert"], ["test"]) and _accepted(e) == {"STRING"}:
            kind = "assertion" if before == ["assert"] else "test"
            msg = f"found {found} where the name of the {kind} was expected, in quotes"
            hint = (f'write `assert "what the policy promises" {tok.value} …`: results and reports cite the name'
                    if kind == "assertion" else 'write `test "what it shows" given {…} at … expect …`')
        if tok.type == "NAME" and hint is None:
            acc = _accepted(e)
            keywords = [t.lower() for t in acc if t.isalpha() and t.isupper() and t not in _TERMINAL_WORDS]
            guess = did_you_mean(tok.value, keywords)
            glued = max((k for k in keywords if tok.value.startswith(k)), key=len, default=None)
            if guess:
                hint = f"did you mean `{guess}`?"
            elif glued:
                hint = (f"did you mean `{glued} {tok.value[len(glued):]}`? A word is read whole: "
                        f"put a space after `{glued}`")
            elif tok.value in RESERVED:
                hint = f"`{tok.value}` is a keyword"
    elif isinstance(e, UnexpectedCharacters):
        line, col, length = e.line, e.column, 1
        ch = chunk[e.pos_in_stream] if 0 <= e.pos_in_stream < len(chunk) else "?"
        msg = f"unexpected character {_describe_char(ch)}"
        if ch in "'\"":
            msg = "this string is not closed before the end of the line"
            hint = f"close it with {ch}; a string cannot span lines (write \\n for a line break)"
        elif ch == "/":
            msg = "this regular expression is not closed before the end of the line"
            hint = "close it with /; write \\/ for a slash inside it"
        elif ch == "`":
            msg = "this backquoted name is not closed"
    elif isinstance(e, UnexpectedEOF):
        line, col, length = end_position(chunk)
        msg = "the statement is not finished at the end of the file"
    else:  # pragma: no cover - Lark raises only the three above
        line, col, length = 1, 1, 1
        msg = str(e)
    advice = hints.advise(_error_site(e, chunk))
    if advice is not None:  # a mistake dsl.syntax.hints knows: its words and spot
        msg, hint = advice.message, advice.hint
        line, col, length = advice.position(chunk)
    aline = line + line0 - 1
    acol = col + (col0 - 1 if line == 1 else 0)
    span = A.Span(path, aline, acol, aline, acol + length, pos0, pos0)
    return make("P100", msg, span, hint=hint)


def _error_site(e: UnexpectedInput, chunk: str) -> hints.ErrorSite:
    accepted = frozenset(_accepted(e)) if isinstance(e, UnexpectedToken) else frozenset()
    return hints.ErrorSite(chunk, e, accepted, lambda pos: accepts_before(chunk, pos),
                           lambda terminals: _join_or(_describe_expected(set(terminals))))


def _accepted(e: UnexpectedToken) -> set[str]:
    """The terminals the parser would really take here. LALR's table lists every token
    that may follow a merged state (`expect` after a date in a rule window, say); the
    interactive parser tells the ones that lead somewhere."""
    try:
        acc = set(e.interactive_parser.accepts())
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

