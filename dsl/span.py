"""Where a piece of source text stands: ``Span``, the location every stage shares.

A leaf module (it imports nothing else of ``dsl``): the AST's nodes, the diagnostics and
the configuration's positions all carry a ``Span``, so it sits below the syntax stage.
``dsl.syntax.ast`` re-exports it as ``A.Span``."""

from __future__ import annotations

import attrs


@attrs.frozen(order=True)
class Span:
    """A region of a source file. Lines and columns count from 1; ``end_column`` is
    exclusive. ``start``/``end`` are character offsets into the file's text."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0
