"""The parse tree, built by Lark's LALR parser as it reduces (``transformer=``), with no
lark Tree in between.

Lark runs with ``keep_all_tokens=True`` so that a node's reduction sees every token of its
text, and ``TreeBuilder`` shapes the children as Lark's default tree would hold them:
anonymous tokens ("set", "(", …) left out, rules named ``_x`` spliced (Lark does that), a
``?rule`` left with one child replaced by that child. What it drops, rule by rule, it
reads off the grammar's rules as Lark compiles them without ``keep_all_tokens``.
"""

from __future__ import annotations

from typing import Any, Iterable

from lark import Token


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


class TreeBuilder:
    """Lark's ``transformer``: one call per reduction (150,000 for 10,000 rules), given
    every child. ``rules`` are the grammar's rules as Lark compiles them with its default
    token filtering (``Lark.rules``); ``?rules`` are the names that stand for their only
    child."""

    def __init__(self) -> None:
        self.drop: dict[str, frozenset[str]] = {}
        self.expand1: frozenset[str] = frozenset()

    def learn(self, rules: Iterable[Any]) -> None:
        """Read off ``rules`` which token types each rule name leaves out of its children.
        A type kept by one expansion of a name and dropped by another would make the shape
        ambiguous: the grammar must not do that."""
        drop: dict[str, set[str]] = {}
        keep: dict[str, set[str]] = {}
        expand1 = set()
        for rule in rules:
            name = str(rule.alias or rule.options.template_source or rule.origin.name)
            if rule.options.expand1 and not rule.alias:
                expand1.add(name)
            for sym in rule.expansion:
                if sym.is_term:
                    (drop if sym.filter_out else keep).setdefault(name, set()).add(sym.name)
                    drop.setdefault(name, set())
        for name, types in drop.items():
            both = types & keep.get(name, set())
            if both:
                raise ValueError(f"grammar rule {name} both keeps and drops {sorted(both)}")
        self.drop = {name: frozenset(types) for name, types in drop.items()}
        self.expand1 = frozenset(expand1)

    def __default__(self, data: str, children: list[Any], meta: Any) -> Any:
        start, end = outer_bounds(children) if children else (None, None)
        drop = self.drop.get(data)
        if drop:
            children = [c for c in children if c.__class__ is not Token or c.type not in drop]
        if len(children) == 1 and data in self.expand1:
            only = children[0]
            if only.__class__ is Node and start is not None:
                if only.start is None:  # pragma: no cover - every ?rule's child has a token
                    only.start, only.end = start, end
                only.outer_start, only.outer_end = start, end
            return only
        return Node(data, children, start, end)
