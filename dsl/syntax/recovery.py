"""Recovery: a file that does not parse is cut into statements, and each is parsed on its
own (start rule ``single``), so that one bad statement yields its P100 and nothing else,
and every other statement is still read and checked (spec section 6).

Every statement starts with a keyword; the cutting reads the file's tokens from Lark's
lexer (``driver.tokens``) and decides, word by word, where a statement starts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostic
from . import ast as A
from .driver import run, tokens
from .errors import syntax_error
from .lower import Lowering


def _kind(tok: Token) -> str:
    """What the cutting needs to know of a token: a word (a name or a keyword), a
    backquoted name, a string, a number, or anything else."""
    if tok.type in _KINDS:
        return _KINDS[tok.type]
    return "word" if tok.value[:1].isalpha() or tok.value[:1] == "_" else "punct"


_KINDS = {"NAME": "word", "BQNAME": "bq", "STRING": "string", "NUMLIKE": "num", "REGEX": "regex", "?": "other"}


_ALWAYS_STARTS = {"policy", "set", "ladder", "field", "rule", "test", "assert"}
_EFFECTS = {"block", "flag", "allow"}


_Word = tuple[str, str, int]
"""A token as the cutting reads it: its kind (``_kind``), its text and its offset."""

_NOTHING: _Word = ("", "", 0)


def _split_statements(text: str) -> Iterator[tuple[int, int, list[str]]]:
    """Cut a file into statements: (start offset, end offset, the statement's words)."""
    # (kind, value, offset) of Lark's tokens, comments and space left out
    toks = [(_kind(t), str(t.value), t.start_pos or 0) for t in tokens(text)]
    starts = [i for i in range(len(toks)) if _starts_statement(toks, i)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    for n, i in enumerate(starts):
        if i >= len(toks):
            break
        start = toks[i][2]
        end = toks[starts[n + 1]][2] if n + 1 < len(starts) else len(text)
        yield start, end, [t[1] for t in toks[i:starts[n + 1] if n + 1 < len(starts) else len(toks)]]


def _starts_statement(toks: list[_Word], i: int) -> bool:
    """Whether a statement starts at ``toks[i]``.

    A statement starts at `policy`, `set`, `ladder`, `field`, `rule`, `test`, `assert`,
    and at `from`, `until`, `block`, `flag`, `allow` unless they continue a rule head
    (`rule r: from D until D block`), an assertion (`assert "x" from D always block`) or
    an expectation (`expect block`)."""
    kind, value, _ = toks[i]
    if kind != "word":
        return False
    prev = toks[i - 1] if i >= 1 else _NOTHING
    prev2 = toks[i - 2] if i >= 2 else _NOTHING
    if prev[1] == ".":
        return False  # a field name inside a path (`seller.from`): reported, not split
    if value in _ALWAYS_STARTS:
        return True
    if value == "tests":
        return i + 1 < len(toks) and toks[i + 1][1] == "for"  # `tests for …`; elsewhere a name
    if value in ("from", "until"):
        # A window opens a rule head (`rule r: until D`) or an assertion's; `until`
        # also closes one (`from D until D`).
        head = prev[1] == ":" or (prev[0] == "string" and prev2[1] == "assert") or _after_rule_name(prev, prev2)
        return not (head or (value == "until" and prev[0] == "num" and prev2[1] == "from"))
    if value in _EFFECTS:
        continued = (
            prev[1] in (":", "always", "never", "expect")
            or (prev[0] == "num" and prev2[1] in ("from", "until", "at", "prior"))
            or _after_rule_name(prev, prev2)
        )
        return not continued
    return False


def _after_rule_name(prev: _Word, prev2: _Word) -> bool:
    """`rule r block …`: the `:` is missing, and the statement goes on (one P100, at the
    spot, rather than a P100 and a rule without a name)."""
    return prev2[1] == "rule" and prev[0] in ("word", "bq")


def parse_statements(text: str, path: str, diags: list[Diagnostic]) -> tuple[list[Any], list[Token]]:
    items: list[Any] = []
    chunks = list(_split_statements(text))
    comments = _leading_comments(text, chunks[0][0] if chunks else len(text))
    broken_until = 0  # chunks before this index are the rest of a statement already reported
    line0, counted = 1, 0  # the line at offset `counted`: counting from 0 each time is quadratic
    for n, (start, end, _words) in enumerate(chunks):
        if n < broken_until:
            continue
        chunk = text[start:end]
        line0 += text.count("\n", counted, start)
        counted = start
        col0 = start - (text.rfind("\n", 0, start) + 1) + 1
        offset = (line0, col0, start)
        seen: list[Token] = []
        try:
            tree = run(chunk, "single", seen)
        except UnexpectedInput as e:
            following = None
            if n + 1 < len(chunks):
                nstart = chunks[n + 1][0]
                nline = line0 + text.count("\n", start, nstart)
                ncol = nstart - (text.rfind("\n", 0, nstart) + 1) + 1
                following = (chunks[n + 1][2][0], nline, ncol)
            diags.append(syntax_error(e, chunk, path, offset, following))
            comments.extend(_shift_token(c, offset) for c in seen)
            ended_early = isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END")
            broken_until = _broken_statement_end(text, chunks, n, ended_early)
            declared = _declared_by_words(_words)
            if declared is not None:
                items.append(declared)
            continue
        comments.extend(_shift_token(c, offset) for c in seen)
        low = Lowering(path, diags, offset, text=chunk)
        item = low.item(tree.children[0])
        if item is not None:
            items.append(item)
    return items, comments


_CONTINUATIONS = {"from", "until"} | _EFFECTS
_NAME_STARTS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_`")
"""How the words that Lark reads as names (NAME, BQNAME) or keywords begin."""


def _declared_by_words(words: list[str]) -> A.Unparsed | None:
    """The rule, set, ladder or policy that a statement which does not parse declares,
    read off its first two words (`rule NAME`, `set NAME`, `ladder NAME`, `policy NAME`;
    a header whose name cannot be read declares a policy all the same, named "")."""
    named = len(words) >= 2 and words[1][:1] in _NAME_STARTS
    name = (words[1][1:-1] if words[1].startswith("`") else words[1]) if named else ""
    if named and words[0] in ("rule", "set", "ladder") or words[:1] == ["policy"]:
        return A.Unparsed(words[0], name)
    return None


def _broken_statement_end(text: str, chunks: list[tuple[int, int, list[str]]], n: int, ended_early: bool) -> int:
    """The index of the first chunk after the broken chunk ``n`` that is not the rest of
    its statement. A statement with a syntax error yields nothing but its P100 (spec
    section 6), but the cutting guessed its end from words that the error may have
    shifted: `rule r block x` (no `:`) or `rule r: frm D block x` are cut before `block`,
    and the rest would read as an unnamed rule (a false P400). A following chunk that
    starts with `from`, `until` or an effect belongs to the broken statement when it
    starts on the line where the statement stops, when the statement stopped short (the
    parser wanted more), or when the statement is a `rule` or `assert` that has not yet
    reached its effect."""
    start, _, words = chunks[n]
    k = n + 1
    while k < len(chunks) and chunks[k][2][0] in _CONTINUATIONS:
        nstart = chunks[k][0]
        line_start = max(start, text.rfind("\n", 0, nstart) + 1)
        same_line = text[line_start:nstart].strip() != ""
        head_only = words[0] in ("rule", "assert") and not _EFFECTS & set(words)
        if not (same_line or head_only or (ended_early and k == n + 1)):
            break
        words = words + chunks[k][2]
        k += 1
    return k


def _shift_token(tok: Token, offset: tuple[int, int, int]) -> Token:
    """A comment read in a statement, placed in the file (its end too)."""
    line0, col0, pos0 = offset
    assert tok.line is not None and tok.column is not None, "Lark's lexer sets every token's position"
    line = tok.line + line0 - 1
    col = tok.column + (col0 - 1 if tok.line == 1 else 0)
    end_line = tok.end_line if tok.end_line is not None else tok.line
    end_col = (tok.end_column if tok.end_column is not None else tok.column + len(tok.value)) \
        + (col0 - 1 if end_line == 1 else 0)
    start = (tok.start_pos or 0) + pos0
    return Token(tok.type, tok.value, start, line, col, end_line + line0 - 1, end_col, start + len(tok.value))


_COMMENT = re.compile(r"#[^\n]*")


def _leading_comments(text: str, first: int) -> list[Token]:
    """The comments before the first statement, where no chunk reads them: that text holds
    only white space and comments, so every `#` there starts one."""
    found = []
    for m in _COMMENT.finditer(text, 0, first):
        line = text.count("\n", 0, m.start()) + 1
        column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        found.append(Token("COMMENT", m.group(), m.start(), line, column, line, column + len(m.group()), m.end()))
    return found



def statement_start(text: str, pos: int) -> int:
    """Where the statement that offset ``pos`` of ``text`` is in (or ends at) starts, cut
    as the recovery cuts a file into statements; 0 when none starts before ``pos``. Only
    some lines before ``pos`` are lexed: a statement's start is judged by the two tokens
    before it, and no token but white space spans a line. For an editor's completion."""
    window = 4096
    while True:
        begin = 0 if pos <= window else text.rfind("\n", 0, pos - window) + 1
        toks = [(_kind(t), str(t.value), t.start_pos or 0) for t in tokens(text, begin, pos)]
        first = 0 if begin == 0 else 2  # the first two tokens of a window lack what came before them
        starts = [toks[i][2] for i in range(first, len(toks)) if _starts_statement(toks, i)]
        if starts:
            return starts[-1]
        if begin == 0:
            return 0
        window *= 4
