"""The parse tree, built by Lark's LALR parser as it reduces (``transformer=``), with no
lark Tree in between.

Lark runs with ``keep_all_tokens=True`` so that a node's reduction sees every token of its
text, and ``TreeBuilder`` shapes the children as Lark's default tree would hold them:
anonymous tokens ("set", "(", …) left out, rules named ``_x`` spliced (Lark does that), a
``?rule`` left with one child replaced by that child. What it drops, rule by rule, it
reads off the grammar's rules as Lark compiles them without ``keep_all_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedCharacters


def start_of(tok: Token) -> int:
    """Where a token that Lark's lexer read starts in its text. Lark types the offset
    Optional (a token made by hand may lack it); the lexer always sets it."""
    pos = tok.start_pos
    assert pos is not None, "Lark's lexer sets every token's start_pos"
    return pos


def lex_error_offset(e: UnexpectedCharacters) -> int:
    """Where in its text Lark's lexer met a character that no terminal matches."""
    # Lark sets pos_in_stream to that int in UnexpectedCharacters.__init__, but declares the
    # class attribute as `pos_in_stream = None`, which mypy reads as the type None.
    offset: int = e.pos_in_stream  # type: ignore[assignment]  # lark: the class attribute's None is read as its type
    return offset


class Node:
    """A node of the parse tree: what lark.Tree with ``propagate_positions`` would hold, for
    a third of the cost (Trees and their Meta took half of the parsing time).

    ``start`` and ``end`` are the node's first and last tokens (None for a node without
    any); ``outer_start`` and ``outer_end`` those of the text it stands for, which is wider
    for an expression in parentheses: Lark's "container" positions, from which a parent's
    span is taken."""

    __slots__ = ("data", "children", "start", "end", "outer_start", "outer_end")

    def __init__(self, data: str, children: list[Any], start: Token | None, end: Token | None):
        self.data = data
        self.children = children
        self.start = self.outer_start = start
        self.end = self.outer_end = end

    def __repr__(self) -> str:
        return f"Node({self.data!r}, {self.children!r})"


def outer_bounds(values: list[Any]) -> tuple[Token | None, Token | None]:
    """The first and last tokens of the text that ``values`` stand for."""
    start = end = None
    for v in values:
        start = v.outer_start if v.__class__ is Node else v
        if start is not None:
            break
    if start is not None:
        for v in reversed(values):
            end = v.outer_end if v.__class__ is Node else v
            if end is not None:
                break
    return start, end


def _quick_bounds(values: list[Any]) -> tuple[Any, Any]:
    """``outer_bounds``, read off the first and last child where both have a token (the
    common case)."""
    first, last = values[0], values[-1]
    start = first.outer_start if first.__class__ is Node else first
    end = last.outer_end if last.__class__ is Node else last
    if start is None or end is None:
        return outer_bounds(values)
    return start, end


Shapes = dict[str, tuple[list[str], bool]]
"""For each rule name (or alias): the token types its node leaves out, and whether it is
a ``?rule`` (one child stands for the node)."""


def learn_shapes(rules: Iterable[Any]) -> Shapes:
    """The shapes of Lark's default tree, read off the grammar's rules as Lark compiles
    them without ``keep_all_tokens`` (``Lark.rules``): a token written as a literal in a
    rule ("set", "(") is left out. A type kept by one expansion of a name and dropped by
    another would make the shape ambiguous: the grammar must not do that."""
    drop: dict[str, set[str]] = {}
    keep: dict[str, set[str]] = {}
    expand1: set[str] = set()
    for rule in rules:
        name = str(rule.alias or rule.options.template_source or rule.origin.name)
        drop.setdefault(name, set())
        if rule.options.expand1 and not rule.alias:
            expand1.add(name)
        for sym in rule.expansion:
            if sym.is_term:
                (drop if sym.filter_out else keep).setdefault(name, set()).add(sym.name)
    for name, types in drop.items():
        both = types & keep.get(name, set())
        if both:
            raise ValueError(f"grammar rule {name} both keeps and drops {sorted(both)}")
    return {name: (sorted(types), name in expand1) for name, types in drop.items()}


class TreeBuilder:
    """Lark's ``transformer``: one method per rule name, called at each reduction (150,000
    for 10,000 rules) with every child of the node; the common shapes get their own
    small function."""

    def __init__(self, shapes: Shapes):
        self.lasts: list[list[tuple[list[Any], int] | None]] = []
        for name, (drop, expand1) in shapes.items():
            setattr(self, name, _builder(name, frozenset(drop), expand1, self.lasts))

    def forget(self) -> None:
        """Let go of the lists the builders remember (``_builder``): call it after a parse,
        so that the last one's tree is not kept alive until the next."""
        for last in self.lasts:
            last[0] = None


def _builder(data: str, drop: frozenset[str], expand1: bool, lasts: list[list[tuple[list[Any], int] | None]]) -> Any:
    if not drop and not expand1:
        def build(children: list[Any]) -> Node:
            if not children:
                return Node(data, children, None, None)
            return Node(data, children, *_quick_bounds(children))
        return build

    # the list this builder returned last and its length then, as one value (parses in
    # several threads: a list paired with another's length would skip a filter)
    last: list[tuple[list[Any], int] | None] = [None]
    lasts.append(last)

    def build_filtered(children: list[Any]) -> Any:
        if not children:
            return Node(data, children, None, None)
        start, end = _quick_bounds(children)
        # A rule Lark inlines (its helper of `x ("," x)*`, say) is reduced once an item, and
        # Lark hands back the list of its last result, the new children appended: those
        # before are filtered already (filtering all again made a long list quadratic)
        memo = last[0]
        seen = memo[1] if memo is not None and children is memo[0] else 0
        if seen:
            new = [c for c in children[seen:] if c.__class__ is not Token or c.type not in drop]
            del children[seen:]
            children += new
            kept = children
        else:
            kept = [c for c in children if c.__class__ is not Token or c.type not in drop]
        last[0] = (kept, len(kept))
        if expand1 and len(kept) == 1:
            only = kept[0]
            if only.__class__ is Node:
                only.outer_start, only.outer_end = start, end
            return only
        return Node(data, kept, start, end)
    return build_filtered
