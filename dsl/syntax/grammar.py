"""The grammar: its text (from the package, or the checkout's grammar/ directory) and the
words it reserves. Lark is not imported here (nor by ``dsl.syntax`` until a text is
parsed): a policy set read from the parse cache (``cache``) never needs it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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
