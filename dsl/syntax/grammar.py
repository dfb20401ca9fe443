"""The grammar: its text (from the package, or the checkout's grammar/ directory), the
words it reserves, and the postlex that makes Lark read words whole."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from lark import Token
from lark.lark import PostLex

RESERVED = frozenset(
    """policy set ladder field rule from until block flag allow if unless penalty overrides
    because message and or not category mentions any contains matches in exists true false
    then test given expect assert always never""".split()
)
"""Words reserved everywhere: as a field or a name they must be written in backquotes.
Other words of the grammar (title, seller, listing, …) are keywords only where the parser
can take them."""


def grammar_text() -> str:
    """The text of policy.lark."""
    packaged = resources.files("dsl").joinpath("_grammar/policy.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    # A source checkout or an editable install: the grammar lives at the repository root.
    root = Path(__file__).resolve().parent.parent.parent
    return (root / "grammar" / "policy.lark").read_text(encoding="utf-8")


class WholeWords(PostLex):
    """Words are read whole (spec section 1). With the contextual lexer, a parser state
    that takes only keywords would read `blocks` as `block` + `s`. NAME, accepted in every
    state (Lark's ``always_accept``), reads a word to its end, and Lark's lexer turns a
    NAME whose text is a keyword of that state into that keyword: `block` stays `block`,
    `blocks` is a name and so a syntax error where an effect is expected. Pass an
    instance as ``postlex`` to Lark."""

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream
