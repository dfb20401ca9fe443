"""The syntax stage: the grammar, Lark's parser driven through its public API, recovery
after syntax errors, their messages (with ``hints``), the lowering of parse trees to the
AST (``ast``), the canonical text of actions (``canonical``) and the formatter (``format``).

``parse(text, path, test_file=…)`` is the entry point; docs/decisions.md ("How the
parser runs") describes the modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .grammar import RESERVED, grammar_text
from .parse import parse

if TYPE_CHECKING:
    from .lower import MAX_DEPTH, MAX_NUMBER_DIGITS

__all__ = ["MAX_DEPTH", "MAX_NUMBER_DIGITS", "RESERVED", "grammar_text", "parse"]


def __getattr__(name: str) -> object:
    """The lowering's limits, imported on first use: the lowering brings Lark, which a
    policy set read from the parse cache (``cache``) never needs (``parse`` imports it on
    its first call)."""
    if name in ("MAX_DEPTH", "MAX_NUMBER_DIGITS"):
        from . import lower

        return getattr(lower, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
