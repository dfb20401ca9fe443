"""Hover: what the name under the cursor means, in the words the other commands use.

A rule: its effect, its window (``explain.in_force_words``), its conditions as the
explanations print them (``explain.expr_text``), its penalty ladder step by step, what it
overrides, its reason. A set: its items; a ladder: its steps; a field: its declaration (or
that it is built in); a policy: its header. A diagnostic code in a `# policy: ignore[…]`
comment: its title and a link to its documentation. Declarations are printed by the
formatter."""

from __future__ import annotations

import re

from lsprotocol import types as T

from ..checking.passes import policy_name_of
from ..diagnostics import CODES, docs_url
from ..evaluate.explain import expr_text, in_force_words
from ..model import BUILTIN_FIELDS
from ..syntax import ast as A
from ..syntax.format import format_literal, format_statement, format_step, format_when
from .navigation import FIELD, LADDER, POLICY, RULE, SET, Index, Occurrence, index_of
from .positions import contains
from .project import Snapshot

_CODE = re.compile(r"P\d{3}")
MAX_ITEMS = 30


def hover(snap: Snapshot, file: str, line: int, column: int, encoding: str) -> T.Hover | None:
    """The hover at a 1-based line and column of ``file``."""
    code = code_at(snap, file, line, column)
    if code is not None:
        return _markdown(code_text(code))
    index = index_of(snap)
    occ = index.at(file, line, column)
    if occ is None:
        return None
    text = describe(snap, index, occ)
    if text is None:
        return None
    return _markdown(text, snap.lines(file, encoding).range(occ.span))


def _markdown(text: str, where: T.Range | None = None) -> T.Hover:
    return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, text), where)


def code_at(snap: Snapshot, file: str, line: int, column: int) -> str | None:
    """The diagnostic code under the cursor in a comment, if any."""
    parsed = snap.files.get(file)
    for c in parsed.comments if parsed is not None else ():
        if c.span is None or not contains(c.span, line, column) or c.span.line != line:
            continue
        for m in _CODE.finditer(c.text):
            if m.start() <= column - c.span.column <= m.end() and m.group() in CODES:
                return m.group()
    return None


def code_text(code: str) -> str:
    severity, title = CODES[code]
    return f"**{code}** — {title} ({severity})\n\n[{code} in the documentation]({docs_url(code)})"


def describe(snap: Snapshot, index: Index, occ: Occurrence) -> str | None:
    if occ.kind == FIELD:
        return _field(index, occ.key)
    decls = index.declarations(occ.kind, occ.key)
    if not decls:
        return f"unknown {occ.kind} `{occ.key}`"
    node = decls[0].node
    if occ.kind == RULE:
        return rule_text(snap, occ.key, node)
    if occ.kind == SET:
        return _set(node)
    if occ.kind == LADDER:
        return _ladder(node)
    if occ.kind == POLICY:
        return _policy(snap, node)
    return None


def _code(statement: A.Statement) -> str:
    return "```policy\n" + format_statement(statement).rstrip() + "\n```"


def _field(index: Index, key: str) -> str:
    decls = index.declarations(FIELD, key)
    if decls:
        return f"field `{key}`\n\n" + _code(decls[0].node)
    builtin = BUILTIN_FIELDS.get(tuple(key.split(".")))
    if builtin is not None:
        kind = "list of text" if builtin.kind == "list_text" else builtin.kind
        return f"field `{key}`: {kind} (built in)"
    if any(o.declares for (kind, _k), occs in index.by_key.items() if kind == FIELD for o in occs):
        return f"field `{key}` is not declared"
    return f"field `{key}`: the policy set declares no fields, so any value is read"


def _set(decl: A.SetDecl) -> str:
    items = [format_literal(i) for i in decl.items]
    shown = ", ".join(items[:MAX_ITEMS]) + (f", … ({len(items) - MAX_ITEMS} more)" if len(items) > MAX_ITEMS else "")
    return f"set `{decl.name.name}`: {len(items)} item{'s' if len(items) != 1 else ''}\n\n[{shown}]"


def _steps(steps: tuple[A.Step, ...]) -> str:
    return "\n".join(f"{n}. {format_step(s)}" for n, s in enumerate(steps, 1))


def _ladder(decl: A.LadderDecl) -> str:
    return f"ladder `{decl.name.name}`: {len(decl.steps)} steps, one more for each prior violation\n\n" \
           + _steps(decl.steps)


def _policy(snap: Snapshot, f: A.File) -> str:
    name = policy_name_of(f)
    rules = sum(isinstance(s, A.Rule) for s in f.statements)
    lines = [f"policy `{name}`: {rules} rule{'s' if rules != 1 else ''}, in {f.path}"]
    for c in f.header.clauses if f.header is not None else ():
        value = c.value.value if isinstance(c.value, A.Str) else expr_text(c.value)
        lines.append(f"- {c.kind}: {value}")
    return "\n".join(lines)


def rule_text(snap: Snapshot, qid: str, rule: A.Rule) -> str:
    """A rule in words: effect, window, conditions, penalty, overrides, reason."""
    info = snap.model.by_qid.get(qid) if snap.model is not None else None
    lines = [f"**{rule.effect}** rule `{qid}`", ""]
    window = in_force_words(info) if info is not None else _window(rule)
    lines.append(window or "always in force")
    scope = _scope(snap, qid.partition(".")[0])
    when = [f"scope: {expr_text(scope)}"] if scope is not None else []
    when += [expr_text(e) for e in (rule.selector, rule.if_) if e is not None]
    lines.append(f"- applies to a listing when {' and '.join(when)}" if when else "- applies to every listing")
    if rule.unless is not None:
        lines.append(f"- unless {expr_text(rule.unless)}")
    lines.extend(_penalty_lines(snap, rule))
    if rule.overrides:
        lines.append("- lifts " + ", ".join(f"`{r.name}`" for r in rule.overrides))
    if rule.because is not None:
        lines.append(f"- because {format_literal(rule.because)}")
    if rule.message is not None:
        lines.append(f"- message {format_literal(rule.message)}")
    return "\n".join(lines)


def _window(rule: A.Rule) -> str | None:
    parts = [f"{word} {format_when(w)}" for word, w in (("from", rule.from_), ("until", rule.until)) if w is not None]
    return "in force " + " ".join(parts) + " (in the policy's timezone)" if parts else None


def _scope(snap: Snapshot, policy: str) -> A.Expr | None:
    f = index_of(snap).policies.get(policy)
    for c in f.header.clauses if f is not None and f.header is not None else ():
        if c.kind == "scope" and not isinstance(c.value, A.Str):
            return c.value
    return None


def _penalty_lines(snap: Snapshot, rule: A.Rule) -> list[str]:
    if isinstance(rule.penalty, A.PenaltyStep):
        return [f"- penalty: {format_step(rule.penalty.step)}"]
    if isinstance(rule.penalty, A.PenaltyLadder):
        name = rule.penalty.ladder.name
        decls = index_of(snap).declarations(LADDER, name)
        if not decls:
            return [f"- penalty: ladder `{name}` (not declared)"]
        steps = _steps(decls[0].node.steps).replace("\n", "\n   ")
        return [f"- penalty: ladder `{name}`, the step by the seller's prior violations:\n   {steps}"]
    return []
