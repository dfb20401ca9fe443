"""The whole file's tokens read by one regular expression and fed to Lark's LALR parser
(``InteractiveParser.feed_token``): the same parse, without Lark's lexer loop.

Lark's contextual lexer costs more than its parser: for each token and each run of white
space it calls its scanner and counts lines in Python (0.28 s of a 10,000-rule file's
0.48 s parse). Lark's documentation suggests a lexer of one's own where its lexers are too
slow; this one reads every token with one regular expression (a ``re`` scanner, in C),
built from Lark's own terminals in the order Lark tries them, and does in Python only
what Lark's lexer adds: a word's keyword type, a token's line and column, comments to
``lexer_callbacks``.

It gives the tokens Lark's lexer gives, for every text that it parses:

* Lark's root lexer (all terminals) and the lexer of each parser state (the terminals
  that state takes, the ignored ones, and NAME, which ``WholeWords`` makes always
  accepted) try their terminals in one order, the first that matches winning. So where
  the root lexer's choice is a terminal the state takes, the state's lexer chooses it
  too; where it is not, the parser refuses it and ``feed`` gives up.
* A keyword is read as NAME and retyped where its text is a keyword of that state
  (Lark's lexer does the same: its keywords are those NAME matches whole): here the
  state's ``choices()`` say which keywords it takes.

A text it does not read to the end, or whose tokens the parser refuses, is parsed again by
Lark's own lexer and parser (``driver.run``), which word the error: the fast path never
decides what a text means that Lark would read otherwise (tests/test_scanner.py compares
the two on every policy of the repository and on generated texts). Where the grammar
breaks what this relies on (a keyword another regular expression than NAME matches
whole, a keyword with flags or another priority) there is no fast path (``scanner()``
is None) and every parse is Lark's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedInput


class Scanner:
    """One regular expression for all the terminals of ``parser``, in Lark's order, and
    the keywords NAME stands for."""

    def __init__(self, parser: Lark, pattern: re.Pattern[str], keywords: dict[str, str], ignored: frozenset[str]):
        self.parser = parser
        self.pattern = pattern
        self.keywords = keywords
        self.ignored = ignored

    def feed(self, text: str, start: str, callbacks: Mapping[str, Callable[[Token], Any]]) -> Any:
        """What ``parser.parse(text, start=start)`` returns, the ignored tokens of a type
        in ``callbacks`` (Lark's ``lexer_callbacks``: comments) passed to it as they come;
        None where the text is not read whole or the parser refuses a token (the caller
        parses it with Lark's lexer)."""
        interactive = self.parser.parse_interactive(None, start)
        feed, choices, keywords, ignored = interactive.feed_token, interactive.choices, self.keywords, self.ignored
        match = self.pattern.match
        line, line_start, end, last = 1, 0, 0, None
        try:
            while (m := match(text, end)) is not None:  # (no terminal matches the empty text: Lark checks)
                kind, value = m.lastgroup or "", m.group()  # (every alternative is a named group)
                at, end = m.span()
                if kind in ignored:
                    if kind in callbacks:
                        column = at - line_start + 1
                        callbacks[kind](Token(kind, value, at, line, column, line, column + len(value), end))
                    elif "\n" in value:  # white space: a line starts after its last line break
                        line += value.count("\n")
                        line_start = at + value.rindex("\n") + 1
                    continue
                column = at - line_start + 1
                token = Token(kind, value, at, line, column, line, column + len(value), end)
                if kind == "NAME" and (keyword := keywords.get(value)) is not None and keyword in choices():  # type: ignore[no-untyped-call]  # Lark leaves it unannotated
                    token.type = keyword
                feed(token)
                last = token
        except UnexpectedInput:
            return None
        # Lark's parse, unless a character no terminal matches stopped the scanner, there
        # was nothing to parse, or a line break was in a token other than white space (none
        # is, in this grammar: lines are counted in white space only)
        if end != len(text) or last is None or line != text.count("\n") + 1:
            return None
        try:
            return interactive.feed_eof(last)  # type: ignore[no-untyped-call]  # Lark leaves it unannotated
        except UnexpectedInput:
            return None


def _lark_order(t: Any) -> tuple[int, int, int, str]:
    """The order in which Lark's lexers try terminals (its documented precedence: priority,
    the longest match a pattern can make, the length of its text, its name)."""
    return (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name)


@functools.cache
def scanner(parser: Lark) -> Scanner | None:
    """The fast path for ``parser`` (Lark's LALR parser of this grammar), or None where the
    grammar does not allow one (see the module's docstring)."""
    terminals = sorted(parser.terminals, key=_lark_order)
    used = {s.name for rule in parser.rules for s in rule.expansion if s.is_term}
    ignored = frozenset(t.name for t in terminals if t.name not in used)
    names = [t for t in terminals if t.name == "NAME"]
    if len(names) != 1:
        return None
    name = names[0]
    whole = re.compile(name.pattern.to_regexp())
    keywords: dict[str, str] = {}
    others = []
    for t in terminals:
        if t.pattern.type == "str" and whole.fullmatch(t.pattern.value):
            if t.priority != name.priority or t.pattern.flags:
                return None
            keywords[t.pattern.value] = t.name
            continue
        if t.pattern.type == "str" and any(
                re.fullmatch(r.pattern.to_regexp(), t.pattern.value) for r in terminals if r.pattern.type == "re"):
            return None  # a text another regular expression reads whole: Lark retypes it by state
        others.append(t)
    try:
        pattern = re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in others))
    except (re.error, AssertionError):  # pragma: no cover - a grammar Python's re cannot hold in one pattern
        return None
    return Scanner(parser, pattern, keywords, ignored)
