"""The syntax stage: the grammar, Lark's parser driven through its public API, recovery
after syntax errors, their messages (with ``hints``), the lowering of parse trees to the
AST (``ast``), the canonical text of actions (``canonical``) and the formatter (``format``).

``parse(text, path, test_file=…)`` is the entry point; docs/decisions.md ("How the
parser runs") describes the modules."""

from __future__ import annotations

from .grammar import RESERVED, grammar_text
from .lower import MAX_DEPTH, MAX_NUMBER_DIGITS
from .parse import parse

__all__ = ["MAX_DEPTH", "MAX_NUMBER_DIGITS", "RESERVED", "grammar_text", "parse"]
